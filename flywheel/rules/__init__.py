"""The rule DSL shared by tags and segments, and its compiler to DuckDB and ClickHouse SQL."""
