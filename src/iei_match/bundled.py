"""The public catalogs shipped with the package (see data/README.md for sources and licences)."""

from __future__ import annotations

from pathlib import Path

from .errors import ModelNotFoundError

__all__ = ["CATALOGS", "catalog_dir"]

CATALOGS = ("cn-vocational", "us-onet-cip")
_HERE = Path(__file__).resolve().parent


def catalog_dir(name: str) -> Path:
    """Directory holding ``needs.csv``, ``programs.csv`` and ``links.csv`` of a bundled catalog.

    Looks inside the installed package first, then in the source checkout's ``data/catalogs``.
    """
    if name not in CATALOGS:
        raise ModelNotFoundError(f"no bundled catalog {name!r}; there are {list(CATALOGS)}")
    for base in (_HERE / "catalogs", _HERE.parents[1] / "data" / "catalogs"):
        if (base / name / "programs.csv").is_file():
            return base / name
    raise ModelNotFoundError(f"the bundled catalog {name!r} is missing from this installation")

