"""nvdiffrast behind the API of :mod:`machlib.render`: the same arguments, the same
:class:`~machlib.render.Raster`, the same conventions (:doc:`/conventions`).

nvdiffrast (Laine et al. 2020, https://github.com/NVlabs/nvdiffrast) runs the four primitives as
CUDA kernels from PyTorch. These wrappers take and return JAX arrays and translate its
conventions into machlib's:

* **row order**: nvdiffrast stores the bottom image row (NDC ``y = −1``) first; machlib puts row
  0 at the top, so every image is flipped vertically on the way in and out;
* **triangle ids**: nvdiffrast writes ``id + 1`` (``0`` where empty) as a float in the fourth
  raster channel; :class:`~machlib.render.Raster` holds int32 ``id`` and ``−1`` where empty (ids
  are exact up to 2²⁴ triangles, nvdiffrast's own limit of a float32 channel);
* **barycentrics**: nvdiffrast's ``(u, v)`` weight corners 0 and 1 of the triangle, corner 2 gets
  ``1 − u − v``; machlib stores the three weights;
* **depth**: both give NDC ``z/w``; machlib's empty pixels hold ``1`` (the far plane), nvdiffrast's
  ``0``;
* **screen derivatives**: nvdiffrast's ``∂/∂Y`` points up the image, machlib's ``∂/∂y`` down, so
  the y components change sign;
* **UVs** need no conversion: both address a texture by ``(u, v)`` with ``v`` running along the
  rows of the array as stored (machlib's origin top-left, :doc:`/conventions`) and texel centres
  at ``(j + 0.5) / W``.

Gradients flow through :func:`machlib.interop.torch_function` (a ``jax.custom_vjp`` whose backward
pass runs nvdiffrast's own gradient kernels), so the wrappers work eagerly and under ``jit`` and
``grad``. Data crosses through the host on every call (a ``jax.pure_callback``): the wrappers are
for parity checks and for mixing the two renderers, not for speed; time nvdiffrast directly in
PyTorch (``benchmarks/render.py`` does).

nvdiffrast is not on PyPI and needs an NVIDIA GPU: where it cannot be imported, or PyTorch has no
CUDA device, every function raises :class:`NvdiffrastMissingError` naming the fix.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from .._errors import MachlibError
from ..render._rasterize import Raster, _check_inputs
from ._torch import torch_function

__all__ = [
    "NvdiffrastMissingError",
    "nvdiffrast_available",
    "rasterize_nvdiffrast",
    "interpolate_nvdiffrast",
    "texture_nvdiffrast",
    "antialias_nvdiffrast",
]

_INSTALL_HINT = (
    "nvdiffrast is not on PyPI: install it from its GitHub source with "
    "`pip install git+https://github.com/NVlabs/nvdiffrast` (or clone the repository and `pip install .`); "
    "it builds CUDA kernels, so it needs PyTorch with CUDA, the CUDA toolkit and an NVIDIA GPU"
)


class NvdiffrastMissingError(MachlibError, ImportError):
    """nvdiffrast, or the CUDA device it needs, is missing; the message says how to get it.

    An :class:`ImportError` (and a :class:`~machlib.MachlibError`), raised by every
    ``*_nvdiffrast`` function of :mod:`machlib.interop` before it touches its arguments.
    """


def _probe() -> tuple[Any, Any, Any, str]:
    """``(torch, nvdiffrast.torch, cuda device, "")``, or ``(None, None, None, why not)``."""
    try:
        import torch
    except ImportError as e:
        return None, None, None, f"PyTorch cannot be imported ({e})"
    try:
        import nvdiffrast.torch as dr
    except Exception as e:  # noqa: BLE001 - ImportError, or a broken build failing at import
        return None, None, None, f"nvdiffrast cannot be imported ({type(e).__name__}: {e})"
    if not torch.cuda.is_available():
        return None, None, None, "nvdiffrast is installed but PyTorch sees no CUDA device"
    return torch, dr, torch.device("cuda", torch.cuda.current_device()), ""


def _load(feature: str) -> tuple[Any, Any, Any]:
    """``(torch, nvdiffrast.torch, device)`` or raise :class:`NvdiffrastMissingError`."""
    torch, dr, device, why = _probe()
    if torch is None:
        raise NvdiffrastMissingError(f"machlib.interop.{feature} needs nvdiffrast on a CUDA device: {why}. {_INSTALL_HINT}.")
    return torch, dr, device


def nvdiffrast_available() -> bool:
    """Whether the ``*_nvdiffrast`` functions can run: PyTorch and ``nvdiffrast.torch`` import,
    and PyTorch sees a CUDA device. Never raises.

    Example:
        >>> from machlib.interop import nvdiffrast_available
        >>> isinstance(nvdiffrast_available(), bool)
        True
    """
    return _probe()[0] is not None


_CONTEXTS: dict = {}


def _context(dr: Any, device: Any, context: Any) -> Any:
    """The caller's context, or one ``RasterizeCudaContext`` per device, created on first use."""
    if context is not None:
        return context
    ctx = _CONTEXTS.get(device)
    if ctx is None:
        ctx = _CONTEXTS[device] = dr.RasterizeCudaContext(device=device)
    return ctx


def _flip(x: jax.Array) -> jax.Array:
    """Flip the image rows of a ``(B, H, W, ...)`` array (nvdiffrast ↔ machlib row order)."""
    return jnp.flip(x, axis=1)


def _y_down(d: jax.Array) -> jax.Array:
    """Negate the y component (last axis, ``(∂/∂x, ∂/∂y)``): nvdiffrast's Y points up."""
    return d * jnp.asarray([1.0, -1.0], d.dtype)


# ------------------------------------------------------------------------------------------------
# rasterize


def rasterize_nvdiffrast(
    clip_pos: Float[ArrayLike, "*b V 4"],
    tri: Int[ArrayLike, "F 3"],
    *,
    image_size: tuple[int, int],
    context: Any = None,
    derivatives: bool = False,
) -> Raster:
    """:func:`machlib.render.rasterize` computed by nvdiffrast (CUDA).

    Same inputs and output as :func:`~machlib.render.rasterize`: a :class:`~machlib.render.Raster`
    in image row order (row 0 at the top), triangle ids ``−1`` where empty, three perspective-correct
    barycentric weights (zero where empty), NDC depth ``z/w`` (``1`` where empty) and, with
    ``derivatives``, their screen derivatives ``∂b/∂(x, y)`` with y down. ``barycentric`` (and
    ``depth``, ``barycentric_grad``) are differentiable with respect to ``clip_pos`` through
    nvdiffrast's gradient kernels. nvdiffrast culls nothing: it behaves as ``cull_backfaces=False``
    (ties on shared edges follow its own fill rule, so pixels centred exactly on an edge may pick
    the other triangle).

    Args:
        clip_pos: ``(V, 4)`` clip coordinates (:func:`machlib.render.to_clip`), or ``(B, V, 4)``
            for a batch sharing ``tri`` (nvdiffrast's instanced mode).
        tri: ``(F, 3)`` int vertex indices, counter-clockwise from outside.
        image_size: ``(width, height)`` in pixels, keyword-only as in
            :func:`~machlib.render.rasterize` (nvdiffrast's own ``resolution`` is
            ``(height, width)``; this function converts; its CUDA rasterizer accepts up to 2048
            per side).
        context: an ``nvdiffrast.torch.RasterizeCudaContext`` (or ``RasterizeGLContext``) to use;
            default one cached context per CUDA device.
        derivatives: also return ``barycentric_grad`` (for :func:`interpolate_nvdiffrast` with
            ``derivatives=True`` and mip-mapped texturing).

    Returns:
        A :class:`~machlib.render.Raster` with ``(H, W)`` (or ``(B, H, W)``) fields.

    Raises:
        NvdiffrastMissingError: nvdiffrast or a CUDA device is missing.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.interop import rasterize_nvdiffrast
        >>> clip = jnp.array([[-1.0, -1.0, 0.0, 1.0], [1.0, -1.0, 0.0, 1.0], [-1.0, 1.0, 0.0, 1.0]])
        >>> r = rasterize_nvdiffrast(clip, jnp.array([[0, 1, 2]]), image_size=(8, 8))  # doctest: +SKIP
        >>> r.triangle[7, 0].item(), r.triangle[0, 7].item()                 # doctest: +SKIP
        (0, -1)
    """
    torch, dr, device = _load("rasterize_nvdiffrast")
    clip_pos, tri, (height, width) = _check_inputs("rasterize_nvdiffrast", clip_pos, tri, image_size)
    batched = clip_pos.ndim == 3
    pos = (clip_pos if batched else clip_pos[None]).astype(jnp.float32)
    batch = pos.shape[0]
    ctx = _context(dr, device, context)
    want_db = bool(derivatives)

    def raster_torch(p, t):
        rast, db = dr.rasterize(ctx, p.contiguous(), t.to(torch.int32).contiguous(), (height, width), grad_db=want_db)
        return (rast, db) if want_db else rast

    spec = jax.ShapeDtypeStruct((batch, height, width, 4), jnp.float32)
    fn = torch_function(raster_torch, out_shape=(spec, spec) if want_db else spec, device=device)
    out = fn(pos, tri)
    raw, raw_db = (out if want_db else (out, None))
    raw = _flip(raw)
    ids = jnp.round(jax.lax.stop_gradient(raw[..., 3])).astype(jnp.int32) - 1
    hit = ids >= 0
    u, v = raw[..., 0], raw[..., 1]
    bary = jnp.where(hit[..., None], jnp.stack([u, v, 1.0 - u - v], axis=-1), 0.0)
    depth = jnp.where(hit, raw[..., 2], 1.0)
    grad = None
    if want_db:
        db = _flip(raw_db)  # (du/dX, du/dY, dv/dX, dv/dY), Y up
        du = _y_down(db[..., 0:2])
        dv = _y_down(db[..., 2:4])
        grad = jnp.where(hit[..., None, None], jnp.stack([du, dv, -du - dv], axis=-2), 0.0)
    rast = Raster(ids, bary.astype(clip_pos.dtype), depth.astype(clip_pos.dtype),
                  None if grad is None else grad.astype(clip_pos.dtype))
    if batched:
        return rast
    return Raster(*(None if x is None else x[0] for x in rast))


def _pack(rast: Raster) -> tuple[jax.Array, jax.Array | None]:
    """A :class:`Raster` as nvdiffrast's ``(B, H, W, 4)`` raster (and derivatives), rows flipped."""
    ids = jnp.asarray(rast.triangle)
    if ids.ndim == 2:
        rast = Raster(*(None if x is None else jnp.asarray(x)[None] for x in rast))
        ids = ids[None]
    hit = ids >= 0
    b = jnp.asarray(rast.barycentric, jnp.float32)
    z = jnp.where(hit, jnp.asarray(rast.depth, jnp.float32), 0.0)
    tid = jnp.where(hit, ids + 1, 0).astype(jnp.float32)
    packed = _flip(jnp.stack([b[..., 0], b[..., 1], z, tid], axis=-1))
    db = None
    if rast.barycentric_grad is not None:
        g = _y_down(jnp.asarray(rast.barycentric_grad, jnp.float32))  # (B, H, W, 3, 2), Y up
        db = _flip(jnp.concatenate([g[..., 0, :], g[..., 1, :]], axis=-1))
    return packed, db


# ------------------------------------------------------------------------------------------------
# interpolate


def interpolate_nvdiffrast(
    attr: Float[ArrayLike, "*b V C"],
    rast: Raster,
    tri: Int[ArrayLike, "F 3"],
    *,
    derivatives: bool = False,
) -> Float[Array, "*rb H W C"] | tuple[Float[Array, "*rb H W C"], Float[Array, "*rb H W C 2"]]:
    """:func:`machlib.render.interpolate` computed by nvdiffrast (CUDA).

    ``rast`` may come from :func:`rasterize_nvdiffrast` or :func:`machlib.render.rasterize`.
    Differentiable with respect to ``attr`` and ``rast.barycentric`` (and
    ``rast.barycentric_grad``). nvdiffrast uses the first two weights and ``1 − b₀ − b₁`` for the
    third, so the third weight receives no gradient of its own (weights that sum to one, as
    rasterizers produce them, give the same gradients to vertex positions). Empty pixels get zeros.

    Args:
        attr: ``(V, C)`` attributes (or ``(B, V, C)`` matching a batched ``rast``).
        rast: a :class:`~machlib.render.Raster`.
        tri: ``(F, 3)`` triangles indexing ``attr`` (e.g. ``faces_uv`` with UVs as ``attr``).
        derivatives: also return the screen-space derivatives ``∂attr/∂(x, y)`` (y down); needs
            ``rast.barycentric_grad``.

    Returns:
        ``(H, W, C)`` interpolated attributes, and with ``derivatives`` a second array
        ``(H, W, C, 2)``.

    Raises:
        NvdiffrastMissingError: nvdiffrast or a CUDA device is missing.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.interop import interpolate_nvdiffrast, rasterize_nvdiffrast
        >>> clip = jnp.array([[-1.0, -1.0, 0.0, 1.0], [1.0, -1.0, 0.0, 1.0], [-1.0, 1.0, 0.0, 1.0]])
        >>> tri = jnp.array([[0, 1, 2]])
        >>> out = interpolate_nvdiffrast(jnp.eye(3), rasterize_nvdiffrast(clip, tri, image_size=(4, 4)), tri)  # doctest: +SKIP
        >>> [round(float(v), 3) for v in out[3, 0]]                                               # doctest: +SKIP
        [0.75, 0.125, 0.125]
    """
    torch, dr, device = _load("interpolate_nvdiffrast")
    attr = jnp.asarray(attr, jnp.float32)
    tri = jnp.asarray(tri)
    if attr.ndim not in (2, 3):
        raise ValueError(f"interpolate_nvdiffrast: attr must have shape (V, C) or (B, V, C), got {attr.shape}")
    if tri.ndim != 2 or tri.shape[-1] != 3 or not jnp.issubdtype(tri.dtype, jnp.integer):
        raise ValueError(f"interpolate_nvdiffrast: tri must be an integer array (F, 3), got {tri.shape} {tri.dtype}")
    if derivatives and rast.barycentric_grad is None:
        raise ValueError("interpolate_nvdiffrast: derivatives=True needs a raster with barycentric_grad")
    batched = jnp.ndim(rast.triangle) == 3
    if attr.ndim == 3 and not batched:
        raise ValueError("interpolate_nvdiffrast: a batched attr (B, V, C) needs a batched rast")
    packed, db = _pack(rast if derivatives else rast._replace(barycentric_grad=None))
    batch, height, width = packed.shape[:3]
    channels = attr.shape[-1]
    a3 = attr if attr.ndim == 3 else attr[None]  # broadcast along the minibatch axis
    out_spec = jax.ShapeDtypeStruct((batch, height, width, channels), jnp.float32)

    if derivatives:
        def interp_torch(a, r, t, d):
            return dr.interpolate(a.contiguous(), r.contiguous(), t.to(torch.int32).contiguous(),
                                  rast_db=d.contiguous(), diff_attrs="all")

        da_spec = jax.ShapeDtypeStruct((batch, height, width, 2 * channels), jnp.float32)
        out, da = torch_function(interp_torch, out_shape=(out_spec, da_spec), device=device)(a3, packed, tri, db)
        out = _flip(out)
        da = _y_down(_flip(da).reshape(batch, height, width, channels, 2))
        return (out, da) if batched else (out[0], da[0])

    def interp_torch(a, r, t):
        return dr.interpolate(a.contiguous(), r.contiguous(), t.to(torch.int32).contiguous())[0]

    out = _flip(torch_function(interp_torch, out_shape=out_spec, device=device)(a3, packed, tri))
    return out if batched else out[0]


# ------------------------------------------------------------------------------------------------
# texture


def texture_nvdiffrast(
    tex: Float[ArrayLike, "H W C"],
    uv: Float[ArrayLike, "*batch 2"],
    *,
    uv_grad: Float[ArrayLike, "*batch 2 2"] | None = None,
    filter: Literal["nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear"] = "linear",
    boundary: Literal["clamp", "wrap", "zero"] = "clamp",
    max_mip_level: int | None = None,
    mip_level_bias: Float[ArrayLike, "*batch"] | float | None = None,
) -> Float[Array, "*batch C"]:
    """:func:`machlib.render.texture` computed by nvdiffrast (CUDA).

    Unlike :func:`machlib.render.texture`, ``uv_grad`` is keyword-only. Same UV convention as machlib (origin at the top-left of the texture as stored, texel centres
    at ``(j + 0.5) / W``), so no conversion is needed. Differentiable with respect to ``tex``,
    ``uv`` and, for the mip-mapped filters, ``uv_grad`` and ``mip_level_bias``. The mip pyramid is
    built by nvdiffrast (2 × 2 box filter, like :func:`machlib.render.build_mip`). nvdiffrast picks
    the level of detail from the major axis of the pixel footprint, machlib from the longer of its
    two screen-axis extents: they agree for isotropic footprints and differ slightly otherwise.

    Args:
        tex: ``(H, W, C)`` texture.
        uv: ``(..., 2)`` texture coordinates (any leading shape).
        uv_grad: ``(..., 2, 2)`` screen derivatives ``∂uv_c/∂(x, y)_d`` (needed by the mip-mapped
            filters unless ``mip_level_bias`` sets the level; with neither they raise).
        filter: ``"nearest"``, ``"linear"``, ``"linear-mipmap-nearest"`` or ``"linear-mipmap-linear"``.
        boundary: ``"clamp"``, ``"wrap"`` or ``"zero"``.
        max_mip_level: highest mip level used.
        mip_level_bias: added to the level of detail, per sample or scalar (``None``: 0).

    Returns:
        ``(..., C)`` sampled values.

    Raises:
        NvdiffrastMissingError: nvdiffrast or a CUDA device is missing.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.interop import texture_nvdiffrast
        >>> tex = jnp.array([[[0.0], [1.0]]])                                    # 1 × 2 texture
        >>> texture_nvdiffrast(tex, jnp.array([[0.25, 0.5], [0.5, 0.5]])).ravel().tolist()  # doctest: +SKIP
        [0.0, 0.5]
    """
    if filter.startswith("linear-mipmap") and uv_grad is None and mip_level_bias is None:
        raise ValueError(
            f"texture_nvdiffrast: filter {filter!r} needs uv_grad or an explicit mip_level_bias giving the level"
        )
    torch, dr, device = _load("texture_nvdiffrast")
    tex = jnp.asarray(tex, jnp.float32)
    uv = jnp.asarray(uv, jnp.float32)
    if tex.ndim != 3:
        raise ValueError(f"texture_nvdiffrast: tex must have shape (H, W, C), got {tex.shape}")
    if uv.ndim < 1 or uv.shape[-1] != 2:
        raise ValueError(f"texture_nvdiffrast: uv must have shape (..., 2), got {uv.shape}")
    if filter not in ("nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear"):
        raise ValueError(f"texture_nvdiffrast: unknown filter {filter!r}")
    if boundary not in ("clamp", "wrap", "zero"):
        raise ValueError(f"texture_nvdiffrast: unknown boundary {boundary!r}")
    lead = uv.shape[:-1]
    n = int(np.prod(lead, dtype=np.int64))
    channels = tex.shape[-1]
    args = [tex[None], uv.reshape(1, 1, n, 2)]
    mipmapped = filter.startswith("linear-mipmap")
    has_grad = mipmapped and uv_grad is not None
    bias = jnp.asarray(0.0 if mip_level_bias is None else mip_level_bias, jnp.float32)
    has_bias = mipmapped and mip_level_bias is not None and (
        bias.ndim > 0 or uv_grad is None or isinstance(mip_level_bias, jax.core.Tracer) or float(mip_level_bias) != 0.0)
    if has_grad:
        uv_grad = jnp.asarray(uv_grad, jnp.float32)
        if uv_grad.shape != uv.shape + (2,):
            raise ValueError(f"texture_nvdiffrast: uv_grad must have shape {uv.shape + (2,)}, got {uv_grad.shape}")
        args.append(uv_grad.reshape(1, 1, n, 4))  # (du/dx, du/dy, dv/dx, dv/dy)
    if has_bias:
        args.append(jnp.broadcast_to(bias, lead).reshape(1, 1, n))
    max_level = None if max_mip_level is None else max(int(max_mip_level), 0)

    def tex_torch(t, coords, *rest):
        rest = list(rest)
        da = rest.pop(0).contiguous() if has_grad else None
        lb = rest.pop(0).contiguous() if has_bias else None
        return dr.texture(t.contiguous(), coords.contiguous(), da, lb, filter_mode=filter, boundary_mode=boundary,
                          max_mip_level=max_level)

    spec = jax.ShapeDtypeStruct((1, 1, n, channels), jnp.float32)
    out = torch_function(tex_torch, out_shape=spec, device=device)(*args)
    return out.reshape(lead + (channels,))


# ------------------------------------------------------------------------------------------------
# antialias


def antialias_nvdiffrast(
    color: Float[ArrayLike, "*b H W C"],
    rast: Raster,
    clip_pos: Float[ArrayLike, "*b V 4"],
    tri: Int[ArrayLike, "F 3"],
    *,
    topology_hash: Any = None,
    pos_gradient_boost: float = 1.0,
) -> Float[Array, "*b H W C"]:
    """:func:`machlib.render.antialias` computed by nvdiffrast (CUDA).

    Differentiable with respect to ``color`` and ``clip_pos`` (the silhouette gradients).

    Args:
        color: ``(H, W, C)`` shaded image in machlib's row order (or ``(B, H, W, C)``).
        rast: the :class:`~machlib.render.Raster` the image was shaded from.
        clip_pos: the ``(V, 4)`` (or ``(B, V, 4)``) clip coordinates that were rasterized.
        tri: ``(F, 3)`` triangles.
        topology_hash: ``nvdiffrast.torch.antialias_construct_topology_hash`` of ``tri`` (a CUDA
            int32 tensor) to reuse across calls; built on every call if omitted.
        pos_gradient_boost: factor on the gradients passed to ``clip_pos`` (nvdiffrast's option).

    Returns:
        The antialiased image, same shape as ``color``.

    Raises:
        NvdiffrastMissingError: nvdiffrast or a CUDA device is missing.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.interop import antialias_nvdiffrast, rasterize_nvdiffrast
        >>> clip = jnp.array([[-1.0, -1.0, 0.0, 1.0], [0.6, -1.0, 0.0, 1.0], [-1.0, 1.0, 0.0, 1.0]])
        >>> tri = jnp.array([[0, 1, 2]])
        >>> r = rasterize_nvdiffrast(clip, tri, image_size=(8, 8))                            # doctest: +SKIP
        >>> img = (r.triangle >= 0).astype(jnp.float32)[..., None]                 # doctest: +SKIP
        >>> bool(antialias_nvdiffrast(img, r, clip, tri).sum() != img.sum())       # doctest: +SKIP
        True
    """
    torch, dr, device = _load("antialias_nvdiffrast")
    color = jnp.asarray(color, jnp.float32)
    clip_pos = jnp.asarray(clip_pos, jnp.float32)
    tri = jnp.asarray(tri)
    batched = jnp.ndim(rast.triangle) == 3
    if color.ndim != jnp.ndim(rast.triangle) + 1 or color.shape[:-1] != jnp.shape(rast.triangle):
        raise ValueError(f"antialias_nvdiffrast: color must have shape {jnp.shape(rast.triangle) + ('C',)}, got {color.shape}")
    if clip_pos.ndim != (3 if batched else 2) or clip_pos.shape[-1] != 4:
        raise ValueError(f"antialias_nvdiffrast: clip_pos must have shape {'(B, V, 4)' if batched else '(V, 4)'}, "
                         f"got {clip_pos.shape}")
    if tri.ndim != 2 or tri.shape[-1] != 3 or not jnp.issubdtype(tri.dtype, jnp.integer):
        raise ValueError(f"antialias_nvdiffrast: tri must be an integer array (F, 3), got {tri.shape} {tri.dtype}")
    packed, _ = _pack(rast._replace(barycentric_grad=None))
    col = _flip(color if batched else color[None])
    pos = clip_pos if batched else clip_pos[None]
    boost = float(pos_gradient_boost)

    def aa_torch(c, r, p, t):
        t = t.to(torch.int32).contiguous()
        return dr.antialias(c.contiguous(), r.contiguous(), p.contiguous(), t, topology_hash=topology_hash,
                            pos_gradient_boost=boost)

    out = _flip(torch_function(aa_torch, out_shape=jax.ShapeDtypeStruct(col.shape, jnp.float32), device=device)(
        col, jax.lax.stop_gradient(packed), pos, tri))
    return out if batched else out[0]
