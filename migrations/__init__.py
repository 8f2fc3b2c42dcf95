"""Alembic environment and versions of the trainyard schema (run through `trainyard.store.migrate`)."""
