"""Delighting training data: colour temperatures, closed-form SH lights, environment sampling
(determinism, jit/vmap, exposure), baking (lit = albedo × shading), albedo variations and ITA
augmentation of the generated pairs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from helpers import x64
from machlib.render import linear_to_srgb, sh_constant, sh_directional, sh_shading, srgb_to_linear
from machlib.texture import (
    LIGHTING_KINDS,
    LIGHTING_RANGES,
    albedo_variations,
    bake_lighting,
    color_temperature_rgb,
    delighting_pairs,
    sample_lighting,
    sh_disc,
    sky_lighting,
    srgb_to_lab,
)

LUMA = jnp.array([0.2126, 0.7152, 0.0722])
R = 16


def fib_dirs(n=3000):
    i = np.arange(n) + 0.5
    y = 1 - 2 * i / n
    r = np.sqrt(1 - y * y)
    phi = i * np.pi * (3 - np.sqrt(5))
    return jnp.asarray(np.stack([r * np.sin(phi), y, r * np.cos(phi)], 1), jnp.float32)


def sphere_normals(r=R):
    v, u = np.meshgrid(np.linspace(-1, 1, r), np.linspace(-1, 1, r), indexing="ij")
    n = np.stack([0.8 * u, -0.8 * v, np.ones_like(u)], -1)
    return (n / np.linalg.norm(n, axis=-1, keepdims=True)).astype(np.float32)


def toy_albedo(r=R):
    a = np.empty((r, r, 3), np.float32)
    a[:] = (0.75, 0.58, 0.48)
    a[r // 2 :, : r // 2] = (0.7, 0.5, 0.45)
    a[2:4, 2:6] = (0.95, 0.95, 0.95)  # an "eye"
    return a


# ------------------------------------------------------------------------------------------------
# colour temperature


def test_color_temperature_is_unit_luminance_and_ordered():
    t = jnp.array([1800.0, 2700.0, 4000.0, 6500.0, 10000.0, 15000.0])
    rgb = color_temperature_rgb(t)
    assert rgb.shape == (6, 3)
    np.testing.assert_allclose(rgb @ LUMA, 1.0, rtol=1e-5)
    ratio = np.asarray(rgb[:, 0] / rgb[:, 2])
    assert np.all(np.diff(ratio) < 0)  # red/blue falls as the temperature rises
    d65ish = np.asarray(rgb[3])
    assert d65ish.max() / d65ish.min() < 1.12  # 6500 K is close to white
    warm = np.asarray(rgb[1])
    assert warm[0] > warm[1] > warm[2]


# ------------------------------------------------------------------------------------------------
# closed-form SH lights


def test_sky_lighting_uniform_and_hemisphere():
    np.testing.assert_allclose(sky_lighting(jnp.ones(3), jnp.ones(3)), sh_constant(jnp.ones(3)), atol=1e-6)
    c = sky_lighting(jnp.array([1.0]), jnp.array([0.0]))
    up, down, side = (sh_shading(jnp.array(n), c)[0] for n in ([0.0, 1.0, 0.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]))
    # exact Lambertian values: 1 facing the sky, 0 facing the ground, ½ sideways
    assert float(up) == pytest.approx(1.0, abs=1e-5)
    assert float(down) == pytest.approx(0.0, abs=1e-5)
    assert float(side) == pytest.approx(0.5, abs=1e-5)
    tilted = sky_lighting(jnp.array([1.0]), jnp.array([0.0]), up=jnp.array([0.0, 0.0, 2.0]))
    assert float(sh_shading(jnp.array([0.0, 0.0, 1.0]), tilted)[0]) == pytest.approx(1.0, abs=1e-5)


def test_sh_disc_limits_and_energy():
    d = jnp.array([0.3, 0.5, 0.8])
    col = jnp.array([1.0, 0.5, 0.2])
    np.testing.assert_allclose(sh_disc(d, col, half_angle=1e-3), sh_directional(d, col), atol=1e-4)
    # band 0 carries radiance × solid angle: (col / sin²α) · 2π(1 − cos α) · Y00
    a = 0.6
    c = sh_disc(d, col, half_angle=a)
    expected = col / np.sin(a) ** 2 * 2 * np.pi * (1 - np.cos(a)) * 0.5 * np.sqrt(1 / np.pi)
    np.testing.assert_allclose(c[0], expected, rtol=1e-5)
    # a hemisphere-sized disc facing up is the sky dome
    hemi = sh_disc(jnp.array([0.0, 1.0, 0.0]), jnp.ones(1), half_angle=np.pi / 2)
    np.testing.assert_allclose(hemi, sky_lighting(jnp.ones(1), jnp.zeros(1)), atol=1e-5)
    with x64():
        check_grads(lambda x: sh_disc(x, jnp.ones(2, jnp.float64), half_angle=0.4), (jnp.asarray(d, jnp.float64),),
                    order=1, eps=1e-6)


# ------------------------------------------------------------------------------------------------
# sampling


def test_sample_lighting_is_deterministic_and_varied():
    a = sample_lighting(jax.random.key(0))
    b = sample_lighting(jax.random.key(0))
    assert a.shape == (9, 3) and a.dtype == jnp.float32
    np.testing.assert_array_equal(a, b)
    others = [sample_lighting(jax.random.key(i)) for i in range(1, 6)]
    assert all(not np.allclose(a, o) for o in others)


def test_sample_lighting_jit_and_vmap():
    keys = jax.random.split(jax.random.key(1), 4)
    looped = jnp.stack([sample_lighting(k) for k in keys])
    np.testing.assert_allclose(jax.vmap(sample_lighting)(keys), looped, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.jit(lambda k: sample_lighting(k, kinds="indoor_night"))(keys[0]),
                               sample_lighting(keys[0], kinds="indoor_night"), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", LIGHTING_KINDS)
def test_each_family_hits_its_exposure_range(kind):
    lo, hi = LIGHTING_RANGES[kind]["exposure"]
    dirs = fib_dirs()
    coeffs = jax.vmap(lambda k: sample_lighting(k, kinds=kind))(jax.random.split(jax.random.key(2), 6))
    peaks = [float(jnp.max(jnp.clip(sh_shading(dirs, c), 0, None) @ LUMA)) for c in coeffs]
    assert all(0.97 * lo <= p <= 1.03 * hi for p in peaks), peaks
    assert max(peaks) - min(peaks) > 0.02  # the exposure varies


def test_night_is_warmer_than_day_on_average():
    keys = jax.random.split(jax.random.key(3), 16)
    front = jnp.array([0.0, 0.0, 1.0])

    def tint(kind):
        s = jnp.stack([sh_shading(front, sample_lighting(k, kinds=kind)) for k in keys])
        return float(jnp.mean(s[:, 0] / jnp.maximum(s[:, 2], 1e-3)))

    assert tint("indoor_night") > tint("indoor_day")


def test_kinds_are_validated():
    with pytest.raises(ValueError, match="kinds"):
        sample_lighting(jax.random.key(0), kinds="disco")
    with pytest.raises(ValueError, match="kinds"):
        sample_lighting(jax.random.key(0), kinds=())


# ------------------------------------------------------------------------------------------------
# baking


def test_bake_lighting_is_albedo_times_shading():
    albedo, normals = toy_albedo(), sphere_normals()
    coeffs = sample_lighting(jax.random.key(4), kinds="indoor_day") * 0.5  # keep below clipping
    shading = sh_shading(normals, coeffs)
    display = bake_lighting(albedo, normals, coeffs, linear=False)
    np.testing.assert_allclose(display, np.clip(albedo * np.asarray(shading).clip(0, None), 0, 1), rtol=1e-6, atol=1e-6)
    lit = bake_lighting(albedo, normals, coeffs)
    np.testing.assert_allclose(lit, linear_to_srgb(srgb_to_linear(albedo) * jnp.clip(shading, 0, None)), atol=1e-6)
    # uniform white light of radiance 1 gives back the albedo
    np.testing.assert_allclose(bake_lighting(albedo, normals, sh_constant(jnp.ones(3))), albedo, atol=1e-5)


def test_bake_lighting_options():
    albedo, normals = toy_albedo(), sphere_normals()
    coeffs = sh_constant(jnp.full(3, 0.5))
    dark = bake_lighting(albedo, normals, coeffs, occlusion=jnp.zeros((R, R)))
    assert float(jnp.max(dark)) == 0.0
    plain = bake_lighting(albedo, normals, coeffs)
    shiny = bake_lighting(albedo, normals, coeffs, specular=0.3)
    assert bool(jnp.all(shiny >= plain - 1e-6)) and float(jnp.mean(shiny - plain)) > 0.01
    assert float(shiny.max()) <= 1.0
    with pytest.raises((ValueError, TypeError)):
        bake_lighting(albedo, normals[:8], coeffs)
    with pytest.raises((ValueError, TypeError)):
        bake_lighting(albedo, normals, jnp.zeros((4, 3)))


# ------------------------------------------------------------------------------------------------
# variations and pairs


def test_albedo_variations():
    albedo = toy_albedo()
    k = jax.random.key(5)
    np.testing.assert_allclose(albedo_variations(k, albedo, strength=0.0), albedo, atol=2e-3)
    varied = albedo_variations(k, albedo)
    np.testing.assert_array_equal(varied, albedo_variations(k, albedo))
    assert float(jnp.mean(jnp.abs(varied - albedo))) > 0.005
    mask = np.zeros((R, R), np.float32)
    mask[:, R // 2 :] = 1.0
    half = albedo_variations(k, albedo, mask=mask)
    np.testing.assert_allclose(half[:, : R // 2], albedo[:, : R // 2], atol=2e-3)


def _ita_of_mean(texture, weights):
    lab = srgb_to_lab(texture)
    w = jnp.asarray(weights)[..., None]
    mean = jnp.sum(lab * w, axis=(-3, -2)) / jnp.sum(w)
    return np.degrees(np.arctan2(np.asarray(mean[..., 0]) - 50.0, np.asarray(mean[..., 2])))


def test_delighting_pairs_shapes_determinism_and_ita():
    albedo, normals = toy_albedo(), sphere_normals()
    skin = np.ones((R, R), np.float32)
    skin[2:4, 2:6] = 0.0
    eyes = 1.0 - skin
    lo, hi = -20.0, 50.0
    lit, target = delighting_pairs(jax.random.key(6), albedo, normals, count=6, ita_range=(lo, hi), mask=skin, keep=eyes)
    assert lit.shape == target.shape == (6, R, R, 3)
    assert float(lit.min()) >= 0.0 and float(lit.max()) <= 1.0
    again = delighting_pairs(jax.random.key(6), albedo, normals, count=6, ita_range=(lo, hi), mask=skin, keep=eyes)
    np.testing.assert_array_equal(lit, again[0])
    np.testing.assert_array_equal(target, again[1])
    other = delighting_pairs(jax.random.key(7), albedo, normals, count=6, ita_range=(lo, hi), mask=skin, keep=eyes)
    assert not np.allclose(lit, other[0])
    itas = np.array([_ita_of_mean(t, skin) for t in target])
    assert np.all((itas >= lo - 2.0) & (itas <= hi + 2.0)), itas
    assert itas.max() - itas.min() > 10.0  # the tones differ
    # the protected eye texels keep their colour, and the lit texture is a bake of the target
    np.testing.assert_allclose(target[:, 2:4, 2:6], np.broadcast_to(albedo[2:4, 2:6], (6, 2, 4, 3)), atol=2e-3)
    assert not np.allclose(lit, target, atol=0.02)


def test_delighting_pairs_single_tone_and_kind():
    albedo, normals = toy_albedo(), sphere_normals()
    lit, target = delighting_pairs(jax.random.key(8), albedo, normals, count=2, ita_range=(30.0, 30.0),
                                   kinds="outdoor_day")
    itas = [_ita_of_mean(t, np.ones((R, R))) for t in target]
    np.testing.assert_allclose(itas, 30.0, atol=1.5)
    np.testing.assert_allclose(target[0], target[1], atol=1e-5)  # same tone, no variation
    assert not np.allclose(lit[0], lit[1])  # different lights


def test_delighting_pairs_under_jit_and_with_uint8():
    albedo, normals = toy_albedo(), sphere_normals()
    eager = delighting_pairs(jax.random.key(9), albedo, normals, count=2, variation=0.5)
    jitted = jax.jit(lambda k: delighting_pairs(k, albedo, normals, count=2, variation=0.5))(jax.random.key(9))
    np.testing.assert_allclose(eager[0], jitted[0], atol=1e-5)
    u8 = (albedo * 255).round().astype(np.uint8)
    lit, target = delighting_pairs(jax.random.key(9), u8, normals, count=2, variation=0.5)
    assert target.dtype == jnp.float32 and lit.shape == (2, R, R, 3)
    np.testing.assert_allclose(lit, eager[0], atol=0.01)


def test_delighting_pairs_validates():
    albedo, normals = toy_albedo(), sphere_normals()
    with pytest.raises(ValueError, match="count"):
        delighting_pairs(jax.random.key(0), albedo, normals, count=0)
    with pytest.raises(ValueError, match="ita_range"):
        delighting_pairs(jax.random.key(0), albedo, normals, count=1, ita_range=(50.0, 10.0))
    with pytest.raises((ValueError, TypeError), match="mask"):
        delighting_pairs(jax.random.key(0), albedo, normals, count=1, mask=np.ones((4, 4), np.float32))
    with pytest.raises((ValueError, TypeError)):
        delighting_pairs(jax.random.key(0), albedo, normals[:8], count=1)
    with pytest.raises(ValueError, match="specular"):
        delighting_pairs(jax.random.key(0), albedo, normals, count=1, specular=(0.3, 0.1))
