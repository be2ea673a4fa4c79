"""Hair that rests on the body: strands draped over the shoulders, chest and back instead of
passing through the torso and the garment.

Hair is grown and fitted around the head alone (its collider is the head's :class:`HeadSDF`), so
long hair hangs straight down from the head and goes on through the shoulders and into the
shirt. :func:`body_sdf` builds a signed distance grid of what the hair may not enter below the
head (the body's skin, the garment and its details, each a closed surface), and
:func:`drape_strands` walks every strand from its root to its tip, follow-the-leader style: each
point keeps its segment's length and direction relative to the point before it until that
would put it within ``clearance`` of the body; it then slides over the surface (the inward part
of its direction removed, the rest falling downhill) and is pushed out to ``clearance``. Past the
contact the strand's direction returns to its own shape at the rate ``1 − stiffness`` per
segment, so hair that slid forward over a shoulder bends back down over the chest.

Positions are metres in head space (+y up, +z out of the face; see :doc:`/conventions`).
:func:`drape_strands` is pure JAX: jit-compiled, vmapped over strands, differentiable almost
everywhere (piecewise, like the trilinear grid it reads) and batchable with :func:`jax.vmap`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._errors import InputError
from .._mesh import Mesh
from ._growth import HeadSDF, _lookup, _push_out, _safe_norm, _strands_and_sdf, _unit, head_sdf_grid

__all__ = ["body_sdf", "drape_strands"]


def _drape_one(p, sdf: HeadSDF, centre, clearance, stiffness, spread, iterations: int):
    """One strand ``(P, 3)``: the root stays, every later point follows its predecessor."""
    seg = p[1:] - p[:-1]
    length = _safe_norm(seg)
    d0 = _unit(seg)
    down = jnp.asarray([0.0, -1.0, 0.0], p.dtype)
    grad = jax.grad(lambda q: _lookup(sdf, q))

    def step(carry, x):
        prev, bend = carry
        d_orig, l = x
        # the strand's own direction, bent by what the previous contact did to it
        d = _unit(d_orig + stiffness * bend)
        q = prev + l * d
        contact = _lookup(sdf, q) < clearance
        n = _unit(grad(q))
        # slide: drop the inward part of the direction and let it fall downhill over the surface;
        # where the surface is level under it (a shoulder's crest) the strand falls away from the
        # body's vertical axis through ``centre`` (front hair forward, back hair back)
        away = (q - centre) * jnp.asarray([0.0, 0.0, 1.0], p.dtype)
        fall = d + down + spread * _unit(away)
        fall = fall - jnp.minimum(jnp.dot(fall, n), 0.0) * n
        d_slide = _unit(jnp.where(_safe_norm(fall) > 1e-6, fall, n))
        q_slide = prev + l * d_slide

        def settle(_, r):
            r = _push_out(sdf, r, clearance, iters=2)
            return prev + l * _unit(r - prev)

        q_slide = jax.lax.fori_loop(0, iterations, settle, q_slide)
        new = jnp.where(contact, q_slide, q)
        d_new = _unit(new - prev)
        return (new, d_new - d_orig), new

    zero = jnp.zeros(3, p.dtype)
    _, rest = jax.lax.scan(step, (p[0], zero), (d0, length))
    return jnp.concatenate([p[:1], rest], 0)


@partial(jax.jit, static_argnames=("iterations",))
def _drape_batch(points, sdf, centre, clearance, stiffness, spread, iterations: int):
    return jax.vmap(lambda q: _drape_one(q, sdf, centre, clearance, stiffness, spread, iterations))(points)


def drape_strands(
    points: Float[ArrayLike, "S P 3"],
    sdf: HeadSDF,
    *,
    clearance: float | Float[ArrayLike, ""] = 0.003,
    stiffness: float | Float[ArrayLike, ""] = 0.5,
    spread: float | Float[ArrayLike, ""] = 1.5,
    centre: Float[ArrayLike, "3"] | None = None,
    iterations: int = 2,
) -> Float[Array, "S P 3"]:
    """Drape strands over a body: no point closer than ``clearance`` to it, lengths kept.

    Follow the leader from root to tip: point ``i`` is placed at its predecessor (already draped)
    plus its original segment, of the original length, in the original direction ``d``
    bent by the previous segment's deflection ``b`` (``d ← unit(d + stiffness·b)``; ``b`` is zero
    until a contact, so a strand that never comes near the body is returned unchanged). When that
    point would lie closer than ``clearance`` to the body (``sdf`` below ``clearance``), the
    strand slides instead: its direction becomes ``d + down + spread·a`` (``a``: front or back,
    away from the vertical axis through ``centre``, the tie-break on a level shoulder) with the
    part against the surface normal removed, and the point is pushed out to ``clearance`` along
    the SDF's gradient and brought back to the segment's length, ``iterations`` times. Roots
    never move.

    Args:
        points: ``(S, P, 3)`` strand points in metres (head space), roots first.
        sdf: the body's :class:`~machlib.hair.HeadSDF` (:func:`body_sdf`), negative inside.
        clearance: metres the strands keep from the body, ``≥ 0`` (a traced scalar is fine).
        stiffness: in ``[0, 1)``: how much of a contact's deflection the next segment keeps
            (``0``: the strand turns back to its own direction at once).
        spread: ``≥ 0``, weight of the front/back fall on level surfaces.
        centre: ``(3,)`` a point on the body's vertical axis (e.g. the head's centre); default
            the mean root.
        iterations: push-out and length rounds per contact, ``≥ 1``.

    Returns:
        ``(S, P, 3)`` draped points in the input's float dtype (float32 for integer input).

    Raises:
        InputError: points not ``(S, P, 3)`` with ``P ≥ 2``, or a bad option.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.hair import HeadSDF, drape_strands, sdf_lookup
        >>> ax = jnp.arange(41.0) * 0.01 - 0.2                   # the floor y = -0.1, body below it
        >>> sdf = HeadSDF(jnp.broadcast_to(ax[None, :, None] + 0.1, (41, 41, 41)), jnp.full(3, -0.2), 0.01)
        >>> hang = jnp.stack([jnp.zeros(9), -0.02 * jnp.arange(9.0), jnp.full(9, 0.05)], -1)[None]
        >>> out = drape_strands(hang, sdf, clearance=0.0, centre=jnp.zeros(3))
        >>> bool(sdf_lookup(sdf, out[0]).min() > -1e-3), round(float(out[0, -1, 2]), 3) > 0.05
        (True, True)
    """
    owner = "drape_strands"
    pts = _strands_and_sdf(owner, points, sdf, "body_sdf / head_sdf_grid")
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise InputError(f"{owner}: iterations must be an int >= 1, got {iterations!r}")
    for name, value, ok, what in (("clearance", clearance, lambda x: x >= 0, ">= 0"),
                                  ("stiffness", stiffness, lambda x: 0 <= x < 1, "in [0, 1)"),
                                  ("spread", spread, lambda x: x >= 0, ">= 0")):
        if not isinstance(value, jax.core.Tracer):
            if np.ndim(value) != 0 or not np.isfinite(value) or not ok(float(value)):
                raise InputError(f"{owner}: {name} must be a finite scalar {what}, got {value!r}")
    if centre is None:
        centre = jnp.mean(pts[:, 0], axis=0) if pts.shape[0] else jnp.zeros(3, pts.dtype)
    centre = jnp.asarray(centre, pts.dtype)
    if centre.shape != (3,):
        raise InputError(f"{owner}: centre must have shape (3,), got {centre.shape}")
    if pts.shape[0] == 0:
        return pts
    dt = pts.dtype
    return _drape_batch(pts, sdf, centre, jnp.asarray(clearance, dt), jnp.asarray(stiffness, dt),
                        jnp.asarray(spread, dt), int(iterations))


def body_sdf(
    meshes: Sequence[Mesh],
    *,
    above: float | None = None,
    spacing: float = 0.005,
    margin: float = 0.02,
) -> HeadSDF:
    """The signed distance grid of the union of closed meshes (a body and its clothes), for
    :func:`drape_strands`; numpy and scipy, built once per character.

    With ``above``, only the faces with a vertex at or above ``y = above`` are kept (the grid then
    covers only what long hair can reach, not a whole figure's legs); the cut is capped like any
    other hole (:func:`head_sdf_grid`). A garment shell lies a few millimetres outside the skin:
    the space between them counts as inside.

    Args:
        meshes: :class:`~machlib.Mesh` es in head space (each closed, or closed by capping its
            holes: the body's neck opening, a cut).
        above: lowest ``y`` in metres that matters (``None``: everything).
        spacing: grid spacing in metres, ``> 0``.
        margin: room around the kept faces' bounding box, metres, ``≥ 0``.

    Returns:
        The :class:`~machlib.hair.HeadSDF` (negative inside any of the meshes).

    Raises:
        InputError: no mesh, or no face left above ``above``; bad ``spacing`` / ``margin`` (see
            :func:`head_sdf_grid`).

    Example:
        >>> import numpy as np
        >>> from machlib import Mesh
        >>> from machlib.hair import body_sdf, sdf_lookup
        >>> v = np.array([[1., 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
        >>> f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4],
        ...               [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])    # an octahedron
        >>> sdf = body_sdf([Mesh(v, f, np.zeros((1, 2)), np.zeros_like(f))], spacing=0.1)
        >>> bool(sdf_lookup(sdf, np.zeros((1, 3)))[0] < 0)
        True
    """
    meshes = list(meshes)
    if not meshes:
        raise InputError("body_sdf: meshes is empty")
    vs, fs, n = [], [], 0
    for m in meshes:
        if not isinstance(m, Mesh):
            raise InputError(f"body_sdf: meshes must be Mesh objects, got {type(m).__name__}")
        v = np.asarray(m.vertices, np.float64)
        f = np.asarray(m.faces, np.int64)
        if above is not None:
            f = f[(v[f, 1] >= float(above)).any(1)]
        if not len(f):
            continue
        used, inv = np.unique(f, return_inverse=True)
        vs.append(v[used])
        fs.append(inv.reshape(-1, 3) + n)
        n += len(used)
    if not fs:
        raise InputError(f"body_sdf: no face at or above y = {above}")
    # each mesh is capped on its own (head_sdf_grid caps the union's holes loop by loop)
    V, F = np.concatenate(vs), np.concatenate(fs)
    return head_sdf_grid(Mesh(V, F, np.zeros((1, 2), np.float32), np.zeros_like(F)), spacing=spacing, margin=margin)
