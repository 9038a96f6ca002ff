"""Measurement scripts that run pipeline pieces on the development sets."""
