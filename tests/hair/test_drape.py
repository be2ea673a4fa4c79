"""machlib.hair.drape_strands / body_sdf: long hair rests on the body instead of entering it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import uv_sphere, x64
from jax.test_util import check_grads

from machlib import Mesh
from machlib.hair import HeadSDF, body_sdf, drape_strands, sdf_lookup

R = 0.1  # the "shoulder": a sphere of 10 cm at the origin


@pytest.fixture(scope="module")
def ball():
    return body_sdf([uv_sphere(48, 32, radius=R)], spacing=0.01, margin=0.05)


def _hanging(xz, *, top=0.15, n=16, step=0.02):
    """Straight strands hanging down from y = top at the given (x, z)."""
    xz = np.asarray(xz, np.float64)
    y = top - step * np.arange(n)
    return np.stack([np.broadcast_to(xz[:, :1], (len(xz), n)), np.broadcast_to(y, (len(xz), n)),
                     np.broadcast_to(xz[:, 1:], (len(xz), n))], -1).astype(np.float32)


def _segments(p):
    return np.linalg.norm(np.diff(np.asarray(p, np.float64), axis=1), axis=2)


def test_strands_slide_over_the_body_keep_roots_and_lengths(ball):
    hang = _hanging([[0.0, 0.03], [0.04, -0.05], [-0.06, 0.02], [0.3, 0.0]])  # the last one misses the ball
    d_before = np.asarray(sdf_lookup(ball, hang.reshape(-1, 3)))
    assert d_before.min() < -0.04  # straight down through the ball
    out = np.asarray(drape_strands(hang, ball, clearance=0.003, centre=np.zeros(3)))
    d = np.asarray(sdf_lookup(ball, out.reshape(-1, 3)))
    assert d.min() > 0.003 - 5e-4  # nowhere inside, nor closer than the clearance (the grid's accuracy)
    np.testing.assert_array_equal(out[:, 0], hang[:, 0])
    np.testing.assert_allclose(_segments(out), _segments(hang), atol=1e-6)
    np.testing.assert_array_equal(out[3], hang[3])  # never near the body: untouched
    # past the ball the strands hang down again, below its equator
    assert (out[:3, -1, 1] < -0.05).all()


def test_front_hair_falls_forward_back_hair_back(ball):
    """On the level top of the body the tie-break is front / back about the axis through centre."""
    hang = _hanging([[0.0, 0.01], [0.0, -0.01]], n=20)
    out = np.asarray(drape_strands(hang, ball, centre=np.zeros(3)))
    assert out[0, -1, 2] > R and out[1, -1, 2] < -R
    # the axis moved behind both strands: both fall forward
    behind = np.asarray(drape_strands(hang, ball, centre=np.array([0.0, 0.0, -0.03])))
    assert (behind[:, -1, 2] > R).all()
    # stiffness: a stiffer strand keeps more of its deflection below the ball, so it ends further out
    soft = np.asarray(drape_strands(hang[:1], ball, centre=np.zeros(3), stiffness=0.0))
    stiff = np.asarray(drape_strands(hang[:1], ball, centre=np.zeros(3), stiffness=0.9))
    assert stiff[0, -1, 2] > soft[0, -1, 2]


def test_jit_equals_eager_and_vmap_equals_loop(ball):
    hang = _hanging([[0.0, 0.03], [0.05, -0.02], [-0.02, 0.0]], n=8)
    ref = np.asarray(drape_strands(hang, ball, centre=np.zeros(3)))
    jitted = jax.jit(lambda p, c: drape_strands(p, ball, centre=np.zeros(3), clearance=c))(hang, 0.003)
    np.testing.assert_allclose(np.asarray(jitted), ref, atol=1e-6)
    batch = np.stack([hang, hang[::-1] + np.float32(0.01)])
    got = np.asarray(jax.vmap(lambda p: drape_strands(p, ball, centre=np.zeros(3)))(batch))
    for b in range(2):
        np.testing.assert_allclose(got[b], np.asarray(drape_strands(batch[b], ball, centre=np.zeros(3))),
                                   atol=1e-6)
    # every strand is draped on its own: one at a time gives the same
    for i in range(3):
        np.testing.assert_allclose(np.asarray(drape_strands(hang[i:i + 1], ball, centre=np.zeros(3)))[0], ref[i],
                                   atol=1e-6)


def test_gradient_matches_finite_differences(ball):
    with x64():
        sdf64 = HeadSDF(jnp.asarray(ball.values, jnp.float64), jnp.asarray(ball.origin, jnp.float64), ball.spacing)
        # off the grid's cell faces and off the contact switch (the tips of these short strands touch)
        hang = jnp.asarray(_hanging([[0.013, 0.041], [-0.027, -0.033]], top=0.133, n=5, step=0.011), jnp.float64)
        hang = hang + jnp.asarray(np.random.default_rng(0).normal(0, 1e-3, hang.shape))
        out = drape_strands(hang, sdf64, centre=jnp.zeros(3), clearance=0.003)
        assert float(jnp.abs(out - hang).max()) > 1e-3  # the configuration has a contact
        check_grads(lambda p: drape_strands(p, sdf64, centre=jnp.zeros(3), clearance=0.003), (hang,), order=1,
                    modes=["rev"], eps=1e-6)
        check_grads(lambda c: drape_strands(hang, sdf64, centre=jnp.zeros(3), clearance=c), (jnp.float64(0.003),),
                    order=1, modes=["rev"], eps=1e-6)


def test_body_sdf_is_the_union_and_crops_below():
    low = uv_sphere(24, 16, radius=0.05)
    low = Mesh(np.asarray(low.vertices) + [0.0, -0.2, 0.0], low.faces, low.uv, low.faces_uv)
    high = uv_sphere(24, 16, radius=0.05)
    both = body_sdf([high, low], spacing=0.01)
    d = np.asarray(sdf_lookup(both, np.array([[0.0, 0.0, 0.0], [0.0, -0.2, 0.0], [0.0, -0.1, 0.0]])))
    assert d[0] < -0.02 and d[1] < -0.02 and d[2] > 0.02  # the far field is approximate
    top = body_sdf([high, low], above=-0.1, spacing=0.01)  # the low ball is left out
    d = np.asarray(sdf_lookup(top, np.array([[0.0, 0.0, 0.0], [0.0, -0.2, 0.0]])))
    assert d[0] < -0.02 and d[1] > 0.1
    # a half-ball cut at y = 0 is capped: its inside stays inside
    half = body_sdf([high], above=0.0, spacing=0.01)
    assert float(sdf_lookup(half, np.array([[0.0, 0.02, 0.0]]))[0]) < -0.01


def test_bad_inputs_raise(ball):
    hang = _hanging([[0.0, 0.0]], n=4)
    for kw, what in ((dict(stiffness=1.0), "stiffness"), (dict(clearance=-0.1), "clearance"),
                     (dict(spread=np.nan), "spread"), (dict(iterations=0), "iterations"),
                     (dict(centre=np.zeros(2)), "centre")):
        with pytest.raises((ValueError, TypeError), match=f"(?s)drape_strands.*{what}"):
            drape_strands(hang, ball, **kw)
    with pytest.raises((ValueError, TypeError), match="(?s)drape_strands.*points"):
        drape_strands(hang[:, :1], ball)
    with pytest.raises((ValueError, TypeError), match="(?s)drape_strands.*sdf"):
        drape_strands(hang, np.zeros((4, 4, 4)))
    assert drape_strands(np.zeros((0, 4, 3)), ball).shape == (0, 4, 3)
    with pytest.raises((ValueError, TypeError), match="body_sdf.*empty"):
        body_sdf([])
    with pytest.raises((ValueError, TypeError), match="body_sdf.*no face"):
        body_sdf([uv_sphere(8, 6, radius=0.05)], above=1.0)
    with pytest.raises((ValueError, TypeError), match="(?s)body_sdf.*Mesh"):
        body_sdf([np.zeros((3, 3))])
