"""machlib.texture PBR maps: texel frames, tangents, geometric detail normal maps, region maps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import quad_patch, uv_sphere, x64
from jax.test_util import check_grads

from machlib import Mesh
from machlib._errors import InputError
from machlib.export import vertex_tangents
from machlib.geometry import default_template, encode, uv_raster
from machlib.texture import (
    NOSE_LANDMARKS,
    PBR_REGION_VALUES,
    detail_normal_map,
    mesh_tangents,
    region_pbr_maps,
    super_resolve_albedo,
    surface_height,
    texel_frame,
)

SIZE = 0.1  # metres: a 10 cm patch
R = 64


def _bump(x, y, amp=0.001, s=0.01):
    """A Gaussian bump of ``amp`` metres centred on the patch, and its slopes."""
    g = amp * np.exp(-((x - 0.05) ** 2 + (y - 0.05) ** 2) / (2 * s * s))
    return g, -g * (x - 0.05) / (s * s), -g * (y - 0.05) / (s * s)


@pytest.fixture(scope="module")
def patch():
    mesh = quad_patch(8, size=SIZE)
    frame = texel_frame(mesh, R)
    c = (np.arange(R) + 0.5) / R * SIZE
    X, Y = np.meshgrid(c, c)  # texel (i, j) lies at x = u·SIZE, y = v·SIZE
    h, hx, hy = _bump(X, Y)
    flat = np.asarray(encode(np.asarray(mesh.vertices, np.float32), uv_raster(mesh, R)))
    pm = flat + h[..., None] * np.array([0.0, 0.0, 1.0], np.float32)
    return mesh, frame, pm.astype(np.float32), h, hx, hy


def test_tangents_match_the_glb_writer():
    mesh = uv_sphere()
    frame = texel_frame(mesh, 32)
    n, t = (np.asarray(a) for a in mesh_tangents(np.asarray(mesh.vertices, np.float32), frame))
    pos, uv, faces, src = mesh.split()
    fn = np.cross(mesh.vertices[mesh.faces[:, 1]] - mesh.vertices[mesh.faces[:, 0]],
                  mesh.vertices[mesh.faces[:, 2]] - mesh.vertices[mesh.faces[:, 0]])
    vn = np.zeros_like(mesh.vertices)
    for k in range(3):
        np.add.at(vn, mesh.faces[:, k], fn)
    vn = (vn / np.linalg.norm(vn, axis=1, keepdims=True))[src]
    np.testing.assert_allclose(n, vn, atol=1e-5)
    ref = vertex_tangents(pos, vn, uv, faces)
    ok = np.abs(np.sum(ref[:, :3] * t[:, :3], 1)) > 0.999  # poles: any tangent is fine
    assert ok.mean() > 0.9
    np.testing.assert_allclose(t[ok], ref[ok], atol=1e-4)


def test_height_and_normals_of_a_known_bump(patch):
    mesh, frame, pm, h, hx, hy = patch
    got = np.asarray(surface_height(pm, np.asarray(mesh.vertices, np.float32), frame))
    np.testing.assert_allclose(got, h, atol=2e-6)
    nm = np.asarray(detail_normal_map(got, np.asarray(mesh.vertices, np.float32), frame, fade=2.0))
    # plane: T = +x, N = +z, "up" in the image is −v = −y, so the map holds (−h_x, +h_y, 1)
    want = np.stack([-hx, hy, np.ones_like(hx)], -1)
    want = 0.5 * want / np.linalg.norm(want, axis=-1, keepdims=True) + 0.5
    inner = np.s_[6:-6, 6:-6]
    np.testing.assert_allclose(nm[inner], want[inner], atol=0.01)
    tilt = np.degrees(np.arccos(2 * nm[..., 2] - 1))
    assert tilt[inner].max() > 3.0  # the 1 mm bump on a 1 cm radius tilts normals by ~3.5°
    # strength scales the slope; no height gives the flat encoding
    stronger = np.asarray(detail_normal_map(got, mesh.vertices, frame, strength=2.0, fade=2.0))
    assert np.degrees(np.arccos(2 * stronger[..., 2] - 1))[inner].max() > 1.8 * tilt[inner].max()
    flat = np.asarray(detail_normal_map(np.zeros((R, R)), mesh.vertices, frame))
    np.testing.assert_allclose(flat, np.broadcast_to([0.5, 0.5, 1.0], flat.shape), atol=1e-6)


def test_chart_borders_fade_to_the_mesh_normal():
    """At chart borders (UV seams) the map encodes the mesh's own normal, so both sides agree."""
    mesh = uv_sphere(32, 16)
    frame = texel_frame(mesh, 128)
    p = np.asarray(encode(np.asarray(mesh.vertices, np.float32), uv_raster(mesh, 128)))
    h = 0.03 * np.sin(9 * p[..., 1]) * np.cos(7 * p[..., 0] + 1.0)  # a relief continuous on the sphere
    nm = np.asarray(detail_normal_map(h, mesh.vertices, frame, fade=6.0))
    border = np.asarray(frame.border)
    dev = np.linalg.norm(nm - [0.5, 0.5, 1.0], axis=-1)
    # the seam at u = 0 ≡ 1: the texels on both sides of it (half a texel from it) are nearly the
    # mesh's normal, and exactly it in the limit, while the relief is there away from borders
    rows = np.arange(20, 108)
    inner = dev[border > 8].max()
    assert inner > 0.1
    assert dev[rows, 0].max() < 0.25 * inner and dev[rows, -1].max() < 0.25 * inner
    assert nm.min() >= 0.0 and nm.max() <= 1.0


@pytest.mark.slow
def test_jit_vmap_and_eager_agree(patch):
    mesh, frame, pm, h, _, _ = patch
    v = np.asarray(mesh.vertices, np.float32)
    hs = jnp.stack([h, 0.5 * h, -h]).astype(jnp.float32)
    batched = jax.vmap(lambda x: detail_normal_map(x, v, frame))(hs)
    for k in range(3):
        np.testing.assert_allclose(batched[k], detail_normal_map(hs[k], v, frame), atol=1e-6)
    small = quad_patch(2, size=SIZE)  # eager on a small chart (one dispatch per operation)
    fs, vs = texel_frame(small, 8), np.asarray(small.vertices, np.float32)
    hsm = jnp.asarray(np.random.default_rng(2).normal(size=(8, 8)) * 1e-3, jnp.float32)
    pms = encode(vs, uv_raster(small, 8)) + hsm[..., None] * jnp.array([0.0, 0.0, 1.0])
    with jax.disable_jit():
        eager = detail_normal_map(hsm, vs, fs)
        eager_h = surface_height(pms, vs, fs)
    np.testing.assert_allclose(eager, detail_normal_map(hsm, vs, fs), atol=1e-5)
    np.testing.assert_allclose(eager_h, surface_height(pms, vs, fs), atol=1e-7)
    pms = jnp.stack([pm, pm + 0.001])
    hb = jax.vmap(lambda p: surface_height(p, v, frame))(pms)
    np.testing.assert_allclose(hb[1] - hb[0], 0.001, atol=1e-6)


@pytest.mark.slow
def test_gradients_float64():
    mesh = quad_patch(2, size=1.0)
    frame = texel_frame(mesh, 8)
    rng = np.random.default_rng(1)
    with x64():
        v = jnp.asarray(mesh.vertices, jnp.float64) + jnp.asarray(rng.normal(size=(9, 3)) * 0.02)
        h = jnp.asarray(rng.normal(size=(8, 8)) * 0.05)
        pm = encode(v, uv_raster(mesh, 8)) + jnp.asarray(rng.normal(size=(8, 8, 3)) * 0.01)
        check_grads(lambda x: detail_normal_map(x, v, frame), (h,), order=1, modes=["rev"], eps=1e-6)
        check_grads(lambda x: detail_normal_map(h, x, frame), (v,), order=1, modes=["rev"], eps=1e-6)
        check_grads(lambda p, x: surface_height(p, x, frame), (pm, v), order=1, modes=["rev"], eps=1e-6)


def test_bad_input(patch):
    mesh, frame, pm, h, _, _ = patch
    with pytest.raises(InputError, match="texel_frame"):
        texel_frame(mesh, 4)
    with pytest.raises(InputError, match="surface_height: position_map"):
        surface_height(pm[:10, :10], mesh.vertices, frame)
    with pytest.raises(InputError, match="detail_normal_map: height"):
        detail_normal_map(h[:10, :10], mesh.vertices, frame)
    with pytest.raises(InputError, match="fade"):
        detail_normal_map(h, mesh.vertices, frame, fade=0.0)
    with pytest.raises((InputError, TypeError), match="frame"):  # typechecked in tests, InputError otherwise
        detail_normal_map(h, mesh.vertices, "frame")
    with pytest.raises(InputError, match="vertices"):
        surface_height(pm, np.zeros((3, 3)), frame)


def test_region_maps():
    t = default_template()
    rough, spec = region_pbr_maps(t.regions, t.landmark_uv, 256)
    assert rough.shape == spec.shape == (256, 256)
    assert 0 <= rough.min() and rough.max() <= 1 and 0 <= spec.min() and spec.max() <= 1

    def at(m, uv):
        return float(m[int(uv[1] * 256), int(uv[0] * 256)])

    lm = np.asarray(t.landmark_uv)
    cheek, nose_bridge, forehead, lip = lm[50], lm[6], lm[151], lm[17]
    skin_r, skin_s = PBR_REGION_VALUES["skin"]
    assert abs(at(rough, cheek) - skin_r) < 0.03 and abs(at(spec, cheek) - skin_s) < 0.03
    for tz in (nose_bridge, forehead):  # the oily T-zone: smoother and shinier
        assert at(rough, tz) < skin_r - 0.1 and at(spec, tz) > skin_s + 0.2
    assert at(rough, lip) < skin_r - 0.1
    assert max(NOSE_LANDMARKS) < 478
    # smooth borders: no jump between neighbouring texels larger than a fraction of the range
    for m in (rough, spec):
        assert max(np.abs(np.diff(m, axis=0)).max(), np.abs(np.diff(m, axis=1)).max()) < 0.2
    with pytest.raises(InputError, match="landmark_uv"):
        region_pbr_maps(t.regions, lm[:10], 64)
    with pytest.raises(InputError, match="values"):
        region_pbr_maps(t.regions, lm, 64, values={"lips": (2.0, 0.5)})


def test_mesh_with_bad_uvs():
    mesh = Mesh(np.zeros((3, 3)), np.array([[0, 1, 2]]), np.zeros((3, 2)), np.array([[0, 1, 2]]))
    with pytest.raises(InputError, match="cover no texel"):
        texel_frame(mesh, 16)


def test_super_resolved_albedo():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    R = 64
    base = np.full((R, R, 3), [0.8, 0.6, 0.5], np.float32)
    base[:, R // 2:] *= 0.5  # a hard edge
    pores = gaussian_filter(rng.normal(size=(R, R)), 0.7) * 0.08  # fine skin detail
    albedo = np.clip(base + pores[..., None], 0, 1).astype(np.float32)
    mask = np.zeros((R, R), np.float32)
    mask[:, : R // 2 - 4] = 1.0  # skin on the left only
    flat = super_resolve_albedo(albedo, 2 * R, mask=mask, detail=0.0)
    out = super_resolve_albedo(albedo, 2 * R, mask=mask, seed=3)
    assert out.shape == (2 * R, 2 * R, 3) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    np.testing.assert_array_equal(out, super_resolve_albedo(albedo, 2 * R, mask=mask, seed=3))  # deterministic
    # edge-aware: no ringing beyond the range of the source texels around the edge
    row = flat[:, R - 8: R + 8]
    assert row.max() <= albedo[:, R // 2 - 4: R // 2 + 4].max() + 1e-6
    assert row.min() >= albedo[:, R // 2 - 4: R // 2 + 4].min() - 1e-6

    def fine(img):  # energy above the source's Nyquist frequency
        lum = img.mean(-1)
        return float(np.mean((lum - gaussian_filter(lum, 1.0)) ** 2))

    left, right = np.s_[8:-8, 8:R - 16], np.s_[8:-8, R + 16:-8]
    assert fine(out[left]) > 1.5 * fine(flat[left])  # new detail on the skin
    np.testing.assert_allclose(out[right], flat[right], atol=2e-3)  # none outside the mask
    assert super_resolve_albedo(albedo, 4 * R, detail=0.0).shape == (4 * R, 4 * R, 3)
    with pytest.raises(InputError, match="2x or 4x"):
        super_resolve_albedo(albedo, 3 * R)
    with pytest.raises(InputError, match="mask"):
        super_resolve_albedo(albedo, 2 * R, mask=np.ones((8, 8)))


@pytest.mark.slow
def test_mesh_tangents_jit_vmap_and_gradients_float64():
    # mesh_tangents is public and documented as differentiable: check it directly (the detail map
    # tests only reach it through _texel_surface)
    mesh = uv_sphere(6, 8)
    frame = texel_frame(mesh, 8)
    rng = np.random.default_rng(3)
    v = np.asarray(mesh.vertices, np.float32) * (1.0 + 0.05 * rng.random((mesh.num_vertices, 1), np.float32))
    n, t = mesh_tangents(v, frame)
    nj, tj = jax.jit(mesh_tangents)(v, frame)
    np.testing.assert_allclose(nj, n, atol=1e-6)
    np.testing.assert_allclose(tj, t, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.sum(np.asarray(n) * np.asarray(t)[:, :3], 1), 0.0, atol=1e-5)
    vs = np.stack([v, 1.1 * v])
    nb, tb = jax.vmap(lambda x: mesh_tangents(x, frame))(vs)
    for k in range(2):
        nk, tk = mesh_tangents(vs[k], frame)
        np.testing.assert_allclose(nb[k], nk, atol=1e-6)
        np.testing.assert_allclose(tb[k], tk, atol=1e-6)
    with x64():
        v64 = jnp.asarray(v, jnp.float64)
        w = jnp.asarray(rng.normal(size=(len(n), 7)))
        check_grads(lambda x: jnp.sum(jnp.concatenate(mesh_tangents(x, frame), 1) * w), (v64,), order=1,
                    modes=["rev"], eps=1e-6)
