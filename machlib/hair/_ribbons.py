"""Strands as thin triangle ribbons: hair that every mesh renderer draws.

glTF ``LINES`` are one pixel wide where they are drawn at all, and Blender imports them as loose
edges that do not render. A ribbon is each strand swept sideways into a strip of two triangles
per segment, tapering from root to tip. Its side direction is fixed in the head's frame, not
turned to a camera: perpendicular to the strand and to the direction from the head's centre, so
the strip lies flat on the hair's volume, seen face-on from outside. The strip's normal is the
outward direction, so a renderer's lighting shades the hair like the surface it forms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from .._errors import InputError

__all__ = ["strand_ribbons", "ribbon_faces"]


def _unit(v, eps=1e-12):
    return v / jnp.sqrt(jnp.maximum(jnp.sum(v * v, axis=-1, keepdims=True), eps))


@jax.jit
def strand_ribbons(
    points: Float[ArrayLike, "S P 3"],
    center: Float[ArrayLike, "3"],
    width: Float[ArrayLike, "P"],
) -> tuple[Float[Array, "S P 2 3"], Float[Array, "S P 2 3"]]:
    """Ribbon vertices and normals for strands (pure JAX; ``jit`` and ``vmap`` over heads).

    Point ``k`` of a strand becomes two vertices ``p_k ± ½ w_k s_k`` (``+`` first), where ``s_k`` is the unit
    vector perpendicular to the strand's tangent ``t_k`` (central differences, one-sided at the
    ends) and to the outward direction ``o_k = p_k − center``; the normal is ``s_k × t_k``
    oriented away from ``center``. Where the strand runs straight out from the centre the side
    direction falls back to one perpendicular to the tangent and the head's up axis.

    Args:
        points: ``(S, P, 3)`` strand points in metres, ``P ≥ 2``, root first.
        center: ``(3,)`` the head's centre (the outward direction is measured from it).
        width: ``(P,)`` ribbon width in metres at each point (e.g. tapering to the tip).

    Returns:
        ``(vertices, normals)``, each ``(S, P, 2, 3)`` in the dtype of ``points``: the left and
        right edge of each point.

    Raises:
        InputError: ``points`` is not ``(S, P ≥ 2, 3)``, or ``center``/``width`` have the wrong shape.

    Example:
        >>> import numpy as np
        >>> from machlib.hair import strand_ribbons
        >>> pts = np.array([[[0.0, 0.1, 0.0], [0.0, 0.1, 0.05]]])     # one strand along +z on top
        >>> v, n = strand_ribbons(pts, np.zeros(3), np.full(2, 0.002))
        >>> np.asarray(v[0, 0, :, 0], np.float64).round(4).tolist(), (np.asarray(n[0, 0, 0], np.float64) + 0.0).tolist()
        ([-0.001, 0.001], [0.0, 1.0, 0.0])
    """
    p = jnp.asarray(points)
    if p.ndim != 3 or p.shape[-1] != 3 or p.shape[1] < 2:
        raise InputError(f"strand_ribbons: points must have shape (S, P, 3) with P >= 2, got {p.shape}")
    c = jnp.asarray(center, p.dtype)
    w = jnp.asarray(width, p.dtype)
    if c.shape != (3,) or w.shape != (p.shape[1],):
        raise InputError(f"strand_ribbons: center must have shape (3,) and width ({p.shape[1]},), "
                         f"got {c.shape} and {w.shape}")
    ahead = jnp.concatenate([p[:, 1:], p[:, -1:]], axis=1)
    behind = jnp.concatenate([p[:, :1], p[:, :-1]], axis=1)
    t = _unit(ahead - behind)
    out = _unit(p - c)
    side = jnp.cross(t, out)
    up = jnp.broadcast_to(jnp.asarray([0.0, 1.0, 0.0], p.dtype), side.shape)
    fallback = jnp.cross(t, up)
    norm = jnp.sqrt(jnp.sum(side * side, axis=-1, keepdims=True))
    side = _unit(jnp.where(norm > 1e-3, side, fallback))
    normal = _unit(jnp.cross(side, t))
    normal = jnp.where(jnp.sum(normal * out, axis=-1, keepdims=True) < 0, -normal, normal)
    half = 0.5 * w[None, :, None] * side
    vertices = jnp.stack([p + half, p - half], axis=2)  # left, right of the outward view
    normals = jnp.stack([normal, normal], axis=2)
    return vertices, normals


def ribbon_faces(num_strands: int, num_points: int) -> Int[np.ndarray, "F 3"]:
    """Triangles of :func:`strand_ribbons`' vertices flattened to ``(S · P · 2, 3)``.

    Two triangles per segment, wound counter-clockwise seen from the outward normal's side.

    Args:
        num_strands: ``S``.
        num_points: ``P ≥ 2`` points per strand.

    Returns:
        ``(S · (P − 1) · 2, 3)`` int64 vertex indices.

    Example:
        >>> from machlib.hair import ribbon_faces
        >>> ribbon_faces(1, 2).tolist()
        [[0, 2, 1], [1, 2, 3]]
    """
    if num_points < 2 or num_strands < 0:
        raise InputError(f"ribbon_faces: need num_points >= 2 and num_strands >= 0, got {num_strands}, {num_points}")
    k = np.arange(num_points - 1)
    base = (np.arange(num_strands)[:, None] * num_points + k[None, :]) * 2  # left vertex of point k
    l0, r0, l1, r1 = base, base + 1, base + 2, base + 3
    tris = np.stack([np.stack([l0, l1, r0], -1), np.stack([r0, l1, r1], -1)], axis=2)
    return tris.reshape(-1, 3).astype(np.int64)
