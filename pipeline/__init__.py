"""Turns scraped news pages into a versioned JSONL corpus of articles and comments."""

__version__ = "0.1.0"
