"""The colours of a person's eyes from the photo: the iris and the eye whites (sclera).

:func:`read_eye_colors` measures them from the pixels MediaPipe's iris landmarks (468–477) and
lid contours delimit, divides the light out with the portrait's estimated shading (as the skin is
delit), and says when it could not: eyes closed or looking down show too little iris or white,
and the stated defaults are used instead (the reading says which and why).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
from jaxtyping import Float, UInt8

from .._errors import InputError
from .._facemesh import RIGHT_EYE, RIGHT_IRIS
from .._illuminant import LEFT_EYE, LEFT_IRIS, _linear, _polygon, _ring, _saturation
from .._validate import check_face_image
from ._color_names import _nearest_name
from ..assets._anatomy import _SCLERA

__all__ = ["EyeColors", "read_eye_colors", "SCLERA_DEFAULT", "iris_color_name"]

#: Linear RGB of the eye whites used when the photo shows none (closed or downcast eyes, or
#: whites too small or blurred to tell from the skin): the one reading of the eight look-test
#: portraits whose whites pass the checks (the astronaut's, delit), rounded: a warm off-white,
#: sRGB about (211, 199, 194).
SCLERA_DEFAULT = _SCLERA

_LUMA = np.array([0.2126, 0.7152, 0.0722])
#: Opening ratio (:func:`machlib.texture.eye_openness`) below which an eye counts as closed or
#: looking down: its iris is mostly behind the upper lid and its lashes.
_MIN_OPENNESS = 0.17
#: The iris ring measured: between these fractions of the iris radius (inside: the pupil;
#: outside: the dark limbal ring blurred with the white).
_RING = (0.42, 0.92)
#: Fraction of the full ring's area that must be visible between the lids.
_MIN_VISIBLE = 0.3
#: An open eye's ratio is at most about 0.5; above this the landmarks are not following the lids
#: (a face turned far away).
_MAX_OPENNESS = 0.65
#: The iris must be darker than the skin around the eye by this luminance ratio, and the eye
#: white less coloured (saturation ``1 - min/max``) by this ratio: blurred or tiny eyes give
#: pixels that are mostly skin.
_IRIS_VS_SKIN = 0.6
_WHITE_VS_SKIN = 0.6
#: Delit albedo bounds: no iris or eye white is black or whiter than white paper.
_ALBEDO = (0.003, 0.85)


class EyeColors(NamedTuple):
    """The result of :func:`read_eye_colors`.

    Attributes:
        iris: ``(3,)`` float64 linear RGB albedo of the iris (delit), or ``None`` when no eye
            showed enough of its iris.
        sclera: ``(3,)`` float64 linear RGB albedo of the eye whites (delit), or ``None`` when
            no eye showed its whites.
        iris_name: the nearest ``iris_color`` word (:data:`machlib.assets.IRIS_COLORS`,
            :func:`iris_color_name`) to :attr:`iris`, or ``None``.
        openness: ``(right, left)`` lid gap over eye width of the photo's eyes.
        iris_pixels: ``(right, left)`` iris pixels measured (0 for an eye not used).
        sclera_pixels: ``(right, left)`` eye-white pixels measured.
        notes: why an eye or a colour was not read (empty when both were).
    """

    iris: Optional[np.ndarray]
    sclera: Optional[np.ndarray]
    iris_name: Optional[str]
    openness: tuple
    iris_pixels: tuple
    sclera_pixels: tuple
    notes: tuple


def iris_color_name(rgb) -> str:
    """The ``iris_color`` word nearest to a linear RGB iris albedo.

    The distance is CIELAB's with the lightness difference weighted by 0.5 (a photo's exposure
    and the iris's shadow under the lid move lightness more than hue) over the colours of
    :data:`machlib.assets.IRIS_COLORS`.

    Args:
        rgb: ``(3,)`` linear RGB in ``[0, 1]``.

    Returns:
        A key of :data:`machlib.assets.IRIS_COLORS` (``"brown"``, ``"blue"``, ...).

    Raises:
        InputError: ``rgb`` not 3 finite numbers.

    Example:
        >>> from machlib.character import iris_color_name
        >>> iris_color_name((0.15, 0.07, 0.03)), iris_color_name((0.10, 0.22, 0.45))
        ('brown', 'blue')
    """
    from ..assets import IRIS_COLORS

    names = list(IRIS_COLORS)
    return _nearest_name("iris_color_name", rgb, names, [IRIS_COLORS[n] for n in names], lightness_weight=0.5,
                         linear=True)


def _openness(pts: np.ndarray) -> tuple[float, float]:
    out = []
    for up, lo, a, b in ((159, 145, 33, 133), (386, 374, 263, 362)):
        w = float(np.linalg.norm(pts[a] - pts[b]))
        out.append(float(np.linalg.norm(pts[up] - pts[lo])) / w if w > 1e-6 else 0.0)
    return out[0], out[1]


def _eye_pixels(image: np.ndarray, pts: np.ndarray, eye, iris) -> dict:
    """One eye's measurements: the iris ring's middle luminances and the eye white's brightest,
    least coloured pixels (linear RGB), the share of the ring that is visible and the skin
    around the eye."""
    from scipy import ndimage

    none = np.zeros((0, 3))
    out = {"iris": none, "white": none, "visible": 0.0, "skin": none}
    h, w = image.shape[:2]
    c = pts[iris[0]]
    r = float(np.mean(np.linalg.norm(pts[list(iris[1:])] - c, axis=1)))
    poly = pts[list(eye)]
    if not np.isfinite(r) or r < 1.5:
        return out
    pad = 6
    x0, y0 = np.floor(np.minimum(poly.min(0), c - r)).astype(int) - pad
    x1, y1 = np.ceil(np.maximum(poly.max(0), c + r)).astype(int) + pad
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return out
    crop = image[y0:y1, x0:x1]
    opening = _polygon(poly - np.array([x0, y0]), crop.shape[:2])
    inside = ndimage.binary_erosion(opening, iterations=1)  # the lid margin and its lashes
    out["skin"] = _linear(crop[_ring(opening, 3)])
    yy, xx = np.mgrid[y0:y1, x0:x1] + 0.5
    d = np.hypot(xx - c[0], yy - c[1]) / r
    ring = (d >= _RING[0]) & (d <= _RING[1])
    full = int(ring.sum())
    if full:
        out["visible"] = int((ring & inside).sum()) / full
    px = crop[ring & inside]
    px = px[px.max(1) < 250]  # clipped: a highlight, no colour
    if len(px) >= 6:  # the reflections (brightest) and the pupil's edge, lashes (darkest)
        lin = _linear(px)
        lum = lin @ _LUMA
        lo, hi = np.quantile(lum, [0.15, 0.8])
        out["iris"] = lin[(lum >= lo) & (lum <= hi)]
    px = crop[inside & (d > 1.15 + 0.5 / r)]  # off the iris and its dark limbal ring
    px = px[px.max(1) < 250]
    if len(px) >= 4:  # the eye white: the brighter half (the rest: lashes, lid shadow, iris remnants)
        lin = _linear(px)
        out["white"] = lin[lin @ _LUMA >= np.median(lin @ _LUMA)]
    return out


def read_eye_colors(
    image: UInt8[np.ndarray, "H W 3"],
    points: Float[np.ndarray, "K 2"],
    *,
    shading=None,
    min_openness: float = _MIN_OPENNESS,
) -> EyeColors:
    """The iris and eye-white colours of a portrait, delit.

    Per eye (the subject's right: lid contour :data:`machlib._facemesh.RIGHT_EYE`, iris
    468-472; left: its mirror, 473-477):

    * the eye counts only if it is open: lid gap / eye width (landmarks 159-145 over 33-133 and
      their mirrors) of at least ``min_openness`` (0.17; an open eye seen from the front is
      about 0.3, a downcast or closed one below 0.15);
    * iris: the pixels inside the lid contour (eroded by one pixel: the lid margin and lashes)
      whose distance from the iris centre (468 / 473) is 0.42-0.92 of the iris radius (the
      mean distance of its four rim points): the ring between the pupil and the dark limbal
      ring. At least 30 % of that ring must lie between the lids (else the upper lid covers
      the iris). Clipped pixels (a channel at 255: highlights) are dropped, then the darkest
      15 % (pupil edge, lash shadow) and the brightest 20 % (reflections of the surroundings
      in the cornea); the colour is the mean of the rest in linear RGB;
    * sclera: the pixels inside the lid contour (eroded by one pixel) farther than 1.15 iris
      radii + half a pixel from the iris centre, unclipped, the brighter half of them (the rest
      is lashes, the lids' shadow and what is left of the iris); the colour is their median,
      the white as the photo shows it between the lids. It counts only if its saturation
      (``1 − min/max``) is at most 0.6 times the skin's around the eye (a band of 3 pixels):
      eyes too small or blurred to show their whites give pixels as coloured as the lids.

    Both eyes' pixels are pooled. Dividing by ``shading`` (the light on a forward-facing
    surface, e.g. the texture stage's SH lighting evaluated at the head's forward axis) gives
    albedos that machlib's renderer shows as the photographed colours under the same light,
    as the delit skin is. Results are clipped to ``[0.003, 0.85]``.

    Args:
        image: ``(H, W, 3)`` uint8 sRGB portrait.
        points: ``(478, 2)`` MediaPipe FaceMesh landmarks with irises, pixel coordinates
            (:attr:`machlib.geometry.Landmarks.points`).
        shading: optional ``(3,)`` positive linear RGB shading of the eyes; ``None``: 1 (the
            photo's colours as they are).
        min_openness: the lid gap / eye width below which an eye is not read, in ``[0, 1)``.

    Returns:
        An :class:`EyeColors`; ``iris`` / ``sclera`` are ``None`` (and :attr:`EyeColors.notes`
        say why) where the photo does not show them.

    Raises:
        InputError: a non-uint8 or non-RGB image, landmarks that are not ``(478, 2)`` finite
            pixel coordinates, or a bad option.

    Example:
        >>> import numpy as np
        >>> from machlib.character import read_eye_colors
        >>> t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        >>> eye = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
        >>> pts = np.full((478, 2), 1e3)                    # one eye; the rest off the image
        >>> pts[eye] = np.stack([40 - 24 * np.cos(t), 30 - 10 * np.sin(t)], 1)  # its lids
        >>> pts[468:473] = [(40, 30), (48, 30), (40, 22), (32, 30), (40, 38)]   # iris, radius 8
        >>> yy, xx = np.mgrid[0:60, 0:80] + 0.5
        >>> img = np.full((60, 80, 3), (190, 130, 110), np.uint8)             # skin
        >>> img[((xx - 40) / 24) ** 2 + ((yy - 30) / 10) ** 2 <= 1] = (225, 222, 215)  # white
        >>> img[np.hypot(xx - 40, yy - 30) <= 8] = (60, 100, 150)             # a blue iris
        >>> eyes = read_eye_colors(img, pts)
        >>> eyes.iris_name, eyes.iris.round(3).tolist(), eyes.iris_pixels
        ('blue', [0.045, 0.127, 0.305], (132, 0))
    """
    fn = "read_eye_colors"
    image, pts = check_face_image(fn, image, points, name="points")
    if not 0.0 <= float(min_openness) < 1.0:
        raise InputError(f"{fn}: min_openness must be in [0, 1), got {min_openness!r}")
    s = np.ones(3)
    if shading is not None:
        s = np.asarray(shading, np.float64)
        if s.shape != (3,) or not np.isfinite(s).all() or s.min() <= 0:
            raise InputError(f"{fn}: shading must be 3 positive finite numbers, got {shading!r}")
    openness = _openness(pts)
    irises, whites, n_iris, n_white, notes = [], [], [], [], []
    for side, eye, iris, o in (("right", RIGHT_EYE, RIGHT_IRIS, openness[0]),
                               ("left", LEFT_EYE, LEFT_IRIS, openness[1])):
        if o < min_openness or o > _MAX_OPENNESS:
            why = "closed or looking down" if o < min_openness else "not followed by its landmarks"
            notes.append(f"{side} eye {why} (opening {o:.2f})")
            n_iris.append(0)
            n_white.append(0)
            continue
        m = _eye_pixels(image, pts, eye, iris)
        skin = m["skin"]
        skin_lum = float(np.median(skin @ _LUMA)) if len(skin) else 0.0
        skin_sat = float(np.median(_saturation(skin))) if len(skin) else 0.0
        ring = m["iris"]
        if m["visible"] < _MIN_VISIBLE or len(ring) < 6:
            notes.append(f"{side} iris mostly hidden ({m['visible']:.0%} of its ring visible)")
            ring = np.zeros((0, 3))
        elif float(np.mean(ring @ _LUMA)) > _IRIS_VS_SKIN * skin_lum:
            notes.append(f"{side} iris not darker than the skin around the eye (blurred, small or turned away)")
            ring = np.zeros((0, 3))
        irises.append(ring)
        n_iris.append(len(ring))
        white = m["white"]
        if len(white) < 2:
            notes.append(f"{side} eye white not seen")
            white = np.zeros((0, 3))
        elif float(_saturation(np.median(white, 0)[None])[0]) > _WHITE_VS_SKIN * skin_sat:
            notes.append(f"{side} eye white as coloured as the skin around it (blurred, small or in shadow)")
            white = np.zeros((0, 3))
        whites.append(white)
        n_white.append(len(white))
    lo, hi = _ALBEDO
    iris_rgb = sclera_rgb = name = None
    if sum(n_iris):
        iris_rgb = np.clip(np.concatenate(irises).mean(0) / s, lo, hi)
        name = iris_color_name(iris_rgb)
    if sum(n_white) >= 4:
        sclera_rgb = np.clip(np.median(np.concatenate(whites), 0) / s, lo, hi)
    return EyeColors(iris_rgb, sclera_rgb, name, tuple(round(o, 4) for o in openness), tuple(n_iris),
                     tuple(n_white), tuple(notes))
