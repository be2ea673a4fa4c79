"""A small vectorised numpy triangle rasterizer (reference, not differentiable).

Used for precomputation (rasterizing a UV chart once) and for preview renders. Triangles are
binned by the size of their pixel bounding box; each bin tests every candidate pixel centre of
every triangle at once, and a depth sort resolves visibility. Pixel centres follow
:doc:`/conventions`: pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rasterize_np"]

_MAX_CANDIDATES = 1 << 22


def rasterize_np(
    points: np.ndarray,
    triangles: np.ndarray,
    size: tuple[int, int],
    *,
    depth: np.ndarray | None = None,
    cull_backfaces: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Rasterize 2D triangles onto pixel centres.

    Args:
        points: ``(N, 2)`` continuous pixel coordinates ``(x, y)``.
        triangles: ``(F, 3)`` indices into ``points``.
        size: ``(width, height)`` of the image.
        depth: optional ``(N,)`` per-point depth; the smallest interpolated depth wins a pixel.
            Without it, overlapping triangles resolve to the lowest triangle index.
        cull_backfaces: drop triangles that face away from the camera, i.e. those with
            positive signed area on the y-down pixel grid, for counter-clockwise outward winding.

    Returns:
        ``(tri_id, bary)``: ``(H, W)`` int32 triangle index (``-1`` where empty) and
        ``(H, W, 3)`` float64 barycentric weights of the triangle's three corners.
    """
    points = np.asarray(points, dtype=np.float64)
    triangles = np.asarray(triangles, dtype=np.int64)
    width, height = int(size[0]), int(size[1])
    tri_id = np.full(height * width, -1, dtype=np.int32)
    bary = np.zeros((height * width, 3), dtype=np.float64)
    if len(triangles) == 0:
        return tri_id.reshape(height, width), bary.reshape(height, width, 3)

    a, b, c = (points[triangles[:, k]] for k in range(3))
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep = np.abs(area) > 1e-12
    if cull_backfaces:
        # a triangle counter-clockwise seen from outside is clockwise on the y-down pixel grid
        # when it faces the camera: negative signed area (see the conventions page)
        keep &= area < 0
    lo = np.ceil(np.minimum(np.minimum(a, b), c) - 0.5).astype(np.int64)
    hi = np.floor(np.maximum(np.maximum(a, b), c) - 0.5).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [width - 1, height - 1])
    extent = np.max(hi - lo + 1, axis=1)
    keep &= extent > 0
    ids = np.nonzero(keep)[0]
    if ids.size == 0:
        return tri_id.reshape(height, width), bary.reshape(height, width, 3)

    bins = np.ceil(np.log2(np.maximum(extent[ids], 1))).astype(np.int64)
    pix_all, tri_all, w_all, z_all = [], [], [], []
    for level in np.unique(bins):
        s = 1 << int(level)
        members = ids[bins == level]
        dy, dx = np.meshgrid(np.arange(s), np.arange(s), indexing="ij")
        dx, dy = dx.reshape(-1), dy.reshape(-1)
        chunk = max(1, _MAX_CANDIDATES // (s * s))
        for start in range(0, members.size, chunk):
            t = members[start : start + chunk]
            px = lo[t, 0:1] + dx[None]
            py = lo[t, 1:2] + dy[None]
            valid = (px <= hi[t, 0:1]) & (py <= hi[t, 1:2])
            cx, cy = px + 0.5, py + 0.5
            ta, tb, tc = a[t], b[t], c[t]
            inv = 1.0 / area[t][:, None]
            w0 = ((tb[:, 0:1] - cx) * (tc[:, 1:2] - cy) - (tb[:, 1:2] - cy) * (tc[:, 0:1] - cx)) * inv
            w1 = ((tc[:, 0:1] - cx) * (ta[:, 1:2] - cy) - (tc[:, 1:2] - cy) * (ta[:, 0:1] - cx)) * inv
            w2 = 1.0 - w0 - w1
            eps = -1e-9
            inside = valid & (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
            rows, cols = np.nonzero(inside)
            if rows.size == 0:
                continue
            tt = t[rows]
            pix_all.append(py[rows, cols] * width + px[rows, cols])
            tri_all.append(tt)
            w = np.stack([w0[rows, cols], w1[rows, cols], w2[rows, cols]], 1)
            w_all.append(w)
            if depth is not None:
                z = depth[triangles[tt]]
                z_all.append(np.sum(z * w, axis=1))
    if not pix_all:
        return tri_id.reshape(height, width), bary.reshape(height, width, 3)
    pix = np.concatenate(pix_all)
    tri = np.concatenate(tri_all)
    w = np.concatenate(w_all)
    key2 = np.concatenate(z_all) if depth is not None else tri.astype(np.float64)
    order = np.lexsort((key2, pix))
    pix, tri, w = pix[order], tri[order], w[order]
    first = np.ones(pix.size, dtype=bool)
    first[1:] = pix[1:] != pix[:-1]
    tri_id[pix[first]] = tri[first]
    bary[pix[first]] = w[first]
    return tri_id.reshape(height, width), bary.reshape(height, width, 3)
