"""CIELAB conversions, ITA and skin colours (texture/_skin.py): round trips, jit, vmap, grads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import x64
from jax.test_util import check_grads

from machlib.texture import ita_of, lab_to_srgb, shift_to_ita, skin_color, srgb_to_lab


def _colours(n=6, seed=0):
    return 0.15 + 0.7 * jax.random.uniform(jax.random.PRNGKey(seed), (n, 3))


def test_lab_round_trip_and_ita_of_skin_color():
    rgb = _colours()
    np.testing.assert_allclose(lab_to_srgb(srgb_to_lab(rgb)), rgb, atol=1e-4)
    for ita in (-40.0, 10.0, 55.0):
        assert float(ita_of(skin_color(ita))) == pytest.approx(ita, abs=0.5)


def test_skin_functions_jit_and_vmap_match_eager():
    rgb = _colours(8).reshape(2, 4, 3)
    for f in (srgb_to_lab, lab_to_srgb, ita_of):
        x = rgb if f is not lab_to_srgb else srgb_to_lab(rgb)
        np.testing.assert_allclose(jax.jit(f)(x), f(x), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(jax.vmap(f)(x), jnp.stack([f(x[0]), f(x[1])]), rtol=1e-5, atol=1e-5)
    itas = jnp.array([-20.0, 30.0])
    np.testing.assert_allclose(jax.vmap(skin_color)(itas), skin_color(itas), atol=1e-6)
    skin = jnp.clip(skin_color(jnp.array([[5.0], [35.0]])) + 0.03 * _colours(8).reshape(2, 4, 3), 0, 1)
    shifted = jax.jit(jax.vmap(lambda x, a: shift_to_ita(x, a)))(skin, itas)
    for i in range(2):
        np.testing.assert_allclose(shifted[i], shift_to_ita(skin[i], itas[i]), atol=1e-5)
        mean = np.asarray(srgb_to_lab(shifted[i])).mean(0)
        assert np.degrees(np.arctan2(mean[0] - 50.0, mean[2])) == pytest.approx(float(itas[i]), abs=1.0)


@pytest.mark.slow
def test_skin_functions_float64_gradients():
    with x64():
        rgb = _colours(4).astype(jnp.float64)
        for f in (srgb_to_lab, lambda x: lab_to_srgb(srgb_to_lab(x) * 0.9), ita_of,
                  lambda x: shift_to_ita(x, 25.0)):
            check_grads(f, (rgb,), order=1, modes=["fwd", "rev"], eps=1e-6, atol=1e-4, rtol=1e-4)
        check_grads(skin_color, (jnp.array([12.0, 40.0], jnp.float64),), order=1, modes=["fwd", "rev"],
                    eps=1e-5, atol=1e-4, rtol=1e-4)
