"""Database layer: SQLAlchemy models, engines and sessions, Alembic migrations."""
