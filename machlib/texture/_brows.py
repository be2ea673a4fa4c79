"""Brows that the portrait shows only in part, completed along their whole length.

Glasses with a heavy top rim (the bundled portrait's cat-eye frames), a fringe or a hand can hide
part of a brow. Completion (:func:`~machlib.texture.complete_texture`) keeps the portrait's texels
where they are seen well and paints the template's stroked brows, recoloured to the portrait's
brow hair, only where the confidence is low: a brow cut lengthwise by a rim became a strip of
template strokes along its lower edge under a hard edge, and above it the photo's own texels of a
light brow, which read as skin (Hopper: half of each brow polygon hidden by the glasses'
footprint). :func:`_complete_brows` lays the recoloured template brow over the whole of a brow
of which at least :data:`BROW_HIDDEN` is unseen (on both sides, with a mirrored layout), where it
is darker than what is there (a darken blend: the portrait's own darker hairs stay, its skin
between them takes the template's strokes), so the brow keeps one shape from its head to its tail.

Texels that only a glasses frame hid are not counted as unseen here:
:func:`~machlib.pipeline.texture_portrait` has completion fill them from the portrait's own texels
around them (``complete_texture(inpaint=...)``): the brow's seen hairs above a top rim, the lid
below it. Laid over Hopper's light grey brows, the strokes made them dark and hatched.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._facemesh import RIGHT_BROW
from ._regions import _SDF_MAX, _coverage, _polygon_sdf, mirrored
from ._skin import srgb_to_lab

#: The fraction of a brow polygon's texels below the completion's sure confidence (0.5) from
#: which :func:`_complete_brows` completes that brow with the template's strokes.
BROW_HIDDEN = 0.15
#: The template's stroke counts fully where it is this much darker (CIELAB ``L*``) than the
#: albedo, partly below.
_DARKER_L = 4.0


@functools.partial(jax.jit, static_argnames=("mirror", "min_hidden"))
def _complete_brows(albedo: Array, template: Array, confidence: Array, lm: Array, *, mirror: bool = False,
                    min_hidden: float = BROW_HIDDEN) -> tuple[Array, Array]:
    """``(R, R, 3)`` ``albedo`` with each brow that is at least ``min_hidden`` unseen completed by
    ``template``'s brow where that is darker, and the ``(2,)`` unseen fractions (right, left).

    With ``mirror`` (a UV layout symmetric about ``u = 0.5``, where completion fills the
    worse-seen half from the other: ``complete_texture(mirror=True)``) a texel counts as seen
    when it or its mirror texel is: a brow hidden on one side only (a face turned aside, a
    strand over one brow) got the other brow's hairs and is left as it is.

    Args:
        albedo: ``(R, R, 3)`` the completed sRGB albedo.
        template: ``(R, R, 3)`` the tone-matched template with the portrait's brow colour
            (:attr:`~machlib.texture.TextureCompletion.template`).
        confidence: ``(R, R)`` the per-texel confidence completion kept the portrait by.
        lm: ``(478, 2)`` landmark UVs.
    """
    R = albedo.shape[0]
    if mirror:
        confidence = jnp.maximum(confidence, confidence[:, ::-1])
    n = min(R, _SDF_MAX)
    lab_a, lab_t = srgb_to_lab(albedo), srgb_to_lab(template)
    darker = jnp.clip((lab_a[..., 0] - lab_t[..., 0]) / _DARKER_L, 0.0, 1.0)
    out, hidden = albedo, []
    for poly in (RIGHT_BROW, mirrored(RIGHT_BROW)):
        sdf = _polygon_sdf(lm[jnp.asarray(poly)], n)
        if n < R:
            sdf = jax.image.resize(sdf, (R, R), "linear")
        inside = _coverage(sdf, R)
        frac = jnp.sum(inside * (confidence < 0.5)) / jnp.maximum(jnp.sum(inside), 1.0)
        hidden.append(frac)
        # the polygon and a feathered rim of 0.002-0.008 UV around it (the strokes' soft ends)
        near = jnp.clip((0.008 - sdf) / 0.006, 0.0, 1.0)
        w = jnp.where(frac >= min_hidden, near * darker, 0.0)[..., None]
        out = out + w * (template - out)
    return jnp.clip(out, 0.0, 1.0).astype(albedo.dtype), jnp.stack(hidden)
