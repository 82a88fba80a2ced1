"""Alembic environment: runs migrations on the URL handed over by oasst.db.migrations."""

from alembic import context
from sqlalchemy import create_engine, pool

from oasst.db import models  # noqa: F401  (registers every table)
from oasst.db.base import Base

config = context.config
url: str = config.attributes["database_url"]
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
