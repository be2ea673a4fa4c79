"""machlib.hair.cover_ears / ear_boxes: long hair that passes beside an ear falls in front of it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import uv_sphere, x64
from jax.test_util import check_grads

from machlib.hair import HeadSDF, cover_ears, ear_boxes, head_sdf_grid, sdf_lookup

# the left ear (+x): top 2 cm, bottom -4 cm, front z 2 cm, back -2 cm, lateral extent 8.5 cm
EAR = np.array([[1.0, 0.02, -0.04, 0.02, -0.02, 0.085]])
N = 24


def _hang(x, z, *, top=0.08, bottom=-0.15, n=N):
    """A straight strand from (x, top, z) down to (x, bottom, z) with a little sideways wave."""
    y = np.linspace(top, bottom, n)
    return np.stack([x + 0.002 * np.sin(9 * y), y, np.full(n, z)], -1)


def _strands():
    return np.stack([
        _hang(0.08, 0.00),          # 0: rooted in front of the ear's middle, runs behind its front
        _hang(0.07, 0.03),          # 1: rooted in front of the ear, already in front of it and in
        _hang(0.08, -0.03),         # 2: rooted behind the ear
        _hang(-0.12, 0.025),        # 3: the other side (as 6, mirrored)
        _hang(0.01, 0.03),          # 4: the mid-plane (parting)
        _hang(0.08, 0.025, bottom=0.05),  # 5: short, ends above the ear
        _hang(0.12, 0.025),         # 6: in front, standing off 3.5 cm beside the ear
    ]).astype(np.float32)


def test_strands_beside_the_ear_pass_in_front_of_it_and_others_stay():
    s = _strands()
    got = np.asarray(cover_ears(s, EAR, clearance=0.005, ramp=0.04))
    np.testing.assert_array_equal(got[:, 0], s[:, 0])  # roots never move
    for i in (1, 2, 3, 4, 5):
        np.testing.assert_allclose(got[i], s[i], atol=1e-7, err_msg=f"strand {i}")
    band = (s[0, :, 1] <= 0.02) & (s[0, :, 1] >= -0.04)
    # strand 0's root sits at z = 0, the ear's middle: half-way up the fade, S(0) = 0 -> nothing
    np.testing.assert_allclose(got[0], s[0], atol=1e-7)
    # rooted at the ear's front (z = 0.025 > front): the full move, to 5 mm in front of it
    assert (got[6, band, 2] >= 0.025 - 1e-6).all()
    assert (got[6, band, 0] <= 0.085 - 0.01 + 1e-6).all()  # and in onto the side of the face
    # above the ramp nothing moves; below the ear the offset holds (the strand's shape is kept)
    high = s[6, :, 1] >= 0.02 + 0.04
    np.testing.assert_allclose(got[6, high], s[6, high], atol=1e-7)
    low = s[6, :, 1] < -0.04
    np.testing.assert_allclose(np.diff(got[6, low], axis=0), np.diff(s[6, low], axis=0), atol=1e-6)
    # the move grows monotonically down the ramp
    move = np.linalg.norm(got[6] - s[6], axis=1)
    assert (np.diff(move) >= -1e-7).all()


def test_the_move_fades_with_the_root_depth():
    # roots from the ear's middle (z = 0) to its front (0.02): the forward move at the ear grows
    zs = np.linspace(0.0, 0.02, 5)
    s = np.stack([_hang(0.08, z) for z in zs]).astype(np.float32)
    got = np.asarray(cover_ears(s, EAR, clearance=0.005))
    at = np.argmin(np.abs(s[0, :, 1] + 0.01))
    closed = (got[:, at, 2] - s[:, at, 2]) / (0.025 - s[:, at, 2])  # share of the shortfall to front + 5 mm
    np.testing.assert_allclose(closed[[0, -1]], [0.0, 1.0], atol=1e-4)  # none at the middle, all at the front
    assert (np.diff(closed) > 0).all() and (np.diff(got[:, at, 2]) > 0).all()  # the strands stay in order


def test_no_ears_and_empty_input():
    s = _strands()
    np.testing.assert_array_equal(np.asarray(cover_ears(s, np.zeros((0, 6)))), s)
    assert cover_ears(np.zeros((0, 4, 3)), EAR).shape == (0, 4, 3)
    # the right ear (side -1) moves strand 3 only
    right = EAR * np.array([[-1.0, 1, 1, 1, 1, 1]])
    got = np.asarray(cover_ears(s, right))
    moved = np.abs(got - s).max(axis=(1, 2)) > 1e-6
    assert moved.tolist() == [False, False, False, True, False, False, False]


def test_pushed_out_of_the_head():
    head = head_sdf_grid(uv_sphere(48, 32, radius=0.09), spacing=0.005, margin=0.05)
    # an ear inside the sphere's side: pulled in to x <= 0.065 the strand would enter the head
    ear = np.array([[1.0, 0.02, -0.04, 0.02, -0.02, 0.06]])
    s = _hang(0.1, 0.03, top=0.12)[None].astype(np.float32)
    free = np.asarray(cover_ears(s, ear, clearance=0.005))
    assert np.asarray(sdf_lookup(head, free[0])).min() < -0.005
    got = np.asarray(cover_ears(s, ear, clearance=0.005, sdf=head))
    d = np.asarray(sdf_lookup(head, got[0]))
    assert d.min() > 0.0
    np.testing.assert_array_equal(got[0, 0], s[0, 0])


def test_jit_equals_eager_and_vmap_equals_loop():
    s = _strands()
    eager = np.asarray(cover_ears(s, EAR))
    np.testing.assert_allclose(np.asarray(jax.jit(lambda p: cover_ears(p, EAR))(s)), eager, atol=1e-6)
    batch = np.stack([s, s[::-1] + np.float32(0.002)])
    got = np.asarray(jax.vmap(lambda p: cover_ears(p, EAR))(batch))
    for i in range(2):
        np.testing.assert_allclose(got[i], np.asarray(cover_ears(batch[i], EAR)), atol=1e-6)


def test_gradient_matches_finite_differences():
    head = head_sdf_grid(uv_sphere(32, 24, radius=0.07), spacing=0.005, margin=0.05)
    with x64():
        sdf64 = HeadSDF(jnp.asarray(head.values, jnp.float64), jnp.asarray(head.origin, jnp.float64), head.spacing)
        s = jnp.asarray(np.stack([_hang(0.1, 0.015, n=10), _hang(0.09, 0.01, n=10)]), jnp.float64)
        s = s + jnp.asarray(np.random.default_rng(0).normal(0, 1e-3, s.shape))  # off ties and cell faces
        ear = jnp.asarray(EAR, jnp.float64)
        check_grads(lambda p: cover_ears(p, ear, clearance=0.005), (s,), order=1, modes=["fwd", "rev"], eps=1e-6)
        check_grads(lambda p: cover_ears(p, ear, clearance=0.005, sdf=sdf64), (s,), order=1, modes=["fwd", "rev"],
                    eps=1e-6)
        check_grads(lambda c: cover_ears(s, ear, clearance=c), (jnp.float64(0.005),), order=1, modes=["fwd", "rev"],
                    eps=1e-6)


def test_bad_inputs_raise():
    s = _strands()
    for kw, what in ((dict(clearance=-0.1), "clearance"), (dict(clearance=np.nan), "clearance"),
                     (dict(ramp=0.0), "ramp"), (dict(root_ramp=True), "root_ramp"), (dict(sdf=np.zeros(3)), "sdf")):
        with pytest.raises((ValueError, TypeError), match=f"(?s)cover_ears.*{what}"):
            cover_ears(s, EAR, **kw)
    with pytest.raises((ValueError, TypeError), match="(?s)cover_ears.*points"):
        cover_ears(s[:, :1], EAR)
    with pytest.raises((ValueError, TypeError), match="(?s)cover_ears.*ears"):
        cover_ears(s, EAR[:, :5])


def test_ear_boxes_and_which_ears_the_hair_covers():
    from machlib._preview import orbit_camera
    from machlib.geometry import default_template
    from machlib.hair._ears import _ears_under_hair

    t = default_template()
    boxes = ear_boxes(t.mesh, t)
    assert boxes.shape == (2, 6)
    side, top, bottom, front, back, outer = boxes.T
    assert side.tolist() == [-1.0, 1.0]
    assert (top > bottom + 0.04).all() and (front > back + 0.03).all() and (outer > 0.06).all()
    # seen from the subject's left, the left ear shows: covered where the mask is hair, and the
    # right one, which the head hides, is worn as the left one is
    cam = orbit_camera(60.0, image_size=(192, 192))
    covered = _ears_under_hair(t.mesh, t, cam, np.ones((192, 192)))
    assert covered[:, 0].tolist() == [-1.0, 1.0]
    # from the front both ears show; hair over the left one only covers the left one
    front = orbit_camera(0.0, image_size=(192, 192))
    left_half = np.zeros((192, 192))
    left_half[:, 96:] = 1.0  # the subject's left is the image's right
    assert _ears_under_hair(t.mesh, t, front, left_half)[:, 0].tolist() == [1.0]
    assert _ears_under_hair(t.mesh, t, cam, np.zeros((192, 192))).shape == (0, 6)
