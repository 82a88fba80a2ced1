"""oasst: build your own assistant, from human feedback to a served, metered model."""

__version__ = "0.1.0"
