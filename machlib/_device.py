"""Host data onto the device without compiling anything."""

from __future__ import annotations

import jax
import numpy as np

__all__ = ["to_device"]


def to_device(x, dtype=None) -> jax.Array:
    """``jnp.asarray(x, dtype)`` for host data (numpy arrays, lists, scalars), without compiling.

    Outside a trace, ``jnp.asarray`` of a numpy array runs a small compiled program (the
    ``stage`` / ``convert_element_type`` primitive) for every new shape and dtype: tens of
    milliseconds each, a second or more in a cold process that builds the human template and
    its fit problems. This converts on the host (numpy's cast, the same rounding as XLA's) and
    transfers with ``jax.device_put``, which compiles nothing. The dtype is canonicalised like
    ``jnp.asarray`` does (64-bit types become 32-bit ones unless x64 is enabled).

    Args:
        x: host data; a :class:`jax.Array` is converted with ``jnp.asarray`` (no transfer), and
            so is a Python ``int``/``float``/``complex`` without ``dtype`` (weakly typed, as
            ``jnp.asarray`` makes it).
        dtype: the wanted dtype (default: ``x``'s).

    Returns:
        A :class:`jax.Array` on the default device.
    """
    if isinstance(x, jax.Array):
        return jax.numpy.asarray(x, dtype)
    if dtype is None and type(x) in (int, float, complex):
        # a Python scalar: jnp.asarray's result is weakly typed (it takes the dtype of the arrays
        # it meets, e.g. float32 next to a float32 array in x64 mode); a strongly typed copy would
        # change type promotion. One tiny program per scalar type and process, not per shape.
        return jax.numpy.asarray(x)
    a = np.asarray(x) if dtype is None else np.asarray(x, dtype)
    want = jax.dtypes.canonicalize_dtype(a.dtype)
    if a.dtype != want:
        a = a.astype(want)
    return jax.device_put(a)
