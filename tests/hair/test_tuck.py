"""machlib.hair.tuck_tips: a short cut's ends turn under, towards the head."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import uv_sphere, x64
from jax.test_util import check_grads

from machlib.hair import HeadSDF, head_sdf_grid, sdf_lookup, tuck_tips

R = 0.09  # the "head": a sphere of 9 cm at the origin


@pytest.fixture(scope="module")
def head():
    return head_sdf_grid(uv_sphere(48, 32, radius=R), spacing=0.005, margin=0.05)


def _splayed(n=12, length=0.1, out=0.03):
    """Strands rooted on the sphere's lower back half, hanging down and splaying outwards."""
    ang = np.linspace(-1.2, 1.2, 5)
    roots = np.stack([R * np.sin(ang), np.full(5, 0.02), -R * np.cos(ang)], 1) * 1.01
    s = np.linspace(0.0, 1.0, n)[:, None]
    outward = np.stack([np.sin(ang), np.zeros(5), -np.cos(ang)], 1)
    return (roots[:, None] + s * length * np.array([0.0, -1.0, 0.0]) + (s**2) * out * outward[:, None]).astype(np.float32)


def test_tips_move_in_roots_stay_and_the_bend_is_smooth(head):
    hang = _splayed()
    d0 = np.asarray(sdf_lookup(head, hang[:, -1]))
    got = np.asarray(tuck_tips(hang, head, amount=0.6, clearance=0.003))
    d1 = np.asarray(sdf_lookup(head, got[:, -1]))
    np.testing.assert_array_equal(got[:, 0], hang[:, 0])
    # the tip is 60 % of its way (beyond the clearance) closer, to the grid's accuracy
    np.testing.assert_allclose(d1 - 0.003, 0.4 * (d0 - 0.003), atol=2e-3)
    assert (d1 < d0 - 0.005).all()
    # the first 60 % of the points do not move; afterwards the move grows monotonically
    move = np.linalg.norm(got - hang, axis=2)
    first = int(np.floor(0.6 * (hang.shape[1] - 1)))
    assert move[:, : first + 1].max() < 1e-7
    assert (np.diff(move[:, first:], axis=1) >= -1e-7).all()
    # the tip now points in, not out: its last segment's outward part shrank
    out_dir = hang[:, -1] / np.linalg.norm(hang[:, -1], axis=1, keepdims=True)
    seg0, seg1 = hang[:, -1] - hang[:, -2], got[:, -1] - got[:, -2]
    assert ((seg1 * out_dir).sum(1) < (seg0 * out_dir).sum(1)).all()


def test_amount_zero_short_strands_and_close_tips(head):
    hang = _splayed()
    np.testing.assert_allclose(np.asarray(tuck_tips(hang, head, amount=0.0)), hang, atol=1e-7)
    # a strand of half the full length bends half as far
    full = np.asarray(tuck_tips(hang, head, full_length=0.05))
    half = np.asarray(tuck_tips(hang, head, full_length=0.2))
    ratio = np.linalg.norm(half[:, -1] - hang[:, -1], axis=1) / np.linalg.norm(full[:, -1] - hang[:, -1], axis=1)
    length = np.linalg.norm(np.diff(hang, axis=1), axis=2).sum(1)
    np.testing.assert_allclose(ratio, length / 0.2, rtol=1e-4)
    # tips already within the clearance stay
    np.testing.assert_allclose(np.asarray(tuck_tips(hang, head, clearance=0.2)), hang, atol=1e-7)


def test_jit_equals_eager_and_vmap_equals_loop(head):
    hang = _splayed()
    eager = np.asarray(tuck_tips(hang, head))
    np.testing.assert_allclose(np.asarray(jax.jit(lambda p: tuck_tips(p, head))(hang)), eager, atol=1e-6)
    batch = np.stack([hang, hang[::-1] * 1.02])
    got = np.asarray(jax.vmap(lambda p: tuck_tips(p, head))(batch))
    for i in range(2):
        np.testing.assert_allclose(got[i], np.asarray(tuck_tips(batch[i], head)), atol=1e-6)


def test_gradient_matches_finite_differences(head):
    with x64():
        sdf64 = HeadSDF(jnp.asarray(head.values, jnp.float64), jnp.asarray(head.origin, jnp.float64), head.spacing)
        hang = jnp.asarray(_splayed(n=6)[:2], jnp.float64)
        hang = hang + jnp.asarray(np.random.default_rng(0).normal(0, 1e-3, hang.shape))  # off the cell faces
        check_grads(lambda p: tuck_tips(p, sdf64, clearance=0.003), (hang,), order=1, modes=["fwd", "rev"], eps=1e-6)
        check_grads(lambda a, c: tuck_tips(hang, sdf64, amount=a, clearance=c),
                    (jnp.float64(0.6), jnp.float64(0.003)), order=1, modes=["fwd", "rev"], eps=1e-6)


def test_bad_inputs_raise(head):
    hang = _splayed()
    for kw, what in ((dict(amount=1.5), "amount"), (dict(amount=np.nan), "amount"), (dict(clearance=-0.1), "clearance"),
                     (dict(extent=0.0), "extent"), (dict(extent=True), "extent"), (dict(full_length=0.0), "full_length")):
        with pytest.raises((ValueError, TypeError), match=f"(?s)tuck_tips.*{what}"):
            tuck_tips(hang, head, **kw)
    with pytest.raises((ValueError, TypeError), match="(?s)tuck_tips.*points"):
        tuck_tips(hang[:, :1], head)
    with pytest.raises((ValueError, TypeError), match="(?s)tuck_tips.*sdf"):
        tuck_tips(hang, np.zeros((4, 4, 4)))
    assert tuck_tips(np.zeros((0, 4, 3)), head).shape == (0, 4, 3)
