"""Use cases: each validates, plans, journals and applies one user request."""
