"""Shared primitives that import no domain: errors, clock, ids, time rules."""
