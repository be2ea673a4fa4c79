"""PBR maps for the head (DreamFace's physically based textures): a tangent-space normal map of the
fine geometric detail a fitted position map carries beyond the mesh, and specular / roughness maps
by facial region.

The normal map is built in three steps, each a pure function:

1. :func:`texel_frame` (numpy, once per topology and resolution): which triangle of the mesh
   *split at UV seams* (as glTF stores it, :meth:`machlib.Mesh.split`) covers each texel, and
   where. Texels outside the chart take the nearest triangle, clamped to it.
2. :func:`surface_height`: the signed distance, along the mesh's interpolated normal, from the
   mesh's surface to a position map (``(R, R, 3)``, e.g. the fitted triplane brought to texture
   resolution): the detail the mesh's vertices do not carry.
3. :func:`detail_normal_map`: the normals of the surface displaced by that height, expressed in the
   per-texel tangent frame glTF viewers build from the file's ``NORMAL`` and ``TANGENT``
   attributes (:func:`mesh_tangents`, equal to :func:`machlib.export.vertex_tangents` on the split
   mesh), encoded in ``[0, 1]``. The height fades to zero (with zero slope) towards chart borders,
   so both sides of a UV seam shade exactly like the mesh and no seam shows.
"""

from __future__ import annotations

import hashlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int
from scipy import ndimage

from .._errors import InputError
from .._jit import one_shot_jit
from .._mesh import Mesh
from .._preview import sample_texture_np
from .._raster import rasterize_np
from .._strand_raster import _vertex_normals_np
from ..geometry._triplane import _fill_outside
from ..render._brdf import _ggx_lobe
from ..render._rasterize import _bucket
from ._fit import _camera_centre

__all__ = [
    "FOREHEAD_LANDMARKS", "NOSE_LANDMARKS", "PBR_REGION_VALUES", "TexelFrame", "detail_normal_map", "ggx_specular",
    "mesh_tangents", "region_pbr_maps", "sheen_specular_map", "super_resolve_albedo", "surface_height", "texel_frame",
]


class TexelFrame(eqx.Module):
    """A mesh's UV chart rasterised for per-texel surface frames (build with :func:`texel_frame`).

    The mesh is split at UV seams as glTF stores it (:meth:`machlib.Mesh.split`): ``N`` split
    vertices, each with one position vertex (``source``) and one texture coordinate.

    Attributes:
        faces: ``(F, 3)`` int32 split-vertex triangles.
        source: ``(N,)`` int32 position-vertex index of each split vertex.
        uv: ``(N, 2)`` float32 texture coordinates of the split vertices (origin top-left, ``v`` down).
        face: ``(R, R)`` int32 triangle covering each texel (outside the chart: the nearest one).
        bary: ``(R, R, 3)`` float32 barycentrics of the texel centre in that triangle (clamped to
            it outside the chart).
        border: ``(R, R)`` float32 distance in texels from each texel centre to the chart's outside
            (0 outside the chart).
        num_vertices: ``V``, the mesh's number of position vertices (static).
    """

    faces: Int[Array, "F 3"]
    source: Int[Array, " N"]
    uv: Float[Array, "N 2"]
    face: Int[Array, "R R"]
    bary: Float[Array, "R R 3"]
    border: Float[Array, "R R"]
    num_vertices: int = eqx.field(static=True, default=0)

    @property
    def resolution(self) -> int:
        """The map size ``R``."""
        return int(self.face.shape[0])

    @property
    def mask(self) -> Bool[Array, "R R"]:
        """``(R, R)`` True where the texel centre lies inside the chart."""
        return self.border > 0


_FRAMES: dict = {}


def texel_frame(mesh: Mesh, resolution: int) -> TexelFrame:
    """Rasterise ``mesh``'s UV chart, split at seams, at ``resolution × resolution`` (numpy, once).

    Texel ``(i, j)`` has its centre at ``((j + 0.5) / R, (i + 0.5) / R)`` (see
    :func:`machlib.geometry.uv_raster`). Cached per topology, UVs and resolution.

    Args:
        mesh: a :class:`~machlib.Mesh` with a non-overlapping UV layout.
        resolution: ``R``, the map size.

    Returns:
        The :class:`TexelFrame`.

    Raises:
        InputError: a resolution below 8, or UVs that cover no texel centre.

    Example:
        >>> import numpy as np
        >>> from machlib import Mesh
        >>> from machlib.texture import texel_frame
        >>> sq = Mesh(np.array([[0., 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]), np.array([[0, 1, 2], [0, 2, 3]]),
        ...           np.array([[0., 1], [1, 1], [1, 0], [0, 0]]), np.array([[0, 1, 2], [0, 2, 3]]))
        >>> fr = texel_frame(sq, 8)
        >>> fr.face.shape, bool(fr.mask.all())
        ((8, 8), True)
    """
    if not isinstance(resolution, (int, np.integer)) or resolution < 8:
        raise InputError(f"texel_frame: resolution must be an int >= 8, got {resolution!r}")
    R = int(resolution)
    _, uv, faces, src = mesh.split()
    faces = np.ascontiguousarray(faces, np.int64)
    uv = np.asarray(uv, np.float64)
    key = (hashlib.sha1(b"".join(np.ascontiguousarray(a).tobytes() for a in (faces, uv, src))).hexdigest(), R)
    hit = _FRAMES.get(key)
    if hit is not None:
        return hit
    px = uv * R
    tri, bary = rasterize_np(px, faces, (R, R))
    inside = tri >= 0
    if not inside.any():
        raise InputError("texel_frame: the mesh's UV triangles cover no texel centre")
    tri, bary = _fill_outside(tri, bary, faces, px)
    border = ndimage.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
    frame = TexelFrame(
        faces=jnp.asarray(faces, jnp.int32), source=jnp.asarray(src, jnp.int32), uv=jnp.asarray(uv, jnp.float32),
        face=jnp.asarray(tri, jnp.int32), bary=jnp.asarray(bary, jnp.float32),
        border=jnp.asarray(np.where(inside, border, 0.0), jnp.float32), num_vertices=int(mesh.num_vertices),
    )
    if len(_FRAMES) >= 8:
        _FRAMES.pop(next(iter(_FRAMES)))
    _FRAMES[key] = frame
    return frame


def _safe_normalize(x: Array, eps: float = 1e-30) -> Array:
    sq = jnp.sum(x * x, -1, keepdims=True)
    ok = sq > eps
    return jnp.where(ok, x / jnp.sqrt(jnp.where(ok, sq, 1.0)), 0.0)


def _check_vertices(fn: str, vertices, frame: TexelFrame) -> Array:
    v = jnp.asarray(vertices)
    if v.ndim != 2 or v.shape != (frame.num_vertices, 3):
        raise InputError(f"{fn}: vertices must be the ({frame.num_vertices}, 3) positions of the frame's mesh, "
                         f"got shape {v.shape}")
    if not jnp.issubdtype(v.dtype, jnp.floating):
        v = v.astype(jnp.float32)
    return v


def mesh_tangents(vertices: Float[ArrayLike, "V 3"], frame: TexelFrame) -> tuple[Float[Array, "N 3"], Float[Array, "N 4"]]:
    """Unit normals and glTF tangents of the split mesh's vertices (pure JAX, differentiable).

    Normals are area-weighted over the position vertex (welded across seams, like the GLB's
    ``NORMAL``); tangents follow :func:`machlib.export.vertex_tangents` (the direction of
    increasing ``u``, made orthogonal to the normal; ``w = ±1`` so that the bitangent
    ``w · cross(normal, tangent)`` points "up" in the image, where a normal map's green channel
    points).

    Args:
        vertices: ``(V, 3)`` positions of the mesh ``frame`` was built from.
        frame: the :class:`TexelFrame`.

    Returns:
        ``(normals (N, 3), tangents (N, 4))`` per split vertex.
    """
    v = _check_vertices("mesh_tangents", vertices, frame)
    p = v[frame.source]
    f = frame.faces
    fn = jnp.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]])
    fpos = frame.source[f]
    vn = jnp.zeros_like(v).at[fpos.reshape(-1)].add(jnp.repeat(fn, 3, axis=0))
    n = _safe_normalize(vn)[frame.source]
    t = jnp.stack([frame.uv[:, 0], 1.0 - frame.uv[:, 1]], 1).astype(v.dtype)
    e1, e2 = p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]]
    d1, d2 = t[f[:, 1]] - t[f[:, 0]], t[f[:, 2]] - t[f[:, 0]]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    sgn = jnp.sign(det)  # (1 / det) · |det|
    tan = (e1 * d2[:, 1:] - e2 * d1[:, 1:]) * sgn[:, None]
    bit = (e2 * d1[:, :1] - e1 * d2[:, :1]) * sgn[:, None]
    T = jnp.zeros_like(p).at[f.reshape(-1)].add(jnp.repeat(tan, 3, axis=0))
    B = jnp.zeros_like(p).at[f.reshape(-1)].add(jnp.repeat(bit, 3, axis=0))
    T = T - n * jnp.sum(n * T, 1, keepdims=True)
    helper = jnp.where(jnp.abs(n[:, :1]) < 0.9, jnp.array([1.0, 0.0, 0.0], v.dtype), jnp.array([0.0, 1.0, 0.0], v.dtype))
    alt = jnp.cross(n, helper)
    usable = jnp.sum(T * T, 1, keepdims=True) > 1e-24 * jnp.maximum(jnp.sum(p * p, 1, keepdims=True), 1e-30)
    T = _safe_normalize(jnp.where(usable, T, alt))
    w = jnp.where(jnp.sum(jnp.cross(n, T) * B, 1) < 0, -1.0, 1.0).astype(v.dtype)
    return n, jnp.concatenate([T, w[:, None]], 1)


def _texel_surface(v: Array, frame: TexelFrame):
    """Per texel: the mesh's position, interpolated unit normal, tangent (xyz, w) and the face's
    Jacobian ``dS/d(x, y)`` in texel units (columns: along ``x = u·R``, along ``y = v·R``)."""
    R = frame.resolution
    n, tg = mesh_tangents(v, frame)
    corners = frame.faces[frame.face]  # (R, R, 3) split vertices
    b = frame.bary.astype(v.dtype)
    pos = v[frame.source]
    S = jnp.einsum("ijk,ijkc->ijc", b, pos[corners])
    N = _safe_normalize(jnp.einsum("ijk,ijkc->ijc", b, n[corners]))
    T = jnp.einsum("ijk,ijkc->ijc", b, tg[corners][..., :3])
    T = _safe_normalize(T - N * jnp.sum(N * T, -1, keepdims=True))
    w = tg[corners[..., 0], 3]
    P = pos[corners]  # (R, R, 3, 3)
    X = frame.uv.astype(v.dtype)[corners] * R  # (R, R, 3, 2)
    E = jnp.stack([P[..., 1, :] - P[..., 0, :], P[..., 2, :] - P[..., 0, :]], -1)  # (R, R, 3, 2)
    D = jnp.stack([X[..., 1, :] - X[..., 0, :], X[..., 2, :] - X[..., 0, :]], -1)  # (R, R, 2, 2)
    det = D[..., 0, 0] * D[..., 1, 1] - D[..., 0, 1] * D[..., 1, 0]
    ok = jnp.abs(det) > 1e-12
    det = jnp.where(ok, det, 1.0)
    Dinv = jnp.stack([jnp.stack([D[..., 1, 1], -D[..., 0, 1]], -1), jnp.stack([-D[..., 1, 0], D[..., 0, 0]], -1)], -2)
    J = jnp.einsum("ijca,ijab->ijcb", E, Dinv / det[..., None, None]) * ok[..., None, None]
    return S, N, T, w, J


def _check_frame(fn: str, frame) -> None:
    if not isinstance(frame, TexelFrame):
        raise InputError(f"{fn}: frame must be a TexelFrame (see texel_frame), got {type(frame).__name__}")


@jax.jit
def surface_height(position_map: Float[ArrayLike, "R R 3"], vertices: Float[ArrayLike, "V 3"],
                   frame: TexelFrame) -> Float[Array, "R R"]:
    """Signed height of a position map above the mesh, along the mesh's interpolated normal.

    ``h = (P(texel) − S(texel)) · N(texel)``: ``S`` the mesh's surface point at the texel
    (barycentric interpolation of ``vertices``), ``N`` its interpolated unit normal. For a
    position map encoded from the same mesh at the same resolution the height is zero; what a
    finer map (the fitted triplane brought to texture resolution) carries beyond the mesh's
    vertices shows as height. Pure JAX, differentiable in both arrays, jit/vmap-safe.

    Args:
        position_map: ``(R, R, 3)`` head-space points (metres) in the mesh's UV layout at the
            frame's resolution.
        vertices: ``(V, 3)`` positions of the mesh ``frame`` was built from.
        frame: the :class:`TexelFrame`.

    Returns:
        ``(R, R)`` heights in the vertices' unit (metres), positive outwards.

    Raises:
        InputError: bad shapes.

    Example:
        >>> import numpy as np
        >>> from machlib import Mesh
        >>> from machlib.geometry import encode, uv_raster
        >>> from machlib.texture import surface_height, texel_frame
        >>> sq = Mesh(np.array([[0., 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]), np.array([[0, 1, 2], [0, 2, 3]]),
        ...           np.array([[0., 1], [1, 1], [1, 0], [0, 0]]), np.array([[0, 1, 2], [0, 2, 3]]))
        >>> pm = encode(sq.vertices, uv_raster(sq, 8)) + np.array([0, 0, 0.01])  # lifted 1 cm
        >>> round(float(surface_height(pm, sq.vertices, texel_frame(sq, 8)).mean()), 4)
        0.01
    """
    _check_frame("surface_height", frame)
    pm = jnp.asarray(position_map)
    R = frame.resolution
    if pm.shape != (R, R, 3):
        raise InputError(f"surface_height: position_map must have shape ({R}, {R}, 3) like the frame, got {pm.shape}")
    v = _check_vertices("surface_height", vertices, frame)
    S, N, _, _, _ = _texel_surface(v.astype(jnp.result_type(v, pm)), frame)
    return jnp.sum((pm - S) * N, -1)


def _smoothstep(x):
    x = jnp.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def detail_normal_map(height: Float[ArrayLike, "R R"], vertices: Float[ArrayLike, "V 3"], frame: TexelFrame, *,
                      strength: float = 1.0, fade: float = 4.0) -> Float[Array, "R R 3"]:
    """Tangent-space normal map of the mesh displaced by ``height`` along its normals.

    The displaced surface ``S + h·N`` has, to first order, the normal ``N − ∇ₛh`` (``∇ₛh`` the
    surface gradient of the height: the texel-space gradient mapped through each triangle's
    Jacobian). It is written in the frame a glTF viewer builds per pixel from the interpolated
    ``NORMAL`` and ``TANGENT`` (:func:`mesh_tangents`): ``x`` along the tangent, ``y`` along
    ``w · cross(N, T)`` (up in the image), ``z`` along the normal; encoded as ``(n + 1) / 2``.
    The height is multiplied by ``smoothstep(d / fade)²`` first (``d`` the distance in texels to
    the chart's edge), which is zero with zero slope on chart borders: both sides of a UV seam
    then shade like the mesh, and the map has no seam. Pure JAX, differentiable, jit/vmap-safe.

    Args:
        height: ``(R, R)`` heights (metres, :func:`surface_height`).
        vertices: ``(V, 3)`` positions of the mesh the map is for (the exported head; it may
            differ from the mesh the height was measured on by a pose or expression).
        frame: the :class:`TexelFrame` of that mesh.
        strength: gain on the height's slope (1: the geometric normal).
        fade: width in texels of the fade towards chart borders (``> 0``).

    Returns:
        ``(R, R, 3)`` float normal map in ``[0, 1]`` (``(0.5, 0.5, 1)`` where flat).

    Raises:
        InputError: bad shapes or options.

    Example:
        >>> import numpy as np
        >>> from machlib import Mesh
        >>> from machlib.texture import detail_normal_map, texel_frame
        >>> sq = Mesh(np.array([[0., 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]), np.array([[0, 1, 2], [0, 2, 3]]),
        ...           np.array([[0., 1], [1, 1], [1, 0], [0, 0]]), np.array([[0, 1, 2], [0, 2, 3]]))
        >>> fr = texel_frame(sq, 16)
        >>> detail_normal_map(np.zeros((16, 16)), sq.vertices, fr)[8, 8].tolist()
        [0.5, 0.5, 1.0]
    """
    _check_frame("detail_normal_map", frame)
    if not (np.isfinite(strength) and np.isfinite(fade) and fade > 0):
        raise InputError(f"detail_normal_map: strength must be finite and fade > 0, got {strength}, {fade}")
    h = jnp.asarray(height)
    R = frame.resolution
    if h.shape != (R, R):
        raise InputError(f"detail_normal_map: height must have shape ({R}, {R}) like the frame, got {h.shape}")
    v = _check_vertices("detail_normal_map", vertices, frame)
    return _detail_normal_map(h, v, frame, float(strength), float(fade))


@one_shot_jit
def _detail_normal_map(h, v, frame, strength, fade):
    dtype = jnp.result_type(h, v)
    h = h.astype(dtype)
    _, N, T, w, J = _texel_surface(v.astype(dtype), frame)
    h = h * _smoothstep((frame.border.astype(dtype) - 0.5) / fade) ** 2  # 0 on the chart's edge, flat there
    hp = jnp.pad(h, 1, mode="edge")
    gx = 0.5 * (hp[1:-1, 2:] - hp[1:-1, :-2])
    gy = 0.5 * (hp[2:, 1:-1] - hp[:-2, 1:-1])
    g = jnp.stack([gx, gy], -1) * strength
    G = jnp.einsum("ijca,ijcb->ijab", J, J)  # metric of the chart
    det = G[..., 0, 0] * G[..., 1, 1] - G[..., 0, 1] * G[..., 1, 0]
    ok = det > 1e-30
    det = jnp.where(ok, det, 1.0)
    Ginv = jnp.stack([jnp.stack([G[..., 1, 1], -G[..., 0, 1]], -1), jnp.stack([-G[..., 1, 0], G[..., 0, 0]], -1)], -2)
    grad = jnp.einsum("ijcb,ijba,ija->ijc", J, Ginv / det[..., None, None], g) * ok[..., None]
    n = _safe_normalize(N - grad)
    B = w[..., None] * jnp.cross(N, T)
    local = jnp.stack([jnp.sum(n * T, -1), jnp.sum(n * B, -1), jnp.sum(n * N, -1)], -1)
    flat = jnp.array([0.0, 0.0, 1.0], dtype)
    local = jnp.where(jnp.sum(N * N, -1, keepdims=True) > 0.5, _safe_normalize(local), flat)
    return 0.5 * local + 0.5


# ------------------------------------------------------------------------------------------------
PBR_REGION_VALUES = {
    #            (roughness, specular)
    "skin": (0.55, 0.70),
    "tzone": (0.40, 1.00),
    "lips": (0.35, 0.90),
    "eyes": (0.35, 0.80),
    "brows": (0.80, 0.40),
    "nostrils": (0.80, 0.30),
    "ears": (0.60, 0.60),
    "neck": (0.60, 0.60),
    "scalp": (0.75, 0.50),
}
"""Roughness and specular intensity of each facial region (both in ``[0, 1]``).

Specular is glTF's ``KHR_materials_specular`` factor: 1 is the default dielectric reflectance
(F0 = 0.04); skin's F0 is about 0.028 (0.7). The oily T-zone (forehead and nose) is shinier and
smoother than the cheeks, lips smoother still; brows, nostrils and scalp are rough and dull."""

FOREHEAD_LANDMARKS = (10, 338, 297, 332, 284, 300, 293, 334, 296, 336, 9, 107, 66, 105, 63, 70, 54, 103, 67, 109)
"""MediaPipe FaceMesh landmarks whose convex hull is the forehead (hairline to brows)."""
NOSE_LANDMARKS = (168, 6, 197, 195, 5, 4, 1, 2, 98, 327, 129, 358, 49, 279, 193, 417, 122, 351)
"""MediaPipe FaceMesh landmarks whose convex hull is the nose (bridge, tip, wings)."""


def _hull_mask(points: np.ndarray, R: int) -> np.ndarray:
    """``(R, R)`` float32: 1 where the texel centre lies inside the convex hull of UV ``points``."""
    from scipy.spatial import ConvexHull

    hull = points[ConvexHull(points).vertices]  # counter-clockwise in (u, v)
    c = (np.arange(R) + 0.5) / R
    U, V = np.meshgrid(c, c)
    inside = np.ones((R, R), bool)
    for a, b in zip(hull, np.roll(hull, -1, axis=0)):
        inside &= (b[0] - a[0]) * (V - a[1]) - (b[1] - a[1]) * (U - a[0]) >= 0
    return inside.astype(np.float32)


def region_pbr_maps(regions: dict, landmark_uv: ArrayLike, resolution: int, *,
                    values: dict | None = None, feather: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Roughness and specular maps of a head by facial region.

    Regions (later ones win where they overlap): skin; the T-zone, the convex hulls of the
    forehead's (:data:`FOREHEAD_LANDMARKS`) and the nose's (:data:`NOSE_LANDMARKS`) landmarks in UV;
    then the template's ``neck``, ``ears``, ``scalp``, ``lips``, ``eyes``, ``brows`` and
    ``nostrils`` masks. Each mask is feathered (a Gaussian of ``feather`` texels at ``R = 512``,
    scaled with ``R``), so region borders are smooth.

    Args:
        regions: name → ``(r, r)`` mask in ``[0, 1]`` in the head's UV layout (e.g.
            :attr:`machlib.geometry.Template.regions`); missing names are skipped.
        landmark_uv: ``(478, 2)`` UV coordinates of the FaceMesh landmarks
            (:attr:`~machlib.geometry.Template.landmark_uv`).
        resolution: output size ``R``.
        values: region → ``(roughness, specular)``; default :data:`PBR_REGION_VALUES`.
        feather: border softness, texels at ``R = 512``.

    Returns:
        ``(roughness, specular)``: two ``(R, R)`` float32 maps in ``[0, 1]``.

    Raises:
        InputError: bad landmarks, resolution or values.
    """
    if not isinstance(resolution, (int, np.integer)) or resolution < 8:
        raise InputError(f"region_pbr_maps: resolution must be an int >= 8, got {resolution!r}")
    lm = np.asarray(landmark_uv, np.float64)
    if lm.ndim != 2 or lm.shape[1] != 2 or lm.shape[0] < 478 or not np.isfinite(lm).all():
        raise InputError(f"region_pbr_maps: landmark_uv must be finite (478, 2), got shape {lm.shape}")
    vals = dict(PBR_REGION_VALUES, **(values or {}))
    for k, (r, s) in vals.items():
        if not (0 <= r <= 1 and 0 <= s <= 1):
            raise InputError(f"region_pbr_maps: values[{k!r}] must be two numbers in [0, 1], got {(r, s)}")
    R = int(resolution)
    key = (hashlib.sha1(b"".join([lm.tobytes(), repr(sorted(vals.items())).encode(), repr(float(feather)).encode()]
                             + [k.encode() + np.ascontiguousarray(regions[k], np.float32).tobytes()
                                for k in sorted(regions)])).hexdigest(), R)
    hit = _PBR_MAPS.get(key)
    if hit is not None:  # a pure function of its inputs: one template's maps are made once per process
        return hit[0].copy(), hit[1].copy()
    sigma = max(float(feather) * R / 512.0, 0.5)

    def soft(mask):  # numpy: no program to compile for a map made once per template
        return np.clip(ndimage.gaussian_filter(np.asarray(mask, np.float32), sigma, mode="nearest", truncate=3.0),
                       0.0, 1.0)

    def resized(name):
        m = np.asarray(regions[name], np.float32)
        idx = np.minimum(((np.arange(R) + 0.5) * m.shape[0] / R).astype(int), m.shape[0] - 1)
        return m[np.ix_(idx, idx)]

    rough = np.full((R, R), vals["skin"][0], np.float32)
    spec = np.full((R, R), vals["skin"][1], np.float32)
    tz = np.maximum(_hull_mask(lm[list(FOREHEAD_LANDMARKS)], R), _hull_mask(lm[list(NOSE_LANDMARKS)], R))
    layers = [("tzone", tz)]
    layers += [(k, resized(k)) for k in ("neck", "ears", "scalp", "lips", "eyes", "brows", "nostrils") if k in regions]
    for name, m in layers:
        a = soft(m)
        rough = rough * (1 - a) + vals[name][0] * a
        spec = spec * (1 - a) + vals[name][1] * a
    out = np.clip(rough, 0, 1).astype(np.float32), np.clip(spec, 0, 1).astype(np.float32)
    if len(_PBR_MAPS) >= 4:
        _PBR_MAPS.pop(next(iter(_PBR_MAPS)))
    _PBR_MAPS[key] = out
    return out[0].copy(), out[1].copy()


_PBR_MAPS: dict = {}


# ------------------------------------------------------------------------------------------------
def ggx_specular(normals: Float[ArrayLike, "*#batch 3"], view: Float[ArrayLike, "*#batch 3"],
                 light: Float[ArrayLike, "*#batch 3"], roughness: Float[ArrayLike, "*#batch"],
                 specular: Float[ArrayLike, "*#batch"]) -> Float[Array, "*batch"]:
    """The specular lobe of the avatar's glTF material, per unit irradiance of a distant light.

    glTF 2.0's metallic-roughness BRDF for a dielectric (metallic 0, IOR 1.5) with
    ``KHR_materials_specular`` (the maps of :func:`region_pbr_maps`), specular layer only, times
    ``n·l``: the radiance the lobe reflects towards ``view`` when a light of irradiance 1 (on a
    surface facing it) shines from ``light``::

        f = specular · F(v·h) · D(n·h) · Vis(n·l, n·v) · (n·l)
        F = 0.04 + 0.96 (1 − v·h)⁵                                    (Schlick)
        D = α² / (π ((n·h)² (α² − 1) + 1)²),  α = roughness²           (GGX / Trowbridge-Reitz)
        Vis = 1 / (2 (n·l √((n·v)²(1 − α²) + α²) + n·v √((n·l)²(1 − α²) + α²)))   (Smith, height-correlated)

    ``h`` is the half vector of ``view`` and ``light``. Zero where the light or the viewer is
    below the surface. The diffuse layer (glTF weighs it by ``1 − specular · F``, 1-4 % here)
    is not included: :func:`machlib.texture.delight_sh`'s SH shading stands for it. Roughness is
    clamped below at 0.03 (``α`` 1e-3), as viewers do. Pure JAX, differentiable (NaN-safe at
    zero vectors and grazing angles), jit/vmap-safe; arguments broadcast against each other.

    Args:
        normals: ``(..., 3)`` surface normals (normalised here).
        view: ``(..., 3)`` directions from the surface towards the viewer (normalised here).
        light: ``(..., 3)`` directions from the surface towards the light (normalised here).
        roughness: ``(...)`` glTF roughness in ``[0, 1]``.
        specular: ``(...)`` ``KHR_materials_specular`` factor in ``[0, 1]`` (1: F0 = 0.04).

    Returns:
        ``(...)`` reflected radiance per unit irradiance (linear; multiply by the light's
        irradiance and add to the diffuse colour in linear RGB).

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import ggx_specular
        >>> up = jnp.array([0.0, 0.0, 1.0])
        >>> f = ggx_specular(up, up, up, jnp.array(0.5), jnp.array(1.0))  # mirror direction
        >>> round(float(f), 5)  # 0.04 · 1 / (π α²) · 1/4
        0.05093
    """
    n = _safe_normalize(jnp.asarray(normals))
    v = _safe_normalize(jnp.asarray(view))
    l = _safe_normalize(jnp.asarray(light))
    dt = jnp.result_type(n.dtype, v.dtype, l.dtype)
    r = jnp.asarray(roughness, dt)
    s = jnp.asarray(specular, dt)
    h = _safe_normalize(v + l)
    return _ggx_lobe(jnp, jnp.sum(n * l, -1), jnp.sum(n * v, -1), jnp.sum(n * h, -1), jnp.sum(v * h, -1), r, s)


_ggx_jit = jax.jit(ggx_specular)


def _sh_light_direction(coeffs: ArrayLike) -> np.ndarray | None:
    """The unit direction towards the dominant light of ``(9, 3)`` SH radiance coefficients: their
    band-1 vector (``Y1−1 ∝ y, Y10 ∝ z, Y11 ∝ x``) weighted by luminance. ``None`` for an
    environment without one (band 1 zero)."""
    c = np.asarray(coeffs, np.float64)
    b1 = c[1:4] @ np.array([0.2126, 0.7152, 0.0722])
    d = np.array([b1[2], b1[0], b1[1]])
    norm = float(np.linalg.norm(d))
    if not np.isfinite(norm) or norm < 1e-9:
        return None
    return d / norm


def _specular_image(vertices: ArrayLike, faces: ArrayLike, uv: ArrayLike, faces_uv: ArrayLike, camera, rast,
                    roughness: ArrayLike, specular: ArrayLike, light: ArrayLike) -> np.ndarray:
    """``(H, W)`` float32 :func:`ggx_specular` of a textured mesh seen in ``camera`` (numpy out).

    Per covered pixel of ``rast`` (:func:`machlib.render.rasterize` of the mesh in ``camera``):
    the area-weighted vertex normal interpolated with the raster's barycentrics (as
    :func:`machlib.render.render_textured` shades), the view direction towards the camera's
    centre, and the ``roughness`` / ``specular`` maps sampled bilinearly at the pixel's texture
    coordinate. 0 where nothing is covered. The interpolation is numpy (no program to compile)."""
    tri_all = np.asarray(rast.triangle)
    covered = tri_all >= 0
    out = np.zeros(covered.shape, np.float32)
    if not covered.any():
        return out
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    vn = _vertex_normals_np(v, f)  # unit per vertex, then interpolated
    tri = tri_all[covered]
    bary = np.asarray(rast.barycentric, np.float64)[covered]

    def at(attr, idx):
        return np.einsum("nk,nkc->nc", bary, np.asarray(attr, np.float64)[idx[tri]])

    p, n = at(v, f), at(vn, f)
    t = at(uv, np.asarray(faces_uv, np.int64))
    centre = np.asarray(_camera_centre(camera), np.float64)

    def sample(m):
        return sample_texture_np(np.asarray(m, np.float32)[..., None], t)[:, 0]

    # padded to a bucket of sizes (render's fragment buckets) so that portraits of any size
    # share a few programs
    m = len(tri)
    size = _bucket(m)

    def pad(x, fill):
        x = np.asarray(x, np.float32)
        return np.concatenate([x, np.full((size - m,) + x.shape[1:], fill, np.float32)])

    lobe = _ggx_jit(jnp.asarray(pad(n, 1.0)), jnp.asarray(pad(centre - p, 1.0)),
                    jnp.asarray(np.asarray(light, np.float32)), jnp.asarray(pad(sample(roughness), 1.0)),
                    jnp.asarray(pad(sample(specular), 0.0)))
    out[covered] = np.asarray(lobe)[:m]
    return out


def _fit_specular_irradiance(lobe: ArrayLike, residual: ArrayLike, weights: ArrayLike) -> float:
    """The irradiance ``E >= 0`` of a white light whose specular lobe ``E · lobe`` best explains
    ``residual`` (photo − diffuse render, linear RGB ``(H, W, 3)``) in weighted least squares over
    ``weights`` ``(H, W)``, in closed form: ``max(0, Σ w·lobe·Σ_c r / (3 Σ w·lobe²))``."""
    b = np.asarray(lobe, np.float64) * np.asarray(weights, np.float64)
    den = 3.0 * float(np.sum(b * np.asarray(lobe, np.float64)))
    if den <= 1e-12:
        return 0.0
    return max(0.0, float(np.sum(b[..., None] * np.asarray(residual, np.float64))) / den)


def _sheen_light_direction(radiance: np.ndarray, normals: np.ndarray, view: np.ndarray) -> np.ndarray | None:
    """The unit direction towards the light the photo's sheen reflects: the mirror direction of the
    view about the normal, ``2 (n·v) n − v``, averaged over the texels weighted by their sheen
    radiance squared (the brightest highlights lie nearest the mirror direction). ``None`` where
    there is no sheen."""
    w = np.asarray(radiance, np.float64) ** 2
    total = float(w.sum())
    if not np.isfinite(total) or total <= 1e-12:
        return None
    n = np.asarray(normals, np.float64)
    v = np.asarray(view, np.float64)
    refl = 2.0 * np.sum(n * v, -1, keepdims=True) * n - v
    d = (w[..., None] * refl).reshape(-1, 3).sum(0)
    norm = float(np.linalg.norm(d))
    return None if norm < 1e-9 * total else d / norm


def sheen_specular_map(radiance: ArrayLike, normals: ArrayLike, positions: ArrayLike, centre: ArrayLike,
                       roughness: ArrayLike, specular: ArrayLike, weights: ArrayLike, *, light: ArrayLike | None = None,
                       lights: tuple = (), fit_weights: ArrayLike | None = None, prior: float = 0.5) -> tuple[np.ndarray, float, np.ndarray | None, np.ndarray]:
    """The ``KHR_materials_specular`` map that the photo's sheen (:func:`sheen_layer`) asks for.

    Each seen texel's sheen radiance ``h`` (linear, as the camera saw it) is modelled as the
    glTF lobe of one white light, ``E · s · lobe`` (:func:`ggx_specular` with the texel's normal,
    its direction towards the camera centre, the light and ``roughness``; ``s`` the texel's
    specular factor). The light's direction is the sheen's mirror direction
    (:func:`_sheen_light_direction`) unless ``light`` is given, or of it and the candidates
    ``lights`` the one whose lobe explains the most of the sheen; ``E`` is the irradiance with which
    the region map ``specular`` explains the sheen best (least squares over ``fit_weights``). Per
    texel, ``s`` is the maximum a-posteriori estimate with the region value as prior::

        s = (E·lobe·h + λ·s_region) / ((E·lobe)² + λ),   λ = prior · mean((E·lobe)²)

    clipped to ``[0, 1]``: where the lobe reaches (near the light's mirror direction) the photo
    decides how glossy the skin is, elsewhere the region value stays. Numpy (no program to
    compile).

    Args:
        radiance: ``(R, R)`` the sheen radiance per texel (linear), 0 where none.
        normals: ``(R, R, 3)`` unit normals per texel (head space).
        positions: ``(R, R, 3)`` surface points per texel (head space).
        centre: ``(3,)`` the camera centre (head space).
        roughness: ``(R, R)`` glTF roughness (the region map).
        specular: ``(R, R)`` the region specular map (the prior).
        weights: ``(R, R)`` the seen texels' weights in ``[0, 1]`` (0: the region value stays).
        light: optional unit direction towards the light (default: the sheen's).
        lights: other candidate directions (e.g. the SH lighting's dominant light).
        fit_weights: ``(R, R)`` the texels whose sheen was measured, for ``E`` and the light
            (default ``weights``; e.g. the seen skin, where ``weights`` holds the eyes too).
        prior: the prior's weight ``λ`` relative to the mean squared lobe.

    Returns:
        ``(specular_map (R, R) float32, E, light direction or None, reproduced (R, R))``: the
        map, the irradiance, the light, and ``E · s · lobe`` (the sheen radiance the map gives
        back in the photo's view). Without a light (no sheen, no ``light``) the region map is
        returned unchanged with ``E = 0``.
    """
    h = np.maximum(np.asarray(radiance, np.float64), 0.0)
    spec = np.asarray(specular, np.float64)
    R = h.shape
    n = np.asarray(normals, np.float64)
    p = np.asarray(positions, np.float64)
    w = np.clip(np.asarray(weights, np.float64), 0.0, 1.0)
    wf = w if fit_weights is None else np.clip(np.asarray(fit_weights, np.float64), 0.0, 1.0)
    if wf.shape != R:
        raise InputError(f"sheen_specular_map: fit_weights must have shape {R}, got {wf.shape}")
    if n.shape != R + (3,) or p.shape != R + (3,) or spec.shape != R or w.shape != R or np.shape(roughness) != R:
        raise InputError(f"sheen_specular_map: maps must share the radiance's shape {R} (normals, positions with 3 "
                         f"channels); got {n.shape}, {p.shape}, {np.shape(roughness)}, {spec.shape}, {w.shape}")
    v = np.asarray(centre, np.float64)[None, None] - p
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    first = _sheen_light_direction(h * wf, n, v) if light is None else np.asarray(light, np.float64)
    candidates = [np.asarray(c, np.float64) for c in ([first] if first is not None else []) + list(lights)
                  if c is not None and float(np.linalg.norm(c)) > 1e-9]
    if not candidates:
        return spec.astype(np.float32), 0.0, None, np.zeros(R, np.float32)

    def lobe_of(l):
        hv = v + l[None, None]
        hv = hv / np.maximum(np.linalg.norm(hv, axis=-1, keepdims=True), 1e-12)
        lobe = _ggx_lobe(np, n @ l, np.sum(n * v, -1), np.sum(n * hv, -1), np.sum(v * hv, -1),
                         np.asarray(roughness, np.float64), 1.0)
        lobe = np.where(np.isfinite(lobe), lobe, 0.0) * (w > 0)
        den = float(np.sum(wf * (lobe * spec) ** 2))
        num = float(np.sum(wf * lobe * spec * h))
        E = max(num, 0.0) / den if den > 1e-20 else 0.0
        return E * num, E, lobe  # (the sheen energy it explains, E, lobe)

    best = None
    for c in candidates:
        c = c / float(np.linalg.norm(c))
        explained, E, lobe = lobe_of(c)
        if best is None or explained > best[0]:
            best = (explained, E, lobe, c)
    _, E, lobe, l = best
    if not (E > 0):
        return spec.astype(np.float32), 0.0, l, np.zeros(R, np.float32)
    el = E * lobe
    lam = max(float(prior) * float(np.sum(wf * el**2)) / max(float(wf.sum()), 1e-12), 1e-20)
    s_fit = (el * h + lam * spec) / (el**2 + lam)
    s = np.clip(w * s_fit + (1.0 - w) * spec, 0.0, 1.0)
    return s.astype(np.float32), E, l, (el * s).astype(np.float32)


# ------------------------------------------------------------------------------------------------
def super_resolve_albedo(albedo: Float[ArrayLike, "R R 3"], resolution: int, *, mask: ArrayLike | None = None,
                         detail: float = 0.6, sigma: float = 1.5, patch: int = 32, seed: int = 0) -> np.ndarray:
    """A 2×/4× albedo: edge-aware upsampling plus skin detail synthesised at the new scale.

    1. Lanczos-3 upsampling, clamped per output texel to the range of the 2 × 2 source texels
       around it: edges stay as sharp as Lanczos makes them, without its ringing halos.
    2. The source's finest skin detail (:func:`skin_detail`: the CIELAB band-pass of ``sigma``
       texels over ``mask``) is re-synthesised texel for texel at the new resolution
       (:func:`detail_patches` + :func:`synthesize_detail` over the source detail tiled to the new
       size), i.e. at ``1 / factor`` of its physical size: pores and fine lines finer than the
       source holds. It is added to ``L*`` (and at half strength to ``a*``, ``b*``) times
       ``detail``, inside the upsampled mask only.

    Deterministic in ``seed``. The result is new detail of the right statistics, not the person's
    own: the photo's resolution bounds what is theirs.

    Args:
        albedo: ``(R, R, 3)`` sRGB albedo (uint8 or float in ``[0, 1]``).
        resolution: the output size, ``2 R`` or ``4 R`` (e.g. 2048 or 4096 from 1024).
        mask: ``(R, R)`` skin weights in ``[0, 1]`` where detail is taken and added (default:
            everywhere).
        detail: gain on the synthesised detail (0: upsampling only).
        sigma: the detail band's low-pass, source texels.
        patch: synthesis tile size at the output resolution, texels (even, ``>= 8``).
        seed: random seed of the patch choice.

    Returns:
        ``(resolution, resolution, 3)`` float32 sRGB in ``[0, 1]``.

    Raises:
        InputError: bad albedo, a resolution that is not 2× or 4× the albedo's, or bad options.

    Example:
        >>> import numpy as np
        >>> from machlib.texture import super_resolve_albedo
        >>> a = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
        >>> super_resolve_albedo(a, 64).shape
        (64, 64, 3)
    """
    from ._skin import lab_to_srgb, srgb_to_lab
    from ._transfer import detail_patches, skin_detail, synthesize_detail

    fn = "super_resolve_albedo"
    a = np.asarray(albedo)
    if a.ndim != 3 or a.shape[-1] != 3 or a.shape[0] != a.shape[1] or a.shape[0] < 8:
        raise InputError(f"{fn}: albedo must be a square (R, R, 3) image, got shape {a.shape}")
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else np.clip(a.astype(np.float32), 0.0, 1.0)
    R = a.shape[0]
    if not isinstance(resolution, (int, np.integer)) or resolution not in (2 * R, 4 * R):
        raise InputError(f"{fn}: resolution must be 2x or 4x the albedo's {R}, got {resolution!r}")
    if not (np.isfinite(detail) and detail >= 0 and np.isfinite(sigma) and sigma > 0):
        raise InputError(f"{fn}: detail must be >= 0 and sigma > 0, got {detail}, {sigma}")
    m = np.ones((R, R), np.float32) if mask is None else np.asarray(mask, np.float32)
    if m.shape != (R, R):
        raise InputError(f"{fn}: mask must have shape ({R}, {R}), got {m.shape}")
    Rt = int(resolution)
    k = Rt // R
    up = np.asarray(jax.image.resize(jnp.asarray(a), (Rt, Rt, 3), "lanczos3"))
    y = (np.arange(Rt) + 0.5) / k - 0.5  # output texel centres in source texels
    i0 = np.clip(np.floor(y).astype(int), 0, R - 1)
    i1 = np.clip(i0 + 1, 0, R - 1)
    lo = np.minimum(np.minimum(a[i0][:, i0], a[i0][:, i1]), np.minimum(a[i1][:, i0], a[i1][:, i1]))
    hi = np.maximum(np.maximum(a[i0][:, i0], a[i0][:, i1]), np.maximum(a[i1][:, i0], a[i1][:, i1]))
    up = np.clip(up, lo, hi)
    if detail == 0 or not (m > 0.5).any():
        return up.astype(np.float32)
    src = np.asarray(skin_detail(jnp.asarray(a), jnp.asarray(m), sigma=float(sigma)))
    exemplar = np.tile(src, (k, k, 1))
    corners = detail_patches(np.tile(m, (k, k)), patch=int(patch), seed=int(seed))
    synth = np.asarray(synthesize_detail(jnp.asarray(exemplar), jnp.asarray(corners), patch=int(patch)))
    m_up = np.clip(np.asarray(jax.image.resize(jnp.asarray(m), (Rt, Rt), "linear")), 0.0, 1.0)
    lab = np.asarray(srgb_to_lab(jnp.asarray(up)))
    lab = lab + float(detail) * synth * np.array([1.0, 0.5, 0.5], np.float32) * m_up[..., None]
    return np.clip(np.asarray(lab_to_srgb(jnp.asarray(lab))), 0.0, 1.0).astype(np.float32)
