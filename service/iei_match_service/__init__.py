"""iei-match service: the alliance's REST API, database, jobs and command line.

The matching itself lives in the engine package :mod:`iei_match`; this package stores
organisations, needs, programs, training bases and partnership outcomes, controls who
sees what, and serves the engine's rankings over HTTP.
"""

__all__ = ["create_app"]


def __getattr__(name):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
