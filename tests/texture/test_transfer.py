"""Colour and skin-detail transfer from the seen face onto the completed head (issue 15)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from jaxtyping import TypeCheckError
from scipy import ndimage

from machlib.geometry import default_template
from machlib.texture import (
    complete_texture,
    detail_patches,
    region_masks,
    skin_albedo,
    skin_detail,
    srgb_to_lab,
    synthesize_detail,
    transfer_skin,
)

from helpers import x64

R = 64


def _box(r=R, lo=8, hi=40):
    m = np.zeros((r, r), np.float32)
    m[lo:hi, lo:hi] = 1.0
    return m


# --------------------------------------------------------------------------------------------
# detail_patches / synthesize_detail


def test_detail_patches_lie_inside_the_mask_and_follow_the_seed():
    m = _box()
    c = detail_patches(m, patch=16, seed=3)
    assert c.shape == (R // 8 + 2, R // 8 + 2, 2) and c.dtype == np.int32
    assert c.min() >= 8 and c.max() + 16 <= 40  # whole windows inside the box
    np.testing.assert_array_equal(c, detail_patches(m, patch=16, seed=3))
    assert not np.array_equal(c, detail_patches(m, patch=16, seed=4))
    # a box too small for the patch: the window shrinks and is centred on a fitting one
    small = detail_patches(_box(lo=20, hi=30), patch=16, seed=0)
    assert small.min() >= 20 - 4 and small.max() <= 30 - 8 + 4 - 4


@pytest.mark.parametrize("bad", [{"patch": 7}, {"patch": 10 ** 3}, {"patch": 9}])
def test_detail_patches_bad_input(bad):
    with pytest.raises(ValueError, match="detail_patches"):
        detail_patches(np.ones((R, R)), **bad)


def test_synthesize_detail_keeps_the_amplitude_without_tile_seams():
    src = jax.random.normal(jax.random.PRNGKey(0), (128, 128, 1))
    out = np.asarray(synthesize_detail(src, detail_patches(np.ones((128, 128)), patch=16, seed=1), patch=16))
    # sin windows with sum of squares 1: white noise keeps its variance everywhere (rows and
    # columns at tile borders and centres alike)
    row_sd = out[..., 0].std(axis=1)
    assert 0.9 < out.std() < 1.1
    assert row_sd.min() > 0.75 and row_sd.max() < 1.25
    # a constant source: the sum of the (non-squared) windows, between 1 and 2, no gaps
    c = detail_patches(np.ones((128, 128)), patch=16, seed=1)
    flat = synthesize_detail(jnp.ones((128, 128, 1)), c, patch=16)
    assert float(flat.min()) >= 1.0 - 1e-5 and float(flat.max()) <= 2.0


def test_synthesize_detail_copies_the_source_windows():
    src = jnp.arange(64 * 64, dtype=jnp.float32).reshape(64, 64, 1)
    c = np.zeros((10, 10, 2), np.int32)
    c[...] = (5, 7)
    out = np.asarray(synthesize_detail(src, c, patch=16))
    # output (0, 0) is canvas (8, 8): texel (8, 8) of tile (0, 0), (8, 0) of tile (0, 1), (0, 8) of
    # tile (1, 0) and (0, 0) of tile (1, 1); every tile copies the window at (5, 7)
    w = np.sin(np.pi * (np.arange(16) + 0.5) / 16)
    expect = sum(w[a] * w[b] * float(src[5 + a, 7 + b, 0]) for a in (0, 8) for b in (0, 8))
    np.testing.assert_allclose(out[0, 0, 0], expect, rtol=1e-5)


def test_synthesize_detail_jit_vmap_and_grad():
    c = detail_patches(np.ones((32, 32)), patch=8, seed=2)
    src = jax.random.normal(jax.random.PRNGKey(1), (3, 32, 32, 2))
    f = jax.jit(lambda s: synthesize_detail(s, c, patch=8))
    batched = jax.vmap(f)(src)
    np.testing.assert_allclose(batched[1], synthesize_detail(src[1], c, patch=8), rtol=1e-5, atol=1e-6)
    with x64():
        s = jax.random.normal(jax.random.PRNGKey(2), (16, 16, 1), jnp.float64)
        c16 = detail_patches(np.ones((16, 16)), patch=8, seed=0)
        check_grads(lambda x: synthesize_detail(x, c16, patch=8), (s,), order=1, modes=["fwd", "rev"], eps=1e-6)


def test_synthesize_detail_bad_input():
    with pytest.raises((ValueError, TypeCheckError), match="synthesize_detail"):
        synthesize_detail(jnp.zeros((32, 32, 1)), np.zeros((3, 3, 2), np.int32), patch=8)


# --------------------------------------------------------------------------------------------
# skin_detail


def test_skin_detail_is_the_band_pass_inside_the_mask():
    key = jax.random.PRNGKey(0)
    base = jnp.full((R, R, 3), jnp.array([0.7, 0.5, 0.4]))
    grain = 0.03 * jax.random.normal(key, (R, R, 1))
    ramp = jnp.linspace(-0.1, 0.1, R)[None, :, None]  # low frequency: not detail
    tex = base + grain + ramp
    m = _box()
    d = np.asarray(skin_detail(tex, m, sigma=2.0))
    assert np.all(d[m == 0] == 0)
    inner = d[12:36, 12:36, 0]
    assert abs(inner.mean()) < 0.3 and inner.std() > 1.0  # the grain in L*, zero mean
    # the ramp alone gives (almost) no detail, even at the mask's edge (normalised low-pass)
    flat = np.asarray(skin_detail(base + ramp, m, sigma=2.0))
    assert np.abs(flat).max() < 0.2


def test_skin_detail_jit_vmap_and_grad():
    m = jnp.asarray(_box(16, 2, 14))
    tex = 0.5 + 0.1 * jax.random.uniform(jax.random.PRNGKey(3), (2, 16, 16, 3))
    out = jax.jit(jax.vmap(lambda t: skin_detail(t, m, sigma=1.5)))(tex)
    np.testing.assert_allclose(out[0], skin_detail(tex[0], m, sigma=1.5), rtol=1e-4, atol=1e-4)
    with x64():
        t64 = tex[0].astype(jnp.float64)
        check_grads(lambda t: skin_detail(t, m.astype(jnp.float64), sigma=1.5), (t64,), order=1,
                    modes=["fwd", "rev"], eps=1e-6, atol=1e-3, rtol=1e-3)


def test_skin_detail_bad_input():
    with pytest.raises((ValueError, TypeCheckError), match="skin_detail"):
        skin_detail(jnp.zeros((8, 8, 3)), jnp.ones((8, 8)), sigma=0.0)


# --------------------------------------------------------------------------------------------
# transfer_skin


def _pair():
    key = jax.random.split(jax.random.PRNGKey(5), 2)
    warm = jnp.array([0.78, 0.52, 0.40]) + 0.04 * jax.random.normal(key[0], (R, R, 1))
    pale = jnp.array([0.85, 0.72, 0.66]) + 0.005 * jax.random.normal(key[1], (R, R, 1))
    return jnp.clip(pale, 0, 1), jnp.clip(warm, 0, 1)


def test_transfer_skin_matches_colour_statistics_and_detail():
    pale, warm = _pair()
    ref = _box()
    tgt = 1.0 - ref
    out = transfer_skin(pale, warm, reference_mask=ref, target_mask=tgt, weight=tgt, patch=16, sigma=2.0)
    lab_out, lab_ref = np.asarray(srgb_to_lab(out)), np.asarray(srgb_to_lab(warm))
    unseen, seen = tgt > 0.5, ref > 0.5
    np.testing.assert_allclose(lab_out[unseen].mean(0), lab_ref[seen].mean(0), atol=1.0)
    # the detail's amplitude is the reference's (the pale source was nearly flat)
    sd_out, sd_ref = lab_out[unseen][:, 0].std(), lab_ref[seen][:, 0].std()
    assert 0.7 * sd_ref < sd_out < 1.3 * sd_ref
    # weight 0: untouched; deterministic for a seed
    kept = transfer_skin(pale, warm, reference_mask=ref, target_mask=tgt, weight=jnp.zeros((R, R)), patch=16)
    np.testing.assert_allclose(kept, pale, atol=2e-3)
    again = transfer_skin(pale, warm, reference_mask=ref, target_mask=tgt, weight=tgt, patch=16, sigma=2.0)
    np.testing.assert_array_equal(out, again)


def test_transfer_skin_grad_and_jit():
    pale, warm = _pair()
    ref, tgt = jnp.asarray(_box(16, 2, 12)), jnp.asarray(1.0 - _box(16, 2, 12))
    with x64():
        p64, w64 = pale[:16, :16].astype(jnp.float64), warm[:16, :16].astype(jnp.float64)
        f = lambda a, b: transfer_skin(a, b, reference_mask=ref, target_mask=tgt, weight=0.5 * tgt,
                                       patch=8, sigma=1.5)
        check_grads(f, (p64, w64), order=1, modes=["fwd", "rev"], eps=1e-6, atol=1e-3, rtol=1e-3)
    jitted = jax.jit(lambda a, b: transfer_skin(a, b, reference_mask=ref, target_mask=tgt, weight=tgt,
                                                detail=0.0, patch=8))
    np.testing.assert_allclose(jitted(pale[:16, :16], warm[:16, :16]),
                               transfer_skin(pale[:16, :16], warm[:16, :16], reference_mask=ref, target_mask=tgt,
                                             weight=tgt, detail=0.0, patch=8), atol=1e-5)


def test_transfer_skin_vmap_matches_a_loop():
    pale, warm = _pair()
    ref, tgt = jnp.asarray(_box(16, 2, 12)), jnp.asarray(1.0 - _box(16, 2, 12))
    a = jnp.stack([pale[:16, :16], pale[16:32, 16:32]])
    b = jnp.stack([warm[:16, :16], warm[16:32, 16:32]])
    f = lambda x, y: transfer_skin(x, y, reference_mask=ref, target_mask=tgt, weight=tgt, patch=8, sigma=1.5)
    batched = jax.jit(jax.vmap(f))(a, b)
    for i in range(2):
        np.testing.assert_allclose(batched[i], f(a[i], b[i]), atol=1e-5)


@pytest.mark.parametrize("bad", [{"reference_mask": np.zeros((R, R))}, {"max_scale": 0.5}, {"patch": 5}, {"patch": 9},
                                 {"weight": np.ones((3, 3))}])
def test_transfer_skin_bad_input(bad):
    pale, warm = _pair()
    kw = {"reference_mask": _box(), "target_mask": 1 - _box(), "weight": np.ones((R, R))} | bad
    with pytest.raises((ValueError, TypeCheckError), match="transfer_skin"):
        transfer_skin(pale, warm, **kw)


# --------------------------------------------------------------------------------------------
# complete_texture(skin_transfer=, detail=)


@pytest.fixture(scope="module")
def face_case():
    r = 128
    lm = default_template().landmark_uv
    face = np.asarray(region_masks(lm, r)["face"]) > 0.5
    warm = np.asarray(skin_albedo(r, ita=10.0, seed=7)) * np.array([1.0, 0.9, 0.85], np.float32)
    return r, lm, face, warm


@pytest.mark.slow
def test_complete_texture_transfers_the_face_tone_to_the_head(face_case):
    r, lm, face, warm = face_case
    pale = np.asarray(skin_albedo(r, ita=50.0, seed=1))  # a pale template with its own grain
    conf = face.astype(np.float32)
    on = np.asarray(complete_texture(warm, face, template_albedo=pale, confidence=conf).albedo)
    off = np.asarray(complete_texture(warm, face, template_albedo=pale, confidence=conf, skin_transfer=False,
                                      detail=0.0).albedo)
    head = ~face & ~np.asarray(region_masks(lm, r, dilate=0.03)["face"] > 0.5)
    lab = lambda x: np.asarray(srgb_to_lab(x))
    ref_b = lab(warm)[face][:, 2].mean()
    # the b* (yellow) of the head away from the face moves toward the face's
    assert abs(lab(on)[head][:, 2].mean() - ref_b) < abs(lab(off)[head][:, 2].mean() - ref_b)
    # kept texels kept: exactly, but at the kept region's edge, where they fade into the solve
    kept = face & (conf >= 0.5)
    deep = ndimage.binary_erosion(kept, iterations=int(np.ceil(2 * 0.006 * r)) + 1)
    np.testing.assert_array_equal(on[deep], warm[deep])
    np.testing.assert_allclose(on[kept], warm[kept], atol=0.02)
