"""Persistence: tables, engine and sessions, migrations."""
