"""Alembic migrations of the database schema: ``env.py`` and one file per revision in ``versions/``.

Run them through ``redreserve db upgrade`` (or models.schema); how to add one is in the
README's "Migrations" section.
"""
