"""Schema migrations: `upgrade(settings)` brings the database to the newest Alembic version (`trainyard migrate`)."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from trainyard.store.db import make_engine
from trainyard.store.settings import Settings, load_settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
MIGRATION_MARGIN_SECONDS = 10.0


def alembic_config(settings: Settings) -> Config:
    """An Alembic config for `settings` (for `command.revision(..., autogenerate=True)` when the models change)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings) -> None:
    """Create or upgrade every table to the newest version (idempotent)."""
    config = alembic_config(settings)
    # A migration may legitimately run a statement silently for long (an index, a table rewrite): the server's
    # statement timeout governs it, and the client gives up on a silent server only well after that.
    engine = make_engine(settings.replace(db_response_timeout_seconds=max(
        settings.db_response_timeout_seconds, settings.db_statement_timeout_seconds + MIGRATION_MARGIN_SECONDS)))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def main() -> int:
    """`trainyard migrate`."""
    settings = load_settings()
    upgrade(settings)
    print(f"database at {_redacted(settings.database_url)} is up to date", file=sys.stderr)
    return 0


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
