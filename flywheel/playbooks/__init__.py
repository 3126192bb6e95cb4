"""Playbooks (营销模板库): ready scenarios creating tags, segment, content and journey at once."""
