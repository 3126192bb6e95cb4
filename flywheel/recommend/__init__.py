"""Recommendations (推荐引擎): scenes, recall/filter/rank strategies, suitability-safe."""
