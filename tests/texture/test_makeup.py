"""Make-up layers in UV space (blush, eye shadow, lipstick) and the blend-mode compositor."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from helpers import x64
from machlib.geometry import default_template, face_oval
from machlib.texture import blend_layer, makeup, polygon_sdf
from machlib.texture._regions import LIPS_INNER, LIPS_OUTER, RIGHT_BROW, RIGHT_EYE, mirrored

R = 64
LAYERS = ("blush", "eye_shadow", "lipstick")


@pytest.fixture(scope="module")
def lm():
    return np.asarray(default_template().landmark_uv, np.float32)


@pytest.fixture(scope="module")
def regions(lm):
    """Region masks at ``R`` (1 inside, 0 outside, soft over one texel), from the landmark polygons
    with the public :func:`polygon_sdf` (as :func:`region_masks` builds them)."""
    def fill(idx):
        return np.clip(0.5 - np.asarray(polygon_sdf(lm[list(idx)], R)) * R, 0.0, 1.0)

    return {
        "lips": fill(LIPS_OUTER) * (1.0 - fill(LIPS_INNER)),
        "eyes": np.maximum(fill(RIGHT_EYE), fill(mirrored(RIGHT_EYE))),
        "brows": np.maximum(fill(RIGHT_BROW), fill(mirrored(RIGHT_BROW))),
        "face": fill(np.asarray(face_oval())),
    }


def _albedo(r=R, seed=0, lo=0.2, hi=0.9):
    return np.random.default_rng(seed).uniform(lo, hi, (r, r, 3)).astype(np.float32)


def _change(lm, albedo, **strengths):
    out = np.asarray(makeup(albedo, lm, **strengths))
    return out, np.abs(out - albedo).max(-1)


# --------------------------------------------------------------------------------------------
# blend_layer


def _blend_reference(b, c, mode):
    if mode == "normal":
        return np.broadcast_to(c, b.shape)
    if mode == "multiply":
        return b * c
    if mode == "screen":
        return 1 - (1 - b) * (1 - c)
    if mode == "overlay":
        return np.where(b < 0.5, 2 * b * c, 1 - 2 * (1 - b) * (1 - c))
    return (1 - 2 * c) * b**2 + 2 * c * b  # soft light (pegtop)


@pytest.mark.parametrize("mode", ["normal", "multiply", "screen", "overlay", "soft_light"])
def test_blend_layer_modes_match_formulas(mode):
    base = _albedo(8, seed=1, lo=0.0, hi=1.0)
    color = np.array([0.9, 0.35, 0.1], np.float32)
    opacity = np.random.default_rng(2).uniform(0.0, 1.0, (8, 8)).astype(np.float32)
    expected = np.clip(base + opacity[..., None] * (_blend_reference(base, color, mode) - base), 0, 1)
    np.testing.assert_allclose(blend_layer(base, color, opacity, mode=mode), expected, atol=1e-6)
    # opacity 0 is the identity, opacity 1 the pure blend; per-texel colours are accepted
    np.testing.assert_array_equal(blend_layer(base, color, 0.0, mode=mode), base)
    np.testing.assert_allclose(blend_layer(base, color, 1.0, mode=mode),
                               np.clip(_blend_reference(base, color, mode), 0, 1), atol=1e-6)
    colors = np.broadcast_to(color, base.shape)
    np.testing.assert_allclose(blend_layer(base, colors, opacity, mode=mode), expected, atol=1e-6)


def test_blend_layer_identities_and_range():
    base = _albedo(8, seed=3, lo=0.0, hi=1.0)
    # multiply by white, screen with black, soft light with mid grey leave the image as it is
    np.testing.assert_allclose(blend_layer(base, np.ones(3), 1.0, mode="multiply"), base, atol=1e-7)
    np.testing.assert_allclose(blend_layer(base, np.zeros(3), 1.0, mode="screen"), base, atol=1e-7)
    np.testing.assert_allclose(blend_layer(base, np.full(3, 0.5), 1.0, mode="soft_light"), base, atol=1e-7)
    # extreme colours and opacities keep values in [0, 1]
    for mode in ("normal", "multiply", "screen", "overlay", "soft_light"):
        for c in (np.zeros(3), np.ones(3), np.array([1.0, 0.0, 0.5])):
            out = np.asarray(blend_layer(base, c, 1.0, mode=mode))
            assert out.min() >= 0.0 and out.max() <= 1.0, (mode, c)


def test_blend_layer_gradients():
    with x64():
        rng = np.random.default_rng(4)
        base = jnp.asarray(rng.uniform(0.2, 0.8, (4, 5, 3)))
        color = jnp.asarray([0.7, 0.3, 0.5])
        opacity = jnp.asarray(rng.uniform(0.1, 0.9, (4, 5)))
        for mode in ("multiply", "soft_light", "screen"):
            f = jax.jit(lambda b, c, o, mode=mode: blend_layer(b, c, o, mode=mode))
            check_grads(f, (base, color, opacity), order=1, modes=["rev"], eps=1e-6)


@pytest.mark.parametrize("case", ["mode", "base_channels", "base_rank", "opacity_shape"])
def test_blend_layer_bad_inputs(case):
    base, color, opacity, kw = np.zeros((4, 4, 3), np.float32), np.zeros(3, np.float32), 0.5, {}
    if case == "mode":
        kw["mode"] = "darken"
    elif case == "base_channels":
        base = np.zeros((4, 4, 4), np.float32)
    elif case == "base_rank":
        base = np.zeros((4, 3), np.float32)
    else:
        opacity = np.zeros((5, 4), np.float32)
    with pytest.raises((ValueError, TypeError), match="blend_layer"):
        blend_layer(base, color, opacity, **kw)


# --------------------------------------------------------------------------------------------
# makeup


def test_zero_strength_is_the_identity(lm):
    albedo = _albedo()
    np.testing.assert_array_equal(makeup(albedo, lm), albedo)
    np.testing.assert_array_equal(makeup(albedo, lm, blush=0.0, eye_shadow=0.0, lipstick=0.0,
                                         lipstick_color=np.array([0.0, 0.0, 1.0])), albedo)
    # exactly, even for values outside [0, 1] that the compositing would clip
    odd = albedo.copy()
    odd[0, 0] = [1.3, -0.2, 0.5]
    np.testing.assert_array_equal(makeup(odd, lm), odd)


def test_lipstick_changes_only_the_lips(lm, regions):
    albedo = _albedo()
    out, d = _change(lm, albedo, lipstick=1.0)
    lips = regions["lips"]
    assert np.all(d[lips == 0.0] == 0.0)  # exactly unchanged outside the lips
    assert np.all(d[lips > 0.5] > 1e-3)  # every lip texel is coloured
    # the default lipstick colour (0.72, 0.12, 0.22) makes the lips redder: red rises relative to green
    inside = lips > 0.5
    assert (out[inside, 0] - out[inside, 1]).mean() > (albedo[inside, 0] - albedo[inside, 1]).mean() + 0.05


def test_blush_changes_only_the_cheeks(lm, regions):
    albedo = _albedo()
    albedo = 0.5 * (albedo + albedo[:, ::-1])  # mirror-symmetric, as the template
    _, d = _change(lm, albedo, blush=1.0)
    assert d.max() > 0.1
    # far from the cheeks: outside the face, on the lips, in the eyes and brows: (almost) unchanged
    assert d[regions["face"] == 0].max() < 1e-3
    for k in ("lips", "eyes", "brows"):
        assert d[regions[k] > 0].max() < 2e-3, k
    # the change sits on the cheeks: below the eyes, above the mouth corners, beside the nose
    rows = (np.arange(R) + 0.5) / R
    w = d / d.sum()
    v_centre = (w.sum(1) * rows).sum()
    assert lm[list(RIGHT_EYE), 1].max() < v_centre < lm[13, 1]
    i, j = np.unravel_index(np.argmax(d), d.shape)
    assert abs((j + 0.5) / R - 0.5) > 0.08  # on a cheek, not on the nose
    # both cheeks alike (the template is symmetric): the change mirrors about u = 0.5
    np.testing.assert_allclose(d, d[:, ::-1], atol=1e-4)


def test_eye_shadow_changes_only_the_upper_lids(lm, regions):
    albedo = _albedo()
    albedo = 0.5 * (albedo + albedo[:, ::-1])  # mirror-symmetric, as the template
    _, d = _change(lm, albedo, eye_shadow=1.0)
    assert d.max() > 0.1
    rows = ((np.arange(R) + 0.5) / R)[:, None] * np.ones((1, R))
    eye_v = lm[list(RIGHT_EYE), 1]
    brow_v = lm[list(RIGHT_BROW), 1]
    # nothing under the eyes, on the lips or outside the face
    assert d[rows > eye_v.max() + 0.02].max() < 1e-3
    assert d[regions["lips"] > 0].max() == 0.0
    assert d[regions["face"] == 0].max() < 1e-3
    # the strongest change is on the lid: outside the brows, below their top, above the eye's
    # centre (the lash line sits as high as the brow's tail in the UV layout)
    i, j = np.unravel_index(np.argmax(d), d.shape)
    brow_sdf = np.minimum(np.asarray(polygon_sdf(lm[list(RIGHT_BROW)], R)),
                          np.asarray(polygon_sdf(lm[list(mirrored(RIGHT_BROW))], R)))
    assert brow_sdf[i, j] > 0 and brow_v.min() < (i + 0.5) / R < eye_v.mean()
    # the brows (hair) get far less than the lid
    assert d[regions["brows"] > 0.5].max() < 0.25 * d.max()
    np.testing.assert_allclose(d, d[:, ::-1], atol=1e-4)


def test_layers_are_independent(lm):
    """Each layer touches its own texels: all three together change what the three did alone
    (the regions do not overlap)."""
    albedo = _albedo()
    all3 = np.asarray(makeup(albedo, lm, blush=0.6, eye_shadow=0.6, lipstick=0.6))
    alone = [np.asarray(makeup(albedo, lm, **{k: 0.6})) - albedo for k in LAYERS]
    np.testing.assert_allclose(all3, albedo + sum(alone), atol=2e-3)


@pytest.mark.parametrize("layer", LAYERS)
def test_monotone_in_strength_and_in_range(lm, layer):
    albedo = _albedo(lo=0.0, hi=1.0)
    albedo[:4] = 0.0
    albedo[-4:] = 1.0
    outs = [np.asarray(makeup(albedo, lm, **{layer: s})) for s in (0.0, 0.25, 0.5, 1.0)]
    prev = np.zeros_like(albedo)
    totals = []
    for out in outs:
        assert out.min() >= 0.0 and out.max() <= 1.0
        diff = np.abs(out - albedo)
        # per texel and channel the change grows with the strength (same direction, larger)
        assert np.all(diff >= prev - 1e-6)
        prev = diff
        totals.append(diff.sum())
    assert totals[0] == 0.0 and totals[1] < totals[2] < totals[3]
    # extreme colours stay in range too
    for color in (np.zeros(3), np.ones(3)):
        out = np.asarray(makeup(albedo, lm, **{layer: 1.0, f"{layer}_color": color}))
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_gradients_wrt_texture_strengths_and_colours(lm):
    r = 32
    with x64():
        albedo = jnp.asarray(_albedo(r, seed=5, lo=0.25, hi=0.75), jnp.float64)
        lm64 = jnp.asarray(lm, jnp.float64)

        @jax.jit
        def f(a, b, e, l, c):
            return makeup(a, lm64, blush=b, eye_shadow=e, lipstick=l, lipstick_color=c)

        args = (albedo, jnp.float64(0.4), jnp.float64(0.6), jnp.float64(0.5), jnp.asarray([0.7, 0.2, 0.3]))
        check_grads(f, args, order=1, modes=["rev"], eps=1e-6)


def test_gradient_wrt_strength_at_zero(lm):
    """Starting an optimisation of a make-up strength from 0 needs the one-sided derivative at 0,
    which is well defined (the output is linear in the strength for in-range albedo)."""
    with x64():
        albedo = jnp.asarray(_albedo(32, seed=6, lo=0.25, hi=0.75), jnp.float64)
        weights = jnp.asarray(np.random.default_rng(7).normal(size=albedo.shape))
        f = jax.jit(lambda s: jnp.sum(weights * makeup(albedo, lm, blush=s[0], eye_shadow=s[1], lipstick=s[2])))
        h = 1e-6
        zero = jnp.zeros(3, jnp.float64)
        one_sided = np.array([(f(zero.at[i].set(h)) - f(zero)) / h for i in range(3)])
        assert np.all(np.abs(one_sided) > 1e-3)
        np.testing.assert_allclose(jax.grad(f)(zero), one_sided, rtol=1e-4, err_msg=str(LAYERS))


def test_jit_vmap_equals_loop(lm):
    albedos = jnp.stack([jnp.asarray(_albedo(seed=s)) for s in range(3)])
    strengths = jnp.asarray([[0.0, 0.3, 1.0], [0.5, 0.0, 0.2], [1.0, 1.0, 0.0]], jnp.float32)
    f = lambda a, s: makeup(a, lm, blush=s[0], eye_shadow=s[1], lipstick=s[2])  # noqa: E731
    batched = jax.jit(jax.vmap(f))(albedos, strengths)
    looped = jnp.stack([f(albedos[i], strengths[i]) for i in range(3)])
    np.testing.assert_allclose(batched, looped, atol=1e-6)
    for i in range(3):
        assert not np.allclose(looped[i], albedos[i]), i


def test_colours_accept_tuples_like_the_defaults(lm):
    """The colour defaults are tuples; passing a tuple of the same kind must work too."""
    albedo = _albedo(16)
    a = makeup(albedo, lm, lipstick=0.5, lipstick_color=(0.9, 0.1, 0.2), blush=0.3, blush_color=[0.9, 0.5, 0.5])
    b = makeup(albedo, lm, lipstick=0.5, lipstick_color=np.array([0.9, 0.1, 0.2]), blush=0.3,
               blush_color=np.array([0.9, 0.5, 0.5]))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", ["albedo_rank", "albedo_not_square", "landmarks", "color_shape", "strength_shape"])
def test_bad_inputs_raise_naming_makeup(lm, case):
    albedo, kw = np.full((16, 16, 3), 0.5, np.float32), {}
    landmarks = lm
    if case == "albedo_rank":
        albedo = albedo[..., 0]
    elif case == "albedo_not_square":
        albedo = np.full((16, 12, 3), 0.5, np.float32)
    elif case == "landmarks":
        landmarks = lm[:100]
    elif case == "color_shape":
        kw["blush_color"] = (0.5, 0.5)
    else:
        kw["lipstick"] = np.array([0.5, 0.5], np.float32)
    with pytest.raises((ValueError, TypeError), match="makeup"):
        makeup(albedo, landmarks, **kw)


@pytest.mark.parametrize("layer", LAYERS)
def test_out_of_range_strengths_raise(lm, layer):
    """The docstring and the CLI take strengths in [0, 1]; a concrete value outside is an error."""
    for value in (-0.5, 2.0, float("nan")):
        with pytest.raises(ValueError, match="makeup"):
            makeup(np.full((16, 16, 3), 0.5, np.float32), lm, **{layer: value})
