"""Compliance: consent and opt-out, quiet hours, frequency caps, lists and the send-time gate."""
