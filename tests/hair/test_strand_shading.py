"""Strand shading in the scene renderer: the two highlights move with the light and sit apart,
roots and tips differ in colour, the jitter is a fixed pattern of the seed, hair shadows itself
and the surface under it, and the strand width widens coverage."""

from __future__ import annotations

import numpy as np
import pytest

from machlib import Mesh
from machlib._preview import orbit_camera
from machlib._scene import ScenePart, StrandShading, render_scene
from machlib.hair import Strands

SIZE = 96
FLAT = {"jitter": 0.0, "tip_bleach": 0.0, "root_shadow": 0.0, "self_shadow": 0.0, "tip_fade": 0.0}


@pytest.fixture(scope="module")
def cam():
    return orbit_camera(0.0, distance=0.6, target=(0.0, 0.0, 0.0), image_size=(SIZE, SIZE), fov_degrees=30.0)


def arc(n: int = 200, count: int = 9) -> Strands:
    """Strands bent over a half circle in the y-z plane (root on top, tip at the bottom, bulging
    towards the camera), side by side in x: every longitudinal angle is on view."""
    a = np.linspace(0.0, np.pi, n)
    xs = np.linspace(-0.02, 0.02, count)
    pts = np.stack([np.broadcast_to(xs[:, None], (count, n)), np.broadcast_to(0.1 * np.cos(a), (count, n)),
                    np.broadcast_to(0.05 * np.sin(a), (count, n))], -1)
    return Strands(pts.astype(np.float32), np.full((count, 3), 0.3, np.float32))


def lum(img):
    return img[..., :3].astype(np.float64).mean(-1)


def lobe_row(cam, light, **style):
    """Image row of the peak of a highlight lobe: the render minus the same without it."""
    s = arc()
    base = render_scene([], cam, strands=s, light_dir=light, supersample=1,
                        strand_shading=StrandShading(**FLAT, specular=0.0, secondary=0.0))
    img = render_scene([], cam, strands=s, light_dir=light, supersample=1,
                       strand_shading=StrandShading(**FLAT, **style))
    diff = (lum(img) - lum(base))[:, SIZE // 2 - 3: SIZE // 2 + 4].sum(1)
    assert diff.max() > 20  # the lobe is there
    return int(np.argmax(diff))


def test_highlights_move_with_the_light_and_sit_apart(cam):
    up, down = (0.0, 0.6, 1.0), (0.0, -0.6, 1.0)
    p_up = lobe_row(cam, up, specular=0.5, secondary=0.0)
    p_down = lobe_row(cam, down, specular=0.5, secondary=0.0)
    assert p_up < p_down - 5  # a light from above lights the upper part of the arc
    s_up = lobe_row(cam, up, specular=0.0, secondary=0.8)
    # Marschner's signs: the primary lobe's directions tilt towards the root, the secondary's
    # towards the tip; on hair bending away from the eye that puts the white band nearer the
    # tips and the coloured one nearer the roots (as on a head lit from the front)
    assert p_up > s_up + 3


def test_root_and_tip_colours_differ_and_jitter_is_seeded(cam):
    y = np.linspace(0.08, -0.08, 64)
    pts = np.stack([np.zeros_like(y), y, np.zeros_like(y)], -1)[None].astype(np.float32)
    s = Strands(pts, np.array([[0.25, 0.12, 0.05]], np.float32))
    light = (0.0, 0.0, 1.0)
    style = dict(FLAT, specular=0.0, secondary=0.0)
    bleached = render_scene([], cam, strands=s, light_dir=light, supersample=1,
                            strand_shading=StrandShading(**{**style, "tip_bleach": 0.5}))
    plain = render_scene([], cam, strands=s, light_dir=light, supersample=1, strand_shading=StrandShading(**style))
    col = bleached[:, SIZE // 2]
    drawn = np.flatnonzero(col[:, 3] == 255)
    root, tip = col[drawn[:4], :3].astype(int).mean(0), col[drawn[-4:], :3].astype(int).mean(0)
    assert tip.sum() > root.sum() + 30  # the tip is lighter ...
    flat = plain[:, SIZE // 2][drawn, :3].astype(int)
    assert np.ptp(flat.sum(1)) <= 3  # ... which without bleaching it is not
    # per-strand jitter: a fixed pattern of the seed
    many = Strands(np.concatenate([pts + [[[dx, 0, 0]]] for dx in np.linspace(-0.05, 0.05, 12)]).astype(np.float32),
                   np.full((12, 3), 0.2, np.float32))
    kw = {"light_dir": light, "supersample": 1}
    a = render_scene([], cam, strands=many, strand_shading=StrandShading(**{**style, "jitter": 0.4}), **kw)
    b = render_scene([], cam, strands=many, strand_shading=StrandShading(**{**style, "jitter": 0.4}), **kw)
    c = render_scene([], cam, strands=many, strand_shading=StrandShading(**{**style, "jitter": 0.4, "seed": 7}), **kw)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    row = a[SIZE // 2, :, :3].astype(int).sum(1)
    assert np.ptp(row[a[SIZE // 2, :, 3] == 255]) > 20  # strands differ from one another


def test_hair_shadows_itself_and_the_surface_under_it(cam):
    # a wall of strands (x-y sheet of vertical strands, 5 layers deep) 2 cm in front of a plane,
    # lit from the camera's side: the plane behind the sheet and the back layers are darker
    layers = []
    for z in np.linspace(0.02, 0.04, 5):
        for x in np.linspace(-0.03, 0.03, 40):
            y = np.linspace(0.04, -0.04, 16)
            layers.append(np.stack([np.full_like(y, x), y, np.full_like(y, z)], -1))
    s = Strands(np.asarray(layers, np.float32), np.full((len(layers), 3), 0.3, np.float32))
    plane = Mesh(np.array([[-0.1, -0.1, 0.0], [0.1, -0.1, 0.0], [0.1, 0.1, 0.0], [-0.1, 0.1, 0.0]]),
                 np.array([[0, 1, 2], [0, 2, 3]]), np.zeros((4, 2)), np.array([[0, 1, 2], [0, 2, 3]]))
    light = (0.3, 0.0, 1.0)  # slightly from the side: the plane's shadow is offset from the sheet
    kw = {"light_dir": light, "supersample": 1}
    part = [ScenePart(plane, color=(0.6, 0.6, 0.6), specular=0.0)]
    on = render_scene(part, cam, strands=s, strand_shading=StrandShading(**{**FLAT, "self_shadow": 2.0}), **kw)
    off = render_scene(part, cam, strands=s, strand_shading=StrandShading(**FLAT), **kw)
    bare = render_scene(part, cam, **kw)
    # the plane: shadowed where the sheet's shadow falls (a region right of the strands is not covered by them)
    shadowed = (lum(on) < lum(bare) - 10) & (lum(off) >= lum(bare) - 1)
    assert shadowed.sum() > 20
    # the sheet lit from the side: the strands away from the light lie in the others' shadow
    side = {"light_dir": (1.0, 0.0, 0.15), "supersample": 1}
    on = render_scene([], cam, strands=s, strand_shading=StrandShading(**{**FLAT, "self_shadow": 2.0}), **side)
    off = render_scene([], cam, strands=s, strand_shading=StrandShading(**FLAT), **side)
    hair = on[..., 3] == 255
    lit_side, far_side = hair[:, SIZE // 2 + 8:], hair[:, : SIZE // 2 - 8]
    drop = lum(off) - lum(on)
    assert drop[:, : SIZE // 2 - 8][far_side].mean() > drop[:, SIZE // 2 + 8:][lit_side].mean() + 4


def test_width_widens_coverage(cam):
    y = np.linspace(0.08, -0.08, 32)
    s = Strands(np.stack([np.zeros_like(y), y, np.zeros_like(y)], -1)[None].astype(np.float32))
    cover = [int((render_scene([], cam, strands=s, supersample=2,
                               strand_shading=StrandShading(width=w))[..., 3] > 0).sum()) for w in (0.5, 1.0, 2.0)]
    assert cover[0] < cover[1] < cover[2]
    with pytest.raises(ValueError, match="render_scene: width"):
        render_scene([], cam, strands=s, strand_shading=StrandShading(width=0.0))
    with pytest.raises(ValueError, match="render_scene: seed"):
        render_scene([], cam, strands=s, strand_shading=StrandShading(seed=0.5))


@pytest.mark.slow
def test_a_bob_covers_the_scalp_in_a_frontal_render():
    """The scalp a bald head shows from the front is (almost) all hair once a bob is grown, drawn
    with the default strand shading and the assembled character's scalp tint."""
    import jax

    from machlib.geometry import default_template, template_albedo
    from machlib.hair import HAIR_STYLES, grow_style, head_sdf_grid, scalp_tint

    t = default_template()
    sdf = head_sdf_grid(t.mesh)
    bob = grow_style(jax.random.key(0), HAIR_STYLES["bob"], t, n_strands=3000, n_points=24, sdf=sdf, guides=300)
    # from the front and a little above, so the crown and the parting are on view
    cam = orbit_camera(0.0, pitch_degrees=30.0, distance=0.75, target=(0.0, 0.0, 0.0), image_size=(192, 192),
                       fov_degrees=25.0)
    light = (0.35, 0.45, 1.0)
    # where the bald head shows its scalp: the scalp mask as a texture, flat-lit
    mask = np.repeat(np.asarray(t.regions["scalp"], np.float64)[..., None], 3, 2)
    scalp = render_scene([ScenePart(t.mesh, texture=mask, specular=0.0)], cam, light_dir=light, ambient=1.0)
    scalp = (scalp[..., 3] == 255) & (scalp[..., 0] > 200)
    assert scalp.sum() > 1000
    albedo = template_albedo(256)
    bald = render_scene([ScenePart(t.mesh, texture=albedo)], cam, light_dir=light).astype(int)

    def skin_shows(img):  # the pixel looks like the bare skin it covers
        return np.abs(img.astype(int)[..., :3] - bald[..., :3]).sum(-1) < 40

    tinted = scalp_tint(albedo, t.mesh, np.asarray(bob.points), bob.color[0])
    hair = render_scene([ScenePart(t.mesh, texture=tinted)], cam, strands=bob, light_dir=light)
    assert skin_shows(hair)[scalp].mean() < 0.01
    # strands alone, one supersampled pixel wide, unshadowed and untinted (the previews before)
    thin = render_scene([ScenePart(t.mesh, texture=albedo)], cam, strands=bob, light_dir=light,
                        strand_shading=StrandShading(width=0.5, self_shadow=0.0))
    assert skin_shows(thin)[scalp].mean() > 0.02


def test_scalp_tint_density_fades_at_the_hairline():
    """With ``density_radius`` the tint keeps its strength among the roots and fades just beyond
    the lowest ones, where no strand covers the skin (a band of the hair's colour at the temples
    before), instead of ending ``outer`` beyond them at full strength."""
    import jax

    from machlib.geometry import default_template
    from machlib.hair import HAIR_STYLES, grow_style, head_sdf_grid, scalp_tint

    t = default_template()
    crop = grow_style(jax.random.key(1), HAIR_STYLES["crop"], t, n_strands=1500, n_points=8,
                      sdf=head_sdf_grid(t.mesh), guides=150)
    albedo = np.full((64, 64, 3), 0.8, np.float32)
    dark = (0.02, 0.015, 0.012)
    old = 0.8 - scalp_tint(albedo, t.mesh, np.asarray(crop.points), dark, resolution=64)[..., 0]
    new = 0.8 - scalp_tint(albedo, t.mesh, np.asarray(crop.points), dark, resolution=64, density_radius=0.008)[..., 0]
    full = old.max()
    assert np.all(new <= old + 1e-6)  # only ever less tint
    among = old > 0.99 * full  # texels among the roots: still (nearly all) fully tinted
    assert np.median(new[among] / old[among]) > 0.95
    fringe = (old > 0.05 * full) & (old < 0.6 * full)  # just beyond the lowest roots
    assert fringe.sum() > 20 and new[fringe].mean() < 0.6 * old[fringe].mean(), (new[fringe].mean(), old[fringe].mean())
    with pytest.raises(ValueError, match="scalp_tint"):
        scalp_tint(albedo, t.mesh, np.asarray(crop.points), dark, density_radius=-0.01)


def test_scalp_tint_fills_a_gap_in_the_roots_that_hair_lies_over():
    """With ``scalp``, a patch of the scalp without roots but enclosed by them, under the hair
    (the back of a crop, where the clean-up left a gap), takes the full tint instead of showing
    as a bare spot; beyond the hairline, where the roots lie to one side, nothing changes."""
    import jax

    from machlib.geometry import default_template
    from machlib.geometry._template import _mesh_position_map
    from machlib.hair import HAIR_STYLES, grow_style, head_sdf_grid, scalp_tint

    t = default_template()
    crop = grow_style(jax.random.key(1), HAIR_STYLES["crop"], t, n_strands=1500, n_points=8,
                      sdf=head_sdf_grid(t.mesh), guides=150)
    pts = np.asarray(crop.points)
    R = 64
    pos = np.asarray(_mesh_position_map(t.mesh, R), np.float64)
    # a hole 24 mm across at the back of the head, beside the UV seam: the strands rooted there removed
    idx = np.arange(R) * t.regions["scalp"].shape[0] // R
    on_scalp = np.asarray(t.regions["scalp"])[np.ix_(idx, idx)] > 0.99
    cand = np.where(on_scalp & (pos[..., 0] > 0.02) & (pos[..., 1] > np.median(pts[:, 0, 1])), pos[..., 2], np.inf)
    back = pos[np.unravel_index(np.argmin(cand), cand.shape)]
    holed = pts[np.linalg.norm(pts[:, 0] - back, axis=1) > 0.012]
    assert 5 < len(pts) - len(holed) < 60
    albedo = np.full((R, R, 3), 0.8, np.float32)
    dark = (0.02, 0.015, 0.012)
    scalp = np.asarray(t.regions["scalp"], np.float32)
    old = 0.8 - scalp_tint(albedo, t.mesh, holed, dark, resolution=R, density_radius=0.008)[..., 0]
    new = 0.8 - scalp_tint(albedo, t.mesh, holed, dark, resolution=R, density_radius=0.008, scalp=scalp)[..., 0]
    full = 0.8 - scalp_tint(albedo, t.mesh, pts, dark, resolution=R, density_radius=0.008)[..., 0]
    gap = np.linalg.norm(pos - back, axis=-1) < 0.005  # the hole's middle: 7-12 mm from the nearest root
    assert gap.sum() >= 2
    assert old[gap].mean() < 0.6 * full[gap].mean()  # before: a bare spot
    assert new[gap].mean() > 0.9 * full[gap].mean(), (new[gap].mean(), full[gap].mean())
    assert np.all(new >= old - 1e-6)  # only ever more tint
    # beyond the hairline (the roots to one side: the face's skin below the lowest roots) unchanged
    face = np.asarray(t.regions.get("face", np.zeros((R, R))), np.float32)
    idx = np.arange(R) * face.shape[0] // R
    on_face = face[np.ix_(idx, idx)] > 0.5
    assert on_face.sum() > 50 and np.abs(new - old)[on_face].max() < 1e-6
    with pytest.raises(ValueError, match="scalp_tint"):
        scalp_tint(albedo, t.mesh, holed, dark, scalp=np.full((8, 8), 2.0))
    with pytest.raises(ValueError, match="scalp_tint"):
        scalp_tint(albedo, t.mesh, holed, dark, scalp=scalp, lying=0.0)


def test_deep_shadow_cache_from_two_threads():
    # make's previews render on two threads: the bounded shadow cache evicts and inserts from both
    # (more lights than it holds); every call gets the shadow of its own light
    from concurrent.futures import ThreadPoolExecutor

    from machlib import _strand_raster as SR

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(50, 4, 3)) * 0.05
    lights = [np.array([np.cos(a), 0.2, np.sin(a)]) / np.hypot(1.0, 0.2) for a in np.linspace(0, 3, 24)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        got = list(pool.map(lambda L: SR._deep_shadow(pts, L, 2.0), lights * 3))
    assert len(SR._SHADOW_CACHE) <= 8
    for L, shadow in zip(lights * 3, got):
        np.testing.assert_allclose(shadow.frame[2], L)


def test_tip_fade_thins_only_the_ends_and_is_off_by_default(cam):
    """``tip_fade`` drops a fixed share of the strand pixels near the tips (the arc's lower end),
    none near the roots; the default draws every strand pixel."""
    assert StrandShading().tip_fade == 0.0
    s = arc()

    def drawn(**style):
        img = render_scene([], cam, strands=s, light_dir=(0.0, 0.3, 1.0), supersample=2,
                           strand_shading=StrandShading(**{**FLAT, **style}))
        return img[..., 3].astype(np.float64)

    solid, faded = drawn(), drawn(tip_fade=0.5)
    np.testing.assert_array_equal(faded, drawn(tip_fade=0.5))  # a fixed dither
    rows = np.flatnonzero(solid.sum(1) > 0)
    top, bottom = rows[: len(rows) // 3], rows[-len(rows) // 4:]  # roots on top, tips at the bottom
    np.testing.assert_array_equal(faded[top], solid[top])
    assert faded[bottom].sum() < 0.85 * solid[bottom].sum()
