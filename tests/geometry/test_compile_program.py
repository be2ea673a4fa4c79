"""geometry._fit.compile_program / compile_program_async: the shared executable cache."""

import jax.numpy as jnp
import numpy as np
import pytest

from machlib.geometry import _fit


def _double_plus(x, y):
    return 2.0 * x + y


def _bad_shapes(x, y):
    return x @ y  # (3,) @ (4,): fails when traced


def test_async_compiles_the_same_program_and_caches_it():
    x, y = jnp.arange(3.0), jnp.ones(3)
    wait = _fit.compile_program_async(_double_plus, x, y, key=("test-async",))
    compiled, seconds = wait()
    assert seconds >= 0.0
    np.testing.assert_array_equal(compiled(x, y), 2.0 * np.arange(3.0) + 1.0)
    again, s2 = _fit.compile_program(_double_plus, x, y, key=("test-async",))
    assert again is compiled and s2 == 0.0
    hit, s3 = _fit.compile_program_async(_double_plus, x, y, key=("test-async",))()
    assert hit is compiled and s3 == 0.0


def test_async_raises_tracing_errors():
    with pytest.raises(TypeError):
        _fit.compile_program_async(_bad_shapes, jnp.ones(3), jnp.ones(4))()
