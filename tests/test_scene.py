"""Scene previews: shared depth between parts, transparency, strands against meshes, SH and
directional lighting, textures, coverage alpha, determinism, contact sheets, turntables, the
named SH lights, bad inputs, and one look at the template head with eyes, a lens and hair."""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import uv_sphere

from machlib import Mesh, rotation_matrix
from machlib._image import save_png
from machlib._preview import orbit_camera
from machlib._scene import (
    ScenePart,
    _sh_shading_np,
    preview_sheet,
    render_scene,
    three_sh_lights,
    turntable_cameras,
)
from machlib.hair import Strands
from machlib.render import sh_constant, sh_directional, sh_shading
from machlib.texture import ggx_specular

SIZE = 48
C = SIZE // 2
RED, GREEN, BLUE, WHITE = (0.8, 0.03, 0.03), (0.03, 0.7, 0.03), (0.03, 0.05, 0.9), (0.8, 0.8, 0.8)


def sphere(center, radius: float) -> Mesh:
    m = uv_sphere(16, 10, radius=radius)
    return Mesh(np.asarray(m.vertices) + np.asarray(center), m.faces, m.uv, m.faces_uv)


@pytest.fixture(scope="module")
def cam():
    return orbit_camera(0.0, distance=0.6, target=(0.0, 0.0, 0.0), image_size=(SIZE, SIZE))


@pytest.fixture(scope="module")
def big():
    return sphere((0.0, 0.0, 0.0), 0.1)


@pytest.fixture(scope="module")
def small():
    return sphere((0.0, 0.0, 0.16), 0.03)


def strand(z: float, color=RED) -> Strands:
    pts = np.stack([np.zeros(12), np.linspace(-0.06, 0.06, 12), np.full(12, z)], 1)[None]
    return Strands(pts.astype(np.float32), color=np.asarray([color], np.float32))


def test_occlusion_is_independent_of_part_order(cam, big, small):
    a = render_scene([ScenePart(big, color=RED), ScenePart(small, color=GREEN)], cam)
    b = render_scene([ScenePart(small, color=GREEN), ScenePart(big, color=RED)], cam)
    np.testing.assert_array_equal(a, b)
    centre = a[C - 1 : C + 1, C - 1 : C + 1, :3].astype(int).mean((0, 1))
    assert centre[1] > centre[0] + 60  # the small green sphere hides the red one
    edge = a[C, C - 12, :3].astype(int)  # outside the small sphere: the big one shows
    assert edge[0] > edge[1] + 60 and a[C, C - 12, 3] == 255


def test_transparent_part_tints_but_does_not_hide(cam, big, small):
    solid = render_scene([ScenePart(big, color=RED)], cam).astype(int)
    glass = render_scene([ScenePart(big, color=RED), ScenePart(small, color=BLUE, alpha=0.3)], cam).astype(int)
    px, px0 = glass[C, C], solid[C, C]
    assert px[2] > px0[2] + 30 and px[0] < px0[0] - 5  # tinted blue ...
    assert px[0] > px[2] and px[3] == 255  # ... but the red sphere still dominates
    # over nothing, the coverage is the part's opacity
    alone = render_scene([ScenePart(small, color=BLUE, alpha=0.3)], cam)
    assert abs(int(alone[C, C, 3]) - round(0.3 * 255)) <= 1
    # a transparent part behind an opaque one does not show
    hidden = render_scene([ScenePart(big, color=RED), ScenePart(sphere((0, 0, -0.2), 0.03), color=BLUE, alpha=0.5)],
                          cam)
    np.testing.assert_array_equal(hidden[C - 6 : C + 6, C - 6 : C + 6], solid[C - 6 : C + 6, C - 6 : C + 6])


def test_a_clear_parts_highlight_is_added_in_full_and_shininess_narrows_it(cam, big, small):
    """A nearly clear part (a cornea) keeps its highlight: the reflection is added, not scaled by
    the part's opacity; a higher exponent gives a smaller highlight."""
    light = (0.0, 0.0, 1.0)  # from the camera: the highlight at the small sphere's centre
    base = render_scene([ScenePart(big, color=RED)], cam, light_dir=light).astype(int)

    def gloss(**kw):
        img = render_scene([ScenePart(big, color=RED), ScenePart(small, color=(0, 0, 0), alpha=0.05, specular=0.8,
                                                                 **kw)], cam, light_dir=light).astype(int)
        return img[..., 1] - base[..., 1]  # green: the red sphere has almost none

    soft, sharp = gloss(), gloss(shininess=400.0)
    assert soft[C, C] > 100  # at the mirror direction: the full 0.8, not 5 % of it (a few levels)
    assert sharp.max() > 25 and (sharp > 20).sum() < (soft > 20).sum() / 4
    with pytest.raises(ValueError, match="shininess"):
        render_scene([ScenePart(big, shininess=0.5)], cam)


def _srgb_to_linear(u8):
    c = np.asarray(u8, np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def test_a_part_with_pbr_maps_shows_its_gltf_lobe(cam):
    """A part with roughness/specular maps gets glTF's GGX lobe (not Blinn-Phong) under the key
    light, at pi times that light's Lambert level: ``1 - ambient`` for a directional light,
    ``s(L) - s(-L)`` under SH; ``specular``/``shininess`` are then unused and a zero specular map
    leaves the diffuse render."""
    ball = uv_sphere(96, 64, radius=0.1)
    grey, amb = (0.3, 0.3, 0.3), 0.25
    up = jnp.array([0.0, 0.0, 1.0])  # towards the light and the camera

    def render(**kw):
        return render_scene([ScenePart(ball, color=grey, **kw)], cam, light_dir=(0.0, 0.0, 1.0), ambient=amb,
                            supersample=1)

    # the centre pixel (C, C) is half a pixel off the mirror point: its normal and view direction
    # from the pixel's ray through the sphere
    R = np.asarray(rotation_matrix(np.asarray(cam.rotation, np.float64)))
    eye = -R.T @ np.asarray(cam.translation, np.float64)
    ray = R.T @ np.append((C + 0.5 - np.asarray(cam.principal)) / np.asarray(cam.focal), 1.0)
    ray /= np.linalg.norm(ray)
    b = eye @ ray
    hit = eye + ray * (-b - np.sqrt(b * b - eye @ eye + 0.01))
    n = jnp.asarray(hit / 0.1, jnp.float32)
    rough, spec = np.full((8, 8), 0.4, np.float32), np.full((8, 8), 0.9, np.float32)
    img = render(roughness_map=rough, specular_map=spec, specular=5.0, shininess=3.0)
    lobe = float(ggx_specular(n, jnp.asarray(eye - hit, jnp.float32), up, jnp.float32(0.4), jnp.float32(0.9)))
    assert lobe > 0.1  # near the mirror peak 0.04 * 0.9 / (4 pi 0.4^4)
    want = 0.3 * float(n[2]) + np.pi * (1.0 - amb) * lobe  # diffuse + the lobe
    assert abs(_srgb_to_linear(img[C, C, 0]) - want) < 0.006
    # Blinn-Phong's strength and exponent are unused: the same image with other values
    np.testing.assert_array_equal(img, render(roughness_map=rough, specular_map=spec))
    # a zero specular map: no highlight (the diffuse render); no specular map: F0 = 0.04
    np.testing.assert_array_equal(render(roughness_map=rough, specular_map=0 * spec), render(specular=0.0))
    full = render(roughness_map=rough)
    assert _srgb_to_linear(full[C, C, 0]) > _srgb_to_linear(img[C, C, 0]) + 0.01
    # rougher skin: a dimmer, wider sheen
    matte = render(roughness_map=np.full((8, 8), 0.7, np.float32), specular_map=spec).astype(int)
    shiny, base = img.astype(int), render(specular=0.0).astype(int)
    assert shiny[C, C, 0] > matte[C, C, 0] + 10
    assert ((matte - base)[..., 0] > 3).sum() > ((shiny - base)[..., 0] > 3).sum()
    # under SH the key light is the environment's dominant direction, its level the luminance of
    # s(L) - s(-L) in the colour of s(L): a bluish band 1 over white light gives a near-white sheen
    sh = np.asarray(sh_constant(jnp.full(3, 0.6)) + sh_directional(up, jnp.array([0.1, 0.3, 0.6])), np.float64)
    lit = render_scene([ScenePart(ball, color=grey, roughness_map=rough, specular_map=spec)], cam, sh=sh,
                       supersample=1)
    hi, lo = _sh_shading_np(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]), sh)
    luma = np.array([0.2126, 0.7152, 0.0722])
    key = hi * ((hi - lo) @ luma) / (hi @ luma)
    assert np.ptp(key) < 0.5 * np.ptp(hi - lo)
    want = 0.3 * _sh_shading_np(np.asarray(n, np.float64)[None], sh)[0] + np.pi * key * lobe
    np.testing.assert_allclose(_srgb_to_linear(lit[C, C, :3]), want, atol=0.008)
    for bad, match in (({"roughness_map": np.full((4, 4), 1.5)}, "roughness_map"),
                       ({"roughness_map": np.zeros(4)}, "roughness_map"),
                       ({"specular_map": spec}, "specular_map")):
        with pytest.raises(ValueError, match=match):
            render_scene([ScenePart(ball, **bad)], cam)


def test_character_previews_pass_the_glb_materials_maps():
    """The character's preview parts carry its GLB material's roughness (map x factor, uint8 read as
    [0, 1]) and specular maps; a part without maps keeps Blinn-Phong."""
    from machlib.character import CharacterPart
    from machlib.character._make import _scene_parts

    ball = uv_sphere(8, 6, radius=0.1)
    rough = np.full((4, 4), 204, np.uint8)
    spec = np.full((4, 4), 0.7, np.float32)
    head, eye = _scene_parts([CharacterPart("head", ball, roughness_map=rough, specular_map=spec, roughness=0.5),
                              CharacterPart("sclera_L", ball)])
    np.testing.assert_allclose(head.roughness_map, 0.4, atol=1e-6)
    np.testing.assert_array_equal(head.specular_map, spec)
    assert eye.roughness_map is None and eye.specular_map is None and eye.specular > 0


def test_strands_in_front_show_and_behind_hide(cam, big):
    parts = [ScenePart(big, color=WHITE)]
    bald = render_scene(parts, cam).astype(int)
    front = render_scene(parts, cam, strands=strand(0.15)).astype(int)
    behind = render_scene(parts, cam, strands=strand(-0.15)).astype(int)
    col = front[C - 5 : C + 5, C - 1 : C + 1]
    assert (col[..., 0] - col[..., 1]).max(1).min() > 40  # a red line down the middle of the white sphere
    np.testing.assert_array_equal(behind, bald)
    # strand_color overrides the strands' own colour; strands alone on an empty scene
    green = render_scene([], cam, strands=strand(0.15), strand_color=GREEN)
    assert green[C, C, 3] > 0 and green[C, C, 1] > green[C, C, 0] and green[0, 0, 3] == 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vertex_normals_sum_faces_in_np_add_at_order(dtype):
    """_vertex_normals_np (bincount for float64) gives np.add.at's floats exactly."""
    from machlib._strand_raster import _unit, _vertex_normals_np

    m = uv_sphere(24, 16, radius=0.1)
    verts = (np.asarray(m.vertices, np.float64) + np.random.default_rng(1).normal(0, 0.01, (len(m.vertices), 3)))
    verts = verts.astype(dtype)
    faces = np.asarray(m.faces, np.int64)
    fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    ref = np.zeros_like(verts)
    for k in range(3):
        np.add.at(ref, faces[:, k], fn)
    got = _vertex_normals_np(verts, faces)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, _unit(ref))


def test_sh_numpy_matches_jax():
    n = np.random.default_rng(0).normal(size=(64, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    for coeffs in three_sh_lights().values():
        ref = np.asarray(sh_shading(jnp.asarray(n, jnp.float32), jnp.asarray(coeffs, jnp.float32)))
        np.testing.assert_allclose(_sh_shading_np(n, coeffs), ref, atol=1e-5)


def test_several_sh_lights_equal_their_own_renders(cam, big, small):
    """sh of shape (L, 9, 3): one rasterization and strand pass, each image that light's alone
    (with a shared or a per-light key direction)."""
    parts = [ScenePart(big, color=RED), ScenePart(small, color=GREEN, alpha=0.5)]
    hair = strand(0.15)
    envs = list(three_sh_lights().values())
    many = render_scene(parts, cam, strands=hair, sh=np.stack(envs), supersample=1)
    assert many.shape == (3, SIZE, SIZE, 4)
    for img, sh in zip(many, envs):
        np.testing.assert_array_equal(img, render_scene(parts, cam, strands=hair, sh=sh, supersample=1))
    dirs = np.array([[0.3, 0.4, 1.0], [-0.5, 0.2, 0.8], [0.0, 1.0, 0.2]])
    paired = render_scene(parts, cam, strands=hair, sh=np.stack(envs), light_dir=dirs)
    for img, sh, d in zip(paired, envs, dirs):
        np.testing.assert_array_equal(img, render_scene(parts, cam, strands=hair, sh=sh, light_dir=d))
    with pytest.raises(ValueError, match="different numbers of lights"):
        render_scene(parts, cam, sh=np.stack(envs), light_dir=dirs[:2])
    with pytest.raises(ValueError, match="sh"):
        render_scene(parts, cam, sh=np.zeros((2, 4, 3)))


def test_sh_lighting_constant_is_flat_and_directional_lights_one_side(cam, big):
    parts = [ScenePart(big, color=WHITE)]
    flat = render_scene(parts, cam, sh=np.asarray(sh_constant(jnp.full(3, 0.9))), supersample=1)
    inside = flat[..., 3] == 255
    assert inside.sum() > 200
    assert np.ptp(flat[inside][:, :3].astype(int), axis=0).max() <= 1
    lit = render_scene(parts, cam, sh=np.asarray(sh_directional(jnp.array([1.0, 0.0, 0.3]), jnp.full(3, 0.8))))
    lum = lit[..., :3].astype(int).sum(-1)
    assert lum[C, C + 8] > lum[C, C - 8] + 60  # +x is the image's right from the front


def test_texture_is_sampled(cam, big):
    tex = np.zeros((8, 16, 3), np.uint8)
    tex[:, :8] = (255, 0, 0)  # u < 0.5: the subject's right half (image left)
    tex[:, 8:] = (0, 0, 255)
    img = render_scene([ScenePart(big, texture=tex, color=GREEN)], cam).astype(int)
    left, right = img[C, C - 8], img[C, C + 8]
    assert left[0] > left[2] + 60 and right[2] > right[0] + 60 and max(left[1], right[1]) < 40


def test_alpha_is_coverage_and_background_is_composited(cam, big):
    img = render_scene([ScenePart(big, color=RED), ScenePart(Mesh(np.zeros((0, 3)), np.zeros((0, 3), int),
                                                                np.zeros((0, 2)), np.zeros((0, 3), int)))], cam)
    assert img.shape == (SIZE, SIZE, 4) and img.dtype == np.uint8
    assert img[0, 0, 3] == 0 and img[C, C, 3] == 255
    edge = img[..., 3][(img[..., 3] > 0) & (img[..., 3] < 255)]
    assert edge.size > 10  # anti-aliased silhouette
    rgb = render_scene([ScenePart(big, color=RED)], cam, background=(10, 200, 30))
    assert rgb.shape == (SIZE, SIZE, 3) and rgb[0, 0].tolist() == [10, 200, 30]
    np.testing.assert_array_equal(rgb[C, C], img[C, C, :3])
    empty = render_scene([], cam)
    assert empty.shape == (SIZE, SIZE, 4) and not empty.any()


def test_deterministic_and_one_sided_matches_for_closed_mesh(cam, big, small):
    parts = [ScenePart(big, color=RED), ScenePart(small, color=GREEN, alpha=0.5)]
    hair = strand(0.15)
    a = render_scene(parts, cam, strands=hair, sh=three_sh_lights()["sunset"])
    b = render_scene(parts, cam, strands=hair, sh=three_sh_lights()["sunset"])
    np.testing.assert_array_equal(a, b)
    one = render_scene([p._replace(two_sided=False) for p in parts], cam, strands=hair, sh=three_sh_lights()["sunset"])
    np.testing.assert_array_equal(a, one)


@pytest.mark.parametrize(
    "kwargs, parts, match",
    [
        ({}, "alpha", "alpha"),
        ({}, "texture", "texture"),
        ({}, "color", "color"),
        ({"sh": np.zeros((4, 3))}, None, "sh"),
        ({"light_dir": (0.0, 0.0, 0.0)}, None, "light_dir"),
        ({"supersample": 0}, None, "supersample"),
        ({"exposure": 0.0}, None, "exposure"),
        ({"exposure": float("nan")}, None, "exposure"),
        ({"exposure": True}, None, "exposure"),
        ({"background": np.zeros((5, 5, 3), np.uint8)}, None, "background"),
        ({"strands": strand(0.1), "strand_color": np.zeros((2, 3))}, None, "strand_color"),
        ({}, "not a part", "ScenePart"),
    ],
)
def test_bad_input_raises(cam, big, kwargs, parts, match):
    part = {
        "alpha": ScenePart(big, alpha=1.5),
        "texture": ScenePart(big, texture=np.zeros((4, 4), np.uint8)),
        "color": ScenePart(big, color=(0.5, 0.5)),
        "not a part": "head",
    }.get(parts, ScenePart(big))
    with pytest.raises((ValueError, TypeError), match=match):
        render_scene([part], cam, **kwargs)


def test_exposure_scales_linear_light_and_rolls_off_highlights(cam, big):
    """``exposure`` multiplies the linear light (the background stays), and luminance above the
    knee is compressed by ``k + (1 - k)(1 - exp(-(Y - k)/(1 - k)))`` with the hue kept; 1 is the
    plain render."""
    from machlib._scene import HIGHLIGHT_KNEE as k
    from machlib._scene import _LUMA

    def lin(u8):
        return _srgb_to_linear(u8[..., :3])

    dark = [ScenePart(big, color=(0.1, 0.05, 0.02))]
    kw = dict(sh=np.asarray(sh_constant(jnp.full(3, 1.0))), supersample=1)
    one = render_scene(dark, cam, **kw)
    np.testing.assert_array_equal(one, render_scene(dark, cam, exposure=1.0, **kw))
    two = render_scene(dark, cam, exposure=2.0, background=(0.5, 0.5, 0.5), **kw)
    inside = one[..., 3] == 255
    np.testing.assert_allclose(lin(two)[inside], 2 * lin(one)[inside], rtol=0.03, atol=2e-3)
    assert two[0, 0].tolist() == render_scene(dark, cam, background=(0.5, 0.5, 0.5), **kw)[0, 0].tolist()
    bright = [ScenePart(big, color=(0.72, 0.7, 0.66))]  # flat light: the straight colour is the albedo
    plain = lin(render_scene(bright, cam, **kw))[C, C]
    hot = lin(render_scene(bright, cam, exposure=1.5, **kw))[C, C]
    y = 1.5 * float(plain @ _LUMA)
    assert y > 1.0 and hot.max() < 0.99  # all channels would clip without the roll-off; none does with it
    want = k + (1 - k) * (1 - np.exp(-(y - k) / (1 - k)))
    np.testing.assert_allclose(hot @ _LUMA, want, rtol=0.02)
    np.testing.assert_allclose(hot / hot.sum(), plain / plain.sum(), atol=0.01)  # the hue is kept


def test_preview_exposure_puts_the_front_faces_mean_light_at_one():
    """PREVIEW_EXPOSURE is 1 / the mean light of the previews' front view over the default
    template's face region (weighted by projected area), the delighting's convention."""
    from machlib._scene import _AMBIENT
    from machlib.character import PREVIEW_EXPOSURE
    from machlib.geometry import default_template

    t = default_template()
    V, F = np.asarray(t.mesh.vertices, np.float64), np.asarray(t.mesh.faces)
    n = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    area = np.linalg.norm(n, axis=1)
    n = n / np.maximum(area, 1e-30)[:, None]
    c = np.asarray(t.mesh.uv)[np.asarray(t.mesh.faces_uv)].mean(1)
    face = t.regions["face"]
    r = face.shape[0]
    inside = face[np.clip((c[:, 1] * r).astype(int), 0, r - 1), np.clip((c[:, 0] * r).astype(int), 0, r - 1)] > 0.5
    light = np.array([0.35, 0.45, 1.0]) / np.linalg.norm([0.35, 0.45, 1.0])  # preview_images' front light
    w = area * np.clip(n[:, 2], 0, None) * inside
    mean = float((w * (_AMBIENT + (1 - _AMBIENT) * np.clip(n @ light, 0, None))).sum() / w.sum())
    assert PREVIEW_EXPOSURE == pytest.approx(1.0 / mean, rel=0.03)


def test_turntable_cameras_orbit_evenly():
    cams = turntable_cameras(4, distance=0.5, target=(0.0, 0.1, 0.0), image_size=(32, 24), fov_degrees=30.0)
    from machlib import rotation_matrix

    centres = []
    for c in cams:
        R = np.asarray(rotation_matrix(c.rotation))
        centres.append(-R.T @ np.asarray(c.translation))
        assert c.image_size == (32, 24)
    centres = np.array(centres)
    np.testing.assert_allclose(np.linalg.norm(centres - [0.0, 0.1, 0.0], axis=1), 0.5, atol=1e-5)
    np.testing.assert_allclose(centres[0], [0.0, 0.1, 0.5], atol=1e-5)  # the face first
    np.testing.assert_allclose(centres[1], [0.5, 0.1, 0.0], atol=1e-5)  # then the subject's left
    with pytest.raises((ValueError, TypeError), match="n must"):
        turntable_cameras(0, distance=0.5, target=(0, 0, 0), image_size=(8, 8), fov_degrees=30.0)


def test_three_sh_lights_are_normalised():
    lights = three_sh_lights()
    assert sorted(lights) == ["overcast", "studio", "sunset"]
    n = np.random.default_rng(1).normal(size=(4000, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    for name, c in lights.items():
        assert c.shape == (9, 3) and np.isfinite(c).all()
        assert 0.8 <= _sh_shading_np(n, c).max() <= 1.05, name
    s = _sh_shading_np(np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), lights["sunset"])
    assert s[1, 0] > s[0, 0] + 0.3 and s[1, 0] > s[1, 2]  # warm key on the subject's left


def test_preview_sheet_tiles_and_labels():
    red = np.zeros((10, 12, 4), np.uint8)
    red[..., 0], red[..., 3] = 255, 255
    clear = np.zeros((10, 12, 4), np.uint8)
    sheet = preview_sheet([red, clear, red], columns=2, pad=2, background=(0, 0, 255))
    assert sheet.shape == (2 * 10 + 3 * 2, 2 * 12 + 3 * 2, 3) and sheet.dtype == np.uint8
    assert sheet[2, 2].tolist() == [255, 0, 0] and sheet[2, 16].tolist() == [0, 0, 255]
    labelled = preview_sheet([red, clear], columns=2, pad=2, labels=["A1", ""])
    strip = labelled[12:, :16]
    assert labelled.shape[0] > 14 and (strip.sum(-1) == 0).sum() > 5  # black ink under the first
    assert (labelled[12:, 16:] == 255).all()  # none under the second
    with pytest.raises((ValueError, TypeError), match="labels"):
        preview_sheet([red], columns=1, labels=["a", "b"])
    with pytest.raises((ValueError, TypeError), match="columns"):
        preview_sheet([red], columns=0)


def test_template_head_with_eyes_lens_and_hair():
    """The one look at the real template: eyes in front of the face, a lens, hair, SH light."""
    from machlib.geometry import default_template

    head = default_template().mesh
    eyes = [sphere((x, 0.0033, 0.074), 0.013) for x in (0.031, -0.031)]  # at the irises, 5 mm out
    rng = np.random.default_rng(0)
    th, ph = rng.uniform(-np.pi, np.pi, 300), rng.uniform(0.1, 0.9, 300)
    root = np.stack([np.sin(th) * np.sin(ph), np.cos(ph), np.cos(th) * np.sin(ph)], 1) * [0.1, 0.12, 0.125]
    root += [0.0, 0.02, 0.0]
    u = np.linspace(0.0, 1.0, 10)[None, :, None]
    hair = Strands((root[:, None] * (1.0 + 0.15 * u) + u * [0.0, -0.12, 0.02]).astype(np.float32))
    parts = [ScenePart(head, color=(0.55, 0.33, 0.23), two_sided=False)]
    parts += [ScenePart(e, color=(0.9, 0.9, 0.88), specular=0.6) for e in eyes]
    parts += [ScenePart(sphere((0.0, 0.0, 0.15), 0.012), color=(0.2, 0.4, 0.9), alpha=0.3, specular=0.5)]
    cams = turntable_cameras(2, distance=0.85, target=(0.0, -0.02, 0.0), image_size=(96, 96), fov_degrees=25.0)
    imgs = [render_scene(parts, c, strands=hair, sh=three_sh_lights()["studio"]) for c in cams]
    sheet = preview_sheet(imgs, columns=2, labels=["front", "back"])
    os.makedirs("/tmp/scene", exist_ok=True)
    save_png("/tmp/scene/test_template.png", sheet)
    front, back = imgs
    assert front.shape == (96, 96, 4) and (front[..., 3] == 255).mean() > 0.2
    # the eye spheres (bright grey-white) show in front of the face; not from behind
    cam0 = cams[0]
    from machlib import project

    eye_px = np.asarray(project(np.array([[0.031, 0.0033, 0.087]]), cam0))[0].astype(int)
    eye = front[eye_px[1], eye_px[0], :3].astype(int)
    assert eye.min() > 150 and abs(eye[0] - eye[2]) < 60
    assert not np.array_equal(front, back)
    bald = render_scene(parts, cams[1], sh=three_sh_lights()["studio"])
    changed = np.abs(back.astype(int) - bald.astype(int)).max(-1) > 30
    assert changed.sum() > 40  # hair over the back of the head ...
    assert (changed & (bald[..., 3] == 0)).sum() < changed.sum()  # ... not only around it
