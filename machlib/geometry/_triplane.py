"""Mesh ↔ triplane (UV-space position map) conversion, Make-A-Character §2.3.

A *triplane* here is an ``(R, R, 3)`` image in the mesh's UV layout whose three channels are the
``x``, ``y`` and ``z`` head-space coordinates of the surface point at that texel (the paper's
"Y-Z, X-Z and X-Y planes"). Encoding rasterizes the triangles in UV space once
(:func:`uv_raster`, numpy) and then interpolates vertex positions with the stored barycentrics
(:func:`encode`, pure JAX); decoding samples the map bilinearly (:func:`decode`).
"""

from __future__ import annotations

import functools

import hashlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int
from scipy import ndimage

from .._device import to_device
from .._mesh import Mesh
from .._raster import rasterize_np

__all__ = ["UVRaster", "uv_raster", "encode", "decode", "encode_mesh", "decode_mesh"]


class UVRaster(eqx.Module):
    """The rasterized UV chart of a mesh topology: which triangle covers each texel, and where.

    Build it once with :func:`uv_raster` and pass it to :func:`encode` (explicit precomputation,
    like nvdiffrast's ``mip`` argument).

    Attributes:
        corners: ``(R, R, 3)`` int32 vertex indices of the triangle that covers each texel (for
            texels outside the chart: of the nearest triangle).
        bary: ``(R, R, 3)`` float barycentric weights (outside the chart: clamped to the nearest
            triangle, so the map extends smoothly past chart borders).
        mask: ``(R, R)`` bool, True where the texel centre lies inside a triangle.
    """

    corners: Int[Array, "R R 3"]
    bary: Float[Array, "R R 3"]
    mask: Bool[Array, "R R"]

    @property
    def resolution(self) -> int:
        """The map size ``R``."""
        return int(self.mask.shape[0])


def _fill_outside(tri: np.ndarray, bary: np.ndarray, faces: np.ndarray, px: np.ndarray):
    """Give every texel outside the UV chart the nearest covered texel's triangle, with the
    barycentrics of that triangle's point nearest to its centre (clamped: no extrapolation).

    ``tri``/``bary``: :func:`machlib._raster.rasterize_np`'s ``(R, R)`` triangle ids (-1 outside)
    and ``(R, R, 3)`` barycentrics; ``faces``: ``(F, 3)`` UV corners; ``px``: ``(N, 2)`` UVs in
    texels. At least one texel must be covered. Returns ``(tri, bary)`` filled (ids >= 0)."""
    inside = tri >= 0
    if inside.all():
        return tri, bary
    _, (ii, jj) = ndimage.distance_transform_edt(~inside, return_indices=True)
    out = ~inside
    nearest = tri[ii[out], jj[out]]
    yy, xx = np.nonzero(out)
    t = faces[nearest]
    bary[out] = _clamped_barycentrics(np.stack([xx + 0.5, yy + 0.5], 1), px[t[:, 0]], px[t[:, 1]], px[t[:, 2]])
    tri = np.where(inside, tri, 0)
    tri[out] = nearest
    return tri, bary


def _clamped_barycentrics(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentrics of the point of triangle abc nearest to p (all (N, 2) arrays)."""
    candidates = []
    dists = []
    # interior solution
    v0, v1, v2 = b - a, c - a, p - a
    d00 = np.sum(v0 * v0, 1)
    d01 = np.sum(v0 * v1, 1)
    d11 = np.sum(v1 * v1, 1)
    d20 = np.sum(v2 * v0, 1)
    d21 = np.sum(v2 * v1, 1)
    den = np.where(np.abs(d00 * d11 - d01 * d01) > 1e-30, d00 * d11 - d01 * d01, 1.0)
    wb = (d11 * d20 - d01 * d21) / den
    wc = (d00 * d21 - d01 * d20) / den
    w = np.stack([1 - wb - wc, wb, wc], 1)
    inside = np.all(w >= 0, 1)
    # edge projections
    for i, j in ((0, 1), (1, 2), (2, 0)):
        P = (a, b, c)
        e = P[j] - P[i]
        t = np.clip(np.sum((p - P[i]) * e, 1) / np.maximum(np.sum(e * e, 1), 1e-30), 0.0, 1.0)
        q = P[i] + t[:, None] * e
        we = np.zeros_like(w)
        we[:, i] = 1 - t
        we[:, j] = t
        candidates.append(we)
        dists.append(np.sum((q - p) ** 2, 1))
    best = np.argmin(np.stack(dists, 1), 1)
    edge_w = np.stack(candidates, 1)[np.arange(len(p)), best]
    return np.where(inside[:, None], w, edge_w)


def uv_raster(mesh: Mesh, resolution: int) -> UVRaster:
    """Rasterize a mesh's UV chart at ``resolution × resolution`` texels (numpy, run once).

    Each texel centre ``((j + 0.5) / R, (i + 0.5) / R)`` inside a UV triangle gets that
    triangle's vertex indices and barycentrics. Texels outside every triangle take the nearest
    covered texel's triangle with barycentrics of the nearest point of that triangle, so the
    whole map is filled and bilinear sampling near chart borders stays on the surface.

    Args:
        mesh: a :class:`~machlib.Mesh` with a non-overlapping UV layout.
        resolution: ``R``, the map size in texels.

    Returns:
        The :class:`UVRaster`.

    Raises:
        ValueError: for a resolution below 2 or a mesh whose UVs cover no texel centre.
    """
    if not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ValueError(f"uv_raster: resolution must be an int >= 2, got {resolution!r}")
    R = int(resolution)
    faces_uv = np.ascontiguousarray(mesh.faces_uv)
    faces = np.ascontiguousarray(mesh.faces)
    uv_unit = np.ascontiguousarray(mesh.uv, dtype=np.float64)
    # the chart depends on the topology and UVs only, not on vertex positions: every fitted head
    # of one template shares it, so it is computed once per (topology, UVs, R)
    key = (hashlib.sha1(b"".join(a.tobytes() for a in (faces, faces_uv, uv_unit))).hexdigest(), faces.dtype.str, R)
    hit = _RASTERS.get(key)
    if hit is not None:
        return hit
    uv = uv_unit * R
    tri, bary = rasterize_np(uv, faces_uv, (R, R))
    mask = tri >= 0
    if not mask.any():
        raise ValueError("uv_raster: the mesh's UV triangles cover no texel centre")
    tri, bary = _fill_outside(tri, bary, faces_uv, uv)
    raster = UVRaster(
        corners=to_device(faces[tri], np.int32),
        bary=to_device(bary, np.float32),
        mask=to_device(mask),
    )
    if len(_RASTERS) >= 8:
        _RASTERS.pop(next(iter(_RASTERS)))
    _RASTERS[key] = raster
    return raster


_RASTERS: dict = {}


@jax.jit
def encode(vertices: Float[ArrayLike, "V 3"], raster: UVRaster) -> Float[Array, "R R 3"]:
    """Write vertex positions into a triplane (UV position map). Pure, differentiable in
    ``vertices``, jit- and vmap-safe.

    Args:
        vertices: ``(V, 3)`` positions of a mesh with the topology ``raster`` was built from.
        raster: the precomputed :class:`UVRaster`.

    Returns:
        ``(R, R, 3)`` map; channel ``c`` is the ``c``-th coordinate (x, y, z) of the surface
        point at each texel, in ``vertices``' dtype.

    Example:
        >>> import numpy as np
        >>> from machlib import Mesh
        >>> from machlib.geometry import uv_raster, encode
        >>> square = Mesh(np.array([[0., 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]),
        ...               np.array([[0, 1, 2], [0, 2, 3]]),
        ...               np.array([[0., 0], [1, 0], [1, 1], [0, 1]]), np.array([[0, 1, 2], [0, 2, 3]]))
        >>> tp = encode(square.vertices, uv_raster(square, 4))
        >>> tp.shape, [round(float(v), 3) for v in tp[0, 0]]
        ((4, 4, 3), [0.125, 0.125, 0.0])
    """
    vertices = jnp.asarray(vertices)
    if vertices.ndim != 2 or vertices.shape[-1] != 3:
        raise ValueError(f"encode: vertices must have shape (V, 3), got {vertices.shape}")
    bary = raster.bary.astype(vertices.dtype)
    return jnp.einsum("ijk,ijkc->ijc", bary, vertices[raster.corners])


@functools.partial(jax.jit, static_argnames=("wrap_u",))
def decode(
    triplane: Float[ArrayLike, "R R C"], uv: Float[ArrayLike, "N 2"], *, wrap_u: bool = False
) -> Float[Array, "N C"]:
    """Sample a UV-space map bilinearly at texture coordinates (texel centres at
    ``(j + 0.5) / R``, edges clamped). Differentiable in both arguments; jit- and vmap-safe.

    Args:
        triplane: ``(R, R, C)`` map (``C = 3`` for positions; any channel count works).
        uv: ``(N, 2)`` texture coordinates, origin top-left, ``v`` down.
        wrap_u: treat ``u`` as periodic (a seam at ``u = 0 ≡ 1``, e.g. a cylindrical or spherical
            layout): within half a texel of the seam the sample blends the first and last
            columns instead of clamping to one of them, so both sides of the seam decode to the
            same point. ``v`` is always clamped. Static.

    Returns:
        ``(N, C)`` sampled values.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.geometry import decode
        >>> ramp = jnp.arange(4.0)[None, :, None] * jnp.ones((4, 1, 1))  # value = column index
        >>> decode(ramp, jnp.array([[0.5, 0.5], [0.0, 0.0]])).ravel().tolist()
        [1.5, 0.0]
        >>> decode(ramp, jnp.array([[0.0, 0.5], [1.0, 0.5]]), wrap_u=True).ravel().tolist()  # on the seam
        [1.5, 1.5]
    """
    triplane = jnp.asarray(triplane)
    uv = jnp.asarray(uv)
    if triplane.ndim != 3 or triplane.shape[0] != triplane.shape[1]:
        raise ValueError(f"decode: triplane must have shape (R, R, C), got {triplane.shape}")
    if uv.ndim != 2 or uv.shape[-1] != 2:
        raise ValueError(f"decode: uv must have shape (N, 2), got {uv.shape}")
    R = triplane.shape[0]
    y = jnp.clip(uv[:, 1] * R - 0.5, 0.0, R - 1.0)
    y0 = jnp.clip(jnp.floor(y), 0, R - 2).astype(jnp.int32)
    fy = (y - y0)[:, None].astype(triplane.dtype)
    if wrap_u:
        x = uv[:, 0] * R - 0.5
        xf = jnp.floor(x)
        fx = (x - xf)[:, None].astype(triplane.dtype)
        x0 = jnp.mod(xf, R).astype(jnp.int32)
        x1 = jnp.mod(x0 + 1, R)
    else:
        x = jnp.clip(uv[:, 0] * R - 0.5, 0.0, R - 1.0)
        x0 = jnp.clip(jnp.floor(x), 0, R - 2).astype(jnp.int32)
        fx = (x - x0)[:, None].astype(triplane.dtype)
        x1 = x0 + 1
    t00 = triplane[y0, x0]
    t01 = triplane[y0, x1]
    t10 = triplane[y0 + 1, x0]
    t11 = triplane[y0 + 1, x1]
    top = t00 + (t01 - t00) * fx
    bottom = t10 + (t11 - t10) * fx
    return top + (bottom - top) * fy


def encode_mesh(mesh: Mesh, resolution: int) -> tuple[Float[Array, "R R 3"], Bool[Array, "R R"]]:
    """Convenience: :func:`uv_raster` then :func:`encode` for a concrete mesh.

    Args:
        mesh: the :class:`~machlib.Mesh` (concrete arrays; use :func:`encode` under ``jit``).
        resolution: map size ``R``.

    Returns:
        ``(triplane, mask)``: the ``(R, R, 3)`` position map and the ``(R, R)`` validity mask.
    """
    raster = uv_raster(mesh, resolution)
    return encode(jnp.asarray(mesh.vertices), raster), raster.mask


def decode_mesh(triplane: Float[ArrayLike, "R R 3"], mesh: Mesh) -> Mesh:
    """Rebuild a mesh from a triplane: each vertex is sampled at its texture coordinate.

    Seam and pole vertices are decoded once (from one of their UVs), so the result stays
    welded (closed if ``mesh`` is closed).

    Args:
        triplane: ``(R, R, 3)`` position map in ``mesh``'s UV layout.
        mesh: the topology (faces, UVs) to decode into.

    Returns:
        A :class:`~machlib.Mesh` with the same topology and decoded vertices.
    """
    vertices = decode(triplane, jnp.asarray(mesh.vertex_uv(), dtype=jnp.asarray(triplane).dtype))
    return Mesh(vertices, mesh.faces, mesh.uv, mesh.faces_uv)
