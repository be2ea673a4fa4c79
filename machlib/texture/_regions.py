"""Facial region masks in UV space from the dense landmarks, and mask morphology.

Landmark index sets (MediaPipe FaceMesh, 478 points with irises), chosen from FaceMesh's
topology — the published contour connections (``FACEMESH_RIGHT_EYE``, ``..._EYEBROW``,
``FACEMESH_LIPS``) give the eye, brow and lip loops; the nostrils have no published contour, so
each is the star-shaped polygon (sorted by angle about its centroid) through the points that
ring the nostril opening on the underside of the nose, checked on MediaPipe's output for the
bundled portrait. Left-side sets are the mirror images (:func:`machlib.geometry.mirror_permutation`)
of the right-side ones. "Right" is the subject's right, on the ``u < 0.5`` side of the template.

All masks are float ``(R, R)`` images in ``[0, 1]`` in the UV convention of :doc:`/conventions`
(``u`` right, ``v`` down, texel ``(i, j)`` centred at ``((j + 0.5) / R, (i + 0.5) / R)``),
anti-aliased over one texel.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Shaped

__all__ = [
    "RIGHT_EYE",
    "RIGHT_BROW",
    "LIPS_OUTER",
    "LIPS_INNER",
    "RIGHT_NOSTRIL",
    "polygon_sdf",
    "region_masks",
    "dilate_mask",
    "erode_mask",
    "feather_mask",
]

from .._errors import InputError
from .._facemesh import (  # noqa: E402
    LIPS_INNER,
    LIPS_OUTER,
    RIGHT_BROW,
    RIGHT_EYE,
    RIGHT_IRIS,
    RIGHT_NOSTRIL,
)
from ..geometry import face_oval, mirror_permutation

_ERROR_PRONE = ("eyes", "brows", "mouth", "nostrils")


@functools.lru_cache(maxsize=1)
def _mirror() -> np.ndarray:
    return mirror_permutation()


def mirrored(indices: tuple[int, ...]) -> tuple[int, ...]:
    """The left-side counterpart of a right-side landmark index set (same order)."""
    perm = _mirror()
    return tuple(int(perm[k]) for k in indices)


# --------------------------------------------------------------------------------------------
# polygons


def _texel_centres(resolution: int, dtype):
    c = (jnp.arange(resolution, dtype=dtype) + 0.5) / resolution
    return c[None, :], c[:, None]  # u (1, R), v (R, 1)


def polygon_sdf(polygon: Float[ArrayLike, "N 2"], resolution: int) -> Float[Array, "R R"]:
    """Signed distance in UV units from every texel centre to a closed polygon (negative inside).

    Inside/outside by the even-odd rule, so any simple polygon works (vertex order and
    orientation are free). Pure JAX and jit-safe for a static ``resolution``; one pass over the
    edges with ``(R, R)`` memory.

    Args:
        polygon: ``(N, 2)`` vertices in UV coordinates, ``N >= 3``, the last joined to the first.
        resolution: ``R``, the mask size in texels.

    Returns:
        ``(R, R)`` float signed distances (UV units: multiply by ``R`` for texels).

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import polygon_sdf
        >>> square = jnp.array([[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]])
        >>> d = polygon_sdf(square, 8)
        >>> float(d[4, 4]), float(d[0, 0])  # texel centres (0.5625, 0.5625) and (0.0625, 0.0625)
        (-0.1875, 0.265165...)
    """
    poly = jnp.asarray(polygon)
    if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 3:
        raise InputError(f"polygon_sdf: polygon must have shape (N >= 3, 2), got {poly.shape}")
    if not isinstance(resolution, (int, np.integer)) or resolution < 1:
        raise InputError(f"polygon_sdf: resolution must be a positive int, got {resolution!r}")
    if not jnp.issubdtype(poly.dtype, jnp.floating):
        poly = poly.astype(jnp.float32)
    return _polygon_sdf(poly, int(resolution))


def _polygon_sdf(poly: Array, resolution: int) -> Array:
    u, v = _texel_centres(resolution, poly.dtype)
    return _polygon_sdf_at(poly, u, v)


def _polygon_sdf_at(poly: Array, u: Array, v: Array) -> Array:
    """Signed distance (negative inside, even-odd rule) from the points ``(u, v)`` (broadcast
    together) to the closed polygon ``poly``."""
    a, b = poly, jnp.roll(poly, -1, axis=0)

    def body(k, carry):
        d2, inside = carry
        ax, ay, bx, by = a[k, 0], a[k, 1], b[k, 0], b[k, 1]
        ex, ey = bx - ax, by - ay
        wx, wy = u - ax, v - ay
        ee = ex * ex + ey * ey
        t = jnp.clip((wx * ex + wy * ey) / jnp.where(ee > 0, ee, 1.0), 0.0, 1.0)
        dx, dy = wx - t * ex, wy - t * ey
        d2 = jnp.minimum(d2, dx * dx + dy * dy)
        straddles = (ay > v) != (by > v)
        x_cross = ax + (v - ay) * ex / jnp.where(ey != 0, ey, 1.0)
        inside = inside ^ (straddles & (u < x_cross))
        return d2, inside

    shape = jnp.broadcast_shapes(jnp.shape(u), jnp.shape(v))
    init = (jnp.full(shape, jnp.inf, poly.dtype), jnp.zeros(shape, bool))
    d2, inside = jax.lax.fori_loop(0, poly.shape[0], body, init)
    safe = jnp.where(d2 > 0, d2, 1.0)
    d = jnp.where(d2 > 0, jnp.sqrt(safe), 0.0)
    return jnp.where(inside, -d, d)


def _coverage(sdf: Array, resolution: int, grow: "float | Array" = 0.0) -> Array:
    """Anti-aliased fill of ``sdf <= grow`` (box filter of one texel)."""
    return jnp.clip(0.5 - (sdf - grow) * resolution, 0.0, 1.0)


def _star_polygon(points: Array) -> Array:
    """Order points by angle about their centroid (a simple polygon for star-shaped sets)."""
    c = jnp.mean(points, axis=0)
    angle = jnp.arctan2(points[:, 1] - c[1], points[:, 0] - c[0])
    return points[jnp.argsort(angle)]


def _landmark_polygons(lm: Array) -> dict[str, list[Array]]:
    """The region polygons (UV) from ``(478, 2)`` landmarks."""
    take = lambda idx: lm[jnp.asarray(idx)]  # noqa: E731
    return {
        "eyes": [take(RIGHT_EYE), take(mirrored(RIGHT_EYE))],
        "brows": [take(RIGHT_BROW), take(mirrored(RIGHT_BROW))],
        "mouth": [take(LIPS_OUTER)],
        "inner_mouth": [take(LIPS_INNER)],
        "nostrils": [_star_polygon(take(RIGHT_NOSTRIL)), _star_polygon(take(mirrored(RIGHT_NOSTRIL)))],
    }


_SDF_MAX = 256  # region distance fields are evaluated at most at this resolution, then upsampled


def _region_sdfs(lm: Array, resolution: int) -> dict[str, Array]:
    """Signed distance (UV) of every region (union of its polygons: the minimum).

    Above ``_SDF_MAX`` texels a side the exact distances are computed on a ``_SDF_MAX`` grid and
    upsampled bilinearly: a distance field is linear along the edges, so the level sets move by
    a small fraction of a coarse texel, and the cost (texels × polygon edges) drops 16× at 1024².
    """
    n = min(resolution, _SDF_MAX)
    out = {k: functools.reduce(jnp.minimum, [_polygon_sdf(p, n) for p in polys])
           for k, polys in _landmark_polygons(lm).items()}
    out["face"] = _polygon_sdf(lm[jnp.asarray(face_oval())], n)
    if n < resolution:
        out = {k: jax.image.resize(v, (resolution, resolution), "linear") for k, v in out.items()}
    return out


@functools.partial(jax.jit, static_argnames=("resolution",))
def _region_masks(lm, dilate, *, resolution):
    return _masks_from_sdfs(_region_sdfs(lm, resolution), resolution, dilate)


def _masks_from_sdfs(sdf, resolution, dilate):
    masks = {k: _coverage(sdf[k], resolution, dilate) for k in _ERROR_PRONE}
    masks["lips"] = _coverage(sdf["mouth"], resolution) * (1.0 - _coverage(sdf["inner_mouth"], resolution))
    masks["face"] = _coverage(sdf["face"], resolution)
    return masks


def _check_landmarks(fn: str, landmarks_uv) -> Array:
    lm = jnp.asarray(landmarks_uv)
    if lm.ndim != 2 or lm.shape[1] != 2 or lm.shape[0] < 473:
        raise InputError(f"{fn}: landmarks_uv must have shape (478, 2) (MediaPipe FaceMesh in UV), got {lm.shape}")
    return lm if jnp.issubdtype(lm.dtype, jnp.floating) else lm.astype(jnp.float32)


def region_masks(
    landmarks_uv: Float[ArrayLike, "K 2"],
    resolution: int,
    *,
    dilate: float = 0.0,
) -> dict[str, Float[Array, "R R"]]:
    """UV masks of the facial regions, rasterized from landmark polygons.

    Regions (module docstring for the landmark sets): ``"eyes"`` (both lid openings),
    ``"brows"``, ``"mouth"`` (inside the outer lip contour, lips and opening),
    ``"nostrils"`` — the error-prone regions of Make-A-Character §2.4.3, grown by ``dilate`` —
    and, never grown, ``"lips"`` (outer contour minus the mouth opening, for colour statistics)
    and ``"face"`` (inside the MediaPipe face oval).

    Args:
        landmarks_uv: ``(478, 2)`` UV coordinate of each FaceMesh landmark (e.g.
            ``default_template().landmark_uv``: after the geometry fit, portrait features sit at
            these UVs).
        resolution: ``R``, mask size in texels (static under jit).
        dilate: grow the error-prone regions by this distance in UV units (exact offset of the
            polygons, round corners; ``0.01`` is ~10 texels at ``R = 1024``).

    Returns:
        ``{"eyes", "brows", "mouth", "nostrils", "lips", "face"}`` → ``(R, R)`` float in
        ``[0, 1]`` (anti-aliased edges).

    Raises:
        InputError: landmarks not ``(478, 2)``, bad resolution, negative ``dilate``.

    Example:
        >>> import json, numpy as np
        >>> from machlib.geometry import default_template
        >>> from machlib.texture import region_masks
        >>> masks = region_masks(default_template().landmark_uv, 64)
        >>> sorted(masks), masks["face"].shape
        (['brows', 'eyes', 'face', 'lips', 'mouth', 'nostrils'], (64, 64))
    """
    fn = "region_masks"
    lm = _check_landmarks(fn, landmarks_uv)
    if not isinstance(resolution, (int, np.integer)) or resolution < 1:
        raise InputError(f"{fn}: resolution must be a positive int, got {resolution!r}")
    if isinstance(dilate, (int, float)) and not dilate >= 0:
        raise InputError(f"{fn}: dilate must be >= 0 (UV units), got {dilate!r}")
    return _region_masks(lm, jnp.asarray(dilate, lm.dtype), resolution=int(resolution))


# --------------------------------------------------------------------------------------------
# morphology


def _check_mask(fn: str, mask) -> Array:
    m = jnp.asarray(mask)
    if m.ndim != 2:
        raise InputError(f"{fn}: mask must have shape (H, W), got {m.shape}")
    return m if jnp.issubdtype(m.dtype, jnp.floating) else m.astype(jnp.float32)


def _max3(x: Array, cross: bool) -> Array:
    p = jnp.pad(x, 1, mode="edge")
    h, w = x.shape
    out = jnp.maximum(x, jnp.maximum(jnp.maximum(p[:h, 1:-1], p[2:, 1:-1]), jnp.maximum(p[1:-1, :w], p[1:-1, 2:])))
    if not cross:
        corners = jnp.maximum(jnp.maximum(p[:h, :w], p[:h, 2:]), jnp.maximum(p[2:, :w], p[2:, 2:]))
        out = jnp.maximum(out, corners)
    return out


def dilate_mask(mask: Shaped[ArrayLike, "H W"], radius: int) -> Float[Array, "H W"]:
    """Grey-scale dilation (maximum filter) of a mask by ``radius`` texels.

    The structuring element is an octagon approximating a disk (alternating 3 × 3 square and
    cross steps); pixels beyond the image border repeat the edge. Soft masks stay soft. Pure
    JAX, jit-safe for a static ``radius``.

    Args:
        mask: ``(H, W)`` float (bool and int masks are converted to float32).
        radius: dilation radius in texels, ``>= 0`` (``0`` returns the mask).

    Returns:
        ``(H, W)`` dilated mask.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import dilate_mask
        >>> m = jnp.zeros((9, 9)).at[4, 4].set(1.0)
        >>> int(dilate_mask(m, 2).sum())  # an octagon of radius 2: 5×5 minus the 4 corners
        21
    """
    m = _check_mask("dilate_mask", mask)
    if not isinstance(radius, (int, np.integer)) or radius < 0:
        raise InputError(f"dilate_mask: radius must be an int >= 0 (texels), got {radius!r}")
    return _dilate(m, int(radius))


def _dilate(m: Array, radius: int) -> Array:
    def pair(_, x):
        return _max3(_max3(x, cross=False), cross=True)

    m = jax.lax.fori_loop(0, radius // 2, pair, m)
    return _max3(m, cross=False) if radius % 2 else m


def erode_mask(mask: Shaped[ArrayLike, "H W"], radius: int) -> Float[Array, "H W"]:
    """Grey-scale erosion by ``radius`` texels: ``1 − dilate_mask(1 − mask, radius)``.

    For masks in ``[0, 1]``; same structuring element and border rule as :func:`dilate_mask`.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import erode_mask
        >>> m = jnp.zeros((9, 9)).at[2:7, 2:7].set(1.0)
        >>> int(erode_mask(m, 1).sum())
        9
    """
    m = _check_mask("erode_mask", mask)
    if not isinstance(radius, (int, np.integer)) or radius < 0:
        raise InputError(f"erode_mask: radius must be an int >= 0 (texels), got {radius!r}")
    return 1.0 - _dilate(1.0 - m, int(radius))


def _gaussian_kernel(sigma: float, dtype) -> Array:
    half = max(1, int(math.ceil(3.0 * sigma)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return jnp.asarray(k / k.sum(), dtype)


def _smoothstep(e0, e1, x):
    """Hermite step from 0 at ``e0`` to 1 at ``e1`` (either order)."""
    t = jnp.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _blur(x: Array, sigma: float) -> Array:
    """Separable Gaussian blur of ``(H, W)`` or ``(H, W, C)`` with edge padding."""
    if sigma <= 0:
        return x
    return _blur_jit(x, float(sigma))


#: Kernels of at most this many taps are applied along an axis as a sum of shifted copies (one
#: fused loop over the image); longer ones as a product with a banded matrix. On a CPU, XLA's
#: convolution ran this blur 9-66x slower (0.49 s for σ = 3 texels at 1024² × 3, 5.2 s at σ = 30,
#: against 0.025 s and 0.078 s; ``benchmarks/blur.py``, ``docs/benchmarks/blur.md``).
_SHIFT_TAPS = 31


def _clamped_band(n: int, k: Array) -> Array:
    """``(n, n)`` matrix ``M`` with ``(M @ y)[i] = Σ_t k[t] · y[clip(i + t − half, 0, n − 1)]``: the
    correlation with ``k`` of an edge-padded signal (the padding folded into the first and last
    columns)."""
    taps = k.shape[0]
    half = (taps - 1) // 2
    i = jnp.arange(n)[:, None]
    d = jnp.arange(n)[None, :] - i + half
    m = jnp.where((d >= 0) & (d < taps), k[jnp.clip(d, 0, taps - 1)], 0.0)
    if n == 1:
        return jnp.ones((1, 1), k.dtype)
    cum = jnp.cumsum(k)  # mass that falls on or before the first sample / on or after the last
    first = jnp.where(half - i[:, 0] >= 0, cum[jnp.clip(half - i[:, 0], 0, taps - 1)], 0.0)
    tail = jnp.cumsum(k[::-1])[::-1]
    start = n - 1 - i[:, 0] + half
    last = jnp.where(start < taps, tail[jnp.clip(start, 0, taps - 1)], 0.0)
    return m.at[:, 0].set(first).at[:, n - 1].set(last)


def _filter_axis(y: Array, k: Array, axis: int) -> Array:
    """Correlate ``y`` with the odd-length kernel ``k`` along ``axis``, edge padding."""
    n, taps = y.shape[axis], k.shape[0]
    if taps <= _SHIFT_TAPS:
        half = (taps - 1) // 2
        pad = [(0, 0)] * y.ndim
        pad[axis] = (half, half)
        p = jnp.pad(y, pad, mode="edge")
        out = k[0] * jax.lax.slice_in_dim(p, 0, n, axis=axis)
        for t in range(1, taps):
            out = out + k[t] * jax.lax.slice_in_dim(p, t, t + n, axis=axis)
        return out
    band = _clamped_band(n, k)
    out = jnp.tensordot(band, jnp.moveaxis(y, axis, 0), axes=1, precision=jax.lax.Precision.HIGHEST)
    return jnp.moveaxis(out, 0, axis)


@functools.partial(jax.jit, static_argnums=1)
def _blur_jit(x: Array, sigma: float) -> Array:
    """:func:`_blur` as one compiled program per shape and ``sigma``."""
    k = _gaussian_kernel(sigma, x.dtype)
    if x.ndim == 3 and k.shape[0] <= _SHIFT_TAPS:
        # shifted copies of an (H, W, C) image stride over a 3-wide minor axis; channels first,
        # each is a contiguous plane (σ = 5 at 1024² × 3: 342 -> 58 ms)
        y = jnp.moveaxis(x, -1, 0)
        return jnp.moveaxis(_filter_axis(_filter_axis(y, k, 1), k, 2), 0, -1)
    return _filter_axis(_filter_axis(x, k, 0), k, 1)


def feather_mask(mask: Shaped[ArrayLike, "H W"], sigma: float) -> Float[Array, "H W"]:
    """Soften a mask's edges with a Gaussian blur of standard deviation ``sigma`` texels.

    Separable, truncated at ``3σ``, edge-padded, so a constant mask stays constant. Pure JAX,
    differentiable in ``mask``; ``sigma`` is static. Combine with :func:`dilate_mask` to feather
    outward only (dilate by ``~2σ`` first).

    Args:
        mask: ``(H, W)`` float mask.
        sigma: blur standard deviation in texels, ``>= 0`` (``0`` returns the mask).

    Returns:
        ``(H, W)`` soft mask (values stay within the input's range).

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import feather_mask
        >>> m = jnp.zeros((16, 16)).at[:, 8:].set(1.0)
        >>> soft = feather_mask(m, 2.0)
        >>> round(float(soft[0, 7]), 2), round(float(soft[0, 8]), 2)  # symmetric about the edge
        (0.4, 0.6)
    """
    m = _check_mask("feather_mask", mask)
    if not isinstance(sigma, (int, float)) or not sigma >= 0:
        raise InputError(f"feather_mask: sigma must be a number >= 0 (texels), got {sigma!r}")
    return _blur(m, float(sigma))
