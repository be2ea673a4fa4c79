"""Delighting without weights: remove the portrait's estimated SH shading in UV space (§2.4.2).

The extracted texture ``T`` holds ``albedo × shading`` as the camera saw it. With the fitted
geometry's normals per texel (:func:`normal_map`), second-order SH lighting is estimated over
the seen skin texels (eyes, brows, lips and nostrils excluded, since their albedo differs from
skin), assuming skin albedo is constant there; the light's overall colour and scale cannot be
told apart from the albedo's, so the shading is normalised to mean 1 per channel over the seen
skin (the portrait's light is taken as white on average, and the skin keeps its tone). The
albedo is then ``T / max(shading, floor)`` in linear RGB, converted back to sRGB.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._errors import InputError
from .._mesh import Mesh, vertex_normals
from ..geometry._triplane import encode, uv_raster
from ..render import fit_sh_lighting, linear_to_srgb, sh_shading, srgb_to_linear

__all__ = ["normal_map", "SHDelight", "estimate_lighting", "delight_sh"]


def normal_map(mesh: Mesh, resolution: int) -> Float[np.ndarray, "R R 3"]:
    """Unit surface normals of a mesh laid out in its UV chart (head space).

    Vertex normals are interpolated over the chart with the triplane encoder (texels outside the
    chart take the nearest triangle's values, so bilinear sampling is seamless).

    Args:
        mesh: a mesh with UVs (e.g. the fitted head).
        resolution: map size ``R``.

    Returns:
        ``(R, R, 3)`` float32 unit normals.
    """
    if mesh.uv is None or mesh.faces_uv is None:
        raise InputError("normal_map: mesh has no UV coordinates")
    vertices = jnp.asarray(mesh.vertices, jnp.float32)
    n = np.asarray(encode(vertex_normals(vertices, jnp.asarray(mesh.faces)), uv_raster(mesh, resolution)))
    return (n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


class SHDelight(NamedTuple):
    """Result of :func:`delight_sh`.

    Attributes:
        albedo: ``(R, R, 3)`` delit texture, sRGB in ``[0, 1]`` (valid where the input was seen).
        shading: ``(R, R, 3)`` estimated shading, linear, mean 1 over the seen skin.
        coeffs: ``(9, 3)`` SH radiance coefficients of the normalised shading.
    """

    albedo: np.ndarray
    shading: np.ndarray
    coeffs: np.ndarray


def estimate_lighting(
    texture: Float[ArrayLike, "R R 3"],
    normals: Float[ArrayLike, "R R 3"],
    weights: Float[ArrayLike, "R R"],
    *,
    albedo: Float[ArrayLike, "R R 3"] | None = None,
    ridge: float = 0.05,
) -> Float[Array, "9 3"]:
    """SH lighting (9 × 3) of a texture in UV space, normalised to mean shading 1 per channel.

    Args:
        texture: ``(R, R, 3)`` sRGB texture (as extracted).
        normals: ``(R, R, 3)`` unit normals per texel (:func:`normal_map`).
        weights: ``(R, R)`` texels to use (seen skin).
        albedo: optional ``(R, R, 3)`` sRGB albedo prior (default: constant, i.e. skin of one
            colour; the scale per channel is normalised away either way).
        ridge: regularisation of bands 1–2 (relative); keeps the estimate stable when the seen
            normals cover only the front of the head.

    Returns:
        ``(9, 3)`` radiance coefficients for :func:`~machlib.render.sh_shading`.
    """
    tex = jnp.asarray(texture)
    nrm = jnp.asarray(normals)
    w = jnp.asarray(weights)
    if tex.ndim != 3 or tex.shape[-1] != 3 or nrm.shape != tex.shape or w.shape != tex.shape[:2]:
        raise InputError(
            f"estimate_lighting: need texture (R, R, 3), normals of the same shape and weights (R, R); "
            f"got {tex.shape}, {nrm.shape}, {w.shape}"
        )
    lin = srgb_to_linear(tex).reshape(-1, 3)
    prior = jnp.ones_like(lin) if albedo is None else srgb_to_linear(jnp.asarray(albedo)).reshape(-1, 3)
    coeffs = fit_sh_lighting(nrm.reshape(-1, 3), lin, prior, weights=w.reshape(-1), ridge=ridge)
    shade = sh_shading(nrm.reshape(-1, 3), coeffs)
    mean = jnp.sum(shade * w.reshape(-1, 1), axis=0) / jnp.maximum(jnp.sum(w), 1e-12)
    return coeffs / jnp.where(jnp.abs(mean) > 1e-12, mean, 1.0)


def delight_sh(
    texture: Float[ArrayLike, "R R 3"],
    normals: Float[ArrayLike, "R R 3"],
    weights: Float[ArrayLike, "R R"],
    *,
    albedo: Float[ArrayLike, "R R 3"] | None = None,
    floor: float = 0.35,
    ridge: float = 0.05,
) -> SHDelight:
    """Remove estimated SH shading from an extracted texture (default delighting, no weights).

    Args:
        texture: ``(R, R, 3)`` sRGB texture.
        normals: ``(R, R, 3)`` normals per texel in head space.
        weights: ``(R, R)`` seen-skin weights for the lighting estimate.
        albedo: optional albedo prior (see :func:`estimate_lighting`).
        floor: smallest shading divided by; darker texels (deep shadow) are brightened at most
            ``1/floor`` times instead of amplifying noise.
        ridge: see :func:`estimate_lighting`.

    Returns:
        A :class:`SHDelight`.
    """
    albedo_out, shading, coeffs = _delight_jit(
        jnp.asarray(texture), jnp.asarray(normals), jnp.asarray(weights),
        None if albedo is None else jnp.asarray(albedo), float(floor), float(ridge),
    )
    return SHDelight(np.asarray(albedo_out), np.asarray(shading), np.asarray(coeffs))


def _delight(texture, normals, weights, albedo, floor, ridge):
    coeffs = estimate_lighting(texture, normals, weights, albedo=albedo, ridge=ridge)
    shading = sh_shading(normals, coeffs)
    # soft floor: smooth maximum of shading and floor
    k = 0.05
    soft = 0.5 * (shading + floor + jnp.sqrt((shading - floor) ** 2 + k * k))
    return linear_to_srgb(srgb_to_linear(texture) / soft), shading, coeffs


_delight_jit = jax.jit(_delight, static_argnums=(4, 5))
