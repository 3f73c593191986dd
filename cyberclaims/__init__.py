"""Sector-wide cyber-insurance claims and loss-event warehouse."""

__version__ = "0.1.0"
