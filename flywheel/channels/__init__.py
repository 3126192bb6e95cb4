"""Channels: the message outbox, the dispatcher and the adapters that reach customers."""
