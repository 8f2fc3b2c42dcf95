"""Alembic environment: the URL comes from trainyard's settings, never from an ini file.

`trainyard.store.migrate.upgrade(settings)` passes an open connection in `config.attributes`;
run standalone (the `alembic` command with `-c` pointing at a bare config), the
settings are read from the environment.
"""

from alembic import context

from trainyard.store.db import make_engine
from trainyard.store.models import Base
from trainyard.store.settings import load_settings


def _configure_and_run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    engine = make_engine(context.config.attributes.get("settings") or load_settings())
    try:
        with engine.connect() as connection:
            _configure_and_run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `trainyard migrate`")
run()
