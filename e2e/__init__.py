"""End-to-end tests and their helpers (see e2e/conftest.py)."""
