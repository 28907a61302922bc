"""Alembic driven from the application's settings (no alembic.ini to keep in step)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

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
