"""The demo brokerage: a deterministic synthetic securities firm, loaded through real ingest."""
