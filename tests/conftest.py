"""Suite-wide pytest configuration: hypothesis profiles and a private compilation cache.

* ``ci`` (the default): hypothesis's usual 100 examples for property tests that do not set their
  own count; the readers' fuzzers (``tests/hostile``) run ten times that, 1,000 per reader.
* ``nightly``: ten times more of everything (``pytest --hypothesis-profile nightly``).

A test that sets ``max_examples`` itself keeps its count in both profiles; the fuzzers scale
theirs with the profile (``10 * settings.default.max_examples``, see
``tests/hostile/test_hostile_fuzz.py``).

The CLI and the batch workers switch on JAX's persistent compilation cache
(:func:`machlib._cache.enable_compilation_cache`). Each test process gets its own empty cache
folder (``MACHLIB_CACHE_DIR``, removed at the end; the Ray workers a test starts inherit it), so
the suite runs as on a fresh machine, whatever the user's ``~/.cache/machlib/xla`` holds, and
never reads programs that other processes are writing there (JAX writes its entries without a
lock or an atomic rename).
A ``MACHLIB_CACHE_DIR`` set before pytest starts is kept.

Every test process compiles with the XLA options the CLI uses (:data:`machlib._cache.XLA_CPU_FLAGS`,
added to ``$XLA_FLAGS`` before JAX's backend starts, so the subprocesses the tests start, Sphinx's
doctest build among them, inherit them): the suite is mostly compilation, and they take about a
quarter less CPU to compile the same programs (``tests/geometry``: 398 -> 304 s CPU). Before, a
worker compiled with them only when a CLI test happened to be its first computation.

Every program XLA compiles or loads keeps about three memory mappings of machine code alive in
the process, and a test worker runs hundreds of modules: by 90 % of the suite a worker held close
to the kernel's limit of 65,530 mappings (``vm.max_map_count``), and the next program it loaded
crashed it (a SIGSEGV inside ``deserialize_executable`` in three CI runs). So between test modules,
once a worker holds more than half its limit, JAX's caches are cleared, which releases them.
"""

import gc
import os
import shutil
import sys
import tempfile

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("nightly", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")  # --hypothesis-profile, applied after this file is read, overrides it


_OWN_CACHE = None


def pytest_configure(config):
    global _OWN_CACHE
    from machlib._cache import _add_xla_flags

    _add_xla_flags()  # flags the user set win; nothing on a jaxlib the flags were not checked on
    is_controller = not hasattr(config, "workerinput") and (config.getoption("numprocesses", None) or 0) != 0
    if is_controller or os.environ.get("MACHLIB_CACHE_DIR"):
        return  # xdist's controller runs no tests; a folder the user chose is kept
    _OWN_CACHE = tempfile.mkdtemp(prefix="machlib-test-xla-")
    os.environ["MACHLIB_CACHE_DIR"] = _OWN_CACHE


def pytest_unconfigure(config):
    if _OWN_CACHE is not None:
        os.environ.pop("MACHLIB_CACHE_DIR", None)
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


def _map_limit() -> int | None:
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None  # not Linux: no such limit to keep under


_MAP_LIMIT = _map_limit()


def _map_count() -> int:
    with open("/proc/self/maps", "rb") as f:
        return f.read().count(b"\n")


def pytest_runtest_teardown(item, nextitem):
    """Between modules, release compiled programs once the process holds half its mapping limit."""
    if _MAP_LIMIT is None or "jax" not in sys.modules:
        return
    if nextitem is not None and nextitem.path == item.path:
        return  # tests of one module share programs: clear only at a module's end
    if _map_count() > _MAP_LIMIT // 2:
        sys.modules["jax"].clear_caches()
        gc.collect()
