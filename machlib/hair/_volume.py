"""Volumetric hair: occupancy and orientation grids, voxelisation of strands, lifting a portrait's 2D
hair mask and orientation map into a 3D prior, and strand growth through the volume.

Make-A-Character §2.5 grows strands from a 3D occupancy field and a 3D orientation field (there
predicted by NeuralHDHair). machlib has no such network: the fields come from a procedural style
prior (:func:`style_volume` voxelises the strands of a :class:`~machlib.hair.HairStyle`), optionally
corrected by a portrait's 2D evidence (:func:`lift_hair`: silhouette carving and filling, and the
2D orientation lifted onto the visible hair surface); :func:`grow_from_volume` then grows strands
through the fields with :func:`~machlib.hair.grow_strands`.

Grids use :class:`~machlib.hair.HeadSDF`'s layout: array axes ``(X, Y, Z)`` are head-space
``x, y, z`` (``indexing="ij"``), node ``(i, j, k)`` is the centre of a voxel at
``origin + spacing · (i, j, k)``. Positions are metres in head space (+y up, +z out of the face;
see :doc:`/conventions`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import InputError
from .._jit import one_shot_jit
from .._camera import Camera, rotation_matrix
from ..geometry import default_template
from ._cleanup import resample_uniform
from ._growth import (
    HeadSDF,
    _lookup,
    _resolve_geometry,
    _unit,
    grow_strands,
    scalp_roots,
)
from .._strands import DEFAULT_HAIR_WIDTH, Strands

__all__ = ["HairVolume", "strands_to_volume", "volume_lookup", "lift_hair", "grow_from_volume", "style_volume"]

#: default voxelisation box (metres, head space) when neither ``origin``/``shape`` nor ``bounds`` is given
_DEFAULT_BOUNDS = ((-0.16, -0.45, -0.22), (0.16, 0.20, 0.20))


class HairVolume(eqx.Module):
    """Hair as a voxel grid: occupancy and a root→tip orientation per voxel.

    The layout matches :class:`~machlib.hair.HeadSDF`: axis 0 is head-space ``x``, axis 1 ``y``,
    axis 2 ``z``; voxel ``(i, j, k)`` has its centre at ``origin + spacing · (i, j, k)``.

    Attributes:
        occupancy: ``(X, Y, Z)`` float in ``[0, 1]``; ``1`` inside the hair.
        orientation: ``(X, Y, Z, 3)`` float unit vectors (root → tip), zero where empty.
        origin: ``(3,)`` head-space centre of voxel ``(0, 0, 0)`` in metres.
        spacing: voxel size in metres (static).

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.hair import HairVolume
        >>> v = HairVolume(jnp.zeros((4, 5, 6)), jnp.zeros((4, 5, 6, 3)), jnp.zeros(3), 0.01)
        >>> v.shape
        (4, 5, 6)
    """

    occupancy: Float[Array, "X Y Z"]
    orientation: Float[Array, "X Y Z 3"]
    origin: Float[Array, "3"]
    spacing: float = eqx.field(static=True)

    def __check_init__(self):
        s = tuple(jnp.shape(self.occupancy))
        if len(s) != 3 or tuple(jnp.shape(self.orientation)) != s + (3,) or jnp.shape(self.origin) != (3,):
            raise InputError(
                f"HairVolume: need occupancy (X, Y, Z), orientation (X, Y, Z, 3) and origin (3,), got "
                f"{s}, {tuple(jnp.shape(self.orientation))} and {tuple(jnp.shape(self.origin))}"
            )
        if not float(self.spacing) > 0:
            raise InputError(f"HairVolume: spacing must be > 0, got {self.spacing!r}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """The grid shape ``(X, Y, Z)``."""
        return tuple(int(k) for k in jnp.shape(self.occupancy))

    def centers(self) -> Float[Array, "X Y Z 3"]:
        """Head-space voxel centres in metres, ``(X, Y, Z, 3)``."""
        axes = [self.origin[a] + self.spacing * jnp.arange(n, dtype=self.origin.dtype) for a, n in enumerate(self.shape)]
        return jnp.stack(jnp.meshgrid(*axes, indexing="ij"), -1)


# ---------------------------------------------------------------------------------------------
# Grid helpers (traced values: no float annotations)

_OFFSETS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], np.int32)


def _corners(g, shape):
    """The 8 trilinear corners of continuous grid coordinates ``g`` (3,): indices (8, 3) clipped
    into the grid, and weights (8,) that are zero for corners outside it."""
    i0 = jnp.floor(g)
    fr = g - i0
    idx = i0.astype(jnp.int32)[None, :] + _OFFSETS
    off = jnp.asarray(_OFFSETS, g.dtype)
    w = jnp.prod(jnp.where(off > 0, fr[None, :], 1.0 - fr[None, :]), axis=1)
    hi = jnp.asarray(shape, jnp.int32) - 1
    valid = jnp.all((idx >= 0) & (idx <= hi), axis=1)
    return jnp.clip(idx, 0, hi), jnp.where(valid, w, 0.0)


def _gauss_matrix(n: int, sigma, passes: int):
    """(n, n) matrix of ``passes`` 1D Gaussian blurs with zero padding (numpy, static)."""
    r = max(1, int(math.ceil(2.5 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    m = np.zeros((n, n))
    for i, kv in enumerate(k):
        m += kv * np.eye(n, k=i - r)
    return np.linalg.matrix_power(m, passes).astype(np.float32)


def _blur3(x, sigma, passes: int = 1):
    """Separable Gaussian blur (zero padding) over the first three axes; ``sigma`` in voxels (static).
    Each axis is one small matrix product, which compiles fast."""
    if sigma <= 0:
        return x
    for a in range(3):
        m = jnp.asarray(_gauss_matrix(x.shape[a], sigma, passes), x.dtype)
        x = jnp.moveaxis(jnp.tensordot(m, x, axes=([1], [a]), precision=jax.lax.Precision.HIGHEST), 0, a)
    return x


def _check_grid(owner, spacing, origin, shape, bounds):
    if not (isinstance(spacing, (int, float, np.floating)) and float(spacing) > 0):
        raise InputError(f"{owner}: spacing must be a number > 0, got {spacing!r}")
    spacing = float(spacing)
    if (origin is None) != (shape is None):
        raise InputError(f"{owner}: give origin and shape together")
    if origin is not None:
        if bounds is not None:
            raise InputError(f"{owner}: give either origin/shape or bounds, not both")
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or min(shape) < 2:
            raise InputError(f"{owner}: shape must be 3 ints >= 2, got {shape!r}")
        origin = jnp.asarray(origin)
        if origin.shape != (3,):
            raise InputError(f"{owner}: origin must have shape (3,), got {origin.shape}")
        return spacing, origin, shape
    lo, hi = (np.asarray(b, np.float64) for b in (_DEFAULT_BOUNDS if bounds is None else bounds))
    if lo.shape != (3,) or hi.shape != (3,) or not np.all(hi > lo):
        raise InputError(f"{owner}: bounds must be ((3,), (3,)) with hi > lo, got {bounds!r}")
    shape = tuple(int(s) for s in np.ceil((hi - lo) / spacing).astype(int) + 1)
    if int(np.prod(shape)) > 16_000_000:
        raise InputError(f"{owner}: a grid of {shape} voxels is too large; raise spacing")
    return spacing, jnp.asarray(lo, jnp.float32), shape


# ---------------------------------------------------------------------------------------------
# Voxelisation


@partial(jax.jit, static_argnames=("spacing", "shape", "smoothing", "saturation"))
def _voxelise(points, origin, *, spacing, shape, smoothing, saturation):
    dtype = points.dtype
    seg = points[:, 1:] - points[:, :-1]  # (S, P-1, 3), root → tip
    ln = _safe_len(seg)
    # two samples per segment (at 1/4 and 3/4) so segments about a voxel long splat evenly
    samples = jnp.concatenate([points[:, :-1] + 0.25 * seg, points[:, :-1] + 0.75 * seg], 0).reshape(-1, 3)
    vec = jnp.concatenate([seg, seg], 0).reshape(-1, 3) * 0.5  # length-weighted tangent
    w = jnp.concatenate([ln, ln], 0).reshape(-1) * 0.5
    g = (samples - origin.astype(dtype)) / spacing
    idx, cw = jax.vmap(lambda q: _corners(q, shape))(g)  # (M, 8, 3), (M, 8)
    ix, iy, iz = idx[..., 0].reshape(-1), idx[..., 1].reshape(-1), idx[..., 2].reshape(-1)
    dens = jnp.zeros(shape, dtype).at[ix, iy, iz].add((cw * w[:, None]).reshape(-1))
    tang = jnp.zeros(shape + (3,), dtype).at[ix, iy, iz].add((cw[..., None] * vec[:, None, :]).reshape(-1, 3))
    dens = _blur3(dens, smoothing)
    tang = _blur3(tang, smoothing)
    # normalise by the density a typical segment sees (sum D² / sum D): independent of strand count
    ref = jnp.sum(dens * dens) / jnp.maximum(jnp.sum(dens), jnp.finfo(dtype).tiny)
    occ = jnp.clip(dens / jnp.maximum(saturation * ref, jnp.finfo(dtype).tiny), 0.0, 1.0)
    orient = _unit(tang, 1e-9) * (occ > 1e-3)[..., None]
    return occ, orient


def _safe_len(x):
    n2 = jnp.sum(x * x, -1)
    ok = n2 > 0
    return jnp.where(ok, jnp.sqrt(jnp.where(ok, n2, 1.0)), 0.0)


def strands_to_volume(
    points: Float[ArrayLike, "S P 3"],
    *,
    spacing: float = 0.006,
    origin: Float[ArrayLike, "3"] | None = None,
    shape: tuple[int, int, int] | None = None,
    bounds: tuple | None = None,
    smoothing: float = 1.0,
    saturation: float = 0.5,
) -> HairVolume:
    """Voxelise strands into occupancy and orientation grids.

    Every segment is splatted trilinearly at two points (a quarter and three quarters along it)
    with its length as weight, giving a hair density (metres of hair per voxel), and its vector
    (root → tip) into a tangent grid. Both are blurred with a Gaussian of ``smoothing`` voxels.
    Occupancy is the density divided by ``saturation`` times the typical density
    (``Σ D² / Σ D``, the density the average hair segment sits in), clipped to ``[0, 1]``, so it
    does not depend on the number of strands; orientation is the normalised blurred tangent
    (the density-weighted mean direction), zero where the occupancy is below ``10⁻³``.

    The grid is ``origin`` and ``shape`` when given, else it covers ``bounds``
    ``((xmin, ymin, zmin), (xmax, ymax, zmax))``, else a default box around the head
    (x ±0.16, y −0.45…0.20, z −0.22…0.20 m). The shape is static: the work is jit-compiled once
    per grid shape, and the function can be ``jax.vmap``-ed over a batch of strand sets
    ``(B, S, P, 3)`` (the grid options fixed).

    Args:
        points: ``(S, P, 3)`` strand points in metres, head space, root first.
        spacing: voxel size in metres, ``> 0``.
        origin: ``(3,)`` centre of voxel ``(0, 0, 0)``; with ``shape``.
        shape: ``(X, Y, Z)`` grid shape; with ``origin``.
        bounds: ``(lo, hi)`` head-space box to cover instead of ``origin``/``shape``.
        smoothing: Gaussian blur standard deviation in voxels, ``≥ 0``.
        saturation: fraction of the typical density that counts as fully occupied, ``> 0``.

    Returns:
        The :class:`HairVolume` (in the points' float dtype).

    Raises:
        InputError: bad shapes or option values.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.hair import strands_to_volume
        >>> line = jnp.stack([jnp.zeros(11), jnp.linspace(0.0, -0.1, 11), jnp.zeros(11)], 1)[None]
        >>> v = strands_to_volume(line, spacing=0.01, bounds=((-0.05, -0.15, -0.05), (0.05, 0.05, 0.05)))
        >>> v.shape, round(float(v.occupancy[5, 10, 5]), 2), [round(float(c), 2) for c in v.orientation[5, 10, 5]]
        ((11, 21, 11), 1.0, [0.0, -1.0, 0.0])
    """
    points = jnp.asarray(points)
    if not jnp.issubdtype(points.dtype, jnp.floating):
        points = points.astype(jnp.float32)
    if points.ndim != 3 or points.shape[-1] != 3 or points.shape[1] < 2:
        raise InputError(f"strands_to_volume: points must have shape (S, P >= 2, 3), got {points.shape}")
    spacing, origin, shape = _check_grid("strands_to_volume", spacing, origin, shape, bounds)
    if not float(smoothing) >= 0 or not float(saturation) > 0:
        raise InputError(
            f"strands_to_volume: need smoothing >= 0 and saturation > 0, got {smoothing!r}, {saturation!r}"
        )
    occ, orient = _voxelise(
        points, origin.astype(points.dtype), spacing=spacing, shape=shape, smoothing=float(smoothing),
        saturation=float(saturation),
    )
    return HairVolume(occ, orient, origin.astype(points.dtype), spacing)


# ---------------------------------------------------------------------------------------------
# Lookup


def _vlookup(occ, orient, origin, spacing, p):
    """Trilinear occupancy () and (unnormalised) orientation (3,) at one point; zero outside."""
    dtype = jnp.result_type(p.dtype, jnp.float32)
    g = (p - origin.astype(dtype)) / spacing
    idx, w = _corners(g, occ.shape)
    o = jnp.sum(w * occ[idx[:, 0], idx[:, 1], idx[:, 2]].astype(dtype))
    d = jnp.sum(w[:, None] * orient[idx[:, 0], idx[:, 1], idx[:, 2]].astype(dtype), 0)
    return o, d


def volume_lookup(volume: HairVolume, points: Float[ArrayLike, "N 3"]) -> tuple[Float[Array, " N"], Float[Array, "N 3"]]:
    """Occupancy and orientation at points, by trilinear interpolation (zero outside the grid).

    Differentiable in ``points`` (piecewise trilinear); jit- and vmap-safe; computes in the
    points' float dtype (float64 under x64).

    Args:
        volume: the :class:`HairVolume`.
        points: ``(N, 3)`` head-space positions in metres.

    Returns:
        ``(occupancy (N,), direction (N, 3))``: the direction is the interpolated orientation
        normalised to a unit vector (zero where it vanishes).

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.hair import HairVolume, volume_lookup
        >>> occ = jnp.zeros((3, 3, 3)).at[1, 1, 1].set(1.0)
        >>> ori = jnp.zeros((3, 3, 3, 3)).at[..., 1].set(-1.0)
        >>> o, d = volume_lookup(HairVolume(occ, ori, jnp.zeros(3), 0.1), jnp.array([[0.15, 0.1, 0.1]]))
        >>> round(float(o[0]), 2), [round(float(c), 2) for c in d[0]]
        (0.5, [0.0, -1.0, 0.0])
    """
    points = jnp.asarray(points)
    if points.ndim != 2 or points.shape[-1] != 3:
        raise InputError(f"volume_lookup: points must have shape (N, 3), got {points.shape}")
    if not jnp.issubdtype(points.dtype, jnp.floating):
        points = points.astype(jnp.float32)
    return _volume_lookup(volume.occupancy, volume.orientation, volume.origin, volume.spacing, points)


@partial(jax.jit, static_argnums=3)
def _volume_lookup(occ, orient, origin, spacing, points):
    """:func:`volume_lookup`'s work as one program (eagerly, each operation compiled its own:
    about forty in a cold make)."""
    o, d = jax.vmap(lambda p: _vlookup(occ, orient, origin, spacing, p))(points)
    return o, _unit(d, 1e-12)


# ---------------------------------------------------------------------------------------------
# Lifting 2D evidence


def _pool(img, b: int, hb: int, wb: int, op: str):
    h, w = img.shape
    img = jnp.pad(img, ((0, hb * b - h), (0, wb * b - w)))
    img = img.reshape(hb, b, wb, b)
    return img.max((1, 3)) if op == "max" else img.mean((1, 3))


def _filter2(img, r: int, op: str):
    init = -jnp.inf if op == "max" else jnp.inf
    fn = jax.lax.max if op == "max" else jax.lax.min
    return jax.lax.reduce_window(img, init, fn, (2 * r + 1, 2 * r + 1), (1, 1), "SAME")


def _head_depth(sdf, camera, hb, wb, b, n_steps: int):
    """Camera depth of the head surface at block-pixel centres (inf where the ray misses)."""
    R = rotation_matrix(camera.rotation)
    centre = -R.T @ camera.translation
    xs = (jnp.arange(wb) + 0.5) * b
    ys = (jnp.arange(hb) + 0.5) * b
    X, Y = jnp.meshgrid(xs, ys)  # (hb, wb)
    dc = jnp.stack([(X - camera.principal[0]) / camera.focal[0], (Y - camera.principal[1]) / camera.focal[1],
                    jnp.ones_like(X)], -1)
    dw = dc @ R  # world direction per unit camera depth
    scale = jnp.linalg.norm(dw, axis=-1)

    def trace(d, s):
        def body(_, t):
            dist = _lookup(sdf, centre + t * d)
            return t + jnp.maximum(dist, 0.0) / s

        t = jax.lax.fori_loop(0, n_steps, body, jnp.asarray(0.05, d.dtype))
        hit = _lookup(sdf, centre + t * d) < 2e-3
        return jnp.where(hit, t, jnp.inf)

    return jax.vmap(jax.vmap(trace))(dw, scale)


@one_shot_jit(static_argnames=("spacing", "block", "dilate", "shell", "surface", "smoothing", "passes",
                               "n_steps", "threshold"))
def _lift(occ, orient, origin, camera, mask, carve, theta, conf, sdf, occluder, *, spacing, block, dilate, shell,
          surface, smoothing, passes, n_steps, threshold):
    dtype = occ.dtype
    shape = occ.shape
    h, w = mask.shape
    b = block
    hb, wb = -(-h // b), -(-w // b)
    # image evidence at block resolution (a block is about one voxel's footprint)
    m_blk = _pool(mask.astype(dtype), b, hb, wb, "mean")
    m_carve = _filter2(_pool(carve.astype(dtype), b, hb, wb, "max"), dilate, "max")
    wgt = (conf * mask).astype(dtype)
    c2 = _pool(wgt * jnp.cos(2 * theta), b, hb, wb, "mean")
    s2 = _pool(wgt * jnp.sin(2 * theta), b, hb, wb, "mean")
    w_blk = _pool(wgt, b, hb, wb, "mean")
    th_blk = 0.5 * jnp.arctan2(s2, c2)
    conf_blk = jnp.clip(_safe_len(jnp.stack([c2, s2], -1)) / jnp.maximum(w_blk, 1e-12), 0.0, 1.0) * jnp.clip(w_blk, 0, 1)
    head = _head_depth(sdf, camera, hb, wb, b, n_steps)  # (hb, wb)
    R = rotation_matrix(camera.rotation).astype(dtype)
    if occluder is not None:  # e.g. the body below the chin: it hides what lies behind the head's centre
        centre = sdf.origin.astype(dtype) + 0.5 * sdf.spacing * (jnp.asarray(sdf.values.shape, dtype) - 1)
        zc = (R @ centre + camera.translation.astype(dtype))[2]
        hides = _pool(occluder.astype(dtype), b, hb, wb, "mean") > 0.5
        head = jnp.where(hides, jnp.minimum(head, zc), head)

    # voxels in camera space and block pixels
    axes = [origin[a] + spacing * jnp.arange(n, dtype=dtype) for a, n in enumerate(shape)]
    P = jnp.stack(jnp.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    pc = P @ R.T + camera.translation.astype(dtype)
    z = pc[:, 2]
    zs = jnp.where(jnp.abs(z) < 1e-6, 1e-6, z)
    px = pc[:, 0] / zs * camera.focal[0] + camera.principal[0]
    py = pc[:, 1] / zs * camera.focal[1] + camera.principal[1]
    inside = (z > 0) & (px >= 0) & (px < w) & (py >= 0) & (py < h)
    bi = jnp.clip(jnp.floor(py / b).astype(jnp.int32), 0, hb - 1)
    bj = jnp.clip(jnp.floor(px / b).astype(jnp.int32), 0, wb - 1)
    visible = inside & (z < head[bi, bj])  # in front of the head, or beside it
    sdf_v = jax.vmap(lambda q: _lookup(sdf, q))(P)
    occ_f = occ.reshape(-1)

    # (a) carve: visible voxels outside the dilated hair mask lose occupancy
    occ_c = occ_f * jnp.where(visible, m_carve[bi, bj], 1.0)
    # (b) fill: visible, empty voxels inside the mask within `shell` of the head or the prior hair
    r = max(1, int(round(shell / spacing)))
    near_hair = jax.lax.reduce_window(
        (occ_c.reshape(shape) >= threshold).astype(dtype), 0.0, jax.lax.max, (2 * r + 1,) * 3, (1,) * 3, "SAME"
    ).reshape(-1)
    near_head = (sdf_v > 0) & (sdf_v < shell)
    # only where no visible prior hair covers the block: the prior is already there elsewhere
    hit = jnp.zeros((hb, wb), dtype).at[bi, bj].max(jnp.where(visible & (occ_c >= threshold), 1.0, 0.0))
    bare = hit[bi, bj] < 0.5
    fill = jnp.where(visible & bare & (sdf_v > 0) & ((near_hair > 0) | near_head), m_blk[bi, bj], 0.0)
    occ_n = jnp.maximum(occ_c, fill)

    # orientation of filled voxels: the prior's, diffused (occupancy-weighted Gaussian average)
    spread = _blur3(orient * occ[..., None], smoothing, passes).reshape(-1, 3)
    prior = _unit(jnp.where((_safe_len(orient.reshape(-1, 3)) > 0)[:, None], orient.reshape(-1, 3), spread), 1e-9)

    # (c) visible surface: occupied voxels within `surface` of the front-most occupied voxel at their block
    occupied = visible & (occ_n >= threshold)
    front = jnp.full((hb, wb), jnp.inf, dtype).at[bi, bj].min(jnp.where(occupied, z, jnp.inf))
    front = _filter2(front, 1, "min")
    on_surf = occupied & (z <= front[bi, bj] + surface)
    # lift θ: the unit vector ⊥ the view ray whose image direction is (cos θ, sin θ), scaled to the
    # prior's in-plane magnitude, the prior's along-ray component kept, sign agreeing with the prior
    ray = _unit(pc)  # camera frame
    o_c = prior @ R.T
    along = jnp.sum(o_c * ray, -1, keepdims=True)
    o_perp = o_c - along * ray
    mag = _safe_len(o_perp)[:, None]
    # basis of the plane ⊥ ray and the projection Jacobian (camera frame) applied to it
    e1 = _unit(jnp.cross(ray, jnp.array([0.0, 1.0, 0.0], dtype)), 1e-9)
    e2 = jnp.cross(ray, e1)

    def jac(v):
        return jnp.stack([
            camera.focal[0] * (v[:, 0] - pc[:, 0] / zs * v[:, 2]) / zs,
            camera.focal[1] * (v[:, 1] - pc[:, 1] / zs * v[:, 2]) / zs,
        ], -1)

    j1, j2 = jac(e1), jac(e2)
    t = th_blk[bi, bj]
    tx, ty = jnp.cos(t), jnp.sin(t)
    det = j1[:, 0] * j2[:, 1] - j2[:, 0] * j1[:, 1]
    det = jnp.where(jnp.abs(det) > 1e-12, det, 1e-12)
    a1 = (tx * j2[:, 1] - ty * j2[:, 0]) / det
    a2 = (j1[:, 0] * ty - j1[:, 1] * tx) / det
    u = _unit(a1[:, None] * e1 + a2[:, None] * e2, 1e-12)
    u = jnp.where(jnp.sum(u * o_perp, -1, keepdims=True) < 0, -u, u)
    lifted_c = along * ray + mag * u
    lifted = lifted_c @ R  # back to head space
    c = jnp.where(on_surf, conf_blk[bi, bj], 0.0)[:, None]
    new = _unit((1.0 - c) * prior + c * lifted, 1e-9)
    # diffuse the change into the neighbouring voxels
    delta = ((new - prior) * (c > 0)).reshape(shape + (3,))
    ws = (c[:, 0] > 0).astype(dtype).reshape(shape)
    d_s = _blur3(delta, smoothing, passes).reshape(-1, 3)
    w_s = _blur3(ws, smoothing, passes).reshape(-1)
    fall = jnp.clip(2.0 * w_s, 0.0, 1.0)[:, None]
    diffused = _unit(prior + fall * d_s / jnp.maximum(w_s, 1e-6)[:, None], 1e-9)
    out = jnp.where(c > 0, new, diffused) * (occ_n > 1e-3)[:, None]
    return occ_n.reshape(shape), out.reshape(shape + (3,))


def lift_hair(
    volume: HairVolume,
    camera: Camera,
    hair_mask: Float[ArrayLike, "Hi Wi"],
    theta: Float[ArrayLike, "Hi Wi"],
    confidence: Float[ArrayLike, "Hi Wi"],
    *,
    head_sdf: HeadSDF | None = None,
    block: int | None = None,
    dilate: int = 1,
    shell: float = 0.015,
    surface: float = 0.012,
    smoothing: float = 1.0,
    passes: int = 2,
    threshold: float = 0.5,
    carve_mask: Float[ArrayLike, "Hi Wi"] | None = None,
    occluder: Float[ArrayLike, "Hi Wi"] | None = None,
) -> HairVolume:
    """Lift a portrait's 2D hair mask and orientation map into a prior :class:`HairVolume`.

    The image evidence is pooled into blocks of ``block × block`` pixels, about one voxel's
    footprint (default: ``floor(f · spacing / distance)`` for the camera's focal length ``f`` and
    its distance to the volume's centre): the mask's mean and max, and the orientation as a
    confidence-weighted mean of the doubled angle (``θ`` is undirected). The head's depth per
    block is found by sphere tracing ``head_sdf`` along the camera rays. A voxel is *visible*
    when it projects inside the image and lies in front of the head (camera depth smaller than
    the head's at its block) or beside it (its ray misses the head); voxels hidden by the head
    keep their prior values. With ``occluder`` (e.g. the body below the chin), voxels deeper than
    the head's centre at a block mostly on it (mean ``> 0.5``) are hidden too: long hair falling
    down the back is behind the torso, and the photo, which shows the torso there, says nothing
    about it (as :func:`~machlib.hair.fit_strand_tips`' ``occluder``).

    1. Carving: a visible voxel's occupancy is multiplied by the hair mask's (or
       ``carve_mask``'s) max over its block, dilated by ``dilate`` blocks.
    2. Filling: where no visible voxel of the carved prior is hair (occupancy ``≥ threshold``)
       at a block, the visible voxels outside the head and within ``shell`` metres of the head
       surface or of prior hair (a max filter) get at least the block's mean hair mask as
       occupancy, so the volume reaches the silhouette; their orientation is
       the prior's, diffused (occupancy-weighted Gaussian average).
    3. Orientation: on the visible hair surface (occupied voxels at most ``surface`` metres
       behind the front-most occupied voxel of their block, a 3×3 block min filter), the prior
       direction ``o`` is split into its component along the view ray and the part
       perpendicular to it; that part is replaced by the unit vector ⊥ the ray whose image
       projection has angle ``θ``, scaled to the part's length, its sign chosen so it agrees with
       ``o``. The result is blended with ``o`` by the block's confidence (times the mask); the
       change is diffused into neighbouring voxels with ``passes`` Gaussian passes of
       ``smoothing`` voxels.

    jit-compiled (one compile per grid, image and block shape); pure JAX.

    Args:
        volume: the prior :class:`HairVolume` (e.g. :func:`style_volume`).
        camera: the portrait's :class:`~machlib.Camera` (head space = world).
        hair_mask: ``(Hi, Wi)`` hair probability in ``[0, 1]`` (rows down, pixel ``(i, j)``
            centred at ``(j + 0.5, i + 0.5)``).
        theta: ``(Hi, Wi)`` strand angle in radians in ``[0, π)``, image coordinates (x right, y
            down; ``π/2`` is vertical).
        confidence: ``(Hi, Wi)`` orientation confidence in ``[0, 1]``.
        head_sdf: the head's :class:`~machlib.hair.HeadSDF` for occlusion (default: the default
            template's, built once and cached).
        block: pixels per block side, ``≥ 1`` (default from the camera, which must then be concrete).
        dilate: dilation of the mask in blocks for carving, ``≥ 0``.
        shell: fill distance in metres from the head or the prior hair, ``≥ 0``.
        surface: thickness in metres of the visible hair surface, ``≥ 0``.
        smoothing: Gaussian standard deviation in voxels of the diffusion, ``≥ 0``.
        passes: number of Gaussian passes, ``≥ 1``.
        threshold: occupancy that counts as hair, in ``(0, 1)``.
        carve_mask: ``(Hi, Wi)`` mask in ``[0, 1]`` of where hair may be (carving keeps voxels
            over it); default ``hair_mask``. Pass the hair plus whatever may hide hair (a hat,
            the face) so that hair under a hat survives, while filling still follows
            ``hair_mask``.
        occluder: ``(Hi, Wi)`` mask in ``[0, 1]`` of what hides voxels behind the head's centre
            depth (the centre of ``head_sdf``'s grid, the head's bounding-box centre for a grid of
            :func:`~machlib.hair.head_sdf_grid`); ``None``: only the head hides.

    Returns:
        The updated :class:`HairVolume` (same grid).

    Raises:
        InputError: images of different shapes or bad option values.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib._preview import orbit_camera
        >>> from machlib.hair import HairVolume, lift_hair
        >>> occ = jnp.ones((8, 8, 8))
        >>> ori = jnp.zeros((8, 8, 8, 3)).at[..., 1].set(-1.0)
        >>> vol = HairVolume(occ, ori, jnp.array([-0.02, -0.02, 0.12]), 0.006)   # before the face
        >>> cam = orbit_camera(0.0, image_size=(64, 64))
        >>> empty = jnp.zeros((64, 64))
        >>> out = lift_hair(vol, cam, empty, empty, empty)
        >>> round(float(out.occupancy.max()), 2)        # no hair in the image: all carved
        0.0
    """
    if not isinstance(volume, HairVolume):
        raise InputError(f"lift_hair: volume must be a HairVolume, got {type(volume).__name__}")
    if not isinstance(camera, Camera):
        raise InputError(f"lift_hair: camera must be a Camera, got {type(camera).__name__}")
    mask, th, conf = (jnp.asarray(x) for x in (hair_mask, theta, confidence))
    if mask.ndim != 2 or th.shape != mask.shape or conf.shape != mask.shape:
        raise InputError(
            f"lift_hair: hair_mask, theta and confidence must share one (Hi, Wi) shape, got "
            f"{mask.shape}, {th.shape} and {conf.shape}"
        )
    carve = mask if carve_mask is None else jnp.asarray(carve_mask)
    if carve.shape != mask.shape:
        raise InputError(f"lift_hair: carve_mask must have shape {mask.shape}, got {carve.shape}")
    occluder = None if occluder is None else jnp.asarray(occluder)
    if occluder is not None and occluder.shape != mask.shape:
        raise InputError(f"lift_hair: occluder must have shape {mask.shape}, got {occluder.shape}")
    for name, v, ok in (("dilate", dilate, lambda x: x >= 0), ("passes", passes, lambda x: x >= 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not ok(v):
            raise InputError(f"lift_hair: {name} must be an int ({'>= 0' if name == 'dilate' else '>= 1'}), got {v!r}")
    if not (float(shell) >= 0 and float(surface) >= 0 and float(smoothing) >= 0 and 0 < float(threshold) < 1):
        raise InputError(
            f"lift_hair: need shell, surface, smoothing >= 0 and 0 < threshold < 1, got "
            f"{shell!r}, {surface!r}, {smoothing!r}, {threshold!r}"
        )
    if head_sdf is None:
        from ._styles import _cached_sdf

        head_sdf = _cached_sdf(default_template().mesh)
    if block is None:
        R = np.asarray(rotation_matrix(camera.rotation))
        c = np.asarray(volume.origin) + 0.5 * volume.spacing * (np.asarray(volume.shape) - 1)
        dist = float((R @ c + np.asarray(camera.translation))[2])
        block = max(1, int(float(np.min(np.asarray(camera.focal))) * volume.spacing / max(dist, 1e-3)))
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise InputError(f"lift_hair: block must be an int >= 1, got {block!r}")
    dtype = volume.occupancy.dtype
    occ, ori = _lift(
        volume.occupancy, volume.orientation, volume.origin.astype(dtype), camera, mask.astype(dtype),
        carve.astype(dtype), th.astype(dtype), conf.astype(dtype), head_sdf,
        None if occluder is None else occluder.astype(dtype), spacing=float(volume.spacing), block=int(block),
        dilate=int(dilate), shell=float(shell), surface=float(surface), smoothing=float(smoothing),
        passes=int(passes), n_steps=48, threshold=float(threshold),
    )
    return HairVolume(occ, ori, volume.origin, volume.spacing)


# ---------------------------------------------------------------------------------------------
# Growth


class _VolumeField(eqx.Module):
    """Orientation lookup as a direction field; the grids are array leaves, so one compiled
    integrator serves every volume of a shape."""

    occupancy: Array
    orientation: Array
    origin: Array
    spacing: Array
    root_blend: Array

    def __call__(self, p, root, normal, s):
        _, d = _vlookup(self.occupancy, self.orientation, self.origin, self.spacing, p)
        near = jnp.exp(-s / self.root_blend)  # leave the scalp along the normal for a few mm
        return (1.0 - near) * _unit(d, 1e-9) + 2.0 * near * normal


class _VolumeOccupancy(eqx.Module):
    occupancy: Array
    orientation: Array
    origin: Array
    spacing: Array
    threshold: Array

    def __call__(self, p):
        o, _ = _vlookup(self.occupancy, self.orientation, self.origin, self.spacing, p)
        return o - self.threshold


def grow_from_volume(
    key: PRNGKeyArray,
    volume: HairVolume,
    geometry,
    *,
    n_strands: int = 10000,
    n_points: int = 64,
    length: float | Callable | None = None,
    sdf: HeadSDF | None = None,
    threshold: float = 0.5,
    gravity: float = 0.1,
    root_blend: float = 0.004,
    color: str | Float[ArrayLike, "3"] = "brown",
    template=None,
    curl: str = "straight",
    guides: int | None = None,
) -> Strands:
    """Grow strands through a :class:`HairVolume`'s orientation field, inside its occupancy.

    Roots are sampled on the scalp (:func:`~machlib.hair.scalp_roots`, four candidates per
    strand); a root is kept where the occupancy 3 mm out along its normal exceeds ``threshold``
    (scalp outside the hair volume grows nothing), and the first ``n_strands`` kept roots are
    grown — fewer when fewer pass. Each strand follows the trilinearly interpolated orientation
    (blended with the root normal over the first ``root_blend`` metres so it leaves the scalp),
    with ``gravity``, collision against the head and growth stopping at the first step whose
    occupancy would fall to ``threshold`` (:func:`~machlib.hair.grow_strands`), up to ``length``.
    Each strand is then resampled to ``n_points`` points evenly spaced along the grown part.

    Args:
        key: JAX PRNG key.
        volume: the :class:`HairVolume`.
        geometry: a :class:`~machlib.geometry.Template`, a fitted :class:`~machlib.Mesh` with
            the template topology or a :class:`~machlib.geometry.GeometryResult`.
        n_strands: number of strands wanted, ``≥ 0``.
        n_points: points per strand, ``≥ 2``.
        length: maximum strand length in metres (default: 0.6 × the volume's diagonal), or a
            callable that takes the kept roots (:class:`~machlib.hair.ScalpSamples`) and
            returns one per root, ``(S,)``: e.g. the style's own lengths (a pixie's shorter nape
            and sides), which one length for all, the occupancy alone stopping the strands,
            evened out into one horizontal cut all round the head.
        sdf: the head's :class:`~machlib.hair.HeadSDF` (default: built once and cached per mesh).
        threshold: occupancy level that bounds the hair, in ``(0, 1)``.
        gravity: weight of the downward pull added to the field.
        root_blend: length scale in metres of the blend with the root normal, ``> 0``.
        color: a :data:`~machlib.hair.HAIR_COLORS` name or linear RGB.
        template: the template whose scalp mask applies to a fitted mesh.
        curl: ``"straight"``, ``"wavy"``, ``"curly"`` or ``"coily"``: the curl offset added around
            each grown strand, as in :func:`~machlib.hair.grow_style` (a volume averages curls
            away, so they are added back from the style).
        guides: integrate this many guide strands and interpolate the rest
            (:func:`~machlib.hair.grow_strands`); ``None``: every strand.

    Returns:
        :class:`~machlib.hair.Strands` with ``float32`` numpy points ``(S, n_points, 3)``,
        ``S ≤ n_strands``.

    Raises:
        InputError: bad counts or option values, or a bad geometry.

    Example:
        >>> import jax
        >>> from machlib.geometry import default_template
        >>> from machlib.hair import HAIR_STYLES, grow_from_volume, style_volume
        >>> t = default_template()
        >>> vol = style_volume(jax.random.key(0), HAIR_STYLES["pixie"], t, n_strands=200, n_points=8)
        >>> s = grow_from_volume(jax.random.key(1), vol, t, n_strands=20, n_points=8)
        >>> s.points.shape[1:], 0 < s.num_strands <= 20
        ((8, 3), True)
    """
    from ._styles import _CURL, _cached_sdf, _rgb_of

    if not isinstance(volume, HairVolume):
        raise InputError(f"grow_from_volume: volume must be a HairVolume, got {type(volume).__name__}")
    for name, v, lo in (("n_strands", n_strands, 0), ("n_points", n_points, 2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise InputError(f"grow_from_volume: {name} must be an int >= {lo}, got {v!r}")
    if not 0.0 < float(threshold) < 1.0 or not float(root_blend) > 0:
        raise InputError(
            f"grow_from_volume: need 0 < threshold < 1 and root_blend > 0, got {threshold!r}, {root_blend!r}"
        )
    if curl not in _CURL:
        raise InputError(f"grow_from_volume: curl must be one of {sorted(_CURL)}, got {curl!r}")
    if length is None:
        length = 0.6 * volume.spacing * float(np.linalg.norm(np.asarray(volume.shape) - 1))
    if not callable(length) and not float(length) > 0:
        raise InputError(f"grow_from_volume: length must be > 0, got {length!r}")
    rgb = _rgb_of(color, "grow_from_volume")
    mesh, template = _resolve_geometry(geometry, template, "grow_from_volume")
    empty = Strands(np.zeros((0, n_points, 3), np.float32), np.zeros((0, 3), np.float32), np.zeros(0, np.float32))
    if n_strands == 0:
        return empty
    sdf = _cached_sdf(mesh) if sdf is None else sdf
    roots = scalp_roots(key, mesh, 4 * int(n_strands), template=template)
    occ_root, _ = volume_lookup(volume, roots.points + 0.003 * roots.normals)
    keep = np.flatnonzero(np.asarray(occ_root) > threshold)[: int(n_strands)]
    if keep.size == 0:
        return empty
    if callable(length):
        # rows taken and checked in numpy: no program compiled per count of kept roots
        kept = type(roots)(*(jnp.asarray(np.asarray(x)[keep]) for x in roots))
        lengths = jnp.asarray(length(kept), jnp.float32)
        check = np.asarray(lengths)
        if lengths.shape != (keep.size,) or not bool(np.all(np.isfinite(check) & (check > 0))):
            raise InputError(f"grow_from_volume: length(roots) must give ({keep.size},) lengths > 0, "
                             f"got shape {lengths.shape}")
    else:
        lengths = float(length)
    f32 = jnp.float32
    leaves = (volume.occupancy.astype(f32), volume.orientation.astype(f32), volume.origin.astype(f32),
              jnp.asarray(volume.spacing, f32))
    field = _VolumeField(*leaves, jnp.asarray(root_blend, f32))
    occupancy = _VolumeOccupancy(*leaves, jnp.asarray(threshold, f32))
    radius, period, helix = _CURL[curl]
    phases = jax.random.uniform(jax.random.fold_in(key, 1), (keep.size,), maxval=2.0 * np.pi)
    pts = grow_strands(
        jnp.asarray(np.asarray(roots.points)[keep]), jnp.asarray(np.asarray(roots.normals)[keep]), field,
        length=lengths, n_points=int(n_points),
        gravity=float(gravity), sdf=sdf, occupancy=occupancy, curl_radius=radius, curl_period=period,
        curl_helix=helix, phases=phases, guides=guides,
    )
    pts = np.asarray(resample_uniform(pts), np.float32)
    n = pts.shape[0]
    return Strands(pts, np.broadcast_to(rgb, (n, 3)).copy(), np.full(n, DEFAULT_HAIR_WIDTH, np.float32))


#: arc length in metres from the root of a gathered style's strands that, voxelised on its own,
#: occupies the scalp's shell (:func:`style_volume`)
_ROOT_ARC = 0.03


def style_volume(
    key: PRNGKeyArray,
    style,
    geometry,
    *,
    n_strands: int = 2000,
    n_points: int = 32,
    spacing: float = 0.006,
    smoothing: float = 1.0,
    template=None,
    saturation: float | None = None,
) -> HairVolume:
    """The occupancy and orientation prior of a procedural hairstyle.

    Grows the style with :func:`~machlib.hair.grow_style` (a modest strand count) and voxelises
    the strands with :func:`strands_to_volume` on a grid covering them plus four voxels (a bald
    style gives an empty volume over the default box). A gathered style (ponytail, bun, low bun)
    packs much of its hair into the tail or the knot, which sets the typical density: at the
    default saturation only 25-35 % of its scalp (3 mm out) counted as occupied on the template
    (a low bun's upper back 31 %), and growth from the volume left those roots bare. Its default
    saturation is therefore a quarter of the typical density (low bun: 55 % of the scalp, the
    upper back 98 %), a loose style's a half. Even so, the front half of a gathered style's
    scalp, one layer of hair swept back over the skull, stayed below the threshold (a low bun's
    on a fitted head: 5 % of its roots 3 mm out; bare wedges at the hairline from −30°): the
    first 3 cm of its strands from the root are voxelised on their own as well (same grid,
    smoothing and saturation, normalised by their own typical density), and the volume takes the
    larger occupancy of the two, and that shell's orientation where the whole strands' has none
    (low bun: 99 % of the scalp, the front 98 %).

    Args:
        key: JAX PRNG key.
        style: the :class:`~machlib.hair.HairStyle`.
        geometry: a :class:`~machlib.geometry.Template`, a fitted :class:`~machlib.Mesh` or a
            :class:`~machlib.geometry.GeometryResult`.
        n_strands: strands grown for the prior, ``≥ 1``.
        n_points: points per strand, ``≥ 2``.
        spacing: voxel size in metres, ``> 0``.
        smoothing: Gaussian blur in voxels.
        template: the template whose scalp mask applies to a fitted mesh.
        saturation: see :func:`strands_to_volume`, ``> 0``; default ``0.25`` for a gathered
            style, else ``0.5``.

    Returns:
        The :class:`HairVolume` (float32).

    Raises:
        InputError: bad counts or option values (via :func:`~machlib.hair.grow_style`).

    Example:
        >>> import jax
        >>> from machlib.geometry import default_template
        >>> from machlib.hair import HAIR_STYLES, style_volume
        >>> v = style_volume(jax.random.key(0), HAIR_STYLES["pixie"], default_template(), n_strands=200, n_points=8)
        >>> v.occupancy.ndim, round(float(v.occupancy.max()), 2)
        (3, 1.0)
    """
    from ._styles import grow_style

    if isinstance(n_strands, bool) or not isinstance(n_strands, (int, np.integer)) or n_strands < 1:
        raise InputError(f"style_volume: n_strands must be an int >= 1, got {n_strands!r}")
    if not (isinstance(spacing, (int, float, np.floating)) and float(spacing) > 0):
        raise InputError(f"style_volume: spacing must be a number > 0, got {spacing!r}")
    strands = grow_style(key, style, geometry, n_strands=int(n_strands), n_points=int(n_points), template=template)
    pts = np.asarray(strands.points, np.float32)
    if pts.shape[0] == 0:
        return strands_to_volume(np.zeros((1, 2, 3), np.float32) + 10.0, spacing=spacing, smoothing=smoothing)
    pad = 4.0 * float(spacing)
    lo, hi = pts.reshape(-1, 3).min(0) - pad, pts.reshape(-1, 3).max(0) + pad
    lo = np.floor(lo / spacing) * spacing  # snap, so nearby styles share grids
    hi = np.ceil(hi / spacing) * spacing
    gathered = getattr(style, "gather", "none") != "none"
    if saturation is None:
        saturation = 0.25 if gathered else 0.5
    vol = strands_to_volume(pts, spacing=float(spacing), bounds=(lo, hi), smoothing=smoothing,
                            saturation=float(saturation))
    if not gathered:
        return vol
    # the scalp's shell of a gathered style is one layer of hair, far thinner than the knot that
    # sets the typical density: the strands' first _ROOT_ARC metres, voxelised on their own,
    # occupy it (the front half of a low bun's scalp was otherwise empty, its roots bare)
    seg = float(getattr(style, "length", 0.0)) / max(pts.shape[1] - 1, 1)
    k = int(min(pts.shape[1], 1 + max(1, np.ceil(_ROOT_ARC / max(seg, 1e-6)))))
    shell = strands_to_volume(pts[:, :k], spacing=float(spacing), origin=vol.origin, shape=vol.occupancy.shape,
                              smoothing=smoothing, saturation=float(saturation))
    return HairVolume(jnp.maximum(vol.occupancy, shell.occupancy),
                      jnp.where((vol.occupancy >= 1e-3)[..., None], vol.orientation, shell.orientation),
                      vol.origin, vol.spacing)
