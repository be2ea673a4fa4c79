"""machlib's cache folder: derived data that is expensive to rebuild and never changes results."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(kind: str) -> Path | None:
    """The folder for cached data of one ``kind``, created on first use.

    ``$XDG_CACHE_HOME/machlib/<kind>`` (default ``~/.cache/machlib/<kind>``). Returns ``None``
    when the folder cannot be created: callers then rebuild what they would have cached (a
    read-only home costs time, never results).
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "machlib" / kind
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path
