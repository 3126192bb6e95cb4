"""Flywheel: an open-source marketing cloud for securities firms (证券行业营销云)."""

__version__ = "0.1.0"
