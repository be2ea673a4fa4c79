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


#: XLA flags :func:`enable_compilation_cache` adds to ``$XLA_FLAGS`` before JAX starts its
#: backend:
#:
#: * XLA's classic CPU fusion emitters instead of the MLIR ones, which compile machlib's many
#:   small programs in about 60 % of the time (a cold ``machlib fit``: the stage-1 program
#:   5.2 -> 3.0 s CPU). Results equal the MLIR emitters' up to the last bit of some
#:   transcendental functions (a fitted head's vertices move by at most 8 µm). The fits' own
#:   programs use the same option (:data:`machlib.geometry._fit.COMPILER_OPTIONS`) whoever calls
#:   them.
#: * Backend optimisation level 2 instead of XLA's default 3: LLVM's most expensive loop passes
#:   off. A cold ``machlib make`` compiles 273 programs, and level 2 takes about a quarter less
#:   CPU to compile them (the template albedo's painter: 6.5 -> 4.5 s CPU) while they run as fast
#:   (the warm job's programs: 9.3 s at level 3, 8.1 s at level 2; ``benchmarks/cold_compiles.py``
#:   and the make benchmark measure both). Results change in the last bits of float32 arithmetic
#:   (the template albedo: at most 5e-7). The fits' own programs state level 3
#:   (:data:`machlib.geometry._fit.COMPILER_OPTIONS`), so a fit is the same whoever runs it.
XLA_CPU_FLAGS = ("--xla_cpu_use_fusion_emitters=false", "--xla_backend_optimization_level=2")

#: jaxlib releases on which :data:`XLA_CPU_FLAGS` were checked. XLA aborts the whole process on a
#: flag it does not know, and it is retiring its classic CPU emitters, so on any other release the
#: flags are left out: programs then compile more slowly, with the same results.
FLAGS_CHECKED_ON = ("0.10.",)


def classic_emitters_known() -> bool:
    """Whether the installed jaxlib is one on which :data:`XLA_CPU_FLAGS` were checked."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("jaxlib").startswith(FLAGS_CHECKED_ON)
    except PackageNotFoundError:
        return False


def _add_xla_flags() -> None:
    """Append :data:`XLA_CPU_FLAGS` to ``$XLA_FLAGS`` (flags the user set win; XLA reads the
    variable once, when JAX's backend starts, so this only acts before the first computation).
    Nothing is added on a jaxlib the flags were not checked on (:data:`FLAGS_CHECKED_ON`)."""
    if not classic_emitters_known():
        return
    current = os.environ.get("XLA_FLAGS", "")
    add = [f for f in XLA_CPU_FLAGS if f.split("=")[0] not in current]
    if add:
        os.environ["XLA_FLAGS"] = " ".join([current, *add]).strip()


def enable_compilation_cache() -> None:
    """Keep XLA's compiled programs on disk between runs (JAX's persistent compilation cache),
    and compile with the faster CPU emitters (:data:`XLA_CPU_FLAGS`).

    The first run of a command compiles the fit, texture and rendering programs (tens of seconds
    on a laptop CPU); later runs with the same shapes load them. The cache lives in
    ``$MACHLIB_CACHE_DIR`` (default ``$XDG_CACHE_HOME/machlib/xla`` or ``~/.cache/machlib/xla``);
    ``MACHLIB_CACHE_DIR=off`` disables it. Results do not depend on the cache. The CLI and the
    batch workers call this before their first computation; a library user may too.
    """
    _add_xla_flags()
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
