"""Alembic driven from the application's settings (no alembic.ini to keep in step)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import SQLAlchemyError

from portal.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(database_url: str, engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.set_main_option("revision_environment", "false")
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(database_url: str, revision: str = "head", engine: Engine | None = None) -> None:
    command.upgrade(alembic_config(database_url, engine), revision)


def downgrade(database_url: str, revision: str, engine: Engine | None = None) -> None:
    command.downgrade(alembic_config(database_url, engine), revision)


def current(database_url: str) -> None:
    command.current(alembic_config(database_url))


def revision_problem(database_url: str) -> str | None:
    """Why the database cannot serve this code (unreachable, not migrated, or behind it), in
    words for the command line; None when it is at this code's revision or newer (during a
    rolling deployment the database is migrated before the code is replaced)."""
    scripts = ScriptDirectory.from_config(alembic_config(database_url))
    heads = set(scripts.get_heads())
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as error:
        return f"cannot read the database: {str(error).splitlines()[0]}"
    finally:
        engine.dispose()
    if not current:
        return "it has no tables yet: run `portal db upgrade` first"
    known = {script.revision for script in scripts.walk_revisions()}
    if current == heads or current - known:
        return None
    return (
        f"it is at revision {', '.join(sorted(current))}, this code needs "
        f"{', '.join(sorted(heads))}: run `portal db upgrade`"
    )
