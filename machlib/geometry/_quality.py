"""Surface checks for fitted heads: self-intersections and spikes (numpy).

A fit that places its landmarks exactly can still fold the surface through itself or raise
narrow bumps between the landmarks. :func:`self_intersections` counts pairs of triangles that
cross (triangles sharing a vertex are not tested against each other), and :func:`spikes`
measures how far each vertex sticks out of its neighbours' average compared with a reference
surface of the same topology (the template, or the fit's first stage).
"""

from __future__ import annotations

import numpy as np

__all__ = ["self_intersections", "spikes", "separate_surfaces"]


def _tri_tri(p, q, eps=1e-12) -> np.ndarray:
    """Whether triangles ``p[i]`` and ``q[i]`` (each ``(n, 3, 3)``) intersect (Möller's test,
    strict: touching and coplanar pairs count as not intersecting)."""

    def plane(t):
        n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
        return n, -np.sum(n * t[:, 0], 1)

    n1, d1 = plane(p)
    dq = np.einsum("nj,nkj->nk", n1, q) + d1[:, None]
    n2, d2 = plane(q)
    dp = np.einsum("nj,nkj->nk", n2, p) + d2[:, None]
    scale_q = np.maximum(np.abs(dq).max(1), eps)
    scale_p = np.maximum(np.abs(dp).max(1), eps)
    sq = np.where(np.abs(dq) < 1e-9 * scale_q[:, None], 0.0, dq)
    sp = np.where(np.abs(dp) < 1e-9 * scale_p[:, None], 0.0, dp)
    cand = ~((sq > 0).all(1) | (sq < 0).all(1) | (sp > 0).all(1) | (sp < 0).all(1))
    cand &= ~((sq == 0).all(1))  # coplanar: ignored
    out = np.zeros(len(p), bool)
    idx = np.flatnonzero(cand)
    if not len(idx):
        return out
    p, q, sp, sq, n1, n2 = p[idx], q[idx], sp[idx], sq[idx], n1[idx], n2[idx]
    D = np.cross(n1, n2)

    def interval(t, s):
        # the segment of triangle t on the intersection line, as projections on D
        proj = np.einsum("nkj,nj->nk", t, D)
        lo = np.full(len(t), np.inf)
        hi = np.full(len(t), -np.inf)
        for a, b in ((0, 1), (1, 2), (2, 0)):
            sa, sb = s[:, a], s[:, b]
            cross = (sa * sb < 0)
            tt = np.where(cross, sa / np.where(cross, sa - sb, 1.0), 0.0)
            val = proj[:, a] + tt * (proj[:, b] - proj[:, a])
            lo = np.where(cross, np.minimum(lo, val), lo)
            hi = np.where(cross, np.maximum(hi, val), hi)
            on = sa == 0
            lo = np.where(on, np.minimum(lo, proj[:, a]), lo)
            hi = np.where(on, np.maximum(hi, proj[:, a]), hi)
        return lo, hi

    lo1, hi1 = interval(p, sp)
    lo2, hi2 = interval(q, sq)
    overlap = np.minimum(hi1, hi2) - np.maximum(lo1, lo2)
    tol = 1e-9 * np.maximum(np.abs(np.stack([lo1, hi1, lo2, hi2])).max(0), 1e-12)
    out[idx] = overlap > tol
    return out


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """The distinct values of a 1-D integer array, ascending: for rows encoded as one int64 each,
    the same rows in the same order as ``np.unique(rows, axis=0)``, in a fraction of its time
    (its sort of row records took ~1 s for the human head's candidate pairs; numpy's hashing
    ``np.unique`` of the keys about as long again)."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def _crossing_pairs(V: np.ndarray, F: np.ndarray, subset: np.ndarray, cell: float | None = None) -> np.ndarray:
    """``(n, 2)`` face indices (into ``F``) of crossing triangle pairs among ``subset``."""
    T = V[F[subset]]
    lo, hi = T.min(1), T.max(1)
    if not len(subset):
        return np.zeros((0, 2), np.int64)
    if cell is None:
        cell = 2.0 * float(np.mean(np.linalg.norm(T[:, 1] - T[:, 0], axis=1)))
    origin = lo.min(0)
    a = np.floor((lo - origin) / cell).astype(np.int64)
    b = np.floor((hi - origin) / cell).astype(np.int64)
    span = b - a + 1
    keys, owners = [], []
    for sx in range(int(span[:, 0].max())):
        for sy in range(int(span[:, 1].max())):
            for sz in range(int(span[:, 2].max())):
                m = (sx < span[:, 0]) & (sy < span[:, 1]) & (sz < span[:, 2])
                keys.append(a[m] + np.array([sx, sy, sz]))
                owners.append(np.flatnonzero(m))
    keys = np.concatenate(keys)
    owners = np.concatenate(owners)
    flat = (keys[:, 0] * 1_000_003 + keys[:, 1]) * 1_000_033 + keys[:, 2]
    order = np.argsort(flat, kind="stable")
    flat, owners = flat[order], owners[order]
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    ends = np.r_[starts[1:], len(flat)]
    big = (ends - starts) > 1
    pairs = []
    for s, e in zip(starts[big], ends[big]):
        m = owners[s:e]
        i, j = np.triu_indices(len(m), 1)
        pairs.append(np.stack([m[i], m[j]], 1))
    if not pairs:
        return np.zeros((0, 2), np.int64)
    n = len(subset)
    pairs = np.sort(np.concatenate(pairs), 1)
    key = _sorted_unique(pairs[:, 0] * n + pairs[:, 1])
    pairs = np.stack([key // n, key % n], 1)
    fa, fb = F[subset[pairs[:, 0]]], F[subset[pairs[:, 1]]]
    pairs = pairs[~(fa[:, :, None] == fb[:, None, :]).any((1, 2))]
    box = np.all((lo[pairs[:, 0]] <= hi[pairs[:, 1]]) & (lo[pairs[:, 1]] <= hi[pairs[:, 0]]), 1)
    pairs = pairs[box]
    hit = np.zeros(len(pairs), bool)
    for k in range(0, len(pairs), 200_000):
        chunk = pairs[k:k + 200_000]
        hit[k:k + 200_000] = _tri_tri(T[chunk[:, 0]], T[chunk[:, 1]])
    return subset[pairs[hit]]


def self_intersections(vertices: np.ndarray, faces: np.ndarray, *, cell: float | None = None) -> int:
    """Number of pairs of triangles that cross each other (adjacent triangles are not tested).

    Candidate pairs come from a uniform grid over the triangles' bounding boxes; each is then
    tested exactly (Möller's triangle–triangle test).

    Args:
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` triangles.
        cell: grid cell size (default: twice the mean edge length).

    Returns:
        The number of intersecting pairs.

    Example:
        >>> import numpy as np
        >>> from machlib.geometry import self_intersections
        >>> v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0.2, 0.2, -1], [0.2, 0.2, 1], [0.9, 0.9, 0]], float)
        >>> self_intersections(v, np.array([[0, 1, 2], [3, 4, 5]]))
        1
    """
    V = np.asarray(vertices, np.float64)
    F = np.asarray(faces, np.int64)
    return int(len(_crossing_pairs(V, F, np.arange(len(F)), cell)))


def _umbrella(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(V,)`` distance of each vertex from the mean of its neighbours."""
    V = np.asarray(vertices, np.float64)
    F = np.asarray(faces, np.int64)
    e = np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]])
    e = np.sort(e, 1)
    key = _sorted_unique(e[:, 0] * len(V) + e[:, 1])
    e = np.stack([key // len(V), key % len(V)], 1)
    acc = np.zeros_like(V)
    cnt = np.zeros(len(V))
    for a, b in ((0, 1), (1, 0)):
        np.add.at(acc, e[:, a], V[e[:, b]])
        np.add.at(cnt, e[:, a], 1)
    mean = acc / np.maximum(cnt, 1)[:, None]
    return np.linalg.norm(V - mean, axis=1)


def spikes(vertices: np.ndarray, reference: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """How much further each vertex sticks out of its neighbours than on a reference surface.

    ``|v − mean(neighbours)|`` on the fitted surface minus the same on the reference (same
    topology), per vertex, in the vertices' units: a bump raised by the fit shows as a large
    positive value; smoothing gives negative ones.

    Args:
        vertices: ``(V, 3)`` fitted positions.
        reference: ``(V, 3)`` reference positions (the template or the fit's first stage).
        faces: ``(F, 3)`` triangles.

    Returns:
        ``(V,)`` float64.
    """
    return _umbrella(vertices, faces) - _umbrella(reference, faces)


def separate_surfaces(vertices: np.ndarray, faces: np.ndarray, *, candidates: np.ndarray | None = None,
                      step: float = 1e-4, max_iterations: int = 10) -> tuple[np.ndarray, int]:
    """Push apart triangles that cross, by moving their vertices a little against their normals.

    Facing surfaces that have passed through each other (a morph pressing the lips together)
    separate when each retreats along its own outward normal: every iteration moves the vertices
    of the crossing triangles ``step`` inward (their one-ring neighbours half as far, so the
    surface stays smooth) until nothing crosses or ``max_iterations`` is reached.

    Args:
        vertices: ``(V, 3)`` positions (metres).
        faces: ``(F, 3)`` triangles, counter-clockwise from outside.
        candidates: optional indices of the faces that may cross (default: all).
        step: distance per iteration.
        max_iterations: iteration limit.

    Returns:
        ``(vertices, remaining)``: the moved positions and the number of crossing pairs left.
    """
    V = np.array(vertices, np.float64)
    F = np.asarray(faces, np.int64)
    cand = np.arange(len(F)) if candidates is None else np.asarray(candidates, np.int64)
    e = np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]])
    pairs = np.zeros((0, 2), np.int64)
    for _ in range(max_iterations):
        pairs = _crossing_pairs(V, F, cand)
        if not len(pairs):
            return V.astype(np.float32), 0
        fn = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
        n = np.zeros_like(V)
        for k in range(3):
            np.add.at(n, F[:, k], fn)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
        hot = np.zeros(len(V))
        hot[np.unique(F[pairs.ravel()])] = 1.0
        ring = np.zeros(len(V))
        for a, b in ((0, 1), (1, 0)):
            np.maximum.at(ring, e[:, a], hot[e[:, b]])
        w = np.maximum(hot, 0.5 * ring)
        V -= step * w[:, None] * n
    return V.astype(np.float32), int(len(pairs))
