"""Skin tone by Individual Typology Angle (ITA, Chardon et al. 1991) and CIELAB conversion.

``ITA° = atan((L* − 50) / b*) · 180/π`` in CIELAB (D65). Larger angles are lighter skin: very
light > 55°, light 41–55°, intermediate 28–41°, tan 10–28°, brown −30–10°, dark < −30°.
Colours are sRGB display values in ``[0, 1]`` unless stated otherwise.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._device import to_device
from .._errors import InputError

__all__ = [
    "ITA_CATEGORIES",
    "srgb_to_lab",
    "lab_to_srgb",
    "ita_of",
    "skin_color",
    "shift_to_ita",
]

#: ITA skin categories: name → ``(low, high)`` angle in degrees.
ITA_CATEGORIES = {
    "very_light": (55.0, 90.0),
    "light": (41.0, 55.0),
    "intermediate": (28.0, 41.0),
    "tan": (10.0, 28.0),
    "brown": (-30.0, 10.0),
    "dark": (-90.0, -30.0),
}

_WHITE = (0.95047, 1.0, 1.08883)
_M = ((0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041))
_M_INV = ((3.2404542, -1.5371385, -0.4985314), (-0.9692660, 1.8760108, 0.0415560), (0.0556434, -0.2040259, 1.0572252))
_EPS = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0


def _as_float(x) -> Array:
    x = to_device(x)  # host data moved without compiling a conversion program per shape
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def _check_rgb(name: str, x) -> Array:
    x = _as_float(x)
    if x.ndim < 1 or x.shape[-1] != 3:
        raise InputError(f"{name}: colours must have shape (..., 3), got {x.shape}")
    return x


def _lab_linear_np(lin) -> np.ndarray:
    """CIELAB (D65) of linear RGB, ``(..., 3)`` → ``(..., 3)``, numpy float64 (no program to
    compile: for one-shot host work on arrays whose shape changes with every photo)."""
    xyz = np.clip(np.asarray(lin, np.float64), 0.0, None) @ np.asarray(_M).T / np.asarray(_WHITE)
    f = np.where(xyz > _EPS, np.cbrt(np.maximum(xyz, _EPS)), (_KAPPA * xyz + 16.0) / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


def _srgb_to_lab_np(rgb01) -> np.ndarray:
    """:func:`srgb_to_lab` in numpy, float64 (sRGB in ``[0, 1]``)."""
    c = np.clip(np.asarray(rgb01, np.float64), 0.0, None)
    return _lab_linear_np(np.where(c <= 0.04045, c / 12.92, ((np.maximum(c, 0.04045) + 0.055) / 1.055) ** 2.4))


def srgb_to_lab(rgb: Float[ArrayLike, "*batch 3"]) -> Float[Array, "*batch 3"]:
    """sRGB in ``[0, 1]`` → CIELAB ``(L*, a*, b*)`` under D65. Differentiable.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import srgb_to_lab
        >>> srgb_to_lab(jnp.ones(3)).round(2).tolist()
        [100.0, 0.0, 0.0]
    """
    rgb = _check_rgb("srgb_to_lab", rgb)
    c = jnp.clip(rgb, 0.0, None)
    lin = jnp.where(c <= 0.04045, c / 12.92, ((jnp.maximum(c, 0.04045) + 0.055) / 1.055) ** 2.4)
    xyz = lin @ jnp.asarray(_M, lin.dtype).T / jnp.asarray(_WHITE, lin.dtype)
    f = jnp.where(xyz > _EPS, jnp.cbrt(jnp.maximum(xyz, _EPS)), (_KAPPA * xyz + 16.0) / 116.0)
    return jnp.stack(
        [116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], axis=-1
    )


def lab_to_srgb(lab: Float[ArrayLike, "*batch 3"]) -> Float[Array, "*batch 3"]:
    """CIELAB (D65) → sRGB, clipped to ``[0, 1]``. Inverse of :func:`srgb_to_lab` in gamut."""
    lab = _check_rgb("lab_to_srgb", lab)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    f = jnp.stack([fx, fy, fz], axis=-1)
    xyz = jnp.where(f**3 > _EPS, f**3, (116.0 * f - 16.0) / _KAPPA) * jnp.asarray(_WHITE, lab.dtype)
    lin = jnp.clip(xyz @ jnp.asarray(_M_INV, lab.dtype).T, 0.0, 1.0)
    return jnp.where(lin <= 0.0031308, 12.92 * lin, 1.055 * jnp.maximum(lin, 0.0031308) ** (1.0 / 2.4) - 0.055)


def ita_of(rgb: Float[ArrayLike, "*batch 3"]) -> Float[Array, "*batch"]:
    """Individual Typology Angle in degrees of sRGB colours (module docstring).

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import ita_of, skin_color
        >>> round(float(ita_of(skin_color(45.0))))
        45
    """
    lab = srgb_to_lab(rgb)
    return jnp.degrees(jnp.arctan2(lab[..., 0] - 50.0, lab[..., 2]))


def skin_color(ita: Float[ArrayLike, "*batch"] | float) -> Float[Array, "*batch 3"]:
    """A typical skin colour (sRGB) with the given ITA in degrees.

    The CIELAB point lies on the ITA ray from ``(L*, b*) = (50, 0)`` with a chroma typical of
    skin: ``b* = 14 + 6·cos(ITA)``, ``a* = 9 + 5·cos(ITA)`` (redder and yellower toward
    intermediate tones), so ``L* = 50 + b*·tan(ITA)``. Defined for ``−60° ≤ ITA ≤ 70°``.
    """
    ita = _as_float(ita)
    rad = jnp.radians(jnp.clip(ita, -60.0, 70.0))
    b = 14.0 + 6.0 * jnp.cos(rad)
    a = 9.0 + 5.0 * jnp.cos(rad)
    lightness = jnp.clip(50.0 + b * jnp.tan(rad), 5.0, 98.0)
    return lab_to_srgb(jnp.stack([lightness, a, b], axis=-1))


def shift_to_ita(
    rgb: Float[ArrayLike, "*batch 3"],
    ita: float | Float[ArrayLike, ""],
    *,
    weights: Float[ArrayLike, "*batch"] | None = None,
) -> Float[Array, "*batch 3"]:
    """Recolour skin so its (weighted) mean colour has the given ITA, keeping the detail.

    Works in CIELAB: every pixel's ``L*, a*, b*`` is offset by the difference between the mean
    colour of ``rgb`` (weighted by ``weights``, e.g. a skin mask) and :func:`skin_color` of
    ``ita``; spots, lips and pores keep their contrast. Used for the ITA augmentation of the
    delighting training data and for matching the template albedo to a portrait.

    Args:
        rgb: ``(..., 3)`` sRGB colours, e.g. an albedo texture.
        ita: target angle in degrees.
        weights: optional non-negative weights over the leading axes (default uniform).

    Returns:
        Recoloured sRGB, same shape, clipped to ``[0, 1]``.
    """
    rgb = _check_rgb("shift_to_ita", rgb)
    lab = srgb_to_lab(rgb)
    w = jnp.ones(rgb.shape[:-1], lab.dtype) if weights is None else jnp.asarray(weights, lab.dtype)
    if w.shape != rgb.shape[:-1]:
        raise InputError(f"shift_to_ita: weights must have shape {rgb.shape[:-1]}, got {w.shape}")
    mean = jnp.sum(lab * w[..., None], axis=tuple(range(lab.ndim - 1))) / jnp.maximum(jnp.sum(w), 1e-12)
    target = srgb_to_lab(skin_color(ita))
    return lab_to_srgb(lab + (target - mean))

