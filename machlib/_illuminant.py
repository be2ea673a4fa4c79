"""The colour and brightness of the light on a face, from the parts of it that are near white:
the eye whites (sclera) and, where the mouth is open, the teeth (:func:`light_from_eyes`).

Shared by the hair colour reading (:mod:`machlib.hair`) and the skin-tone reading of the texture
stage, which sit in one layer and may not import each other.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from jaxtyping import Float, UInt8

from ._errors import InputError
from ._facemesh import LIPS_INNER, LIPS_OUTER, RIGHT_EYE, RIGHT_IRIS
from ._validate import check_face_image

__all__ = ["LEFT_EYE", "LEFT_IRIS", "Illuminant", "light_from_eyes"]

#: Left eye opening (lid margin), the mirror of :data:`~machlib._facemesh.RIGHT_EYE` (16).
LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
#: Left iris centre and its 4 rim points (FaceMesh with ``refine_landmarks``).
LEFT_IRIS = (473, 474, 475, 476, 477)

_LUMA = np.array([0.2126, 0.7152, 0.0722])
#: How much smaller (natural log) the eye whites' or teeth's red / blue ratio must be than the
#: skin around them.
_MARGIN = 0.3
#: Linear RGB of CIELAB (80, 1, 12): the slightly yellow white of eye whites and teeth (tooth
#: shade guides run from b* ≈ 10 to 20), the default ``reference`` of :func:`light_from_eyes`.
#: With it, the astronaut portrait (a professionally white-balanced photo; her teeth are the
#: reference) gets a light within 5 % of neutral; taken as pure white, 15 % too warm.
_REFERENCE = (0.6417, 0.5578, 0.4352)


class Illuminant(NamedTuple):
    """The result of :func:`light_from_eyes`.

    Attributes:
        rgb: ``(3,)`` float64 colour of the light, mean 1 (red > 1 > blue: a warm light), each
            channel in ``[0.5, 1.5]``: the neutral reference's colour blended with ``prior`` by
            :attr:`weight` (geometric blend).
        white: ``(3,)`` float64 median linear RGB of the accepted sclera and teeth pixels
            (zeros when there are none): the light's colour times the eye whites' reflectance
            and their shading, a measure of the exposure.
        exposure: luminance of :attr:`white` divided by ``reference_white`` (1.0 when there are
            no accepted pixels): above 1, the photo is brighter than a normally exposed one.
        sclera_pixels: accepted eye-white pixels (both eyes).
        teeth_pixels: accepted teeth pixels (0 when the mouth is closed).
        weight: in ``[0, 1]``, how much the eye whites and teeth count against ``prior``:
            ``n / (n + min_pixels)`` for ``n`` accepted pixels.
    """

    rgb: np.ndarray
    white: np.ndarray
    exposure: float
    sclera_pixels: int
    teeth_pixels: int
    weight: float


def _linear(srgb8: np.ndarray) -> np.ndarray:
    s = srgb8.astype(np.float64) / 255.0
    return np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4)


def _polygon(points: np.ndarray, shape) -> np.ndarray:
    from skimage.draw import polygon

    # pixel (i, j) has its centre at (j + 0.5, i + 0.5) in landmark coordinates
    rr, cc = polygon(points[:, 1] - 0.5, points[:, 0] - 0.5, shape)
    m = np.zeros(shape, bool)
    m[rr, cc] = True
    return m


def _saturation(lin: np.ndarray) -> np.ndarray:
    return 1.0 - lin.min(1) / np.maximum(lin.max(1), 1e-6)


def _ring(inside: np.ndarray, px: int) -> np.ndarray:
    """The band of ``px`` pixels around a region, skipping the first pixel (its blurred edge)."""
    from scipy import ndimage

    return ndimage.binary_dilation(inside, iterations=px + 1) & ~ndimage.binary_dilation(inside, iterations=1)


def _warmth(lin: np.ndarray) -> float:
    """Median log(red / blue): how far along the warm–cool axis a set of pixels lies."""
    return float(np.median(np.log(np.maximum(lin[:, 0], 1e-5) / np.maximum(lin[:, 2], 1e-5))))


def _neutral(lin: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """``lin`` if it is clearly bluer than the skin around it, else nothing.

    Whatever the light, the eye whites and teeth reflect blue far better than skin does (skin's
    red / blue ratio is about twice theirs); an eye too small or too closed to show its whites
    gives pixels as red as its lids."""
    if len(lin) < 4 or len(ring) < 4 or _warmth(lin) > _warmth(ring) - _MARGIN:
        return np.zeros((0, 3))
    return lin


def _sclera(image, pts, eye, iris) -> np.ndarray:
    """Pixels of one eye's opening that are neither lid, iris, highlight nor shadow."""
    from scipy import ndimage

    h, w = image.shape[:2]
    poly = pts[list(eye)]
    pad = 6
    x0, y0 = np.floor(poly.min(0)).astype(int) - pad
    x1, y1 = np.ceil(poly.max(0)).astype(int) + pad
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return np.zeros((0, 3))
    crop = image[y0:y1, x0:x1]
    opening = _polygon(poly - np.array([x0, y0]), crop.shape[:2])
    inside = ndimage.binary_erosion(opening, iterations=1)  # the lid margin and lashes
    ic = pts[iris[0]]
    r = float(np.mean(np.linalg.norm(pts[list(iris[1:])] - ic, axis=1)))
    yy, xx = np.mgrid[y0:y1, x0:x1] + 0.5
    inside &= np.hypot(xx - ic[0], yy - ic[1]) > 1.2 * r + 1.0  # the iris and its dark limbal ring
    px = crop[inside]
    if len(px) < 4:
        return np.zeros((0, 3))
    lin = _linear(px)
    keep = px.max(1) < 250  # clipped channels: specular highlights carry no colour
    lum = lin @ _LUMA
    if keep.sum() >= 4:
        lo = np.quantile(lum[keep], 0.4)  # lashes, lid shadow and iris remnants are the dark ones
        keep &= lum >= lo
    lin = lin[keep]
    if len(lin) >= 6:  # the eye whites are the least coloured part of the eye
        sat = _saturation(lin)
        lin = lin[sat <= np.quantile(sat, 0.75)]
    return _neutral(lin, _linear(crop[_ring(opening, 3)]))


def _teeth(image, pts) -> np.ndarray:
    """Bright, little-coloured pixels inside the mouth opening, if it is open."""
    inner = pts[list(LIPS_INNER)]
    width = float(np.ptp(inner[:, 0]))
    x, y = inner[:, 0], inner[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
    if width < 8 or area < 0.04 * width * width:  # a closed (or barely parted) mouth
        return np.zeros((0, 3))
    m = _polygon(inner, image.shape[:2])
    px = image[m]
    if len(px) < 10:
        return np.zeros((0, 3))
    ok = px.max(1) < 250
    lin = _linear(px[ok])
    if len(lin) < 10:
        return np.zeros((0, 3))
    lum, sat = lin @ _LUMA, _saturation(lin)
    # teeth: the bright and least coloured part (not lips, gums, tongue or the dark cavity)
    keep = (lum >= np.quantile(lum, 0.5)) & (sat <= np.median(sat))
    outer = _polygon(pts[list(LIPS_OUTER)], image.shape[:2])
    return _neutral(lin[keep], _linear(image[_ring(outer, 4)]))


def light_from_eyes(
    image: UInt8[np.ndarray, "H W 3"],
    points: Float[np.ndarray, "K 2"],
    *,
    prior=None,
    min_pixels: int = 30,
    reference_white: float = 0.25,
    reference=_REFERENCE,
) -> Illuminant:
    """The colour and exposure of the light on a face, from its eye whites and teeth.

    The eye whites (sclera) and teeth are close to neutral reflectors, so the colour they show
    is the light's. For each eye, the pixels inside the lid margin (the eye contour eroded by one
    pixel) and outside the iris (a disk of 1.2 iris radii + 1 px around its centre) are taken;
    pixels with a clipped channel (specular highlights) are dropped, then the darker 40 % by
    luminance (lashes, lid shadow, iris remnants), then the quarter whose chromaticity is
    most saturated (veins, skin at the corners). When the mouth is open (inner lip polygon area
    ≥ 4 % of its width squared), its unclipped pixels that are both brighter and less saturated
    (``1 - min/max`` of linear RGB) than the median count as teeth. An eye's or the mouth's
    pixels count only if their median red / blue ratio is below ``exp(-0.3)`` times that of the
    skin around them (a band of 3 and 4 pixels): whatever the light, skin is much redder than
    eye whites and teeth, and an eye too closed or too small to show its whites gives pixels as
    red as its lids. The median linear RGB
    of all accepted pixels divided by the eye whites' and teeth's own colour ``reference``, as
    a mean-1 colour, is the light's colour.

    With few good pixels (closed eyes, glare on glasses, a small face) this estimate is
    uncertain, so it is blended in log space with ``prior`` (neutral by default; e.g.
    :func:`~machlib.hair.light_from_skin`) by the weight ``n / (n + min_pixels)``.

    Args:
        image: ``(H, W, 3)`` uint8 sRGB portrait.
        points: ``(478, 2)`` MediaPipe FaceMesh landmarks with irises, pixel coordinates
            ``(x, y)`` (:attr:`machlib.geometry.Landmarks.points`).
        prior: optional ``(3,)`` positive light colour to fall back on (only its ratios count).
        min_pixels: accepted pixels at which the eye whites and the prior weigh the same (> 0).
        reference_white: the luminance (linear, ``(0, 1]``) of the eye whites in a normally
            exposed portrait; :attr:`Illuminant.exposure` is measured against it.
        reference: ``(3,)`` positive linear RGB colour of eye whites and teeth under a white
            light (only its ratios count); default CIELAB ``(80, 1, 12)``, a slightly yellow
            white (``(1, 1, 1)``: take them as neutral).

    Returns:
        An :class:`Illuminant`.

    Raises:
        InputError: a non-uint8 or non-RGB image, landmarks that are not ``(478, 2)`` finite
            pixel coordinates, or a bad option.

    Example:
        >>> import numpy as np
        >>> from machlib.hair import light_from_eyes
        >>> eye = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
        >>> t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        >>> pts = np.full((478, 2), 1e3)                        # one eye; the rest off the image
        >>> pts[eye] = np.stack([30 + 16 * np.cos(t), 20 + 7 * np.sin(t)], 1)   # its lid margin
        >>> pts[468:473] = [(30, 20), (34, 20), (30, 16), (26, 20), (30, 24)]  # iris centre, rim
        >>> yy, xx = np.mgrid[0:40, 0:60] + 0.5
        >>> img = np.zeros((40, 60, 3), np.uint8); img[...] = (200, 120, 90)   # skin, warm light
        >>> img[((xx - 30) / 16) ** 2 + ((yy - 20) / 7) ** 2 <= 1] = (235, 205, 170)  # eye white
        >>> light = light_from_eyes(img, pts, reference=(1, 1, 1))   # take the whites as neutral
        >>> light.rgb.round(2).tolist(), light.sclera_pixels, round(light.weight, 2)
        ([1.3, 1.0, 0.7], 168, 0.85)
    """
    fn = "light_from_eyes"
    image, pts = check_face_image(fn, image, points, name="points")
    if not (isinstance(min_pixels, (int, np.integer)) and min_pixels > 0):
        raise InputError(f"{fn}: min_pixels must be a positive integer, got {min_pixels!r}")
    if not 0.0 < float(reference_white) <= 1.0:
        raise InputError(f"{fn}: reference_white must be in (0, 1], got {reference_white!r}")
    base = np.ones(3)
    if prior is not None:
        base = np.asarray(prior, np.float64)
        if base.shape != (3,) or not np.isfinite(base).all() or base.min() <= 0:
            raise InputError(f"{fn}: prior must be 3 positive finite numbers, got {prior!r}")
        base = base / base.mean()
    own = np.asarray(reference, np.float64)
    if own.shape != (3,) or not np.isfinite(own).all() or own.min() <= 0:
        raise InputError(f"{fn}: reference must be 3 positive finite numbers, got {reference!r}")
    sclera = [_sclera(image, pts, eye, iris) for eye, iris in ((RIGHT_EYE, RIGHT_IRIS), (LEFT_EYE, LEFT_IRIS))]
    teeth = _teeth(image, pts)
    good = np.concatenate(sclera + [teeth])
    n = len(good)
    white = np.median(good, 0) if n else np.zeros(3)
    weight = n / (n + float(min_pixels))
    if n and white.min() > 1e-4:
        ref = white / own
        ref = ref / ref.mean()
        rgb = np.exp(weight * np.log(ref) + (1.0 - weight) * np.log(base))
    else:
        rgb, weight = base, 0.0
    rgb = np.clip(rgb / rgb.mean(), 0.5, 1.5)
    exposure = float(white @ _LUMA) / float(reference_white) if n else 1.0
    return Illuminant(rgb, white, exposure, int(sum(len(s) for s in sclera)), len(teeth), float(weight))
