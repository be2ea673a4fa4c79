"""Triangle rasterization and attribute interpolation in pure JAX (nvdiffrast's ``rasterize`` and
``interpolate``), plus clip-space helpers.

Visibility is resolved by a two-pass z-buffer over *candidate fragments*: every pixel centre in
the clipped bounding box of every triangle is one candidate (enumerated with a prefix sum, so the
work is the total bounding-box area, not ``pixels × triangles``). Pass one scatters the
minimum depth per pixel, pass two the lowest triangle index at that depth. Visibility carries no
gradient; the barycentrics are then recomputed from ``clip_pos`` for the winning triangle of each
pixel, so gradients of anything interpolated flow to the vertex positions exactly as in
nvdiffrast. Conventions (pixel centres, row order, clip space): :doc:`/conventions`.
"""

from __future__ import annotations

import functools
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from .._camera import Camera, world_to_camera
from .._errors import InputError, error_if, input_error_from_jit, quiet_check_logs

__all__ = [
    "Raster",
    "rasterize",
    "interpolate",
    "projection_matrix",
    "to_clip",
    "fragment_count",
]


class Raster(NamedTuple):
    """Per-pixel output of :func:`rasterize`, in image row order (row 0 at the top).

    Attributes:
        triangle: ``(H, W)`` int32 index of the visible triangle, ``-1`` where empty.
        barycentric: ``(H, W, 3)`` perspective-correct barycentric weights of the triangle's
            three corners (zero where empty); differentiable with respect to ``clip_pos``.
        depth: ``(H, W)`` NDC depth ``z/w`` in ``[−1, 1]`` (``1``, the far plane, where empty).
        barycentric_grad: ``(H, W, 3, 2)`` screen-space derivatives ``∂b/∂(x, y)`` per pixel
            (for mip-level selection), or ``None`` unless ``derivatives=True``.
    """

    triangle: Int[Array, "*b H W"]
    barycentric: Float[Array, "*b H W 3"]
    depth: Float[Array, "*b H W"]
    barycentric_grad: Float[Array, "*b H W 3 2"] | None = None


def projection_matrix(camera: Camera, *, near: float = 0.01, far: float = 100.0) -> Float[Array, "4 4"]:
    """The OpenGL-style projection ``P`` of :doc:`/conventions` for a machlib camera.

    Args:
        camera: the :class:`~machlib.Camera` (intrinsics and image size are used).
        near: near plane distance in metres, ``0 < near < far``.
        far: far plane distance in metres.

    Returns:
        ``(4, 4)`` matrix mapping camera-space ``(X_c, Y_c, Z_c, 1)`` to clip coordinates, with
        ``w_clip = Z_c`` and NDC y up.
    """
    if not 0.0 < near < far:
        raise ValueError(f"projection_matrix: need 0 < near < far, got near={near}, far={far}")
    width, height = camera.image_size
    fx, fy = camera.focal[0], camera.focal[1]
    cx, cy = camera.principal[0], camera.principal[1]
    dtype = camera.focal.dtype
    zero = jnp.zeros((), dtype)
    one = jnp.ones((), dtype)
    return jnp.stack(
        [
            jnp.stack([2.0 * fx / width, zero, 2.0 * cx / width - 1.0, zero]),
            jnp.stack([zero, -2.0 * fy / height, 1.0 - 2.0 * cy / height, zero]),
            jnp.stack([zero, zero, (far + near) / (far - near) * one, -2.0 * far * near / (far - near) * one]),
            jnp.stack([zero, zero, one, zero]),
        ]
    )


def to_clip(
    vertices: Float[ArrayLike, "*b V 3"], camera: Camera, *, near: float = 0.01, far: float = 100.0
) -> Float[Array, "*b V 4"]:
    """World-space vertices → homogeneous clip coordinates for :func:`rasterize`.

    Args:
        vertices: ``(..., V, 3)`` positions in metres (head/world space).
        camera: the :class:`~machlib.Camera` looking at them.
        near: near plane in metres.
        far: far plane in metres.

    Returns:
        ``(..., V, 4)`` clip coordinates; ``x/w, y/w`` map to the pixel coordinates of
        :func:`machlib.project` through the NDC formulas of :doc:`/conventions`.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib import look_at
        >>> from machlib.render import to_clip
        >>> cam = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3), image_size=(64, 64))
        >>> to_clip(jnp.zeros((1, 3)), cam)[0, 3].item()   # w = depth in metres
        1.0
    """
    vertices = jnp.asarray(vertices)
    if vertices.ndim < 2 or vertices.shape[-1] != 3:
        raise ValueError(f"to_clip: vertices must have shape (..., V, 3), got {vertices.shape}")
    cam_pts = world_to_camera(vertices.reshape(-1, 3), camera).reshape(vertices.shape)
    homo = jnp.concatenate([cam_pts, jnp.ones_like(cam_pts[..., :1])], axis=-1)
    # full float32 precision: GPUs would otherwise round the matmul to TF32 (0.06 px off)
    return jnp.matmul(homo, projection_matrix(camera, near=near, far=far).astype(homo.dtype).T,
                      precision=jax.lax.Precision.HIGHEST)


def _check_inputs(name: str, clip_pos, tri, image_size) -> tuple[jax.Array, jax.Array, tuple[int, int]]:
    """Checked ``(clip_pos, tri, (height, width))``; ``image_size`` is ``(width, height)``."""
    clip_pos = jnp.asarray(clip_pos)
    tri = jnp.asarray(tri)
    if clip_pos.ndim not in (2, 3) or clip_pos.shape[-1] != 4:
        raise ValueError(f"{name}: clip_pos must have shape (V, 4) or (B, V, 4), got {clip_pos.shape}")
    if not jnp.issubdtype(clip_pos.dtype, jnp.floating):
        raise TypeError(f"{name}: clip_pos must be floating point, got {clip_pos.dtype}")
    if tri.ndim != 2 or tri.shape[-1] != 3 or not jnp.issubdtype(tri.dtype, jnp.integer):
        raise ValueError(f"{name}: tri must be an integer array of shape (F, 3), got {tri.shape} {tri.dtype}")
    try:
        width, height = (operator.index(r) for r in image_size)
    except (TypeError, ValueError):
        raise InputError(f"{name}: image_size must be two integers (width, height), got {image_size!r}") from None
    if height < 1 or width < 1:
        raise InputError(f"{name}: image_size (width, height) must be positive, got {(width, height)}")
    return clip_pos, tri.astype(jnp.int32), (height, width)


def _screen(clip_pos: jax.Array, height: int, width: int):
    """Clip → continuous pixel coordinates (y down) and NDC depth, plus a validity flag."""
    w = clip_pos[:, 3]
    ok = w > 1e-9 * (1.0 + jnp.abs(clip_pos[:, 2]))
    inv_w = 1.0 / jnp.where(ok, w, 1.0)
    x = (clip_pos[:, 0] * inv_w + 1.0) * (0.5 * width)
    y = (1.0 - clip_pos[:, 1] * inv_w) * (0.5 * height)
    z = clip_pos[:, 2] * inv_w
    return jnp.stack([x, y], axis=-1), z, ok


def _triangle_setup(clip_pos, tri, height, width, cull_backfaces):
    xy, z, ok = _screen(clip_pos, height, width)
    p = xy[tri]  # (F, 3, 2)
    zt = z[tri]
    a, b, c = p[:, 0], p[:, 1], p[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    lo = jnp.ceil(jnp.min(p, axis=1) - 0.5)
    hi = jnp.floor(jnp.max(p, axis=1) - 0.5)
    size = jnp.asarray([width - 1, height - 1], p.dtype)
    lo = jnp.clip(lo, 0.0, size + 1.0)
    hi = jnp.clip(hi, -1.0, size)
    ext = jnp.maximum(hi - lo + 1.0, 0.0)
    valid = (
        jnp.all(ok[tri], axis=1)
        & (jnp.abs(area) > 1e-12)
        & jnp.all(jnp.isfinite(p), axis=(1, 2))
        & ~jnp.all(zt < -1.0, axis=1)
        & ~jnp.all(zt > 1.0, axis=1)
    )
    if cull_backfaces:
        valid &= area < 0.0  # front faces are clockwise on the y-down pixel grid
    ext = jnp.where(valid[:, None], ext, 0.0)
    count = (ext[:, 0] * ext[:, 1]).astype(jnp.int32)
    return p, zt, area, lo.astype(jnp.int32), ext.astype(jnp.int32), count


def fragment_count(
    clip_pos: Float[ArrayLike, "*b V 4"],
    tri: Int[ArrayLike, "F 3"],
    *,
    image_size: tuple[int, int],
    cull_backfaces: bool = False,
) -> int:
    """Number of candidate fragments :func:`rasterize` evaluates (total clipped bounding-box area).

    Computed eagerly (not under ``jit``); the maximum over a leading batch axis. Pass a value at
    least this large as ``capacity`` to call :func:`rasterize` inside your own ``jit``.

    Args:
        clip_pos: ``(V, 4)`` or ``(B, V, 4)`` clip coordinates.
        tri: ``(F, 3)`` int triangle indices.
        image_size: ``(width, height)`` in pixels, keyword-only (see :func:`rasterize`).
        cull_backfaces: as in :func:`rasterize`.

    Returns:
        The candidate count.
    """
    clip_pos, tri, (height, width) = _check_inputs("fragment_count", clip_pos, tri, image_size)
    if isinstance(clip_pos, jax.core.Tracer) or isinstance(tri, jax.core.Tracer):
        raise ValueError("fragment_count: needs concrete arrays (call it outside jit/vmap)")
    batch = clip_pos if clip_pos.ndim == 3 else clip_pos[None]
    return max(int(np.asarray(_count_jit(c, tri, height, width, cull_backfaces), np.int64).sum()) for c in batch)


def _count(clip_pos, tri, height, width, cull_backfaces):
    return _triangle_setup(clip_pos, tri, height, width, cull_backfaces)[-1]


_count_jit = jax.jit(_count, static_argnums=(2, 3, 4))


def _bucket(n: int) -> int:
    """Round a fragment count up to one of a few sizes per octave (bounds recompilation)."""
    n = max(int(n), 1024)
    step = 1 << max(n.bit_length() - 3, 0)
    return -(-n // step) * step


def _visibility(clip_pos, tri, height, width, cull_backfaces, capacity):
    """Two-pass z-buffer over candidate fragments; returns (H*W,) triangle ids (-1 empty)."""
    p, zt, area, lo, ext, count = _triangle_setup(clip_pos, tri, height, width, cull_backfaces)
    num_tri = tri.shape[0]
    start = jnp.cumsum(count) - count
    total = jnp.sum(count)
    # owner of each candidate slot: mark each triangle's first slot, then a running maximum
    owner = jnp.full((capacity,), -1, jnp.int32)
    owner = owner.at[jnp.where(count > 0, start, capacity)].max(jnp.arange(num_tri, dtype=jnp.int32), mode="drop")
    owner = jax.lax.cummax(owner)
    k = jnp.arange(capacity, dtype=jnp.int32)
    live = (k < total) & (owner >= 0)
    t = jnp.maximum(owner, 0)
    local = k - start[t]
    ex = jnp.maximum(ext[t, 0], 1)
    px = lo[t, 0] + local % ex
    py = lo[t, 1] + local // ex
    cx = px.astype(p.dtype) + 0.5
    cy = py.astype(p.dtype) + 0.5
    a, b, c = p[t, 0], p[t, 1], p[t, 2]
    inv = 1.0 / jnp.where(area[t] == 0.0, 1.0, area[t])
    l0 = ((b[:, 0] - cx) * (c[:, 1] - cy) - (b[:, 1] - cy) * (c[:, 0] - cx)) * inv
    l1 = ((c[:, 0] - cx) * (a[:, 1] - cy) - (c[:, 1] - cy) * (a[:, 0] - cx)) * inv
    # the third edge function directly, not 1 − l0 − l1: a centre on a shared edge must test
    # inside both triangles (rounding in the subtraction could drop it from both: a hole)
    l2 = ((a[:, 0] - cx) * (b[:, 1] - cy) - (a[:, 1] - cy) * (b[:, 0] - cx)) * inv
    z = l0 * zt[t, 0] + l1 * zt[t, 1] + l2 * zt[t, 2]
    inside = live & (l0 >= 0.0) & (l1 >= 0.0) & (l2 >= 0.0) & (z >= -1.0) & (z <= 1.0)
    pix = jnp.where(inside, py * width + px, height * width)
    zbuf = jnp.full((height * width,), jnp.inf, z.dtype).at[pix].min(z, mode="drop")
    win = inside & (z == zbuf[jnp.minimum(pix, height * width - 1)])
    ids = jnp.full((height * width,), num_tri, jnp.int32)
    ids = ids.at[jnp.where(win, pix, height * width)].min(t, mode="drop")
    ids = jnp.where(ids == num_tri, -1, ids)
    overflow = total > capacity
    return ids, overflow, total


def _pixel_barycentrics(clip_pos, tri, ids, height, width, derivatives):
    """Perspective-correct barycentrics of each pixel centre in its triangle (differentiable)."""
    t = jnp.maximum(ids, 0)
    corners = clip_pos[tri[t]]  # (P, 3, 4)
    rows = jnp.arange(height * width, dtype=jnp.int32) // width
    cols = jnp.arange(height * width, dtype=jnp.int32) % width
    centre = jnp.stack([cols, rows], axis=-1).astype(clip_pos.dtype) + 0.5

    def bary(q, corner):
        w = corner[:, 3]
        safe_w = jnp.where(jnp.abs(w) > 0, w, 1.0)
        sx = (corner[:, 0] / safe_w + 1.0) * (0.5 * width)
        sy = (1.0 - corner[:, 1] / safe_w) * (0.5 * height)
        area = (sx[1] - sx[0]) * (sy[2] - sy[0]) - (sy[1] - sy[0]) * (sx[2] - sx[0])
        safe_area = jnp.where(area == 0.0, 1.0, area)
        e0 = (sx[1] - q[0]) * (sy[2] - q[1]) - (sy[1] - q[1]) * (sx[2] - q[0])
        e1 = (sx[2] - q[0]) * (sy[0] - q[1]) - (sy[2] - q[1]) * (sx[0] - q[0])
        lin = jnp.stack([e0, e1, area - e0 - e1]) / safe_area
        persp = lin / safe_w
        total = jnp.sum(persp)
        bary_ = persp / jnp.where(total == 0.0, 1.0, total)
        depth = jnp.sum(lin * corner[:, 2] / safe_w)
        return bary_, depth

    (b, depth) = jax.vmap(bary)(centre, corners)
    grad = None
    if derivatives:
        def db(q, corner):
            fx = jax.jvp(lambda qq: bary(qq, corner)[0], (q,), (jnp.array([1.0, 0.0], q.dtype),))[1]
            fy = jax.jvp(lambda qq: bary(qq, corner)[0], (q,), (jnp.array([0.0, 1.0], q.dtype),))[1]
            return jnp.stack([fx, fy], axis=-1)

        grad = jax.vmap(db)(centre, corners)
    return b, depth, grad


_OVERFLOW = (
    "rasterize: more candidate fragments than `capacity`; pass a larger capacity "
    "(machlib.render.fragment_count gives the number needed)"
)


def _rasterize_one(clip_pos, tri, height, width, cull_backfaces, capacity, derivatives, checked=True):
    """One raster; ``checked=False`` returns ``(raster, overflow)`` instead of an in-program
    check (no host callback, so the compiled program can go to the persistent cache)."""
    if tri.shape[0] == 0:  # no triangles: an empty raster (the gathers below need F >= 1)
        grad = jnp.zeros((height, width, 3, 2), clip_pos.dtype) if derivatives else None
        empty = Raster(
            jnp.full((height, width), -1, jnp.int32),
            jnp.zeros((height, width, 3), clip_pos.dtype),
            jnp.ones((height, width), clip_pos.dtype),
            grad,
        )
        return empty if checked else (empty, jnp.asarray(False))
    ids, overflow, total = _visibility(
        jax.lax.stop_gradient(clip_pos), tri, height, width, cull_backfaces, capacity
    )
    if checked:
        ids = error_if(ids, overflow, _OVERFLOW)
    bary, depth, grad = _pixel_barycentrics(clip_pos, tri, ids, height, width, derivatives)
    hit = (ids >= 0)[:, None]
    bary = jnp.where(hit, bary, 0.0)
    depth = jnp.where(hit[:, 0], depth, 1.0)
    shape = (height, width)
    if grad is not None:
        grad = jnp.where(hit[:, :, None], grad, 0.0).reshape(*shape, 3, 2)
    raster = Raster(ids.reshape(shape), bary.reshape(*shape, 3), depth.reshape(shape), grad)
    return raster if checked else (raster, overflow)


def rasterize(
    clip_pos: Float[ArrayLike, "*b V 4"],
    tri: Int[ArrayLike, "F 3"],
    *,
    image_size: tuple[int, int],
    cull_backfaces: bool = False,
    derivatives: bool = False,
    capacity: int | None = None,
) -> Raster:
    """Rasterize triangles: visible triangle, barycentrics and depth per pixel.

    The JAX counterpart of ``nvdiffrast.torch.rasterize``, with two differences: the output is in
    image row order (row 0 at the top; nvdiffrast stores the bottom row first) and comes as a
    :class:`Raster` of separate arrays. Pixel ``(i, j)`` samples its centre ``(j + 0.5, i + 0.5)``;
    a centre exactly on an edge shared by two triangles goes to the nearer one, then to the lower
    index. Triangles with a vertex at or behind the camera plane (``w ≤ 0``) are dropped (no
    near-plane clipping); per-pixel depth outside ``[−1, 1]`` is clipped away.

    Visibility is not differentiable; ``barycentric`` is, with respect to ``clip_pos``, so
    :func:`interpolate` passes gradients to vertex positions and :func:`antialias` adds the
    silhouette gradients.

    Args:
        clip_pos: ``(V, 4)`` clip coordinates (:func:`to_clip`), or ``(B, V, 4)`` for a batch
            sharing ``tri`` (or use ``jax.vmap`` with an explicit ``capacity``).
        tri: ``(F, 3)`` int vertex indices, counter-clockwise from outside.
        image_size: ``(width, height)`` in pixels (static), keyword-only: machlib gives every
            image size as ``(width, height)``, like :attr:`machlib.Camera.image_size` (arrays are
            ``(H, W, ...)``), and the keyword keeps nvdiffrast's positional ``(height, width)``
            from being passed by habit (see :doc:`/conventions`).
        cull_backfaces: skip triangles facing away from the camera (closed meshes render the
            same, about twice as fast).
        derivatives: also return ``barycentric_grad``, the screen-space derivatives used by
            :func:`interpolate` for mip-level selection in :func:`texture`.
        capacity: static number of candidate fragments (pixel centres inside triangle bounding
            boxes) to evaluate. ``None`` sizes it exactly from concrete inputs; under ``jit`` or
            ``vmap``, where the inputs are traced, ``None`` means ``4·H·W``. Too small a capacity
            never drops triangles: an eager call raises :class:`~machlib.InputError` naming the
            count needed; under your own ``jit`` the check fails at run time, and running the
            jitted call inside :class:`machlib.jit_errors` turns that into the same
            :class:`~machlib.InputError` (or size ``capacity`` up front with
            :func:`fragment_count`).

    Returns:
        A :class:`Raster` with ``(H, W)`` (or ``(B, H, W)``) fields.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.render import rasterize
        >>> clip = jnp.array([[-1.0, -1.0, 0.0, 1.0], [1.0, -1.0, 0.0, 1.0], [-1.0, 1.0, 0.0, 1.0]])
        >>> r = rasterize(clip, jnp.array([[0, 1, 2]]), image_size=(4, 4))
        >>> r.triangle.tolist()   # the lower-left half (NDC y up, row 0 at the top)
        [[0, -1, -1, -1], [0, 0, -1, -1], [0, 0, 0, -1], [0, 0, 0, 0]]
    """
    clip_pos, tri, (height, width) = _check_inputs("rasterize", clip_pos, tri, image_size)
    if capacity is None:
        if isinstance(clip_pos, jax.core.Tracer) or isinstance(tri, jax.core.Tracer):
            capacity = 4 * height * width
        else:
            capacity = _bucket(fragment_count(clip_pos, tri, image_size=(width, height), cull_backfaces=cull_backfaces))
    capacity = int(capacity)
    if capacity < 1:
        raise ValueError(f"rasterize: capacity must be positive, got {capacity}")
    traced = isinstance(clip_pos, jax.core.Tracer) or isinstance(tri, jax.core.Tracer)
    if not traced:  # eager: the overflow comes back as a flag, so the program has no host callback
        # and goes to the persistent compilation cache (with one it is compiled again, seconds on
        # a CPU, in every process and for every new fragment-count bucket)
        flagged = lambda c: _rasterize_flagged_jit(c, tri, height, width, cull_backfaces, capacity,
                                                   derivatives)
        rast, overflow = jax.vmap(flagged)(clip_pos) if clip_pos.ndim == 3 else flagged(clip_pos)
        if bool(jnp.any(overflow)):
            needed = fragment_count(clip_pos, tri, image_size=(width, height), cull_backfaces=cull_backfaces)
            raise InputError(
                f"rasterize: {needed} candidate fragments but capacity={capacity}; pass capacity >= {needed} "
                "(machlib.render.fragment_count computes it) or leave capacity=None outside jit"
            )
        return rast
    fn = lambda c: _rasterize_jit(c, tri, height, width, cull_backfaces, capacity, derivatives)  # noqa: E731
    try:
        with quiet_check_logs():
            return jax.vmap(fn)(clip_pos) if clip_pos.ndim == 3 else fn(clip_pos)
    except jax.errors.JaxRuntimeError as exc:  # eager call: the overflow check ran here
        if traced or input_error_from_jit(exc) is None:
            raise
        needed = fragment_count(clip_pos, tri, image_size=(width, height), cull_backfaces=cull_backfaces)
        raise InputError(
            f"rasterize: {needed} candidate fragments but capacity={capacity}; pass capacity >= {needed} "
            "(machlib.render.fragment_count computes it) or leave capacity=None outside jit"
        ) from None


_rasterize_jit = jax.jit(_rasterize_one, static_argnums=(2, 3, 4, 5, 6))
_rasterize_flagged_jit = jax.jit(functools.partial(_rasterize_one, checked=False), static_argnums=(2, 3, 4, 5, 6))


def interpolate(
    attr: Float[ArrayLike, "*b V C"],
    rast: Raster,
    tri: Int[ArrayLike, "F 3"],
    *,
    derivatives: bool = False,
) -> Float[Array, "*rb H W C"] | tuple[Float[Array, "*rb H W C"], Float[Array, "*rb H W C 2"]]:
    """Interpolate per-vertex attributes over the rasterized pixels (perspective-correct).

    Differentiable with respect to ``attr`` and, through ``rast.barycentric``, to the vertex
    positions given to :func:`rasterize`. Empty pixels get zeros.

    Args:
        attr: ``(V, C)`` attributes (or ``(B, V, C)`` matching a batched ``rast``).
        rast: output of :func:`rasterize`.
        tri: ``(F, 3)`` the same triangles.
        derivatives: also return the screen-space derivatives ``∂attr/∂(x, y)`` per pixel
            (``rast`` must come from ``rasterize(..., derivatives=True)``).

    Returns:
        ``(H, W, C)`` interpolated attributes, and with ``derivatives`` a second array
        ``(H, W, C, 2)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.render import rasterize, interpolate
        >>> clip = jnp.array([[-1.0, -1.0, 0.0, 1.0], [1.0, -1.0, 0.0, 1.0], [-1.0, 1.0, 0.0, 1.0]])
        >>> tri = jnp.array([[0, 1, 2]])
        >>> out = interpolate(jnp.eye(3), rasterize(clip, tri, image_size=(4, 4)), tri)
        >>> [round(float(v), 3) for v in out[3, 0]]   # bottom-left pixel: mostly vertex 0
        [0.75, 0.125, 0.125]
    """
    attr = jnp.asarray(attr)
    tri = jnp.asarray(tri)
    if attr.ndim not in (2, 3):
        raise ValueError(f"interpolate: attr must have shape (V, C) or (B, V, C), got {attr.shape}")
    if tri.ndim != 2 or tri.shape[-1] != 3:
        raise ValueError(f"interpolate: tri must have shape (F, 3), got {tri.shape}")
    if derivatives and rast.barycentric_grad is None:
        raise ValueError("interpolate: derivatives=True needs rasterize(..., derivatives=True)")
    batched = rast.triangle.ndim == 3
    if batched and attr.ndim == 2:
        attr = jnp.broadcast_to(attr, (rast.triangle.shape[0],) + attr.shape)
    if attr.ndim == 3 and not batched:
        raise ValueError("interpolate: a batched attr (B, V, C) needs a batched rast")

    if tri.shape[0] == 0:  # nothing rasterized: every pixel empty (avoids gathers from no triangles)
        tri = jnp.zeros((1, 3), jnp.int32)
    grad = rast.barycentric_grad if derivatives else None
    return _interpolate_jit(attr, tri, rast.triangle, rast.barycentric, grad, derivatives, batched)


@functools.partial(jax.jit, static_argnums=(5, 6))
def _interpolate_jit(attr, tri, triangle, barycentric, grad, derivatives: bool, batched: bool):
    """:func:`interpolate`'s gathers and sums as one compiled program (run eagerly, they compiled
    ~20 small programs per new image size)."""

    def one(a, ids, bary, bgrad):
        idx = tri[jnp.maximum(ids, 0)]  # (H, W, 3)
        corner = a[idx]  # (H, W, 3, C)
        hit = (ids >= 0)[..., None]
        out = jnp.where(hit, jnp.einsum("hwk,hwkc->hwc", bary, corner, precision=jax.lax.Precision.HIGHEST), 0.0)
        if not derivatives:
            return out
        d = jnp.einsum("hwkd,hwkc->hwcd", bgrad, corner, precision=jax.lax.Precision.HIGHEST)
        return out, jnp.where(hit[..., None], d, 0.0)

    if batched:
        return jax.vmap(one)(attr, triangle, barycentric, grad) if derivatives else jax.vmap(
            lambda a, i, b: one(a, i, b, None)
        )(attr, triangle, barycentric)
    return one(attr, triangle, barycentric, grad)
