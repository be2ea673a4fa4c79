"""The numpy reference rasterizer against a brute-force per-pixel point-in-triangle test."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import small_mesh
from machlib import look_at, project, world_to_camera
from machlib._raster import rasterize_np


def _brute_force(points, triangles, size, depth=None):
    """Per pixel centre, per triangle barycentrics; returns (tri_id, bary, margin).

    ``margin`` is the distance (in barycentric units) of the pixel centre from the nearest edge
    of any triangle, to skip pixels where the inclusion test is decided by rounding.
    """
    W, H = size
    jj, ii = np.meshgrid(np.arange(W), np.arange(H))
    p = np.stack([jj + 0.5, ii + 0.5], -1).reshape(-1, 2)
    tri_id = np.full(len(p), -1)
    bary = np.zeros((len(p), 3))
    best = np.full(len(p), np.inf)
    margin = np.full(len(p), np.inf)
    for t, (i0, i1, i2) in enumerate(triangles):
        a, b, c = points[i0], points[i1], points[i2]
        area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if abs(area) < 1e-9:
            continue
        M = np.array([[a[0], b[0], c[0]], [a[1], b[1], c[1]], [1.0, 1.0, 1.0]])
        w = np.linalg.solve(M, np.concatenate([p, np.ones((len(p), 1))], 1).T).T
        margin = np.minimum(margin, np.min(np.abs(w), 1))
        inside = np.all(w >= 0, 1)
        key = (w @ depth[[i0, i1, i2]]) if depth is not None else np.full(len(p), float(t))
        win = inside & (key < best)
        tri_id[win] = t
        bary[win] = w[win]
        best[win] = key[win]
    return tri_id.reshape(H, W), bary.reshape(H, W, 3), margin.reshape(H, W)


def _check_against_reference(points, tris, size, depth=None, tol=1e-7):
    tri_id, bary = rasterize_np(points, tris, size, depth=depth)
    W, H = size
    assert tri_id.shape == (H, W) and tri_id.dtype == np.int32
    assert bary.shape == (H, W, 3) and bary.dtype == np.float64
    ref_id, ref_bary, margin = _brute_force(points, tris, size, depth)
    safe = margin > tol
    np.testing.assert_array_equal(tri_id[safe], ref_id[safe])
    np.testing.assert_allclose(bary[safe], ref_bary[safe], atol=1e-9)
    # barycentrics reconstruct the pixel centre and sum to one wherever a triangle was hit
    ii, jj = np.nonzero(tri_id >= 0)
    corners = points[tris[tri_id[ii, jj]]]  # (n, 3, 2)
    recon = np.einsum("nk,nkc->nc", bary[ii, jj], corners)
    np.testing.assert_allclose(recon, np.stack([jj + 0.5, ii + 0.5], 1), atol=1e-8)
    np.testing.assert_allclose(bary[ii, jj].sum(1), 1.0, atol=1e-9)
    assert np.all(bary[ii, jj] >= -1e-8)
    assert np.all(bary[tri_id < 0] == 0)
    return tri_id, bary


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 25), st.sampled_from([(40, 30), (17, 23), (64, 64)]))
def test_matches_brute_force(seed, n_tri, size):
    rng = np.random.default_rng(seed)
    W, H = size
    # triangles of all sizes, some partly off-screen, both windings
    centres = rng.uniform([-5, -5], [W + 5, H + 5], (n_tri, 1, 2))
    scale = rng.choice([1.0, 4.0, 15.0, 60.0], (n_tri, 1, 1))
    points = (centres + scale * rng.uniform(-1, 1, (n_tri, 3, 2))).reshape(-1, 2)
    tris = np.arange(3 * n_tri).reshape(-1, 3)
    _check_against_reference(points, tris, size)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_depth_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_tri, size = 12, (32, 24)
    points = rng.uniform([-4, -4], [36, 28], (3 * n_tri, 2))
    depth = rng.uniform(1.0, 5.0, 3 * n_tri)  # slanted, mutually intersecting triangles
    tris = np.arange(3 * n_tri).reshape(-1, 3)
    tri_id, _ = _check_against_reference(points, tris, size, depth=depth)
    assert (tri_id >= 0).any()


def test_depth_picks_nearest():
    # two identical screen triangles; the later one is nearer and must win everywhere
    points = np.array([[2.0, 2.0], [30.0, 3.0], [5.0, 28.0]] * 2)
    tris = np.array([[0, 1, 2], [3, 4, 5]])
    near_second = np.array([2.0, 2.0, 2.0, 1.0, 1.0, 1.0])
    tri_id, _ = rasterize_np(points, tris, (32, 32), depth=near_second)
    assert set(np.unique(tri_id)) == {-1, 1}
    tri_id, _ = rasterize_np(points, tris, (32, 32), depth=near_second[::-1].copy())
    assert set(np.unique(tri_id)) == {-1, 0}
    # without depth the lowest index wins
    tri_id, _ = rasterize_np(points, tris, (32, 32))
    assert set(np.unique(tri_id)) == {-1, 0}


def test_cull_backfaces_keeps_one_winding():
    pos_area = np.array([[2.0, 2.0], [30.0, 2.0], [2.0, 30.0]])  # positive signed area (y down)
    neg_area = pos_area[[0, 2, 1]]
    kept = []
    for pts in (pos_area, neg_area):
        tri_id, _ = rasterize_np(pts, np.array([[0, 1, 2]]), (32, 32))
        assert (tri_id == 0).any()  # without culling both windings draw
        tri_id, _ = rasterize_np(pts, np.array([[0, 1, 2]]), (32, 32), cull_backfaces=True)
        kept.append(bool((tri_id == 0).any()))
    assert kept in ([True, False], [False, True])


def _projected_sphere():
    m = small_mesh()
    eye = np.array([0.4, 0.3, 3.0])
    cam = look_at(jnp.asarray(eye), jnp.zeros(3), image_size=(96, 96))
    V, F = np.asarray(m.vertices), np.asarray(m.faces)
    px = np.asarray(project(jnp.asarray(V), cam), np.float64)
    depth = np.asarray(world_to_camera(jnp.asarray(V), cam), np.float64)[:, 2]
    return eye, V, F, px, depth


def test_cull_backfaces_same_silhouette_on_sphere():
    _, _, F, px, depth = _projected_sphere()
    culled, _ = rasterize_np(px, F, (96, 96), cull_backfaces=True)
    zbuf, _ = rasterize_np(px, F, (96, 96), depth=depth)
    assert (culled >= 0).sum() > 500
    np.testing.assert_array_equal(culled >= 0, zbuf >= 0)


def test_cull_backfaces_keeps_front_faces():
    """With outward CCW faces, culling keeps exactly the camera-facing triangles, and on a convex
    closed mesh it gives the same image as the depth test."""
    eye, V, F, px, depth = _projected_sphere()
    culled, _ = rasterize_np(px, F, (96, 96), cull_backfaces=True)
    zbuf, _ = rasterize_np(px, F, (96, 96), depth=depth)
    seen = np.unique(culled[culled >= 0])
    tri = V[F[seen]]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert np.all(np.sum(n * (eye - tri.mean(1)), 1) > 0), "culling kept back-facing triangles"
    agree = np.mean(culled[zbuf >= 0] == zbuf[zbuf >= 0])
    assert agree > 0.97  # only shared-edge ties may differ
    # the conventions page: a front face has negative signed area in pixel coordinates
    front = np.array([[2.0, 2.0], [2.0, 30.0], [30.0, 2.0]])
    tri_id, _ = rasterize_np(front, np.array([[0, 1, 2]]), (32, 32), cull_backfaces=True)
    assert (tri_id == 0).any()


def test_empty_degenerate_and_offscreen():
    tri_id, bary = rasterize_np(np.zeros((0, 2)), np.zeros((0, 3), int), (8, 5))
    assert tri_id.shape == (5, 8) and (tri_id == -1).all() and (bary == 0).all()
    # degenerate (collinear) and fully off-screen triangles draw nothing
    pts = np.array([[0.0, 0.0], [4.0, 4.0], [8.0, 8.0], [20.0, 20.0], [30.0, 20.0], [20.0, 30.0]])
    tri_id, _ = rasterize_np(pts, np.array([[0, 1, 2], [3, 4, 5]]), (8, 8))
    assert (tri_id == -1).all()
    # a triangle between pixel centres covers nothing
    tri_id, _ = rasterize_np(np.array([[0.6, 0.6], [1.4, 0.6], [0.6, 1.4]]), np.array([[0, 1, 2]]), (4, 4))
    assert (tri_id == -1).all()


def test_pixel_centre_convention():
    # a half-open square covering x in [1, 3), y in [0, 2) covers pixels (0..1, 1..2)
    pts = np.array([[1.0, 0.0], [3.0, 0.0], [3.0, 2.0], [1.0, 2.0]])
    tri_id, _ = rasterize_np(pts, np.array([[0, 1, 2], [0, 2, 3]]), (5, 4))
    covered = tri_id >= 0
    expected = np.zeros((4, 5), bool)
    expected[0:2, 1:3] = True
    np.testing.assert_array_equal(covered, expected)


def test_large_triangles_chunked():
    """Big triangles (bounding boxes beyond one bin) still rasterize completely."""
    pts = np.array([[0.0, 0.0], [300.0, 0.0], [0.0, 300.0], [300.0, 300.0]])
    tri_id, _ = rasterize_np(pts, np.array([[0, 1, 2], [1, 3, 2]]), (300, 300))
    assert (tri_id >= 0).all()


@pytest.mark.parametrize("size", [(1, 1), (3, 1)])
def test_tiny_images(size):
    pts = np.array([[-1.0, -1.0], [10.0, -1.0], [-1.0, 10.0]])
    tri_id, _ = rasterize_np(pts, np.array([[0, 1, 2]]), size)
    assert tri_id.shape == (size[1], size[0]) and (tri_id == 0).all()


def test_pixel_centres_on_edges_are_kept():
    """Edges through pixel centres (where the per-row spans that prune the candidates are
    decided by rounding): a grid of triangles with their corners on pixel centres covers every
    centre of the closed square, and a sliver a thousandth of a pixel tall along a row of centres
    (nearly horizontal, nearly vertical) covers that row's (column's) centres."""
    rng = np.random.default_rng(3)
    n = 12
    gy, gx = np.mgrid[0 : n + 1, 0 : n + 1]
    pts = np.stack([gx.ravel() + 2.5, gy.ravel() + 3.5], 1).astype(np.float64)
    tris = []
    for i in range(n):
        for j in range(n):
            v00, v01, v10, v11 = i * (n + 1) + j, i * (n + 1) + j + 1, (i + 1) * (n + 1) + j, (i + 1) * (n + 1) + j + 1
            tris += [[v00, v01, v11], [v00, v11, v10]] if rng.random() < 0.5 else [[v00, v01, v10], [v01, v11, v10]]
    tri_id, _ = rasterize_np(pts, np.array(tris), (20, 20))
    expect = np.zeros((20, 20), bool)
    expect[3 : 3 + n + 1, 2 : 2 + n + 1] = True
    np.testing.assert_array_equal(tri_id >= 0, expect)
    sliver = np.array([[0.5, 5.5], [17.5, 5.5], [17.5, 5.501]])
    tri_id, _ = rasterize_np(sliver, np.array([[0, 1, 2]]), (20, 20))
    np.testing.assert_array_equal(np.nonzero(tri_id >= 0)[0], np.full(18, 5))
    tri_id, _ = rasterize_np(sliver[:, ::-1].copy(), np.array([[0, 1, 2]]), (20, 20))
    np.testing.assert_array_equal(np.nonzero(tri_id >= 0)[1], np.full(18, 5))
