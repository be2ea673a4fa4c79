"""Clumps, layered tips and flyaways: grown strands that read as hair rather than a shell.

Strands grown through one smooth field end in one smooth surface with one even edge, which
reads as a helmet. Real hair gathers into clumps whose tips meet, is cut in layers, and has a
few strands that stray. :func:`clump_strands` adds all three to grown strands; roots never
move. Positions are metres in head space (see :doc:`/conventions`).
"""

from __future__ import annotations

import jax
import numpy as np
from jaxtyping import PRNGKeyArray
from scipy.spatial import cKDTree

from .._errors import InputError
from .._strands import Strands
from ._cleanup import _strand_points

__all__ = ["clump_strands"]

_FULL_CLUMP = 0.15  # strands at least this long (m) clump fully; shorter ones in proportion
_FULL_FLYAWAY = 0.2  # and stray fully


def _truncate(points: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Each strand cut to ``frac`` of its point-index length and resampled to the same count
    (grown strands are evenly spaced by arc length, so this is a cut by arc length)."""
    p = points.shape[1]
    u = np.linspace(0.0, 1.0, p)[None, :] * frac[:, None] * (p - 1)
    i0 = np.clip(np.floor(u).astype(np.int64), 0, p - 2)
    f = (u - i0)[..., None]
    a = np.take_along_axis(points, i0[..., None], axis=1)
    b = np.take_along_axis(points, (i0 + 1)[..., None], axis=1)
    return a * (1.0 - f) + b * f


def clump_strands(
    key: PRNGKeyArray,
    strands: Strands,
    *,
    clump_size: int = 24,
    strength: float = 0.5,
    exponent: float = 2.0,
    layers: float = 0.15,
    flyaways: float = 0.02,
    flyaway_scale: float = 0.012,
) -> Strands:
    """Gather strands into clumps with layered tips, and let a few fly away.

    1. Clumps: ``ceil(S / clump_size)`` strands, drawn at random, are clump centres; every
       strand joins the centre whose root is nearest to its own.
    2. Layers: each clump is cut to a random fraction in ``[1 − layers, 1]`` of its strands'
       lengths, each strand a further ``±layers/5`` (so the edge is ragged by clump, not by
       strand); the points are resampled to the same count.
    3. Clumping: point ``k`` of ``P`` moves towards the same point of its clump's centre strand
       by ``strength · min(1, L / 15 cm) · (k / (P − 1))^exponent`` of the way, ``L`` the
       strand's length (roots stay, tips meet; short hair clumps less, as short clumps read as
       spikes).
    4. Flyaways: a ``flyaways`` fraction of the strands get a smooth random offset growing as
       the square of the position along the strand, up to ``flyaway_scale · min(1, L / 20 cm)``
       metres at the tip.

    Deterministic for a key. numpy; not differentiable.

    Args:
        key: JAX PRNG key.
        strands: grown :class:`~machlib.hair.Strands` ``(S, P, 3)``, ``P ≥ 2``, evenly spaced
            along each strand (as :func:`~machlib.hair.grow_strands` and the clean-up give them).
        clump_size: mean strands per clump, ``≥ 1`` (``1``: no clumping).
        strength: how far tips move towards their clump's centre, in ``[0, 1]``.
        exponent: how fast the pull rises from root to tip, ``> 0``.
        layers: the largest cut of a clump, as a fraction of its length, in ``[0, 1)``.
        flyaways: fraction of strands that stray, in ``[0, 1]``.
        flyaway_scale: the strays' offset at the tip, metres, ``≥ 0``.

    Returns:
        :class:`~machlib.hair.Strands` with ``float32`` points of the same shape, colour and
        thickness.

    Raises:
        InputError: strands that are not :class:`~machlib.hair.Strands` or not finite, or bad
            option values.

    Example:
        >>> import jax
        >>> import numpy as np
        >>> from machlib.hair import Strands, clump_strands
        >>> t = np.linspace(0, 1, 8)[:, None]
        >>> pts = np.stack([np.hstack([t * 0 + x, -0.2 * t, t * 0]) for x in np.linspace(-0.05, 0.05, 40)])
        >>> out = clump_strands(jax.random.key(0), Strands(pts.astype(np.float32)), clump_size=10)
        >>> out.points.shape, bool(np.allclose(out.points[:, 0], pts[:, 0], atol=1e-6))
        ((40, 8, 3), True)
        >>> bool(np.std(out.points[:, -1, 0]) < np.std(pts[:, -1, 0]))   # tips gather
        True
    """
    owner = "clump_strands"
    pts = _strand_points(owner, strands)
    if isinstance(clump_size, bool) or not isinstance(clump_size, (int, np.integer)) or clump_size < 1:
        raise InputError(f"{owner}: clump_size must be an int >= 1, got {clump_size!r}")
    for name, v, ok, what in (("strength", strength, lambda x: 0 <= x <= 1, "in [0, 1]"),
                              ("exponent", exponent, lambda x: x > 0, "> 0"),
                              ("layers", layers, lambda x: 0 <= x < 1, "in [0, 1)"),
                              ("flyaways", flyaways, lambda x: 0 <= x <= 1, "in [0, 1]"),
                              ("flyaway_scale", flyaway_scale, lambda x: x >= 0, ">= 0")):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not ok(float(v)):
            raise InputError(f"{owner}: {name} must be a number {what}, got {v!r}")
    s, p, _ = pts.shape
    if s == 0:
        return strands
    seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n_clumps = max(1, -(-s // int(clump_size)))
    centres = rng.choice(s, size=n_clumps, replace=False)
    _, clump = cKDTree(pts[centres, 0]).query(pts[:, 0])
    # layers: a cut per clump, a little more per strand
    cut = 1.0 - float(layers) * rng.random(n_clumps)
    frac = np.clip(cut[clump] + 0.2 * float(layers) * (rng.random(s) - 0.5), 0.05, 1.0)
    pts = _truncate(pts, frac)
    # clumping towards the centre strand, rising towards the tip; short hair clumps less (short
    # clumps read as spikes)
    t = np.linspace(0.0, 1.0, p)
    length = np.linalg.norm(np.diff(pts, axis=1), axis=2).sum(1)
    soft = np.minimum(1.0, length / _FULL_CLUMP)
    pull = float(strength) * soft[:, None] * t[None, :] ** float(exponent)
    guide = pts[centres[clump]]
    pts = pts + pull[..., None] * (guide - pts)
    # flyaways
    n_fly = round(float(flyaways) * s)
    if n_fly and float(flyaway_scale) > 0:
        who = rng.choice(s, size=n_fly, replace=False)
        d = rng.normal(size=(n_fly, 2, 3))
        shape = np.stack([t**2, np.sin(np.pi * t) * t], 0)  # two smooth modes
        scale = float(flyaway_scale) * np.minimum(1.0, length[who] / _FULL_FLYAWAY)
        pts[who] += scale[:, None, None] * np.einsum("mp,fmc->fpc", shape, d) / np.sqrt(2.0)
    return Strands(pts.astype(np.float32),
                   None if strands.color is None else np.asarray(strands.color, np.float32),
                   None if strands.thickness is None else np.asarray(strands.thickness, np.float32))
