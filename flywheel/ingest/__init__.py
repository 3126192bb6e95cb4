"""Sense: receive events, profiles and items (Sensors and Segment protocols, bulk files)."""
