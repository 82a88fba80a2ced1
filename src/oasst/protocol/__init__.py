"""Wire models only (pydantic): what travels between oasst and its clients."""
