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
from machlib.texture import (
    complete_texture,
    eye_confidence,
    eye_openness,
    lab_to_srgb,
    lip_confidence,
    lip_misfit,
    mirror_fill,
    polygon_sdf,
    region_masks,
    skin_albedo,
    skin_confidence,
    skin_low_pass,
    srgb_to_lab,
    texel_confidence,
)
from machlib.texture._regions import LIPS_INNER, LIPS_OUTER, RIGHT_EYE, mirrored

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
# skin_confidence


def _skin_scene(n=24, seed=0):
    """A shaded skin patch (brightness ramp 0.75-1.05, 3 % colour noise per channel) with a dark
    strand and a strand of reddish-blond hair across it, and a band of that hair beside it (rows
    0-3: the ``other`` pixels)."""
    rng = np.random.default_rng(seed)
    img = np.array([0.80, 0.62, 0.52]) * np.linspace(0.75, 1.05, n)[:, None, None] * np.ones((n, n, 3))
    img = img * (1.0 + 0.03 * rng.standard_normal((n, n, 3)))
    blond = np.array([0.75, 0.55, 0.38])
    img[:4] = blond * (1.0 + 0.03 * rng.standard_normal((4, n, 3)))
    img[10:12, 4:20] = [0.20, 0.15, 0.12]  # a dark strand (or the gap between jaw and hair)
    img[16:18, 4:20] = blond  # a strand of the hair's own colour
    weights = np.ones((n, n))
    weights[:4] = 0.0
    return np.clip(img, 0, 1).astype(np.float32), weights.astype(np.float32), (1.0 - weights).astype(np.float32)


def test_skin_confidence_keeps_shaded_skin_and_drops_what_is_no_skin():
    img, w, other = _skin_scene()
    c = np.asarray(skin_confidence(img, w))
    assert c.shape == img.shape[:2] and c.dtype == np.float32
    assert np.all((c >= 0) & (c <= 1))
    skin = np.ones(c.shape, bool)
    skin[:4] = skin[10:12, 4:20] = skin[16:18, 4:20] = False
    assert np.mean(c[skin] > 0.9) > 0.98  # the shading ramp is skin (all but the noise's far tail)
    assert c[10:12, 4:20].max() < 0.01  # the dark strand is not
    # the blond strand lies near the skin colour: the skin model alone keeps some of it, the hair
    # beside it (other) drops it, and the skin stays
    with_hair = np.asarray(skin_confidence(img, w, other=other))
    assert with_hair[16:18, 4:20].max() < 0.05 and c[16:18, 4:20].min() > 0.3
    assert np.mean(with_hair[skin] > 0.9) > 0.98
    # uint8 input is the same image (to float32 rounding: inside the compiled program XLA may scale by
    # 1/255 where numpy divides, one ulp of a channel that the skin model's slope turns into ~1e-5)
    u8 = (img * 255 + 0.5).astype(np.uint8)
    np.testing.assert_allclose(skin_confidence(u8, w), skin_confidence(u8.astype(np.float32) / 255, w), atol=5e-5)


def test_skin_confidence_gradient_jit_vmap():
    img, w, other = _skin_scene(n=10, seed=2)
    img[3:5] = img[3:5] * 0.6  # distances inside the smoothstep's ramp, so the gradient is not all zero
    with x64():
        x = jnp.asarray(img, jnp.float64)
        f = lambda x, w, o: skin_confidence(x, w, other=o, low=1.0, high=4.0)  # noqa: E731
        assert float(jnp.abs(jax.grad(lambda x: f(x, w, other).sum())(x)).max()) > 0
        check_grads(f, (x, jnp.asarray(w, jnp.float64) + 0.1, jnp.asarray(other, jnp.float64) + 0.1), order=1,
                    modes=["fwd", "rev"], eps=1e-6, atol=1e-4, rtol=1e-4)
    batch = jnp.stack([jnp.asarray(_skin_scene(n=10, seed=s)[0]) for s in range(3)])
    g = lambda x: skin_confidence(x, w, other=other)  # noqa: E731
    loop = jnp.stack([g(x) for x in batch])
    # the loop's calls compile alone, at the one-shot optimisation level (machlib._jit); under
    # vmap and jit the function is part of another program: float32 rounding may differ by an ulp
    np.testing.assert_allclose(jax.vmap(g)(batch), loop, atol=4e-6)
    np.testing.assert_allclose(jax.jit(g)(batch[0]), loop[0], atol=4e-6)


@pytest.mark.parametrize("bad", [
    dict(image=np.zeros((4, 4)), weights=np.ones((4, 4))),
    dict(image=np.zeros((4, 4, 3)), weights=np.ones((4, 5))),
    dict(image=np.zeros((4, 4, 3)), weights=np.zeros((4, 4))),
    dict(image=np.zeros((4, 4, 3)), weights=-np.ones((4, 4))),
    dict(image=np.zeros((4, 4, 3)), weights=np.ones((4, 4)), other=np.zeros((4, 4))),
    dict(image=np.zeros((4, 4, 3)), weights=np.ones((4, 4)), low=5.0, high=4.0),
    dict(image=np.zeros((4, 4, 3)), weights=np.ones((4, 4)), ratio=(1.0, 1.0)),
    dict(image=np.zeros((4, 4, 3)), weights=np.ones((4, 4)), trim=0.0),
    dict(image=np.zeros((4, 4, 3)), weights=np.ones((4, 4)), rounds=-1),
])
def test_skin_confidence_bad_input(bad):
    with pytest.raises((ValueError, TypeCheckError), match="skin_confidence"):
        skin_confidence(**bad)


# --------------------------------------------------------------------------------------------
# lip_misfit


def _lip_uv(n=6):
    """``(2, n, 2)`` texture coordinates: row 0 across the template's lips (inside them), row 1
    stepping up from the upper lip's top (0.0 to 0.02 UV above it)."""
    lm = np.asarray(default_template().landmark_uv, np.float64)
    inside = 0.5 * (lm[0] + lm[17]) + np.stack([np.linspace(-0.05, 0.05, n), np.zeros(n)], -1)
    above = lm[0] - np.stack([np.zeros(n), np.linspace(0.0, 0.02, n)], -1)
    return np.stack([inside, above]), lm


def test_lip_misfit_weighs_lip_colour_off_the_heads_lips():
    uv, lm = _lip_uv()
    lip = np.ones((2, 6))
    w = np.asarray(lip_misfit(lip, uv, lm, margin=0.004, ramp=0.004))
    assert w.shape == (2, 6) and w.dtype == np.float32
    assert w[0].max() == 0.0  # on the lips: the photo's lips belong there
    assert w[1, 0] == 0.0 and w[1, 1] == 0.0  # the lip line's blur (within margin): kept
    assert np.all(np.diff(w[1]) >= 0) and w[1, -1] == 1.0 and w[1, -2] == 1.0  # then a rise to 1
    half = np.asarray(lip_misfit(0.5 * lip, uv, lm))
    np.testing.assert_allclose(half, 0.5 * np.asarray(lip_misfit(lip, uv, lm)), atol=1e-7)  # times lipness
    assert float(jnp.max(lip_misfit(np.zeros((2, 6)), uv, lm))) == 0.0  # skin-coloured: never


def test_lip_misfit_gradient_jit_vmap():
    uv, lm = _lip_uv()
    uv = uv + np.array([0.015, 0.001])  # row 1: inside the ramp, off its ends, over one edge (no kink)
    lip = np.linspace(0.2, 0.9, 12).reshape(2, 6)
    with x64():
        f = lambda l, u: lip_misfit(l, u, jnp.asarray(lm), margin=0.002, ramp=0.02)  # noqa: E731
        x = (jnp.asarray(lip, jnp.float64), jnp.asarray(uv, jnp.float64))
        assert f(*x).dtype == jnp.float64
        assert float(jnp.abs(jax.grad(lambda u: f(x[0], u).sum())(x[1])).max()) > 0
        check_grads(f, x, order=1, modes=["fwd", "rev"], eps=1e-7, atol=1e-4, rtol=1e-4)
    batch = jnp.stack([jnp.asarray(lip) * s for s in (0.3, 0.6, 1.0)])
    g = lambda l: lip_misfit(l, uv, lm)  # noqa: E731
    loop = jnp.stack([g(b) for b in batch])
    np.testing.assert_allclose(jax.vmap(g)(batch), loop, atol=1e-7)
    np.testing.assert_allclose(jax.jit(g)(batch[1]), loop[1], atol=1e-7)


@pytest.mark.parametrize("bad", [
    dict(lipness=np.ones((4,)), pixel_uv=np.zeros((4, 2))),
    dict(lipness=np.ones((4, 4)), pixel_uv=np.zeros((4, 4, 3))),
    dict(lipness=np.ones((4, 4)), pixel_uv=np.zeros((4, 4, 2)), landmarks_uv=np.zeros((68, 2))),
    dict(lipness=np.ones((4, 4)), pixel_uv=np.zeros((4, 4, 2)), margin=-0.1),
    dict(lipness=np.ones((4, 4)), pixel_uv=np.zeros((4, 4, 2)), ramp=0.0),
])
def test_lip_misfit_bad_input(bad):
    bad = {"landmarks_uv": default_template().landmark_uv, **bad}
    with pytest.raises((ValueError, TypeCheckError), match="lip_misfit"):
        lip_misfit(**bad)


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


def test_mirror_fill_does_not_trust_a_mirror_image_the_clips_cannot_correct():
    # the subject's right cheek in the hair's shade (dark orange), seen; the left one pale, seen
    # in its inner half only: the unseen outer half would take the shaded cheek's mirror image,
    # only 15 % brighter, as seen skin (t1_face0's orange patch at +30°)
    tex = np.zeros((8, 16, 3), np.float32)
    tex[:, :8] = [0.45, 0.25, 0.12]
    tex[:, 8:] = [0.85, 0.70, 0.60]
    conf = np.zeros((8, 16), np.float32)
    conf[:, :12] = 1.0
    _, old = mirror_fill(tex, conf, low_pass=0.1, mismatch=None)
    out, new = (np.asarray(a) for a in mirror_fill(tex, conf, low_pass=0.1))
    np.testing.assert_allclose(np.asarray(old)[:, 12:], 1.0, atol=1e-6)  # before: taken as seen
    assert new[:, 12:].max() < 0.05
    np.testing.assert_array_equal(new[:, :12], conf[:, :12])  # the seen texels keep theirs
    np.testing.assert_array_equal(out[:, :12], tex[:, :12])
    # a mirror image whose low frequencies the clips can match keeps its full weight
    same = np.broadcast_to(np.asarray([0.8, 0.6, 0.5], np.float32), tex.shape).copy()
    same[:, :8] *= 0.9  # 10 % darker: within the gain
    _, c = mirror_fill(same, conf, low_pass=0.1)
    np.testing.assert_allclose(np.asarray(c)[:, 12:], 1.0, atol=1e-4)
    with pytest.raises(ValueError, match="mirror_fill"):
        mirror_fill(tex, conf, low_pass=0.1, mismatch=0.0)
    with x64():  # differentiable with the low-pass and the mismatch
        t64 = jnp.asarray(tex, jnp.float64) + jnp.asarray(np.random.default_rng(3).uniform(0, 0.05, tex.shape))
        c64 = jnp.asarray(np.clip(conf, 0.05, 0.95), jnp.float64)
        check_grads(lambda t, c: mirror_fill(t, c, low_pass=0.1)[0], (t64, c64), order=1, modes=["rev"], eps=1e-6)
        check_grads(lambda c: mirror_fill(t64, c, low_pass=0.1)[1], (c64,), order=1, modes=["rev"], eps=1e-6)


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
# eye_openness, eye_confidence


def _shut(points: np.ndarray, side: int, factor: float) -> np.ndarray:
    """``points`` with one eye's lid middles moved towards each other (``factor`` of the gap)."""
    up, lo = ((159, 145), (386, 374))[side]
    p = points.copy()
    mid = 0.5 * (p[up] + p[lo])
    p[up], p[lo] = mid + factor * (p[up] - mid), mid + factor * (p[lo] - mid)
    return p


def test_eye_openness_measures_the_lid_gap():
    # the template head's landmarks seen from the front (the UV layout stretches the lids)
    lm = np.asarray(default_template().human.landmark_points, np.float64)[:, :2]
    open_ = np.asarray(eye_openness(lm))
    assert open_.shape == (2,) and 0.3 < open_[0] < 0.5
    np.testing.assert_allclose(open_[0], open_[1], rtol=1e-5)  # the template is symmetric
    half = np.asarray(eye_openness(_shut(lm, 0, 0.5)))
    np.testing.assert_allclose(half, [0.5 * open_[0], open_[1]], rtol=1e-5)
    # scale-free: the same ratio in pixels; 3-D points use x and y
    np.testing.assert_allclose(eye_openness(lm * 512.0 + 7.0), open_, rtol=1e-5)
    np.testing.assert_allclose(eye_openness(np.concatenate([lm, np.ones((len(lm), 1))], 1)), open_, rtol=1e-6)
    with pytest.raises((ValueError, TypeCheckError), match="eye_openness"):
        eye_openness(lm[:100])


def test_eye_openness_gradient_jit_vmap():
    lm = np.asarray(default_template().landmark_uv, np.float64)
    with x64():
        check_grads(lambda p: eye_openness(p), (jnp.asarray(lm),), order=1, modes=["fwd", "rev"], eps=1e-6)
        g = jax.grad(lambda p: jnp.sum(eye_openness(p)))(jnp.asarray(_shut(lm, 0, 0.0)))  # a shut lid: finite
        assert np.isfinite(np.asarray(g)).all()
    batch = jnp.asarray(np.stack([_shut(lm, 0, f) for f in (1.0, 0.5, 0.2)]), jnp.float32)
    loop = jnp.stack([eye_openness(x) for x in batch])
    np.testing.assert_allclose(jax.vmap(eye_openness)(batch), loop, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(eye_openness)(batch[1]), loop[1], rtol=1e-6)


def test_eye_confidence_drops_only_the_disagreeing_eye():
    lm = np.asarray(default_template().landmark_uv, np.float32)
    conf = np.full((R, R), 0.9, np.float32)
    geo = np.array([0.4, 0.4], np.float32)
    # both eyes as open as the geometry's: unchanged
    np.testing.assert_array_equal(eye_confidence(conf, lm, geo, geo), conf)
    out = np.asarray(eye_confidence(conf, lm, np.array([0.04, 0.38], np.float32), geo))
    right = np.asarray(polygon_sdf(lm[np.asarray(RIGHT_EYE)], R))
    left = np.asarray(polygon_sdf(lm[np.asarray(mirrored(RIGHT_EYE))], R))
    assert np.all(out <= conf + 1e-7)
    assert np.all(out[right < 0.03] == 0.0)  # the shut eye's lids: the template's
    # below the lid contour (where the photo's lashes land) too, farther than above it
    v = (np.arange(R) + 0.5) / R
    col = int(lm[145, 0] * R)
    below = v[(out[:, col] == 0) & (v > lm[145, 1])].max() - lm[145, 1]
    above = lm[159, 1] - v[(out[:, col] == 0) & (v < lm[159, 1])].min()
    assert below > above + 0.02
    np.testing.assert_array_equal(out[left < 0.1], conf[left < 0.1])  # the open eye keeps its confidence
    far = (right > 0.1) & (left > 0.1)
    np.testing.assert_array_equal(out[far], conf[far])
    # half agreement: a partial drop (smoothstep between low and high)
    mid = np.asarray(eye_confidence(conf, lm, np.array([0.05, 0.4], np.float32), np.array([0.1, 0.4], np.float32)))
    assert 0.1 < mid[right < 0].max() < 0.8
    # narrowed, not shut (a smile): the photo's lids stay, however open the geometry's eyes are
    np.testing.assert_array_equal(eye_confidence(conf, lm, np.array([0.25, 0.3], np.float32), geo), conf)
    for bad in ({"low": 0.6, "high": 0.3}, {"grow": -0.1}, {"down": -0.1}, {"closed": (0.3, 0.1)}):
        with pytest.raises(ValueError, match="eye_confidence"):
            eye_confidence(conf, lm, geo, geo, **bad)
    with pytest.raises((ValueError, TypeCheckError), match="eye_confidence"):
        eye_confidence(conf, lm, geo[:1], geo)


def test_eye_confidence_gradient_jit_vmap():
    lm = np.asarray(default_template().landmark_uv)
    rng = np.random.default_rng(3)
    geo = jnp.array([0.4, 0.4])
    with x64():
        c = jnp.asarray(rng.uniform(0.2, 0.9, (16, 16)), jnp.float64)
        lm64 = jnp.asarray(lm, jnp.float64)
        check_grads(lambda c, o: eye_confidence(c, lm64, o, geo.astype(jnp.float64)),
                    (c, jnp.array([0.13, 0.17])), order=1, modes=["fwd", "rev"], eps=1e-6)
    cs = jnp.asarray(rng.uniform(size=(3, 16, 16)), jnp.float32)
    ps = jnp.asarray([[0.05, 0.4], [0.15, 0.12], [0.4, 0.1]], jnp.float32)
    def f(c, p):
        return eye_confidence(c, lm, p, geo)

    loop = jnp.stack([f(c, p) for c, p in zip(cs, ps)])
    np.testing.assert_allclose(jax.vmap(f)(cs, ps), loop, atol=1e-7)
    np.testing.assert_allclose(jax.jit(f)(cs[0], ps[0]), loop[0], atol=1e-7)


# --------------------------------------------------------------------------------------------
# lip_confidence (and the pipeline's lip stretch that drives it)


def test_lip_confidence_drops_only_the_stretched_lip():
    from machlib.texture._confidence import LIP_BANDS

    lm = np.asarray(default_template().landmark_uv, np.float32)
    conf = np.full((R, R), 0.9, np.float32)
    upper = np.asarray(polygon_sdf(lm[np.asarray(LIP_BANDS[0])], R))
    lower = np.asarray(polygon_sdf(lm[np.asarray(LIP_BANDS[1])], R))
    # the bands are the lips: between the outer and inner contours, the upper above the lower
    outer = np.asarray(polygon_sdf(lm[np.asarray(LIPS_OUTER)], R))
    inner = np.asarray(polygon_sdf(lm[np.asarray(LIPS_INNER)], R))
    assert np.all((outer[upper < -1.0 / R] < 0) & (inner[upper < -1.0 / R] > 0))
    assert np.all((outer[lower < -1.0 / R] < 0) & (inner[lower < -1.0 / R] > 0))
    v = (np.arange(R) + 0.5) / R
    assert v[(upper < 0).any(1)].mean() < v[(lower < 0).any(1)].mean()
    # lips as thick as the face's: unchanged
    np.testing.assert_array_equal(lip_confidence(conf, lm, np.array([1.0, 1.2], np.float32)), conf)
    out = np.asarray(lip_confidence(conf, lm, np.array([4.8, 1.3], np.float32)))  # t1_face3's laugh
    assert np.all(out <= conf + 1e-7)
    assert np.all(out[upper < 0] == 0.0)  # the stretched upper lip: completed
    np.testing.assert_array_equal(out[lower < -0.01], conf[lower < -0.01])  # the lower lip kept
    far = upper > 0.006 + 1.0 / R  # beyond the ramp: untouched
    np.testing.assert_array_equal(out[far], conf[far])
    ramp = (upper > 0.5 / R) & (upper < 0.004)
    assert np.all((out[ramp] > 0.0) & (out[ramp] < conf[ramp]))  # a fade, not a step
    # between low and high: a partial drop
    mid = np.asarray(lip_confidence(conf, lm, np.array([3.0, 1.0], np.float32)))
    assert 0.3 < mid[upper < -1.0 / R].max() / 0.9 < 0.7
    both = np.asarray(lip_confidence(conf, lm, np.array([5.0, 5.0], np.float32)))
    assert np.all(both[lower < 0] == 0.0) and np.all(both[upper < 0] == 0.0)
    for bad in ({"low": 3.0, "high": 2.0}, {"ramp": -0.1}):
        with pytest.raises(ValueError, match="lip_confidence"):
            lip_confidence(conf, lm, np.ones(2, np.float32), **bad)
    with pytest.raises((ValueError, TypeCheckError), match="lip_confidence"):
        lip_confidence(conf, lm, np.ones(3, np.float32))


def test_lip_confidence_gradient_jit_vmap():
    lm = np.asarray(default_template().landmark_uv)
    rng = np.random.default_rng(4)
    with x64():
        c = jnp.asarray(rng.uniform(0.2, 0.9, (32, 32)), jnp.float64)
        check_grads(lambda c, s: lip_confidence(c, jnp.asarray(lm, jnp.float64), s),
                    (c, jnp.array([2.9, 3.1])), order=1, modes=["fwd", "rev"], eps=1e-6)
    cs = jnp.asarray(rng.uniform(size=(3, 32, 32)), jnp.float32)
    ss = jnp.asarray([[1.0, 1.0], [3.0, 1.0], [5.0, 4.0]], jnp.float32)

    def f(c, s):
        return lip_confidence(c, lm, s)

    loop = jnp.stack([f(c, s) for c, s in zip(cs, ss)])
    np.testing.assert_allclose(jax.vmap(f)(cs, ss), loop, atol=1e-7)
    np.testing.assert_allclose(jax.jit(f)(cs[1], ss[1]), loop[1], atol=1e-7)


def test_pipeline_lip_stretch_measures_a_thinned_lip():
    """``texture_portrait``'s lip stretch: the template's own landmarks seen from the front give
    lips about as thick as the face's; thinning the photo's upper lip (a laugh) stretches it that
    many times more, the lower lip unchanged."""
    from machlib.geometry import Landmarks
    from machlib.pipeline import _lip_stretch

    def marks(p):
        p = np.asarray(p, np.float32)
        return Landmarks(p, np.zeros(len(p), np.float32), np.ones(len(p), np.float32),
                         np.concatenate([p.min(0), p.max(0)]).astype(np.float32))

    template = default_template()
    pts = np.asarray(template.human.landmark_points, np.float64)[:, :2] * np.array([400.0, -400.0]) + 256.0
    base = _lip_stretch(marks(pts), template)
    assert base.shape == (2,) and np.all((base > 0.5) & (base < 2.0))
    thin = pts.copy()
    up_outer, up_inner = np.asarray(LIPS_OUTER[1:10]), np.asarray(LIPS_INNER[1:10])
    thin[up_outer] = thin[up_inner] + 0.25 * (pts[up_outer] - pts[up_inner])
    out = _lip_stretch(marks(thin), template)
    assert out[0] > 2.5 * base[0]
    np.testing.assert_allclose(out[1], base[1], rtol=0.02)
    # scale-free: the same photo at twice the size
    np.testing.assert_allclose(_lip_stretch(marks(2.0 * thin), template), out, rtol=1e-5)


def _lit_from_one_side(n=64, seed=5):
    """A symmetric skin texture with detail (fine noise, a dark spot either side), lit from the
    subject's right: the right half (u < 0.5) seen and bright, the left half in shade (x 0.7)
    and seen only next to the middle (u < 0.6); the shading, the seen weights, the features."""
    rng = np.random.default_rng(seed)
    detail = ndimage.gaussian_filter(rng.normal(size=(n, n)), 0.8)
    detail = 0.04 * (detail + detail[:, ::-1]) / detail.std()
    albedo = np.stack([0.78 + detail, 0.6 + detail, 0.5 + detail], -1)
    v, u = np.mgrid[0:n, 0:n]
    spot = ((v - n // 2) ** 2 + (u - n // 4) ** 2 < 9) | ((v - n // 2) ** 2 + (u - (n - 1 - n // 4)) ** 2 < 9)
    albedo[spot] = (0.3, 0.2, 0.15)
    albedo = albedo.astype(np.float32)
    shade = np.where((u + 0.5) / n < 0.5, 1.0, 0.7).astype(np.float32)
    seen = ((u + 0.5) / n < 0.6).astype(np.float32)
    return albedo, shade, seen, spot


def test_skin_low_pass_measures_the_weighted_tone_and_fills_the_rest():
    albedo, shade, seen, spot = _lit_from_one_side()
    tex = albedo * shade[..., None]
    w = seen * ~spot
    low = np.asarray(skin_low_pass(tex, w, sigma=0.04))
    assert low.shape == tex.shape and low.dtype == np.float32
    # inside the seen skin: its local mean (the detail averages out, the dark spot is not counted)
    np.testing.assert_allclose(low[32, 16], [0.78, 0.6, 0.5], atol=0.03)  # (under the spot too)
    np.testing.assert_allclose(low[10, 35], 0.7 * np.array([0.78, 0.6, 0.5]), atol=0.03)
    # far from any seen texel: the seen skin's broad tone (between the lit and the shaded)
    assert 0.6 < low[10, 60, 0] < 0.78
    # a constant texture stays constant wherever the weights are
    np.testing.assert_allclose(skin_low_pass(np.full((32, 32, 2), 0.4, np.float32), seen[:32, :32]), 0.4, atol=1e-5)
    with pytest.raises((ValueError, TypeCheckError), match="skin_low_pass"):
        skin_low_pass(tex, w[:8])
    with pytest.raises(ValueError, match="skin_low_pass"):
        skin_low_pass(tex, w, sigma=0.0)


def test_skin_low_pass_gradient_jit_vmap():
    rng = np.random.default_rng(6)
    with x64():
        tex = jnp.asarray(rng.uniform(0.2, 0.9, (16, 16, 2)), jnp.float64)
        w = jnp.asarray(rng.uniform(0.0, 1.0, (16, 16)), jnp.float64)
        check_grads(lambda t, ww: skin_low_pass(t, ww, sigma=0.1), (tex, w), order=1, modes=["rev"], eps=1e-6)
    texs = jnp.asarray(rng.uniform(size=(2, 16, 16, 3)), jnp.float32)
    ws = jnp.asarray(rng.uniform(size=(2, 16, 16)), jnp.float32)
    batched = jax.jit(jax.vmap(lambda t, ww: skin_low_pass(t, ww, sigma=0.1)))(texs, ws)
    for i in range(2):
        np.testing.assert_allclose(batched[i], skin_low_pass(texs[i], ws[i], sigma=0.1), atol=1e-6)


def test_mirror_fill_low_pass_carries_the_detail_not_the_light():
    """Lit from one side, the mirror image as is puts the lit half's brightness beside the shaded
    half's seen texels (a step where they meet); with ``low_pass`` it continues their tone and
    still carries the other half's detail and features."""
    albedo, shade, seen, spot = _lit_from_one_side()
    tex = albedo * shade[..., None]
    conf = np.asarray(texel_confidence(seen, edge=0.03))
    plain, _ = mirror_fill(tex, conf)
    out, c = mirror_fill(tex, conf, low_pass=0.04, skin=(~spot).astype(np.float32))
    plain, out = np.asarray(plain), np.asarray(out)
    # the same confidence (within 0.02: the mirror image's light is corrected within the clips here)
    np.testing.assert_allclose(c, np.asarray(mirror_fill(tex, conf)[1]), atol=0.02)
    np.testing.assert_allclose(out[conf >= 1.0], tex[conf >= 1.0], atol=1e-6)  # seen texels unchanged
    # where the shaded half's seen texels (to column 36) meet the mirror image (from column 38):
    # the lit half's tone as is, a step; with low_pass, none (the rows off the spots, averaged)
    rows = np.r_[0:24, 40:64]
    step = lambda x: abs(x[rows, 38, 0].mean() - x[rows, 36, 0].mean())  # noqa: E731
    assert step(plain) > 0.15 and step(out) < 0.03, (step(plain), step(out))
    # without ``reach`` the fill further out eases toward the seen skin's broad tone (with it, the
    # mirror image keeps its own tone there: test_mirror_fill_reach_keeps_the_mirror_tone_...)
    wide = np.asarray(mirror_fill(tex, conf, low_pass=0.04, skin=(~spot).astype(np.float32), reach=None)[0])
    assert wide[rows, 56:, 0].mean() < plain[rows, 56:, 0].mean() - 0.03
    filled = (np.arange(64)[None, :] >= 42) & ~spot  # taken from the mirror image, off the spot
    target = albedo * 0.7  # the shaded side's truth
    # the detail is carried: the filled half's fine variation follows the (symmetric) truth's
    hp = lambda x: x[..., 0] - ndimage.gaussian_filter(x[..., 0], 3)  # noqa: E731
    assert np.corrcoef(hp(out)[filled], hp(target)[filled])[0, 1] > 0.9
    # the feature (the dark spot) keeps its contrast against the skin around it
    right_spot = spot & (np.arange(64)[None, :] > 32)
    ring = ndimage.binary_dilation(right_spot, iterations=3) & ~right_spot
    contrast = out[right_spot][:, 0].mean() / out[ring][:, 0].mean()
    truth_contrast = target[right_spot][:, 0].mean() / target[ring][:, 0].mean()
    assert abs(contrast - truth_contrast) < 0.06, (contrast, truth_contrast)
    with pytest.raises(ValueError, match="mirror_fill"):
        mirror_fill(tex, conf, low_pass=-0.1)
    for bad in ({"max_ratio": 0.5}, {"max_gain": 0.9}, {"max_chroma": 0.0}):
        with pytest.raises(ValueError, match="mirror_fill"):
            mirror_fill(tex, conf, low_pass=0.04, **bad)
    with pytest.raises((ValueError, TypeCheckError), match="mirror_fill"):
        mirror_fill(tex, conf, low_pass=0.04, skin=conf[:8])


def test_mirror_fill_low_pass_darkens_freely_brightens_little():
    """From the lit side onto a shaded one the mirror image is darkened as far as needed; from a
    shadow onto lit skin it is brightened by at most ``max_gain`` (a shadow's colour scaled up
    glares), and its hue moves by at most ``max_chroma``."""
    albedo, shade, seen, spot = _lit_from_one_side()
    tex = albedo * shade[..., None]
    conf = np.asarray(texel_confidence(seen, edge=0.03))
    out = np.asarray(mirror_fill(tex, conf, low_pass=0.04)[0])
    rows = np.r_[0:24, 40:64]
    assert abs(out[rows, 38, 0].mean() / tex[rows, 36, 0].mean() - 1.0) < 0.04  # darkened by 0.7
    # the other way round: the seen half in shade, the unseen half's few seen texels lit
    flipped = albedo * np.where(shade < 1.0, 1.0, 0.7)[..., None]
    gain = np.asarray(mirror_fill(flipped, conf, low_pass=0.04, max_gain=1.1, reach=None)[0])[rows, 40:]
    source = flipped[:, ::-1][rows, 40:]
    assert np.all(gain <= 1.1 * 1.1 * source + 1e-5)  # brightness times hue, per channel
    assert 1.05 * source.mean() < gain.mean() < 1.1 * 1.02 * source.mean()
    tinted = tex * np.where(np.arange(64)[None, :, None] >= 32, [1.0, 0.8, 0.8], 1.0).astype(np.float32)
    hue = np.asarray(mirror_fill(tinted, conf, low_pass=0.04, max_chroma=1.05)[0])[rows, 44:]
    src = tinted[:, ::-1][rows, 44:]
    assert np.all(hue[..., 1] / hue[..., 0] >= (src[..., 1] / src[..., 0]) / 1.05**2 - 1e-4)


def test_mirror_fill_low_pass_gradient_jit_vmap():
    rng = np.random.default_rng(7)
    with x64():
        tex = jnp.asarray(rng.uniform(0.2, 0.9, (16, 16, 2)), jnp.float64)
        conf = jnp.asarray(rng.uniform(0.05, 0.95, (16, 16)), jnp.float64)
        skin = jnp.asarray(rng.uniform(0.5, 1.0, (16, 16)), jnp.float64)
        # max_ratio wide: the clip's kinks away from the finite differences' steps
        f = lambda t, c: mirror_fill(t, c, low_pass=0.1, skin=skin, max_ratio=10.0, max_gain=10.0,  # noqa: E731
                                       max_chroma=10.0)[0]
        check_grads(f, (tex, conf), order=1, modes=["rev"], eps=1e-6)
    texs = jnp.asarray(rng.uniform(0.1, 1.0, (2, 16, 16, 3)), jnp.float32)
    confs = jnp.asarray(rng.uniform(size=(2, 16, 16)), jnp.float32)
    batched = jax.jit(jax.vmap(lambda t, c: mirror_fill(t, c, low_pass=0.1)))(texs, confs)
    for i in range(2):
        one = mirror_fill(texs[i], confs[i], low_pass=0.1)
        np.testing.assert_allclose(batched[0][i], one[0], atol=1e-5)
        np.testing.assert_allclose(batched[1][i], one[1], atol=1e-5)  # (float32: the mismatch's exp)


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


def _lab(x):
    return np.asarray(srgb_to_lab(jnp.asarray(x, jnp.float32)), np.float64)


def test_a_stretched_lip_takes_its_own_colour_on_the_templates_shading(setup):
    """t1_face3's laugh: the upper lip, a dark strip over the teeth stretched over the whole lip,
    is seen but not trusted (:func:`lip_confidence`). Completion paints the template's lip there
    in the colour of the upper lip's own texels, not of the lower lip (the only lip texels it
    keeps): darker, as the photo shows it, with the template's shading instead of one flat fill."""
    from machlib.texture._confidence import LIP_BANDS

    lm, _, _, template = setup
    r = 256  # the lips a few texels high at 128²: too thin to measure inside
    face = np.asarray(polygon_sdf(lm[np.asarray(face_oval())], r)) < 0
    truth = np.asarray(skin_albedo(r, ita=35.0, seed=4))  # a light skin: lip colours far apart in sRGB
    upper, lower = (np.asarray(polygon_sdf(lm[np.asarray(b)], r)) < -1.0 / r for b in LIP_BANDS)
    t_lab = _lab(truth)
    dark = np.asarray(lab_to_srgb(jnp.asarray(t_lab + np.array([-28.0, 22.0, 14.0]), jnp.float32)))
    pink = np.asarray(lab_to_srgb(jnp.asarray(t_lab + np.array([-12.0, 20.0, 4.0]), jnp.float32)))
    inner = np.asarray(polygon_sdf(lm[np.asarray(LIPS_INNER)], r)) <= 0
    seen = face & ~inner
    raw = np.where(upper[..., None], dark, np.where(lower[..., None], pink, truth)) * seen[..., None]
    conf = np.asarray(lip_confidence(np.asarray(texel_confidence(seen.astype(np.float32), edge=0.01)), lm,
                                     np.array([4.8, 1.3], np.float32)))
    assert np.all(conf[upper] == 0) and conf[lower].mean() > 0.5
    out = np.asarray(complete_texture(raw, seen, template_albedo=template, confidence=conf,
                                      own_lips=(True, False)).albedo)
    mid = ndimage.binary_erosion(upper, iterations=2)
    assert mid.sum() > 100
    got, own, other = (_lab(x)[mid].mean(0) for x in (out, dark, pink))
    # unless named (a lip mostly not kept because it is seen at a grazing angle, a profile), the
    # lip takes the kept lips' colour: nearer the lower lip's than its own dark strip's
    plain = np.asarray(complete_texture(raw, seen, template_albedo=template, confidence=conf).albedo)
    got_plain = _lab(plain)[mid].mean(0)
    assert got_plain[0] > 0.5 * (own[0] + other[0]), (got_plain, own, other)
    for bad in ((True,), "ab", 3, (1, 0)):  # an InputError; a TypeError where the hints are checked
        with pytest.raises((ValueError, TypeError), match="own_lips"):
            complete_texture(raw, seen, template_albedo=template, confidence=conf, own_lips=bad)
    # nearer its own lightness than the lower lip's (the Poisson solves keep the template lip's
    # step from the skin around it, now to the upper lip's own colour)
    assert got[0] < 0.5 * (own[0] + other[0]) and got[0] < other[0] - 8.0, (got, own, other)
    # not one flat fill: the template's lip shading and lines
    assert _lab(out)[mid][:, 0].std() > 1.0, _lab(out)[mid][:, 0].std()
    kept = lower & ndimage.binary_erosion(conf >= 0.999, iterations=6)  # the lower lip: the portrait's
    assert kept.sum() > 100
    np.testing.assert_allclose(out[kept], raw[kept], atol=1e-6)


def _laugh_case(lm, face, truth, *, above, hidden_lips=True):
    """A texture whose seen skin round the mouth is shadowed and lip-red (a laugh's folds) around
    an unseen region: the skin ``above`` (UV) over the lips and, with ``hidden_lips``, the lips (a
    wide laugh's hidden lips: up to the nostrils), else the mouth's inside; with ``above = 0``,
    only the mouth's inside. Returns the raw texture, its confidence, the unseen skin (off the
    lips) and the lips (exact polygon, one texel in)."""
    v = ((np.arange(R) + 0.5) / R)[:, None] * np.ones((1, R))
    masks = {k: np.asarray(val) for k, val in region_masks(lm, R).items()}
    feats = np.maximum.reduce([masks[k] for k in ("eyes", "brows", "mouth", "nostrils")]) > 0.5
    lips = np.asarray(polygon_sdf(lm[np.asarray(LIPS_OUTER)], R))
    if above > 0:
        hole = (lips > 0) & (lips < above) & (v < lm[0, 1] + 0.01) & face & ~feats
        inside = lips <= 0 if hidden_lips else np.asarray(polygon_sdf(lm[np.asarray(LIPS_INNER)], R)) <= 0
        unseen = hole | inside
    else:
        hole = np.zeros_like(face)
        unseen = np.asarray(polygon_sdf(lm[np.asarray(LIPS_INNER)], R)) <= 0
    folds = (lips > 0) & (lips < above + 0.04) & ~unseen & ~feats & face
    red = np.asarray(lab_to_srgb(jnp.asarray(_lab(truth) + np.array([-16.0, 15.0, 8.0]), jnp.float32)))
    seen = face & ~unseen
    raw = np.where(folds[..., None], red, truth) * seen[..., None]
    return raw, seen.astype(np.float32), hole, lips < -1.0 / R


def test_mouth_hole_takes_the_skin_tone_not_the_laughs_folds(setup):
    """Issue 15 (t1_face3's orange muzzle): a laugh hides the lips and the skin up to the nostrils,
    and every solve continued the seen folds' shadowed lip-red into that region. With
    ``mouth_hole`` its depth takes the face's skin tone; the lips stay as before; far from the
    mouth nothing changes."""
    lm, face, truth, template = setup
    raw, conf, hole, lips = _laugh_case(lm, face, truth, above=0.05)
    deep = ndimage.binary_erosion(hole | lips, iterations=3) & hole
    assert deep.sum() > 20
    kw = {"template_albedo": template, "confidence": conf}
    on = np.asarray(complete_texture(raw, conf > 0.5, **kw).albedo)
    off = np.asarray(complete_texture(raw, conf > 0.5, mouth_hole=0.0, **kw).albedo)
    d_on, d_off = (_lab(x)[deep].mean(0) - _lab(truth)[deep].mean(0) for x in (on, off))
    assert d_off[1] > 6.0 and d_off[2] > 3.0 and d_off[0] < -10.0, d_off  # the folds' colour was carried in
    # redness and yellowness go; the darkness down to the tolerance (8 L*: the skin by a mouth is darker)
    assert abs(d_on[1]) < 0.4 * d_off[1] and abs(d_on[2]) < 0.6 * d_off[2], (d_on, d_off)
    assert d_on[0] > d_off[0] + 3.0, (d_on, d_off)
    np.testing.assert_array_equal(on[lips], off[lips])  # the lips' colour is the portrait's
    far = ndimage.distance_transform_edt(~(hole | lips)) > 0.12 * R
    np.testing.assert_array_equal(on[far], off[far])
    assert np.isfinite(on).all() and on.min() >= 0 and on.max() <= 1


@pytest.mark.parametrize("above", [0.0, 0.012])
def test_mouth_hole_leaves_a_seen_mouth_and_a_narrow_gap_alone(setup, above):
    """A seen mouth (its inside unseen), alone or with a smile's narrow unseen gap above the lips
    (t1_face5), and lip-red folds around: there the rim is the local skin, and nothing changes,
    to the bit."""
    lm, face, truth, template = setup
    raw, conf, _, _ = _laugh_case(lm, face, truth, above=above, hidden_lips=False)
    kw = {"template_albedo": template, "confidence": conf}
    on = np.asarray(complete_texture(raw, conf > 0.5, **kw).albedo)
    off = np.asarray(complete_texture(raw, conf > 0.5, mouth_hole=0.0, **kw).albedo)
    np.testing.assert_array_equal(on, off)


@pytest.mark.parametrize("kw", [{"mouth_hole": -0.5}, {"mouth_hole_zone": -0.01},
                                {"mouth_hole_tolerance": (3.0, 3.0)}, {"mouth_hole_tolerance": (3.0, -1.0, 3.0)}])
def test_mouth_hole_bad_input(setup, kw):
    _, face, truth, template = setup
    name = next(iter(kw))
    # (jaxtyping's beartype hook checks the annotation in tests: a tuple of two is its error)
    with pytest.raises((ValueError, TypeCheckError), match=f"complete_texture|{name}"):
        complete_texture(truth, face, template_albedo=template, **kw)


def test_openings_are_shadowed_not_the_templates_eyes(setup):
    """The sockets: tones of the skin around them (the lid rims, a shadow deeper in), not the
    painted sclera and iris, unless the portrait's texels there are kept; the mouth's inside stays
    as completed."""
    lm, face, truth, template = setup
    seen = face & (np.asarray(region_masks(lm, R, dilate=0.01)["eyes"]) < 0.5)
    conf = np.asarray(texel_confidence(seen.astype(np.float32), edge=0.01))
    raw = truth * face[..., None]
    kw = {"template_albedo": template, "confidence": conf}
    painted = np.asarray(complete_texture(raw, face, openings=0.0, **kw).albedo)
    shaded = np.asarray(complete_texture(raw, face, **kw).albedo)
    for poly in (RIGHT_EYE, mirrored(RIGHT_EYE)):
        sdf = np.asarray(polygon_sdf(lm[np.asarray(poly)], R))
        inside = sdf < -2.0 / R  # fully painted (one texel in from the contour)
        ring = (sdf > 0.004 * 0.4) & (sdf < 0.02)
        # darker than the skin around it, and none of the template's white sclera
        assert inside.sum() >= 5
        assert shaded[inside].mean(1).max() < 0.9 * shaded[ring].mean()
        assert painted[inside].mean(1).max() > shaded[ring].mean()
    eyes = np.asarray(polygon_sdf(lm[np.asarray(RIGHT_EYE)], R)) < -2.0 / R
    assert painted[eyes].std(0).max() > 0.03 and shaded[eyes].std(0).max() < painted[eyes].std(0).max()
    np.testing.assert_array_equal(shaded[conf > 0.99], painted[conf > 0.99])  # kept texels untouched
    mouth = np.asarray(polygon_sdf(lm[np.asarray(LIPS_INNER)], R)) < 0  # the mouth's inside: as completed
    np.testing.assert_array_equal(shaded[mouth], painted[mouth])


def test_openings_paint_lid_rims_not_a_black_line():
    """Inside a lid contour the first tenth of an eye width is the lids' rims, which show between
    eyeball and lid: the lower one stays near the skin's tone (it read as a black line under the
    eye when the whole socket was shadowed), the upper one is darker (the lash line), and only
    deeper in does the socket's shadow take over."""
    from machlib._facemesh import RIGHT_EYE
    from machlib.texture._complete import _LOWER_MARGIN, _UPPER_MARGIN, _paint_openings

    n = 512
    lm = np.asarray(default_template().landmark_uv, np.float32)
    skin = np.array([0.8, 0.6, 0.5], np.float32)
    out = np.asarray(_paint_openings(jnp.broadcast_to(jnp.asarray(skin), (n, n, 3)), jnp.asarray(lm), 0.3))
    poly = lm[np.asarray(RIGHT_EYE)]
    sdf = np.asarray(polygon_sdf(jnp.asarray(poly), n))
    width = float(np.linalg.norm(poly[0] - poly[8]))
    depth = -sdf / width
    v = (np.arange(n) + 0.5)[:, None] / n * np.ones((1, n))
    lower = (depth > 0.01) & (depth < 0.05) & (v > poly[:, 1].mean() + 0.1 * width)
    upper = (depth > 0.01) & (depth < 0.05) & (v < poly[:, 1].mean() - 0.1 * width)
    assert lower.sum() > 20 and upper.sum() > 20
    np.testing.assert_allclose(np.median(out[lower], 0), skin * np.asarray(_LOWER_MARGIN), rtol=0.12)
    np.testing.assert_allclose(np.median(out[upper], 0), skin * np.asarray(_UPPER_MARGIN), rtol=0.12)
    assert (np.median(out[upper], 0) < 0.85 * np.median(out[lower], 0)).all()  # the lash line
    assert out[lower].mean() > 0.6 * skin.mean()  # no black line under the eye
    middle = depth > 0.9 * depth.max()
    assert out[middle].mean() < 0.8 * out[lower].mean()  # deeper in, the socket's shadow
    left = np.asarray(polygon_sdf(jnp.asarray(lm[np.asarray(mirrored(RIGHT_EYE))]), n))
    away = (sdf > 2.0 / n) & (left > 2.0 / n)
    np.testing.assert_array_equal(out[away], np.broadcast_to(skin, out[away].shape))  # the skin is untouched


def test_mirror_fill_reach_keeps_the_mirror_tone_beyond_the_seen_band():
    """A face turned away: the hidden half (u > 0.5 here) is seen only in a band beside the middle,
    in shade (its grazing texels). Its tone is measured in that band only: without ``reach`` the
    low-pass carried the band's shade across the whole hidden half (a two-toned face, t1_face1's
    pinker half); with it the mirror image keeps its own tone a few low-pass scales from the
    band, easing into the band's tone without a step."""
    albedo, shade, seen, spot = _lit_from_one_side()
    tex = albedo * shade[..., None]
    conf = np.asarray(texel_confidence(seen, edge=0.03))
    skin = (~spot).astype(np.float32)
    old = np.asarray(mirror_fill(tex, conf, low_pass=0.04, skin=skin, reach=None)[0])
    out, c = (np.asarray(a) for a in mirror_fill(tex, conf, low_pass=0.04, skin=skin))
    rows = np.r_[0:24, 40:64]
    far = albedo[rows, 52:, 0].mean()  # the symmetric face's tone (the mirror image's, as seen)
    assert old[rows, 52:, 0].mean() < 0.96 * far  # before: the band's shade carried on (0.94)
    assert abs(out[rows, 52:, 0].mean() / far - 1.0) < 0.02  # now: the mirror image's own tone
    np.testing.assert_allclose(out[conf >= 1.0], tex[conf >= 1.0], atol=1e-6)  # seen texels unchanged
    # from the seen band (in shade from column 32) into the fill: the shade eases, no step (the
    # mirror image as is steps by 0.15 where the band ends)
    shade_of = lambda x: x[rows, 33:, 0].mean(0) / albedo[rows, 33:, 0].mean(0)  # noqa: E731
    assert np.abs(np.diff(shade_of(out))).max() < 0.06
    assert np.abs(np.diff(shade_of(np.asarray(mirror_fill(tex, conf)[0])))).max() > 0.12
    assert c[:, 40:].min() > 0.99  # and trusted: the mirror image is not mismatched there
    with pytest.raises(ValueError, match="mirror_fill"):
        mirror_fill(tex, conf, low_pass=0.04, reach=0.0)
