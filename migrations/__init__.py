"""Alembic environment and versions of the trainyard schema (run through `store.migrate`)."""
