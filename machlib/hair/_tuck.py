"""Ends that turn under: short hair whose tips curve in towards the head, as a cut bob's do.

Strands grown through a style's volume end where the volume does, a couple of centimetres off
the scalp and pointing down and out, so a short cut reads as a mop: its ends splay like a
brush, thin out (the strands' spacing grows with their distance from the head) and point
towards a viewer behind or beside the head. A real bob or pixie is cut so that its ends turn
under, towards the neck. :func:`tuck_tips` bends the last part of every strand towards the
head. Positions are metres in head space (see :doc:`/conventions`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._errors import InputError
from ._growth import HeadSDF, _in_blocks, _lookup, _safe_norm, _strands_and_sdf, _unit

__all__ = ["tuck_tips"]


def _tuck_one(p, sdf, amount, extent, clearance, full_length):
    """One strand ``(P, 3)``: its tip end moved towards the head along the SDF normal at the tip."""
    n_pts = p.shape[0]
    t = jnp.linspace(0.0, 1.0, n_pts, dtype=p.dtype)
    u = jnp.clip((t - (1.0 - extent)) / extent, 0.0, 1.0)
    w = u * u * (3.0 - 2.0 * u)  # smoothstep: 0 up to 1 − extent, 1 at the tip
    tip = p[-1]
    d, g = jax.value_and_grad(lambda q: _lookup(sdf, q))(tip)
    normal = _unit(g)
    length = jnp.sum(_safe_norm(jnp.diff(p, axis=0)))
    scale = amount * jnp.minimum(1.0, length / full_length)
    pull = scale * jnp.maximum(d - clearance, 0.0)  # metres the tip moves in
    return p - (pull * w)[:, None] * normal[None, :]


def tuck_tips(
    points: Float[ArrayLike, "S P 3"],
    sdf: HeadSDF,
    *,
    amount: float | Float[ArrayLike, ""] = 0.8,
    extent: float = 0.4,
    clearance: float | Float[ArrayLike, ""] = 0.003,
    full_length: float = 0.06,
) -> Float[Array, "S P 3"]:
    """Bend the ends of short strands in towards the head (ends turned under, as a bob is cut).

    For each strand, with ``d`` the head's signed distance at its tip and ``n`` the unit SDF
    gradient there (pointing out of the head), point ``k`` of ``P`` moves by

        ``−s · w_k · max(d − clearance, 0) · n``,  ``s = amount · min(1, L / full_length)``,

    ``w_k`` the smoothstep of ``(k/(P−1) − (1 − extent)) / extent`` clipped to ``[0, 1]`` (zero
    over the first ``1 − extent`` of the points, one at the tip) and ``L`` the strand's length.
    The tip ends ``amount`` of its way closer to ``clearance`` from the head; every point of the
    bend moves along the same direction, so the strand curves smoothly and keeps its own
    waviness. Short strands (``L < full_length``) bend less: a crop's centimetre-long ends
    would otherwise lie flat on the scalp. Roots never move. Strands are not lengthened or
    resampled (the bend shortens the vertical drop a little); clean-up resamples them.

    Pure JAX: jit- and vmap-safe, differentiable in ``points``, ``amount`` and ``clearance``
    almost everywhere (not where a tip lies exactly ``clearance`` from the head, nor across the
    SDF grid's cell faces).

    Args:
        points: ``(S, P, 3)`` strand points in metres (head space), roots first, ``P ≥ 2``.
        sdf: the head's :class:`~machlib.hair.HeadSDF` (:func:`~machlib.hair.head_sdf_grid`).
        amount: the fraction of the tip's distance (beyond ``clearance``) it moves in, in
            ``[0, 1]`` (a traced scalar is fine).
        extent: the fraction of the strand (by point index) that bends, in ``(0, 1]``.
        clearance: metres from the head that a tip is never pulled closer than, ``≥ 0``.
        full_length: strand length in metres from which the bend is full, ``> 0``.

    Returns:
        ``(S, P, 3)`` points in the input's float dtype (float32 for integer input).

    Raises:
        InputError: points not ``(S, P, 3)`` with ``P ≥ 2``, an ``sdf`` that is not a
            :class:`~machlib.hair.HeadSDF`, or a bad option.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.hair import HeadSDF, sdf_lookup, tuck_tips
        >>> ax = jnp.arange(41.0) * 0.01 - 0.2                   # the head: x < 0
        >>> sdf = HeadSDF(jnp.broadcast_to(ax[:, None, None], (41, 41, 41)), jnp.full(3, -0.2), 0.01)
        >>> s = jnp.linspace(0.0, 1.0, 9)
        >>> hang = jnp.stack([0.01 + 0.03 * s, -0.1 * s, jnp.zeros(9)], -1)[None]   # down and out
        >>> out = tuck_tips(hang, sdf, amount=0.5, clearance=0.0)
        >>> round(float(out[0, -1, 0]), 3), bool((out[0, 0] == hang[0, 0]).all())
        (0.02, True)
    """
    owner = "tuck_tips"
    pts = _strands_and_sdf(owner, points, sdf, "head_sdf_grid")
    for name, v, ok, what in (("amount", amount, lambda x: 0.0 <= x <= 1.0, "in [0, 1]"),
                              ("clearance", clearance, lambda x: x >= 0.0, ">= 0")):
        if isinstance(v, jax.core.Tracer):
            continue
        if isinstance(v, bool) or not np.ndim(v) == 0 or not np.isfinite(float(v)) or not ok(float(v)):
            raise InputError(f"{owner}: {name} must be a number {what}, got {v!r}")
    for name, v, ok, what in (("extent", extent, lambda x: 0.0 < x <= 1.0, "in (0, 1]"),
                              ("full_length", full_length, lambda x: x > 0.0, "> 0")):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not np.isfinite(float(v)) or not ok(float(v)):
            raise InputError(f"{owner}: {name} must be a number {what}, got {v!r}")
    if pts.shape[0] == 0:
        return pts
    dt = pts.dtype
    amount, clearance = jnp.asarray(amount, dt), jnp.asarray(clearance, dt)
    # one compiled program for every strand count (eagerly, vmap ran some thirty small programs,
    # compiled again for each photo's count)
    return _in_blocks(lambda block: _tuck_batch(block, sdf, amount, clearance, float(extent), float(full_length)),
                      pts, 1024, also=(sdf, amount, clearance))


@eqx.filter_jit
def _tuck_batch(pts, sdf, amount, clearance, extent: float, full_length: float):
    return jax.vmap(lambda p: _tuck_one(p, sdf, amount, extent, clearance, full_length))(pts)
