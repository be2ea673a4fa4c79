"""Strand growth and the procedural style library: scalp roots, the head SDF grid, the RK2
integrator (jit == eager, vmap == loop, collision), every preset on the default template, hair
colour, and bad inputs."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import uv_sphere, x64
from jax.test_util import check_grads

from machlib.geometry import decode, procedural_template
from machlib.geometry._headsdf import head_sdf
from machlib.hair import (
    HAIR_COLORS,
    HAIR_STYLES,
    HairStyle,
    HeadSDF,
    Strands,
    find_styles,
    grow_strands,
    grow_style,
    hair_color,
    head_sdf_grid,
    scalp_roots,
    sdf_lookup,
)

N_STRANDS, N_POINTS = 96, 24  # one compiled integrator serves every preset at this shape


@pytest.fixture(scope="module")
def template():
    return procedural_template()  # checked against the procedural head's analytic SDF


@pytest.fixture(scope="module")
def head_sdf_field(template):
    return head_sdf_grid(template.mesh)


@pytest.fixture(scope="module")
def grown(template, head_sdf_field):
    return {
        name: grow_style(jax.random.key(3), st, template, n_strands=N_STRANDS, n_points=N_POINTS, sdf=head_sdf_field)
        for name, st in HAIR_STYLES.items()
    }


@pytest.fixture(scope="module")
def sphere_sdf():
    return head_sdf_grid(uv_sphere(48, 32, radius=0.1), spacing=0.01, margin=0.05)


def _arc_length(pts):
    return np.linalg.norm(np.diff(np.asarray(pts, np.float64), axis=1), axis=2).sum(1)


# --- roots -----------------------------------------------------------------------------------


def test_roots_lie_on_the_scalp(template, head_sdf_field):
    r = scalp_roots(jax.random.key(0), template, 2000)
    p = np.asarray(r.points)
    # on the mesh: the grid SDF and the analytic head the mesh was sampled from are ~0 there
    assert np.abs(np.asarray(sdf_lookup(head_sdf_field, p))).max() < 1e-3
    assert np.abs(np.asarray(head_sdf(jnp.asarray(p)))).max() < 1e-3
    # on the scalp mask, above the brows (brow arch tops at y ≈ 0.026), not on the face
    mask = np.asarray(decode(jnp.asarray(template.regions["scalp"])[..., None], r.uv))[:, 0]
    assert mask.min() > 0.3
    front = p[:, 2] > 0.06
    assert front.any() and p[front, 1].min() > 0.035
    assert p[:, 1].min() > -0.06
    # outward unit normals
    n = np.asarray(r.normals)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    g = np.asarray(jax.vmap(jax.grad(lambda q: sdf_lookup(head_sdf_field, q[None])[0]))(jnp.asarray(p)))
    g = g / np.linalg.norm(g, axis=1, keepdims=True)
    assert np.median(np.sum(n * g, 1)) > 0.9


def test_roots_are_deterministic_and_follow_a_fitted_mesh(template):
    a = scalp_roots(jax.random.key(5), template, 64)
    b = scalp_roots(jax.random.key(5), template, 64)
    c = scalp_roots(jax.random.key(6), template, 64)
    np.testing.assert_array_equal(np.asarray(a.points), np.asarray(b.points))
    assert not np.allclose(np.asarray(a.points), np.asarray(c.points))
    # a "fitted" head: the template scaled by 1.1 about the origin; same faces and barycentrics
    fitted = type(template.mesh)(np.asarray(template.mesh.vertices) * 1.1, template.mesh.faces,
                                 template.mesh.uv, template.mesh.faces_uv)
    d = scalp_roots(jax.random.key(5), fitted, 64, template=template)
    np.testing.assert_allclose(np.asarray(d.points), 1.1 * np.asarray(a.points), atol=2e-4)


def test_roots_cover_the_temples_and_sides_but_not_the_ears():
    # the default template's scalp mask leaves out its whole "ears" region (10 x 10 cm round the
    # pinna): heads were bald between the hair and the ear at +-30 degrees. Roots now grow there
    # too, above and in front of the ear, but not on the ear itself
    from machlib.geometry import default_template

    tmpl = default_template()
    p = np.asarray(scalp_roots(jax.random.key(0), tmpl, 4000).points)
    az = np.degrees(np.arctan2(np.abs(p[:, 0]), p[:, 2]))
    temple = (az > 60) & (az < 120) & (p[:, 1] > 0.01) & (p[:, 1] < 0.03)
    assert temple.sum() > 60 and (p[temple, 0] > 0).any() and (p[temple, 0] < 0).any()
    mask = np.asarray(decode(jnp.asarray(tmpl.regions["scalp"])[..., None],
                             scalp_roots(jax.random.key(0), tmpl, 4000).uv))[:, 0]
    assert (mask[temple] < 0.5).mean() > 0.9  # outside the scalp mask: new
    # behind the ear the hair comes down to about the earlobe (the mask stops at the ear's
    # middle: from behind, heads were bald behind the ears)
    behind = (az > 115) & (az < 150) & (p[:, 1] > -0.04) & (p[:, 1] < -0.01)
    assert (p[behind, 0] > 0).sum() > 50 and (p[behind, 0] < 0).sum() > 50  # 15 and 17 before
    assert (mask[behind] < 0.5).mean() > 0.9
    assert p[:, 1].min() > -0.06  # and no lower than the nape
    v = np.asarray(tmpl.mesh.vertices)
    f = np.asarray(tmpl.mesh.faces)
    cuv = np.asarray(tmpl.mesh.uv)[np.asarray(tmpl.mesh.faces_uv)].mean(1)
    ear = np.asarray(decode(jnp.asarray(tmpl.regions["ears"])[..., None], jnp.asarray(cuv, jnp.float32)))[:, 0] > 0.5
    for sign in (-1, 1):
        c = np.median(v[f[ear & (np.sign(v[f].mean(1)[:, 0]) == sign)]].reshape(-1, 3), 0)  # the pinna's middle
        side = np.sign(p[:, 0]) == sign
        assert np.linalg.norm(p[side] - c, axis=1).min() > 0.015


# --- SDF --------------------------------------------------------------------------------------


def test_sphere_sdf_matches_the_distance(sphere_sdf):
    q = np.random.default_rng(0).uniform(-0.14, 0.14, (500, 3))
    r = np.linalg.norm(q, axis=1)
    near = np.abs(r - 0.1) < 0.02  # exact band (the far field is approximate)
    got = np.asarray(sdf_lookup(sphere_sdf, q))
    np.testing.assert_allclose(got[near], r[near] - 0.1, atol=2.5e-3)  # a 48×32 facetted sphere
    assert (np.sign(got) == np.sign(r - 0.1))[np.abs(r - 0.1) > 0.005].all()
    assert float(sdf_lookup(sphere_sdf, np.zeros((1, 3)))[0]) < -0.07


def test_sdf_gradient_matches_finite_differences(sphere_sdf):
    with x64():
        sdf64 = HeadSDF(jnp.asarray(sphere_sdf.values, jnp.float64), jnp.asarray(sphere_sdf.origin, jnp.float64),
                        sphere_sdf.spacing)
        pts = jnp.asarray(np.random.default_rng(1).uniform(-0.12, 0.12, (6, 3)))
        check_grads(lambda p: sdf_lookup(sdf64, p), (pts,), order=1, modes=["fwd", "rev"], eps=1e-6)
        # outside the grid the distance to its box is added: still differentiable, gradient outward
        far = jnp.array([[1.0, 0.013, -0.021]])  # off the cell faces (trilinear kinks)
        check_grads(lambda p: sdf_lookup(sdf64, p), (far,), order=1, modes=["rev"], eps=1e-6)
        assert float(jax.grad(lambda p: sdf_lookup(sdf64, p)[0])(far)[0, 0]) > 0.9


# --- integrator -------------------------------------------------------------------------------


def _down_field(p, root, normal, s):
    return 0.5 * normal * jnp.exp(-s / 0.02) + jnp.array([0.3, 0.0, 0.0])


def _sphere_roots(n):
    ang = np.linspace(0.3, 2.5, n)
    nrm = np.stack([np.sin(ang), np.cos(ang), 0.3 * np.ones(n)], 1)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    return jnp.asarray(0.1 * nrm, jnp.float32), jnp.asarray(nrm, jnp.float32)


def test_integrator_keeps_strands_outside_and_roots_fixed(sphere_sdf):
    roots, nrm = _sphere_roots(5)
    pts = grow_strands(roots, nrm, _down_field, length=0.2, n_points=16, gravity=1.0, curl_radius=0.01,
                       curl_period=0.03, sdf=sphere_sdf)
    pts = np.asarray(pts)
    np.testing.assert_array_equal(pts[:, 0], np.asarray(roots))
    d = np.asarray(sdf_lookup(sphere_sdf, pts[:, 1:].reshape(-1, 3)))
    assert d.min() > 0.002 - 3e-4
    # without collision the same field goes through the sphere (gravity pulls inward on top)
    free = np.asarray(grow_strands(roots, nrm, _down_field, length=0.2, n_points=16, gravity=1.0))
    assert np.linalg.norm(free.reshape(-1, 3), axis=1).min() < 0.095


def test_integrator_jit_equals_eager_and_vmap_equals_loop(sphere_sdf):
    roots, nrm = _sphere_roots(3)
    lengths, phases = jnp.array([0.05, 0.08, 0.12]), jnp.array([0.0, 1.0, 2.0])
    kw = dict(n_points=6, gravity=0.7, curl_radius=0.004, curl_period=0.02, sdf=sphere_sdf)
    batched = np.asarray(grow_strands(roots, nrm, _down_field, length=lengths, phases=phases, **kw))
    for i in range(3):
        one = grow_strands(roots[i:i + 1], nrm[i:i + 1], _down_field, length=lengths[i:i + 1],
                           phases=phases[i:i + 1], **kw)
        np.testing.assert_allclose(np.asarray(one)[0], batched[i], atol=2e-6)
    with jax.disable_jit():
        eager = grow_strands(roots[:1], nrm[:1], _down_field, length=lengths[:1], phases=phases[:1], **kw)
    np.testing.assert_allclose(np.asarray(eager)[0], batched[0], atol=2e-6)


def test_integrator_length_and_occupancy_stop():
    roots = jnp.zeros((2, 3))
    nrm = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    straight = lambda p, root, normal, s: normal  # noqa: E731
    pts = np.asarray(grow_strands(roots, nrm, straight, length=0.1, n_points=11))
    np.testing.assert_allclose(_arc_length(pts), [0.1, 0.1], rtol=1e-5)
    # occupancy y < 0.035: the upward strand stops after 3 steps of 1 cm, the other is unaffected
    occ = lambda p: 0.035 - p[1]  # noqa: E731
    pts = np.asarray(grow_strands(roots, nrm, straight, length=0.1, n_points=11, occupancy=occ))
    np.testing.assert_allclose(pts[0, 3:, 1], 0.03, atol=1e-6)
    np.testing.assert_allclose(_arc_length(pts), [0.03, 0.1], rtol=1e-5)


def test_guided_growth_follows_the_guides_and_stays_outside(template, head_sdf_field):
    st = HAIR_STYLES["bob"]
    kw = dict(n_strands=300, n_points=N_POINTS, sdf=head_sdf_field)
    full = np.asarray(grow_style(jax.random.key(5), st, template, **kw).points)
    guided = np.asarray(grow_style(jax.random.key(5), st, template, guides=60, **kw).points)
    assert guided.shape == full.shape and np.isfinite(guided).all()
    np.testing.assert_array_equal(guided[:, 0], full[:, 0])  # the same roots
    assert np.asarray(sdf_lookup(head_sdf_field, guided[:, 1:].reshape(-1, 3))).min() > -5e-4
    # each strand keeps its own length (cut from the longer guide shapes), and the shapes are
    # close to integrating every strand: tips within a few centimetres on average
    np.testing.assert_allclose(np.median(_arc_length(guided)), np.median(_arc_length(full)), rtol=0.1)
    assert np.median(np.linalg.norm(guided[:, -1] - full[:, -1], axis=1)) < 0.03
    # guides >= strands integrates every strand
    np.testing.assert_array_equal(
        np.asarray(grow_style(jax.random.key(5), st, template, guides=300, **kw).points), full)


# --- styles -----------------------------------------------------------------------------------


def test_every_preset_grows_outside_the_head(grown, head_sdf_field, template):
    for name, s in grown.items():
        assert isinstance(s, Strands)
        if HAIR_STYLES[name].bald:
            assert s.num_strands == 0, name
            continue
        pts = np.asarray(s.points)
        assert pts.shape == (N_STRANDS, N_POINTS, 3) and np.isfinite(pts).all(), name
        rest = pts[:, 1:].reshape(-1, 3)
        assert np.asarray(sdf_lookup(head_sdf_field, rest)).min() > -5e-4, name
        # against the analytic head the mesh was sampled from (the mesh encloses it)
        assert np.asarray(head_sdf(jnp.asarray(rest))).min() > -1.5e-3, name
        assert s.color.shape == (N_STRANDS, 3) and s.thickness.shape == (N_STRANDS,)


def test_preset_lengths_and_shapes(grown):
    mean = {name: _arc_length(s.points).mean() for name, s in grown.items() if s.num_strands}
    assert mean["buzz cut"] < mean["crop"] < mean["pixie"] < mean["bob"] < mean["long straight"]
    assert mean["buzz cut"] < 0.015
    # the bob is cut at the jaw; long straight hair falls well below it
    assert np.asarray(grown["bob"].points)[..., 1].min() > -0.086
    # the crop is short at the back (tapered, see test_a_tapered_cut_is_short_on_the_sides_and_back):
    # strands rooted low on the head are under 2 cm, and nothing hangs down the neck
    crop = np.asarray(grown["crop"].points)
    under = crop[:, 0, 1] < -0.03
    assert _arc_length(crop[under]).max(initial=0.0) < 0.02
    assert crop[..., 1].min() > -0.06
    assert np.asarray(grown["long straight"].points)[..., 1].min() < -0.3
    # an afro stays inside its outline and stands away from the head
    afro = np.asarray(grown["afro"].points)
    r = np.linalg.norm(afro - np.array([0.0, 0.01, -0.01]), axis=2)
    assert r.max() <= 0.17 + 0.0031 and np.median(r[:, -1]) > 0.13  # outline + coil radius
    # ponytail tips hang behind the head; bun strands stay on the top-back
    assert np.median(np.asarray(grown["ponytail"].points)[:, -1, 2]) < -0.1
    assert np.asarray(grown["bun"].points)[:, -1, 1].min() > 0.0
    # a low bun's strands go back over the skull (not over the face) and end wound at the nape
    low = np.asarray(grown["low bun"].points)
    assert -0.09 < np.median(low[:, -1, 1]) < 0.0 and np.median(low[:, -1, 2]) < -0.08
    assert (low[:, 1:, 2] < np.maximum(low[:, :1, 2], 0.06)).all()  # nothing comes forward past the hairline


def test_a_swept_fringe_runs_to_its_side(grown, template, head_sdf_field):
    # the pixie's fringe is swept to the subject's right (-x), away from its parting on the left;
    # the same fringe swept left runs to +x, and a straight one falls forward, not sideways
    kw = dict(n_strands=N_STRANDS, n_points=N_POINTS, sdf=head_sdf_field)
    pixie = HAIR_STYLES["pixie"]
    assert pixie.sweep == "right" and pixie.bangs > 0
    left = grow_style(jax.random.key(3), dataclasses.replace(pixie, sweep="left"), template, **kw)
    straight = grow_style(jax.random.key(3), dataclasses.replace(pixie, sweep="none"), template, **kw)

    def sideways(s):
        p = np.asarray(s.points, np.float64)
        front = (p[:, 0, 2] > 0.03) & (p[:, 0, 1] > 0.03)  # the fringe's roots
        assert front.sum() >= 5
        return float(np.mean(p[front, -1, 0] - p[front, 0, 0]))

    right_dx, left_dx, straight_dx = sideways(grown["pixie"]), sideways(left), sideways(straight)
    assert right_dx < -0.015 and left_dx > 0.015, (right_dx, left_dx)
    assert abs(straight_dx) < 0.5 * min(-right_dx, left_dx)


def _curvature(pts):
    seg = np.diff(np.asarray(pts, np.float64), axis=1)
    ln = np.linalg.norm(seg, axis=2)
    u = seg / np.maximum(ln, 1e-12)[..., None]
    cos = np.clip(np.sum(u[:, 1:] * u[:, :-1], -1), -1, 1)
    ok = (ln[:, 1:] > 1e-6) & (ln[:, :-1] > 1e-6)
    return np.arccos(cos)[ok].sum() / ln.sum()  # turning angle per metre


def test_curly_bends_more_than_straight(grown):
    assert _curvature(grown["long curly"].points) > 2.0 * _curvature(grown["long straight"].points)
    assert _curvature(grown["afro"].points) > _curvature(grown["bob"].points)


def test_grow_style_is_deterministic(grown, template, head_sdf_field):
    st = HAIR_STYLES["long curly"]
    again = grow_style(jax.random.key(3), st, template, n_strands=N_STRANDS, n_points=N_POINTS, sdf=head_sdf_field)
    np.testing.assert_array_equal(np.asarray(again.points), np.asarray(grown["long curly"].points))
    other = grow_style(jax.random.key(4), st, template, n_strands=N_STRANDS, n_points=N_POINTS, sdf=head_sdf_field)
    assert not np.allclose(np.asarray(other.points), np.asarray(again.points))
    red = grow_style(jax.random.key(3), st, template, n_strands=N_STRANDS, n_points=N_POINTS, sdf=head_sdf_field,
                     color="red")
    np.testing.assert_allclose(np.asarray(red.color[0]), HAIR_COLORS["red"], rtol=1e-6)


def test_presets_and_text_matching():
    required = {"buzz cut", "bob", "pixie", "ponytail", "bun", "long straight", "long curly", "afro", "bald"}
    assert required <= set(HAIR_STYLES)
    for name, st in HAIR_STYLES.items():
        assert st.name == name and st.tags and all(t == t.lower() for t in st.tags)
    assert find_styles("tied back in a ponytail")[0] == "ponytail"
    assert find_styles("hair in a low bun")[0] == "low bun" and find_styles("an elegant chignon")[0] == "low bun"
    assert find_styles("a short buzz cut")[0] == "buzz cut"
    assert find_styles("nothing relevant") == []
    assert hash(HAIR_STYLES["bob"]) == hash(HairStyle(**{k: getattr(HAIR_STYLES["bob"], k) for k in (
        "name", "tags", "length", "curl", "volume", "gravity", "parting", "bangs", "cut_height", "max_radius",
        "gather", "length_jitter", "color")}))


# --- colour -----------------------------------------------------------------------------------


def test_hair_color_model():
    mel = jnp.linspace(0.0, 8.0, 9)
    c = np.asarray(hair_color(mel, jnp.zeros(9)))
    assert c.shape == (9, 3) and (c >= 0).all() and (c <= 1).all()
    assert (np.diff(c, axis=0) <= 1e-7).all()  # more melanin, darker
    np.testing.assert_allclose(c[0], 1.0)
    assert (c[1:, 0] > c[1:, 1]).all() and (c[1:, 1] > c[1:, 2]).all()  # warm
    red = np.asarray(hair_color(0.0, 0.7))
    assert red[0] > 2 * red[1] > 4 * red[2]
    g = jax.grad(lambda m: hair_color(m, 0.0).sum())(0.0)  # finite at zero pigment
    assert np.isfinite(float(g))
    for name in ("black", "brown", "blonde", "red", "gray", "white", "green", "blue", "pink", "purple"):
        rgb = np.asarray(HAIR_COLORS[name])
        assert rgb.shape == (3,) and (rgb >= 0).all() and (rgb <= 1).all(), name
    assert np.sum(HAIR_COLORS["black"]) < np.sum(HAIR_COLORS["brown"]) < np.sum(HAIR_COLORS["blonde"])


# --- bad inputs -------------------------------------------------------------------------------


def test_bad_inputs_raise(template, sphere_sdf):
    with pytest.raises((ValueError, TypeError), match="guides"):
        grow_strands(jnp.zeros((4, 3)), jnp.ones((4, 3)), lambda p, r, n, s: n, length=0.1, guides=0)
    with pytest.raises((ValueError, TypeError), match="guide_neighbors"):
        grow_strands(jnp.zeros((4, 3)), jnp.ones((4, 3)), lambda p, r, n, s: n, length=0.1, guides=2,
                     guide_neighbors=3)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="scalp_roots"):
        scalp_roots(key, template, -1)
    with pytest.raises(ValueError, match="scalp_roots"):
        scalp_roots(key, template, 10, threshold=0.0)
    with pytest.raises(ValueError, match="scalp_roots"):
        scalp_roots(key, uv_sphere(), 10)  # not the template topology
    with pytest.raises(ValueError, match="scalp_roots"):
        scalp_roots(key, "head", 10)
    roots, nrm = _sphere_roots(3)
    f = lambda p, root, normal, s: normal  # noqa: E731
    with pytest.raises((ValueError, TypeError)):
        grow_strands(roots, nrm[:2], f, length=0.1)
    with pytest.raises((ValueError, TypeError)):  # jaxtyping catches the shape under tests
        grow_strands(roots, nrm, f, length=jnp.ones(2))
    for kw in (dict(n_points=1), dict(length=0.0), dict(curl_period=0.0),
               dict(curl_helix=2.0), dict(clearance=-1.0)):
        with pytest.raises(ValueError, match="grow_strands"):
            grow_strands(roots, nrm, f, **{"length": 0.1, **kw})
    with pytest.raises((ValueError, TypeError)):  # beartype or the function's own check
        grow_strands(roots, nrm, "not callable", length=0.1)
    with pytest.raises((ValueError, TypeError)):  # the Literal annotation or __check_init__
        HairStyle("x", ("a",), 0.1, curl="frizzy")
    with pytest.raises(ValueError, match="HairStyle"):
        HairStyle("x", ("a",), -0.1)
    with pytest.raises(ValueError, match="HairStyle"):
        HairStyle("x", ("a",), 0.1, color="teal")
    with pytest.raises((ValueError, TypeError)):  # the Literal annotation or __check_init__
        HairStyle("x", ("a",), 0.1, bangs=0.05, sweep="up")
    with pytest.raises(ValueError, match="grow_style"):
        grow_style(key, HAIR_STYLES["bob"], template, color="teal")
    with pytest.raises(ValueError, match="grow_style"):
        grow_style(key, HAIR_STYLES["bob"], template, n_strands=-3)
    with pytest.raises((ValueError, TypeError)):
        grow_style(key, "bob", template)
    with pytest.raises(ValueError, match="hair_color"):
        hair_color(-1.0, 0.0)
    with pytest.raises(ValueError, match="hair_color"):
        hair_color(1.0, 0.0, roughness=0.0)
    with pytest.raises(ValueError, match="head_sdf_grid"):
        head_sdf_grid(uv_sphere(), spacing=0.0)
    with pytest.raises((ValueError, TypeError)):
        sdf_lookup(sphere_sdf, jnp.zeros((4, 2)))
    with pytest.raises((ValueError, TypeError)):
        find_styles(3)


def test_curls_turn_together_in_clumps(template):
    # neighbouring roots share their curl phase (ringlets), far-apart ones do not
    from machlib.hair._styles import _clumped_phases

    roots = np.asarray(scalp_roots(jax.random.key(2), template.mesh, 400, template=template).points, np.float64)
    ph = np.asarray(_clumped_phases(jax.random.key(1), roots, 10), np.float64)
    d = np.linalg.norm(roots[:, None] - roots[None], axis=2)
    np.fill_diagonal(d, np.inf)
    nearest = np.argmin(d, 1)
    gap = np.abs(np.angle(np.exp(1j * (ph - ph[nearest]))))
    far = np.abs(np.angle(np.exp(1j * (ph - np.roll(ph, 200)))))
    assert np.median(gap) < 0.5 < np.median(far)


def test_a_tapered_cut_is_short_on_the_sides_and_back(grown):
    """The crop (``taper=0.7``): strands rooted where the scalp faces sideways or back are far
    shorter than those on top, and none stands out past the head as the untapered crop did."""
    crop = grown["crop"]
    pts = np.asarray(crop.points)
    length = _arc_length(pts)
    roots = pts[:, 0]
    top = roots[:, 1] > np.percentile(roots[:, 1], 80)
    low = roots[:, 1] < np.percentile(roots[:, 1], 20)
    assert np.median(length[low]) < 0.55 * np.median(length[top])
    with pytest.raises(ValueError, match="taper"):
        HairStyle("x", ("x",), 0.05, taper=1.0)



def test_a_parting_ends_at_the_crown(template, head_sdf_field):
    """A side parting pulls the hair apart from the hairline back to the crown, not on down the
    back of the head: strands rooted on the back's midline hang down, not off to one side (the
    pixie's, parted on the left, went 2 cm to the right and split the nape; the wavy style's
    5 cm to the left)."""
    for name in ("pixie", "wavy"):
        s = grow_style(jax.random.key(3), HAIR_STYLES[name], template, n_strands=400, n_points=N_POINTS,
                       sdf=head_sdf_field)
        p = np.asarray(s.points, np.float64)
        back = (p[:, 0, 2] < -0.04) & (np.abs(p[:, 0, 0]) < 0.02)
        assert back.sum() >= 20, name
        dx = p[back, -1, 0] - p[back, 0, 0]
        assert abs(float(np.median(dx))) < 0.005 and float(np.mean(np.abs(dx))) < 0.02, (name, np.median(dx))


def test_style_lengths_are_float32_arithmetic_and_compile_only_the_draw(template):
    """``_style_lengths`` (numpy after its one random draw) gives jax.numpy's op-by-op float32
    lengths bit for bit, and a new strand count compiles at most the draw, not one program per
    operation (the old code compiled about ten)."""
    from jax import monitoring

    from machlib.hair._styles import _style_lengths

    def reference(key, style, roots):  # the formula as jax.numpy evaluates it, op by op
        n = roots.points.shape[0]
        jitter = jnp.clip(jax.random.normal(key, (n,)), -2.0, 2.0) * style.length_jitter
        lengths = style.length * (1.0 + jitter)
        if style.taper > 0:
            lengths = lengths * (1.0 - style.taper * (1.0 - jnp.clip(jnp.asarray(roots.normals)[:, 1] / 0.7, 0.0, 1.0)))
        if style.bangs > 0:
            p = jnp.asarray(roots.points)
            front = (p[:, 2] > 0.03) & (p[:, 1] > 0.03)
            fringe = style.bangs * (1.0 + jitter)
            if style.sweep == "none":
                from machlib.hair._styles import _brow_top

                brows = _brow_top(template.mesh, template)
                fringe = jnp.minimum(fringe, jnp.maximum(1.25 * (p[:, 1] - brows - 0.004), 0.01))
            lengths = jnp.where(front, jnp.minimum(lengths, fringe), lengths)
        return lengths

    roots = scalp_roots(jax.random.key(5), template.mesh, 300, template=template)
    styles = [s for s in HAIR_STYLES.values() if s.taper > 0 or s.bangs > 0]
    assert any(s.taper > 0 for s in styles) and any(s.bangs > 0 and s.sweep == "none" for s in styles)
    for k, style in enumerate(styles):
        got = _style_lengths(jax.random.key(k), style, roots, template.mesh, template=template)
        want = reference(jax.random.key(k), style, roots)
        assert got.dtype == want.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))

    few = scalp_roots(jax.random.key(6), template.mesh, 37, template=template)  # a count no other test grows
    style = dataclasses.replace(next(s for s in styles if s.taper > 0 and s.bangs > 0), sweep="none")  # every branch
    compiled = []

    def listen(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(event)

    monitoring.register_event_duration_secs_listener(listen)
    try:
        _style_lengths(jax.random.key(9), style, few, template.mesh, template=template)
    finally:
        monitoring.unregister_event_duration_listener(listen)
    assert len(compiled) <= 1  # the normal draw for 37 strands
