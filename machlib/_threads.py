"""Threads in machlib: one BLAS thread for its numpy work, and work started in the background.

machlib's numpy code (the preview renderer, mesh and strand bookkeeping) calls BLAS on small
matrices: ``(N, 3) @ (3, 3)`` rotations, ``(N, 9) @ (9, 3)`` spherical-harmonics shading. With
OpenBLAS's default of one thread per core, every such call wakes the other threads, which then
spin waiting for work: on 2 cores that spinning took about 40 % of the previews' CPU time
(11.3 → 7.1 s CPU for one character's previews and input view, ``benchmarks/make.py`` records the
whole job) and competed with the previews' own two render threads and with XLA's. Inside
:func:`serial_blas` BLAS runs on the calling thread only; the setting is restored on exit, so a
caller's own BLAS work keeps its threads.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

__all__ = ["in_background", "serial_blas", "with_serial_blas"]

F = TypeVar("F", bound=Callable)

_LOCK = threading.Lock()
_DEPTH = 0  # nested serial_blas blocks on the main thread: only the outermost one sets and restores
_LIMITER = None


@contextlib.contextmanager
def serial_blas() -> Iterator[None]:
    """Run the block with numpy's BLAS limited to one thread (restored afterwards).

    The limit is process-wide, and only the main thread sets and lifts it: OpenBLAS (0.3.31)
    ignores a change of its thread count made on another thread once the main thread has made
    one. On other threads the block changes nothing, and BLAS calls there run under whatever
    limit the main thread holds (the previews render on two worker threads inside the main
    thread's block). Nested blocks share the outermost one's limit. Without ``threadpoolctl`` it
    does nothing.
    """
    global _DEPTH, _LIMITER
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with _LOCK:
        if _DEPTH == 0:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:  # pragma: no cover - a declared dependency
                _LIMITER = None
            else:
                _LIMITER = threadpool_limits(limits=1, user_api="blas")
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0 and _LIMITER is not None:
                _LIMITER.restore_original_limits()
                _LIMITER = None


def with_serial_blas(fn: F) -> F:
    """Decorator: call ``fn`` inside :func:`serial_blas`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with serial_blas():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def in_background(fn: Callable, *, name: str = "machlib-background") -> Callable:
    """Start ``fn()`` on a daemon thread; returns ``wait(raise_error=True)``, which waits for it
    and returns its result (or raises its error in the caller's thread; with
    ``raise_error=False`` returns ``None`` instead).

    Used where a stage's independent work overlaps another's: XLA's compilations and programs
    and numpy's large array operations release the GIL, so on two cores both progress. The
    thread is a daemon: an interrupted command (Ctrl-C) exits without waiting for it. A caller
    that leaves on an error should still ``wait(raise_error=False)``, so that no work is left
    running behind it.

    Example:
        >>> from machlib._threads import in_background
        >>> wait = in_background(lambda: sum(range(10)))
        >>> wait()
        45
    """
    box: dict = {}

    def work():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 (re-raised in the caller's thread)
            box["error"] = e

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()

    def wait(raise_error: bool = True):
        thread.join()
        if "error" in box and raise_error:
            raise box["error"]
        return box.get("value")

    return wait
