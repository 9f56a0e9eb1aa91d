"""Thin repositories over the generated queries: validation and error mapping only."""
