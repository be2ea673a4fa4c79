"""Per-texel confidence of the portrait's texture, and mirroring of the better-seen half.

Completion (:func:`~machlib.texture.complete_texture`) keeps what the portrait shows: each texel
carries a confidence in ``[0, 1]`` that the extracted colour is right, built from

* the view angle and occlusion already in :func:`~machlib.texture.texel_visibility`'s weights
  (a texel hidden behind the head, outside the face region or seen edge-on has weight 0),
* the distance to the silhouette of the seen region (texels near it are blurred across the
  edge of the head or of the face region, so confidence ramps up over ``edge`` UV units).

:func:`mirror_fill` then fills the worse-seen half of a face from the better-seen half through
the mirror symmetry of the UV layout (templates with ``Template.symmetric``: the layout is
mirror-symmetric about ``u = 0.5``), before completion falls back to the template; optionally it
carries only the mirror image's detail, on the low frequencies of the texel's own side
(:func:`skin_low_pass`), so the other side's lighting and shadows stay there.

Both are pure JAX, differentiable, jit- and vmap-safe (``edge`` fixes a static loop count).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Shaped

from .._errors import InputError
from .._jit import one_shot_jit
from ._regions import (_SDF_MAX, LIPS_INNER, LIPS_OUTER, RIGHT_EYE, _blur, _check_landmarks, _coverage, _polygon_sdf,
                       _polygon_sdf_at, _smoothstep, mirrored)
from ._skin import srgb_to_lab

#: FaceMesh landmarks of each eye: (upper lid middle, lower lid middle, outer corner, inner
#: corner), the subject's right eye first.
EYE_LID_LANDMARKS = ((159, 145, 33, 133), (386, 374, 263, 362))

__all__ = ["eye_confidence", "eye_openness", "lip_confidence", "mirror_fill", "skin_confidence", "skin_low_pass", "texel_confidence"]


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
    low_pass: float = 0.0,
    skin: Float[ArrayLike, "H W"] | None = None,
    max_ratio: float = 1.5,
    max_gain: float = 1.15,
    max_chroma: float = 1.1,
    mismatch: float | None = 0.15,
    reach: float | None = 4.0,
) -> tuple[Float[Array, "H W C"], Float[Array, "H W"]]:
    """Fill the worse-seen half of a mirror-symmetric UV layout from the better-seen half.

    With ``c`` the texel's confidence and ``m`` its mirror texel's (the texel at ``1 − u``,
    i.e. the texture flipped left-right), the mirror image gets the weight the texel itself
    leaves: ``w_own = c``, ``w_mirror = (1 − c) · m · strength``; the result is the weighted
    mean of the texel and its mirror image, and its confidence is ``w_own + w_mirror``. A texel
    seen well keeps its own colour; one seen poorly or not at all takes its mirror image's,
    where that was seen. Texels with neither keep their value at confidence 0.

    The UV layout must be mirror-symmetric about ``u = 0.5`` (``Template.symmetric``).

    A face lit from one side, or a shadow the delighting left (the nose's, an eye socket's),
    is not symmetric, and the mirror image would carry it to the other side: the lit cheek
    beside the own side's shaded one, the nose's shadow on both of its flanks. With
    ``low_pass > 0`` the mirror image carries the other side's detail (features, pores,
    creases) but not its low frequencies: with ``L`` the texture's low frequencies measured
    over the seen skin only (:func:`skin_low_pass`: a normalized Gaussian convolution of
    standard deviation ``low_pass`` over the weights ``confidence · skin``, falling back to
    ever wider ones, and finally to the mean, where little skin is seen), the mirror image
    enters as ``x_mirror · L / L_mirror``: its colour relative to its own surroundings, on the
    low frequencies of the texel's own side, which near the seen texels continue their tone
    and far from them are the seen skin's broad tone. The ratio is taken apart into its
    brightness (the channels' mean of ``L`` over that of ``L_mirror``), clipped to
    ``[1 / max_ratio, max_gain]``, and its hue (each channel's ratio over the brightness's),
    clipped to ``[1 / max_chroma, max_chroma]``: a mirror image from the lit side is darkened
    as far as needed, one from a shadow (an eye socket) brightened only a little, since a
    shadow's colour scaled up turns into a saturated glare. The features (``skin`` = 0 on the
    eyes, brows, lips, nostrils) keep their contrast against the skin around them, since
    ``L`` runs under them from that skin.

    What those clips leave of the ratio the mirror image needed is a mismatch between it and the
    side it lands on, which the clipped ratio no longer corrects: with ``r`` the log of the
    brightness ratio and ``h`` the log of each channel's hue ratio, and ``r'``, ``h'`` the same
    after the clips, the mirror image's weight is multiplied by ``exp(−(Δ / mismatch)²)`` with
    ``Δ² = (r − r')² + Σ (h − h')²`` (``mismatch`` in natural-log units; ``None`` turns it off).
    A cheek in the shade of the hair beside the face (darker and oranger than the skin) would
    otherwise land on the other side's lit skin, only 15 % brighter, and count as seen there
    (t1_face0's dark-orange patch on the left cheek at +30°); with the trust gone, that texel is
    completed from the skin around it instead.

    That own tone is measured only where the side's skin is seen: a face turned away shows its
    far half in a band of grazing texels beside the nose (shaded, ruddier), and the low-pass,
    falling back to ever wider scales, carried that band's tone across the whole half (t1_face1:
    a pinker far half beside the paler seen one, a seam down the nose; t1_face4: the seen socket's
    shadow, needing twice its brightness there, rejected, and the hole filled in a glare). With
    ``reach`` the ratio (brightness and hue, before the clips) is taken to the power ``t``, the
    density of the seen skin (texels with ``confidence · skin > 0``, each counted in full however
    grazing) over a Gaussian ``reach`` times ``low_pass`` wide, over :data:`LOW_PASS_DENSITY` and
    clipped to ``[0, 1]``: the ratio in full on and beside the seen skin, easing to 1 (the
    mirror image as it was seen, the face's other half) a few widths from it.

    Args:
        texture: ``(H, W, C)`` texture (e.g. the delighted portrait texture), non-negative
            (e.g. sRGB in ``[0, 1]``) when ``low_pass > 0``.
        confidence: ``(H, W)`` in ``[0, 1]`` (:func:`texel_confidence`).
        strength: ``[0, 1]``, how much the mirror image may be trusted (its lighting and
            features are the other side's).
        low_pass: standard deviation in UV units (fractions of the width) of the low
            frequencies the mirror image does not carry; ``0`` mirrors the colour as is.
        skin: optional ``(H, W)`` weights in ``[0, 1]`` of the texels whose colour is skin
            (default all): ``L`` is measured over ``confidence · skin``.
        max_ratio: how far the brightness ratio may darken the mirror image (``>= 1``).
        max_gain: how far it may brighten it (``>= 1``).
        max_chroma: the hue ratio's clip (``>= 1``).
        mismatch: the scale (natural-log units) of the ratio left after the clips at which the
            mirror image's weight falls to ``1/e``; ``None``: the weight does not depend on it.
            Used only with ``low_pass > 0``.
        reach: how far (in multiples of ``low_pass``) this side's measured tone carries into
            the texels it does not show (``> 0``); ``None``: as far as the low-pass fills
            (the whole half). Used only with ``low_pass > 0``.

    Returns:
        ``(texture, confidence)``: the filled ``(H, W, C)`` texture and its ``(H, W)`` confidence.

    Raises:
        InputError: mismatched shapes, ``strength`` outside ``[0, 1]``, a negative ``low_pass``
            or a ``max_ratio``, ``max_gain`` or ``max_chroma`` below 1, or a ``mismatch`` or
            ``reach`` that is not positive.

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
    if not low_pass >= 0:
        raise InputError(f"mirror_fill: low_pass must be >= 0 (UV units), got {low_pass!r}")
    for name, val in (("max_ratio", max_ratio), ("max_gain", max_gain), ("max_chroma", max_chroma)):
        if not val >= 1:
            raise InputError(f"mirror_fill: {name} must be >= 1, got {val!r}")
    if mismatch is not None and not mismatch > 0:
        raise InputError(f"mirror_fill: mismatch must be None or > 0, got {mismatch!r}")
    if reach is not None and not reach > 0:
        raise InputError(f"mirror_fill: reach must be None or > 0, got {reach!r}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    c = jnp.clip(c.astype(x.dtype), 0.0, 1.0)
    if skin is not None:
        skin = jnp.asarray(skin)
        if skin.shape != c.shape:
            raise InputError(f"mirror_fill: skin must have shape {c.shape}, got {skin.shape}")
    if low_pass == 0:
        return _mirror_fill(x, c, jnp.asarray(strength, x.dtype))
    w = c if skin is None else c * jnp.clip(skin.astype(x.dtype), 0.0, 1.0)
    plan = _low_pass_plan(x.shape[:2], float(low_pass))
    low = _skin_low_pass(x, w, plan)
    # (every texel the photo shows counts in full here, however grazing: its tone is measured)
    own = None if reach is None else _seen_density(w, plan, float(reach))
    return _mirror_fill(x, c, jnp.asarray(strength, x.dtype), low, float(max_ratio), float(max_gain),
                        float(max_chroma), None if mismatch is None else float(mismatch), own)


#: Local weight (the blurred weights' value) from which :func:`skin_low_pass` trusts a scale fully.
LOW_PASS_DENSITY = 0.3


def _low_pass_plan(shape: tuple[int, int], sigma: float) -> tuple[tuple[int, int], float, int]:
    """(base size, Gaussian standard deviation in base texels, number of scales) of
    :func:`skin_low_pass`: the base is the texture at no more than 256 texels across (down by an
    integer factor), the finest blur at least 1 texel there; each next scale is twice as wide, up
    to a quarter of the base's smaller side, and is computed at half the previous resolution with
    the same blur in its own texels (a pyramid: wide blurs cost no more than narrow ones)."""
    h, w = shape
    factor = max(1, min(h, w) // 256)
    base = (max(1, h // factor), max(1, w // factor))
    s = max(sigma * w / factor, 1.0)
    n = 1
    while s * 2**n <= min(base) / 4 and min(base) // 2**n >= 4:
        n += 1
    return base, s, n


def skin_low_pass(
    texture: Float[ArrayLike, "H W C"],
    weights: Float[ArrayLike, "H W"],
    *,
    sigma: float = 0.015,
) -> Float[Array, "H W C"]:
    """The low frequencies of a texture measured over some of its texels only, filled everywhere.

    A normalized Gaussian convolution ``G_σ * (w x) / G_σ * w`` (standard deviation ``σ``
    UV units, as a fraction of the width) gives the weighted texels' local mean colour where
    they are dense; where they are sparse or absent it gives way to the same at 2σ, 4σ, …
    (up to a quarter of the texture's side) and finally to the weighted mean: a scale is
    trusted in proportion to its local weight ``G * w`` up to :data:`LOW_PASS_DENSITY`
    (push-pull). With ``weights`` the seen skin off the features, this is the skin's
    low-frequency tone (its shading, on a delighted texture its residue) under the features
    and beyond the seen region too. Computed at no more than 256 texels across, each wider
    scale at half the resolution of the one before, and resized back (linear): about 0.1 s of
    CPU at 1024². Differentiable; jit/vmap-safe (``sigma`` is static).

    Args:
        texture: ``(H, W, C)`` float texture.
        weights: ``(H, W)`` non-negative weights (e.g. confidence times a skin mask).
        sigma: the finest standard deviation, UV units (``> 0``).

    Returns:
        ``(H, W, C)`` low-frequency texture (the weighted mean where no weight is anywhere
        near; all zero when ``weights`` is).

    Raises:
        InputError: bad shapes or ``sigma <= 0``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import skin_low_pass
        >>> tex = jnp.ones((64, 64, 3)).at[:, :32].set(0.5)  # dark left half, bright right half
        >>> seen = jnp.zeros((64, 64)).at[:, 40:].set(1.0)  # only part of the bright half seen
        >>> low = skin_low_pass(tex, seen, sigma=0.05)
        >>> round(float(low[32, 5, 0]), 3)  # the unseen dark half gets the seen skin's tone
        1.0
    """
    x, w = jnp.asarray(texture), jnp.asarray(weights)
    if x.ndim != 3 or w.shape != x.shape[:2]:
        raise InputError(f"skin_low_pass: texture must be (H, W, C) and weights (H, W), got {x.shape} and {w.shape}")
    if not sigma > 0:
        raise InputError(f"skin_low_pass: sigma must be > 0 (UV units), got {sigma!r}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return _skin_low_pass(x, w.astype(x.dtype), _low_pass_plan(x.shape[:2], float(sigma)))


@one_shot_jit(static_argnums=2)
def _skin_low_pass(x: Array, w: Array, plan: tuple[tuple[int, int], float, int]) -> Array:
    base, sigma, n = plan
    h, wd, c = x.shape
    resize = lambda a, size: a if a.shape[:2] == size else jax.image.resize(a, size + a.shape[2:], "linear")  # noqa: E731
    xw = x * w[..., None]
    total = jnp.sum(w)
    low = jnp.broadcast_to(jnp.sum(xw, (0, 1)) / jnp.where(total > 0, total, 1.0), base + (c,))
    for k in reversed(range(n)):  # coarse to fine: each scale replaces the coarser where dense
        size = (max(1, base[0] // 2**k), max(1, base[1] // 2**k))
        num, den = _blur(resize(xw, size), sigma), _blur(resize(w, size), sigma)
        trust = jnp.clip(den / LOW_PASS_DENSITY, 0.0, 1.0)[..., None]
        mean = num / jnp.where(den > 1e-6, den, 1.0)[..., None]
        low = resize(trust, base) * resize(mean, base) + (1.0 - resize(trust, base)) * low
    return resize(low, (h, wd))


@one_shot_jit(static_argnums=(1, 2))
def _seen_density(w: Array, plan: tuple[tuple[int, int], float, int], reach: float) -> Array:
    """``mirror_fill(reach=...)``: how far the texture's own tone is measured at each texel, in
    ``[0, 1]``: the seen texels (``w > 0``) blurred over ``reach`` times the low-pass's finest scale,
    over :data:`LOW_PASS_DENSITY` and clipped (1 on and beside the seen skin, 0 a few scales from it)."""
    base, sigma, _ = plan
    w = jnp.where(w > 0, 1.0, 0.0).astype(w.dtype)
    small = jax.image.resize(w, base, "linear") if w.shape != base else w
    den = _blur(small, sigma * reach)
    return jax.image.resize(jnp.clip(den / LOW_PASS_DENSITY, 0.0, 1.0), w.shape, "linear")


@functools.partial(jax.jit, static_argnums=(4, 5, 6, 7))
def _mirror_fill(x: Array, c: Array, strength: Array, low: Array | None = None,
                 max_ratio: float = 1.5, max_gain: float = 1.15, max_chroma: float = 1.1,
                 mismatch: float | None = None, own: Array | None = None) -> tuple[Array, Array]:
    xm, cm = x[:, ::-1], c[:, ::-1]
    if low is not None:  # the mirror image's detail on this side's low frequencies
        lm = low[:, ::-1]
        ratio = low / jnp.where(lm > 1e-4, lm, 1e-4)
        bright = jnp.mean(low, -1, keepdims=True) / jnp.maximum(jnp.mean(lm, -1, keepdims=True), 1e-4)
        hue = ratio / jnp.maximum(bright, 1e-4)
        if own is not None:  # where this side's tone is not measured, the mirror image keeps its own
            fade = lambda r: jnp.exp(own[..., None] * jnp.log(jnp.maximum(r, 1e-4)))  # noqa: E731
            bright, hue = fade(bright), fade(hue)
        gain, tint = jnp.clip(bright, 1.0 / max_ratio, max_gain), jnp.clip(hue, 1.0 / max_chroma, max_chroma)
        xm = xm * gain * tint
        if mismatch is not None:  # what the clips left uncorrected: the mirror image is not this side's skin
            left = (jnp.log(jnp.maximum(bright, 1e-4) / gain)[..., 0] ** 2
                    + jnp.sum(jnp.log(jnp.maximum(hue, 1e-4) / tint) ** 2, -1))
            cm = cm * jnp.exp(-left / mismatch**2)
    w_own = c
    w_mir = (1.0 - c) * cm * strength
    total = w_own + w_mir
    safe = jnp.where(total > 0, total, 1.0)  # double where: finite gradients where nothing is seen
    mixed = (w_own[..., None] * x + w_mir[..., None] * xm) / safe[..., None]
    return jnp.where(total[..., None] > 0, mixed, x), total


def eye_openness(points: Float[ArrayLike, "K D"]) -> Float[Array, "2"]:
    """How open each eye is: the lid gap over the eye's width, from FaceMesh landmarks.

    ``|p_upper − p_lower| / |p_outer − p_inner|`` with the lid middles 159/145 and corners
    33/133 (the subject's right eye) and their mirror images 386/374 and 263/362 (left): about
    0.3–0.45 for an open eye seen from the front, below 0.15 for a closed or downcast one.
    Pixel coordinates of the photo's landmarks and the fitted head's projected landmarks give
    comparable numbers (both are the same ratio in the same view). Differentiable; jit/vmap-safe.

    Args:
        points: ``(478, D)`` landmarks, ``D >= 2``; only the first two coordinates are used
            (e.g. :class:`~machlib.Landmarks` ``points`` in pixels).

    Returns:
        ``(2,)`` opening ratios ``(right, left)`` (the subject's sides).

    Raises:
        InputError: ``points`` not ``(K >= 468, D >= 2)``.

    Example:
        >>> import numpy as np
        >>> from machlib.geometry import default_template
        >>> from machlib.texture import eye_openness
        >>> # the template head's landmarks seen from the front (x, y of head space)
        >>> [round(float(r), 2) for r in eye_openness(default_template().human.landmark_points)]
        [0.38, 0.38]
    """
    p = jnp.asarray(points)
    if p.ndim != 2 or p.shape[0] < 468 or p.shape[1] < 2:
        raise InputError(f"eye_openness: points must have shape (478, D >= 2) (FaceMesh), got {p.shape}")
    if not jnp.issubdtype(p.dtype, jnp.floating):
        p = p.astype(jnp.float32)
    return _eye_openness(p)


@jax.jit
def _eye_openness(p: Array) -> Array:
    # one compiled program per shape: eagerly, each of these operations compiled its own
    p = p[:, :2]
    idx = jnp.asarray(EYE_LID_LANDMARKS)
    up, lo, a, b = p[idx[:, 0]], p[idx[:, 1]], p[idx[:, 2]], p[idx[:, 3]]
    gap2 = jnp.sum((up - lo) ** 2, -1)
    width2 = jnp.sum((a - b) ** 2, -1)
    gap = jnp.where(gap2 > 0, jnp.sqrt(jnp.where(gap2 > 0, gap2, 1.0)), 0.0)  # NaN-safe at a shut lid
    width = jnp.sqrt(jnp.where(width2 > 0, width2, 1.0))
    return gap / width


def eye_confidence(
    confidence: Float[ArrayLike, "R R"],
    landmarks_uv: Float[ArrayLike, "K 2"],
    photo_openness: Float[ArrayLike, "2"],
    geometry_openness: Float[ArrayLike, "2"],
    *,
    low: float = 0.35,
    high: float = 0.6,
    grow: float = 0.03,
    ramp: float = 0.015,
    down: float = 0.035,
    closed: tuple[float, float] = (0.1, 0.2),
) -> Float[Array, "R R"]:
    """Lower the confidence around each eye whose photo shows it less open than the geometry.

    A portrait with lowered or closed lids (looking down, blinking) fitted by a head whose eyes
    stay open paints the photo's lids, lashes and lid shadow around an open eye: the lash line
    lands on the lower lid and the upper lid's skin where the eyeball shows. Per eye, with the
    agreement ``a = photo / geometry`` of the opening ratios (:func:`eye_openness`), the eye is
    distrusted by ``d = (1 − smoothstep(low, high, a)) · (1 − smoothstep(*closed, photo))``: only
    an eye nearly shut in the photo counts (a smile's narrowed eyes, which the geometry's lids
    do not follow as far, keep the photo's lids). With ``w = 1 − d``, the texels of the eye's region (its lid
    contour in UV swept down by ``down`` and grown by ``grow``, fading to nothing over ``ramp``
    beyond: the photo's lashes and lid shadow sit below the head's open lid margin) keep ``w`` of their
    confidence, so completion (:func:`~machlib.texture.complete_texture`) takes the template's lids
    there, tone-matched to the portrait's skin. Eyes seen as open as the geometry's keep their
    confidence. Differentiable in ``confidence`` and the openness; jit/vmap-safe.

    Args:
        confidence: ``(R, R)`` per-texel confidence in ``[0, 1]`` (:func:`texel_confidence`).
        landmarks_uv: ``(478, 2)`` UV of the FaceMesh landmarks (``Template.landmark_uv``).
        photo_openness: ``(2,)`` the photo's :func:`eye_openness` (right, left).
        geometry_openness: ``(2,)`` the fitted head's, its landmarks projected into the photo.
        low, high: agreement below ``low`` drops the eye region's confidence to 0; above
            ``high`` keeps it.
        grow: UV distance around the lid contour that counts as the eye's region (lids, lashes,
            lid shadow; 0.03 is about 0.28 of an eye's width on the default template).
        ramp: UV width of the fade beyond ``grow``.
        down: the contour is swept this far down (``+v``, UV units) before it is grown.
        closed: ``(below, above)``: a photo opening ratio below the first counts as shut, above
            the second as open (whatever the geometry shows).

    Returns:
        ``(R, R)`` confidence, ``<= confidence`` everywhere.

    Raises:
        InputError: bad shapes, ``low >= high`` or negative ``grow``/``ramp``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.geometry import default_template
        >>> from machlib.texture import eye_confidence
        >>> lm = default_template().landmark_uv
        >>> c = eye_confidence(jnp.ones((64, 64)), lm, jnp.array([0.05, 0.4]), jnp.array([0.4, 0.4]))
        >>> float(c[23, 22]), float(c[23, 41])  # the right eye (u < 0.5) is shut in the photo
        (0.0, 1.0)
    """
    fn = "eye_confidence"
    c, lm = _confidence_and_landmarks(fn, confidence, landmarks_uv)
    po, go = jnp.asarray(photo_openness), jnp.asarray(geometry_openness)
    if po.shape != (2,) or go.shape != (2,):
        raise InputError(f"{fn}: photo_openness and geometry_openness must have shape (2,), got {po.shape} "
                         f"and {go.shape}")
    if not low < high:
        raise InputError(f"{fn}: low must be below high, got {low!r} and {high!r}")
    if len(closed) != 2 or not closed[0] < closed[1]:
        raise InputError(f"{fn}: closed must be (below, above) with below < above, got {closed!r}")
    if not (grow >= 0 and ramp >= 0 and down >= 0):
        raise InputError(f"{fn}: grow, ramp and down must be >= 0 (UV units), got {grow!r}, {ramp!r} and {down!r}")
    if not jnp.issubdtype(c.dtype, jnp.floating):
        c = c.astype(jnp.float32)
    return _eye_confidence(c, lm.astype(c.dtype), po.astype(c.dtype), go.astype(c.dtype),
                           float(low), float(high), float(grow), float(ramp), float(down),
                           float(closed[0]), float(closed[1]))


@one_shot_jit(static_argnums=(4, 5, 6, 7, 8, 9, 10))
def _eye_confidence(c, lm, po, go, low, high, grow, ramp, down, shut, opened):
    R = c.shape[0]
    agree = po / jnp.maximum(go, 1e-6)
    keep = 1.0 - (1.0 - _smoothstep(low, high, agree)) * (1.0 - _smoothstep(shut, opened, po))
    out = c
    for k, idx in enumerate((RIGHT_EYE, mirrored(RIGHT_EYE))):
        poly = lm[jnp.asarray(idx)]
        # the contour swept downwards by up to ``down`` (three steps: the sweep's union)
        n = min(R, _SDF_MAX)  # distances at most at 256², upsampled (linear along the edges)
        sdf = functools.reduce(jnp.minimum, [_polygon_sdf(poly + jnp.asarray([0.0, s * down], c.dtype), n)
                                             for s in (0.0, 0.5, 1.0)])
        sdf = sdf if n == R else jax.image.resize(sdf, (R, R), "linear")
        region = _coverage(sdf, R, grow) if ramp == 0 else jnp.clip(1.0 - (sdf - grow) / ramp, 0.0, 1.0)
        out = out * (1.0 - (1.0 - keep[k]) * region)
    return out


def _confidence_and_landmarks(fn: str, confidence, landmarks_uv) -> tuple[Array, Array]:
    """The ``(R, R)`` confidence and ``(478, 2)`` UV landmarks of :func:`eye_confidence` and
    :func:`lip_confidence`, checked (an :class:`InputError` naming ``fn``; the landmarks by
    :func:`~machlib.texture._regions._check_landmarks`, as the other texture functions)."""
    c = jnp.asarray(confidence)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise InputError(f"{fn}: confidence must have shape (R, R), got {c.shape}")
    return c, _check_landmarks(fn, landmarks_uv)


def lip_confidence(
    confidence: Float[ArrayLike, "R R"],
    landmarks_uv: Float[ArrayLike, "K 2"],
    stretch: Float[ArrayLike, "2"],
    *,
    low: float = 2.5,
    high: float = 3.5,
    ramp: float = 0.006,
) -> Float[Array, "R R"]:
    """Lower the confidence of a lip that the photo shows only as a thin strip.

    A laughing mouth stretches its lips over the teeth: the photo's upper lip is a strip a few
    pixels high, mostly the shadow along the teeth's edge, and mapped onto the neutral head's
    full lip it becomes one flat, dark, orange-brown fill (t1_face3). Per lip (upper, lower),
    with ``stretch`` the magnification of the photo's lip onto the template's beyond the face's
    (1 for a lip as thick in the photo as on the template, relative to the face), the lip is
    distrusted by ``d = smoothstep(low, high, stretch)``: the texels of its band in UV (between
    the outer and inner lip contours, fading to nothing over ``ramp`` outside it) keep
    ``1 − d`` of their confidence, so completion (:func:`~machlib.texture.complete_texture`)
    takes the template's lip there (its shading and lines), in the colour of the portrait's
    lip texels that are still seen. Differentiable in ``confidence`` and ``stretch``;
    jit/vmap-safe.

    Args:
        confidence: ``(R, R)`` per-texel confidence in ``[0, 1]`` (:func:`texel_confidence`).
        landmarks_uv: ``(478, 2)`` UV of the FaceMesh landmarks (``Template.landmark_uv``).
        stretch: ``(2,)`` the upper and lower lip's magnification (photo to UV) over the face's.
        low, high: a stretch below ``low`` keeps the lip's confidence; above ``high`` drops it to 0.
        ramp: UV width of the fade outside the lip's band.

    Returns:
        ``(R, R)`` confidence, ``<= confidence`` everywhere.

    Raises:
        InputError: bad shapes, ``low >= high`` or a negative ``ramp``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.geometry import default_template
        >>> from machlib.texture import lip_confidence
        >>> lm = default_template().landmark_uv
        >>> c = lip_confidence(jnp.ones((128, 128)), lm, jnp.array([5.0, 1.0]))
        >>> u, v_up, v_low = 64, int(lm[0, 1] * 128) + 2, int(lm[17, 1] * 128) - 2
        >>> float(c[v_up, u]), float(c[v_low, u])  # the stretched upper lip, the lower kept
        (0.0, 1.0)
    """
    fn = "lip_confidence"
    c, lm = _confidence_and_landmarks(fn, confidence, landmarks_uv)
    st = jnp.asarray(stretch)
    if st.shape != (2,):
        raise InputError(f"{fn}: stretch must have shape (2,), got {st.shape}")
    if not low < high:
        raise InputError(f"{fn}: low must be below high, got {low!r} and {high!r}")
    if not ramp >= 0:
        raise InputError(f"{fn}: ramp must be >= 0 (UV units), got {ramp!r}")
    if not jnp.issubdtype(c.dtype, jnp.floating):
        c = c.astype(jnp.float32)
    return _lip_confidence(c, lm.astype(c.dtype), st.astype(c.dtype), float(low), float(high), float(ramp))


#: The band of each lip between the FaceMesh lip contours, as indices into the landmarks: the
#: outer contour from corner to corner, then the inner contour back (upper lip, lower lip).
LIP_BANDS = (LIPS_OUTER[:11] + LIPS_INNER[10::-1],
             LIPS_OUTER[10:] + LIPS_OUTER[:1] + LIPS_INNER[:1] + LIPS_INNER[:9:-1])


def _lip_band_sdfs(lm: Array, R: int) -> list[Array]:
    """The signed UV distance ``(R, R)`` to each lip's band (:data:`LIP_BANDS`, upper then lower),
    exact at most at ``_SDF_MAX``² and upsampled (linear along the edges); traced inside
    :func:`lip_confidence`'s and :func:`~machlib.texture.complete_texture`'s programs."""
    n = min(R, _SDF_MAX)
    sdfs = [_polygon_sdf(lm[jnp.asarray(idx)], n) for idx in LIP_BANDS]
    return sdfs if n == R else [jax.image.resize(s, (R, R), "linear") for s in sdfs]


@one_shot_jit(static_argnums=(3, 4, 5))
def _lip_confidence(c, lm, st, low, high, ramp):
    R = c.shape[0]
    out = c
    for k, sdf in enumerate(_lip_band_sdfs(lm, R)):
        region = _coverage(sdf, R) if ramp == 0 else jnp.clip(1.0 - sdf / ramp, 0.0, 1.0)
        out = out * (1.0 - _smoothstep(low, high, st[k]) * region)
    return out


def skin_confidence(
    image: Shaped[ArrayLike, "H W 3"],
    weights: Shaped[ArrayLike, "H W"],
    *,
    other: Shaped[ArrayLike, "H W"] | None = None,
    low: float = 3.0,
    high: float = 4.5,
    ratio: tuple[float, float] = (-1.5, 1.5),
    trim: float = 2.5,
    rounds: int = 3,
) -> Float[Array, "H W"]:
    """How surely each pixel of a portrait shows the face's skin, by its colour.

    A Gaussian model of the face's skin colour in CIELAB (:func:`~machlib.texture.srgb_to_lab`)
    is estimated from the pixels ``weights`` points at (the face oval less its features and
    whatever is known to hide it), robustly: ``rounds`` times, each pixel's weight is multiplied
    by ``exp(−½ (d / trim)²)`` with ``d`` its Mahalanobis distance to the current model, and the
    weighted mean and covariance are taken again (a CIELAB unit² is added to the covariance's
    diagonal). Shading across the face widens the model along ``L*``, so shadowed skin stays
    close; what is no skin (the dark gap between jaw and hair, grey hair, background) lies far.
    The confidence is ``1 − smoothstep(low, high, d)``: 1 within ``low`` standard deviations of
    the skin colour, 0 beyond ``high``.

    Hair whose colour is close to the skin's (red, blond) stays within a few standard deviations
    of it; given ``other``, the weights of pixels known not to be skin (the hair beside the
    face, say), a second model is estimated from them the same way, and the confidence is also
    multiplied by ``smoothstep(ratio[0], ratio[1], log N(x; skin) − log N(x; other))``: a pixel
    the other model explains better than the skin model loses it.

    Features that differ from skin by nature (eyes, brows, lips, nostrils) and deep shading
    (creases, the sides of the nose) get low values too: callers exempt or restrict where the
    test applies. Differentiable in ``image`` and the weights; jit/vmap-safe (``rounds`` is a
    static loop count).

    Args:
        image: ``(H, W, 3)`` sRGB in ``[0, 1]`` (uint8 is scaled by 1/255).
        weights: ``(H, W)`` non-negative weights of the pixels the skin model is taken from.
        other: optional ``(H, W)`` non-negative weights of pixels that are not skin.
        low, high: Mahalanobis distances (standard deviations) where the confidence starts to
            fall and where it reaches 0.
        ratio: log-likelihood ratios (skin over other, nats) where the second factor is 0 and 1.
        trim: the re-weighting's scale, standard deviations.
        rounds: re-weighting rounds (0: plain weighted mean and covariance).

    Returns:
        ``(H, W)`` float confidence in ``[0, 1]``.

    Raises:
        InputError: bad shapes, weights that are negative or all zero, ``low >= high``,
            ``ratio[0] >= ratio[1]``, ``trim <= 0`` or ``rounds`` not a non-negative int.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import skin_confidence
        >>> skin = jnp.array([0.80, 0.60, 0.50])
        >>> img = skin * jnp.linspace(0.85, 1.1, 32)[:, None, None] * jnp.ones((32, 32, 3))
        >>> img = img.at[10:14, 10:20].set(jnp.array([0.25, 0.20, 0.15]))  # a dark strand
        >>> c = skin_confidence(img, jnp.ones((32, 32)))
        >>> round(float(c[5, 5]), 2), round(float(c[12, 15]), 2)
        (1.0, 0.0)
    """
    fn = "skin_confidence"
    x = jnp.asarray(image)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise InputError(f"{fn}: image must have shape (H, W, 3), got {x.shape}")
    if x.dtype == jnp.uint8:
        x = x.astype(jnp.float32) / 255.0
    elif not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    ws = [jnp.asarray(weights)] + ([] if other is None else [jnp.asarray(other)])
    for name, w in zip(("weights", "other"), ws):
        if w.shape != x.shape[:2]:
            raise InputError(f"{fn}: {name} must have shape {x.shape[:2]}, got {w.shape}")
        if not isinstance(w, jax.core.Tracer) and (bool(jnp.any(w < 0)) or not bool(jnp.sum(w) > 0)):
            raise InputError(f"{fn}: {name} must be non-negative and not all zero")
    if not low < high:
        raise InputError(f"{fn}: low must be below high, got {low!r} and {high!r}")
    if len(ratio) != 2 or not ratio[0] < ratio[1]:
        raise InputError(f"{fn}: ratio must be (zero, one) with zero < one, got {ratio!r}")
    if not trim > 0:
        raise InputError(f"{fn}: trim must be > 0 (standard deviations), got {trim!r}")
    if not isinstance(rounds, (int, np.integer)) or isinstance(rounds, bool) or rounds < 0:
        raise InputError(f"{fn}: rounds must be an int >= 0, got {rounds!r}")
    ws = [w.astype(x.dtype) for w in ws]
    return _skin_confidence(x, *ws, low=float(low), high=float(high), ratio=(float(ratio[0]), float(ratio[1])),
                            trim=float(trim), rounds=int(rounds))


def _colour_model(lab: Array, w: Array, trim: float, rounds: int) -> tuple[Array, Array, Array]:
    """Robust weighted Gaussian of ``(H, W, 3)`` CIELAB colours: mean, inverse covariance and
    ``log det`` of the covariance (regularised by a unit² on its diagonal)."""

    def fit(w):
        wn = w / jnp.maximum(jnp.sum(w), 1e-12)
        mean = jnp.einsum("hw,hwc->c", wn, lab)
        d = lab - mean
        cov = jnp.einsum("hw,hwi,hwj->ij", wn, d, d) + jnp.eye(3, dtype=lab.dtype)
        return mean, cov

    mean, cov = fit(w)
    for _ in range(rounds):
        mean, cov = fit(w * jnp.exp(-0.5 * _mahalanobis2(lab, mean, jnp.linalg.inv(cov)) / trim**2))
    return mean, jnp.linalg.inv(cov), jnp.linalg.slogdet(cov)[1]


def _mahalanobis2(lab: Array, mean: Array, inv: Array) -> Array:
    d = lab - mean
    return jnp.einsum("hwi,ij,hwj->hw", d, inv, d)


@one_shot_jit(static_argnames=("low", "high", "ratio", "trim", "rounds"))
def _skin_confidence(x: Array, w: Array, other: Array | None = None, *, low: float, high: float,
                     ratio: tuple[float, float], trim: float, rounds: int) -> Array:
    lab = srgb_to_lab(jnp.clip(x, 0.0, 1.0))
    mean, inv, logdet = _colour_model(lab, w, trim, rounds)
    m2 = _mahalanobis2(lab, mean, inv)
    dist = jnp.sqrt(jnp.maximum(m2, 1e-12))  # finite gradient at the mean
    conf = 1.0 - _smoothstep(low, high, dist)
    if other is not None:
        mean_o, inv_o, logdet_o = _colour_model(lab, other, trim, rounds)
        llr = 0.5 * (_mahalanobis2(lab, mean_o, inv_o) + logdet_o - m2 - logdet)
        conf = conf * _smoothstep(ratio[0], ratio[1], llr)
    return conf


def lip_misfit(
    lipness: Shaped[ArrayLike, "H W"],
    pixel_uv: Float[ArrayLike, "H W 2"],
    landmarks_uv: Float[ArrayLike, "K 2"],
    *,
    margin: float = 0.004,
    ramp: float = 0.004,
) -> Float[Array, "H W"]:
    """Weights of a portrait's lip-coloured pixels that the fitted head puts off its lips.

    Where the fitted head's mouth does not lie exactly over the photo's (a wide laugh, whose
    thin, stretched upper lip the landmarks place too low; a lip line missed by a few pixels),
    the texture read from the photo paints the photo's red lips onto the skin texels beside
    the head's lips: on the neutral head that is a red band above or below the mouth, a
    moustache. A pixel's weight is its ``lipness`` (how surely its colour is the lips', in
    ``[0, 1]``: e.g. ``1 −`` :func:`skin_confidence` against a model of the photo's lips)
    times how far its texture coordinate lies outside the head's lips (the UV polygon of the
    FaceMesh outer lip contour, landmarks 61 … 291 … 61): 0 within ``margin`` UV
    units of it (the lip line's blur), rising to 1 at ``margin + ramp`` (a smoothstep). Texture
    extraction treats such pixels as unseen, and completion paints those texels as skin.

    Differentiable in all three arrays (almost everywhere); jit/vmap-safe.

    Args:
        lipness: ``(H, W)`` in ``[0, 1]``, how surely each pixel shows the lips (0 off the mouth).
        pixel_uv: ``(H, W, 2)`` the texture coordinate the fitted head shows at each pixel
            (:func:`~machlib.render.interpolate` of the mesh's UVs; pixels off the head can
            hold anything, their ``lipness`` decides).
        landmarks_uv: ``(K >= 478, 2)`` UV of the FaceMesh landmarks on the template
            (``Template.landmark_uv``).
        margin: distance outside the UV lips (UV units) that still counts as lips.
        ramp: the width of the rise from 0 to 1 beyond ``margin`` (UV units, ``> 0``).

    Returns:
        ``(H, W)`` weights in ``[0, 1]``.

    Raises:
        InputError: bad shapes, fewer than 478 landmarks, ``margin < 0`` or ``ramp <= 0``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.geometry import default_template
        >>> from machlib.texture import lip_misfit
        >>> lm = jnp.asarray(default_template().landmark_uv)
        >>> lip = 0.5 * (lm[0] + lm[17])            # inside the lips (their top and bottom middle)
        >>> above = lm[0] - jnp.asarray([0.0, 0.03])  # the skin 6 mm above the upper lip
        >>> uv = jnp.stack([lip, above]).reshape(1, 2, 2)
        >>> w = lip_misfit(jnp.ones((1, 2)), uv, lm)
        >>> [round(float(x), 2) for x in w[0]]
        [0.0, 1.0]
    """
    fn = "lip_misfit"
    lip = jnp.asarray(lipness)
    uv = jnp.asarray(pixel_uv)
    lm = jnp.asarray(landmarks_uv)
    if lip.ndim != 2:
        raise InputError(f"{fn}: lipness must have shape (H, W), got {lip.shape}")
    if uv.shape != lip.shape + (2,):
        raise InputError(f"{fn}: pixel_uv must have shape {lip.shape + (2,)}, got {uv.shape}")
    if lm.ndim != 2 or lm.shape[1] != 2 or lm.shape[0] < 478:
        raise InputError(f"{fn}: landmarks_uv must have shape (K >= 478, 2), got {lm.shape}")
    if not margin >= 0:
        raise InputError(f"{fn}: margin must be >= 0 (UV units), got {margin!r}")
    if not ramp > 0:
        raise InputError(f"{fn}: ramp must be > 0 (UV units), got {ramp!r}")
    dtype = jnp.result_type(lip.dtype, uv.dtype, lm.dtype, jnp.float32)
    return _lip_misfit(lip.astype(dtype), uv.astype(dtype), lm.astype(dtype), float(margin), float(ramp))


@functools.partial(jax.jit, static_argnums=(3, 4))
def _lip_misfit(lip: Array, uv: Array, lm: Array, margin: float, ramp: float) -> Array:
    sdf = _polygon_sdf_at(lm[jnp.asarray(LIPS_OUTER)], uv[..., 0], uv[..., 1])
    return jnp.clip(lip, 0.0, 1.0) * _smoothstep(margin, margin + ramp, sdf)
