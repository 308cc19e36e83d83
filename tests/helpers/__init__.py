"""Shared test helpers, one module per part (no test module imports another)."""
