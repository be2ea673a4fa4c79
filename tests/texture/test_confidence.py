"""Keep what is seen (issue 15): per-texel confidence, mirroring the better-seen half, and
:func:`complete_texture` with a confidence (the portrait's own features kept where seen well)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from jaxtyping import TypeCheckError
from scipy import ndimage

from machlib.geometry import default_template, face_oval
from machlib.texture import complete_texture, mirror_fill, polygon_sdf, region_masks, skin_albedo, texel_confidence

from helpers import x64

R = 128


# --------------------------------------------------------------------------------------------
# texel_confidence


def test_texel_confidence_ramps_to_the_border_and_keeps_soft_weights():
    seen = np.zeros((40, 40), np.float32)
    seen[5:35, 5:35] = 0.8
    c = np.asarray(texel_confidence(seen, edge=5 / 40))
    assert c.shape == (40, 40) and c.dtype == np.float32
    assert np.all(c <= seen + 1e-7)
    np.testing.assert_allclose(c[20, 20], 0.8, rtol=1e-6)  # deep inside: the weight itself
    # a linear ramp over 5 texels from the border (row 5) inwards
    np.testing.assert_allclose(c[5:11, 20], 0.8 * np.array([1, 2, 3, 4, 5, 5]) / 5, rtol=1e-6)
    assert np.all(c[:5] == 0) and np.all(c[35:] == 0)
    np.testing.assert_array_equal(texel_confidence(seen, edge=0.0), seen)  # no ramp


@pytest.mark.parametrize("bad", [dict(seen=np.zeros((4, 4, 1))), dict(seen=np.zeros((4, 4)), edge=-0.1)])
def test_texel_confidence_bad_input(bad):
    with pytest.raises((ValueError, TypeCheckError), match="texel_confidence"):  # jaxtyping checks shapes in tests
        texel_confidence(**bad)


def test_texel_confidence_gradient_jit_vmap():
    rng = np.random.default_rng(0)
    seen = rng.uniform(0.05, 0.95, (3, 12, 12))
    with x64():
        s = jnp.asarray(seen[0], jnp.float64)
        check_grads(lambda x: texel_confidence(x, edge=3 / 12), (s,), order=1, modes=["fwd", "rev"], eps=1e-6)
    batch = jnp.asarray(seen, jnp.float32)
    loop = jnp.stack([texel_confidence(x, edge=0.25) for x in batch])
    np.testing.assert_allclose(jax.vmap(lambda x: texel_confidence(x, edge=0.25))(batch), loop, atol=1e-7)
    np.testing.assert_allclose(jax.jit(lambda x: texel_confidence(x, edge=0.25))(batch[0]), loop[0], atol=1e-7)


# --------------------------------------------------------------------------------------------
# mirror_fill


def test_mirror_fill_prefers_the_texel_then_its_mirror():
    rng = np.random.default_rng(1)
    tex = rng.uniform(size=(6, 8, 3)).astype(np.float32)
    conf = np.zeros((6, 8), np.float32)
    conf[:, :3] = 1.0  # the subject's right side seen well
    conf[:, 3] = 0.5  # half-seen column next to the middle
    out, c = (np.asarray(a) for a in mirror_fill(tex, conf))
    np.testing.assert_allclose(out[:, :3], tex[:, :3])  # seen: unchanged
    np.testing.assert_allclose(out[:, 5:], tex[:, 2::-1], atol=1e-7)  # unseen: the mirror image
    np.testing.assert_allclose(c[:, 5:], 1.0)
    np.testing.assert_allclose(out[:, 4], tex[:, 4 - 1])  # mirror of column 4 is 3 (weight 0.5, alone)
    np.testing.assert_allclose(c[:, 4], 0.5)
    # strength scales the mirror's weight; nothing seen anywhere: unchanged, confidence 0
    _, c2 = mirror_fill(tex, conf, strength=0.5)
    np.testing.assert_allclose(np.asarray(c2)[:, 5:], 0.5)
    out0, c0 = mirror_fill(tex, np.zeros_like(conf))
    np.testing.assert_array_equal(out0, tex)
    assert float(jnp.max(c0)) == 0.0
    with pytest.raises((ValueError, TypeCheckError), match="mirror_fill"):
        mirror_fill(tex, conf[:, :4])
    with pytest.raises(ValueError, match="mirror_fill"):
        mirror_fill(tex, conf, strength=1.5)


def test_mirror_fill_gradient_jit_vmap():
    rng = np.random.default_rng(2)
    with x64():
        tex = jnp.asarray(rng.uniform(size=(5, 6, 2)), jnp.float64)
        conf = jnp.asarray(rng.uniform(0.05, 0.95, (5, 6)), jnp.float64)
        check_grads(lambda t, c: mirror_fill(t, c, strength=0.7)[0], (tex, conf), order=1, modes=["fwd", "rev"],
                    eps=1e-6)
        check_grads(lambda c: mirror_fill(tex, c)[1], (conf,), order=1, modes=["rev"], eps=1e-6)
        # no NaN gradient where nothing is seen (the double where)
        g = jax.grad(lambda c: jnp.sum(mirror_fill(tex, c)[0]))(jnp.zeros((5, 6), jnp.float64))
        assert np.isfinite(np.asarray(g)).all()
    texs = jnp.asarray(rng.uniform(size=(3, 5, 6, 2)), jnp.float32)
    confs = jnp.asarray(rng.uniform(size=(3, 5, 6)), jnp.float32)
    batched = jax.jit(jax.vmap(mirror_fill))(texs, confs)
    for i in range(3):
        one = mirror_fill(texs[i], confs[i])
        np.testing.assert_allclose(batched[0][i], one[0], atol=1e-6)
        np.testing.assert_allclose(batched[1][i], one[1], atol=1e-6)


# --------------------------------------------------------------------------------------------
# complete_texture(confidence=..., mirror=...)


@pytest.fixture(scope="module")
def setup():
    lm = np.asarray(default_template().landmark_uv, np.float32)
    face = np.asarray(polygon_sdf(lm[np.asarray(face_oval())], R)) < 0
    truth = np.asarray(skin_albedo(R, ita=-10.0, seed=4))
    truth = 0.5 * (truth + truth[:, ::-1])  # a symmetric face, so its mirror image is the truth
    template = np.asarray(skin_albedo(R, ita=45.0, seed=1))
    return lm, face, truth, template


def test_confidence_keeps_the_portraits_features(setup):
    lm, face, truth, template = setup
    masks = {k: np.asarray(v) for k, v in region_masks(lm, R).items()}
    feats = np.maximum.reduce([masks[k] for k in ("eyes", "lips")]) > 0.5
    seen = face.astype(np.float32)
    conf = np.asarray(texel_confidence(seen, edge=0.01))
    raw = truth * face[..., None]
    old = np.asarray(complete_texture(raw, face, template_albedo=template).albedo)
    new = np.asarray(complete_texture(raw, face, template_albedo=template, confidence=conf).albedo)
    sure = conf > 0.99
    # the template painted over the eyes and lips before; now the portrait's stay
    assert np.abs(old - truth)[feats & sure].mean() > 0.03
    np.testing.assert_allclose(new[sure], truth[sure], atol=1.5 / 255)
    assert np.isfinite(new).all() and new.min() >= 0 and new.max() <= 1


def test_mirror_fills_the_unseen_half(setup):
    lm, face, truth, template = setup
    u = (np.arange(R) + 0.5) / R
    seen = (face & (u[None, :] < 0.5)).astype(np.float32)  # only the subject's right half is seen
    conf = np.asarray(texel_confidence(seen, edge=0.01))
    raw = truth * seen[..., None]
    plain = np.asarray(complete_texture(raw, seen > 0.5, template_albedo=template, confidence=conf).albedo)
    mirrored = np.asarray(complete_texture(raw, seen > 0.5, template_albedo=template, confidence=conf,
                                           mirror=True).albedo)
    other = face & (u[None, :] > 0.55)
    err_plain = np.abs(plain - truth)[other].mean()
    err_mirror = np.abs(mirrored - truth)[other].mean()
    assert err_mirror < 0.01 < err_plain, (err_mirror, err_plain)
    with pytest.raises((ValueError, TypeCheckError), match="confidence"):
        complete_texture(raw, seen > 0.5, template_albedo=template, confidence=conf[:8])


def test_kept_face_meets_the_completed_head_without_a_seam(setup):
    """The sure texels keep the portrait's colour exactly, and the completed texels next to them
    continue it: no step at the border of the kept region (the old blend back by confidence left
    one), while a dark rim (hair) at that border stains the head less for ``max_offset``."""
    lm, face, truth, template = setup
    seen = face.astype(np.float32)
    conf = np.asarray(texel_confidence(seen, edge=0.02))
    raw = np.clip(truth * face[..., None] + 0.12, 0, 1)  # brighter than any tone match would give
    out = np.asarray(complete_texture(raw, face, template_albedo=template, confidence=conf).albedo)
    sure = conf >= 0.5
    # exactly, but within 2·feather of the kept region's edge, where they fade into the solve
    deep = ndimage.binary_erosion(sure, iterations=int(np.ceil(2 * 0.006 * R)) + 1)
    np.testing.assert_allclose(out[deep], raw[deep], atol=1e-6)
    exact = np.asarray(complete_texture(raw, face, template_albedo=template, confidence=conf, feather=0.0).albedo)
    np.testing.assert_allclose(exact[sure], raw[sure], atol=1e-6)
    # the step across the border of the kept region: like the texture's own texel-to-texel steps
    edge = sure & ~np.roll(sure, 1, axis=1)  # kept texels whose left neighbour was completed
    rows, cols = np.nonzero(edge)
    step = np.abs(out[rows, cols] - out[rows, cols - 1]).max(-1)
    inner = np.abs(np.diff(raw, axis=1)).max(-1)[sure[:, 1:] & sure[:, :-1]]
    assert np.median(step) < 2 * np.median(inner) + 0.01, (np.median(step), np.median(inner))
    # a dark rim of "hair" at the top of the kept region stains the completed head above it much
    # less with the offsets clipped (the earlier face-into-template solve still carries some)
    hair = raw.copy()
    rim = sure & ~np.roll(sure, 6, axis=0)
    hair[rim] = 0.05

    def done(x, m, s):
        return np.asarray(complete_texture(x, face, template_albedo=template, confidence=conf, max_offset=m,
                                           offset_smooth=s).albedo)

    beyond = (~sure) & np.roll(rim, -3, axis=0)  # completed texels just above the rim
    assert beyond.any()
    clipped = np.abs(done(hair, 0.05, 0.0) - done(raw, 0.05, 0.0))[beyond].max()
    unclipped = np.abs(done(hair, 1.0, 0.0) - done(raw, 1.0, 0.0))[beyond].max()
    assert clipped < 0.5 * unclipped, (clipped, unclipped)
    # smoothing the offsets along the edge (the default) also keeps a thin rim's stain small
    smoothed = np.abs(done(hair, 0.12, 0.01) - done(raw, 0.12, 0.01))[beyond].max()
    assert smoothed < 0.5 * unclipped, (smoothed, unclipped)


def test_kept_black_texels_are_floored(setup):
    """A seen black patch (a frame, a deep shadow) is kept, but never as black: the albedo is
    clipped to ``[floor, 1]``."""
    lm, face, truth, template = setup
    conf = np.asarray(texel_confidence(face.astype(np.float32), edge=0.01))
    raw = truth * face[..., None]
    patch = np.zeros(face.shape, bool)
    patch[60:64, 40:50] = True
    patch &= conf > 0.99
    assert patch.any()
    raw[patch] = 0.0
    out = np.asarray(complete_texture(raw, face, template_albedo=template, confidence=conf, floor=0.03).albedo)
    np.testing.assert_allclose(out[patch], 0.03, atol=1e-6)
    assert out.min() >= 0.03 - 1e-6
    with pytest.raises(ValueError, match="floor"):
        complete_texture(raw, face, template_albedo=template, floor=1.0)
