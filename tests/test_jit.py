"""machlib._jit.one_shot_jit: the one-shot optimisation level at the top, plain jit when nested."""

import jax
import jax.numpy as jnp
import numpy as np

from machlib import _jit


def _f(x, *, k):
    return jnp.sin(x) * k + jnp.cumsum(x)


def test_top_level_calls_compile_with_the_one_shot_options_and_nested_calls_without(monkeypatch):
    seen = []
    real = jax.jit

    def spy(fun, **kw):
        compiled = real(fun, **kw)

        def call(*a, **k):
            seen.append(kw.get("compiler_options"))
            return compiled(*a, **k)

        call.lower = compiled.lower
        return call

    monkeypatch.setattr(_jit.jax, "jit", spy)
    f = _jit.one_shot_jit(static_argnames=("k",))(_f)
    x = jnp.linspace(0.0, 1.0, 7)
    top = f(x, k=2.0)
    assert seen == [_jit.ONE_SHOT_OPTIONS]
    nested = real(lambda y: f(y, k=2.0))(x)  # JAX refuses compiler options on a nested jit
    assert seen[-1] is None
    np.testing.assert_allclose(top, nested, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(top, _f(x, k=2.0), rtol=1e-6, atol=1e-6)


def test_grad_vmap_and_lower_work_through_it():
    f = _jit.one_shot_jit(lambda x: _f(x, k=3.0))
    x = jnp.linspace(0.0, 1.0, 5)
    g = jax.grad(lambda y: f(y).sum())(x)
    np.testing.assert_allclose(g, 3.0 * jnp.cos(x) + jnp.arange(5, 0, -1), rtol=1e-5)
    batch = jnp.stack([x, 2 * x])
    np.testing.assert_allclose(jax.vmap(f)(batch), jnp.stack([f(x), f(2 * x)]), rtol=1e-6, atol=1e-6)
    assert "sine" in f.lower(x).as_text()
