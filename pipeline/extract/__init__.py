"""Pure extractors the stages call: comments, dates, bylines, article heads."""
