"""Texture correction and completion (§2.4.3) through the public API: the procedural template
albedo, Reinhard colour transfer and :func:`complete_texture` on synthetic partial textures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from machlib.geometry import default_template, face_oval
from machlib.texture import (
    TextureCompletion,
    color_transfer,
    complete_texture,
    erode_mask,
    ita_of,
    polygon_sdf,
    skin_albedo,
    srgb_to_lab,
)

R = 128


@pytest.fixture(scope="module")
def lm():
    return np.asarray(default_template().landmark_uv, np.float32)


@pytest.fixture(scope="module")
def face(lm):
    """``(R, R)`` bool: texel centres inside the template's face oval."""
    return np.asarray(polygon_sdf(lm[np.asarray(face_oval())], R)) < 0


def _lab(x):
    return np.asarray(srgb_to_lab(jnp.asarray(x, jnp.float32)), np.float64)


def _delta_e(a, b):
    return np.linalg.norm(_lab(a) - _lab(b), axis=-1)


@pytest.fixture(scope="module")
def light_and_dark(face):
    """Two synthetic "observed" textures of very different skin (ITA 50° and −25°): the face oval
    is seen, everything else is black (as an extracted texture), and their completions with the
    same mid-tone template (ITA 10°), so the tone of the unseen head comes from the face."""
    template = np.asarray(skin_albedo(R, ita=10.0, seed=1))
    out = {}
    for name, ita in (("light", 50.0), ("dark", -25.0)):
        truth = np.asarray(skin_albedo(R, ita=ita, seed=3))
        raw = truth * face[..., None]
        out[name] = (truth, raw, complete_texture(raw, face, template_albedo=template))
    return template, out


# --------------------------------------------------------------------------------------------
# skin_albedo


def test_skin_albedo_shape_range_and_determinism():
    a = np.asarray(skin_albedo(R, ita=30.0, seed=2))
    assert a.shape == (R, R, 3) and a.dtype == np.float32
    assert np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0
    assert a.max(-1).min() > 0.0  # every texel painted, nothing black
    np.testing.assert_array_equal(skin_albedo(R, ita=30.0, seed=2), a)
    assert np.abs(np.asarray(skin_albedo(R, ita=30.0, seed=5)) - a).max() > 0.01  # the seed matters


def test_skin_albedo_ita_ordering(face):
    itas = (-40.0, -10.0, 20.0, 45.0, 60.0)
    lightness, measured = [], []
    for ita in itas:
        a = np.asarray(skin_albedo(R, ita=ita))
        lab = _lab(a)
        # the median over the face skin (robust to the painted features)
        lightness.append(np.median(lab[face][:, 0]))
        measured.append(float(ita_of(np.median(a[face], axis=0))))
    assert all(x < y for x, y in zip(lightness, lightness[1:])), lightness
    assert lightness[-1] - lightness[0] > 30.0
    np.testing.assert_allclose(measured, itas, atol=6.0)


@pytest.mark.parametrize("resolution", [4, 7, 0, 16.0])
def test_skin_albedo_bad_resolution(resolution):
    with pytest.raises((ValueError, TypeError), match="skin_albedo"):
        skin_albedo(resolution)


# --------------------------------------------------------------------------------------------
# color_transfer


def _weighted_lab_stats(img, w):
    lab = _lab(img)
    w = np.asarray(w, np.float64) / np.sum(w)
    mean = np.einsum("hw,hwc->c", w, lab)
    std = np.sqrt(np.einsum("hw,hwc->c", w, (lab - mean) ** 2))
    return mean, std


def test_color_transfer_matches_mean_and_std_on_the_masks():
    rng = np.random.default_rng(0)
    src = np.clip(np.array([0.55, 0.45, 0.4]) + 0.05 * rng.normal(size=(24, 20, 3)), 0, 1).astype(np.float32)
    tgt = np.clip(np.array([0.7, 0.35, 0.35]) + 0.08 * rng.normal(size=(16, 16, 3)), 0, 1).astype(np.float32)
    src_mask = np.zeros((24, 20), np.float32)
    src_mask[4:18, 3:15] = 1.0
    tgt_mask = np.zeros((16, 16), np.float32)
    tgt_mask[2:10, 5:14] = 1.0
    tgt[tgt_mask == 0] = [0.1, 0.8, 0.1]  # outside the target mask: ignored
    out = np.asarray(color_transfer(src, tgt, source_mask=src_mask, target_mask=tgt_mask))
    assert out.shape == src.shape and out.min() >= 0.0 and out.max() <= 1.0
    mo, so = _weighted_lab_stats(out, src_mask)
    mt, st = _weighted_lab_stats(tgt, tgt_mask)
    np.testing.assert_allclose(mo, mt, atol=0.3)
    np.testing.assert_allclose(so, st, rtol=0.03, atol=0.05)
    # max_scale bounds the contrast change: σ_out / σ_src ≤ max_scale
    ms, ss = _weighted_lab_stats(src, src_mask)
    out2 = np.asarray(color_transfer(src, tgt, source_mask=src_mask, target_mask=tgt_mask, max_scale=1.1))
    m2, s2 = _weighted_lab_stats(out2, src_mask)
    np.testing.assert_allclose(m2, mt, atol=0.3)
    assert np.all(s2 <= 1.1 * ss + 0.05) and np.all(s2 >= ss / 1.1 - 0.05)
    # a target equal to the source changes nothing; uint8 input is scaled by 1/255
    np.testing.assert_allclose(color_transfer(src, src), src, atol=2e-3)
    src8 = (src * 255 + 0.5).astype(np.uint8)
    np.testing.assert_allclose(color_transfer(src8, tgt), color_transfer(src8 / np.float32(255), tgt), atol=1e-4)


def test_color_transfer_jit_vmap_and_gradient():
    rng = np.random.default_rng(1)
    srcs = jnp.asarray(rng.uniform(0.3, 0.7, (3, 8, 8, 3)), jnp.float32)
    tgts = jnp.asarray(rng.uniform(0.2, 0.6, (3, 6, 6, 3)), jnp.float32)
    batched = jax.jit(jax.vmap(color_transfer))(srcs, tgts)
    one = jax.jit(color_transfer)
    looped = jnp.stack([one(srcs[i], tgts[i]) for i in range(3)])
    np.testing.assert_allclose(batched, looped, atol=1e-5)
    # differentiable: the gradient of a loss agrees with a central difference along a direction
    loss = jax.jit(lambda s: jnp.sum(jnp.sin(3.0 * color_transfer(s, tgts[0]))))
    g = np.asarray(jax.jit(jax.grad(loss))(srcs[0]), np.float64)
    assert np.isfinite(g).all() and np.abs(g).max() > 0
    d = jnp.asarray(rng.normal(size=srcs[0].shape), jnp.float32)
    h = 1e-3
    fd = (float(loss(srcs[0] + h * d)) - float(loss(srcs[0] - h * d))) / (2 * h)
    assert float(np.sum(g * np.asarray(d))) == pytest.approx(fd, rel=0.02, abs=0.02)


@pytest.mark.parametrize("case", ["source_rank", "target_channels", "source_mask", "target_mask", "max_scale"])
def test_color_transfer_bad_inputs(case):
    src, tgt, kw = np.full((8, 8, 3), 0.5, np.float32), np.full((6, 6, 3), 0.4, np.float32), {}
    if case == "source_rank":
        src = src[..., 0]
    elif case == "target_channels":
        tgt = np.full((6, 6, 4), 0.4, np.float32)
    elif case == "source_mask":
        kw["source_mask"] = np.ones((6, 6), np.float32)
    elif case == "target_mask":
        kw["target_mask"] = np.ones((8, 8), np.float32)
    else:
        kw["max_scale"] = 0.5
    with pytest.raises((ValueError, TypeError), match="color_transfer"):
        color_transfer(src, tgt, **kw)


# --------------------------------------------------------------------------------------------
# complete_texture


def test_result_structure_and_no_black_or_nan(light_and_dark, face):
    template, runs = light_and_dark
    for name, (_, raw, out) in runs.items():
        assert isinstance(out, TextureCompletion)
        albedo = np.asarray(out.albedo)
        assert albedo.shape == (R, R, 3) and albedo.dtype == np.float32, name
        assert np.isfinite(albedo).all() and albedo.min() >= 0.0 and albedo.max() <= 1.0, name
        # the black unseen texels are all filled
        assert albedo.max(-1).min() > 0.02, name
        assert albedo[~face].max(-1).min() > 0.05, name
        assert set(out.masks) == {"seen", "face", "error", "skin", "blend"}, name
        for k, m in out.masks.items():
            assert np.shape(m) == (R, R), (name, k)
        assert np.asarray(out.template).shape == (R, R, 3)
        # far from the face (beyond the blend region) the result is the tone-matched template
        outside = np.asarray(out.masks["blend"]) < 0.5
        assert outside.sum() > 0.15 * R * R  # the scalp, ears and neck (the face has most of the layout)
        np.testing.assert_allclose(albedo[outside], np.asarray(out.template)[outside], atol=1e-6)


def test_observed_skin_is_kept(light_and_dark):
    """The interior observed skin (away from the face edge and the replaced features) is not
    tone-shifted: mean CIELAB difference to the input below 2 units."""
    _, runs = light_and_dark
    for name, (truth, raw, out) in runs.items():
        interior = np.asarray(erode_mask(np.asarray(out.masks["skin"], np.float32), R // 24)) > 0.5
        assert interior.sum() > 0.05 * R * R, name
        de = _delta_e(out.albedo, raw)[interior]
        assert de.mean() < 2.0 and np.percentile(de, 95) < 5.0, (name, de.mean(), np.percentile(de, 95))


def test_unseen_head_takes_the_observed_tone(light_and_dark, face):
    template, runs = light_and_dark
    outside = ~face
    means = {}
    for name, (truth, raw, out) in runs.items():
        skin = np.asarray(out.masks["skin"]) > 0.5
        observed = _lab(raw)[skin].mean(0)
        filled = _lab(out.albedo)[outside].mean(0)
        untouched = _lab(template)[outside].mean(0)
        # the filled head is within a few units of the observed face's mean colour, much closer
        # than the mid-tone template it was made from
        assert np.linalg.norm(filled - observed) < 6.0, (name, filled, observed)
        assert np.linalg.norm(filled - observed) < 0.4 * np.linalg.norm(untouched - observed), name
        means[name] = filled
        # the reported ITA is the observed skin's
        assert out.ita == pytest.approx(float(ita_of(np.median(raw[skin], axis=0))), abs=5.0), name
    assert means["light"][0] - means["dark"][0] > 20.0
    assert runs["light"][2].ita > 35.0 and runs["dark"][2].ita < -10.0


def test_partly_seen_face_is_filled_without_a_seam(lm, face):
    """A face seen only on one side (a turned head): the unseen side is filled with the observed
    tone and there is no jump along the edge of the observed part."""
    truth = np.asarray(skin_albedo(R, ita=35.0, seed=3))
    u = (np.arange(R) + 0.5) / R
    seen = face & (u[None, :] > 0.42)
    raw = truth * seen[..., None]
    out = complete_texture(raw, seen)
    albedo = np.asarray(out.albedo)
    assert np.isfinite(albedo).all()
    unseen_face = face & ~seen
    assert unseen_face.sum() > 100
    skin = np.asarray(out.masks["skin"]) > 0.5
    observed = _lab(raw)[skin].mean(0)
    # the unseen cheek is skin-coloured like the observed one, not black
    filled = _lab(albedo)[unseen_face & (np.asarray(out.masks["error"]) < 0.5)]
    assert np.abs(filled.mean(0) - observed).max() < 6.0
    assert np.percentile(filled[:, 0], 5) > observed[0] - 20.0
    # across the vertical edge u ≈ 0.42 inside the face: neighbour differences like elsewhere
    j = int(np.ceil(0.42 * R - 0.5))  # first seen column
    rows = face[:, j - 3] & face[:, j + 2] & (np.asarray(out.masks["error"])[:, j - 3 : j + 3] < 0.5).all(1)
    assert rows.sum() >= 5
    edge = np.abs(_lab(albedo[rows, j]) - _lab(albedo[rows, j - 1]))[:, 0]
    typical = np.abs(np.diff(_lab(albedo[rows, j - 3 : j + 3])[..., 0], axis=1)).mean()
    assert edge.mean() < 3.0 * typical + 1.0, (edge.mean(), typical)


def test_warm_up_compiles_the_programs_complete_texture_runs(lm):
    """warm_up_completion compiles the painted skin and the Poisson blend of complete_texture
    for its resolution (the pipeline's call: a default template, a confidence map), so the call
    after it compiles neither again; the result is the one without a warm-up."""
    from machlib.texture._complete import _await_warm_up, _paint, warm_up_completion
    from machlib.texture._poisson import _blend_jit

    r = 96  # a resolution no other test compiles
    seen = np.asarray(polygon_sdf(lm[np.asarray(face_oval())], r)) < 0
    raw = np.asarray(skin_albedo(r, ita=30.0, seed=3)) * seen[..., None]
    confidence = seen.astype(np.float32)
    before = complete_texture(raw, seen, confidence=confidence).albedo  # compiles them
    _paint.clear_cache()
    _blend_jit.clear_cache()
    warm_up_completion(r)
    _await_warm_up(r)
    compiled = (_paint._cache_size(), _blend_jit._cache_size())
    assert compiled == (1, 1)
    after = complete_texture(raw, seen, confidence=confidence).albedo
    assert (_paint._cache_size(), _blend_jit._cache_size()) == compiled
    np.testing.assert_array_equal(after, before)


def test_deterministic(light_and_dark, face):
    template, runs = light_and_dark
    _, raw, first = runs["light"]
    again = complete_texture(raw, face, template_albedo=template)
    np.testing.assert_array_equal(again.albedo, first.albedo)
    np.testing.assert_array_equal(again.template, first.template)
    assert again.ita == first.ita


def test_makeup_strength_changes_only_the_lips(light_and_dark, face):
    template, runs = light_and_dark
    _, raw, plain = runs["light"]
    painted = complete_texture(raw, face, template_albedo=template, lipstick=0.8)
    d = np.abs(np.asarray(painted.albedo) - np.asarray(plain.albedo)).max(-1)
    assert d.max() > 0.05
    lm = np.asarray(default_template().landmark_uv)
    v = (np.arange(R) + 0.5) / R
    # nothing changes above the nose tip (landmark 1) or outside the face
    assert d[v < lm[1, 1]].max() == 0.0 and d[~face].max() == 0.0


@pytest.mark.parametrize(
    "case",
    ["not_square", "too_small", "seen_shape", "transfer", "dilate", "erode", "nothing_seen", "landmarks", "rank"],
)
def test_bad_inputs_raise_naming_complete_texture(case, face):
    raw, seen, kw = np.full((R, R, 3), 0.6, np.float32), face, {}
    if case == "not_square":
        raw = np.full((R, R + 8, 3), 0.6, np.float32)
    elif case == "too_small":
        raw, seen = np.full((8, 8, 3), 0.6, np.float32), np.ones((8, 8), bool)
    elif case == "seen_shape":
        seen = face[:-1]
    elif case == "transfer":
        kw["transfer"] = ("mouth", "eyes")
    elif case == "dilate":
        kw["dilate"] = -0.01
    elif case == "erode":
        kw["erode"] = -0.01
    elif case == "nothing_seen":
        seen = np.zeros((R, R), bool)
    elif case == "landmarks":
        kw["landmarks_uv"] = np.zeros((68, 2), np.float32)
    else:
        raw = np.full((R, R), 0.6, np.float32)
    with pytest.raises((ValueError, TypeError), match="complete_texture"):
        complete_texture(raw, seen, **kw)
