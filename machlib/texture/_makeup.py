"""Parametric make-up layers in UV space: blush, eye shadow and lipstick (paper §2.4.3, last
step: "we also add make-ups around eyes and cheeks to improve the aesthetics").

Each layer is a soft mask built from the landmark polygons (:mod:`machlib.texture` regions),
a colour and an opacity (the strength times the mask), composited with a blend mode:
``multiply`` for blush and eye shadow (tints skin without flattening its texture) and
``soft_light`` for lipstick (keeps the lips' shading and lines). At strength 0 a layer is an
exact no-op.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Shaped

from .._errors import InputError
from ..geometry import face_oval
from ._regions import (
    LIPS_INNER,
    LIPS_OUTER,
    RIGHT_BROW,
    RIGHT_EYE,
    _check_landmarks,
    _coverage,
    _polygon_sdf,
    mirrored,
)

__all__ = ["makeup", "blend_layer"]

_MODES = ("normal", "multiply", "screen", "overlay", "soft_light")


def _blend(base: Array, color: Array, mode: str) -> Array:
    if mode == "normal":
        return jnp.broadcast_to(color, base.shape)
    if mode == "multiply":
        return base * color
    if mode == "screen":
        return 1.0 - (1.0 - base) * (1.0 - color)
    if mode == "overlay":
        return jnp.where(base < 0.5, 2.0 * base * color, 1.0 - 2.0 * (1.0 - base) * (1.0 - color))
    # soft light, the "pegtop" formula: smooth in both arguments
    return (1.0 - 2.0 * color) * base * base + 2.0 * color * base


def blend_layer(
    base: Float[ArrayLike, "H W 3"],
    color: Float[ArrayLike, "*#H *#W 3"],
    opacity: Float[ArrayLike, "*#H *#W"] | float,
    *,
    mode: str = "normal",
) -> Float[Array, "H W 3"]:
    """Composite a colour layer over an image: ``base + opacity · (blend(base, color) − base)``.

    Args:
        base: ``(H, W, 3)`` sRGB in ``[0, 1]``.
        color: the layer colour, ``(3,)`` or ``(H, W, 3)`` sRGB.
        opacity: scalar or ``(H, W)`` in ``[0, 1]`` (0 leaves ``base`` unchanged, exactly).
        mode: ``"normal"``, ``"multiply"``, ``"screen"``, ``"overlay"`` or ``"soft_light"``
            (pegtop's formula) — the usual image-editor blend modes.

    Returns:
        ``(H, W, 3)`` composited sRGB, clipped to ``[0, 1]``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import blend_layer
        >>> base = jnp.full((2, 2, 3), 0.5)
        >>> blend_layer(base, jnp.array([1.0, 0.5, 0.0]), 0.5, mode="multiply")[0, 0].tolist()
        [0.5, 0.375, 0.25]
    """
    if mode not in _MODES:
        raise InputError(f"blend_layer: mode must be one of {_MODES}, got {mode!r}")
    base = jnp.asarray(base)
    if base.ndim != 3 or base.shape[-1] != 3:
        raise InputError(f"blend_layer: base must have shape (H, W, 3), got {base.shape}")
    color = jnp.asarray(color, base.dtype)
    opacity = jnp.asarray(opacity, base.dtype)
    if opacity.ndim and opacity.shape != base.shape[:2]:
        raise InputError(f"blend_layer: opacity must be a scalar or have shape {base.shape[:2]} (H, W), "
                         f"got {opacity.shape}")
    return _composite(base, color, opacity, mode)


def _composite(base, color, opacity, mode):
    mixed = _blend(base, color, mode)
    alpha = opacity[..., None] if opacity.ndim else opacity
    # a convex mix of the base and the clipped blend: stays in [0, 1] for bases in [0, 1], and
    # zero opacity returns the base exactly (even out-of-range values)
    return base + alpha * (jnp.clip(mixed, 0.0, 1.0) - base)


def _gauss(u, v, c, su, sv):
    return jnp.exp(-0.5 * (((u - c[0]) / su) ** 2 + ((v - c[1]) / sv) ** 2))


@functools.partial(jax.jit, static_argnames=("resolution",))
def _layers(lm, *, resolution):
    """Soft ``(R, R)`` masks of the three make-up layers."""
    R = resolution
    dt = lm.dtype
    u = jnp.broadcast_to(((jnp.arange(R, dtype=dt) + 0.5) / R)[None, :], (R, R))
    v = jnp.broadcast_to(((jnp.arange(R, dtype=dt) + 0.5) / R)[:, None], (R, R))
    iod = jnp.linalg.norm(lm[33] - lm[263])
    take = lambda idx: lm[jnp.asarray(idx)]  # noqa: E731
    blush = jnp.zeros((R, R), dt)
    shadow = jnp.zeros((R, R), dt)
    for side in (lambda i: i, mirrored):
        cheek = jnp.mean(take(side((50, 101, 118, 205, 123))), axis=0)
        blush = jnp.maximum(blush, _gauss(u, v, cheek, 0.16 * iod, 0.12 * iod))
        contour = take(side(RIGHT_EYE))
        eye_sdf = _polygon_sdf(contour, R)
        centre_v = jnp.mean(contour[:, 1])
        above = jax.nn.sigmoid((centre_v - v) / (0.025 * iod))  # the upper lid, not under the eye
        falloff = jnp.exp(-((jax.nn.relu(eye_sdf) / (0.10 * iod)) ** 1.5))
        brow = _polygon_sdf(take(side(RIGHT_BROW)), R)
        under_brow = jax.nn.sigmoid(brow / (0.015 * iod))  # fades out under the brow hair
        shadow = jnp.maximum(shadow, above * falloff * under_brow * (1.0 - _coverage(eye_sdf, R)))
    lips = _coverage(_polygon_sdf(take(LIPS_OUTER), R), R) * (1.0 - _coverage(_polygon_sdf(take(LIPS_INNER), R), R))
    # blush stays on the face (in a layout where the cheeks reach the face's outline, its
    # Gaussian would otherwise spill past it)

    face = _coverage(_polygon_sdf(take(tuple(int(i) for i in face_oval())), R), R)
    return blush * face, shadow, lips


def makeup(
    albedo: Float[ArrayLike, "R R 3"],
    landmarks_uv: Float[ArrayLike, "K 2"],
    *,
    blush: Float[ArrayLike, ""] | float = 0.0,
    eye_shadow: Float[ArrayLike, ""] | float = 0.0,
    lipstick: Float[ArrayLike, ""] | float = 0.0,
    blush_color: Shaped[ArrayLike, "3"] | Sequence[float] = (0.96, 0.66, 0.66),
    eye_shadow_color: Shaped[ArrayLike, "3"] | Sequence[float] = (0.62, 0.48, 0.56),
    lipstick_color: Shaped[ArrayLike, "3"] | Sequence[float] = (0.72, 0.12, 0.22),
) -> Float[Array, "R R 3"]:
    """Add blush, eye shadow and lipstick to a UV-space albedo.

    Masks from the landmarks: blush is an elliptical Gaussian on each cheek (centred on the
    mean of FaceMesh points 50, 101, 118, 123, 205 and their mirrors; size relative to the outer
    eye-corner distance), eye shadow covers the upper lid, strongest at the lash line and fading
    toward the brow, lipstick covers the lips (outer minus inner contour). Blush
    and eye shadow are ``multiply`` layers, lipstick a ``soft_light`` layer (:func:`blend_layer`).
    Pure JAX: jit-safe (static size), differentiable in ``albedo``, strengths and colours.

    Args:
        albedo: ``(R, R, 3)`` sRGB albedo in ``[0, 1]``.
        landmarks_uv: ``(478, 2)`` UV of the FaceMesh landmarks.
        blush, eye_shadow, lipstick: layer strengths (opacity scale) in ``[0, 1]``; 0 = off.
        blush_color, eye_shadow_color, lipstick_color: sRGB layer colours.

    Returns:
        ``(R, R, 3)`` albedo with make-up; equal to ``albedo`` when every strength is 0.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.geometry import default_template
        >>> from machlib.texture import makeup
        >>> skin = jnp.full((64, 64, 3), jnp.array([0.8, 0.6, 0.5]))
        >>> lm = default_template().landmark_uv
        >>> bool(jnp.all(makeup(skin, lm) == skin)), bool(jnp.any(makeup(skin, lm, blush=1.0) != skin))
        (True, True)
    """
    fn = "makeup"
    albedo = jnp.asarray(albedo)
    if albedo.ndim != 3 or albedo.shape[-1] != 3 or albedo.shape[0] != albedo.shape[1]:
        raise InputError(f"{fn}: albedo must have shape (R, R, 3), got {albedo.shape}")
    if not jnp.issubdtype(albedo.dtype, jnp.floating):
        albedo = albedo.astype(jnp.float32)
    lm = _check_landmarks(fn, landmarks_uv).astype(albedo.dtype)
    for name, v in (("blush", blush), ("eye_shadow", eye_shadow), ("lipstick", lipstick)):
        if isinstance(v, jax.core.Tracer):
            continue  # traced (under jit/grad): the caller's responsibility
        v = np.asarray(v)
        if v.shape != () or not 0.0 <= float(v) <= 1.0:
            raise InputError(f"{fn}: {name} must be a number in [0, 1], got {v.tolist()!r}")
    colors = []
    for name, c in (("blush_color", blush_color), ("eye_shadow_color", eye_shadow_color),
                    ("lipstick_color", lipstick_color)):
        c = jnp.asarray(c, albedo.dtype)
        if c.shape != (3,):
            raise InputError(f"{fn}: {name} must have shape (3,), got {c.shape}")
        colors.append(c)
    b_mask, s_mask, l_mask = _layers(lm, resolution=int(albedo.shape[0]))
    dt = albedo.dtype
    out = _composite(albedo, colors[0], jnp.asarray(blush, dt) * b_mask, "multiply")
    out = _composite(out, colors[1], jnp.asarray(eye_shadow, dt) * s_mask, "multiply")
    out = _composite(out, colors[2], jnp.asarray(lipstick, dt) * l_mask, "soft_light")
    # zero opacity leaves a texel exactly as it was, so zero strengths are a no-op; no switch on
    # the strengths here, so their gradient at 0 is the true one
    return out
