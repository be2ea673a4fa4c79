"""Closest points on triangles (numpy), shared by the hair's distance fields and the landmark
table's surface snapping."""

from __future__ import annotations

import numpy as np

__all__ = ["closest_barycentrics"]


def closest_barycentrics(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric weights of the point of each triangle ``abc`` closest to ``p`` (Ericson's
    region tests, vectorised; rows broadcast, e.g. one point against many triangles).

    Args:
        p, a, b, c: ``(N, 3)`` (or broadcastable) float arrays.

    Returns:
        ``(N, 3)`` weights of ``a``, ``b``, ``c`` (non-negative, summing to one).
    """
    p, a, b, c = np.broadcast_arrays(*(np.asarray(x, np.float64) for x in (p, a, b, c)))
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = np.sum(ab * ap, -1), np.sum(ac * ap, -1)
    bp = p - b
    d3, d4 = np.sum(ab * bp, -1), np.sum(ac * bp, -1)
    cp = p - c
    d5, d6 = np.sum(ab * cp, -1), np.sum(ac * cp, -1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    den = np.where(np.abs(va + vb + vc) > 1e-300, va + vb + vc, 1.0)
    v, w = vb / den, vc / den
    out = np.stack([1.0 - v - w, v, w], -1)  # interior
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ab = d1 / (d1 - d3)
        t_ac = d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
    zero, one = np.zeros_like(d1), np.ones_like(d1)
    cond = [
        (d1 <= 0) & (d2 <= 0), (d3 >= 0) & (d4 <= d3), (d6 >= 0) & (d5 <= d6),
        (vc <= 0) & (d1 >= 0) & (d3 <= 0), (vb <= 0) & (d2 >= 0) & (d6 <= 0),
        (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0),
    ]
    vals = [(one, zero, zero), (zero, one, zero), (zero, zero, one), (1 - t_ab, t_ab, zero),
            (1 - t_ac, zero, t_ac), (zero, 1 - t_bc, t_bc)]
    for m, val in reversed(list(zip(cond, vals))):  # the first matching region wins
        out = np.where(m[..., None], np.stack(val, -1), out)
    return np.nan_to_num(out)
