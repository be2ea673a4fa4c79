"""A head-only UV layout for the human's head and neck (numpy/scipy, built once and cached).

The head and neck of hm08 form a disc (one boundary loop at the base of the neck; the eye sockets,
nostrils and mouth are pockets, not holes). The layout cuts it along the back midline from the
neck to the crown, pins the resulting boundary to the unit square (the crown at the top centre,
the two sides of the cut down the left and right edges, the neck's base along the bottom) and
places the interior with a Tutte embedding with positive mean-value weights — injective by
Floater's theorem, so the position map has no overlaps. The weights are then reweighted a few
times so each region's share of the square approaches a target density (the face gets most of
the texels, pockets few). The layout is mirror-symmetric: ``u → 1 − u`` with ``x → −x``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._mesh import boundary_loops

__all__ = ["triangulate_quads", "cut_seam", "square_tutte_layout", "boundary_loop"]


def triangulate_quads(quads: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Split quads along their shorter diagonal (mirror-symmetric for a symmetric mesh).

    Returns:
        ``(2F, 3)`` int triangles with the quads' winding.
    """
    q = np.asarray(quads)
    v = np.asarray(vertices, np.float64)
    d02 = np.linalg.norm(v[q[:, 0]] - v[q[:, 2]], axis=1)
    d13 = np.linalg.norm(v[q[:, 1]] - v[q[:, 3]], axis=1)
    use02 = d02 <= d13 * (1 + 1e-9)
    # exact ties (symmetric quads on the midline) are split the same way on both sides
    a = np.where(use02[:, None], q[:, [0, 1, 2]], q[:, [0, 1, 3]])
    b = np.where(use02[:, None], q[:, [0, 2, 3]], q[:, [1, 2, 3]])
    return np.concatenate([a, b]).astype(np.int32)


def _edges(faces: np.ndarray) -> np.ndarray:
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return e


def boundary_loop(faces: np.ndarray) -> list[np.ndarray]:
    """Boundary loops of a triangle mesh (see :func:`machlib.boundary_loops`)."""
    return boundary_loops(faces)


def cut_seam(faces: np.ndarray, vertices: np.ndarray, seam: np.ndarray):
    """Cut a triangle mesh along a path of vertices from the boundary to an interior tip.

    Seam vertices except the tip are duplicated; faces on the ``x < 0`` side of the seam take
    the copies. Returns ``(faces_uv, uv_vertex)``: new corner indices and, for each UV vertex, the
    geometric vertex it copies.
    """
    faces = np.asarray(faces)
    n = len(vertices)
    seam = np.asarray(seam)
    tip = seam[-1]
    dup = {int(s): n + i for i, s in enumerate(seam[:-1])}
    cx = np.asarray(vertices, np.float64)[faces].mean(1)[:, 0]
    faces_uv = faces.copy()
    neg = cx < 0
    for s, c in dup.items():
        hit = (faces == s) & neg[:, None]
        faces_uv[hit] = c
    uv_vertex = np.concatenate([np.arange(n), seam[:-1]])
    del tip
    return faces_uv, uv_vertex


def _mean_value_weights(p: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    """Floater's mean-value weights ``w_ij = (tan(α/2) + tan(β/2)) / |p_i − p_j|`` (positive)."""
    rows, cols, vals = [], [], []
    for k in range(3):
        i, j, l = faces[:, k], faces[:, (k + 1) % 3], faces[:, (k + 2) % 3]
        # angle at i between edges i->j and i->l contributes tan(angle/2) to w_ij and w_il
        a, b = p[j] - p[i], p[l] - p[i]
        la, lb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        cos = np.clip(np.sum(a * b, 1) / np.maximum(la * lb, 1e-30), -1, 1)
        t = np.tan(np.arccos(cos) / 2)
        rows += [i, i]
        cols += [j, l]
        vals += [t / np.maximum(la, 1e-30), t / np.maximum(lb, 1e-30)]
    n = len(p)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def _solve(W: sp.csr_matrix, boundary: np.ndarray, boundary_uv: np.ndarray) -> np.ndarray:
    n = W.shape[0]
    interior = np.setdiff1d(np.arange(n), boundary)
    L = sp.diags(np.asarray(W.sum(1)).ravel()) - W
    L = L.tocsr()
    A = L[interior][:, interior].tocsc()
    B = L[interior][:, boundary]
    rhs = -(B @ boundary_uv)
    lu = spla.splu(A)
    uv = np.zeros((n, 2))
    uv[boundary] = boundary_uv
    uv[interior] = np.stack([lu.solve(rhs[:, 0]), lu.solve(rhs[:, 1])], 1)
    return uv


def _square_boundary(loop: np.ndarray, p: np.ndarray, tip_pos: int, corner_pos: tuple[int, int]) -> np.ndarray:
    """Place a boundary loop on the unit square's perimeter by arc length.

    ``loop`` starts at the crown (``tip_pos = 0``) and runs down one side of the cut to
    ``corner_pos[0]``, along the neck to ``corner_pos[1]`` and back up the other side.
    """
    pts = p[loop]
    seg = np.linalg.norm(np.roll(pts, -1, 0) - pts, axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])  # len(loop) + 1, closing at the crown

    def along(a, b, start, end):
        t = (s[a:b + 1] - s[a]) / max(s[b] - s[a], 1e-30)
        return start[None] + t[:, None] * (end - start)[None]

    i1, i2 = corner_pos
    out = np.zeros((len(loop) + 1, 2))
    # side 1: (0.5, 0) → corner (1, 0) → (1, 1): a polyline of length 1.5
    t = (s[: i1 + 1] - s[0]) / max(s[i1] - s[0], 1e-30) * 1.5
    out[: i1 + 1] = np.where(t[:, None] <= 0.5, np.stack([0.5 + t, 0 * t], 1), np.stack([np.ones_like(t), t - 0.5], 1))
    out[i1: i2 + 1] = along(i1, i2, np.array([1.0, 1.0]), np.array([0.0, 1.0]))
    t = (s[i2:] - s[i2]) / max(s[-1] - s[i2], 1e-30) * 1.5
    out[i2:] = np.where(t[:, None] <= 1.0, np.stack([0 * t, 1 - t], 1), np.stack([t - 1.0, 0 * t], 1))
    return out[:-1]


def square_tutte_layout(
    vertices: np.ndarray,
    faces_uv: np.ndarray,
    uv_vertex: np.ndarray,
    loop: np.ndarray,
    corners: tuple[int, int],
    density: np.ndarray,
    *,
    iterations: int = 12,
    gamma: float = 0.6,
) -> np.ndarray:
    """Tutte embedding of a disc into the unit square with area reweighting.

    Args:
        vertices: ``(N, 3)`` geometric positions.
        faces_uv: ``(F, 3)`` triangles over UV vertices.
        uv_vertex: ``(T,)`` geometric vertex of each UV vertex.
        loop: the boundary loop (UV vertices), starting at the crown.
        corners: positions in ``loop`` of the two neck corners.
        density: ``(F,)`` target texel density per face (relative).
        iterations: reweighting rounds.
        gamma: reweighting exponent.

    Returns:
        ``(T, 2)`` coordinates in the unit square.
    """
    p = np.asarray(vertices, np.float64)[uv_vertex]
    W = _mean_value_weights(p, faces_uv).tocoo()
    loop = np.asarray(loop)
    buv = _square_boundary(loop, p, 0, corners)
    area3 = 0.5 * np.linalg.norm(np.cross(p[faces_uv[:, 1]] - p[faces_uv[:, 0]], p[faces_uv[:, 2]] - p[faces_uv[:, 0]]), axis=1)
    target = area3 * density
    target = target / target.sum()
    scale = np.ones(len(W.data))
    n = len(p)
    for _ in range(iterations + 1):
        Wk = sp.csr_matrix((W.data * scale, (W.row, W.col)), shape=(n, n))
        uv = _solve(Wk, loop, buv)
        a = uv[faces_uv[:, 1]] - uv[faces_uv[:, 0]]
        b = uv[faces_uv[:, 2]] - uv[faces_uv[:, 0]]
        area2 = 0.5 * np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])
        ratio = area2 / area2.sum() / np.maximum(target, 1e-30)
        # per-vertex ratio: area-weighted mean over incident faces
        acc = np.zeros(n)
        wsum = np.zeros(n)
        for k in range(3):
            np.add.at(acc, faces_uv[:, k], np.log(np.maximum(ratio, 1e-12)) * target)
            np.add.at(wsum, faces_uv[:, k], target)
        logr = acc / np.maximum(wsum, 1e-30)
        # too large (ratio > 1): stiffen the springs there so the region contracts
        scale = scale * np.exp(gamma * 0.5 * (logr[W.row] + logr[W.col]))
    return uv
