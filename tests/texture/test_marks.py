"""Skin marks (wrinkles, freckles, age spots, moles) and brow recolouring on a UV albedo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from helpers import x64
from machlib.geometry import default_template, face_oval, template_albedo
from machlib.texture import polygon_sdf, recolor_brows, skin_marks
from machlib.texture._regions import LIPS_OUTER, RIGHT_BROW, RIGHT_EYE, mirrored

R = 128
KEY = jax.random.key(3)


@pytest.fixture(scope="module")
def lm():
    return np.asarray(default_template().landmark_uv, np.float32)


@pytest.fixture(scope="module")
def albedo():
    return np.asarray(template_albedo(R), np.float32) / 255.0


def _fill(lm, idx, r=R):
    return np.clip(0.5 - np.asarray(polygon_sdf(lm[list(idx)], r)) * r, 0.0, 1.0)


def test_zero_strengths_are_exact_no_ops(lm, albedo):
    np.testing.assert_array_equal(skin_marks(albedo, lm, KEY), albedo)
    np.testing.assert_array_equal(recolor_brows(albedo, lm, (0.5, 0.5, 0.5), strength=0.0), albedo)


def test_marks_darken_the_face_skin_only(lm, albedo):
    out = np.asarray(skin_marks(albedo, lm, KEY, wrinkles=1.0, freckles=1.0, age_spots=1.0, moles=1.0))
    changed = np.abs(out - albedo).max(-1) > 1e-4
    face = _fill(lm, face_oval())
    keep = np.maximum.reduce([_fill(lm, RIGHT_EYE), _fill(lm, mirrored(RIGHT_EYE)), _fill(lm, LIPS_OUTER),
                              _fill(lm, RIGHT_BROW), _fill(lm, mirrored(RIGHT_BROW))])
    assert changed.mean() > 0.05  # visible
    assert not changed[face == 0].any()  # on the face,
    assert not changed[keep == 1].any()  # never on the eyes, lips or brows
    # creases and spots darken (multiply) and moles are darker still; nothing brightens
    assert (out <= albedo + 1e-6).all()


@pytest.mark.parametrize("layer", ["wrinkles", "freckles", "age_spots", "moles"])
def test_each_layer_grows_with_its_strength_and_follows_the_key(lm, albedo, layer):
    change = [np.abs(np.asarray(skin_marks(albedo, lm, KEY, **{layer: s})) - albedo).sum() for s in (0.3, 0.6, 1.0)]
    assert 0 < change[0] < change[1] < change[2]
    a, b = (np.asarray(skin_marks(albedo, lm, k, **{layer: 1.0})) for k in (KEY, jax.random.key(4)))
    assert not np.array_equal(a, b) and np.array_equal(a, np.asarray(skin_marks(albedo, lm, KEY, **{layer: 1.0})))


def test_wrinkles_sit_on_the_forehead_at_the_eyes_and_beside_the_mouth(lm, albedo):
    d = np.abs(np.asarray(skin_marks(albedo, lm, KEY, wrinkles=1.0)) - albedo).max(-1)
    v = lambda i: int(lm[i, 1] * R)  # noqa: E731
    forehead, mouth = d[v(10):v(9)].sum(), d[v(1):v(152)].sum()
    assert forehead > 0 and mouth > 0 and d[:max(v(10) - 4, 0)].sum() == 0  # nothing above the hairline


def test_jit_and_vmap_agree_with_eager(lm, albedo):
    f = jax.jit(lambda a, w, s: skin_marks(a, lm, KEY, wrinkles=w, freckles=s))
    eager = np.asarray(skin_marks(albedo, lm, KEY, wrinkles=0.7, freckles=0.4))
    np.testing.assert_allclose(f(albedo, 0.7, 0.4), eager, atol=1e-6)
    batch = jax.vmap(f)(jnp.stack([albedo, albedo * 0.9]), jnp.asarray([0.7, 0.2]), jnp.asarray([0.4, 0.9]))
    np.testing.assert_allclose(batch[0], eager, atol=1e-6)
    np.testing.assert_allclose(batch[1], skin_marks(albedo * 0.9, lm, KEY, wrinkles=0.2, freckles=0.9), atol=1e-6)
    g = jax.jit(lambda a, c: recolor_brows(a, lm, c, strength=0.8))
    np.testing.assert_allclose(g(albedo, jnp.asarray([0.5, 0.5, 0.5])),
                               recolor_brows(albedo, lm, (0.5, 0.5, 0.5), strength=0.8), atol=1e-6)
    gv = jax.vmap(g, in_axes=(None, 0))(albedo, jnp.asarray([[0.5, 0.5, 0.5], [0.8, 0.6, 0.3]]))
    np.testing.assert_allclose(gv[1], recolor_brows(albedo, lm, (0.8, 0.6, 0.3), strength=0.8), atol=1e-6)


def test_gradients_match_finite_differences(lm):
    r = 32
    with x64():
        rng = np.random.default_rng(0)
        a = jnp.asarray(np.asarray(template_albedo(r), np.float64) / 255.0 * 0.9 + rng.uniform(0, 0.05, (r, r, 3)))
        lm64 = jnp.asarray(lm, jnp.float64)

        @jax.jit
        def marks(alb, w, f, s, m, c):
            return skin_marks(alb, lm64, KEY, wrinkles=w, freckles=f, age_spots=s, moles=m, crease_color=c)

        args = (a, jnp.float64(0.6), jnp.float64(0.4), jnp.float64(0.5), jnp.float64(0.3),
                jnp.asarray([0.6, 0.5, 0.45]))
        check_grads(marks, args, order=1, modes=["rev"], eps=1e-6)
        brows = jax.jit(lambda alb, c, s: recolor_brows(alb, lm64, c, strength=s))
        check_grads(brows, (a, jnp.asarray([0.5, 0.45, 0.4]), jnp.float64(0.7)), order=1, modes=["rev"], eps=1e-6)


def test_recolored_brows_take_the_colour_and_keep_the_skin(lm, albedo):
    gray = np.asarray(recolor_brows(albedo, lm, (0.5, 0.5, 0.5)))
    brows = np.maximum(_fill(lm, RIGHT_BROW), _fill(lm, mirrored(RIGHT_BROW))) == 1
    # the template's brows are hair strokes with skin between them: their hair (the darker half
    # of the brow texels) moves to the colour
    lum = albedo @ np.array([0.2126, 0.7152, 0.0722])
    hair = brows & (lum < np.median(lum[brows]))
    np.testing.assert_allclose(gray[hair].mean(0), 0.5, atol=0.06)
    assert np.abs(albedo[hair].mean(0) - 0.5).max() > 0.1  # (from a brown well away from it)
    changed = np.abs(gray - albedo).max(-1) > 1e-4
    iod = np.linalg.norm(lm[33] - lm[263])
    near = np.minimum(*(np.asarray(polygon_sdf(lm[list(p)], R)) for p in (RIGHT_BROW, mirrored(RIGHT_BROW))))
    assert not changed[near > 0.061 * iod].any()  # nothing beyond the grown polygons


@pytest.mark.parametrize("case", ["strength", "albedo_shape", "albedo_int", "landmarks", "color"])
def test_bad_inputs_are_named(lm, albedo, case):
    """A clear error naming the function (the test run's type checker may catch shapes and dtypes
    first, as a TypeError naming it; without it, machlib's own checks raise InputError)."""
    kw, a, points = {}, albedo, lm
    if case == "strength":
        kw["wrinkles"] = 1.5
    elif case == "albedo_shape":
        a = albedo[:, :-1]
    elif case == "albedo_int":
        a = (albedo * 255).astype(np.uint8)
    elif case == "landmarks":
        points = lm[:10]
    else:
        kw["crease_color"] = (0.5, 0.5)
    with pytest.raises((ValueError, TypeError), match="skin_marks"):
        skin_marks(a, points, KEY, **kw)
    with pytest.raises(ValueError, match="recolor_brows: strength"):
        recolor_brows(albedo, lm, (0.5, 0.5, 0.5), strength=-0.1)
