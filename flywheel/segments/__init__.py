"""Segments (圈人): rule-based, tag-based and uploaded customer groups."""
