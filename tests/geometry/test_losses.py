"""Geometry losses: landmark projection, total variation and symmetry of a triplane."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from helpers import x64
from machlib import Camera, look_at, project
from machlib.geometry import (
    decode,
    default_template,
    landmark_loss,
    landmark_residuals,
    symmetry_loss,
    total_variation,
)


def _front_camera(size=64, dtype=None):
    dtype = dtype or jnp.result_type(float)
    return look_at(jnp.array([0.0, 0.0, 1.0], dtype), jnp.zeros(3, dtype), image_size=(size, size))


def _random_map(key, R=8, dtype=None):
    dtype = dtype or jnp.result_type(float)
    return 0.05 * jax.random.normal(key, (R, R, 3), dtype)


def _off_centre_uv(R, dtype=None):
    """Landmark UVs away from texel centres and from the clamped border."""
    dtype = dtype or jnp.result_type(float)
    j = jnp.array([[0.0, 1.0], [2.0, 5.0], [6.0, 3.0], [4.0, 4.0], [1.0, 6.0]], dtype) * (R / 8)
    f = jnp.array([[0.3, 0.6], [0.25, 0.7], [0.55, 0.45], [0.8, 0.2], [0.4, 0.35]], dtype)
    return (j + 0.5 + f) / R


# --------------------------------------------------------------------------------------------
# landmark loss


def test_landmark_loss_known_value():
    cam = _front_camera()
    flat = jnp.zeros((4, 4, 3))  # every texel at the origin → projects to (32, 32)
    uv = jnp.array([[0.5, 0.5]])
    assert float(landmark_loss(flat, cam, uv, jnp.array([[35.0, 36.0]]), delta=1e-6)) == pytest.approx(5.0, abs=1e-4)
    # pseudo-Huber: sqrt(r² + δ²) − δ
    d = 0.5
    np.testing.assert_allclose(float(landmark_loss(flat, cam, uv, jnp.array([[35.0, 36.0]]), delta=d)),
                               np.sqrt(25.0 + d * d) - d, rtol=1e-5)
    # zero residual → zero loss
    assert float(landmark_loss(flat, cam, uv, jnp.array([[32.0, 32.0]]))) == pytest.approx(0.0, abs=1e-6)
    # mean over landmarks
    uv2 = jnp.array([[0.5, 0.5], [0.2, 0.7]])
    tg = jnp.array([[35.0, 36.0], [32.0, 20.0]])
    np.testing.assert_allclose(float(landmark_loss(flat, cam, uv2, tg, delta=1e-6)), (5.0 + 12.0) / 2, rtol=1e-4)
    r = landmark_residuals(flat, cam, uv2, tg)
    np.testing.assert_allclose(np.asarray(r), [[-3.0, -4.0], [0.0, 12.0]], atol=1e-4)


def test_landmark_residuals_match_projection():
    tp = _random_map(jax.random.PRNGKey(0), 8)
    cam = _front_camera()
    uv = _off_centre_uv(8)
    targets = jnp.full((uv.shape[0], 2), 30.0)
    expected = project(decode(tp, uv), cam) - targets
    np.testing.assert_allclose(landmark_residuals(tp, cam, uv, targets), expected, atol=1e-5)


def test_landmark_loss_weights():
    tp = _random_map(jax.random.PRNGKey(1), 8)
    cam = _front_camera()
    uv = _off_centre_uv(8)
    targets = jax.random.uniform(jax.random.PRNGKey(2), (5, 2), minval=10.0, maxval=50.0)
    w = jnp.array([1.0, 0.0, 2.0, 0.5, 0.0])
    keep = np.asarray(w) > 0
    weighted = landmark_loss(tp, cam, uv, targets, weights=w)
    per = [float(landmark_loss(tp, cam, uv[k:k + 1], targets[k:k + 1])) for k in range(5)]
    np.testing.assert_allclose(float(weighted), np.sum(np.asarray(w) * per) / np.sum(np.asarray(w)), rtol=1e-5)
    # a zero weight removes a landmark, whatever its target
    moved = targets.at[1].set(1e4).at[4].set(-1e4)
    np.testing.assert_allclose(float(landmark_loss(tp, cam, uv, moved, weights=w)), float(weighted), rtol=1e-6)
    # uniform weights == no weights; weights are scale invariant
    np.testing.assert_allclose(float(landmark_loss(tp, cam, uv, targets, weights=jnp.full(5, 3.0))),
                               float(landmark_loss(tp, cam, uv, targets)), rtol=1e-6)
    np.testing.assert_allclose(float(landmark_loss(tp, cam, uv, targets, weights=10 * w)), float(weighted), rtol=1e-6)
    # subset equals dropping
    np.testing.assert_allclose(
        float(landmark_loss(tp, cam, uv[keep], targets[keep], weights=w[keep])), float(weighted), rtol=1e-6)
    # all-zero weights: finite (0), no NaN
    assert float(landmark_loss(tp, cam, uv, targets, weights=jnp.zeros(5))) == 0.0


def test_landmark_loss_errors():
    tp = jnp.zeros((4, 4, 3))
    cam = _front_camera()
    uv, tg = jnp.full((3, 2), 0.5), jnp.zeros((3, 2))
    for delta in (0.0, -1.0):
        with pytest.raises(ValueError, match="delta"):
            landmark_loss(tp, cam, uv, tg, delta=delta)
    with pytest.raises((ValueError, TypeError), match="weights|landmark_loss"):
        landmark_loss(tp, cam, uv, tg, weights=jnp.ones(4))
    with pytest.raises((ValueError, TypeError), match="landmark_residuals|targets|landmark_uv"):
        landmark_loss(tp, cam, uv, jnp.zeros((4, 2)))
    with pytest.raises((ValueError, TypeError), match="triplane|landmark_residuals"):
        landmark_loss(jnp.zeros((4, 4, 2)), cam, uv, tg)


# --------------------------------------------------------------------------------------------
# total variation


def test_total_variation_constant_is_zero():
    assert float(total_variation(jnp.full((8, 8, 3), 0.7))) == 0.0
    assert float(total_variation(jnp.full((8, 8, 3), 0.7), weights=jnp.linspace(0, 1, 64).reshape(8, 8))) == 0.0


@pytest.mark.parametrize("R", [4, 8, 16])
def test_total_variation_ramp(R):
    # u-ramp with slope a per texel: every horizontal pair contributes (a R)², vertical pairs 0
    a = 0.1
    ramp_u = jnp.broadcast_to((a * jnp.arange(R))[None, :, None], (R, R, 1))
    np.testing.assert_allclose(float(total_variation(ramp_u)), 0.5 * (a * R) ** 2, rtol=1e-5)
    # v-ramp in another channel adds the same amount
    ramp_v = jnp.broadcast_to((a * jnp.arange(R))[:, None, None], (R, R, 1))
    both = jnp.concatenate([ramp_u, ramp_v, jnp.zeros((R, R, 1))], -1)
    np.testing.assert_allclose(float(total_variation(both)), (a * R) ** 2, rtol=1e-5)
    # a smooth map's value does not depend on the resolution: slope 1 per unit of UV
    unit = jnp.broadcast_to(((jnp.arange(R) + 0.5) / R)[None, :, None], (R, R, 1))
    np.testing.assert_allclose(float(total_variation(unit)), 0.5, rtol=1e-5)


def test_total_variation_docstring_value():
    ramp = jnp.broadcast_to(jnp.linspace(0.0, 1.0, 8)[None, :, None], (8, 8, 1))
    np.testing.assert_allclose(float(total_variation(ramp)), 0.5 * (8 / 7) ** 2, rtol=1e-5)


def test_total_variation_weights():
    t = _random_map(jax.random.PRNGKey(3), 8)
    np.testing.assert_allclose(float(total_variation(t, weights=jnp.ones((8, 8)))), float(total_variation(t)),
                               rtol=1e-6)
    # weights on the left half only: equals the loss with the right half's own pairs removed
    w = jnp.zeros((8, 8)).at[:, :4].set(1.0)
    assert 0.0 < float(total_variation(t, weights=w)) < float(total_variation(t))
    # zero weights where the map changes → zero
    step = jnp.zeros((8, 8, 3)).at[:, 6:].set(1.0)
    w2 = jnp.ones((8, 8)).at[:, 5:7].set(0.0)
    assert float(total_variation(step, weights=w2)) == 0.0
    assert float(total_variation(step)) > 0.0


def test_total_variation_errors():
    with pytest.raises((ValueError, TypeError), match="weights|total_variation"):
        total_variation(jnp.zeros((8, 8, 3)), weights=jnp.ones((8, 7)))
    with pytest.raises((ValueError, TypeError), match="triplane|total_variation"):
        total_variation(jnp.zeros((8, 7, 3)))
    with pytest.raises((ValueError, TypeError), match="triplane|total_variation"):
        total_variation(jnp.zeros((8, 8)))


# --------------------------------------------------------------------------------------------
# symmetry


@pytest.fixture(scope="module")
def template_map():
    return default_template().position_map(128)


def test_symmetry_of_synthetic_symmetric_map():
    R = 8
    base = jax.random.normal(jax.random.PRNGKey(4), (R, R // 2, 3))
    mirrored = base[:, ::-1] * jnp.array([-1.0, 1.0, 1.0])
    sym = jnp.concatenate([base, mirrored], 1)
    assert float(symmetry_loss(sym)) == pytest.approx(0.0, abs=1e-12)
    # a translation along x breaks it by exactly (2 dx)²
    np.testing.assert_allclose(float(symmetry_loss(sym + jnp.array([0.1, 0.0, 0.0]))), 0.04, rtol=1e-5)
    # translations along y, z keep it
    assert float(symmetry_loss(sym + jnp.array([0.0, 0.3, -0.2]))) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.slow
def test_symmetry_loss_of_template(template_map):
    value = float(symmetry_loss(template_map))
    print(f"symmetry_loss(default template, R=128) = {value:.3e} m²")
    assert value < 1e-6  # measured 1.0e-7 m² (rms residual ~0.3 mm)
    # an asymmetric bump on the subject's left cheek (u > 0.5, face region) is detected
    R = template_map.shape[0]
    bump = jnp.zeros((R, R, 3)).at[60:70, 70:80, 2].set(0.005)
    # the bump counts at its texels and at their mirror images: 2 · 100 · (5 mm)² / R²
    increase = float(symmetry_loss(template_map + bump)) - value
    np.testing.assert_allclose(increase, 2 * 100 * 0.005**2 / R**2, rtol=0.2)
    # the mirrored bump on both sides keeps it symmetric
    both = bump + bump[:, ::-1]
    np.testing.assert_allclose(float(symmetry_loss(template_map + both)), value, rtol=1e-3, atol=1e-9)


def test_symmetry_loss_weights_and_errors():
    t = _random_map(jax.random.PRNGKey(5), 8)
    np.testing.assert_allclose(float(symmetry_loss(t, weights=jnp.ones((8, 8)))), float(symmetry_loss(t)), rtol=1e-6)
    assert float(symmetry_loss(t, weights=jnp.zeros((8, 8)))) == 0.0
    with pytest.raises((ValueError, TypeError), match="weights|symmetry_loss"):
        symmetry_loss(t, weights=jnp.ones((8, 4)))
    with pytest.raises((ValueError, TypeError), match="triplane|symmetry_loss"):
        symmetry_loss(jnp.zeros((8, 8, 2)))


# --------------------------------------------------------------------------------------------
# gradients and transformations


@pytest.mark.slow
def test_loss_grads():
    R = 8
    with x64():
        tp = _random_map(jax.random.PRNGKey(6), R, jnp.float64)
        cam = _front_camera(dtype=jnp.float64)
        uv = _off_centre_uv(R, jnp.float64)
        targets = jax.random.uniform(jax.random.PRNGKey(7), (5, 2), jnp.float64, 20.0, 44.0)
        w = jnp.array([1.0, 0.5, 2.0, 0.0, 1.0], jnp.float64)
        kw = dict(order=1, modes=["rev"], eps=1e-6, atol=1e-5, rtol=1e-5)
        check_grads(jax.jit(lambda t: landmark_loss(t, cam, uv, targets, weights=w)), (tp,), **kw)

        def wrt_translation(tr):
            c = Camera(cam.rotation, jnp.asarray(tr), cam.focal, cam.principal, image_size=cam.image_size)
            return landmark_loss(tp, c, uv, targets)

        check_grads(jax.jit(wrt_translation), (cam.translation,), **kw)
        weights = jax.random.uniform(jax.random.PRNGKey(8), (R, R), jnp.float64)
        check_grads(jax.jit(total_variation), (tp,), **kw)
        check_grads(jax.jit(lambda t: total_variation(t, weights=weights)), (tp,), **kw)
        check_grads(jax.jit(symmetry_loss), (tp,), **kw)
        check_grads(jax.jit(lambda t: symmetry_loss(t, weights=weights)), (tp,), **kw)


def test_landmark_loss_grad_finite_at_zero_residual():
    cam = _front_camera()
    flat = jnp.zeros((4, 4, 3))
    uv = jnp.array([[0.5, 0.5]])
    g = jax.grad(landmark_loss)(flat, cam, uv, jnp.array([[32.0, 32.0]]))
    assert np.all(np.isfinite(np.asarray(g)))


@pytest.mark.slow
def test_losses_jit_and_vmap():
    R, B = 8, 4
    tps = 0.05 * jax.random.normal(jax.random.PRNGKey(9), (B, R, R, 3))
    cam = _front_camera()
    uv = _off_centre_uv(R)
    targets = jax.random.uniform(jax.random.PRNGKey(10), (5, 2), minval=20.0, maxval=44.0)
    w = jnp.array([1.0, 0.5, 2.0, 0.0, 1.0])
    fns = {
        "landmark": lambda t: landmark_loss(t, cam, uv, targets, weights=w),
        "tv": total_variation,
        "sym": symmetry_loss,
    }
    for name, fn in fns.items():
        eager = np.array([float(fn(t)) for t in tps])
        jitted = np.array([float(jax.jit(fn)(t)) for t in tps])
        np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(jax.vmap(fn)(tps), eager, rtol=1e-5, atol=1e-7, err_msg=name)
    # batched targets too
    tgs = targets[None] + jnp.arange(B, dtype=jnp.float32)[:, None, None]
    eager = np.array([float(landmark_loss(t, cam, uv, g)) for t, g in zip(tps, tgs)])
    np.testing.assert_allclose(jax.vmap(lambda t, g: landmark_loss(t, cam, uv, g))(tps, tgs), eager, rtol=1e-5)
