"""Volumetric hair: voxelising strands, trilinear lookup (grads, jit == eager, vmap == loop), lifting
a 2D mask and orientation map (carving behind/in front of the head, lifted orientation), growth
through a style prior, and bad inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import x64
from jax.test_util import check_grads

from machlib import project
from machlib._preview import orbit_camera
from machlib.geometry import procedural_template
from machlib.hair import (
    HAIR_STYLES,
    HairVolume,
    grow_from_volume,
    lift_hair,
    scalp_roots,
    sdf_lookup,
    strands_to_volume,
    style_volume,
    volume_lookup,
)


@pytest.fixture(scope="module")
def template():
    return procedural_template()  # checked against the procedural head's analytic SDF


@pytest.fixture(scope="module")
def head_sdf_field(template):
    from machlib.hair._styles import _cached_sdf

    return _cached_sdf(template.mesh)  # shared with grow_style and the doctests of this session


@pytest.fixture(scope="module")
def bob(template, head_sdf_field):
    return style_volume(jax.random.key(0), HAIR_STYLES["bob"], template, n_strands=400, n_points=16, spacing=0.01)


def _line(n=11):
    return jnp.stack([jnp.zeros(n), jnp.linspace(0.0, -0.1, n), jnp.zeros(n)], 1)[None]


# --- voxelisation and lookup -----------------------------------------------------------------


def test_straight_strand_voxelises_along_itself():
    v = strands_to_volume(_line(), spacing=0.01, bounds=((-0.05, -0.15, -0.05), (0.05, 0.05, 0.05)))
    assert isinstance(v, HairVolume) and v.shape == (11, 21, 11)
    occ, ori = np.asarray(v.occupancy), np.asarray(v.orientation)
    along = occ[5, 6:15, 5]  # y = -0.09 … -0.01, away from the ends
    assert along.min() > 0.99
    assert occ[0, :, 0].max() < 1e-3 and occ[:, 0, :].max() < 1e-3  # far from the strand: empty
    np.testing.assert_allclose(ori[5, 6:15, 5], np.tile([0.0, -1.0, 0.0], (9, 1)), atol=1e-5)
    ok = occ > 1e-3
    np.testing.assert_allclose(np.linalg.norm(ori[ok], axis=1), 1.0, atol=1e-5)
    assert np.all(ori[~ok] == 0)
    # the lookup follows the grid: at voxel centres it is the grid value
    pts = jnp.array([[0.0, -0.05, 0.0], [0.02, -0.03, 0.01], [0.3, 0.0, 0.0]])
    o, d = volume_lookup(v, pts)
    np.testing.assert_allclose(np.asarray(o), [occ[5, 10, 5], occ[7, 12, 6], 0.0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(d[0]), [0.0, -1.0, 0.0], atol=1e-5)
    assert np.all(np.asarray(d[2]) == 0)


def test_lookup_grads_float64():
    with x64():
        rng = np.random.default_rng(0)  # numpy: jax.random would compile again under x64
        occ = jnp.asarray(rng.uniform(size=(4, 4, 4)))
        ori = jnp.asarray(rng.normal(size=(4, 4, 4, 3)))
        v = HairVolume(occ, ori, jnp.zeros(3, jnp.float64), 0.01)
        pts = jnp.array([[0.0131, 0.0137, 0.0123], [0.0123, 0.0212, 0.0066]], jnp.float64)

        def f(p):
            o, d = volume_lookup(v, p)
            return jnp.concatenate([o, d.reshape(-1)])

        check_grads(jax.jit(f), (pts,), order=1, modes=["fwd", "rev"], eps=1e-6)
        assert volume_lookup(v, pts)[0].dtype == jnp.float64


def test_jit_equals_eager_and_vmap_equals_loop():
    rng = np.random.default_rng(1)
    batch = jnp.asarray(np.asarray(_line(9))[None] + 0.01 * rng.normal(size=(3, 1, 9, 3)), jnp.float32)
    origin, shape = jnp.array([-0.05, -0.15, -0.05]), (11, 21, 11)
    vox = lambda p: strands_to_volume(p, spacing=0.01, origin=origin, shape=shape)  # noqa: E731
    stacked = jax.vmap(lambda p: vox(p).occupancy)(batch)
    for i in range(3):
        np.testing.assert_allclose(np.asarray(stacked[i]), np.asarray(vox(batch[i]).occupancy), atol=1e-6)
    v = vox(batch[0])
    pts = jnp.array([[0.001, -0.04, 0.002], [0.01, -0.02, -0.01]])
    o_jit, d_jit = jax.jit(volume_lookup)(v, pts)
    with jax.disable_jit():
        o_eager, d_eager = volume_lookup(v, pts)
    np.testing.assert_allclose(np.asarray(o_jit), np.asarray(o_eager), atol=1e-6)
    np.testing.assert_allclose(np.asarray(d_jit), np.asarray(d_eager), atol=1e-6)


# --- lifting the portrait's 2D evidence ------------------------------------------------------


def _box_volume(direction=(0.0, -1.0, 0.0)):
    """A full box of hair around the head, spacing 1 cm, orientation constant."""
    shape = (25, 31, 31)  # x −0.12…0.12, y −0.10…0.20, z −0.15…0.15
    d = np.asarray(direction, np.float32)
    d = d / np.linalg.norm(d)
    return HairVolume(jnp.ones(shape), jnp.broadcast_to(jnp.asarray(d), shape + (3,)),
                      jnp.array([-0.12, -0.10, -0.15]), 0.01)


def test_lift_carves_visible_voxels_outside_the_mask_keeps_hidden_ones(head_sdf_field):
    vol = _box_volume()
    cam = orbit_camera(0.0, image_size=(64, 64))
    mask = jnp.zeros((64, 64)).at[:18].set(1.0)  # hair only in the top rows of the image
    zeros = jnp.zeros((64, 64))
    out = lift_hair(vol, cam, mask, zeros, zeros, head_sdf=head_sdf_field)
    occ = np.asarray(out.occupancy)
    c = np.asarray(vol.centers()).reshape(-1, 3)
    px = np.asarray(project(c, cam))
    sdf = np.asarray(sdf_lookup(head_sdf_field, c))
    occ = occ.reshape(-1)
    in_img = (px >= 0).all(1) & (px[:, 0] < 64) & (px[:, 1] < 64)
    face_px = in_img & (px[:, 1] > 30) & (np.abs(px[:, 0] - 32) < 4)  # pixels on the face
    front = face_px & (c[:, 2] > 0.13)  # in front of the face: visible, not hair: carved
    back = face_px & (c[:, 2] < -0.13)  # behind the head: hidden by it, kept
    assert front.sum() > 5 and back.sum() > 5
    assert occ[front].max() < 1e-6
    assert occ[back].min() > 0.999
    # hair pixels (top rows, away from the mask's edge) keep their occupancy
    hair = in_img & (px[:, 1] < 12) & (sdf > 0)
    assert hair.sum() > 20 and occ[hair].min() > 0.999


def test_lift_occluder_hides_voxels_behind_the_head_centre_only(head_sdf_field):
    # the body below the chin: hair down the back is behind it (kept), hair in front of it is seen
    # not to be there (carved); without the occluder the back hair was carved too (a cut-off)
    vol = _box_volume()
    cam = orbit_camera(0.0, image_size=(64, 64))
    mask = jnp.zeros((64, 64)).at[:18].set(1.0)
    zeros = jnp.zeros((64, 64))
    body = jnp.zeros((64, 64)).at[36:].set(1.0)  # the box projects down to row 48
    bare = np.asarray(lift_hair(vol, cam, mask, zeros, zeros, head_sdf=head_sdf_field).occupancy).reshape(-1)
    hid = np.asarray(lift_hair(vol, cam, mask, zeros, zeros, head_sdf=head_sdf_field,
                               occluder=body).occupancy).reshape(-1)
    c = np.asarray(vol.centers()).reshape(-1, 3)
    px = np.asarray(project(c, cam))
    centre_z = float(np.asarray(head_sdf_field.origin)[2]
                     + 0.5 * head_sdf_field.spacing * (head_sdf_field.values.shape[2] - 1))
    on_body = (px[:, 0] >= 4) & (px[:, 0] < 60) & (px[:, 1] >= 40) & (px[:, 1] < 64)  # off the body's edge
    behind = on_body & (c[:, 2] < centre_z - 0.02)
    cut = behind & (bare < 1e-6)  # carved without the occluder: not hidden by the head
    front = on_body & (c[:, 2] > centre_z + 0.02) & (bare < 1e-6)  # seen in front of the body
    assert cut.sum() > 20 and front.sum() > 20
    assert hid[behind].min() > 0.999
    assert hid[front].max() < 1e-6
    # elsewhere nothing changes
    np.testing.assert_array_equal(hid[px[:, 1] < 32], bare[px[:, 1] < 32])


def test_lift_fills_empty_voxels_near_the_head_inside_the_mask(head_sdf_field):
    shape = (25, 31, 31)
    vol = HairVolume(jnp.zeros(shape), jnp.zeros(shape + (3,)), jnp.array([-0.12, -0.10, -0.15]), 0.01)
    cam = orbit_camera(0.0, image_size=(64, 64))
    ones = jnp.ones((64, 64))
    out = lift_hair(vol, cam, ones, ones * 1.5, ones, head_sdf=head_sdf_field)
    occ = np.asarray(out.occupancy).reshape(-1)
    sdf = np.asarray(sdf_lookup(head_sdf_field, np.asarray(vol.centers()).reshape(-1, 3)))
    assert occ[(sdf > 0.002) & (sdf < 0.01)].mean() > 0.5  # a shell just outside the head
    assert occ[sdf > 0.05].max() == 0.0 and occ[sdf < 0].max() == 0.0


def test_lift_orientation_projects_to_the_2d_angle(head_sdf_field):
    prior_dir = np.array([1.0, -1.0, 0.5])
    vol = _box_volume(prior_dir)
    cam = orbit_camera(0.0, image_size=(64, 64))
    ones = jnp.ones((64, 64))
    out = lift_hair(vol, cam, ones, ones * (jnp.pi / 2), ones, head_sdf=head_sdf_field)  # vertical strands
    c = np.asarray(vol.centers())
    front = c[:, :, -1].reshape(-1, 3)  # the front-most layer of the box: the visible surface
    ori = np.asarray(out.orientation)[:, :, -1].reshape(-1, 3)
    px0 = np.asarray(project(front, cam))
    px1 = np.asarray(project(front + 1e-4 * ori, cam))
    img_dir = px1 - px0
    img_dir /= np.linalg.norm(img_dir, axis=1, keepdims=True)
    seen = (px0 > 2).all(1) & (px0 < 62).all(1)  # inside the image
    assert seen.sum() > 100
    assert np.abs(img_dir[seen, 0]).max() < 0.02  # vertical in the image
    assert (ori @ prior_dir > 0).all()  # the sign agrees with the prior
    # the component along the view ray is the prior's (orbit_camera(0) sits at (0, −0.02, 0.85))
    ray = front - np.array([0.0, -0.02, 0.85])
    ray /= np.linalg.norm(ray, axis=1, keepdims=True)
    p = prior_dir / np.linalg.norm(prior_dir)
    np.testing.assert_allclose(np.sum(ori * ray, 1)[seen], (ray @ p)[seen], atol=2e-3)
    # deep inside the box the prior is unchanged
    deep = np.asarray(out.orientation)[12, 15, 5]
    np.testing.assert_allclose(deep, p, atol=1e-3)


# --- growth ----------------------------------------------------------------------------------


def test_grow_from_bob_volume_stays_inside(bob, template, head_sdf_field):
    assert bob.spacing == 0.01 and float(bob.occupancy.max()) == 1.0
    s = grow_from_volume(jax.random.key(2), bob, template, n_strands=150, n_points=16, sdf=head_sdf_field)
    pts = np.asarray(s.points)
    assert pts.shape == (150, 16, 3) and s.color.shape == (150, 3)
    assert np.asarray(sdf_lookup(head_sdf_field, pts.reshape(-1, 3))).min() >= -1e-3
    occ_tip, _ = volume_lookup(bob, pts[:, -1])
    assert np.median(np.asarray(occ_tip)) > 0.45 and np.asarray(occ_tip).min() > 0.2
    length = np.linalg.norm(np.diff(pts, axis=1), axis=2).sum(1)
    assert np.median(length) > 0.08  # the bob's strands are 0.22 m; those from the volume are long too
    assert pts[:, -1, 1].min() > -0.085 - 0.03  # above the bob's cut (plus the voxel blur)


def test_grow_from_volume_takes_a_length_per_root(bob, template, head_sdf_field):
    # one length for all let the volume's lower edge stop every strand: a pixie's strands all
    # ended at one height round the head; a callable gives each root its own (the style's taper)
    def lengths(roots):
        return jnp.where(roots.normals[:, 1] > 0.5, 0.12, 0.03)

    s = grow_from_volume(jax.random.key(2), bob, template, n_strands=150, n_points=16, sdf=head_sdf_field,
                         length=lengths)
    pts = np.asarray(s.points, np.float64)
    arc = np.linalg.norm(np.diff(pts, axis=1), axis=2).sum(1)
    roots = scalp_roots(jax.random.key(2), template, 600)  # the candidates grow_from_volume drew
    top = np.asarray(roots.normals)[:, 1] > 0.5
    occ, _ = volume_lookup(bob, roots.points + 0.003 * roots.normals)
    kept = np.flatnonzero(np.asarray(occ) > 0.5)[:150]
    np.testing.assert_allclose(pts[:, 0], np.asarray(roots.points)[kept], atol=1e-6)
    assert (arc[~top[kept]] <= 0.03 + 1e-4).all() and np.median(arc[top[kept]]) > 0.06
    with pytest.raises(ValueError, match="grow_from_volume"):
        grow_from_volume(jax.random.key(2), bob, template, n_strands=10, n_points=16, sdf=head_sdf_field,
                         length=lambda roots: jnp.ones(3))


def test_the_image_modes_prior_covers_the_scalp():
    # grow_from_volume grows no strand from a root that sees no hair 3 mm out: with 800 prior
    # strands 8 % of the pixie's roots did, in patches 2 cm wide (a bald spot on the back of the
    # bundled portrait's head); the prior of hair_portrait covers all but a few per cent
    from machlib.geometry import default_template
    from machlib.hair import scalp_roots
    from machlib.pipeline import _PRIOR_STRANDS

    human = default_template()
    prior = style_volume(jax.random.key(1), HAIR_STYLES["pixie"], human, n_strands=_PRIOR_STRANDS, n_points=24)
    roots = scalp_roots(jax.random.key(3), human, 6000)
    occ, _ = volume_lookup(prior, roots.points + 0.003 * roots.normals)
    assert (np.asarray(occ) > 0.5).mean() > 0.965  # 0.950 with 800, 0.978 with 2000


def test_a_gathered_styles_prior_covers_the_back_of_the_scalp():
    # a low bun packs its hair into the knot, which sets the typical density: at saturation 0.5
    # the scalp's shell on the upper back fell below the threshold (31 % of its roots kept, bald
    # patches on t1_face1's head); gathered styles saturate at a quarter of it
    # (the whole strands' voxelisation, without the root shell of the next test)
    from machlib.geometry import default_template
    from machlib.hair import grow_style, scalp_roots, strands_to_volume

    human = default_template()
    roots = scalp_roots(jax.random.key(3), human, 3000)
    q = roots.points + 0.003 * roots.normals
    back = np.asarray(q[:, 2] < -0.02)
    strands = grow_style(jax.random.key(1), HAIR_STYLES["low bun"], human, n_strands=1000, n_points=24)
    cover = {}
    for sat in (0.25, 0.5):
        vol = strands_to_volume(strands.points, spacing=0.006, saturation=sat)
        cover[sat] = float((np.asarray(volume_lookup(vol, q)[0]) > 0.5)[back].mean())
    assert cover[0.25] > 0.75 and cover[0.5] < 0.6, cover
    prior = style_volume(jax.random.key(1), HAIR_STYLES["low bun"], human, n_strands=1000, n_points=24)
    assert (np.asarray(volume_lookup(prior, q)[0]) > 0.5)[back].mean() > 0.9


def test_a_gathered_styles_prior_covers_the_front_of_the_scalp():
    # a low bun's front half is one layer of hair swept back over the skull, far thinner than the
    # knot that sets the typical density: voxelised with the knot, 5 % of the front's roots saw
    # hair 3 mm out (t1_face1: bare wedges at the hairline and the parting from -30 degrees); the
    # strands' first 3 cm, voxelised on their own, occupy the shell
    from machlib.geometry import default_template
    from machlib.hair import grow_style, scalp_roots, strands_to_volume

    human = default_template()
    roots = scalp_roots(jax.random.key(3), human, 3000)
    q = roots.points + 0.003 * roots.normals
    front = np.asarray(q[:, 2] > 0.0)
    for name in ("low bun", "bun", "ponytail"):
        prior = style_volume(jax.random.key(1), HAIR_STYLES[name], human, n_strands=1000, n_points=24)
        occ = np.asarray(volume_lookup(prior, q)[0]) > 0.5
        assert occ[front].mean() > 0.9 and occ[~front].mean() > 0.9, (name, occ[front].mean(), occ[~front].mean())
        # the knot's voxelisation alone (the old prior) leaves the front bare
        strands = grow_style(jax.random.key(1), HAIR_STYLES[name], human, n_strands=1000, n_points=24)
        knot = strands_to_volume(strands.points, spacing=prior.spacing, origin=prior.origin,
                                 shape=prior.occupancy.shape, saturation=0.25)
        assert (np.asarray(volume_lookup(knot, q)[0]) > 0.5)[front].mean() < 0.7, name
        # the shell adds occupancy and orientation where the knot's had none; elsewhere it is kept
        o_old, o_new = np.asarray(knot.occupancy), np.asarray(prior.occupancy)
        assert (o_new >= o_old - 1e-6).all()
        had = o_old >= 1e-3
        np.testing.assert_allclose(np.asarray(prior.orientation)[had], np.asarray(knot.orientation)[had], atol=1e-5)


# --- bad inputs ------------------------------------------------------------------------------


def test_bad_inputs(template):
    vol = _box_volume()
    cam = orbit_camera(0.0, image_size=(16, 16))
    img = jnp.zeros((16, 16))
    with pytest.raises((ValueError, TypeError), match="strands_to_volume"):
        strands_to_volume(jnp.zeros((3, 3)))
    with pytest.raises(ValueError, match="strands_to_volume"):
        strands_to_volume(jnp.zeros((1, 4, 3)), spacing=0.0)
    with pytest.raises(ValueError, match="strands_to_volume"):
        strands_to_volume(jnp.zeros((1, 4, 3)), origin=jnp.zeros(3))
    with pytest.raises(ValueError, match="strands_to_volume"):
        strands_to_volume(jnp.zeros((1, 4, 3)), bounds=((0, 0, 0), (-1, 1, 1)))
    with pytest.raises((ValueError, TypeError), match="volume_lookup"):
        volume_lookup(vol, jnp.zeros((4, 2)))
    with pytest.raises((ValueError, TypeError), match="HairVolume"):
        HairVolume(jnp.zeros((2, 2, 2)), jnp.zeros((2, 2, 3)), jnp.zeros(3), 0.01)
    with pytest.raises((ValueError, TypeError), match="lift_hair"):
        lift_hair(vol, cam, img, jnp.zeros((8, 8)), img)
    with pytest.raises(ValueError, match="lift_hair"):
        lift_hair(vol, cam, img, img, img, threshold=1.5)
    with pytest.raises(ValueError, match="lift_hair"):
        lift_hair(vol, cam, img, img, img, block=0)
    with pytest.raises((ValueError, TypeError), match="lift_hair"):
        lift_hair(vol, "camera", img, img, img)
    with pytest.raises((ValueError, TypeError), match="lift_hair"):
        lift_hair(vol, cam, img, img, img, occluder=jnp.zeros((4, 4)))
    with pytest.raises(ValueError, match="grow_from_volume"):
        grow_from_volume(jax.random.key(0), vol, template, n_strands=-1)
    with pytest.raises(ValueError, match="grow_from_volume"):
        grow_from_volume(jax.random.key(0), vol, template, threshold=0.0)
    with pytest.raises(ValueError, match="grow_from_volume"):
        grow_from_volume(jax.random.key(0), vol, template, color="plaid")
    with pytest.raises(ValueError, match="style_volume"):
        style_volume(jax.random.key(0), HAIR_STYLES["bob"], template, n_strands=0)
