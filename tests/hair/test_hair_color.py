"""Hair colour corrected for the portrait's light (issue 17, item 2): the strands' shading under
the texture stage's SH light (:func:`hair_shading_from_sh`), the robust pixel statistics and the
shading options of :func:`estimate_hair_color`, the render-and-compare correction of
``hair_portrait`` (``pipeline._calibrate_hair_color``) and the secondary highlight's colour."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from helpers import uv_sphere

from machlib._preview import orbit_camera
from machlib._scene import ScenePart, StrandShading, _srgb_to_linear, render_scene
from machlib.hair import HAIR_COLORS, Strands, estimate_hair_color, hair_shading_from_sh
from machlib.hair._color import _lab
from machlib.render import sh_constant, sh_directional


def _srgb_image(linear, n: int = 16) -> np.ndarray:
    lin = np.clip(np.asarray(linear, np.float64), 0.0, 1.0)
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.broadcast_to((srgb * 255 + 0.5).astype(np.uint8), (n, n, 3)).copy()


def _warm_sh() -> np.ndarray:
    """A warm key light from above-front plus a dimmer neutral ambient."""
    key = np.asarray(sh_directional(np.array([0.3, 0.5, 1.0]), np.array([1.0, 0.8, 0.6])), np.float64)
    return key + np.asarray(sh_constant(np.full(3, 0.3)), np.float64)


def test_uniform_light_shades_hair_by_its_radiance():
    for r in (0.5, 1.0, 2.0):
        np.testing.assert_allclose(hair_shading_from_sh(np.asarray(sh_constant(np.full(3, r)))), r, rtol=1e-6)


def test_a_warm_light_gives_a_warm_shading_and_ambient_moves_it():
    sh = _warm_sh()
    s = hair_shading_from_sh(sh)
    assert s.shape == (3,) and s[0] > s[1] > s[2] > 0
    # more ambient: less of the key light's strand-angle dependence, nearer the lit side's level
    assert (hair_shading_from_sh(sh, ambient=1.0) > hair_shading_from_sh(sh, ambient=0.0)).all()


def test_hair_shading_from_sh_bad_inputs():
    for bad in (np.zeros((4, 3)), np.full((9, 3), np.nan)):
        with pytest.raises(ValueError, match="hair_shading_from_sh: sh"):
            hair_shading_from_sh(bad)
    with pytest.raises(ValueError, match="hair_shading_from_sh: ambient"):
        hair_shading_from_sh(np.asarray(sh_constant(np.ones(3))), ambient=1.5)


def test_rgb_shading_is_white_balance_and_exposure_at_once():
    shade = np.array([1.3, 1.0, 0.7])  # a warm, bright light
    img = _srgb_image(shade * np.asarray(HAIR_COLORS["brown"]))
    ones = np.ones(img.shape[:2], np.float32)
    est = estimate_hair_color(img, ones, shading=shade)
    assert est.name == "brown" and est.error < 0.1
    np.testing.assert_allclose(est.rgb, HAIR_COLORS["brown"], rtol=0.1, atol=2e-3)
    assert estimate_hair_color(img, ones).name != "brown"  # the constant 0.7 reads it lighter and redder
    for bad in ((1.0, 1.0), (1.0, 0.0, 1.0), (np.nan, 1.0, 1.0)):
        with pytest.raises(ValueError, match="estimate_hair_color: shading"):
            estimate_hair_color(img, ones, shading=bad)
    with pytest.raises(ValueError, match="estimate_hair_color: statistic"):
        estimate_hair_color(img, ones, statistic="mode")
    with pytest.raises(ValueError, match="estimate_hair_color: erode"):
        estimate_hair_color(img, ones, erode=-1)


def test_median_and_erosion_ignore_stray_and_edge_pixels():
    n = 40
    brown = _srgb_image(0.7 * np.asarray(HAIR_COLORS["brown"]), n)
    img = brown.copy()
    img[:, :4] = img[:, -4:] = img[:4] = img[-4:] = 235  # a light background mixed into the mask's edge
    img[10:16, 10:30] = _srgb_image(0.7 * np.asarray(HAIR_COLORS["blonde"]), n)[10:16, 10:30]  # a few sunlit strands
    ones = np.ones((n, n), np.float32)
    plain = estimate_hair_color(img, ones)
    robust = estimate_hair_color(img, ones, statistic="median", erode=4)
    assert robust.name == "brown" and plain.name != "brown"
    np.testing.assert_allclose(robust.observed, 0.7 * np.asarray(HAIR_COLORS["brown"]), rtol=0.05)
    # erosion that would leave too few pixels keeps the region whole
    small = np.zeros((n, n), np.float32)
    small[18:23, 18:23] = 1.0
    assert estimate_hair_color(brown, small, erode=5).pixels == estimate_hair_color(brown, small).pixels


def test_keep_hue_keeps_a_red_the_fibre_model_cannot_reach():
    vivid = np.array([0.37, 0.107, 0.029])  # strawberry blonde as photographed (t1_face0's median)
    img = _srgb_image(vivid)
    ones = np.ones(img.shape[:2], np.float32)
    fitted = estimate_hair_color(img, ones, shading=np.ones(3))
    kept = estimate_hair_color(img, ones, shading=np.ones(3), keep_hue=True)
    assert fitted.error > 0.25  # no melanin pair is that saturated
    target = _lab(vivid)
    de = lambda rgb: float(np.linalg.norm(_lab(rgb) - target))
    assert de(kept.rgb) < 2.0 and de(fitted.rgb) > 10.0
    # a colour the model fits is left alone
    brown = _srgb_image(np.asarray(HAIR_COLORS["brown"]))
    np.testing.assert_array_equal(estimate_hair_color(brown, ones, shading=np.ones(3), keep_hue=True).rgb,
                                  estimate_hair_color(brown, ones, shading=np.ones(3)).rgb)


def test_secondary_highlight_follows_the_fibre_brightness():
    n = 120
    xs = np.linspace(-0.06, 0.06, n)
    pts = np.stack([np.repeat(xs[:, None], 16, 1), np.tile(np.linspace(0.08, -0.08, 16), (n, 1)),
                    np.zeros((n, 16))], -1).astype(np.float32)
    dark = Strands(pts, np.broadcast_to(np.asarray(HAIR_COLORS["brown"], np.float32), (n, 3)).copy())
    cam = orbit_camera(0.0, target=(0.0, 0.0, 0.0), distance=0.5, image_size=(48, 48))
    flat = {"specular": 0.0, "jitter": 0.0, "tip_bleach": 0.0, "root_shadow": 0.0, "self_shadow": 0.0}

    def mean_hair(**kw):
        img = render_scene([], cam, strands=dark, light_dir=(0.0, 0.0, 1.0), supersample=1,
                           strand_shading=StrandShading(**flat, **kw))
        return _srgb_to_linear(img[..., :3][img[..., 3] == 255] / 255.0).mean(0)

    none, old, new = mean_hair(secondary=0.0), mean_hair(secondary_power=0.5), mean_hair()
    assert (none < new).all() and (new < old).all()
    # the default's highlight keeps brown hair's hue: its red/blue ratio stays near the diffuse one
    assert new[0] / new[2] == pytest.approx(none[0] / none[2], rel=0.1)
    with pytest.raises(ValueError, match="secondary_power"):
        render_scene([], cam, strands=dark, strand_shading=StrandShading(secondary_power=3.0))


def test_render_and_compare_recovers_the_albedo_under_a_warm_light():
    """The photo is machlib's own render of brown strands over a head under a warm SH light: the
    first estimate (median / analytic shading) is corrected by rendering the strands and comparing,
    and lands on the albedo."""
    from machlib.pipeline import _calibrate_hair_color, _hair_color_choice

    head = uv_sphere(24, 16, radius=0.09)
    n = 500
    xs = np.linspace(-0.085, 0.085, n)
    ys = np.linspace(0.09, -0.09, 24)
    pts = np.stack([np.repeat(xs[:, None], 24, 1), np.tile(ys, (n, 1)),
                    np.broadcast_to(0.095 + 0.01 * np.cos(xs[:, None] * 40.0), (n, 24))], -1).astype(np.float32)
    albedo = np.asarray(HAIR_COLORS["brown"], np.float32)
    strands = Strands(pts, np.broadcast_to(albedo, (n, 3)).copy())
    cam = orbit_camera(0.0, target=(0.0, 0.0, 0.0), distance=0.55, image_size=(96, 96))
    sh = _warm_sh()
    parts = [ScenePart(head, color=(0.3, 0.3, 0.3), two_sided=False)]
    photo = render_scene(parts, cam, strands=strands, sh=sh, supersample=1)
    bare = render_scene(parts, cam, sh=sh, supersample=1)
    mask = (np.abs(photo[..., :3].astype(int) - bare[..., :3].astype(int)).max(-1) > 2).astype(np.float32)
    image = np.ascontiguousarray(photo[..., :3])
    first = _hair_color_choice(image, mask, None, lighting=sh)
    assert first["source"] == "portrait" and len(first["shading"]) == 3
    fit = SimpleNamespace(image=image, result=SimpleNamespace(camera=cam, mesh=head))
    out = _calibrate_hair_color(fit, SimpleNamespace(mask=mask), strands, sh, first)
    assert out["calibration"]["applied"] and out["calibration"]["pixels"] > 100
    de = lambda rgb: float(np.linalg.norm(_lab(rgb) - _lab(albedo)))
    assert out["name"] == "brown"
    assert de(out["rgb"]) < 4.0
    assert de(out["rgb"]) <= de(first["rgb"]) + 0.5


# --- fit_melanin (JAX) ------------------------------------------------------------------------


def _fibre(m, p):
    from machlib.hair import hair_color

    return np.asarray(hair_color(m, p), np.float64)


@pytest.mark.parametrize("mp", [(0.3, 0.2), (0.05, 0.3), (0.6, 0.0), (0.0, 0.7), (1.5, 0.1)])
def test_fit_melanin_recovers_concentrations(mp):
    from machlib.hair import fit_melanin

    m, p = fit_melanin(_fibre(*mp))
    assert float(m) == pytest.approx(mp[0], rel=1e-3, abs=1e-4)
    assert float(p) == pytest.approx(mp[1], rel=1e-3, abs=1e-4)


def test_fit_melanin_agrees_with_the_grid_and_clips_at_zero():
    from machlib.hair import fit_melanin

    for rgb in (np.array([0.3, 0.15, 0.05]), np.array([0.37, 0.107, 0.029]), np.array([0.6, 0.5, 0.35])):
        m, p = (float(v) for v in fit_melanin(rgb))
        est = estimate_hair_color(_srgb_image(0.7 * rgb), np.ones((16, 16), np.float32))
        assert m >= 0 and p >= 0
        # the continuous optimum is at least as good as the grid's (to the 8-bit image's rounding)
        err = lambda mm, pp, rgb=rgb: float(np.sqrt(np.mean((np.log(_fibre(mm, pp)) - np.log(rgb)) ** 2)))
        assert err(m, p) <= err(est.melanin, est.pheomelanin) + 0.01
    m, p = fit_melanin(np.ones(3))  # white: no pigment
    assert float(m) == pytest.approx(0.0, abs=1e-6) and float(p) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.slow
def test_fit_melanin_jit_vmap_and_gradients():
    import jax
    import jax.numpy as jnp
    from helpers import x64
    from jax.test_util import check_grads

    from machlib.hair import fit_melanin

    batch = jnp.asarray(np.stack([_fibre(0.3, 0.2), _fibre(0.05, 0.3), _fibre(1.0, 0.05)]), jnp.float32)
    one = fit_melanin(batch[0])  # jitted inside
    with jax.disable_jit():
        eager = fit_melanin(batch[0])
    np.testing.assert_allclose(np.asarray(one), np.asarray(eager), rtol=1e-5, atol=1e-7)
    vm = jax.vmap(fit_melanin)(batch)
    for i in range(3):
        np.testing.assert_allclose([float(vm[0][i]), float(vm[1][i])], np.asarray(fit_melanin(batch[i])),
                                   rtol=1e-5, atol=1e-7)
    with x64():
        a = jnp.asarray(_fibre(0.3, 0.2) * np.array([1.02, 0.97, 1.01]), jnp.float64)  # off the model: a residual
        check_grads(lambda x: jnp.stack(fit_melanin(x, steps=4)), (a,), order=1, modes=["rev"], eps=1e-6)
    for bad in (lambda: fit_melanin(np.ones(4)), lambda: fit_melanin(np.ones(3), roughness=0.0),
                lambda: fit_melanin(np.ones(3), steps=-1)):
        with pytest.raises(ValueError, match="fit_melanin"):
            bad()


def test_fit_melanin_keeps_the_albedos_dtype():
    # "two scalar arrays of the albedo's dtype": a float32 albedo stays float32 with x64 on
    import jax.numpy as jnp
    from helpers import x64

    from machlib.hair import fit_melanin

    with x64():
        for dtype in (jnp.float32, jnp.float64):
            m, p = fit_melanin(jnp.asarray(_fibre(0.3, 0.2), dtype), steps=2)
            assert m.dtype == p.dtype == dtype


def test_grey_hair_is_neutral_at_its_lightness():
    # grey hair in a photo with a leftover warm cast is named grey; its strands get the named
    # grey's neutral colour at the albedo's luminance, not the cast (which the melanin fit or the
    # albedo would keep as beige)
    lin = np.array([0.36, 0.30, 0.24])  # light grey under a warm cast
    est = estimate_hair_color(_srgb_image(lin), np.ones((16, 16), np.float32), shading=1.0)
    assert est.name in ("gray", "white")
    rgb = np.asarray(est.rgb, np.float64)
    ref = np.asarray(HAIR_COLORS[est.name], np.float64)
    np.testing.assert_allclose(rgb / rgb.sum(), ref / ref.sum(), atol=1e-6)
    luma = np.array([0.2126, 0.7152, 0.0722])
    assert rgb @ luma == pytest.approx(lin @ luma, rel=0.03)


def test_black_hair_is_a_dark_neutral():
    # black hair photographed under a cast (t1_face1: olive, t1_face4: green) is named black and
    # drawn as a dark neutral at the albedo's luminance, not in the cast's hue
    lin = np.array([0.024, 0.024, 0.016])
    est = estimate_hair_color(_srgb_image(lin), np.ones((16, 16), np.float32), shading=1.0, keep_hue=True)
    assert est.name == "black"
    rgb = np.asarray(est.rgb, np.float64)
    assert np.ptp(rgb) / rgb.max() < 0.05
    assert rgb @ np.array([0.2126, 0.7152, 0.0722]) == pytest.approx(lin @ np.array([0.2126, 0.7152, 0.0722]), rel=0.03)


def _two_strands_and_photo():
    cam = orbit_camera(0.0, image_size=(64, 64))
    ys = np.linspace(0.1, -0.1, 8)
    strands = np.stack([np.stack([np.full(8, x), ys, np.zeros(8)], 1) for x in (-0.03, 0.03)])
    photo = np.zeros((64, 64, 3), np.uint8)
    photo[:, :32] = (220, 190, 150)  # a pale lit half
    photo[:, 32:] = (150, 90, 40)  # an orange shaded half
    return cam, strands, photo


def test_strand_colors_from_photo_carry_the_photos_variation():
    from machlib.hair import strand_colors_from_photo

    cam, strands, photo = _two_strands_and_photo()
    base = np.array([0.5, 0.25, 0.07])
    out = strand_colors_from_photo(strands, cam, photo, np.ones((64, 64)), base, clip=(0.1, 10.0))
    assert out.shape == (2, 3) and out.dtype == np.float32
    lit, shaded = _srgb_to_linear(photo[0, 0] / 255.0), _srgb_to_linear(photo[0, 63] / 255.0)
    # each strand is the colour times its pixels' colour over the median of all (the two halves'
    # strands are equally long: the median lies on one of them)
    ratio = out / base
    assert np.allclose(ratio[0] / ratio[1], lit / shaded, rtol=1e-3)
    assert out[0, 2] / out[0, 0] > out[1, 2] / out[1, 0]  # the lit strand is less saturated
    # clipped ratios
    tight = strand_colors_from_photo(strands, cam, photo, np.ones((64, 64)), base, clip=(0.9, 1.1))
    assert (tight / base).min() >= 0.9 - 1e-6 and (tight / base).max() <= 1.1 + 1e-6
    # strands over pixels that are not hair, or seen on too few, keep the colour
    half = np.zeros((64, 64))
    half[:, 32:] = 1.0
    out = strand_colors_from_photo(strands, cam, photo, half, base)
    assert np.allclose(out[0], base) and np.allclose(out[1], base, atol=1e-6)  # the only one seen is the median
    out = strand_colors_from_photo(strands, cam, photo, np.ones((64, 64)), base, min_pixels=10_000)
    assert np.allclose(out, base)


def test_strand_colors_from_photo_hidden_strands_and_bad_inputs():
    from machlib.hair import strand_colors_from_photo
    from machlib._errors import InputError

    cam, strands, photo = _two_strands_and_photo()
    base = [0.5, 0.25, 0.07]
    # an ellipsoid in front of the left strand hides it: it keeps the colour
    from machlib import Mesh

    ball = uv_sphere(radius=1.0)
    ball = Mesh(np.asarray(ball.vertices) * [0.02, 0.2, 0.02] + [-0.03, 0.0, 0.1], ball.faces, ball.uv, ball.faces_uv)
    out = strand_colors_from_photo(strands, cam, photo, np.ones((64, 64)), base, mesh=ball)
    assert np.allclose(out[0], base)
    ok = (strands, cam, photo, np.ones((64, 64)), base)
    for args, kw, match in [
        ((strands[0],) + ok[1:], {}, "points"),
        ((strands, cam, photo.astype(np.float32)) + ok[3:], {}, "image"),
        ((strands, cam, photo[:32]) + ok[3:], {}, "image_size"),
        (ok[:3] + (np.ones((8, 8)), base), {}, "mask"),
        (ok[:4] + ([1.5, 0.2, 0.1],), {}, "rgb"),
        (ok, {"clip": (1.2, 2.0)}, "clip"),
        (ok, {"min_pixels": 0}, "min_pixels"),
    ]:
        with pytest.raises(InputError, match=match):
            strand_colors_from_photo(*args, **kw)
