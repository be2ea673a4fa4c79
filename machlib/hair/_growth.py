"""Strand growth: scalp roots, a grid signed distance to the head, and an RK2 strand integrator.

Positions are metres in head space (+y up, +z out of the face; see :doc:`/conventions`). Roots
are sampled on the scalp region of the template's UV layout and placed on the head mesh (the
template or a fitted head with the template's topology) by barycentric interpolation. Collision
uses :class:`HeadSDF`, a signed distance grid of the mesh built once by :func:`head_sdf_grid`
(numpy/scipy) and looked up trilinearly in JAX (:func:`sdf_lookup`, differentiable).
:func:`grow_strands` integrates a direction field with the midpoint rule (RK2), vmapped over
strands under ``jit``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray
from scipy import ndimage
from scipy.spatial import cKDTree

from .._errors import InputError
from .._closest import closest_barycentrics
from .._mesh import Mesh, cap_holes, vertex_normals
from ..geometry import Template, decode, default_template

__all__ = [
    "ScalpSamples", "scalp_roots", "HeadSDF", "head_sdf_grid", "sdf_lookup", "grow_strands",
]


# ---------------------------------------------------------------------------------------------
# Scalp roots


class ScalpSamples(NamedTuple):
    """Root samples on the scalp (the result of :func:`scalp_roots`).

    Attributes:
        points: ``(n, 3)`` root positions in metres, head space, on the mesh surface.
        normals: ``(n, 3)`` unit outward surface normals at the roots (interpolated vertex
            normals).
        uv: ``(n, 2)`` texture coordinates of the roots (origin top-left, ``v`` down).
    """

    points: Array
    normals: Array
    uv: Array


def _resolve_geometry(geometry, template, owner: str):
    """(mesh, template) from a Template, a Mesh or anything with a ``.mesh`` (GeometryResult)."""
    if isinstance(geometry, Template):
        return geometry.mesh, geometry
    mesh = getattr(geometry, "mesh", geometry)
    if not isinstance(mesh, Mesh):
        raise InputError(
            f"{owner}: geometry must be a Template, a Mesh or a result with a .mesh, got {type(geometry).__name__}"
        )
    template = default_template() if template is None else template
    if np.shape(mesh.faces_uv) != np.shape(template.mesh.faces_uv):
        raise InputError(
            f"{owner}: the mesh must have the template's topology ({np.shape(template.mesh.faces)[0]} faces), "
            f"got {np.shape(mesh.faces)[0]} faces"
        )
    return mesh, template


def _scalp_faces(mesh: Mesh, scalp: np.ndarray, threshold: float) -> np.ndarray:
    """Per-face sampling weight: 3D area where the scalp mask at the face's UV centroid passes."""
    v = np.asarray(mesh.vertices, np.float64)
    f = np.asarray(mesh.faces)
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    centroid_uv = np.asarray(mesh.uv, np.float64)[np.asarray(mesh.faces_uv)].mean(1)
    m = np.asarray(decode(jnp.asarray(scalp, jnp.float32)[..., None], jnp.asarray(centroid_uv, jnp.float32)))[:, 0]
    return np.where(m >= threshold, area, 0.0)


#: The hair that grows outside the template's scalp mask at the sides of the head: the temples
#: and the sideburns round the ears, which the mask (shared with the texture stage) leaves out
#: with the whole ``ears`` region, so the side of every head was bald between the hair and the
#: ear when seen from ±30°. Head-space hairline heights (m) at azimuths (degrees,
#: 0 front, 90 side) from 50° (the temple's corner, where the mask's hairline is) round the back
#: of the ear, where a person's hairline comes down to about the earlobe (the mask's stops at
#: the ear's middle, so from behind and at three-quarter back views the head was bald behind
#: the ears), to the nape (180°); the ears themselves stay bare.
_SIDE_HAIRLINE = ((50.0, 62.0, 74.0, 88.0, 104.0, 115.0, 130.0, 150.0, 180.0),
                  (0.040, 0.024, 0.004, 0.010, 0.016, -0.030, -0.042, -0.048, -0.050))
#: Half-width (z) and half-height (y) in metres of the ellipse round the ear that stays bare: the
#: template's ``ears`` region spans the whole side of the head round the pinna (10 × 10 cm).
_PINNA = (0.022, 0.036)


def _side_hair_faces(template, mesh: Mesh, threshold: float) -> np.ndarray:
    """``(F,)`` bool: faces of the temples and sideburns (:data:`_SIDE_HAIRLINE`, on the
    template's own head-space positions) off the ears; none without an ``ears`` region."""
    ears = template.regions.get("ears") if template.regions else None
    if ears is None or np.shape(template.mesh.faces) != np.shape(mesh.faces):
        return np.zeros(np.shape(mesh.faces)[0], bool)
    centroid = np.asarray(template.mesh.vertices, np.float64)[np.asarray(template.mesh.faces)].mean(1)
    x, y, z = centroid[:, 0], centroid[:, 1], centroid[:, 2]
    az = np.degrees(np.arctan2(np.abs(x), z))
    line = np.interp(az, *_SIDE_HAIRLINE)
    side = (az >= _SIDE_HAIRLINE[0][0]) & (az <= _SIDE_HAIRLINE[0][-1]) & (y >= line)
    centroid_uv = np.asarray(mesh.uv, np.float64)[np.asarray(mesh.faces_uv)].mean(1)
    ear = np.asarray(decode(jnp.asarray(ears, jnp.float32)[..., None], jnp.asarray(centroid_uv, jnp.float32)))[:, 0]
    out = np.zeros(len(centroid), bool)
    for sign in (-1.0, 1.0):  # the pinna: an ellipse round the median of the ear region's faces
        on = (ear >= threshold) & (np.sign(x) == sign)
        if not on.any():
            continue
        cy, cz = np.median(y[on]), np.median(z[on])
        pinna = ((z - cz) / _PINNA[0]) ** 2 + ((y - cy) / _PINNA[1]) ** 2 < 1.0
        out |= side & (np.sign(x) == sign) & ~pinna
    return out


def scalp_roots(
    key: PRNGKeyArray,
    geometry,
    n: int,
    *,
    template=None,
    threshold: float = 0.5,
) -> ScalpSamples:
    """Sample ``n`` hair roots uniformly by area on the scalp of a head.

    The scalp is the template's UV-space region mask ``regions["scalp"]`` (for the default
    template: above a hairline across the top of the forehead, down at the temples, above and
    behind the ears and across the nape). A mesh face belongs to the scalp where the mask at its
    UV centroid is at least ``threshold``. With an ``ears`` region (the default template), the
    temples and the sideburns in front of the ears, below that hairline, grow hair too: faces
    at azimuths 50–180° (0 front, 90 the side, 180 the nape) above a hairline that comes down
    from the temple's corner (4 cm, head space) to 4 mm in front of the ear, rises to 1.6 cm
    above it and comes down behind it to about the earlobe (−4.2 cm) and the nape (−5 cm),
    less the pinna (an ellipse 4.4 × 7.2 cm round the median of the ``ears`` region's faces on
    that side: the region itself spans the whole side of the head, which the scalp mask leaves
    out, so heads were bald between the hair and the ear when seen from ±30°). Faces are drawn with probability proportional to
    their 3D area, then a point uniformly inside the face; its position, normal and UV are the
    barycentric interpolation of the face's corners, so roots lie exactly on the mesh and follow
    a fitted head.

    Args:
        key: JAX PRNG key; the same key gives the same roots.
        geometry: a :class:`~machlib.geometry.Template`, a fitted :class:`~machlib.Mesh` with the
            template's topology, or a :class:`~machlib.geometry.GeometryResult` (its ``.mesh``).
        n: number of roots, ``≥ 0``.
        template: the template whose scalp mask applies to a fitted mesh (default:
            :func:`~machlib.geometry.default_template`); ignored when ``geometry`` is a template.
        threshold: scalp mask level in ``(0, 1]`` that counts as scalp.

    Returns:
        :class:`ScalpSamples` with ``points``, ``normals`` (float32) and ``uv``.

    Raises:
        InputError: ``n`` negative or not an int, a bad ``threshold``, a mesh with another
            topology, or a template without a ``scalp`` region.

    Example:
        >>> import jax
        >>> from machlib.geometry import default_template
        >>> from machlib.hair import scalp_roots
        >>> r = scalp_roots(jax.random.key(0), default_template(), 100)
        >>> front = r.points[:, 2] > 0.06
        >>> r.points.shape, bool((r.points[front, 1] > 0.03).all())   # above the brows
        ((100, 3), True)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"scalp_roots: n must be an int >= 0, got {n!r}")
    if not 0.0 < float(threshold) <= 1.0:
        raise InputError(f"scalp_roots: threshold must be in (0, 1], got {threshold!r}")
    mesh, template = _resolve_geometry(geometry, template, "scalp_roots")
    if "scalp" not in template.regions:
        raise InputError(f"scalp_roots: template {template.name!r} has no 'scalp' region mask")
    weights = _scalp_faces(mesh, np.asarray(template.regions["scalp"]), float(threshold))
    side = _side_hair_faces(template, mesh, float(threshold))
    if side.any():  # the temples and sideburns below the mask's hairline
        weights = np.where(side, _scalp_faces(mesh, np.ones((2, 2), np.float32), 0.5), weights)
    if weights.sum() <= 0:
        raise InputError("scalp_roots: no mesh face lies on the scalp region")
    v = jnp.asarray(mesh.vertices, jnp.float32)
    f = jnp.asarray(mesh.faces, jnp.int32)
    vn = vertex_normals(v, f)
    # one compiled sampler for every n up to _ROOT_BUCKET (a make samples 800 roots per style to
    # retrieve one, then 4 × its strand count to grow it): the first n of a larger draw, which
    # are the n drawn alone (JAX's partitionable threefry draws each index from its own counter)
    size = max(_ROOT_BUCKET, 1 << max(int(n) - 1, 0).bit_length())
    out = _sample_faces(
        key, v, vn, f, jnp.asarray(mesh.uv, jnp.float32), jnp.asarray(mesh.faces_uv, jnp.int32),
        jnp.asarray(weights / weights.sum(), jnp.float32), size,
    )
    return out if size == n else _first(out, int(n))


@functools.partial(jax.jit, static_argnums=1)
def _first(samples: ScalpSamples, n: int) -> ScalpSamples:
    """The first ``n`` samples (one small program per ``n``, not one per eager slice)."""
    return jax.tree.map(lambda a: a[:n], samples)


#: :func:`scalp_roots` draws at least this many roots (then keeps the first ``n``), so that its
#: compiled sampler serves every smaller ``n``; larger ``n`` round up to a power of two.
_ROOT_BUCKET = 32768


@eqx.filter_jit
def _sample_faces(key, v, vn, f, uv, fuv, p, n):
    kf, kb = jax.random.split(key)
    face = jax.random.choice(kf, p.shape[0], (n,), p=p)
    r = jax.random.uniform(kb, (n, 2), dtype=v.dtype)
    s = jnp.sqrt(r[:, 0])
    w = jnp.stack([1.0 - s, s * (1.0 - r[:, 1]), s * r[:, 1]], 1)  # uniform in the triangle
    pts = jnp.einsum("nk,nkc->nc", w, v[f[face]])
    nrm = jnp.einsum("nk,nkc->nc", w, vn[f[face]])
    nrm = nrm / jnp.maximum(jnp.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    tex = jnp.einsum("nk,nkc->nc", w, uv[fuv[face]])
    return ScalpSamples(pts, nrm, tex)


# ---------------------------------------------------------------------------------------------
# Signed distance grid


class HeadSDF(eqx.Module):
    """A signed distance grid of a closed head mesh (negative inside), for collision.

    Build it once with :func:`head_sdf_grid` and look it up with :func:`sdf_lookup`.

    Attributes:
        values: ``(X, Y, Z)`` float32 signed distances in metres at the grid nodes.
        origin: ``(3,)`` head-space position of node ``(0, 0, 0)``.
        spacing: node spacing in metres (static).
    """

    values: Float[Array, "X Y Z"]
    origin: Float[Array, "3"]
    spacing: float = eqx.field(static=True)


def _closest_on_triangles(p, a, b, c):
    """Closest points of triangles abc to points p (all (N, 3) float64)."""
    w = closest_barycentrics(p, a, b, c)
    return w[:, :1] * a + w[:, 1:2] * b + w[:, 2:] * c


def head_sdf_grid(mesh: Mesh, *, spacing: float = 0.004, margin: float = 0.03) -> HeadSDF:
    """Build the signed distance grid of a closed mesh (numpy and scipy; run once per head).

    Within three nodes of the surface, the unsigned distance of a node is the exact distance to
    the nearest of the faces of its 4 nearest surface samples (samples at most ``spacing / 3``
    apart); farther out it is a Euclidean distance transform of that shell (approximate, only
    used away from the head). The sign comes from a flood
    fill: nodes more than half a ``spacing`` (plus the sample gap) from the surface that connect to the grid's corner
    are outside, the other far nodes inside; nodes in the thin band around the surface take the
    side of their closest face's normal.

    Args:
        mesh: a :class:`~machlib.Mesh` with outward counter-clockwise faces (the template or a
            fitted head); holes are capped first (:func:`machlib.cap_holes`).
        spacing: node spacing in metres, ``> 0``.
        margin: extra space around the mesh's bounding box in metres, ``≥ 0``; outside the grid
            :func:`sdf_lookup` adds the distance to the grid box.

    Returns:
        The :class:`HeadSDF`.

    Raises:
        InputError: non-positive ``spacing``, negative ``margin`` or a grid of more than 2·10⁷
            nodes.

    Example:
        >>> import numpy as np
        >>> from machlib import Mesh
        >>> from machlib.hair import head_sdf_grid, sdf_lookup
        >>> v = np.array([[1., 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
        >>> f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4],
        ...               [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])    # an octahedron
        >>> sdf = head_sdf_grid(Mesh(v, f, np.zeros((1, 2)), np.zeros_like(f)), spacing=0.1)
        >>> d = sdf_lookup(sdf, np.array([[0.5, 0.2, 0.1], [0., 0, 0], [2, 0, 0]]))
        >>> round(float(d[0]), 2)                 # near the surface: (1 − 0.8) / √3 ≈ 0.115
        -0.12
        >>> bool(d[1] < -0.4), bool(d[2] > 0.9)  # far inside and far outside: approximate
        (True, True)
    """
    if not float(spacing) > 0:
        raise InputError(f"head_sdf_grid: spacing must be > 0, got {spacing!r}")
    if not float(margin) >= 0:
        raise InputError(f"head_sdf_grid: margin must be >= 0, got {margin!r}")

    # an open mesh (the human's head ends at its neck) is capped, so the flood fill cannot leak in
    v, f = cap_holes(mesh.vertices, mesh.faces)
    lo, hi = v.min(0) - margin, v.max(0) + margin
    shape = tuple(int(k) for k in np.ceil((hi - lo) / spacing).astype(int) + 1)
    if int(np.prod(shape)) > 20_000_000:
        raise InputError(f"head_sdf_grid: a grid of {shape} nodes is too large; raise spacing")
    axes = [lo[i] + spacing * np.arange(shape[i]) for i in range(3)]
    nodes = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    tri = v[f]
    # surface samples no farther apart than ~spacing / 3 (a barycentric grid of m steps per face)
    edge = np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), axis=1)
    steps = np.clip(np.ceil(edge / (spacing / 3.0)), 1, 32).astype(np.int64)
    samples, sample_face = [v], [np.zeros(len(v), np.int64)]
    vert_face = sample_face[0]
    vert_face[f[:, 0]] = np.arange(len(f))
    for m in np.unique(steps):
        ij = np.array([(i, j) for i in range(m + 1) for j in range(m + 1 - i)], np.float64) / m
        bary = np.concatenate([1.0 - ij.sum(1, keepdims=True), ij], 1)
        sel = np.flatnonzero(steps == m)
        samples.append(np.einsum("sk,fkc->fsc", bary, tri[sel]).reshape(-1, 3))
        sample_face.append(np.repeat(sel, len(bary)))
    samples, sample_face = np.concatenate(samples), np.concatenate(sample_face)
    gap = float(np.max(edge / steps))  # bound on a node's distance error before the exact step
    # exact distances only near the surface: the voxels that hold samples, dilated by 3 nodes;
    # farther nodes get a Euclidean distance transform of that shell (approximate, > 2 spacings)
    cell = np.clip(np.floor((samples - lo) / spacing).astype(np.int64), 0, np.array(shape) - 1)
    near = np.zeros(shape, bool)
    near[cell[:, 0], cell[:, 1], cell[:, 2]] = True
    near = ndimage.binary_dilation(near, iterations=3)
    near_idx = np.flatnonzero(near.reshape(-1))
    pn = nodes[near_idx]
    _, idx = cKDTree(samples).query(pn, k=4)
    best = np.full(len(pn), np.inf)
    closest = np.zeros_like(pn)
    fn = np.zeros_like(pn)
    for k in range(idx.shape[1]):
        t = tri[sample_face[idx[:, k]]]
        q = _closest_on_triangles(pn, t[:, 0], t[:, 1], t[:, 2])
        d = np.linalg.norm(pn - q, axis=1)
        better = d < best
        best = np.where(better, d, best)
        closest = np.where(better[:, None], q, closest)
        fn = np.where(better[:, None], np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), fn)
    edt = ndimage.distance_transform_edt(~near) * spacing
    dist = (edt + 2.0 * spacing).reshape(-1)
    dist[near_idx] = best
    band_sign = np.ones(len(nodes))
    band_sign[near_idx] = np.where(np.sum((pn - closest) * fn, 1) >= 0, 1.0, -1.0)
    band = (dist < 0.5 * spacing + gap).reshape(shape)
    labels, _ = ndimage.label(~band)
    outside = labels == labels[0, 0, 0]
    sign = np.where(band, band_sign.reshape(shape), np.where(outside, 1.0, -1.0))
    values = (sign * dist.reshape(shape)).astype(np.float32)
    return HeadSDF(jnp.asarray(values), jnp.asarray(lo, jnp.float32), float(spacing))


def _safe_norm(x, axis=-1):
    n2 = jnp.sum(x * x, axis=axis)
    ok = n2 > 0
    return jnp.where(ok, jnp.sqrt(jnp.where(ok, n2, 1.0)), 0.0)


def _lookup(sdf: HeadSDF, p):
    """Trilinear SDF at one point (3,), plus the distance to the grid box outside it."""
    vals = sdf.values
    dtype = jnp.result_type(p.dtype, jnp.float32)
    vals = vals.astype(dtype)
    size = jnp.asarray(vals.shape, dtype) - 1.0
    g = (p - sdf.origin.astype(dtype)) / sdf.spacing
    gc = jnp.clip(g, 0.0, size)
    i0 = jnp.clip(jnp.floor(gc), 0.0, size - 1.0)
    fr = gc - i0
    i = i0.astype(jnp.int32)
    c = jax.lax.dynamic_slice(vals, (i[0], i[1], i[2]), (2, 2, 2))
    cx = c[0] * (1 - fr[0]) + c[1] * fr[0]
    cy = cx[0] * (1 - fr[1]) + cx[1] * fr[1]
    v = cy[0] * (1 - fr[2]) + cy[1] * fr[2]
    return v + _safe_norm((g - gc) * sdf.spacing)


def sdf_lookup(sdf: HeadSDF, points: Float[ArrayLike, "N 3"]) -> Float[Array, " N"]:
    """Signed distance (metres, negative inside) at points, by trilinear interpolation.

    Differentiable in ``points`` (piecewise-trilinear inside the grid); outside the grid the
    distance to the grid box is added to the border value. jit- and vmap-safe; computes in the
    points' float dtype (float64 under x64).

    Args:
        sdf: the :class:`HeadSDF` from :func:`head_sdf_grid`.
        points: ``(N, 3)`` head-space positions in metres.

    Returns:
        ``(N,)`` signed distances.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.hair import HeadSDF, sdf_lookup
        >>> ax = jnp.arange(5.0) * 0.1 - 0.2                 # a plane x = 0 on a 5³ grid
        >>> sdf = HeadSDF(jnp.broadcast_to(ax[:, None, None], (5, 5, 5)), jnp.full(3, -0.2), 0.1)
        >>> [round(float(d), 3) for d in sdf_lookup(sdf, jnp.array([[0.05, 0, 0], [0.5, 0, 0]]))]
        [0.05, 0.5]
    """
    points = jnp.asarray(points)
    if points.ndim != 2 or points.shape[-1] != 3:
        raise InputError(f"sdf_lookup: points must have shape (N, 3), got {points.shape}")
    if not jnp.issubdtype(points.dtype, jnp.floating):
        points = points.astype(jnp.float32)
    return jax.vmap(lambda p: _lookup(sdf, p))(points)


def _sdf_np(sdf: HeadSDF, pts) -> np.ndarray:
    """Trilinear signed distance at points (numpy; the same as :func:`sdf_lookup` without a
    compile per point count): the grid's value plus the distance outside its box.
    ``(N,)`` float64 for ``pts`` ``(..., 3)`` flattened to ``(N, 3)``."""
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
    vals = np.asarray(sdf.values, dtype=np.float64)
    size = np.asarray(vals.shape, dtype=np.float64) - 1.0
    g = (p - np.asarray(sdf.origin, dtype=np.float64)) / float(sdf.spacing)
    gc = np.clip(g, 0.0, size)
    i0 = np.clip(np.floor(gc), 0.0, size - 1.0)
    fr = gc - i0
    i = i0.astype(np.int64)
    out = np.zeros(len(p))
    for dx in (0, 1):
        wx = fr[:, 0] if dx else 1 - fr[:, 0]
        for dy in (0, 1):
            wy = fr[:, 1] if dy else 1 - fr[:, 1]
            for dz in (0, 1):
                wz = fr[:, 2] if dz else 1 - fr[:, 2]
                out += wx * wy * wz * vals[i[:, 0] + dx, i[:, 1] + dy, i[:, 2] + dz]
    return out + np.linalg.norm((g - gc) * float(sdf.spacing), axis=1)


def _sdf_normals_np(sdf: HeadSDF, pts, h: float = 0.0006) -> np.ndarray:
    """``(N, 3)`` unit outward normals of the head at ``pts`` ``(N, 3)``: central differences of
    :func:`_sdf_np` with step ``h`` metres (numpy)."""
    pts = np.asarray(pts, dtype=np.float64)
    off = np.concatenate([np.eye(3), -np.eye(3)]) * h
    d = _sdf_np(sdf, (pts[:, None, :] + off[None]).reshape(-1, 3)).reshape(len(pts), 6)
    g = (d[:, :3] - d[:, 3:]) / (2 * h)
    return g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-9)


def _push_out(sdf: HeadSDF, p, clearance, iters: int = 3):
    """Move a point out of the head along the SDF gradient until it is ``clearance`` outside."""
    val_grad = jax.value_and_grad(lambda q: _lookup(sdf, q))

    def body(_, q):
        d, g = val_grad(q)
        gn = _safe_norm(g)
        ok = gn > 0
        unit = jnp.where(ok, g / jnp.where(ok, gn, 1.0), 0.0)
        return jnp.where(d < clearance, q + (clearance - d) * unit, q)

    return jax.lax.fori_loop(0, iters, body, p)


# ---------------------------------------------------------------------------------------------
# Integrator

_SLIDE = 0.01  # within this distance (m) of the head, strands slide along it



def _strands_and_sdf(owner: str, points, sdf, sdf_from: str, *, optional: bool = False) -> Array:
    """``points`` as a floating ``(S, P >= 2, 3)`` array, after checking them and that ``sdf`` is
    a :class:`HeadSDF` (or ``None`` when ``optional``; ``sdf_from``: the functions that make one,
    for the message)."""
    pts = jnp.asarray(points)
    if pts.ndim != 3 or pts.shape[-1] != 3 or pts.shape[1] < 2:
        raise InputError(f"{owner}: points must have shape (S, P >= 2, 3), got {pts.shape}")
    if not jnp.issubdtype(pts.dtype, jnp.floating):
        pts = pts.astype(jnp.float32)
    if not isinstance(sdf, HeadSDF) and not (optional and sdf is None):
        raise InputError(f"{owner}: sdf must be a HeadSDF ({sdf_from}){' or None' if optional else ''}, "
                         f"got {type(sdf).__name__}")
    return pts

def _unit(x, eps=1e-12):
    n = _safe_norm(x)[..., None]
    return jnp.where(n > eps, x / jnp.where(n > eps, n, 1.0), 0.0)


def _grow_path(root, normal, length, field, occupancy, sdf, params, n_points):
    """Integrate one strand's centre line (RK2 with sliding, push-out and occupancy stop)."""
    gravity, clearance = params[0], params[1]
    h = length / (n_points - 1)
    down = jnp.array([0.0, -1.0, 0.0], root.dtype)

    def direction(p, s, prev):
        d = _unit(field(p, root, normal, s) + gravity * down)
        if sdf is not None:  # near the head, drop the inward part: strands slide along it
            dist, g = jax.value_and_grad(lambda q: _lookup(sdf, q))(p)
            n = _unit(g)
            inward = jnp.minimum(jnp.sum(d * n), 0.0)
            d = _unit(d - jnp.where(dist < _SLIDE, inward, 0.0) * n)
        return jnp.where(_safe_norm(d) > 0, d, prev)

    def step(carry, _):
        p, s, prev, alive = carry
        d1 = direction(p, s, prev)
        d2 = direction(p + 0.5 * h * d1, s + 0.5 * h, d1)
        q = p + h * d2
        if sdf is not None:
            q = _push_out(sdf, q, clearance)
        inside = occupancy(q) > 0 if occupancy is not None else True
        go = alive & inside
        q = jnp.where(go, q, p)
        moved = _unit(q - p)
        prev = jnp.where(_safe_norm(moved) > 0, moved, prev)
        s = s + jnp.where(go, _safe_norm(q - p), 0.0)
        return (q, s, prev, go), q

    init = (root, jnp.zeros((), root.dtype), normal, jnp.asarray(True))
    _, pts = jax.lax.scan(step, init, None, length=n_points - 1)
    return jnp.concatenate([root[None], pts], 0)


def _curl_and_collide(pts, normal, phase, sdf, params):
    """Add the curl offset around a grown centre line, then push its points out of the head."""
    clearance, radius, period, helix = params[1:]
    root = pts[0]
    seg = pts[1:] - pts[:-1]
    arc = jnp.concatenate([jnp.zeros((1,), pts.dtype), jnp.cumsum(_safe_norm(seg))])
    # curl: a helical (or planar, helix = 0) offset around the grown strand, in a frame carried
    # along the strand; it fades in over the first 1.5 cm so the root stays on the scalp
    tang = jnp.concatenate([seg, seg[-1:]], 0)

    def frame(e1, t):
        tu = _unit(t)
        e = e1 - jnp.sum(e1 * tu) * tu
        e = jnp.where(_safe_norm(e) > 1e-6, _unit(e), e1)
        return e, e

    ref = jnp.where(jnp.abs(normal[1]) < 0.9, jnp.array([0.0, 1.0, 0.0]), jnp.array([1.0, 0.0, 0.0])).astype(pts.dtype)
    e0 = _unit(jnp.cross(normal, ref))
    _, e1 = jax.lax.scan(frame, e0, tang)
    e2 = _unit(jnp.cross(_unit(tang), e1))
    ang = 2.0 * jnp.pi * arc / period + phase
    ramp = jnp.clip(arc / 0.015, 0.0, 1.0)
    ramp = ramp * ramp * (3.0 - 2.0 * ramp)
    off = (radius * ramp)[:, None] * (jnp.cos(ang)[:, None] * e1 + helix * jnp.sin(ang)[:, None] * e2)
    pts = pts + off
    if sdf is not None:
        rest = jax.vmap(lambda q: _push_out(sdf, q, clearance, iters=3))(pts[1:])
        pts = jnp.concatenate([root[None], rest], 0)
    return pts


def _grow_one(root, normal, length, phase, field, occupancy, sdf, params, n_points):
    pts = _grow_path(root, normal, length, field, occupancy, sdf, params, n_points)
    return _curl_and_collide(pts, normal, phase, sdf, params)


def _resample_to_length(path, length, n_points):
    """Points at ``n_points`` equal arc-length steps over the first ``length`` metres of a polyline
    (all of it when it is shorter)."""
    seg = _safe_norm(path[1:] - path[:-1])
    arc = jnp.concatenate([jnp.zeros((1,), path.dtype), jnp.cumsum(seg)])
    t = jnp.linspace(0.0, 1.0, n_points, dtype=path.dtype) * jnp.minimum(length, arc[-1])
    j = jnp.clip(jnp.searchsorted(arc, t, side="right") - 1, 0, path.shape[0] - 2)
    span = arc[j + 1] - arc[j]
    f = jnp.where(span > 0, (t - arc[j]) / jnp.where(span > 0, span, 1.0), 0.0)
    return path[j] + jnp.clip(f, 0.0, 1.0)[:, None] * (path[j + 1] - path[j])


@eqx.filter_jit
def _grow_guided(roots, normals, lengths, phases, field, occupancy, sdf, params, n_points, n_guides, idx, dd):
    """Grow ``n_guides`` guide centre lines (the first roots), give every strand the weighted mean
    of its nearest guides' shapes (``idx``, squared distances ``dd``; offsets from their roots),
    cut it to its own length, then curl it and push it out of the head strand by strand."""
    k = idx.shape[1]
    g_roots, g_normals = roots[:n_guides], normals[:n_guides]
    g_len = jnp.full((n_guides,), jnp.max(lengths), roots.dtype)
    n_guide_points = 2 * n_points
    guides = jax.vmap(
        lambda r, nr, ln: _grow_path(r, nr, ln, field, occupancy, sdf, params, n_guide_points)
    )(g_roots, g_normals, g_len)
    # Gaussian weights with the typical spacing of guides (median distance to the second-nearest
    # guide; the nearest of a guide root is itself)
    sigma2 = jnp.maximum(jnp.median(dd[:, min(1, k - 1)]), 1e-10)
    w = jnp.exp(-0.5 * (dd - dd[:, :1]) / sigma2)
    w = w / jnp.sum(w, 1, keepdims=True)
    offsets = guides[idx] - g_roots[idx][:, :, None, :]  # (S, k, 2n, 3)
    paths = roots[:, None, :] + jnp.einsum("sk,skpc->spc", w, offsets)
    if sdf is not None:
        paths = jax.vmap(jax.vmap(lambda q: _push_out(sdf, q, params[1])))(paths)
        paths = paths.at[:, 0].set(roots)
    pts = jax.vmap(lambda p, ln: _resample_to_length(p, ln, n_points))(paths, lengths)
    return jax.vmap(lambda p, nr, ph: _curl_and_collide(p, nr, ph, sdf, params))(pts, normals, phases)


@eqx.filter_jit
def _grow_batch(roots, normals, lengths, phases, field, occupancy, sdf, params, n_points):
    return jax.vmap(
        lambda r, nr, ln, ph: _grow_one(r, nr, ln, ph, field, occupancy, sdf, params, n_points)
    )(roots, normals, lengths, phases)


def grow_strands(
    roots: Float[ArrayLike, "S 3"],
    normals: Float[ArrayLike, "S 3"],
    field: Callable,
    *,
    length: float | Float[ArrayLike, " S"],
    n_points: int = 64,
    gravity: float = 0.0,
    curl_radius: float = 0.0,
    curl_period: float = 0.02,
    curl_helix: float = 1.0,
    phases: Float[ArrayLike, " S"] | None = None,
    sdf: HeadSDF | None = None,
    clearance: float = 0.002,
    occupancy: Callable | None = None,
    guides: int | None = None,
    guide_neighbors: int = 4,
) -> Float[Array, "S n_points 3"]:
    """Grow strands from roots by integrating a direction field (RK2, vmapped, jit-compiled).

    Each strand takes ``n_points − 1`` midpoint (RK2) steps of length ``length / (n_points − 1)``
    along the unit vector of ``field(p, root, normal, s) + gravity · (0, −1, 0)``, where ``s`` is
    the arc length grown so far. After each step the point is pushed out of the head along the
    SDF gradient until it is ``clearance`` outside; within 1 cm of the head the inward part of
    the direction is removed first, so strands slide along the head instead of piling up. A
    strand stops at the first step that would leave the ``occupancy`` region; its remaining
    points repeat its tip. Then a curl offset of radius ``curl_radius`` and period
    ``curl_period`` (metres of arc length) is added around the strand, fading in over its first
    1.5 cm; ``curl_helix = 1`` gives a circular helix (curly, coily), ``0`` a planar wave (wavy).
    The points are pushed out of the head once more; the root is kept exactly.

    With ``guides = G`` (fewer than ``S``), only the first ``G`` roots are integrated (guide
    strands, each as long as the longest strand, at twice the point density); every strand then
    takes the Gaussian-weighted mean shape (offsets from the root) of its ``guide_neighbors``
    nearest guides, is pushed out of the head, cut to its own length at uniform arc length and
    curled with its own phase. Roots are random, so the first ``G`` are a uniform subset. This is
    the usual guide-hair interpolation: several times faster for ``G ≈ S / 10`` and smoother,
    since neighbouring strands share a shape.

    ``field`` and ``occupancy`` are hashable callables (functions or ``equinox`` modules);
    ``jit`` recompiles for a new function, not for new array leaves of a module.

    Args:
        roots: ``(S, 3)`` root positions in metres, head space.
        normals: ``(S, 3)`` unit outward normals at the roots (the direction before the first
            step, and the curl frame's reference).
        field: ``field(p (3,), root (3,), normal (3,), s ()) -> (3,)`` unnormalised direction.
        length: strand length in metres, one for all or ``(S,)``, ``> 0``.
        n_points: points per strand, ``≥ 2``.
        gravity: weight of the downward direction added to the field.
        curl_radius: curl offset radius in metres, ``≥ 0`` (``0``: straight).
        curl_period: curl period in metres of arc length, ``> 0``.
        curl_helix: ``0`` (planar wave) … ``1`` (circular helix).
        phases: ``(S,)`` curl phases in radians (default zeros).
        sdf: the head's :class:`HeadSDF`; ``None`` turns collision off.
        clearance: distance in metres that points keep outside the head.
        occupancy: ``occupancy(p (3,)) -> ()``, positive where hair may grow; ``None``: everywhere.
        guides: number of guide strands to integrate (``None`` or ``≥ S``: integrate every
            strand).
        guide_neighbors: guides blended per strand, ``1 ≤ k ≤ guides``.

    Returns:
        ``(S, n_points, 3)`` strand points, root first, in the roots' float dtype.

    Raises:
        InputError: mismatched shapes or a bad option value.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.hair import grow_strands
        >>> up = lambda p, root, normal, s: normal       # grow straight along the normal
        >>> pts = grow_strands(jnp.zeros((2, 3)), jnp.array([[0., 1, 0], [1, 0, 0]]), up,
        ...                    length=0.1, n_points=5)
        >>> pts.shape, round(float(pts[0, -1, 1]), 4), round(float(pts[1, -1, 0]), 4)
        ((2, 5, 3), 0.1, 0.1)
    """
    roots = jnp.asarray(roots)
    if not jnp.issubdtype(roots.dtype, jnp.floating):
        roots = roots.astype(jnp.float32)
    normals = jnp.asarray(normals, roots.dtype)
    if roots.ndim != 2 or roots.shape[-1] != 3 or normals.shape != roots.shape:
        raise InputError(
            f"grow_strands: roots and normals must both have shape (S, 3), got {roots.shape} and {normals.shape}"
        )
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 2:
        raise InputError(f"grow_strands: n_points must be an int >= 2, got {n_points!r}")
    if not callable(field) or (occupancy is not None and not callable(occupancy)):
        raise InputError("grow_strands: field and occupancy must be callables")
    s = roots.shape[0]
    # broadcast and checked in numpy (the same cast): no program compiled per strand count
    lengths = np.asarray(length, roots.dtype)
    lengths = np.broadcast_to(lengths, (s,)) if lengths.ndim == 0 else lengths
    if lengths.shape != (s,):
        raise InputError(f"grow_strands: length must be a scalar or shape ({s},), got {lengths.shape}")
    if s and not bool(np.all(lengths > 0)):
        raise InputError("grow_strands: every length must be > 0")
    lengths = jnp.asarray(lengths)
    if not float(curl_radius) >= 0 or not float(curl_period) > 0 or not 0.0 <= float(curl_helix) <= 1.0:
        raise InputError(
            f"grow_strands: need curl_radius >= 0, curl_period > 0 and 0 <= curl_helix <= 1, "
            f"got {curl_radius!r}, {curl_period!r}, {curl_helix!r}"
        )
    if not float(clearance) >= 0:
        raise InputError(f"grow_strands: clearance must be >= 0, got {clearance!r}")
    phases = jnp.zeros((s,), roots.dtype) if phases is None else jnp.asarray(phases, roots.dtype)
    if phases.shape != (s,):
        raise InputError(f"grow_strands: phases must have shape ({s},), got {phases.shape}")
    if guides is not None and (isinstance(guides, bool) or not isinstance(guides, (int, np.integer)) or guides < 1):
        raise InputError(f"grow_strands: guides must be None or an int >= 1, got {guides!r}")
    if s == 0:
        return jnp.zeros((0, int(n_points), 3), roots.dtype)
    params = tuple(jnp.asarray(x, roots.dtype) for x in (gravity, clearance, curl_radius, curl_period, curl_helix))
    if guides is not None and guides < s:
        k = int(guide_neighbors)
        if not 1 <= k <= guides:
            raise InputError(f"grow_strands: guide_neighbors must be in [1, guides={guides}], got {guide_neighbors!r}")
        g = np.asarray(roots[:guides], np.float64)
        dd, idx = cKDTree(g).query(np.asarray(roots, np.float64), k=k)
        dd, idx = np.reshape(dd, (s, k)) ** 2, np.reshape(idx, (s, k))
        return _grow_guided(roots, normals, lengths, phases, field, occupancy, sdf, params, int(n_points),
                            int(guides), jnp.asarray(idx, jnp.int32), jnp.asarray(dd, roots.dtype))
    # in blocks: one compiled program serves every count (retrieval grows 800 per style, the prior 2,000)
    return _in_blocks(lambda *block: _grow_batch(*block, field, occupancy, sdf, params, int(n_points)),
                      (roots, normals, lengths, phases), 400, also=(params, field, occupancy, sdf))


def _in_blocks(fn, rows, block: int, *, also=()) -> Array:
    """``fn(*rows)`` (a per-strand map: row ``i`` of its result depends on row ``i`` of its
    inputs only) computed on blocks of ``block`` strands, the last padded with copies of the last
    strand (a real strand, so every result stays finite; the copies are dropped), so that one
    compiled program serves every strand count: how many strands are grown, kept after the
    clean-up or carried to the character changes with the photo, and each new count would
    otherwise compile the program again. ``rows``: one array or a tuple of arrays (strands first).
    Under a trace (any of ``rows`` or of ``also``, the other inputs ``fn`` closes over, traced:
    inside ``jit``, ``vmap`` or ``grad``) it is one call of ``fn`` on all rows."""
    rows = rows if isinstance(rows, tuple) else (rows,)
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((rows, also))):
        return fn(*rows)
    rows = [np.asarray(x) for x in rows]
    s = rows[0].shape[0]
    if s == 0:
        return jnp.asarray(fn(*rows))
    extra = -s % block
    if extra:
        rows = [np.concatenate([x, np.broadcast_to(x[-1:], (extra, *x.shape[1:]))]) for x in rows]
    return jnp.asarray(np.concatenate([np.asarray(fn(*(x[i:i + block] for x in rows)))
                                       for i in range(0, s + extra, block)])[:s])
