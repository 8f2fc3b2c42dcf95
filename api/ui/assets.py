"""The dashboard's static files: its own scripts and style (package data under api/ui/static) and the plotly.js
bundle shipped inside the installed `plotly` Python package (no CDN: works offline). Files are served by name from a
fixed list, never by a client path; URLs carry a content hash so they can be cached for a year."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path

STATIC = Path(__file__).with_name("static")
TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
YEAR = 365 * 24 * 3600


@lru_cache(maxsize=1)
def plotly_path() -> Path:
    """plotly.min.js of the installed plotly package (a dependency of trainyard)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


@lru_cache(maxsize=None)
def files() -> dict[str, Path]:
    """name → path of every file the dashboard serves."""
    found = {p.name: p for p in sorted(STATIC.iterdir()) if p.suffix in TYPES}
    found["plotly.min.js"] = plotly_path()
    return found


@lru_cache(maxsize=None)
def version(name: str) -> str:
    """A short hash of the file's content: its URL changes whenever it does."""
    return hashlib.sha256(files()[name].read_bytes()).hexdigest()[:12]


@lru_cache(maxsize=None)
def content(name: str) -> bytes:
    return files()[name].read_bytes()
