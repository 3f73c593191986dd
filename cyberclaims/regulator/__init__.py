"""Pilot statistics for regulators: aggregates with disclosure control."""
