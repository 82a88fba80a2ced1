"""Frontend users: created on first sight, gated by enabled, deleted and ToS; listed, updated, anonymised."""
