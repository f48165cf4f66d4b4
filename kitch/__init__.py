"""Kitch: a single-box live streaming platform."""

__version__ = "0.1.0"
