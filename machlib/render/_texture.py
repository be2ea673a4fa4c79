"""Texture sampling (nvdiffrast's ``texture``): nearest, bilinear and trilinear-mipmapped lookups,
differentiable with respect to the texture and the UV coordinates.

UVs follow :doc:`/conventions`: ``u`` right, ``v`` down, origin at the top-left corner of the
texture; texel ``(i, j)`` of an ``H × W`` texture has its centre at ``((j + 0.5)/W, (i + 0.5)/H)``.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = ["build_mip", "texture", "mip_level"]

Filter = Literal["nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear"]
Boundary = Literal["clamp", "wrap", "zero"]


def _check_tex(name: str, tex) -> jax.Array:
    tex = jnp.asarray(tex)
    if tex.ndim != 3:
        raise ValueError(f"{name}: tex must have shape (H, W, C), got {tex.shape}")
    if not jnp.issubdtype(tex.dtype, jnp.floating):
        raise TypeError(f"{name}: tex must be floating point, got {tex.dtype}")
    return tex


def build_mip(tex: Float[ArrayLike, "H W C"], *, max_levels: int | None = None) -> tuple[Float[Array, "_h _w C"], ...]:
    """A mip pyramid by 2 × 2 box filtering: ``(tex, tex/2, tex/4, …)``.

    Halving stops when a side is odd or 1, or after ``max_levels`` levels in all. Build it once
    and pass it to :func:`texture` (``mip=``) when the texture is fixed; when fitting a texture,
    build it inside the loss so gradients reach the full-resolution texels.

    Args:
        tex: ``(H, W, C)`` texture.
        max_levels: cap on the number of levels including level 0.

    Returns:
        Tuple of ``(H / 2^k, W / 2^k, C)`` arrays, level 0 first.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.render import build_mip
        >>> [m.shape for m in build_mip(jnp.ones((8, 4, 3)))]
        [(8, 4, 3), (4, 2, 3), (2, 1, 3)]
    """
    tex = _check_tex("build_mip", tex)
    if max_levels is not None and max_levels < 1:
        raise ValueError(f"build_mip: max_levels must be >= 1, got {max_levels}")
    levels = [tex]
    while (max_levels is None or len(levels) < max_levels):
        h, w, c = levels[-1].shape
        if h % 2 or w % 2 or h == 1 and w == 1:
            break
        levels.append(levels[-1].reshape(h // 2, 2, w // 2, 2, c).mean(axis=(1, 3)))
    return tuple(levels)


def _bilinear(tex: jax.Array, uv: jax.Array, boundary: str) -> jax.Array:
    h, w = tex.shape[0], tex.shape[1]
    x = uv[..., 0] * w - 0.5
    y = uv[..., 1] * h - 0.5
    x0 = jnp.floor(jax.lax.stop_gradient(x))
    y0 = jnp.floor(jax.lax.stop_gradient(y))
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    x0 = x0.astype(jnp.int32)
    y0 = y0.astype(jnp.int32)

    def tap(ix, iy):
        if boundary == "wrap":
            return tex[jnp.mod(iy, h), jnp.mod(ix, w)]
        val = tex[jnp.clip(iy, 0, h - 1), jnp.clip(ix, 0, w - 1)]
        if boundary == "zero":
            inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
            val = jnp.where(inside[..., None], val, 0.0)
        return val

    top = tap(x0, y0) * (1.0 - fx) + tap(x0 + 1, y0) * fx
    bottom = tap(x0, y0 + 1) * (1.0 - fx) + tap(x0 + 1, y0 + 1) * fx
    return top * (1.0 - fy) + bottom * fy


def _nearest(tex: jax.Array, uv: jax.Array, boundary: str) -> jax.Array:
    h, w = tex.shape[0], tex.shape[1]
    ix = jnp.floor(uv[..., 0] * w).astype(jnp.int32)
    iy = jnp.floor(uv[..., 1] * h).astype(jnp.int32)
    if boundary == "wrap":
        return tex[jnp.mod(iy, h), jnp.mod(ix, w)]
    val = tex[jnp.clip(iy, 0, h - 1), jnp.clip(ix, 0, w - 1)]
    if boundary == "zero":
        inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        val = jnp.where(inside[..., None], val, 0.0)
    return val


def mip_level(uv_grad: Float[ArrayLike, "*batch 2 2"], texture_size: tuple[int, int]) -> Float[Array, "*batch"]:
    """Mip level ``λ = log2 ρ`` from screen-space UV derivatives (isotropic footprint).

    ``ρ`` is the longer of the two screen-axis footprints in texels:
    ``max(‖(∂u/∂x·W, ∂v/∂x·H)‖, ‖(∂u/∂y·W, ∂v/∂y·H)‖)``. Finite gradients at zero footprint.

    Args:
        uv_grad: ``(..., 2, 2)`` with ``uv_grad[..., c, d] = ∂uv_c / ∂(x, y)_d`` per pixel (the
            second output of :func:`interpolate` with ``derivatives=True``).
        texture_size: ``(width, height)`` of mip level 0 (an image size, so width first: see
            :doc:`/conventions`).

    Returns:
        ``(...)`` level, ``≤ 0`` when magnifying (clamp before use).
    """
    g = jnp.asarray(uv_grad)
    if g.ndim < 2 or g.shape[-2:] != (2, 2):
        raise ValueError(f"mip_level: uv_grad must have shape (..., 2, 2), got {g.shape}")
    scale = jnp.asarray([texture_size[0], texture_size[1]], g.dtype)[:, None]
    texels = g * scale
    sq = jnp.max(jnp.sum(texels * texels, axis=-2), axis=-1)
    tiny = jnp.asarray(1e-20, g.dtype)
    return 0.5 * jnp.log2(jnp.maximum(sq, tiny))


def texture(
    tex: Float[ArrayLike, "H W C"],
    uv: Float[ArrayLike, "*batch 2"],
    uv_grad: Float[ArrayLike, "*batch 2 2"] | None = None,
    *,
    filter: Filter = "linear",
    boundary: Boundary = "clamp",
    mip: tuple[Float[ArrayLike, "_h _w C"], ...] | None = None,
    max_mip_level: int | None = None,
    mip_level_bias: Float[ArrayLike, "*batch"] | float | None = None,
) -> Float[Array, "*batch C"]:
    """Sample a texture at UV coordinates (the JAX counterpart of ``nvdiffrast.torch.texture``).

    Differentiable with respect to ``tex`` (and the ``mip`` levels), ``uv`` and, for the
    mipmapped filters, ``uv_grad`` through the level of detail.

    Args:
        tex: ``(H, W, C)`` texture.
        uv: ``(..., 2)`` coordinates in ``[0, 1]`` (outside handled by ``boundary``).
        uv_grad: ``(..., 2, 2)`` screen-space derivatives of ``uv`` (``∂uv_c/∂(x, y)_d``, from
            :func:`interpolate` with ``derivatives=True``). The mipmapped filters need it, or an
            explicit ``mip_level_bias`` that alone sets the level; with neither they raise
            (instead of silently sampling level 0).
        filter: ``"nearest"``, ``"linear"`` (bilinear), ``"linear-mipmap-nearest"`` (bilinear in
            the nearest level) or ``"linear-mipmap-linear"`` (trilinear).
        boundary: ``"clamp"`` to the edge texels, ``"wrap"`` around (repeat), or ``"zero"``
            outside.
        mip: a pyramid from :func:`build_mip` (level 0 must be ``tex``); built here if omitted.
        max_mip_level: highest level used.
        mip_level_bias: added to the level of detail, per pixel or scalar (``None``: 0); without
            ``uv_grad`` it *is* the level (``0.0`` for the full-resolution level).

    Returns:
        ``(..., C)`` sampled values.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.render import texture
        >>> tex = jnp.array([[[0.0], [1.0]]])          # 1 × 2 texture
        >>> texture(tex, jnp.array([[0.25, 0.5], [0.5, 0.5]])).ravel().tolist()
        [0.0, 0.5]
    """
    tex = _check_tex("texture", tex)
    uv = jnp.asarray(uv)
    if uv.ndim < 1 or uv.shape[-1] != 2:
        raise ValueError(f"texture: uv must have shape (..., 2), got {uv.shape}")
    if filter not in ("nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear"):
        raise ValueError(f"texture: unknown filter {filter!r}")
    if boundary not in ("clamp", "wrap", "zero"):
        raise ValueError(f"texture: unknown boundary {boundary!r}")
    uv = uv.astype(jnp.result_type(uv.dtype, tex.dtype))
    if filter == "nearest":
        return _nearest(tex, uv, boundary)
    if filter == "linear":
        return _bilinear(tex, uv, boundary)

    levels = build_mip(tex) if mip is None else tuple(jnp.asarray(m) for m in mip)
    if levels[0].shape != tex.shape:
        raise ValueError(f"texture: mip level 0 has shape {levels[0].shape}, expected {tex.shape}")
    if max_mip_level is not None:
        levels = levels[: max(int(max_mip_level), 0) + 1]
    if uv_grad is None and mip_level_bias is None:
        raise ValueError(
            f"texture: filter {filter!r} needs uv_grad (interpolate(..., derivatives=True)) or an explicit "
            "mip_level_bias giving the level (0.0 = full resolution); without them it would sample level 0"
        )
    bias = jnp.asarray(0.0 if mip_level_bias is None else mip_level_bias, uv.dtype)
    if uv_grad is None:
        lod = jnp.broadcast_to(bias, uv.shape[:-1])
    else:
        uv_grad = jnp.asarray(uv_grad)
        if uv_grad.shape != uv.shape + (2,):
            raise ValueError(f"texture: uv_grad must have shape {uv.shape + (2,)}, got {uv_grad.shape}")
        lod = mip_level(uv_grad, (tex.shape[1], tex.shape[0])) + bias
    lod = jnp.clip(lod, 0.0, float(len(levels) - 1))
    samples = jnp.stack([_bilinear(level, uv, boundary) for level in levels], axis=0)  # (L, ..., C)
    index = jnp.arange(len(levels), dtype=lod.dtype).reshape((-1,) + (1,) * lod.ndim)
    if filter == "linear-mipmap-nearest":
        weights = (index == jnp.round(jax.lax.stop_gradient(lod))[None]).astype(samples.dtype)
    else:
        weights = jnp.maximum(1.0 - jnp.abs(index - lod[None]), 0.0).astype(samples.dtype)
    return jnp.sum(samples * weights[..., None], axis=0)
