"""Alembic migrations of the storage schema, applied programmatically by :class:`storage.Storage`."""
