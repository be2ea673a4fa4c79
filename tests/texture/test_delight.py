"""Default (SH) delighting in UV space, colour-space helpers and image metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from helpers import uv_sphere, x64
from machlib.render import linear_to_srgb, sh_directional, sh_shading, srgb_to_linear
from machlib.texture import (
    delight_sh,
    estimate_lighting,
    normal_map,
    psnr,
    ssim,
)


def test_srgb_linear_round_trip_and_gradients():
    x = jnp.linspace(0.0, 1.0, 101)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-6)
    assert float(srgb_to_linear(jnp.array(0.5))) == pytest.approx(0.21404, abs=1e-4)
    with x64():
        check_grads(srgb_to_linear, (jnp.linspace(0.01, 0.99, 7, dtype=jnp.float64),), order=1, eps=1e-6)
        check_grads(linear_to_srgb, (jnp.linspace(0.01, 0.99, 7, dtype=jnp.float64),), order=1, eps=1e-6)


def test_normal_map_of_a_sphere_is_radial():
    sphere = uv_sphere(48, 32, radius=0.1)
    n = normal_map(sphere, 32)
    np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0, atol=1e-5)
    # front of the sphere (u = 0.5, v = 0.5) faces +z
    assert n[16, 15:17, 2].min() > 0.95


def _lit_sphere_texture(albedo_rgb, coeffs, r=64):
    n = normal_map(uv_sphere(64, 48, radius=0.1), r)
    lin = srgb_to_linear(jnp.asarray(albedo_rgb, jnp.float32)) * sh_shading(jnp.asarray(n), coeffs)
    return n, np.asarray(linear_to_srgb(lin))


def test_delighting_removes_known_lighting():
    coeffs = sh_directional(jnp.array([0.6, 0.5, 0.6]), jnp.array([0.9, 0.8, 0.7]), ambient=0.35)
    albedo = np.array([0.78, 0.6, 0.5], np.float32)
    n, tex = _lit_sphere_texture(albedo, coeffs)
    weights = (n[..., 2] > 0.2).astype(np.float32)  # the camera saw the front half
    out = delight_sh(tex, n, weights, ridge=1e-4, floor=0.05)
    seen = weights > 0
    # the albedo is constant up to the unknowable global scale per channel: flat after delighting
    spread_before = np.std(tex[seen], axis=0).mean()
    spread_after = np.std(out.albedo[seen], axis=0).mean()
    assert spread_after < 0.1 * spread_before
    # the estimated shading is proportional to the true one
    true = np.asarray(sh_shading(jnp.asarray(n), coeffs))
    ratio = out.shading[seen] / true[seen]
    assert np.std(ratio, axis=0).max() < 0.02 * np.mean(ratio)
    np.testing.assert_allclose(np.sum(out.shading[seen] * 1.0, 0) / seen.sum(), 1.0, atol=1e-3)


def test_estimate_lighting_rejects_bad_shapes():
    with pytest.raises((ValueError, TypeError), match="estimate_lighting"):
        estimate_lighting(np.zeros((8, 8, 3)), np.zeros((4, 4, 3)), np.ones((8, 8)))


def test_estimate_lighting_is_differentiable():
    with x64():
        n = jnp.asarray(normal_map(uv_sphere(16, 12), 8), jnp.float64)
        tex = jax.random.uniform(jax.random.PRNGKey(0), (8, 8, 3), jnp.float64, 0.2, 0.8)
        w = jnp.ones((8, 8), jnp.float64)
        check_grads(lambda t: jnp.sum(estimate_lighting(t, n, w) ** 2), (tex,), order=1, modes=["rev"], eps=1e-6)


def test_psnr_and_ssim():
    key = jax.random.PRNGKey(0)
    a = jax.random.uniform(key, (32, 32, 3))
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-5)
    assert float(psnr(a, a + 0.1)) == pytest.approx(20.0, abs=1e-3)
    noisy = jnp.clip(a + 0.2 * jax.random.normal(jax.random.PRNGKey(1), a.shape), 0, 1)
    assert float(ssim(a, noisy)) < 0.9
    mask = np.zeros((32, 32), np.float32)
    mask[:, :16] = 1
    half = a.at[:, 16:].set(0.0)
    assert float(psnr(a, half, mask=mask)) > 100
    assert float(ssim(a, half, mask=mask)) > float(ssim(a, half))
    with pytest.raises((ValueError, TypeError), match="ssim"):
        ssim(a[:5, :5], a[:5, :5])
