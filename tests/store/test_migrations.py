"""migrations/: empty → head on SQLite and PostgreSQL, idempotent, and in step with the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store.db import make_engine
from store.migrate import upgrade
from store.models import Base


def test_upgrade_from_empty_creates_every_table_and_matches_the_models(db_settings):
    upgrade(db_settings)
    upgrade(db_settings)  # a second run is a no-op
    engine = make_engine(db_settings)
    try:
        with engine.connect() as conn:
            assert set(Base.metadata.tables) <= set(inspect(conn).get_table_names())
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
