"""The `oasst` command line: one Typer sub-app per area."""
