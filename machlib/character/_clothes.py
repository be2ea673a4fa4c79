"""The colour of the clothes a portrait shows (:func:`read_garment_color`), for the character's bust.

A photo of a woman in a navy uniform should not give a character in a white t-shirt. Below the
chin, past the neck, a portrait usually shows the top of the clothes; their colour is the robust
median of the pixels there that are the person (MediaPipe's selfie segmentation, when given), not
hair and not skin (CIELAB distance to the face's own skin colour), named by the nearest
:data:`~machlib.assets.GARMENT_COLORS` entry. A photo cropped at the chin, or one whose torso is
covered (hands, objects) so that too few pixels remain, gives no reading, and the garment keeps its
default colour. Host-side numpy: a one-shot step.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from .._errors import InputError
from ._color_names import _lab, _nearest_name

__all__ = ["GarmentReading", "garment_color_name", "read_garment_color"]

#: fewest clothing pixels, as a share of the face's area (width × height), for a reading
MIN_SHARE = 0.15
#: how far (CIELAB ΔE) a pixel must be from the face's skin colour to count as clothes
SKIN_DELTA_E = 18.0


class GarmentReading(NamedTuple):
    """What :func:`read_garment_color` found.

    Attributes:
        color: a :data:`~machlib.assets.GARMENT_COLORS` name, or None (no reading).
        srgb: ``(3,)`` median sRGB in ``[0, 1]`` of the clothing pixels (None without a reading).
        pixels: how many pixels were read.
        note: why there is no reading (empty when there is one).
    """

    color: Optional[str]
    srgb: Optional[tuple]
    pixels: int
    note: str


def garment_color_name(rgb) -> str:
    """The :data:`~machlib.assets.GARMENT_COLORS` name nearest to an sRGB colour (CIELAB; the
    lightness difference weighted by 0.5, since a photo's light shifts it most; ``grey`` is spelled
    ``gray``).

    Args:
        rgb: ``(3,)`` sRGB in ``[0, 1]``.

    Example:
        >>> from machlib.character import garment_color_name
        >>> garment_color_name((0.09, 0.11, 0.25)), garment_color_name((0.93, 0.45, 0.16))
        ('navy', 'orange')
    """
    from ..assets import GARMENT_COLORS

    names = [n for n in GARMENT_COLORS if n != "grey"]
    return _nearest_name("garment_color_name", rgb, names, [GARMENT_COLORS[n] for n in names],
                         lightness_weight=0.5)


def read_garment_color(image: np.ndarray, landmarks, *, person=None, hair=None) -> GarmentReading:
    """The colour of the clothes below the face in a portrait (see the module docstring).

    The region read is a box below the chin (MediaPipe landmark 152): from 0.5 to 1.3 face heights
    (brow-to-chin, landmarks 10 to 152) below it, 1.2 face widths (landmarks 234 to 454) to each
    side of the chin. Pixels count when they are the person (``person > 0.5``), not hair
    (``hair < 0.3``) and more than :data:`SKIN_DELTA_E` from the median colour of the cheeks.

    Args:
        image: ``(H, W, 3)`` uint8 RGB portrait.
        landmarks: the face's :class:`~machlib.geometry.Landmarks` (or ``(478, 2)`` pixel points).
        person: optional ``(H, W)`` person probability (e.g. :class:`~machlib.hair.HairMask` ``.person``).
        hair: optional ``(H, W)`` hair probability (``HairMask.mask``).

    Returns:
        A :class:`GarmentReading`.

    Raises:
        InputError: not a uint8 RGB image, landmarks of the wrong shape, masks of another size.

    Example:
        >>> import numpy as np
        >>> from machlib.character import read_garment_color
        >>> from machlib.geometry import default_template
        >>> pts = default_template().landmark_uv * 200 + 100  # a face 200 px tall at the top
        >>> img = np.full((700, 400, 3), 200, np.uint8)
        >>> img[380:] = (20, 28, 64)  # navy below the neck
        >>> read_garment_color(img, pts).color
        'navy'
    """
    fn = "read_garment_color"
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{fn}: image must be a (H, W, 3) uint8 RGB array")
    pts = np.asarray(getattr(landmarks, "points", landmarks), np.float64)
    if pts.ndim != 2 or pts.shape[0] < 468 or pts.shape[1] != 2 or not np.isfinite(pts).all():
        raise InputError(f"{fn}: landmarks must be (478, 2) finite pixel points, got {pts.shape}")
    H, W = image.shape[:2]
    for name, m in (("person", person), ("hair", hair)):
        if m is not None and np.shape(m) != (H, W):
            raise InputError(f"{fn}: {name} must have shape {(H, W)}, got {np.shape(m)}")
    chin = pts[152]
    face_h = float(np.linalg.norm(pts[10] - chin))
    face_w = float(np.linalg.norm(pts[234] - pts[454]))
    y0, y1 = int(round(chin[1] + 0.5 * face_h)), int(round(chin[1] + 1.3 * face_h))
    x0, x1 = int(round(chin[0] - 1.2 * face_w)), int(round(chin[0] + 1.2 * face_w))
    y0, y1, x0, x1 = max(y0, 0), min(y1, H), max(x0, 0), min(x1, W)
    need = int(MIN_SHARE * face_w * face_h)
    if y1 <= y0 or x1 <= x0:
        return GarmentReading(None, None, 0, "the photo ends above the clothes")
    box = (slice(y0, y1), slice(x0, x1))
    rgb = image[box].reshape(-1, 3).astype(np.float64) / 255.0
    keep = np.ones(len(rgb), bool)
    if person is not None:
        keep &= np.asarray(person, np.float64)[box].reshape(-1) > 0.5
    if hair is not None:
        keep &= np.asarray(hair, np.float64)[box].reshape(-1) < 0.3
    # the face's skin: the cheeks between the eyes' lower lids and the mouth corners
    from ._read import _poly

    cheeks = _poly((H, W), pts[[234, 116, 205, 57, 287, 425, 345, 454]])
    skin = _lab(np.median(image[cheeks].astype(np.float64) / 255.0, axis=0)) if cheeks.any() else None
    lab = _lab(rgb)
    if skin is not None:
        keep &= np.linalg.norm(lab - skin, axis=1) > SKIN_DELTA_E
    if keep.sum() < need:
        return GarmentReading(None, None, int(keep.sum()),
                              f"too few clothing pixels below the face ({int(keep.sum())} < {need})")
    # the lit half: folds and the side away from the light darken cloth more than its colour does
    worn = rgb[keep]
    lightness = lab[keep, 0]
    med = np.median(worn[lightness >= np.median(lightness)], axis=0)
    return GarmentReading(garment_color_name(med), tuple(round(float(c), 4) for c in med), int(keep.sum()), "")
