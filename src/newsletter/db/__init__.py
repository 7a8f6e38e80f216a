"""The database: SQLAlchemy 2 tables, engines and sessions, Alembic migrations.

SQLite in the working directory is the default; any `postgresql+psycopg://`
URL works the same way.
"""
