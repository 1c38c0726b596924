"""Command-line interface: `intentrank ...` (Typer)."""
