"""A small vectorised numpy triangle rasterizer (reference, not differentiable).

Used for precomputation (rasterizing a UV chart once) and for preview renders. For every row of
every triangle's clipped bounding box, the span of pixel centres that the triangle's three edge
planes leave open is solved for (widened by 1e-4 px either side); every pixel centre in it is
one candidate, enumerated with a prefix sum and tested against the three edge planes at once.
The spans only prune: a pixel is covered exactly when the edge test passes, as when every pixel
of the bounding box was a candidate (three times the work on a character preview's thin
triangles). A z-buffer (``np.minimum.at``) resolves visibility, the lowest triangle index
breaking ties, as :func:`machlib.render.rasterize` does. Pixel centres follow
:doc:`/conventions`: pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rasterize_np"]

_CHUNK = 1 << 20  # candidates evaluated at once (bounds the temporaries to ~100 MB)


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
    lo = np.maximum(np.ceil(np.minimum(np.minimum(a, b), c) - 0.5).astype(np.int64), 0)
    hi = np.minimum(np.floor(np.maximum(np.maximum(a, b), c) - 0.5).astype(np.int64), [width - 1, height - 1])
    ext = np.maximum(hi - lo + 1, 0)
    ids = np.nonzero(keep & (ext[:, 0] > 0) & (ext[:, 1] > 0))[0]
    if ids.size == 0:
        return tri_id.reshape(height, width), bary.reshape(height, width, 3)

    # barycentric k of a point (x, y) is the plane E[:, k] · (x, y, 1): the edge opposite corner k
    inv = 1.0 / np.where(keep, area, 1.0)
    planes = []
    for p, q in ((b, c), (c, a), (a, b)):
        planes.append(np.stack([(p[:, 1] - q[:, 1]) * inv, (q[:, 0] - p[:, 0]) * inv,
                                (p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]) * inv], 1))
    E = np.stack(planes, 1)  # (F, 3, 3)
    zt = None if depth is None else np.asarray(depth, dtype=np.float64)[triangles]

    def weights(t, x, y):
        e = E[t]
        return e[:, :, 0] * x[:, None] + e[:, :, 1] * y[:, None] + e[:, :, 2]

    # one (triangle, row) pair per row of each bounding box, and the columns the three edge
    # planes leave open in it (x·E_k0 + c_k >= 0), 1e-4 px wider either side (rounding in the
    # division is ~1e-13 px): the edge test below decides, so no pixel is dropped or added
    rows = ext[ids, 1]
    rt = np.repeat(ids, rows)
    ry = lo[rt, 1] + np.arange(rt.size) - np.repeat(np.cumsum(rows) - rows, rows)
    x0 = lo[rt, 0].astype(np.float64) - 1.0
    x1 = hi[rt, 0].astype(np.float64) + 1.0
    for k in range(3):
        ex = E[rt, k, 0]
        ck = E[rt, k, 1] * (ry + 0.5) + E[rt, k, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = (-1e-9 - ck) / ex - 0.5  # the column whose centre meets the plane
        x0 = np.where(ex > 0, np.maximum(x0, np.ceil(np.where(ex > 0, bound, -np.inf) - 1e-4)), x0)
        x1 = np.where(ex < 0, np.minimum(x1, np.floor(np.where(ex < 0, bound, np.inf) + 1e-4)), x1)
        x1 = np.where((ex == 0) & (ck < -1e-9), x0 - 1.0, x1)  # a row this edge closes entirely
    c0 = np.maximum(x0, lo[rt, 0]).astype(np.int64)
    n_row = np.maximum(np.minimum(x1, hi[rt, 0]).astype(np.int64) - c0 + 1, 0)
    live = np.nonzero(n_row)[0]
    if live.size == 0:
        return tri_id.reshape(height, width), bary.reshape(height, width, 3)
    rt, ry, c0, n_row = rt[live], ry[live], c0[live], n_row[live]

    cum = np.cumsum(n_row)
    cuts = np.searchsorted(cum, np.arange(_CHUNK, cum[-1], _CHUNK), side="left") + 1
    bounds = [0, *cuts.tolist(), rt.size]
    frag_pix, frag_tri, frag_z = [], [], []
    for s0, s1 in zip(bounds[:-1], bounds[1:]):
        if s1 <= s0:
            continue
        n = n_row[s0:s1]
        e = E[rt[s0:s1]]  # the row's triangle's planes
        ey = e[:, :, 1] * (ry[s0:s1] + 0.5)[:, None]  # each plane's y term, once per row
        row = np.repeat(np.arange(n.size), n)
        px = np.repeat(c0[s0:s1], n) + np.arange(row.size) - np.repeat(np.cumsum(n) - n, n)
        x = px + 0.5
        # the planes as weights() evaluates them, (x·a + y·b) + c, with the same rounding
        ws = []
        inside = None
        for k in range(3):
            wk = np.repeat(e[:, k, 0], n) * x
            wk += np.repeat(ey[:, k], n)
            wk += np.repeat(e[:, k, 2], n)
            inside = wk >= -1e-9 if inside is None else inside & (wk >= -1e-9)
            ws.append(wk)
        row = row[inside]
        tt = rt[s0:s1][row]
        frag_pix.append(ry[s0:s1][row] * width + px[inside])
        frag_tri.append(tt)
        if zt is not None:
            w = np.stack([wk[inside] for wk in ws], 1)
            frag_z.append(np.einsum("nk,nk->n", w, zt[tt]))
        else:
            frag_z.append(tt.astype(np.float64))
    pix = np.concatenate(frag_pix)
    tri = np.concatenate(frag_tri)
    z = np.concatenate(frag_z)
    zbuf = np.full(height * width, np.inf)
    np.minimum.at(zbuf, pix, z)
    win = z == zbuf[pix]
    none = np.iinfo(np.int64).max
    best = np.full(height * width, none)
    np.minimum.at(best, pix[win], tri[win])
    covered = np.nonzero(best != none)[0]
    t = best[covered]
    tri_id[covered] = t
    w = weights(t, covered % width + 0.5, covered // width + 0.5)
    w[:, 2] = 1.0 - w[:, 0] - w[:, 1]
    bary[covered] = w
    return tri_id.reshape(height, width), bary.reshape(height, width, 3)
