"""Audit trail: append-only, hash-chained record of every sensitive act."""
