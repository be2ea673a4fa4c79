"""machlib._device.to_device: jnp.asarray's result for host data, without compiling."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import x64

from machlib._device import to_device

CASES = [(np.arange(4.0).reshape(2, 2), None), (np.arange(3), None), (np.arange(3.0) / 3, np.float32),
         ([1, 2, 3], None), (3.5, np.float32), (np.array([True, False]), None), (np.arange(3), jnp.float32)]


@pytest.mark.parametrize("x, dtype", CASES)
def test_equals_jnp_asarray(x, dtype):
    got, want = to_device(x, dtype), jnp.asarray(x, dtype)
    assert isinstance(got, jax.Array) and got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_equals_jnp_asarray_in_x64():
    with x64():
        x = np.arange(3.0) / 3
        assert to_device(x).dtype == jnp.asarray(x).dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(to_device(x, np.float32)), np.asarray(jnp.asarray(x, jnp.float32)))


def test_compiles_nothing():
    x = np.random.default_rng(0).normal(size=(7, 13, 3))  # a shape no other test converts
    with jax.log_compiles(True):
        import logging

        seen = []

        class Catch(logging.Handler):
            def emit(self, record):
                if "Compiling" in record.getMessage():
                    seen.append(record.getMessage())

        handler = Catch()
        loggers = [logging.getLogger(n) for n in ("jax._src.interpreters.pxla", "jax._src.dispatch")]
        for lg in loggers:
            lg.addHandler(handler)
        try:
            to_device(x, np.float32)
        finally:
            for lg in loggers:
                lg.removeHandler(handler)
    assert seen == []


def test_jax_arrays_pass_through():
    a = jnp.arange(3.0)
    assert to_device(a) is a or bool((to_device(a) == a).all())
    assert to_device(a, jnp.int32).dtype == jnp.int32


@pytest.mark.parametrize("x", [3, 2.5, True, 1 + 2j])
def test_python_scalars_keep_weak_typing(x):
    got, want = to_device(x), jnp.asarray(x)
    assert got.dtype == want.dtype and got.weak_type == want.weak_type


def test_python_float_promotes_like_jnp_asarray_in_x64():
    with x64():  # weakly typed: the float32 array's dtype wins, as with jnp.asarray
        assert (jnp.ones(2, jnp.float32) * to_device(2.5)).dtype == jnp.float32
