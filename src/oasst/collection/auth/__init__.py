"""API clients: keys, trust, the bootstrap client."""
