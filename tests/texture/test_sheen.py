"""The photo's sheen as a gloss layer: out of the albedo (sheen_layer), into the specular map
(sheen_specular_map)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import x64
from jax.test_util import check_grads

from machlib import InputError
from machlib.render import linear_to_srgb, srgb_to_linear
from machlib.render._brdf import _ggx_lobe
from machlib.texture import sheen_layer, sheen_specular_map
from machlib.texture._pbr import _sheen_light_direction

SKIN = np.array([0.72, 0.52, 0.42])  # sRGB


def _skin(R=64, seed=0):
    rng = np.random.default_rng(seed)
    lin = np.asarray(srgb_to_linear(jnp.asarray(SKIN)), np.float64)
    shade = 1.0 + 0.03 * rng.normal(size=(R, R, 1))  # pores: brightness only, the skin's colour
    return lin * shade


def _srgb(lin):
    return np.asarray(linear_to_srgb(jnp.asarray(lin, jnp.float32)))


def test_a_highlight_is_found_and_removed():
    lin = _skin()
    yy, xx = np.mgrid[:64, :64]
    spot = 0.25 * np.exp(-((yy - 30) ** 2 + (xx - 36) ** 2) / (2 * 3.0**2))  # white light added
    out = sheen_layer(_srgb(lin + spot[..., None]), np.ones((64, 64), np.float32), sigma=0.15, threshold=0.02)
    g = np.asarray(out.gloss)
    assert g[30, 36] > 0.15 and g[30, 36] < 0.26
    assert (g[np.hypot(yy - 30, xx - 36) > 12] == 0).all()  # nothing on the plain skin
    # the albedo under it: the skin's own colour again
    back = np.asarray(srgb_to_linear(out.albedo))
    np.testing.assert_allclose(back[30, 36], lin[30, 36], atol=0.03)
    np.testing.assert_allclose(np.asarray(out.albedo)[5, 5], _srgb(lin)[5, 5], atol=1e-6)  # unchanged
    assert np.asarray(out.diffuse)[30, 36] == pytest.approx(lin.mean((0, 1)), abs=0.02)


def test_no_sheen_in_pale_skin_shadow_or_unweighted_texels():
    lin = _skin()
    lin[10:18, 10:18] *= 1.3  # a brighter patch of the skin's own colour: no highlight
    lin[40:48, 10:18] = lin[40:48, 10:18].mean(-1, keepdims=True) * 0.8  # greyer but darker: no highlight
    lin[40:48, 40:48] += 0.25  # white, but not weighted (an eye, hair)
    w = np.ones((64, 64), np.float32)
    w[36:52, 36:52] = 0
    out = sheen_layer(_srgb(lin), w, brighter=True)
    g = np.asarray(out.gloss)
    assert g[10:18, 10:18].max() == 0 and g[40:48, 10:18].max() == 0 and g[36:52, 36:52].max() == 0
    np.testing.assert_allclose(np.asarray(out.albedo)[44, 44], _srgb(lin)[44, 44], atol=1e-6)
    # without the brightness test (the default) the greyer patch counts, the pale one still not
    g = np.asarray(sheen_layer(_srgb(lin), w).gloss)
    assert g[42:46, 12:16].min() > 0 and g[10:18, 10:18].max() == 0 and g[36:52, 36:52].max() == 0


def test_illuminant_colour():
    """A warm light's highlight is warm: with that illuminant it is found and removed whole."""
    lin = _skin()
    k = np.array([1.0, 0.85, 0.7])
    lin[28:34, 28:34] += 0.2 * k
    out = sheen_layer(_srgb(lin), np.ones((64, 64), np.float32), illuminant=k, threshold=0.02)
    back = np.asarray(srgb_to_linear(out.albedo))
    np.testing.assert_allclose(back[31, 31], _skin()[31, 31], atol=0.03)


def test_jit_vmap_and_eager_agree():
    rng = np.random.default_rng(3)
    a = np.clip(_srgb(_skin()) + rng.uniform(0, 0.15, (64, 64, 1)) * (rng.random((64, 64, 1)) > 0.9), 0, 1)
    b = _srgb(_skin(seed=1))
    w = np.ones((64, 64), np.float32)
    one = [sheen_layer(x, w) for x in (a, b)]
    batch = jax.vmap(lambda x: sheen_layer(x, w))(jnp.stack([a, b]))
    jitted = jax.jit(lambda x: sheen_layer(x, w, threshold=0.04))(a)
    for i in range(2):
        np.testing.assert_allclose(batch.gloss[i], one[i].gloss, atol=1e-6)
        np.testing.assert_allclose(batch.albedo[i], one[i].albedo, atol=1e-6)
    np.testing.assert_allclose(jitted.gloss, sheen_layer(a, w, threshold=0.04).gloss, atol=1e-6)
    assert float(one[0].gloss.max()) > 0


def test_gradients_float64():
    rng = np.random.default_rng(2)
    with x64():
        a = jnp.asarray(np.clip(_srgb(_skin(16)).astype(np.float64) + rng.uniform(0, 0.2, (16, 16, 1)), 0.1, 0.95))
        w = jnp.asarray(rng.uniform(0.5, 1.0, (16, 16)))
        assert float(sheen_layer(a, w).gloss.max()) > 0  # the test passes through the sheen
        check_grads(lambda x: sheen_layer(x, w).albedo, (a,), order=1, modes=["rev"], eps=1e-6)
        check_grads(lambda x: sheen_layer(a, x).gloss, (w,), order=1, modes=["rev"], eps=1e-6)


def test_bad_input():
    with pytest.raises(InputError, match="sheen_layer"):
        sheen_layer(np.zeros((4, 4, 3)), np.zeros((4, 4)))
    with pytest.raises(InputError, match="sheen_layer"):
        sheen_layer(np.zeros((8, 8, 3)), np.zeros((8, 8)), sigma=0.0)
    with pytest.raises(InputError, match="sheen_layer"):
        sheen_layer(np.zeros((8, 8, 3)), np.zeros((8, 8)), passes=0)


def _hemisphere(R=64):
    """A hemisphere's texels seen from +z: positions and normals on a unit sphere's front."""
    y, x = (np.mgrid[:R, :R] + 0.5) / R * 2 - 1
    z = np.sqrt(np.clip(1 - x**2 - y**2, 0, None))
    n = np.stack([x, -y, z], -1)
    inside = (x**2 + y**2) < 0.95
    n[~inside] = (0, 0, 1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return n, n.copy(), inside.astype(np.float32)


def test_specular_map_gives_back_a_sheen_and_finds_its_light():
    n, p, w = _hemisphere()
    centre = np.array([0.0, 0.0, 6.0])
    light = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
    rough = np.full(w.shape, 0.45)
    prior = np.full(w.shape, 0.7)
    v = centre - p
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    h = v + light
    h /= np.linalg.norm(h, axis=-1, keepdims=True)
    lobe = _ggx_lobe(np, n @ light, np.sum(n * v, -1), np.sum(n * h, -1), np.sum(v * h, -1), rough, 1.0)
    col = int(np.argmax((lobe * w).max(0)))  # the highlight's centre column
    left = np.arange(64)[None, :] < col
    true = np.where(left, 1.0, 0.3) * np.ones((64, 1))  # glossier on the highlight's left
    radiance = 2.0 * true * lobe * w
    spec, _, found, given = sheen_specular_map(radiance, n, p, centre, rough, prior, w, prior=0.05)
    assert np.degrees(np.arccos(np.clip(found @ light, -1, 1))) < 12  # (biased towards the glossier half)
    strong = (lobe * w) > 0.5 * (lobe * w).max()
    assert (strong & left).any() and (strong & ~left).any()
    assert np.median(spec[strong & left]) > np.median(spec[strong & ~left]) + 0.3
    np.testing.assert_allclose(spec[w == 0], 0.7)  # unseen: the region's value
    assert spec.dtype == np.float32 and spec.min() >= 0 and spec.max() <= 1
    # what the map gives back is close to the sheen where the lobe is strong
    assert np.abs(given - radiance)[strong].mean() < 0.2 * radiance[strong].mean()


def test_specular_map_without_sheen_is_the_region_map():
    n, p, w = _hemisphere(16)
    prior = np.full((16, 16), 0.7, np.float32)
    spec, E, light, given = sheen_specular_map(np.zeros((16, 16)), n, p, np.array([0, 0, 6.0]),
                                               np.full((16, 16), 0.5), prior, w)
    assert E == 0.0 and light is None and not given.any()
    np.testing.assert_array_equal(spec, prior)
    with pytest.raises(InputError, match="sheen_specular_map"):
        sheen_specular_map(np.zeros((16, 16)), n[:8], p, np.zeros(3), prior, prior, w)


def test_light_of_a_sheen_is_its_mirror_direction():
    n = np.array([[[0.0, 0.0, 1.0]]])
    v = np.array([[[0.0, 0.6, 0.8]]])
    np.testing.assert_allclose(_sheen_light_direction(np.ones((1, 1)), n, v), [0.0, -0.6, 0.8], atol=1e-12)
    assert _sheen_light_direction(np.zeros((1, 1)), n, v) is None


@pytest.mark.slow
def test_texture_portrait_with_the_sheen():
    from skimage import data

    from machlib.pipeline import fit_portrait, texture_portrait
    from machlib.texture import TextureFitConfig

    fit = fit_portrait(data.astronaut())
    small = TextureFitConfig(resolutions=(32, 128), steps=(30, 20), learning_rates=(0.05, 0.03))
    plain = texture_portrait(fit, config=small)
    glossy = texture_portrait(fit, config=small, sheen=True)
    assert plain.gloss is None and glossy.gloss.shape == (128, 128) and glossy.gloss.max() > 0
    assert glossy.specular_map.shape == glossy.roughness_map.shape == (128, 128)
    assert not np.array_equal(glossy.specular_map, plain.specular_map)  # the photo's own gloss
    np.testing.assert_array_equal(glossy.roughness_map, plain.roughness_map)
    took = glossy.gloss > 0
    luma = np.array([0.2126, 0.7152, 0.0722])
    assert (glossy.delit[took] @ luma < plain.delit[took] @ luma).all()  # the sheen left the albedo there
    np.testing.assert_array_equal(glossy.delit[~took], plain.delit[~took])  # and nowhere else
    assert "sheen_light_direction" in glossy.metrics["specular"] and "sheen" in glossy.timings
    assert np.isfinite(glossy.render).all() and glossy.metrics["relit_albedo"]["face_psnr_db"] > 15
