"""Reading a character's attributes from the photo (``machlib make --image`` without a prompt).

What the photo shows is read with measurements that say what they saw; what it cannot show
reliably without a trained model is left unset:

* **glasses**, their style and frame colour: :func:`machlib.texture.detect_glasses` (the texture
  stage runs it and removes the frames from the albedo); the colour is named by the nearest frame
  colour of :data:`machlib.assets.GLASSES_COLORS` in CIELAB;
* **beard** and **moustache**: :func:`detect_facial_hair`, lower-face luminance and texture
  against the cheeks;
* **skin tone**: the ITA of the seen, delighted face albedo (``TextureOutput.metrics``), in the
  six categories of :data:`machlib.texture.ITA_CATEGORIES`;
* **gender** and **age group**: only from a configured :class:`AttributeClassifier` (e.g.
  :class:`machlib.interop.ClipAttributeClassifier`, zero-shot CLIP from a local folder); without
  one they stay unset and a notice says so;
* **hair** length, colour and style: the hair stage's reading (:func:`read_attributes`'s
  ``hair`` argument), where the hair stage provides one;
* **iris colour** and the eye whites' colour: :func:`~machlib.character.read_eye_colors` (delit
  with the texture stage's light when it is given); eyes closed or looking down leave the iris
  colour unset (the stated default is used) and a notice says so.

A prompt wins wherever it says something (:func:`merge_attributes`).
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Protocol, runtime_checkable

import numpy as np

from .._errors import InputError
from .._scene import _sh_shading_np
from .._validate import check_face_image
from ..assets import GLASSES_COLORS
from ..text import VOCABULARY, FaceAttributes
from ..texture import ITA_CATEGORIES, GlassesDetection, detect_glasses
from ._color_names import _lab, _nearest_name
from ._eye_color import SCLERA_DEFAULT, read_eye_colors

__all__ = [
    "PhotoReading", "AttributeClassifier", "detect_facial_hair", "skin_tone_from_ita", "glasses_color_name",
    "glasses_lens", "read_attributes", "merge_attributes",
]

_UPPER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 327, 326, 2, 97, 98)
_CHIN = (91, 181, 84, 17, 314, 405, 321, 378, 400, 377, 152, 148, 176, 149)
_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
_RIGHT_JAW = (61, 146, 91, 149, 150, 136, 172, 58, 132, 207, 206, 165)
_LEFT_JAW = (291, 375, 321, 378, 379, 365, 397, 288, 361, 427, 426, 391)
_CHEEKS = (50, 280, 101, 330)
_FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
              152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


@runtime_checkable
class AttributeClassifier(Protocol):
    """Anything that reads ``gender`` and ``age_group`` from a face image.

    ``classify(face)`` takes an ``(H, W, 3)`` uint8 crop of the face and returns
    ``{field: (value, probability)}`` for the fields it reads, values from
    :data:`machlib.text.VOCABULARY`.
    """

    def classify(self, face: np.ndarray) -> dict: ...


class PhotoReading(NamedTuple):
    """What :func:`read_attributes` read from a photo.

    Attributes:
        attributes: the :class:`~machlib.text.FaceAttributes` read (unset fields are ``None``).
        sources: field → ``"photo"`` (measured), ``"classifier"`` (a configured model) or
            ``"unset"``, for every field the reading covers.
        evidence: field → the numbers behind the value.
        notices: messages for the user (e.g. no classifier configured).
    """

    attributes: FaceAttributes
    sources: dict
    evidence: dict
    notices: list


def _poly(shape, pts: np.ndarray) -> np.ndarray:
    from skimage.draw import polygon

    m = np.zeros(shape, bool)
    rr, cc = polygon(pts[:, 1] - 0.5, pts[:, 0] - 0.5, shape=shape)
    m[rr, cc] = True
    return m


def detect_facial_hair(image: np.ndarray, landmarks) -> dict:
    """Beard and moustache from the lower face's darkness and texture against the cheeks.

    Three regions are drawn from the landmarks: the upper lip (between the nose and the lip), the
    chin (below the lower lip) and the two jaw sides (mouth corner to jaw line); the reference is
    four discs on the cheeks (radius 0.12 iris distances). For each region, ``dark`` is the
    relative CIELAB lightness drop of its median against the cheeks' (``(L_c − L_r) / L_c``) and
    ``texture`` the ratio of its fine-detail energy (standard deviation of the lightness minus a
    Gaussian blur of σ = 0.03 iris distances) to the cheeks'. Hair makes a region darker *and*
    rougher; a shadow makes it darker only.

    Decision: the chin has hair when ``dark ≥ 0.3`` (and ``texture ≥ 0.8``: not smoother than the
    cheeks), a jaw side when ``dark ≥ 0.2``; chin and both visible jaw sides → ``beard="full"``,
    the chin only → ``"goatee"``, else ``"none"``. The upper lip (under the nose's shadow) →
    ``moustache="thick"`` from ``dark ≥ 0.45``, ``"thin"`` from ``0.35``, else ``"none"``.
    The thresholds leave the eight offline portraits (none with facial hair, several in strong
    light from above) clean-shaven; stubble is too close to shading to tell from one photo and is
    not reported.

    Args:
        image: ``(H, W, 3)`` uint8 portrait.
        landmarks: its :class:`~machlib.geometry.Landmarks` (or ``(478, 2)`` points).

    Returns:
        ``{"beard": str, "moustache": str, "evidence": {region: {"dark", "texture"}}}``.

    Raises:
        InputError: a bad image or landmarks, or a face too small to measure.

    Example:
        >>> from machlib import default_portrait
        >>> from machlib.geometry import MediaPipeDetector
        >>> from machlib.character import detect_facial_hair
        >>> photo = default_portrait()
        >>> r = detect_facial_hair(photo, MediaPipeDetector()(photo))
        >>> r["beard"], r["moustache"]
        ('none', 'none')
    """
    from scipy import ndimage

    fn = "detect_facial_hair"
    img, pts = check_face_image(fn, image, landmarks)
    h, w = img.shape[:2]
    d = float(np.linalg.norm(pts[473] - pts[468]))
    if d < 8:
        raise InputError(f"{fn}: the face is too small ({d:.1f} px between the irises)")
    L = _lab(img.astype(np.float32) / 255.0)[..., 0]
    fine = L - ndimage.gaussian_filter(L, max(0.8, 0.03 * d))
    lips = ndimage.binary_dilation(_poly((h, w), pts[list(_LIPS)]), iterations=max(1, int(0.03 * d)))
    # inside the face, away from its outline (background, hair and the jaw's edge are not skin)
    face = ndimage.binary_erosion(_poly((h, w), pts[list(_FACE_OVAL)]), iterations=max(1, int(0.08 * d)))
    regions = {
        "upper_lip": _poly((h, w), pts[list(_UPPER_LIP)]) & ~lips & face,
        "chin": _poly((h, w), pts[list(_CHIN)]) & ~lips & face,
        "jaw_right": _poly((h, w), pts[list(_RIGHT_JAW)]) & ~lips & face,
        "jaw_left": _poly((h, w), pts[list(_LEFT_JAW)]) & ~lips & face,
    }
    yy, xx = np.mgrid[0:h, 0:w]
    cheeks = np.zeros((h, w), bool)
    for i in _CHEEKS:
        cheeks |= (xx + 0.5 - pts[i, 0]) ** 2 + (yy + 0.5 - pts[i, 1]) ** 2 <= (0.12 * d) ** 2
    if cheeks.sum() < 10:
        raise InputError(f"{fn}: the cheeks are not in the image")
    lc = float(np.median(L[cheeks]))
    tc = max(float(np.std(fine[cheeks])), 0.3)
    ev = {}
    for name, m in regions.items():
        if m.sum() < 10:
            ev[name] = None
            continue
        ev[name] = {"dark": round((lc - float(np.median(L[m]))) / max(lc, 1.0), 4),
                    "texture": round(float(np.std(fine[m])) / tc, 4), "pixels": int(m.sum())}

    def hair(e, dark):
        return e is not None and e["dark"] >= dark and e["texture"] >= 0.8

    jaws = [e for e in (ev["jaw_right"], ev["jaw_left"]) if e is not None and e["pixels"] >= 0.02 * d * d]
    if hair(ev["chin"], 0.3) and jaws and all(hair(e, 0.2) for e in jaws):
        beard = "full"
    elif hair(ev["chin"], 0.3):
        beard = "goatee"
    else:
        beard = "none"
    up = ev["upper_lip"]
    moustache = "thick" if hair(up, 0.45) else "thin" if hair(up, 0.35) else "none"
    return {"beard": beard, "moustache": moustache, "evidence": ev}


def skin_tone_from_ita(ita: float) -> str:
    """The ``skin_tone`` word of an ITA angle in degrees (:data:`machlib.texture.ITA_CATEGORIES`).

    Example:
        >>> from machlib.character import skin_tone_from_ita
        >>> skin_tone_from_ita(60.0), skin_tone_from_ita(35.0), skin_tone_from_ita(-45.0)
        ('very light', 'intermediate', 'dark')
    """
    a = float(ita)
    if not np.isfinite(a):
        raise InputError(f"skin_tone_from_ita: ita must be finite, got {ita!r}")
    for name, (lo, hi) in ITA_CATEGORIES.items():
        if lo <= a < hi or (name == "very_light" and a >= lo) or (name == "dark" and a < hi):
            word = name.replace("_", " ")
            if word not in VOCABULARY["skin_tone"]:
                raise AssertionError(word)  # the two vocabularies are kept in step
            return word
    raise AssertionError(a)  # the categories cover every angle


#: What :func:`glasses_lens` returns at most and at least: ``(drop, height)`` in pupil distances.
_LENS_DROP = (-0.1, 0.3)
_LENS_HEIGHT = (0.4, 0.8)


def glasses_lens(detection) -> Optional[tuple[float, float]]:
    """Where the frames seen in a photo sit on the face: ``(drop, height)`` for
    :func:`~machlib.assets.make_glasses` (``lens=``), in units of the distance between the pupils.

    ``drop`` is how far the middle of the frame lies below the pupils and ``height`` how tall the
    frame is, both from the rim contours of :func:`~machlib.texture.detect_glasses`
    (``evidence["rim_shape"]``: each contour's ``top`` and ``bottom`` down the face from the iris
    line): the highest top and the lowest bottom of the rims whose lower half lies on the face
    (``evidence["rims_valid"]`` above 0.6; both when neither does), so a lower rim that one eye's
    contour missed (it followed a lid crease instead) is taken from the other eye. A contour runs
    along one edge of a rim or the other, so the height adds one frame thickness
    (``evidence["frame_thickness"]``, half on each side). Clipped to
    ``[-0.1, 0.3]`` and ``[0.4, 0.8]``: large 1960s frames with the pupils in the upper third
    of the lens are about ``(0.15, 0.65)``; small modern ones ``(0.05, 0.45)``.

    Args:
        detection: a :class:`~machlib.texture.GlassesDetection`.

    Returns:
        ``(drop, height)``, or ``None`` when no glasses were found or their contours were not
        measured (a parsing network's mask, :func:`~machlib.texture.detect_glasses` ``parsed=``).

    Example:
        >>> import numpy as np
        >>> from machlib.character import glasses_lens
        >>> from machlib.texture import GlassesDetection
        >>> rims = [{"top": -0.15, "bottom": 0.29}, {"top": -0.18, "bottom": 0.48}]
        >>> found = GlassesDetection(True, 0.9, np.zeros((4, 4), np.float32), "cat-eye", (0.2, 0.1, 0.05),
        ...                          {"rim_shape": rims, "rims_valid": [1.0, 1.0]}, "image")
        >>> tuple(round(x, 3) for x in glasses_lens(found))
        (0.15, 0.66)
    """
    if not isinstance(detection, GlassesDetection):
        raise InputError(f"glasses_lens: detection must be a machlib.texture.GlassesDetection, "
                         f"got {type(detection).__name__}")
    shapes = detection.evidence.get("rim_shape") or []
    if not detection.present or not shapes or not all("top" in r and "bottom" in r for r in shapes):
        return None
    valid = detection.evidence.get("rims_valid") or [1.0] * len(shapes)
    use = [r for r, ok in zip(shapes, valid) if ok > 0.6] or list(shapes)
    top = min(float(r["top"]) for r in use)
    bottom = max(float(r["bottom"]) for r in use)
    if not (np.isfinite(top) and np.isfinite(bottom)) or bottom <= top:
        return None
    drop = float(np.clip(0.5 * (top + bottom), *_LENS_DROP))
    thickness = float(detection.evidence.get("frame_thickness", 0.0))
    height = float(np.clip(bottom - top + thickness, *_LENS_HEIGHT))
    return drop, height


def glasses_color_name(rgb) -> str:
    """The :data:`machlib.assets.GLASSES_COLORS` name nearest to an sRGB frame colour (CIELAB, with
    the lightness difference weighted by 0.3; ``clear`` is never chosen).

    Args:
        rgb: ``(3,)`` sRGB in ``[0, 1]``.

    Example:
        >>> from machlib.character import glasses_color_name
        >>> glasses_color_name((0.05, 0.05, 0.05)), glasses_color_name((0.35, 0.18, 0.08))
        ('black', 'brown')
    """
    names = [n for n in GLASSES_COLORS if n != "clear"]  # a frame seen in a photo has a colour
    # lightness counts less than hue: a frame's brightness in a photo depends on the light
    return _nearest_name("glasses_color_name", rgb, names, [GLASSES_COLORS[n][0] for n in names],
                         lightness_weight=0.3)


def _face_crop(image: np.ndarray, landmarks, *, margin: float = 0.35) -> np.ndarray:
    pts = np.asarray(getattr(landmarks, "points", landmarks), np.float64)
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    s = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    h, w = image.shape[:2]
    a, b = int(max(0, cx - s / 2)), int(min(w, cx + s / 2))
    c, d = int(max(0, cy - s / 2)), int(min(h, cy + s / 2))
    return np.ascontiguousarray(image[c:d, a:b])


def read_attributes(
    image: np.ndarray,
    landmarks,
    *,
    glasses=None,
    ita: Optional[float] = None,
    classifier=None,
    hair: Optional[dict] = None,
    lighting=None,
) -> PhotoReading:
    """Read the attributes a photo shows (see the module documentation).

    Args:
        image: ``(H, W, 3)`` uint8 portrait.
        landmarks: its :class:`~machlib.geometry.Landmarks`.
        glasses: its :class:`~machlib.texture.GlassesDetection` (the texture stage's); ``None``:
            detected here.
        ita: the skin's ITA in degrees (``TextureOutput.metrics["ita_degrees"]``, of the seen,
            delighted face, white-balanced by the eye whites and teeth); ``None``: skin tone
            unset.
        classifier: an :class:`AttributeClassifier` for gender and age group; ``None``: unset.
        hair: the hair stage's reading, ``{field: value}`` for ``hair_length``, ``hair_color``,
            ``hairstyle``, ``bangs``, ``hair_texture`` (values outside the vocabulary are
            ignored); ``None``: unset.
        lighting: optional ``(9, 3)`` SH radiance coefficients of the photo's light in head
            space (``TextureOutput.lighting``): the eye colours are delit with its shading of a
            forward-facing surface (:func:`~machlib.character.read_eye_colors`); ``None``: taken
            as they are. The iris's colour word is ``iris_color``; the evidence
            (``attribute_evidence["iris_color"]``) holds both albedos (linear RGB, ``iris_rgb``
            and ``sclera_rgb``, ``None`` where not read), the pixel counts, the eyes' openness
            and the notes.

    Returns:
        A :class:`PhotoReading`.

    Raises:
        InputError: a bad image or landmarks, or a classifier that is not one or answers outside
            the vocabulary.
    """
    values: dict = {}
    sources: dict = {}
    evidence: dict = {}
    notices: list = []
    g = detect_glasses(image, landmarks) if glasses is None else glasses
    evidence["glasses"] = {"score": round(float(g.score), 4), "source": g.source, **g.evidence}
    if g.present:
        values["glasses"] = g.style or "present"
        if g.color is not None:
            values["glasses_color"] = glasses_color_name(g.color)
            evidence["glasses_color"] = {"srgb": [round(float(c), 4) for c in g.color]}
    else:
        values["glasses"] = "none"
    sources["glasses"] = "photo"
    sources["glasses_color"] = "photo" if "glasses_color" in values else "unset"

    fh = detect_facial_hair(image, landmarks)
    values["beard"], values["moustache"] = fh["beard"], fh["moustache"]
    sources["beard"] = sources["moustache"] = "photo"
    evidence["beard"] = evidence["moustache"] = fh["evidence"]

    if ita is not None and np.isfinite(ita):
        values["skin_tone"] = skin_tone_from_ita(ita)
        sources["skin_tone"] = "photo"
        evidence["skin_tone"] = {"ita_degrees": round(float(ita), 3)}
    else:
        sources["skin_tone"] = "unset"

    if classifier is None:
        sources["gender"] = sources["age_group"] = "unset"
        notices.append("gender and age group are not read from the photo: no attribute classifier is configured "
                       "(make_character(classifier=...), `machlib make --classifier DIR`: a local CLIP folder)")
    else:
        if not isinstance(classifier, AttributeClassifier):
            raise InputError(f"read_attributes: classifier must have a classify(face) method, "
                             f"got {type(classifier).__name__}")
        answers = classifier.classify(_face_crop(np.asarray(image), landmarks))
        for field in ("gender", "age_group"):
            if field not in answers:
                sources[field] = "unset"
                continue
            value, prob = answers[field]
            if value not in VOCABULARY[field]:
                raise InputError(f"read_attributes: the classifier answered {value!r} for {field}; "
                                 f"known: {list(VOCABULARY[field])}")
            values[field] = value
            sources[field] = "classifier"
            evidence[field] = {"probability": round(float(prob), 4)}
    shading = None
    if lighting is not None:
        sh = np.asarray(lighting, np.float64)
        if sh.shape != (9, 3) or not np.isfinite(sh).all():
            raise InputError(f"read_attributes: lighting must be finite (9, 3) SH coefficients, got {sh.shape}")
        shading = np.maximum(_sh_shading_np(np.array([[0.0, 0.0, 1.0]]), sh)[0], 1e-3)
    eyes = read_eye_colors(image, np.asarray(getattr(landmarks, "points", landmarks), np.float64), shading=shading)
    evidence["iris_color"] = {
        "iris_rgb": None if eyes.iris is None else [round(float(c), 4) for c in eyes.iris],
        "sclera_rgb": None if eyes.sclera is None else [round(float(c), 4) for c in eyes.sclera],
        "iris_pixels": list(eyes.iris_pixels), "sclera_pixels": list(eyes.sclera_pixels),
        "openness": list(eyes.openness), "notes": list(eyes.notes),
        "shading": None if shading is None else [round(float(c), 4) for c in shading]}
    if eyes.iris_name is not None:
        values["iris_color"] = eyes.iris_name
        sources["iris_color"] = "photo"
    else:
        sources["iris_color"] = "unset"
        notices.append("the iris colour is not read from the photo (" + "; ".join(eyes.notes)
                       + "): the default is used unless the prompt names one")
    if eyes.sclera is None:
        evidence["iris_color"]["sclera_default"] = [float(c) for c in SCLERA_DEFAULT]

    for field in ("hair_length", "hair_color", "hairstyle", "bangs", "hair_texture"):
        v = (hair or {}).get(field)
        if v is not None and v in VOCABULARY[field]:
            values[field] = v
            sources[field] = "photo"
        else:
            sources[field] = "unset"
    return PhotoReading(FaceAttributes(**values), sources, evidence, notices)


def merge_attributes(prompt: FaceAttributes, reading: PhotoReading) -> tuple[FaceAttributes, dict]:
    """The prompt's attributes completed by the photo's: a field the prompt sets wins.

    Returns:
        ``(attributes, sources)``: the merged :class:`~machlib.text.FaceAttributes` and, per field
        that is set or was read, ``"prompt"``, ``"photo"``, ``"classifier"`` or ``"unset"``.

    Example:
        >>> from machlib.text import FaceAttributes
        >>> from machlib.character import PhotoReading, merge_attributes
        >>> read = PhotoReading(FaceAttributes(glasses="round", beard="none"),
        ...                     {"glasses": "photo", "beard": "photo"}, {}, [])
        >>> attrs, src = merge_attributes(FaceAttributes(glasses="aviator"), read)
        >>> attrs.glasses, attrs.beard, src["glasses"], src["beard"]
        ('aviator', 'none', 'prompt', 'photo')
    """
    merged = reading.attributes.to_dict()
    sources = dict(reading.sources)
    for field, value in prompt.to_dict().items():
        merged[field] = value
        sources[field] = "prompt"
    return FaceAttributes(**merged), sources
