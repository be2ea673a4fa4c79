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

__all__ = ["normal_map", "SHDelight", "estimate_lighting", "delight_sh", "Sheen", "sheen_layer"]


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


# ------------------------------------------------------------------------------------------------
class Sheen(NamedTuple):
    """Result of :func:`sheen_layer`.

    Attributes:
        albedo: ``(R, R, 3)`` the albedo with the sheen removed, sRGB in ``[0, 1]``.
        gloss: ``(R, R)`` the sheen per texel: the achromatic excess ``g`` (linear, in the
            albedo's units: the texel held ``g · illuminant`` more than its diffuse colour).
        diffuse: ``(R, R, 3)`` the robust local low-pass of the skin the excess is measured
            against (linear RGB; where no weight reaches, 0).
    """

    albedo: Array
    gloss: Array
    diffuse: Array


def _gauss_matrix(n: int, sigma: float) -> np.ndarray:
    i = np.arange(n, dtype=np.float64)
    return np.exp(-0.5 * ((i[:, None] - i[None, :]) / sigma) ** 2).astype(np.float32)


def _sheen_factor(R: int) -> int:
    """The low-pass runs on a grid of at most 256² (the largest power of 2 dividing ``R``)."""
    f = 1
    while R // (2 * f) >= 256 and R % (2 * f) == 0:
        f *= 2
    return f


def _sheen(albedo, weights, illuminant, sigma, threshold, passes, brighter=True):
    dt = jnp.result_type(albedo.dtype, jnp.float32)
    a = srgb_to_linear(albedo.astype(dt))
    w = jnp.clip(weights.astype(dt), 0.0, 1.0)
    R = a.shape[0]
    f = _sheen_factor(R)
    r = R // f
    K = jnp.asarray(_gauss_matrix(r, max(sigma * r, 0.5)), dt)
    k = illuminant.astype(dt)
    luma = jnp.asarray([0.2126, 0.7152, 0.0722], dt)
    k = k / jnp.maximum(jnp.sum(k * luma), 1e-12)  # luminance 1

    # bilinear upsampling from r to R: the two source rows (columns) of each texel and their weights
    y = np.clip((np.arange(R) + 0.5) / f - 0.5, 0.0, r - 1.0)
    i0 = np.minimum(np.floor(y).astype(np.int32), r - 2) if r > 1 else np.zeros(R, np.int32)
    t = jnp.asarray(y - i0, dt)[:, None, None]
    i1 = np.minimum(i0 + 1, r - 1)

    def low_pass(x):  # (R, R, C) -> box-downsampled by f, Gaussian along both axes, bilinear back up
        c = x.shape[-1]
        s = x.reshape(r, f, r, f, c).mean((1, 3))
        s = jnp.einsum("ij,jkc,lk->ilc", K, s, K)
        s = s[i0] * (1 - t) + s[i1] * t  # (R, r, c)
        return s[:, i0] * (1 - t[:, 0][None]) + s[:, i1] * t[:, 0][None]

    m = jnp.zeros_like(w)
    g = jnp.zeros_like(w)
    lp = jnp.zeros_like(a)
    for _ in range(passes):
        ww = (w * (1.0 - m))[..., None]
        num = low_pass(jnp.concatenate([a * ww, ww], -1))
        den = num[..., 3:]
        ok = den > 1e-4
        lp = jnp.where(ok, num[..., :3] / jnp.where(ok, den, 1.0), 0.0)
        # a = d · lp + g · k in least squares: the diffuse brightness d of the local skin's colour,
        # and the achromatic excess g
        cc = jnp.sum(lp * lp, -1)
        ck = jnp.sum(lp * k, -1)
        kk = jnp.sum(k * k)
        ca = jnp.sum(lp * a, -1)
        ka = jnp.sum(k[None, None] * a, -1)
        det = cc * kk - ck * ck
        good = det > 1e-6 * cc * kk + 1e-20
        g_chroma = jnp.where(good, (cc * ka - ck * ca) / jnp.where(good, det, 1.0), 0.0)
        lum_lp = jnp.sum(lp * luma, -1)
        g_bright = jnp.sum(a * luma, -1) - lum_lp  # brighter than the local skin, too
        tau = threshold * lum_lp
        g_raw = jnp.minimum(g_chroma, g_bright) if brighter else g_chroma
        g = w * jnp.maximum(g_raw - tau, 0.0) * ok[..., 0]
        m = jnp.clip(g / jnp.maximum(tau, 1e-6), 0.0, 1.0)  # the next low-pass leaves the sheen out
    clean = jnp.maximum(a - g[..., None] * k, 0.0)
    return linear_to_srgb(clean), g, lp


_sheen_jit = jax.jit(_sheen, static_argnums=(3, 4, 5, 6))


def sheen_layer(
    albedo: Float[ArrayLike, "R R 3"],
    weights: Float[ArrayLike, "R R"],
    *,
    illuminant: Float[ArrayLike, "3"] = (1.0, 1.0, 1.0),
    sigma: float = 0.12,
    threshold: float = 0.15,
    passes: int = 2,
    brighter: bool = False,
) -> Sheen:
    """Split the photo's sheen (specular highlights) from a delit albedo: a per-texel gloss layer.

    :func:`delight_sh` divides out only low-frequency diffuse shading, so a highlight (flash or
    sheen on the forehead, nose, cheeks) stays in the albedo as a pale smear. A highlight adds
    light of the illuminant's colour: in linear RGB it raises all three channels in proportion
    to ``illuminant`` and lowers the saturation. Per texel, in linear RGB::

        a ≈ d · c + g · k        (least squares in d, g)

    with ``c`` the robust local low-pass of the skin (a Gaussian of ``sigma`` × ``R`` over
    ``weights``, on a grid of at most 256²) and ``k`` the illuminant's colour (luminance 1).
    The sheen is ``g`` above a noise floor, ``gloss = weights · max(g − threshold · Y(c), 0)``
    (``Y`` the luminance); with ``brighter``, only the part of ``g`` that is also a brightness
    excess over the local skin, ``min(g, Y(a) − Y(c))``. ``passes`` rounds leave the previous
    round's sheen out of the low-pass. The defaults are :func:`machlib.pipeline.texture_portrait`'s
    (measured on five portraits, ``docs/benchmarks/fidelity.md``): a wide low-pass (12 % of the
    map, the face's skin colour rather than its neighbourhood's, since a flash's sheen covers
    whole cheeks and the forehead) and no brightness test (the SH delighting has already taken
    a broad sheen's brightness into its shading: what it leaves is whiter, not brighter).
    Whitish texels that are no sheen (grey stubble, a pale scar) are taken for sheen too: keep
    them out with ``weights``. The albedo without it is ``a − gloss · k``: the texel keeps its own colour
    detail, the excess of the illuminant's colour goes. Pure JAX, differentiable almost
    everywhere, jit/vmap-safe.

    Args:
        albedo: ``(R, R, 3)`` sRGB albedo in ``[0, 1]`` (e.g. :attr:`SHDelight.albedo`); ``R``
            a multiple of ``R / 256`` rounded down to a power of 2 (any ``R <= 511``, or a
            power of 2).
        weights: ``(R, R)`` the seen skin's weights in ``[0, 1]`` (0 on eyes, lips, brows,
            hair, glasses and unseen texels: no sheen is found there).
        illuminant: linear RGB colour of the light (default white); scale is irrelevant.
        sigma: width of the skin's low-pass, a fraction of ``R``.
        threshold: noise floor, a fraction of the local skin's linear luminance.
        passes: robust rounds (``>= 1``).
        brighter: count only the excess that is also brighter than the local skin (default
            ``False``: every whiter texel).

    Returns:
        A :class:`Sheen` (JAX arrays).

    Raises:
        InputError: bad shapes or options.

    Example:
        >>> import numpy as np
        >>> from machlib.texture import sheen_layer
        >>> a = np.full((64, 64, 3), (0.7, 0.5, 0.4), np.float32)
        >>> a[30:34, 30:34] = (0.85, 0.72, 0.66)  # a whitish spot
        >>> s = sheen_layer(a, np.ones((64, 64), np.float32))
        >>> bool(s.gloss[32, 32] > 0.05), float(s.gloss[5, 5])
        (True, 0.0)
    """
    a = jnp.asarray(albedo)
    w = jnp.asarray(weights)
    if a.ndim != 3 or a.shape[-1] != 3 or a.shape[0] != a.shape[1] or w.shape != a.shape[:2]:
        raise InputError(f"sheen_layer: albedo must be square (R, R, 3) and weights (R, R); got {a.shape}, {w.shape}")
    f = _sheen_factor(a.shape[0])
    if a.shape[0] < 8 or a.shape[0] % f:
        raise InputError(f"sheen_layer: albedo size {a.shape[0]} must be >= 8 and a multiple of {f}")
    k = jnp.asarray(illuminant)
    if k.shape != (3,):
        raise InputError(f"sheen_layer: illuminant must be a (3,) colour, got shape {k.shape}")
    if not (np.isfinite(sigma) and sigma > 0 and np.isfinite(threshold) and threshold >= 0 and int(passes) >= 1):
        raise InputError(f"sheen_layer: need sigma > 0, threshold >= 0, passes >= 1; got {sigma}, {threshold}, {passes}")
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(jnp.float32) / 255.0 if a.dtype == jnp.uint8 else a.astype(jnp.float32)
    return Sheen(*_sheen_jit(a, w.astype(a.dtype), k.astype(a.dtype), float(sigma), float(threshold), int(passes),
                                 bool(brighter)))
