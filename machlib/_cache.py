"""machlib's cache folder: derived data that is expensive to rebuild and never changes results."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "enable_compilation_cache"]


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


def enable_compilation_cache() -> None:
    """Keep XLA's compiled programs on disk between runs (JAX's persistent compilation cache).

    The first run of a command compiles the fit, texture and rendering programs (tens of seconds
    on a laptop CPU); later runs with the same shapes load them. The cache lives in
    ``$MACHLIB_CACHE_DIR`` (default ``$XDG_CACHE_HOME/machlib/xla`` or ``~/.cache/machlib/xla``);
    ``MACHLIB_CACHE_DIR=off`` disables it. Results do not depend on it. The CLI and the batch
    workers call this; a library user may too.
    """
    where = os.environ.get("MACHLIB_CACHE_DIR")
    if where == "off":
        return
    if where:
        try:
            os.makedirs(where, exist_ok=True)
        except OSError:
            return  # an unwritable cache directory only costs time
    else:
        path = cache_dir("xla")
        if path is None:
            return
        where = str(path)
    import jax

    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
