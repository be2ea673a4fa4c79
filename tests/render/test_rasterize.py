"""machlib.render: rasterize, interpolate, to_clip and friends.

The numpy reference rasterizer (:func:`machlib._raster.rasterize_np`) decides the visible
triangle per pixel; pixels whose centre lies within rounding distance of any triangle edge are
left out of exact comparisons (the two implementations may break those ties differently).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from helpers import random_camera, uv_sphere, x64
from machlib import Camera, project
from machlib._errors import InputError
from machlib._raster import rasterize_np
from machlib.render import (
    Raster,
    fragment_count,
    interpolate,
    projection_matrix,
    rasterize,
    to_clip,
)

# barycentric distance from an edge below which a pixel counts as "on the edge"
EDGE_TOL = 1e-4


# --------------------------------------------------------------------------------------------
# scenes and the reference


def _pixels(clip, height, width):
    """Clip → continuous pixel coordinates (conventions page), float64 numpy."""
    c = np.asarray(clip, np.float64)
    w = c[:, 3]
    x = (c[:, 0] / w + 1.0) * 0.5 * width
    y = (1.0 - c[:, 1] / w) * 0.5 * height
    return np.stack([x, y], -1), c[:, 2] / w


def _on_an_edge(xy, tris, height, width, tol=EDGE_TOL):
    """(H, W) mask of pixel centres within ``tol`` (barycentric) of an edge of any triangle."""
    jj, ii = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    q = np.stack([jj.ravel(), ii.ravel()], -1)  # (P, 2)
    a, b, c = (xy[tris[:, k]] for k in range(3))  # (F, 2)
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    ok = np.abs(area) > 1e-9
    a, b, c, area = a[ok], b[ok], c[ok], area[ok]

    def edge(p0, p1):
        return ((p1[:, None, 0] - p0[:, None, 0]) * (q[None, :, 1] - p0[:, None, 1])
                - (p1[:, None, 1] - p0[:, None, 1]) * (q[None, :, 0] - p0[:, None, 0]))

    bary = np.stack([edge(b, c), edge(c, a), edge(a, b)], -1) / area[:, None, None]  # (F, P, 3)
    near = np.any(np.all(bary > -tol, -1) & np.any(np.abs(bary) < tol, -1), axis=0)
    return near.reshape(height, width)


def _reference(clip, tris, height, width, *, cull_backfaces=False):
    """ids, screen-space barycentrics, NDC depth and the edge mask of the numpy reference."""
    xy, z = _pixels(clip, height, width)
    tris = np.asarray(tris)
    ids, lin = rasterize_np(xy, tris, (width, height), depth=z, cull_backfaces=cull_backfaces)
    depth = np.where(ids >= 0, np.einsum("hwk,hwk->hw", lin, z[tris[np.maximum(ids, 0)]]), 1.0)
    return ids, lin, depth, _on_an_edge(xy, tris, height, width)


# static candidate capacities shared by the scenes of one kind (one compilation per kind)
SPHERE_CAP = 4 * 48 * 64
SOUP_CAP = 30 * 40 * 56


def _ras(clip, tri, res, **kw):
    """rasterize with the shared capacity of the scene kind (checked to be enough)."""
    cap = SPHERE_CAP if res == (48, 64) else SOUP_CAP
    assert fragment_count(clip, tri, image_size=res[::-1], cull_backfaces=kw.get("cull_backfaces", False)) <= cap
    return rasterize(clip, tri, image_size=res[::-1], capacity=cap, **kw)


def _sphere_scene(seed, *, size=(64, 48), radius=0.12, n_u=16, n_v=10):
    """A closed UV sphere seen by a random camera about 3 m away; returns (clip, tri, (H, W))."""
    mesh = uv_sphere(n_u, n_v, radius)
    cam = random_camera(jax.random.PRNGKey(seed), image_size=size)
    clip = to_clip(jnp.asarray(mesh.vertices, jnp.float32), cam)
    return clip, jnp.asarray(mesh.faces, jnp.int32), (size[1], size[0])


def _soup_scene(seed, *, n_tri=30, height=40, width=56):
    """Random 2D triangles of all sizes (some off-screen, both windings), each at its own
    constant depth, orthographic (w = 1) so depth order is unambiguous."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform([-4, -4], [width + 4, height + 4], (n_tri, 1, 2))
    scale = rng.choice([2.0, 6.0, 15.0, 40.0], (n_tri, 1, 1))
    pts = (centres + scale * rng.uniform(-1, 1, (n_tri, 3, 2))).reshape(-1, 2)
    z = np.repeat(rng.permutation(n_tri) / n_tri * 1.8 - 0.9, 3)
    clip = np.stack([2.0 * pts[:, 0] / width - 1.0, 1.0 - 2.0 * pts[:, 1] / height, z, np.ones(len(z))], -1)
    return jnp.asarray(clip, jnp.float32), jnp.arange(3 * n_tri, dtype=jnp.int32).reshape(-1, 3), (height, width)


def _check_against_reference(clip, tri, res, *, cull_backfaces=False):
    H, W = res
    r = _ras(clip, tri, res, cull_backfaces=cull_backfaces)
    ids, lin, depth, edge = _reference(clip, tri, H, W, cull_backfaces=cull_backfaces)
    got = np.asarray(r.triangle)
    assert got.shape == (H, W) and got.dtype == np.int32
    safe = ~edge
    assert safe.mean() > 0.7, "test scene has too few unambiguous pixels"
    np.testing.assert_array_equal(got[safe], ids[safe])
    hit = safe & (ids >= 0)
    assert hit.sum() > 50, "test scene covers too few pixels"
    # depth is z/w, affine in screen space
    np.testing.assert_allclose(np.asarray(r.depth)[hit], depth[hit], atol=2e-5)
    # barycentrics: the reference's screen-space weights, perspective-corrected
    w = np.asarray(clip, np.float64)[:, 3][np.asarray(tri)[np.maximum(ids, 0)]]  # (H, W, 3)
    persp = lin / w
    persp /= np.where(ids >= 0, np.sum(persp, -1), 1.0)[..., None]
    np.testing.assert_allclose(np.asarray(r.barycentric)[hit], persp[hit], atol=2e-5)
    # empty pixels
    empty = np.asarray(r.triangle) < 0
    assert np.all(np.asarray(r.barycentric)[empty] == 0.0) and np.all(np.asarray(r.depth)[empty] == 1.0)
    np.testing.assert_allclose(np.asarray(r.barycentric)[~empty].sum(-1), 1.0, atol=1e-5)
    return r


# --------------------------------------------------------------------------------------------
# agreement with the numpy reference


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sphere_matches_reference(seed):
    clip, tri, res = _sphere_scene(seed)
    _check_against_reference(clip, tri, res)


@pytest.mark.parametrize("seed", [3, 4])
def test_triangle_soup_matches_reference(seed):
    """Overlapping triangles at distinct depths: the nearest wins, as in the reference."""
    clip, tri, res = _soup_scene(seed)
    r = _check_against_reference(clip, tri, res)
    assert len(np.unique(np.asarray(r.triangle))) > 10  # many triangles actually visible


def test_culling():
    clip, tri, res = _sphere_scene(5)
    both = _check_against_reference(clip, tri, res, cull_backfaces=False)
    front = _check_against_reference(clip, tri, res, cull_backfaces=True)
    # a closed mesh looks the same with and without culling (away from edges)
    _, _, _, edge = _reference(clip, tri, *res)
    np.testing.assert_array_equal(np.asarray(front.triangle)[~edge], np.asarray(both.triangle)[~edge])
    # only front faces survive culling: negative signed area on the y-down pixel grid
    xy, _ = _pixels(clip, *res)
    p = xy[np.asarray(tri)]
    area = (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 1, 1] - p[:, 0, 1]) * (p[:, 2, 0] - p[:, 0, 0])
    seen = np.unique(np.asarray(front.triangle))
    assert np.all(area[seen[seen >= 0]] < 0)
    # flipping the winding turns the far side toward the camera: culling now shows the inside
    inside = _ras(clip, tri[:, ::-1], res, cull_backfaces=True)
    seen = np.unique(np.asarray(inside.triangle))
    assert np.all(area[seen[seen >= 0]] > 0)
    hit = (np.asarray(inside.triangle) >= 0) & (np.asarray(front.triangle) >= 0)
    np.testing.assert_array_equal(np.asarray(inside.triangle) >= 0, np.asarray(front.triangle) >= 0)
    assert np.all(np.asarray(inside.depth)[hit] > np.asarray(front.depth)[hit])
    n_front = fragment_count(clip, tri, image_size=res[::-1], cull_backfaces=True)
    n_back = fragment_count(clip, tri[:, ::-1], image_size=res[::-1], cull_backfaces=True)
    assert n_front + n_back == fragment_count(clip, tri, image_size=res[::-1])


def test_tie_on_shared_edge_goes_to_lower_index():
    """Two coplanar triangles sharing the diagonal through pixel centres: the lower index wins."""
    clip = jnp.array([[-1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 1.0], [1.0, -1.0, 0.0, 1.0], [-1.0, -1.0, 0.0, 1.0]])
    for tri, low in ((jnp.array([[0, 2, 1], [0, 3, 2]]), 0), (jnp.array([[0, 3, 2], [0, 2, 1]]), 0)):
        ids = np.asarray(rasterize(clip, tri, image_size=(6, 6)).triangle)
        assert np.all(ids >= 0)
        assert np.all(np.diag(ids) == low)  # the diagonal pixel centres lie on the shared edge


# --------------------------------------------------------------------------------------------
# empty, degenerate, clipped


def test_empty_and_degenerate_triangles():
    res = (8, 10)
    clip = jnp.array(
        [
            [-0.5, -0.5, 0.0, 1.0], [0.5, -0.5, 0.0, 1.0], [0.0, 0.5, 0.0, 1.0],  # a proper triangle
            [-0.9, -0.9, 0.0, 1.0], [0.9, 0.9, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0],  # collinear
            [3.0, 3.0, 0.0, 1.0], [4.0, 3.0, 0.0, 1.0], [3.0, 4.0, 0.0, 1.0],  # off-screen
        ]
    )
    tri = jnp.array([[3, 4, 5], [0, 1, 2], [0, 0, 1], [6, 7, 8]])
    r = rasterize(clip, tri, image_size=res[::-1])
    ids = np.asarray(r.triangle)
    assert set(np.unique(ids)) == {-1, 1}
    assert fragment_count(clip, tri[2:], image_size=res[::-1]) == 0
    # no triangles at all
    for derivatives in (False, True):
        e = rasterize(clip, jnp.zeros((0, 3), jnp.int32), image_size=res[::-1], derivatives=derivatives)
        assert e.triangle.shape == res and np.all(np.asarray(e.triangle) == -1)
        assert np.all(np.asarray(e.depth) == 1.0) and np.all(np.asarray(e.barycentric) == 0.0)
        assert np.all(np.asarray(interpolate(jnp.ones((9, 2)), e, jnp.zeros((0, 3), jnp.int32))) == 0.0)
    assert fragment_count(clip, jnp.zeros((0, 3), jnp.int32), image_size=res[::-1]) == 0


def test_behind_camera_nan_and_far_plane():
    res = (8, 8)
    big = jnp.array([[-1.0, -1.0], [3.0, -1.0], [-1.0, 3.0]])  # covers the whole screen

    def tri_at(z, w):
        return jnp.concatenate([big * w[:, None], z[:, None], w[:, None]], -1)

    ones = jnp.ones(3)
    # in front: covers everything
    assert np.all(np.asarray(rasterize(tri_at(0.0 * ones, ones), jnp.array([[0, 1, 2]]), image_size=res[::-1]).triangle) == 0)
    # one vertex behind the camera (w < 0) or on its plane (w = 0): dropped (no near clipping)
    for w0 in (-0.5, 0.0):
        clip = tri_at(0.0 * ones, jnp.array([w0, 1.0, 1.0]))
        assert np.all(np.asarray(rasterize(clip, jnp.array([[0, 1, 2]]), image_size=res[::-1]).triangle) == -1)
    # NaN vertex: dropped, no NaN leaks out
    clip = tri_at(0.0 * ones, ones).at[1, 0].set(jnp.nan)
    r = rasterize(clip, jnp.array([[0, 1, 2]]), image_size=res[::-1])
    assert np.all(np.asarray(r.triangle) == -1) and np.all(np.isfinite(np.asarray(r.barycentric)))
    # wholly beyond the far plane (z/w > 1) or in front of the near plane (z/w < −1): dropped
    for z in (1.5, -1.5):
        assert np.all(np.asarray(rasterize(tri_at(z * ones, ones), jnp.array([[0, 1, 2]]), image_size=res[::-1]).triangle) == -1)
    # partly beyond the far plane: exactly the pixels with z/w <= 1 remain
    z = jnp.array([0.0, 4.0, 0.0])  # z/w grows with x: z/w = x_ndc + 1
    r = rasterize(tri_at(z, ones), jnp.array([[0, 1, 2]]), image_size=res[::-1])
    z_ndc = np.broadcast_to((np.arange(8) + 0.5) / 4, res)
    expect = z_ndc <= 1.0
    assert 0 < expect.sum() < expect.size
    np.testing.assert_array_equal(np.asarray(r.triangle) >= 0, expect)
    np.testing.assert_allclose(np.asarray(r.depth)[expect], z_ndc[expect], atol=1e-6)


# --------------------------------------------------------------------------------------------
# batch, vmap, jit, capacity


def _batch_scene():
    a, tri, res = _sphere_scene(6)
    b, _, _ = _sphere_scene(7)
    return jnp.stack([a, b]), tri, res


def test_batch_equals_loop_and_vmap():
    clips, tri, res = _batch_scene()
    assert fragment_count(clips, tri, image_size=res[::-1]) == max(fragment_count(c, tri, image_size=res[::-1]) for c in clips)
    batched = _ras(clips, tri, res, derivatives=True)
    assert batched.triangle.shape == (2,) + res and batched.barycentric_grad.shape == (2,) + res + (3, 2)
    looped = [_ras(c, tri, res, derivatives=True) for c in clips]
    vmapped = jax.vmap(lambda c: rasterize(c, tri, image_size=res[::-1], capacity=SPHERE_CAP, derivatives=True))(clips)
    for i in range(2):
        for field in Raster._fields:
            np.testing.assert_array_equal(np.asarray(getattr(batched, field)[i]), np.asarray(getattr(looped[i], field)))
            np.testing.assert_array_equal(np.asarray(getattr(vmapped, field)[i]), np.asarray(getattr(looped[i], field)))
    assert not np.array_equal(np.asarray(batched.triangle[0]), np.asarray(batched.triangle[1]))
    # interpolate: a shared (V, C) attribute broadcasts; a (B, V, C) one pairs up with the batch
    attr = jax.random.normal(jax.random.PRNGKey(0), (clips.shape[1], 3))
    out = interpolate(attr, batched, tri)
    out2 = interpolate(jnp.stack([attr, 2.0 * attr]), batched, tri)
    for i in range(2):
        np.testing.assert_allclose(np.asarray(out[i]), np.asarray(interpolate(attr, looped[i], tri)), atol=1e-6)
        np.testing.assert_allclose(np.asarray(out2[i]), (i + 1) * np.asarray(out[i]), atol=1e-5)
    d = interpolate(attr, batched, tri, derivatives=True)[1]
    np.testing.assert_allclose(np.asarray(d[1]), np.asarray(interpolate(attr, looped[1], tri, derivatives=True)[1]), atol=1e-6)


def test_jit_equals_eager():
    clip, tri, res = _sphere_scene(8)
    cap = SPHERE_CAP
    attr = jnp.asarray(np.random.default_rng(0).normal(size=(clip.shape[0], 2)), jnp.float32)

    def render(c, a, capacity):
        r = rasterize(c, tri, image_size=res[::-1], cull_backfaces=True, capacity=capacity, derivatives=True)
        return r, interpolate(a, r, tri, derivatives=True)

    eager = render(clip, attr, cap)
    # under jit, capacity=None means 4·H·W (= SPHERE_CAP here), plenty for this scene
    jitted = jax.jit(lambda c, a: render(c, a, None))(clip, attr)
    for a, b in zip(jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(jitted)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_capacity_overflow_raises(caplog):
    from machlib import InputError, jit_errors

    clip, tri, res = _sphere_scene(9)
    need = fragment_count(clip, tri, image_size=res[::-1])
    # a runtime check (error_if), so it also fires inside the caller's jit ...
    render = jax.jit(lambda c: rasterize(c, tri, image_size=res[::-1], capacity=need - 1).triangle)
    with pytest.raises(RuntimeError, match="capacity"):
        jax.block_until_ready(render(clip))
    caplog.clear()
    # ... where jit_errors turns it into one InputError carrying just the message
    with pytest.raises(InputError, match="more candidate fragments than `capacity`") as info:
        with jit_errors():
            jax.block_until_ready(render(clip))
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "Traceback" not in str(info.value) and "equinox" not in str(info.value)
    assert not [r for r in caplog.records if "pure_callback failed" in r.getMessage()]  # no logged traceback
    # an eager call raises the InputError itself, with the count needed
    with pytest.raises(InputError, match=f"{need} candidate fragments but capacity={need - 1}"):
        rasterize(clip, tri, image_size=res[::-1], capacity=need - 1)
    # exactly enough is fine; other runtime errors pass through jit_errors unchanged
    assert rasterize(clip, tri, image_size=res[::-1], capacity=need).triangle.shape == res
    with pytest.raises(ZeroDivisionError):
        with jit_errors():
            1 / 0


def test_bad_inputs_raise():
    clip, tri, res = _sphere_scene(10)
    with pytest.raises((ValueError, TypeError), match="rasterize|clip_pos"):
        rasterize(clip[:, :3], tri, image_size=res[::-1])
    with pytest.raises((ValueError, TypeError), match="rasterize|clip_pos"):
        rasterize(clip[None, None], tri, image_size=res[::-1])
    with pytest.raises(TypeError, match="rasterize|clip_pos"):
        rasterize(jnp.ones(clip.shape, jnp.int32), tri, image_size=res[::-1])
    with pytest.raises((ValueError, TypeError), match="rasterize|tri"):
        rasterize(clip, tri.astype(jnp.float32), image_size=res[::-1])
    with pytest.raises((ValueError, TypeError), match="rasterize|tri"):
        rasterize(clip, tri[:, :2], image_size=res[::-1])
    with pytest.raises(InputError, match="image_size"):
        rasterize(clip, tri, image_size=(8, 0))
    with pytest.raises((InputError, TypeError), match="image_size"):  # TypeError: jaxtyping's check
        rasterize(clip, tri, image_size="big")
    with pytest.raises(ValueError, match="capacity"):
        rasterize(clip, tri, image_size=res[::-1], capacity=0)
    with pytest.raises(ValueError, match="fragment_count"):
        jax.jit(lambda c: fragment_count(c, tri, image_size=res[::-1]))(clip)
    r = _ras(clip, tri, res)
    with pytest.raises(ValueError, match="derivatives"):
        interpolate(jnp.ones((clip.shape[0], 2)), r, tri, derivatives=True)
    with pytest.raises(ValueError, match="batched"):
        interpolate(jnp.ones((2, clip.shape[0], 2)), r, tri)
    with pytest.raises((ValueError, TypeError), match="interpolate|attr"):
        interpolate(jnp.ones(clip.shape[0]), r, tri)
    with pytest.raises(ValueError, match="near"):
        projection_matrix(random_camera(jax.random.PRNGKey(0)), near=1.0, far=0.5)
    with pytest.raises((ValueError, TypeError), match="to_clip|vertices"):
        to_clip(jnp.ones((5, 2)), random_camera(jax.random.PRNGKey(0)))


# --------------------------------------------------------------------------------------------
# projection and perspective


def test_to_clip_agrees_with_project():
    cam = random_camera(jax.random.PRNGKey(11), image_size=(80, 60))
    pts = jax.random.uniform(jax.random.PRNGKey(12), (50, 3), minval=-0.5, maxval=0.5)
    near, far = 0.5, 10.0
    clip = np.asarray(to_clip(pts, cam, near=near, far=far), np.float64)
    xy, z_ndc = _pixels(clip, 60, 80)
    np.testing.assert_allclose(xy, np.asarray(project(pts, cam)), atol=2e-3)  # pixels
    from machlib import world_to_camera

    depth = np.asarray(world_to_camera(pts, cam), np.float64)[:, 2]
    np.testing.assert_allclose(clip[:, 3], depth, rtol=1e-5)  # w = camera depth
    expect = (far + near) / (far - near) - 2.0 * far * near / ((far - near) * depth)
    np.testing.assert_allclose(z_ndc, expect, atol=1e-5)
    # near plane → −1, far plane → +1
    P = np.asarray(projection_matrix(cam, near=near, far=far), np.float64)
    for d, e in ((near, -1.0), (far, 1.0)):
        c = P @ np.array([0.1, 0.2, d, 1.0]) * 1.0
        assert c[2] / c[3] == pytest.approx(e, abs=1e-6)
    # batched vertices
    both = to_clip(jnp.stack([pts, 2.0 * pts]), cam, near=near, far=far)
    np.testing.assert_allclose(np.asarray(both[0]), clip, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(both[1]), np.asarray(to_clip(2.0 * pts, cam, near=near, far=far)), rtol=1e-6)


def _tilted_plane(width=48, height=40):
    """A quad on the camera-space plane Z = 3 + 0.8 X + 0.3 Y, camera at the origin (world =
    camera space). Returns (clip, tri, cam, vertices, plane ray-cast function)."""
    f = 40.0
    cam = Camera(jnp.zeros(3), jnp.zeros(3), jnp.array([f, f]), jnp.array([width / 2 + 1.3, height / 2 - 0.7]),
                 image_size=(width, height))
    X = np.array([-1.3, 1.3, 1.3, -1.3])
    Y = np.array([-1.1, -1.1, 1.1, 1.1])
    Z = 3.0 + 0.8 * X + 0.3 * Y
    verts = jnp.asarray(np.stack([X, Y, Z], -1), jnp.float32)
    tri = jnp.array([[0, 2, 1], [0, 3, 2]], jnp.int32)

    cx, cy = (float(c) for c in cam.principal)

    def raycast(x, y):  # pixel → the camera-space point of the plane seen there (numpy)
        r = np.stack([(x - cx) / f, (y - cy) / f, np.ones_like(x)], -1)
        t = 3.0 / (1.0 - 0.8 * r[..., 0] - 0.3 * r[..., 1])
        return r * t[..., None]

    return to_clip(verts, cam, near=0.1, far=20.0), tri, cam, verts, raycast


def test_perspective_correct_interpolation():
    width, height = 48, 40
    clip, tri, cam, verts, raycast = _tilted_plane(width, height)
    r = rasterize(clip, tri, image_size=(width, height), derivatives=True)
    hit = np.asarray(r.triangle) >= 0
    assert hit.mean() > 0.5
    # interpolating the camera-space position reproduces the ray-cast surface point; Z is w
    pos, dpos = interpolate(verts, r, tri, derivatives=True)
    jj, ii = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    truth = raycast(jj, ii)
    np.testing.assert_allclose(np.asarray(pos)[hit], truth[hit], rtol=2e-5, atol=2e-5)
    w = interpolate(clip[:, 3:], r, tri)
    np.testing.assert_allclose(np.asarray(w)[hit, 0], truth[hit, 2], rtol=2e-5)
    # screen-space (affine) interpolation would be visibly wrong on this plane
    ids, lin = rasterize_np(_pixels(clip, height, width)[0], np.asarray(tri), (width, height))
    affine = np.einsum("hwk,hwk->hw", lin, np.asarray(verts)[np.asarray(tri)[np.maximum(ids, 0)], 2])
    assert np.max(np.abs(affine - truth[..., 2])[hit & (ids >= 0)]) > 0.02
    # screen-space derivatives: ∂(camera point)/∂(x, y) of the ray cast (central differences), y down
    h = 1e-3
    jac = np.stack([(raycast(jj + h, ii) - raycast(jj - h, ii)) / (2 * h),
                    (raycast(jj, ii + h) - raycast(jj, ii - h)) / (2 * h)], -1)
    np.testing.assert_allclose(np.asarray(dpos)[hit], jac[hit], rtol=1e-3, atol=1e-5)


def test_derivatives_orthographic_units_and_sign():
    """With w = 1, interpolating the pixel coordinates themselves has derivative identity."""
    H, W = 12, 16
    pts = np.array([[1.2, 0.7], [15.1, 2.3], [3.3, 11.6]])
    clip = jnp.asarray(np.stack([2 * pts[:, 0] / W - 1, 1 - 2 * pts[:, 1] / H, np.zeros(3), np.ones(3)], -1), jnp.float32)
    tri = jnp.array([[0, 1, 2]])
    r = rasterize(clip, tri, image_size=(W, H), derivatives=True)
    val, d = interpolate(jnp.asarray(pts, jnp.float32), r, tri, derivatives=True)
    hit = np.asarray(r.triangle) >= 0
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    np.testing.assert_allclose(np.asarray(val)[hit], np.stack([jj, ii], -1)[hit], atol=1e-4)
    np.testing.assert_allclose(np.asarray(d)[hit], np.broadcast_to(np.eye(2), (hit.sum(), 2, 2)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(r.barycentric_grad)[hit].sum(1), 0.0, atol=1e-6)  # Σ b = 1
    assert np.all(np.asarray(r.barycentric_grad)[~hit] == 0.0)


# --------------------------------------------------------------------------------------------
# gradients


def _gradient_scene():
    """Two triangles at different depths (perspective), float64, a 10 × 12 image."""
    clip = jnp.array(
        [
            [-0.83, -0.71, 0.2, 1.1], [1.37, -0.52, 0.3, 1.6], [-0.45, 1.29, 0.1, 1.3],
            [0.05, -0.95, -0.2, 0.9], [0.93, 0.11, -0.1, 1.0], [-0.27, 0.77, 0.0, 1.2],
        ],
        jnp.float64,
    )
    tri = jnp.array([[0, 1, 2], [3, 4, 5]], jnp.int32)
    attr = jnp.asarray(np.random.default_rng(3).normal(size=(6, 3)), jnp.float64)
    return clip, tri, attr, (10, 12)


def test_gradients_of_interpolate():
    with x64():
        clip, tri, attr, res = _gradient_scene()
        cap = tri.shape[0] * res[0] * res[1]  # an upper bound: every bounding box is the image
        ids = _reference(clip, tri, *res)[0]
        assert len(np.unique(ids)) == 3  # both triangles and background visible
        # the test's premise: small moves of the vertices change no pixel's triangle
        rng = np.random.default_rng(0)
        for _ in range(4):
            moved = clip + 1e-5 * rng.normal(size=clip.shape)
            np.testing.assert_array_equal(_reference(moved, tri, *res)[0], ids)
        weights = jnp.asarray(rng.normal(size=res + (3,)))
        weights_d = jnp.asarray(rng.normal(size=res + (3, 2)))

        @jax.jit
        def everything(c, a):  # interpolated values, their screen derivatives and the depth
            r = rasterize(c, tri, image_size=res[::-1], capacity=cap, derivatives=True)
            v, d = interpolate(a, r, tri, derivatives=True)
            return jnp.sum(v * weights) + jnp.sum(d * weights_d) + jnp.sum(r.depth * weights[..., 0])

        check_grads(everything, (clip, attr), order=1, modes=("rev",), eps=1e-6)
        g = jax.vjp(everything, clip, attr)[1](1.0)[0]
        assert np.all(np.abs(np.asarray(g)[:, :2]) > 0)  # every vertex moves the image


def test_image_size_is_width_height_and_keyword_only():
    # (W, H) like Camera.image_size; the keyword stops nvdiffrast's positional (H, W) habit.
    clip = jnp.array([[-1.0, -1.0, 0.0, 1.0], [1.0, -1.0, 0.0, 1.0], [-1.0, 1.0, 0.0, 1.0]])
    tri = jnp.array([[0, 1, 2]])
    r = rasterize(clip, tri, image_size=(6, 4))
    assert r.triangle.shape == (4, 6)
    assert fragment_count(clip, tri, image_size=(6, 4)) <= 24
    with pytest.raises(TypeError):
        rasterize(clip, tri, (4, 6))
    with pytest.raises((InputError, TypeError), match="image_size"):
        rasterize(clip, tri, image_size=(6.5, 4))
