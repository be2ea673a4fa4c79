"""Marks of age and skin on a UV albedo: wrinkles, freckles, age spots, moles, and brows recoloured
to the hair (:func:`skin_marks`, :func:`recolor_brows`).

A prompt says "an elderly man with a gray beard" or "a young woman with freckles"; without a photo
the albedo is the template's, smooth and of no age. These layers paint what the words describe,
placed by the dense landmarks in UV (the same FaceMesh indices as :mod:`machlib.texture`'s region
polygons), so they land where they belong on any head layout:

* **wrinkles**, thin creases along landmark curves: three forehead lines following the brows' arch,
  the two vertical frown lines between the brows, crow's feet fanning from the outer eye corners,
  a line under each lower lid, the nasolabial folds from the nose wings past the mouth corners and
  the marionette lines below them. Each crease is a narrow dark core in a wider faint shadow, its
  depth tapering to the ends and broken up by a smooth random field, so no two lines are alike;
* **freckles**, small brown spots scattered over the nose and cheeks;
* **age spots**, larger, faint, irregular brown patches over the forehead, temples and cheeks;
* **moles**, a few small dark spots anywhere on the face.

Every layer is a mask times a strength in ``[0, 1]`` (0 is an exact no-op), composited in sRGB
with :func:`~machlib.texture.blend_layer`'s ``multiply`` (creases, freckles, age spots: they tint
and keep the skin's texture) or ``normal`` (moles). The masks are computed at up to 512² and
resized; they depend on the landmarks and the key, the result is differentiable in the albedo,
the strengths and the colours. Lengths are relative to the distance between the outer eye
corners (``iod``), so the marks scale with the face.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Shaped

from .._errors import InputError
from ..geometry import face_oval
from ._makeup import _composite
from ._regions import (
    LIPS_OUTER,
    RIGHT_BROW,
    RIGHT_EYE,
    _check_landmarks,
    _coverage,
    _polygon_sdf,
    mirrored,
)

__all__ = ["skin_marks", "recolor_brows"]

_MAX_RES = 512  # masks are evaluated at most at this resolution, then resized
_N_FRECKLES = 320
_N_AGE_SPOTS = 28
_N_MOLES = 8
_K = 9  # points per crease polyline


def _resample(points: Array, k: int) -> Array:
    """``k`` points evenly spaced in arc length along a polyline ``(N, 2)``."""
    d = points[1:] - points[:-1]
    seg = jnp.sqrt(jnp.sum(d * d, axis=-1) + 1e-20)  # (padded polylines repeat their end point)
    s = jnp.concatenate([jnp.zeros((1,), points.dtype), jnp.cumsum(seg)])
    t = jnp.linspace(0.0, 1.0, k, dtype=points.dtype) * s[-1]
    return jnp.stack([jnp.interp(t, s, points[:, 0]), jnp.interp(t, s, points[:, 1])], axis=-1)


def _creases(lm: Array) -> tuple[Array, Array, Array]:
    """The crease polylines ``(L, K, 2)``, their depths ``(L,)`` and core widths ``(L,)``."""
    iod = jnp.linalg.norm(lm[33] - lm[263])
    take = lambda idx: lm[jnp.asarray(idx)]  # noqa: E731
    up = jnp.asarray([0.0, -1.0], lm.dtype)  # v grows downwards in the layout
    lines, depth, width = [], [], []

    def add(points, d, w):
        lines.append(points)
        depth.append(d)
        width.append(w)

    # forehead: the two brows' upper edges (outer right → inner right, inner left → outer left),
    # raised into three arcs between the brows and the hairline landmark 10
    arch = jnp.concatenate([take(RIGHT_BROW[:5]), take(mirrored(RIGHT_BROW[:5]))[::-1]])
    top = 0.5 * (lm[105, 1] + lm[334, 1])
    rise = top - lm[10, 1]
    for f, d in ((0.28, 0.8), (0.50, 1.0), (0.70, 0.7)):
        centre = jnp.mean(arch, axis=0)
        arc = centre + (arch - centre) * jnp.asarray([0.85, 0.35], lm.dtype)  # flatter than the brows
        add(arc + up * (f * rise - (top - centre[1])), 0.8 * d, 0.011)  # centred f·rise above the brows
    for side in (lambda i: i, mirrored):
        inner = take(side((107,)))[0]
        toward = lm[9] - inner
        # the frown line: from just above the inner brow end, up and slightly in
        base = inner + 0.25 * toward
        add(jnp.stack([base + up * 0.02 * iod, base + up * 0.16 * iod + 0.05 * toward]), 0.55, 0.009)
        corner = take(side((33,)))[0]
        out = (corner - take(side((133,)))[0])
        out = out / jnp.linalg.norm(out)
        for angle in (-0.45, 0.0, 0.45):  # crow's feet, fanning out from beside the eye corner
            c, s = jnp.cos(angle), jnp.sin(angle)
            direction = jnp.stack([c * out[0] - s * out[1], s * out[0] + c * out[1]])
            start = corner + out * 0.06 * iod
            add(jnp.stack([start, start + direction * 0.14 * iod]), 0.45, 0.009)
        # under the lower lid: the lid's lower edge, lowered
        lid = take(side(RIGHT_EYE[8:] + RIGHT_EYE[:1]))  # inner corner → lower lid → outer corner
        add(lid[2:-1] + up * -0.09 * iod, 0.45, 0.011)
        # nasolabial fold: from the nose wing, outward around the mouth corner, to below it
        wing, mouth = take(side((129,)))[0], take(side((61,)))[0]
        side_dir = jnp.sign(wing[0] - lm[1, 0]) * jnp.asarray([1.0, 0.0], lm.dtype)
        fold = jnp.stack([wing + side_dir * 0.03 * iod,
                          0.5 * (wing + mouth) + side_dir * 0.10 * iod,
                          mouth + side_dir * 0.10 * iod - up * 0.08 * iod])
        add(fold, 0.75, 0.02)  # a fold more than a line: wide and soft
        # marionette line: from the mouth corner down toward the jaw
        add(jnp.stack([mouth + side_dir * 0.03 * iod - up * 0.03 * iod,
                       mouth + side_dir * 0.06 * iod - up * 0.28 * iod]), 0.55, 0.013)
    # every polyline padded to the longest by repeating its end point, then resampled at once
    n = max(int(p.shape[0]) for p in lines)
    padded = jnp.stack([jnp.concatenate([p, jnp.repeat(p[-1:], n - p.shape[0], axis=0)]) for p in lines])
    return jax.vmap(_resample, in_axes=(0, None))(padded, _K), jnp.asarray(depth, lm.dtype), \
        jnp.asarray(width, lm.dtype) * iod


def _crease_masks(lines: Array, depth: Array, width: Array, R: int) -> tuple[Array, Array]:
    """``(R, R)`` crease cores and their wider shadows: max over segments of the depth, tapered
    towards each line's ends, times a Gaussian of the distance to the segment."""
    u = (jnp.arange(R, dtype=lines.dtype) + 0.5) / R
    u, v = u[None, :], u[:, None]
    L, K = lines.shape[:2]
    t_knots = jnp.linspace(0.0, 1.0, K, dtype=lines.dtype)

    def body(i, carry):
        core, shadow = carry
        line, seg = i // (K - 1), i % (K - 1)
        a, b = lines[line, seg], lines[line, seg + 1]
        e = b - a
        ee = jnp.maximum(e @ e, 1e-12)
        t = jnp.clip(((u - a[0]) * e[0] + (v - a[1]) * e[1]) / ee, 0.0, 1.0)
        d2 = (u - a[0] - t * e[0]) ** 2 + (v - a[1] - t * e[1]) ** 2
        along = t_knots[seg] + t * (t_knots[seg + 1] - t_knots[seg])
        taper = jnp.sqrt(jnp.clip(jnp.sin(jnp.pi * along), 0.0, 1.0))
        w = width[line]
        core = jnp.maximum(core, depth[line] * taper * jnp.exp(-0.5 * d2 / (w * w)))
        shadow = jnp.maximum(shadow, depth[line] * taper * jnp.exp(-0.5 * d2 / (9.0 * w * w)))
        return core, shadow

    zero = jnp.zeros((R, R), lines.dtype)
    return jax.lax.fori_loop(0, L * (K - 1), body, (zero, zero))


def _splat(points: Array, weights: Array, sigma: float, R: int, *, scale: Array) -> Array:
    """Gaussian spots at UV ``points`` ``(N, 2)`` with peak ``weights``, of ``sigma · scale`` texels
    (``scale``, traced: the face's size, ``iod · R``): the weights scattered to the nearest texels,
    then blurred by a separable kernel of peak 1, whose (static) support covers faces up to
    ``iod = 0.6``."""
    ij = jnp.clip(jnp.floor(points * R).astype(jnp.int32), 0, R - 1)
    img = jnp.zeros((R, R), weights.dtype).at[ij[:, 1], ij[:, 0]].add(weights)
    half = max(1, int(np.ceil(3 * sigma * 0.6 * R)))
    x = jnp.arange(-half, half + 1, dtype=weights.dtype)
    s = jnp.maximum(sigma * scale, 0.5)
    k = jnp.exp(-0.5 * (x / s) ** 2)  # peak 1: a lone spot keeps its weight
    img = jax.scipy.signal.convolve(img, k[:, None], mode="same")
    return jnp.clip(jax.scipy.signal.convolve(img, k[None, :], mode="same"), 0.0, 1.0)


def _noise(key: PRNGKeyArray, R: int, cells: int, dtype) -> Array:
    """A smooth random field in ``[0, 1]`` (bilinear upsampling of a ``cells²`` grid)."""
    coarse = jax.random.uniform(key, (cells, cells), dtype)
    return jax.image.resize(coarse, (R, R), "bilinear")


def _mark_masks(lm: Array, key: PRNGKeyArray, freckles: Array, moles: Array, *, resolution: int):
    """The ``(R, R)`` layer masks: creases, crease shadows, freckles and moles (linear in the
    strengths' per-spot ramps), age spots, and the skin they may cover."""
    R = resolution
    dt = lm.dtype
    iod = jnp.linalg.norm(lm[33] - lm[263])
    k_break, k_frk, k_age, k_mole, k_age_shape = jax.random.split(key, 5)
    lines, depth, width = _creases(lm)
    core, shadow = _crease_masks(lines, depth, width, R)
    broken = 0.35 + 0.65 * _noise(k_break, R, 12, dt)
    core, shadow = core * broken, shadow * broken

    take = lambda idx: lm[jnp.asarray(idx)]  # noqa: E731
    face = _coverage(_polygon_sdf(take(tuple(int(i) for i in face_oval())), R), R)
    keep_out = jnp.zeros((R, R), dt)
    for poly in (RIGHT_EYE, mirrored(RIGHT_EYE), RIGHT_BROW, mirrored(RIGHT_BROW), LIPS_OUTER):
        keep_out = jnp.maximum(keep_out, _coverage(_polygon_sdf(take(poly), R), R, grow=0.01 * iod))
    skin = face * (1.0 - keep_out)

    # freckles: over the nose bridge and the upper cheeks (an ellipse about the nose), of two sizes
    # and varied darkness; about 2 mm across (0.6 % of iod in sigma)
    c = lm[195] + jnp.asarray([0.0, 0.12], dt) * iod
    z = jax.random.normal(k_frk, (_N_FRECKLES, 3), dt)
    pts = c + z[:, :2] * jnp.asarray([0.42, 0.17], dt) * iod
    dark = jnp.clip(0.65 + 0.25 * z[:, 2], 0.2, 1.0)
    sigma = iod * R
    on = _ramp(freckles, 4, dt)[jnp.arange(_N_FRECKLES) % 4]  # the strength shows the spots a quarter at a time
    frk = sum(_splat(pts[i::2], (dark * on)[i::2], size, R, scale=sigma) for i, size in ((0, 0.008), (1, 0.005)))
    # age spots: larger, faint, over the forehead, temples and upper cheeks
    z = jax.random.normal(k_age, (_N_AGE_SPOTS, 2), dt)
    pts = lm[9] + z * jnp.asarray([0.75, 0.45], dt) * iod
    age = _splat(pts, jnp.ones((_N_AGE_SPOTS,), dt), 0.035, R, scale=sigma)
    age = age * (0.4 + 0.6 * _noise(k_age_shape, R, 24, dt))
    # moles: a few small dark spots anywhere on the face (mirror-free, like real ones)
    u = jax.random.uniform(k_mole, (_N_MOLES, 2), dt)
    lo, hi = jnp.min(lm, axis=0), jnp.max(lm, axis=0)
    pts = lo + (hi - lo) * (0.15 + 0.7 * u)
    mole = _splat(pts, _ramp(moles, _N_MOLES, dt), 0.007, R, scale=sigma)
    return core, shadow, jnp.clip(frk, 0.0, 1.0), age, mole, skin


def _check_strength(fn: str, name: str, v) -> None:
    if isinstance(v, jax.core.Tracer):
        return  # traced (under jit/grad/vmap): the caller's responsibility
    v = np.asarray(v)
    if v.shape != () or not 0.0 <= float(v) <= 1.0:
        raise InputError(f"{fn}: {name} must be a number in [0, 1], got {v.tolist()!r}")


def _check_color(fn: str, name: str, c, dtype) -> Array:
    c = jnp.asarray(c, dtype)
    if c.shape != (3,):
        raise InputError(f"{fn}: {name} must have shape (3,), got {c.shape}")
    return c


def _check_albedo(fn: str, albedo) -> Array:
    albedo = jnp.asarray(albedo)
    if albedo.ndim != 3 or albedo.shape[-1] != 3 or albedo.shape[0] != albedo.shape[1]:
        raise InputError(f"{fn}: albedo must have shape (R, R, 3), got {albedo.shape}")
    if not jnp.issubdtype(albedo.dtype, jnp.floating):
        raise InputError(f"{fn}: albedo must be float sRGB in [0, 1], got dtype {albedo.dtype}")
    return albedo


def _ramp(amount: Array, n: int, dtype) -> Array:
    """Per-item opacity for ``n`` items at ``amount`` in ``[0, 1]``: the first ``amount · n`` items
    fully on, the next one partly (continuous and piecewise linear in ``amount``)."""
    return jnp.clip(amount * n - jnp.arange(n, dtype=dtype), 0.0, 1.0)


def _resize(m: Array, R: int) -> Array:
    return m if m.shape[-1] == R else jax.image.resize(m, m.shape[:-2] + (R, R), "bilinear")


def skin_marks(
    albedo: Float[ArrayLike, "R R 3"],
    landmarks_uv: Float[ArrayLike, "K 2"],
    key: PRNGKeyArray,
    *,
    wrinkles: Float[ArrayLike, ""] | float = 0.0,
    freckles: Float[ArrayLike, ""] | float = 0.0,
    age_spots: Float[ArrayLike, ""] | float = 0.0,
    moles: Float[ArrayLike, ""] | float = 0.0,
    crease_color: Shaped[ArrayLike, "3"] | Sequence[float] = (0.62, 0.47, 0.43),
    freckle_color: Shaped[ArrayLike, "3"] | Sequence[float] = (0.84, 0.68, 0.56),
    mole_color: Shaped[ArrayLike, "3"] | Sequence[float] = (0.30, 0.19, 0.14),
) -> Float[Array, "R R 3"]:
    """Paint wrinkles, freckles, age spots and moles onto a UV albedo (see the module docstring).

    Args:
        albedo: ``(R, R, 3)`` float sRGB albedo in ``[0, 1]``.
        landmarks_uv: ``(478, 2)`` UV of the FaceMesh landmarks (e.g. ``template.landmark_uv``).
        key: PRNG key: where the spots fall and how the creases break up.
        wrinkles: crease strength in ``[0, 1]`` (0.3 a first line or two, 0.9 deep lines of old age).
        freckles: share of the freckle set shown, in ``[0, 1]``.
        age_spots: age-spot strength in ``[0, 1]``.
        moles: share of the (eight) moles shown, in ``[0, 1]``.
        crease_color, freckle_color: sRGB ``multiply`` colours of a full-strength crease and spot.
        mole_color: sRGB colour of a mole.

    Returns:
        ``(R, R, 3)`` albedo; equal to ``albedo`` where every strength is 0.

    Raises:
        InputError: bad shapes, an integer albedo, a strength outside ``[0, 1]``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from machlib.geometry import default_template
        >>> from machlib.texture import skin_marks
        >>> skin = jnp.full((128, 128, 3), jnp.array([0.8, 0.6, 0.5]))
        >>> lm, key = default_template().landmark_uv, jax.random.key(0)
        >>> bool(jnp.all(skin_marks(skin, lm, key) == skin))
        True
        >>> old = skin_marks(skin, lm, key, wrinkles=0.9, age_spots=0.5)
        >>> bool(jnp.all(old <= skin)), float(jnp.min(old[..., 0])) < 0.7  # creases darken the skin
        (True, True)
    """
    fn = "skin_marks"
    albedo = _check_albedo(fn, albedo)
    lm = _check_landmarks(fn, landmarks_uv).astype(albedo.dtype)
    dt = albedo.dtype
    for name, v in (("wrinkles", wrinkles), ("freckles", freckles), ("age_spots", age_spots), ("moles", moles)):
        _check_strength(fn, name, v)
    crease_color = _check_color(fn, "crease_color", crease_color, dt)
    freckle_color = _check_color(fn, "freckle_color", freckle_color, dt)
    mole_color = _check_color(fn, "mole_color", mole_color, dt)
    return _skin_marks(albedo, lm, key, jnp.asarray(wrinkles, dt), jnp.asarray(freckles, dt),
                       jnp.asarray(age_spots, dt), jnp.asarray(moles, dt), crease_color, freckle_color, mole_color)


@jax.jit
def _skin_marks(albedo, lm, key, wrinkles, freckles, age_spots, moles, crease_color, freckle_color, mole_color):
    R = int(albedo.shape[0])
    masks = _mark_masks(lm, key, freckles, moles, resolution=min(R, _MAX_RES))
    core, shadow, frk, age, mole, skin = (_resize(m, R) for m in masks)
    out = _composite(albedo, crease_color, wrinkles * skin * jnp.clip(0.25 * shadow + 0.75 * core, 0.0, 1.0),
                     "multiply")
    out = _composite(out, freckle_color, skin * frk, "multiply")
    out = _composite(out, freckle_color, age_spots * skin * age * 0.7, "multiply")
    return _composite(out, mole_color, skin * mole * 0.9, "normal")


def recolor_brows(
    albedo: Float[ArrayLike, "R R 3"],
    landmarks_uv: Float[ArrayLike, "K 2"],
    color: Shaped[ArrayLike, "3"] | Sequence[float],
    *,
    strength: Float[ArrayLike, ""] | float = 1.0,
) -> Float[Array, "R R 3"]:
    """Recolour the eyebrows of a UV albedo, keeping their texture.

    Each texel near the brow polygons (grown by 6 % of ``iod``) is read as a mix of brow hair and
    skin by its lightness, between the skin around the brows and the brows' mean; its hair part
    moves from the brows' mean colour to ``color``. Strokes, gaps and the skin between them
    survive: gray hair gets gray brows, blonde hair light ones.

    Args:
        albedo: ``(R, R, 3)`` float sRGB albedo in ``[0, 1]``.
        landmarks_uv: ``(478, 2)`` UV of the FaceMesh landmarks.
        color: the brows' sRGB colour (their mean), e.g. the hair's, a little darker.
        strength: opacity in ``[0, 1]`` (0: unchanged).

    Returns:
        ``(R, R, 3)`` albedo.

    Raises:
        InputError: bad shapes, an integer albedo, a strength outside ``[0, 1]``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.geometry import default_template, template_albedo
        >>> from machlib.texture import recolor_brows
        >>> t = default_template()
        >>> a = jnp.asarray(template_albedo(256), jnp.float32) / 255.0
        >>> gray = recolor_brows(a, t.landmark_uv, (0.45, 0.45, 0.45))
        >>> bool(jnp.any(gray != a)), bool(jnp.all(gray[240:] == a[240:]))  # the brows only
        (True, True)
    """
    fn = "recolor_brows"
    albedo = _check_albedo(fn, albedo)
    lm = _check_landmarks(fn, landmarks_uv).astype(albedo.dtype)
    color = _check_color(fn, "color", color, albedo.dtype)
    _check_strength(fn, "strength", strength)
    return _recolor_brows(albedo, lm, color, jnp.asarray(strength, albedo.dtype))


@jax.jit
def _recolor_brows(albedo, lm, color, strength):
    inner, grown = _brow_mask(lm, resolution=int(albedo.shape[0]))
    # how much of each texel is brow hair over skin: its lightness between the skin around the
    # brows (the grown ring) and the brows' own mean; the brow colour then moves by C - B
    lum = albedo @ jnp.asarray([0.2126, 0.7152, 0.0722], albedo.dtype)
    ring = grown * (1.0 - inner)
    mean = lambda x, w: jnp.sum(x * w, axis=(0, 1)) / jnp.maximum(jnp.sum(w), 1e-6)  # noqa: E731
    l_skin, l_brow = mean(lum, ring), mean(lum, inner)
    hair = jnp.clip((l_skin - lum) / jnp.maximum(l_skin - l_brow, 1e-3), 0.0, 1.0)
    brow = mean(albedo, (inner * hair)[..., None])
    return jnp.clip(albedo + (strength * grown * hair)[..., None] * (color - brow), 0.0, 1.0)


def _brow_mask(lm: Array, *, resolution: int) -> tuple[Array, Array]:
    """The brow polygons' coverage and the same grown by 6 % of ``iod`` (feathered)."""
    R = resolution
    iod = jnp.linalg.norm(lm[33] - lm[263])
    inner = jnp.zeros((R, R), lm.dtype)
    grown = jnp.zeros((R, R), lm.dtype)
    for poly in (RIGHT_BROW, mirrored(RIGHT_BROW)):
        sdf = _polygon_sdf(lm[jnp.asarray(poly)], R)
        inner = jnp.maximum(inner, _coverage(sdf, R))
        grown = jnp.maximum(grown, jnp.clip(1.0 - (sdf - 0.03 * iod) / (0.03 * iod), 0.0, 1.0))
    return inner, grown
