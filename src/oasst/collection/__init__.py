"""The Open-Assistant-compatible data-collection API (/api/v1) and its tree manager."""
