"""The history store: snapshots of stats tables over time in one DuckDB file (see docs/history.md)."""
