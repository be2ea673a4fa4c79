"""``jax.jit`` for the programs a job compiles, runs once and leaves.

A cold ``machlib make`` spends most of its CPU compiling its 273 programs. For
most of its programs XLA's optimiser pays: the texture fit's levels, the Poisson solver and the
hair growth run for seconds. But some programs of the texture completion and the hair clean-up
are per-texel masks and blurs that run for tens of milliseconds, and LLVM's optimisation of their
code costs more than it saves. :func:`one_shot_jit` compiles such a program at XLA's backend
optimisation level 0 (no LLVM optimisation): it compiles in about a third of the CPU time and
runs a few tens of milliseconds slower. ``benchmarks/cold_compiles.py`` lists each program's
compile time; the choice of programs is recorded in ``docs/benchmarks.rst``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax

__all__ = ["ONE_SHOT_OPTIONS", "one_shot_jit"]

#: XLA compiler options of :func:`one_shot_jit`'s programs.
ONE_SHOT_OPTIONS = {"xla_backend_optimization_level": 0}

try:  # JAX's own test of "no transformation is tracing now"; not public, hence the fallback
    from jax._src.core import trace_state_clean as _trace_state_clean
except ImportError:  # pragma: no cover - another JAX release
    _trace_state_clean = None


def _under_trace(args, kwargs) -> bool:
    if _trace_state_clean is not None:
        return not _trace_state_clean()
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves((args, kwargs)))


def one_shot_jit(fun: Callable | None = None, /, **jit_kwargs) -> Callable:
    """``jax.jit(fun, **jit_kwargs)``, compiled with :data:`ONE_SHOT_OPTIONS` when called outside
    any transformation; usable as ``@one_shot_jit`` or ``@one_shot_jit(static_argnames=...)``.

    JAX accepts compiler options on the outermost program only, so a call under ``jit``,
    ``vmap`` or ``grad`` goes to the plain ``jax.jit(fun, **jit_kwargs)`` and is compiled as part
    of the caller's program, with the caller's options.
    """
    if fun is None:
        return functools.partial(one_shot_jit, **jit_kwargs)
    once = jax.jit(fun, compiler_options=ONE_SHOT_OPTIONS, **jit_kwargs)
    nested = jax.jit(fun, **jit_kwargs)

    @functools.wraps(fun)
    def call(*args, **kwargs):
        return (nested if _under_trace(args, kwargs) else once)(*args, **kwargs)

    call.lower = once.lower  # AOT use: the top-level program
    return call
