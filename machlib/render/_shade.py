"""A complete differentiable render of a textured mesh: rasterize → interpolate → texture →
(SH shading) → antialias. A convenience composed only of this package's primitives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from .._camera import Camera
from .._mesh import vertex_normals
from ._antialias import antialias, antialias_topology
from ._rasterize import interpolate, rasterize, to_clip
from ._sh import sh_shading
from ._texture import build_mip, texture

__all__ = ["render_textured", "srgb_to_linear", "linear_to_srgb"]


def srgb_to_linear(rgb: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
    """sRGB display values in ``[0, 1]`` → linear RGB (IEC 61966-2-1), elementwise. Differentiable.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.render import srgb_to_linear
        >>> round(float(srgb_to_linear(jnp.array(0.5))), 4)
        0.214
    """
    c = jnp.clip(jnp.asarray(rgb), 0.0, None)
    return jnp.where(c <= 0.04045, c / 12.92, ((jnp.maximum(c, 0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(lin: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
    """Linear RGB → sRGB display values, clipped to ``[0, 1]``, elementwise. Differentiable."""
    c = jnp.clip(jnp.asarray(lin), 0.0, 1.0)
    return jnp.where(c <= 0.0031308, 12.92 * c, 1.055 * jnp.maximum(c, 0.0031308) ** (1.0 / 2.4) - 0.055)


def render_textured(
    vertices: Float[ArrayLike, "V 3"],
    faces: Int[ArrayLike, "F 3"],
    uv: Float[ArrayLike, "T 2"],
    faces_uv: Int[ArrayLike, "F 3"],
    tex: Float[ArrayLike, "R R 3"],
    camera: Camera,
    *,
    lighting: Float[ArrayLike, "9 3"] | None = None,
    filter: str = "linear-mipmap-linear",
    antialiased: bool = True,
    topology: Int[ArrayLike, "F 3"] | None = None,
) -> Float[Array, "H W 4"]:
    """Render a textured mesh in a camera as straight RGBA (alpha = coverage), sRGB in ``[0, 1]``.

    Without ``lighting`` the texture is shown as is (unlit); with SH ``lighting`` the colour is
    ``albedo × sh_shading(n)`` computed in linear RGB (the texture is taken as an sRGB albedo).
    Differentiable with respect to ``vertices``, ``tex`` and ``lighting``.

    Args:
        vertices: ``(V, 3)`` positions in metres.
        faces: ``(F, 3)`` triangles (counter-clockwise from outside; back faces are culled).
        uv: ``(T, 2)`` texture coordinates; ``faces_uv`` ``(F, 3)`` indexes them per corner.
        faces_uv: see ``uv``.
        tex: ``(R, R, 3)`` texture in ``[0, 1]``.
        camera: the camera; the image is ``camera.image_size``.
        lighting: optional ``(9, 3)`` SH radiance coefficients (:mod:`machlib.render` SH).
        filter: texture filter (:func:`texture`).
        antialiased: apply :func:`antialias` to colour and alpha.
        topology: precomputed :func:`antialias_topology` of ``faces``.

    Returns:
        ``(H, W, 4)`` RGBA image, row 0 at the top.
    """
    vertices = jnp.asarray(vertices)
    faces = jnp.asarray(faces, jnp.int32)
    tex = jnp.asarray(tex)
    if tex.ndim != 3:
        raise ValueError(f"render_textured: tex must have shape (R, R, C), got {tex.shape}")
    width, height = camera.image_size
    clip = to_clip(vertices, camera)
    # visibility outside the compiled shading, so rasterize can size its fragment buffer exactly;
    # with derivatives whatever the filter: the same raster program as the texture fit's
    # (texture_problem) for the same mesh and camera, compiled once per process instead of twice
    # (the raster's other fields are bit-identical, the unused derivatives cost little)
    rast = rasterize(clip, faces, image_size=(width, height), cull_backfaces=True, derivatives=True)
    topo = None
    if antialiased:
        topo = jnp.asarray(antialias_topology(np.asarray(faces)) if topology is None else topology, jnp.int32)
    # lit and unlit renders share one compiled program: whether to light is an argument, not a
    # static choice (a textured stage renders the same mesh both ways; a second program cost
    # about 1.5 s of compilation)
    lit = lighting is not None
    light = jnp.asarray(lighting) if lit else jnp.zeros((9, 3), vertices.dtype)
    return _shade_jit(vertices, faces, jnp.asarray(uv, vertices.dtype), jnp.asarray(faces_uv, jnp.int32), tex,
                      clip, rast, light, jnp.asarray(lit), topo, filter)


def _shade(vertices, faces, uv, faces_uv, tex, clip, rast, lighting, lit, topo, filter):
    if filter.startswith("linear-mip"):
        tc, dtc = interpolate(uv, rast, faces_uv, derivatives=True)
        color = texture(tex, tc, dtc, filter=filter, mip=build_mip(tex))
    else:
        tc = interpolate(uv, rast, faces_uv)
        color = texture(tex, tc, filter=filter)
    n = interpolate(vertex_normals(vertices, faces), rast, faces)
    shaded = linear_to_srgb(srgb_to_linear(color) * jnp.maximum(sh_shading(n, lighting), 0.0))
    color = jnp.where(lit, shaded, color)
    alpha = (rast.triangle >= 0).astype(color.dtype)[..., None]
    rgba = jnp.concatenate([color * alpha, alpha], axis=-1)
    if topo is not None:
        rgba = antialias(rgba, rast, clip, faces, topology=topo)
    rgb = rgba[..., :3] / jnp.maximum(rgba[..., 3:], 1e-6)
    return jnp.concatenate([jnp.clip(rgb, 0.0, 1.0), jnp.clip(rgba[..., 3:], 0.0, 1.0)], axis=-1)


_shade_jit = jax.jit(_shade, static_argnums=(10,))
