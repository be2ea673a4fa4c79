"""Per-texel confidence of the portrait's texture, and mirroring of the better-seen half.

Completion (:func:`~machlib.texture.complete_texture`) keeps what the portrait shows: each texel
carries a confidence in ``[0, 1]`` that the extracted colour is right, built from

* the view angle and occlusion already in :func:`~machlib.texture.texel_visibility`'s weights
  (a texel hidden behind the head, outside the face region or seen edge-on has weight 0),
* the distance to the silhouette of the seen region (texels near it are blurred across the
  edge of the head or of the face region, so confidence ramps up over ``edge`` UV units).

:func:`mirror_fill` then fills the worse-seen half of a face from the better-seen half through
the mirror symmetry of the UV layout (templates with ``Template.symmetric``: the layout is
mirror-symmetric about ``u = 0.5``), before completion falls back to the template.

Both are pure JAX, differentiable, jit- and vmap-safe (``edge`` fixes a static loop count).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Shaped

from .._errors import InputError

__all__ = ["texel_confidence", "mirror_fill"]


def _min3(x: Array) -> Array:
    """3 × 3 minimum filter (edge texels repeat)."""
    p = jnp.pad(x, 1, mode="edge")
    h, w = x.shape
    out = x
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out = jnp.minimum(out, p[dy:dy + h, dx:dx + w])
    return out


@functools.partial(jax.jit, static_argnames=("steps",))
def _confidence(seen: Array, steps: int) -> Array:
    def body(carry, _):
        e, acc = carry
        e = _min3(e)
        return (e, acc + e), None

    (_, acc), _ = jax.lax.scan(body, (seen, seen), None, length=steps - 1) if steps > 1 else ((seen, seen), None)
    return acc / steps


def texel_confidence(
    seen: Shaped[ArrayLike, "H W"],
    *,
    edge: float = 0.01,
) -> Float[Array, "H W"]:
    """Confidence in ``[0, 1]`` of each texel of an extracted texture.

    The mean of ``seen`` grey-scale-eroded ``0, 1, …, n − 1`` times (3 × 3 minimum filter,
    ``n = max(1, round(edge · W))``): inside a seen region of constant weight ``w`` it is ``w``,
    and it falls off linearly to 0 over ``n`` texels towards the region's border, so texels near
    the silhouette (blurred with background, hair or the head's edge) count less. Soft weights
    stay soft: the view-angle ramp and occlusion in ``seen`` carry over unchanged.

    Args:
        seen: ``(H, W)`` weights in ``[0, 1]``, e.g. :func:`~machlib.texture.texel_visibility`
            (view angle, occlusion, face region).
        edge: width of the border ramp in UV units (``0``: confidence is ``seen``).

    Returns:
        ``(H, W)`` float confidence, ``<= seen`` everywhere.

    Raises:
        InputError: ``seen`` not 2-D or ``edge`` negative.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import texel_confidence
        >>> seen = jnp.zeros((32, 32)).at[8:24, 8:24].set(1.0)
        >>> c = texel_confidence(seen, edge=4 / 32)
        >>> float(c[16, 16]), float(c[8, 16])  # the centre is sure, the border is not
        (1.0, 0.25)
    """
    x = jnp.asarray(seen)
    if x.ndim != 2:
        raise InputError(f"texel_confidence: seen must have shape (H, W), got {x.shape}")
    if not edge >= 0:
        raise InputError(f"texel_confidence: edge must be >= 0 (UV units), got {edge!r}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    steps = max(1, int(round(float(edge) * x.shape[1])))
    return _confidence(jnp.clip(x, 0.0, 1.0), steps)


def mirror_fill(
    texture: Float[ArrayLike, "H W C"],
    confidence: Float[ArrayLike, "H W"],
    *,
    strength: float = 1.0,
) -> tuple[Float[Array, "H W C"], Float[Array, "H W"]]:
    """Fill the worse-seen half of a mirror-symmetric UV layout from the better-seen half.

    With ``c`` the texel's confidence and ``m`` its mirror texel's (the texel at ``1 − u``,
    i.e. the texture flipped left-right), the mirror image gets the weight the texel itself
    leaves: ``w_own = c``, ``w_mirror = (1 − c) · m · strength``; the result is the weighted
    mean of the texel and its mirror image, and its confidence is ``w_own + w_mirror``. A texel
    seen well keeps its own colour; one seen poorly or not at all takes its mirror image's,
    where that was seen. Texels with neither keep their value at confidence 0.

    The UV layout must be mirror-symmetric about ``u = 0.5`` (``Template.symmetric``).

    Args:
        texture: ``(H, W, C)`` texture (e.g. the delighted portrait texture).
        confidence: ``(H, W)`` in ``[0, 1]`` (:func:`texel_confidence`).
        strength: ``[0, 1]``, how much the mirror image may be trusted (its lighting and
            features are the other side's).

    Returns:
        ``(texture, confidence)``: the filled ``(H, W, C)`` texture and its ``(H, W)`` confidence.

    Raises:
        InputError: mismatched shapes, or ``strength`` outside ``[0, 1]``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import mirror_fill
        >>> tex = jnp.zeros((4, 4, 1)).at[:, :2].set(1.0)  # the left half is seen, value 1
        >>> conf = jnp.zeros((4, 4)).at[:, :2].set(1.0)
        >>> out, c = mirror_fill(tex, conf)
        >>> out[0, :, 0].tolist(), c[0].tolist()
        ([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0])
    """
    x, c = jnp.asarray(texture), jnp.asarray(confidence)
    if x.ndim != 3 or c.shape != x.shape[:2]:
        raise InputError(f"mirror_fill: texture must be (H, W, C) and confidence (H, W), got {x.shape} and {c.shape}")
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"mirror_fill: strength must be in [0, 1], got {strength!r}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    c = jnp.clip(c.astype(x.dtype), 0.0, 1.0)
    return _mirror_fill(x, c, jnp.asarray(strength, x.dtype))


@jax.jit
def _mirror_fill(x: Array, c: Array, strength: Array) -> tuple[Array, Array]:
    xm, cm = x[:, ::-1], c[:, ::-1]
    w_own = c
    w_mir = (1.0 - c) * cm * strength
    total = w_own + w_mir
    safe = jnp.where(total > 0, total, 1.0)  # double where: finite gradients where nothing is seen
    mixed = (w_own[..., None] * x + w_mir[..., None] * xm) / safe[..., None]
    return jnp.where(total[..., None] > 0, mixed, x), total
