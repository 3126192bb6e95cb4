"""Feedback: event analysis, funnels, retention, experiment statistics, dashboards."""
