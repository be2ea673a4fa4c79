"""Visual clues (Make-A-Character §2.2): facial attributes → a frontal, neutral face layout drawn as
an OpenPose-style face keypoint image and a canny-style edge map, the two control images that
guide ControlNet towards a reference portrait with the requested facial features.

The layout is procedural and deterministic (no learned model, no randomness): each attribute value
sets a few proportions of a template face (contour half-widths, eye opening and tilt, brow arch
and thickness, nostril width, lip heights, ...) and the layout is built from smooth splines
through those proportions.

Coordinates are pixels ``(x, y)``, ``x`` to the right, ``y`` down, row 0 at the top; pixel
``(i, j)`` is centred at ``(j + 0.5, i + 0.5)`` (see :doc:`/conventions`). "Right" and "left" in
curve names are the *subject's* sides, as in the 68-point (dlib / iBUG 300-W) layout that
OpenPose's face model uses: the subject's right eye is on the image's left.
"""

from __future__ import annotations

import enum
import math
from typing import NamedTuple

import numpy as np
from jaxtyping import Float32, UInt8

from .._errors import InputError

__all__ = [
    "FaceLayout",
    "face_layout",
    "keypoint_image",
    "edge_image",
    "visual_clues",
    "FACE_ATTRIBUTE_VALUES",
    "N_FACE_KEYPOINTS",
]

#: Number of face keypoints in OpenPose's face layout: 17 jaw, 5 + 5 brows, 4 + 5 nose,
#: 6 + 6 eyes, 12 + 8 lips and 2 pupils (68 = subject's right pupil, 69 = left).
N_FACE_KEYPOINTS = 70

_FACE = {  # forehead, cheek, jaw, chin half-widths; jaw-angle height; face height scale
    "oval": dict(fw=0.300, cw=0.350, jw=0.265, chw=0.095, jy=0.78, hs=1.00),
    "round": dict(fw=0.340, cw=0.395, jw=0.340, chw=0.150, jy=0.76, hs=0.90),
    "v-shaped": dict(fw=0.320, cw=0.345, jw=0.225, chw=0.058, jy=0.73, hs=1.00),
    "square": dict(fw=0.345, cw=0.365, jw=0.345, chw=0.165, jy=0.84, hs=0.96),
    "long": dict(fw=0.270, cw=0.295, jw=0.245, chw=0.095, jy=0.80, hs=1.10),
    "heart": dict(fw=0.365, cw=0.350, jw=0.235, chw=0.055, jy=0.75, hs=1.00),
    "diamond": dict(fw=0.250, cw=0.375, jw=0.235, chw=0.065, jy=0.76, hs=1.00),
}
_EYE = {  # half-width, upper/lower opening, upper-lid peak (0 inner … 1 outer), tilt, crease
    None: dict(w=0.072, up=0.032, lo=0.020, peak=0.42, tilt=0.004, crease="double"),
    "almond": dict(w=0.074, up=0.030, lo=0.017, peak=0.40, tilt=0.008, crease="double"),
    "round": dict(w=0.067, up=0.045, lo=0.033, peak=0.50, tilt=0.000, crease="double"),
    "narrow": dict(w=0.075, up=0.019, lo=0.011, peak=0.45, tilt=0.004, crease="double"),
    "upturned": dict(w=0.072, up=0.030, lo=0.018, peak=0.42, tilt=0.026, crease="double"),
    "downturned": dict(w=0.072, up=0.030, lo=0.020, peak=0.36, tilt=-0.020, crease="double"),
    "monolid": dict(w=0.072, up=0.022, lo=0.016, peak=0.50, tilt=0.010, crease="none"),
    "hooded": dict(w=0.072, up=0.024, lo=0.018, peak=0.40, tilt=0.000, crease="hooded"),
    "double-lid": dict(w=0.073, up=0.034, lo=0.020, peak=0.42, tilt=0.006, crease="double"),
}
_BROW = {  # half-length, arch height, arch peak, rise outward, thickness, taper, jagged
    None: dict(len=0.165, arch=0.016, peak=0.62, rise=0.004, th=0.016, taper="tail", jag=0.0),
    "willow-leaf": dict(len=0.175, arch=0.016, peak=0.55, rise=0.002, th=0.012, taper="both", jag=0.0),
    "sword-like": dict(len=0.170, arch=0.006, peak=0.85, rise=0.026, th=0.020, taper="tail", jag=0.0),
    "straight": dict(len=0.165, arch=0.001, peak=0.60, rise=-0.002, th=0.017, taper="tail", jag=0.0),
    "arched": dict(len=0.165, arch=0.034, peak=0.64, rise=0.000, th=0.015, taper="tail", jag=0.0),
    "thick": dict(len=0.168, arch=0.012, peak=0.62, rise=0.004, th=0.028, taper="tail", jag=0.0),
    "thin": dict(len=0.160, arch=0.016, peak=0.62, rise=0.004, th=0.008, taper="tail", jag=0.0),
    "bushy": dict(len=0.178, arch=0.012, peak=0.60, rise=0.002, th=0.032, taper="blunt", jag=0.004),
}
_NOSE = {  # subnasale height, alar half-width, tip radius, bridge half-width, hump, droop, nostrils
    None: dict(base=0.660, nw=0.064, tip=0.022, br=0.026, hump=0.0, droop=0.004, nos=1.0),
    "small": dict(base=0.640, nw=0.053, tip=0.017, br=0.021, hump=0.0, droop=0.003, nos=0.8),
    "large": dict(base=0.690, nw=0.080, tip=0.030, br=0.034, hump=0.0, droop=0.006, nos=1.2),
    "wide": dict(base=0.660, nw=0.088, tip=0.026, br=0.032, hump=0.0, droop=0.004, nos=1.1),
    "narrow": dict(base=0.665, nw=0.048, tip=0.017, br=0.018, hump=0.0, droop=0.004, nos=0.8),
    "straight": dict(base=0.665, nw=0.062, tip=0.020, br=0.024, hump=0.0, droop=0.003, nos=0.9),
    "aquiline": dict(base=0.675, nw=0.064, tip=0.020, br=0.026, hump=0.012, droop=0.016, nos=0.7),
    "button": dict(base=0.640, nw=0.058, tip=0.027, br=0.020, hump=0.0, droop=-0.004, nos=1.4),
    "upturned": dict(base=0.650, nw=0.062, tip=0.022, br=0.022, hump=0.0, droop=-0.008, nos=1.5),
    "high-bridged": dict(base=0.672, nw=0.058, tip=0.019, br=0.017, hump=0.004, droop=0.006, nos=0.7),
}
_MOUTH = {  # half-width, upper/lower lip heights, cupid's bow depth
    None: dict(mw=0.105, up=0.025, lo=0.032, bow=0.30),
    "thin": dict(mw=0.105, up=0.012, lo=0.016, bow=0.20),
    "full": dict(mw=0.110, up=0.040, lo=0.052, bow=0.35),
    "wide": dict(mw=0.138, up=0.025, lo=0.031, bow=0.30),
    "small": dict(mw=0.080, up=0.022, lo=0.028, bow=0.30),
    "bow-shaped": dict(mw=0.098, up=0.032, lo=0.034, bow=0.60),
}
_AGES = ("child", "teen", "young-adult", "adult", "middle-aged", "elderly")
_WRINKLES = ("none", "light", "moderate", "heavy")
_GENDERS = ("male", "female", "neutral")
_ALIASES = {
    "v": "v-shaped", "vshape": "v-shaped", "v-shape": "v-shaped", "oblong": "long",
    "willow": "willow-leaf", "willowleaf": "willow-leaf", "sword": "sword-like", "swordlike": "sword-like",
    "upturn": "upturned", "double-eyelid": "double-lid", "doublelid": "double-lid", "downturn": "downturned", "mono-lid": "monolid", "single-eyelid": "monolid",
    "roman": "aquiline", "hooked": "aquiline", "snub": "button", "high-bridge": "high-bridged",
    "bow": "bow-shaped", "cupid's-bow": "bow-shaped",
    "kid": "child", "teenager": "teen", "adolescent": "teen", "young": "young-adult",
    "middle-age": "middle-aged", "old": "elderly", "senior": "elderly",
    "man": "male", "boy": "male", "masculine": "male", "woman": "female", "girl": "female",
    "feminine": "female", "androgynous": "neutral", "unspecified": "neutral",
}

#: Valid values of each :func:`face_layout` argument (``None`` is always allowed and means the
#: template's default). Matching ignores case and treats ``_`` and spaces as ``-``; a few
#: synonyms (``"oblong"`` → ``"long"``, ``"roman"`` → ``"aquiline"``, ``"woman"`` →
#: ``"female"``, ...) are accepted too.
FACE_ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "face_shape": tuple(_FACE),
    "eye_shape": tuple(k for k in _EYE if k),
    "eyebrow": tuple(k for k in _BROW if k),
    "nose": tuple(k for k in _NOSE if k),
    "mouth": tuple(k for k in _MOUTH if k),
    "age_group": _AGES,
    "gender": _GENDERS,
    "wrinkles": _WRINKLES,
}

# attribute-dictionary keys that visual_clues accepts for each face_layout argument
_KEYS = {
    "face_shape": ("face_shape", "face", "face_type"),
    "eye_shape": ("eye_shape", "eyes", "eye", "eye_type"),
    "eyebrow": ("eyebrow", "eyebrows", "eyebrow_type", "eyebrow_shape", "brows"),
    "nose": ("nose", "nose_shape", "nose_type"),
    "mouth": ("mouth", "lips", "mouth_shape", "lip_shape", "mouth_type"),
    "age_group": ("age_group", "age"),
    "gender": ("gender", "sex"),
    "wrinkles": ("wrinkles",),
}


class FaceLayout(NamedTuple):
    """A frontal, neutral face layout in pixels.

    Attributes:
        keypoints: ``(70, 2)`` float32 pixel coordinates ``(x, y)`` in OpenPose's face order
            (0–16 jaw from the image's left, 17–21 subject's right brow, 22–26 left brow, 27–30
            nose bridge, 31–35 nose base, 36–41 right eye, 42–47 left eye, 48–59 outer lips,
            60–67 inner lips, 68/69 right/left pupil).
        curves: edge-map polylines, name → ``(N, 2)`` float32 ``(x, y)`` pixels (``"face"``,
            ``"right_brow"``, ``"right_eye_upper"``, ``"right_iris_0"``, ``"nose_tip"``,
            ``"lips_upper"``, ``"mouth_line"``, ``"left_ear"``, ``"wrinkle_forehead_0"``, ...);
            a closed curve repeats its first point at the end.
        size: side of the square image, in pixels, that the coordinates refer to.
    """

    keypoints: Float32[np.ndarray, "70 2"]
    curves: dict[str, Float32[np.ndarray, "_ 2"]]
    size: int


# ---------------------------------------------------------------------------------------------
# helpers


def _normalise(arg: str, value, valid) -> str | None:
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if not isinstance(value, str):
        raise TypeError(f"face_layout: {arg} must be a string or None, got {type(value).__name__}")
    key = "-".join(value.strip().lower().replace("_", " ").replace("-", " ").split())
    key = _ALIASES.get(key, _ALIASES.get(key.replace("-", ""), key))
    if key not in valid:
        raise InputError(f"face_layout: unknown {arg} {value!r}; valid values: {', '.join(valid)}")
    return key


def _catmull_rom(points: np.ndarray, *, closed: bool = False, n: int = 16) -> np.ndarray:
    """Uniform Catmull-Rom spline through ``points`` (``(K, 2)``), ``n`` samples a segment."""
    p = np.asarray(points, np.float64)
    if closed:
        ext = np.concatenate([p[-1:], p, p[:2]])
    else:
        ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    return _cr_ext(ext, n)


def _cr_ext(ext: np.ndarray, n: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
    out = []
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        out.append(
            0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                   + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
        )
    out.append(ext[-2][None])
    return np.concatenate(out)


def _resample(curve: np.ndarray, k: int) -> np.ndarray:
    """``k`` points evenly spaced by arc length along a polyline (ends included)."""
    seg = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    target = np.linspace(0.0, s[-1], k)
    return np.stack([np.interp(target, s, curve[:, 0]), np.interp(target, s, curve[:, 1])], axis=1)


def _mirror(p: np.ndarray) -> np.ndarray:
    return p * np.array([-1.0, 1.0])


def _bump(t, peak: float) -> np.ndarray:
    """0 at t = 0 and 1, 1 at ``t = peak``."""
    a = math.log(0.5) / math.log(min(max(peak, 0.05), 0.95))
    return np.asarray(np.sin(np.pi * np.clip(t, 0.0, 1.0) ** a))


def _face_half_profile(f: dict) -> np.ndarray:
    """Right half of the face contour (x ≥ 0), top centre → chin centre, dense."""
    ctrl = np.array([
        [0.0, 0.0], [0.62 * f["fw"], 0.028], [f["fw"], 0.16], [f["cw"], 0.42],
        [0.5 * (f["cw"] + f["jw"]) + 0.012, 0.5 * (0.42 + f["jy"])], [f["jw"], f["jy"]],
        [f["chw"] + 0.55 * (f["jw"] - f["chw"]), f["jy"] + 0.6 * (0.975 - f["jy"])],
        [f["chw"], 0.975], [0.0, 1.0],
    ])
    ext = np.concatenate([_mirror(ctrl[1:2]), ctrl, _mirror(ctrl[-2:-1])])
    return _cr_ext(ext, 24)


# ---------------------------------------------------------------------------------------------
# layout


def face_layout(
    *,
    face_shape: str | None = None,
    eye_shape: str | None = None,
    eyebrow: str | None = None,
    nose: str | None = None,
    mouth: str | None = None,
    age_group: str | None = None,
    gender: str | None = None,
    wrinkles: str | None = None,
    size: int = 512,
) -> FaceLayout:
    """A frontal, neutral face layout (keypoints and edge curves) for the given facial attributes.

    The face is centred and spans about the middle 55 % of the image height (hairline to chin),
    like a frontal portrait crop. Every argument is optional; ``None`` keeps the template's
    default. Valid values are listed in :data:`FACE_ATTRIBUTE_VALUES`. Deterministic.

    Args:
        face_shape: ``"oval"``, ``"round"``, ``"v-shaped"``, ``"square"``, ``"long"``,
            ``"heart"`` or ``"diamond"`` (contour widths at forehead, cheeks, jaw and chin, and
            the face's height).
        eye_shape: ``"almond"``, ``"round"``, ``"narrow"``, ``"upturned"``, ``"downturned"``,
            ``"monolid"`` (no crease line) or ``"hooded"`` (a fold over the outer lid).
        eyebrow: ``"willow-leaf"``, ``"sword-like"``, ``"straight"``, ``"arched"``,
            ``"thick"``, ``"thin"`` or ``"bushy"``.
        nose: ``"small"``, ``"large"``, ``"wide"``, ``"narrow"``, ``"straight"``,
            ``"aquiline"`` or ``"button"``.
        mouth: ``"thin"``, ``"full"``, ``"wide"`` or ``"small"`` (lips).
        age_group: ``"child"``, ``"teen"``, ``"young-adult"``, ``"adult"``, ``"middle-aged"``
            or ``"elderly"`` (elderly: longer nose and ears, thinner lips, wrinkle lines in the
            edge map).
        gender: ``"male"`` (wider jaw and chin, thicker brows), ``"female"`` or ``"neutral"``.
        wrinkles: ``"none"``, ``"light"`` (nasolabial folds), ``"moderate"`` (+ crow's feet and
            forehead lines) or ``"heavy"`` (+ under-eye and marionette lines); ``None`` follows
            the age group (light when middle-aged, heavy when elderly).
        size: side in pixels of the square image the coordinates refer to (≥ 64).

    Returns:
        A :class:`FaceLayout` in pixel coordinates.

    Raises:
        InputError: an unknown attribute value (the message lists the valid ones) or a bad size.
        TypeError: an attribute that is not a string.

    Example:
        >>> from machlib.text import face_layout
        >>> layout = face_layout(face_shape="round", eyebrow="arched", size=256)
        >>> print(layout.keypoints.shape, layout.keypoints.dtype, "face" in layout.curves)
        (70, 2) float32 True
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 64:
        raise InputError(f"face_layout: size must be an integer ≥ 64, got {size!r}")
    fs = _normalise("face_shape", face_shape, FACE_ATTRIBUTE_VALUES["face_shape"])
    es = _normalise("eye_shape", eye_shape, FACE_ATTRIBUTE_VALUES["eye_shape"])
    eb = _normalise("eyebrow", eyebrow, FACE_ATTRIBUTE_VALUES["eyebrow"])
    ns = _normalise("nose", nose, FACE_ATTRIBUTE_VALUES["nose"])
    ms = _normalise("mouth", mouth, FACE_ATTRIBUTE_VALUES["mouth"])
    age = _normalise("age_group", age_group, _AGES)
    gen = _normalise("gender", gender, _GENDERS)
    wr = _normalise("wrinkles", wrinkles, _WRINKLES)
    if wr is None:
        wr = {"middle-aged": "light", "elderly": "heavy"}.get(age, "none")
    level = _WRINKLES.index(wr)

    f = dict(_FACE[fs or "oval"])
    e = dict(_EYE[es])
    b = dict(_BROW[eb])
    n = dict(_NOSE[ns])
    m = dict(_MOUTH[ms])
    eye_y, brow_y, ear_extra = 0.420, 0.345, 0.0
    if gen == "male":
        f["jw"] += 0.030
        f["chw"] += 0.030
        b["th"] *= 1.25
        brow_y += 0.006
    elif gen == "female":
        f["jw"] -= 0.015
        f["chw"] -= 0.010
        b["th"] *= 0.85
        brow_y -= 0.004
    if age == "child":
        f = {k: (v + 0.02 if k in ("cw", "jw", "chw") else v) for k, v in f.items()}
        f["hs"] *= 0.95
        eye_y += 0.03
        brow_y += 0.025
        e["up"] *= 1.15
        e["lo"] *= 1.15
        n["base"] -= 0.015
        n["nw"] *= 0.85
        m["mw"] *= 0.9
    elif age == "teen":
        f = {k: (v + 0.008 if k in ("cw", "jw", "chw") else v) for k, v in f.items()}
        eye_y += 0.010
        brow_y += 0.008
        n["base"] -= 0.006
    elif age == "elderly":
        n["base"] += 0.022
        n["nw"] *= 1.08
        n["droop"] += 0.006
        ear_extra = 0.045
        m["up"] *= 0.75
        m["lo"] *= 0.8
        e["up"] *= 0.9
        f["chw"] += 0.01
    elif age == "middle-aged":
        n["base"] += 0.008
        ear_extra = 0.015
    mouth_y = n["base"] + 0.105 + 0.25 * (1.0 - n["base"] - 0.34)

    curves: dict[str, np.ndarray] = {}
    kp = np.zeros((N_FACE_KEYPOINTS, 2))

    # --- contour: closed outline, jaw keypoints from ear level to chin ---------------------------
    half = _face_half_profile(f)
    curves["face"] = np.concatenate([half, _mirror(half[::-1])[1:]])
    lower = half[half[:, 1] >= eye_y + 0.03]
    jaw = _resample(lower, 9)  # ear level → chin on the subject's left (image right)
    kp[8:17] = jaw[::-1]
    kp[0:9] = _mirror(jaw)

    def half_width(y: float) -> float:
        return float(np.interp(y, half[:, 1], half[:, 0]))

    # --- the subject's right side (image left, x < 0); the left side is its mirror ------------
    side: dict[str, np.ndarray] = {}
    # eye: t = 0 at the inner corner, 1 at the outer corner
    inner_x, eye_w = 0.072, 2 * e["w"]
    t = np.linspace(0.0, 1.0, 41)
    ex = -(inner_x + t * eye_w)
    base = eye_y - e["tilt"] * t
    upper = base - e["up"] * _bump(t, e["peak"])
    lower_lid = base + e["lo"] * _bump(t, 0.55)
    side["eye_upper"] = np.stack([ex, upper], 1)
    side["eye_lower"] = np.stack([ex, lower_lid], 1)
    eye_kp_t = [1.0, 2 / 3, 1 / 3, 0.0]  # 36 outer, 37, 38 upper, 39 inner
    def lid(s, sign, h, peak):
        return [-(inner_x + s * eye_w), eye_y - e["tilt"] * s + sign * h * _bump(np.array(s), peak)]

    eye_kp = [lid(s, -1, e["up"], e["peak"]) for s in eye_kp_t]
    eye_kp += [lid(s, 1, e["lo"], 0.55) for s in (1 / 3, 2 / 3)]  # 40, 41 lower
    right_eye = np.array(eye_kp)
    if e["crease"] == "double":
        tc = np.linspace(0.12, 1.0, 33)
        gap = 0.010 + 0.006 * np.sin(np.pi * tc)
        crease_y = eye_y - e["tilt"] * tc - e["up"] * _bump(tc, e["peak"]) - gap
        side["eye_crease"] = np.stack([-(inner_x + tc * eye_w * 1.03), crease_y], 1)
    elif e["crease"] == "hooded":
        tc = np.linspace(0.25, 1.08, 33)
        gap = 0.012 * np.clip(1.0 - tc, 0.0, None) + 0.002
        fold_y = eye_y - e["tilt"] * np.minimum(tc, 1) - e["up"] * _bump(tc, e["peak"]) - gap
        side["eye_crease"] = np.stack([-(inner_x + tc * eye_w), fold_y], 1)
    # iris and pupil: arcs of circles clipped to the eye opening
    r_iris = 0.45 * e["w"]
    icx, icy = -(inner_x + 0.5 * eye_w), eye_y - e["tilt"] * 0.5 - e["up"] + 0.85 * r_iris
    pupil = np.array([icx, icy])
    ang = np.linspace(0.0, 2 * np.pi, 97)
    for name, r in (("iris", r_iris), ("pupil", 0.42 * r_iris)):
        circ = np.stack([icx + r * np.cos(ang), icy + r * np.sin(ang)], 1)
        tt = (-circ[:, 0] - inner_x) / eye_w
        inside = (tt > 0) & (tt < 1)
        inside &= circ[:, 1] > np.interp(-circ[:, 0], -ex, upper) + 0.002
        inside &= circ[:, 1] < np.interp(-circ[:, 0], -ex, lower_lid) - 0.002
        for i, run in enumerate(_runs(circ, inside)):
            side[f"{name}_{i}"] = run
    # brow: t = 0 at the inner end, 1 at the tail
    tb = np.linspace(0.0, 1.0, 41)
    bx = -(inner_x - 0.008 + tb * b["len"] * 1.42)
    by = brow_y - b["arch"] * _bump(tb, b["peak"]) - b["rise"] * tb + 0.012 * tb**3
    if b["taper"] == "both":
        th = b["th"] * (0.25 + 0.75 * np.sin(np.pi * np.clip(0.08 + 0.9 * tb, 0, 1)))
    elif b["taper"] == "blunt":
        th = b["th"] * (1.0 - 0.35 * tb**2)
    else:
        th = b["th"] * (1.0 - 0.80 * tb**1.6)
    jag = b["jag"] * np.sin(tb * 53.0) * np.sin(tb * 17.0 + 1.0)
    top = np.stack([bx, by - th / 2 - jag], 1)
    bot = np.stack([bx, by + th / 2 + jag * 0.6], 1)
    side["brow"] = np.concatenate([top, bot[::-1], top[:1]])
    brow_kp_t = np.array([1.0, 0.75, 0.5, 0.25, 0.05])  # 17 (tail) … 21 (inner)
    right_brow = np.stack([np.interp(brow_kp_t, tb, bx), np.interp(brow_kp_t, tb, by - 0.25 * th)], 1)
    # nose
    nb, nw = n["base"], n["nw"]
    hump = n["hump"] * np.sin(np.pi * np.linspace(0.0, 1.0, 5))
    bridge_ctrl = np.stack([
        -(np.array([0.05, n["br"] + 0.004, n["br"], n["br"] + 0.002, nw - 0.022]) + hump),
        np.array([eye_y - 0.03, eye_y + 0.05, 0.5 * (eye_y + nb), nb - 0.085, nb - 0.055]),
    ], 1)
    side["nose_bridge"] = _catmull_rom(bridge_ctrl)[8:]
    ala = np.array([
        [-(nw - 0.018), nb - 0.058], [-(nw - 0.002), nb - 0.035], [-nw, nb - 0.014],
        [-(nw - 0.012), nb + 0.001], [-(nw - 0.026), nb - 0.004],
    ])
    side["nose_ala"] = _catmull_rom(ala)
    nos_r = 0.26 * nw
    nos_ang = np.linspace(0, 2 * np.pi, 41)
    side["nostril"] = np.stack(
        [-0.52 * nw + nos_r * np.cos(nos_ang), nb - 0.008 + 0.0065 * n["nos"] * np.sin(nos_ang)], 1)
    # ear: attached at the contour, from brow height down to about the nose base
    ey0, ey1 = brow_y + 0.01, nb + ear_extra
    hx0, hx1 = half_width(ey0), half_width(ey1)
    ear = np.array([
        [hx0 - 0.004, ey0 + 0.01], [hx0 + 0.030, ey0 - 0.004], [hx0 + 0.052, ey0 + 0.04],
        [0.5 * (hx0 + hx1) + 0.045, 0.5 * (ey0 + ey1) + 0.02], [hx1 + 0.026, ey1 - 0.02],
        [hx1 + 0.010, ey1], [hx1 - 0.004, ey1 - 0.012],
    ])
    side["ear"] = _mirror(_catmull_rom(ear))
    inner_ear = np.array([
        [hx0 + 0.014, ey0 + 0.022], [hx0 + 0.036, ey0 + 0.035],
        [0.5 * (hx0 + hx1) + 0.030, 0.5 * (ey0 + ey1) + 0.015], [hx1 + 0.020, ey1 - 0.035],
    ])
    side["ear_inner"] = _mirror(_catmull_rom(inner_ear))
    # wrinkles
    if level >= 1:
        depth = 1.0 if level >= 2 else 0.6
        fold = np.array([
            [-(nw + 0.010), nb - 0.035], [-(nw + 0.030), nb + 0.010],
            [-(m["mw"] + 0.022), mouth_y], [-(m["mw"] + 0.030), mouth_y + 0.055 * depth],
        ])
        side["wrinkle_nasolabial"] = _catmull_rom(fold)
    if level >= 2:
        ox, oy = -(inner_x + eye_w), eye_y - e["tilt"]
        for i, a in enumerate((-0.45, 0.0, 0.45)):
            d = np.array([-math.cos(a), math.sin(a)])
            p0 = np.array([ox - 0.012, oy]) + 0.006 * d
            side[f"wrinkle_crow_{i}"] = np.stack([p0, p0 + 0.5 * 0.034 * d + [0, 0.002], p0 + 0.034 * d])
    if level >= 3:
        tu = np.linspace(0.1, 0.9, 21)
        bag_y = eye_y - e["tilt"] * tu + e["lo"] + 0.016 * np.sin(np.pi * tu) + 0.006
        side["wrinkle_under_eye"] = np.stack([-(inner_x + tu * eye_w), bag_y], 1)
        side["wrinkle_marionette"] = _catmull_rom(np.array([
            [-(m["mw"] + 0.004), mouth_y + 0.008], [-(m["mw"] + 0.010), mouth_y + 0.05],
            [-(m["mw"] + 0.008), mouth_y + 0.09]]))

    for name, c in side.items():
        curves[f"right_{name}"] = c
        curves[f"left_{name}"] = _mirror(c)
    kp[17:22] = right_brow
    kp[22:27] = _mirror(right_brow[::-1])
    kp[36:42] = right_eye
    kp[42:48] = _mirror(right_eye[[3, 2, 1, 0, 5, 4]])
    kp[68] = pupil
    kp[69] = _mirror(pupil)

    # --- centre-line features -------------------------------------------------------------------
    tip_y = nb + n["droop"]
    kp[27:31, 0] = 0.0
    kp[27:31, 1] = np.linspace(eye_y - 0.02, tip_y - 0.03, 4)
    kp[31:36] = [[-0.78 * nw, nb - 0.012], [-0.42 * nw, nb - 0.002], [0.0, tip_y + 0.003],
                 [0.42 * nw, nb - 0.002], [0.78 * nw, nb - 0.012]]
    tip = np.array([
        [-(nw - 0.026), nb - 0.004], [-0.5 * nw, nb - 0.006 + 0.2 * n["droop"]],
        [-0.25 * nw, tip_y - 0.002], [0.0, tip_y + 0.003], [0.25 * nw, tip_y - 0.002],
        [0.5 * nw, nb - 0.006 + 0.2 * n["droop"]], [nw - 0.026, nb - 0.004],
    ])
    curves["nose_tip"] = _catmull_rom(tip)
    tip_r = n["tip"]
    a_t = np.linspace(np.pi * 1.15, np.pi * 1.85, 21)
    curves["nose_tip_highlight"] = np.stack(
        [tip_r * np.cos(a_t), tip_y - 0.012 - 0.25 * tip_r + tip_r * 0.55 * (np.sin(a_t) + 1)], 1)

    mw, lu, ll, bow = m["mw"], m["up"], m["lo"], m["bow"]
    u = np.linspace(-1.0, 1.0, 81)
    dip = 1 - bow * np.exp(-((u / 0.16) ** 2))  # cupid's bow: a dip at the centre ...
    peaks = 1 + 0.25 * np.exp(-(((np.abs(u) - 0.3) / 0.2) ** 2))  # ... between two peaks
    upper_lip = mouth_y - lu * (1 - u**2) ** 0.6 * dip * peaks
    lower_lip = mouth_y + ll * (1 - u**2) ** 0.55
    line = mouth_y + 0.004 * (1 - u**2) - 0.003 * np.exp(-((u / 0.12) ** 2))
    curves["lips_upper"] = np.stack([u * mw, upper_lip], 1)
    curves["lips_lower"] = np.stack([u * mw, lower_lip], 1)
    curves["mouth_line"] = np.stack([u * mw * 0.97, line], 1)

    def at(arr, us):
        return np.stack([np.asarray(us) * mw, np.interp(us, u, arr)], 1)

    kp[48:55] = at(upper_lip, [-1.0, -0.62, -0.3, 0.0, 0.3, 0.62, 1.0])
    kp[55:60] = at(lower_lip, [0.62, 0.3, 0.0, -0.3, -0.62])
    kp[60:65] = at(line - 0.0015, [-0.88, -0.42, 0.0, 0.42, 0.88])
    kp[65:68] = at(line + 0.0015, [0.42, 0.0, -0.42])

    if level >= 2:
        tf = np.linspace(-1.0, 1.0, 41)
        for i, dy in enumerate((0.085, 0.125, 0.165)[: level]):
            w = 0.17 - 0.02 * i
            curves[f"wrinkle_forehead_{i}"] = np.stack(
                [tf * w, brow_y - dy - 0.010 * np.cos(0.5 * np.pi * tf) + 0.003 * np.sin(3 * tf + i)], 1)

    # --- to pixels ------------------------------------------------------------------------------
    unit = 0.55 * size * f["hs"]
    x0, y0 = size / 2.0, size / 2.0 - unit / 2.0

    def px(p: np.ndarray) -> np.ndarray:
        return (np.asarray(p, np.float64) * unit + [x0, y0]).astype(np.float32)

    return FaceLayout(keypoints=px(kp), curves={k: px(v) for k, v in curves.items()}, size=int(size))


def _runs(points: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """Contiguous runs of ``points[mask]`` along a closed curve (first point == last point)."""
    pts, mk = points[:-1], mask[:-1]
    if mk.all():
        return [points]
    if not mk.any():
        return []
    start = int(np.argmin(mk))  # a masked-out point: runs never wrap past it
    pts, mk = np.roll(pts, -start, axis=0), np.roll(mk, -start)
    runs, cur = [], []
    for p, keep in zip(pts, mk):
        if keep:
            cur.append(p)
        elif cur:
            runs.append(np.array(cur))
            cur = []
    if cur:
        runs.append(np.array(cur))
    return [r for r in runs if len(r) >= 2]


# ---------------------------------------------------------------------------------------------
# drawing


def _check_size(fn: str, size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise InputError(f"{fn}: size must be an integer ≥ 16, got {size!r}")
    return int(size)


def keypoint_image(
    layout: FaceLayout, *, size: int = 512, radius: int | None = None
) -> UInt8[np.ndarray, "H W 3"]:
    """Draw a layout's 70 face keypoints as white dots on black, as ControlNet's openpose-face
    preprocessor does.

    Args:
        layout: a :class:`FaceLayout`; its coordinates are rescaled from ``layout.size`` to
            ``size``.
        size: side of the square output image in pixels.
        radius: dot radius in pixels; ``None`` gives 3 px at 512 px (as the preprocessor draws),
            scaled with ``size`` (at least 1).

    Returns:
        ``(size, size, 3)`` ``uint8`` RGB image: 255 on the dots, 0 elsewhere.

    Example:
        >>> from machlib.text import face_layout, keypoint_image
        >>> print(keypoint_image(face_layout(), size=256).shape)
        (256, 256, 3)
    """
    from skimage.draw import disk

    size = _check_size("keypoint_image", size)
    if radius is None:
        radius = max(1, round(3 * size / 512))
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 1:
        raise InputError(f"keypoint_image: radius must be a positive integer, got {radius!r}")
    img = np.zeros((size, size), np.uint8)
    scale = size / layout.size
    for x, y in np.asarray(layout.keypoints, np.float64) * scale:
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        rr, cc = disk((y - 0.5, x - 0.5), radius + 0.5, shape=img.shape)
        img[rr, cc] = 255
    return np.repeat(img[:, :, None], 3, axis=2)


def edge_image(layout: FaceLayout, *, size: int = 512) -> UInt8[np.ndarray, "H W 3"]:
    """Draw a layout's curves as 1-pixel white lines on black, like a canny edge map.

    Args:
        layout: a :class:`FaceLayout`; its coordinates are rescaled from ``layout.size`` to
            ``size``.
        size: side of the square output image in pixels.

    Returns:
        ``(size, size, 3)`` ``uint8`` RGB image: 255 on the lines (8-connected, 1 px wide), 0
        elsewhere.

    Example:
        >>> from machlib.text import edge_image, face_layout
        >>> print(edge_image(face_layout(eyebrow="bushy")).shape)
        (512, 512, 3)
    """
    from skimage.draw import line

    size = _check_size("edge_image", size)
    img = np.zeros((size, size), np.uint8)
    scale = size / layout.size
    for curve in layout.curves.values():
        c = np.floor(np.asarray(curve, np.float64) * scale).astype(np.int64)
        for (c0, r0), (c1, r1) in zip(c[:-1], c[1:]):
            rr, cc = line(int(r0), int(c0), int(r1), int(c1))
            ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
            img[rr[ok], cc[ok]] = 255
    return np.repeat(img[:, :, None], 3, axis=2)


def visual_clues(attributes: dict | None = None, *, size: int = 512) -> dict[str, np.ndarray]:
    """ControlNet control images for a dictionary of facial attributes.

    Args:
        attributes: attribute values by name (``face_shape``, ``eye_shape``, ``eyebrow``,
            ``nose``, ``mouth``, ``age_group``, ``gender``, as in :func:`face_layout`; a few
            other spellings such as ``lips``, ``eyebrows``, ``age`` and ``sex`` are accepted). An
            integer ``age`` in years is mapped to an age group. Keys it does not use are ignored;
            ``None`` values keep the defaults.
        size: side of the square output images in pixels.

    Returns:
        ``{"openpose": keypoint image, "canny": edge image}``, each ``(size, size, 3)``
        ``uint8`` (see :func:`keypoint_image` and :func:`edge_image`).

    Raises:
        InputError: an unknown attribute value (the message names the argument and lists the
            valid values).

    Example:
        >>> from machlib.text import visual_clues
        >>> clues = visual_clues({"face_shape": "long", "mouth": "full", "hair": "bob"}, size=256)
        >>> print({k: v.shape for k, v in clues.items()})
        {'openpose': (256, 256, 3), 'canny': (256, 256, 3)}
    """
    attributes = dict(attributes or {})
    kwargs = {}
    for arg, keys in _KEYS.items():
        for key in keys:
            value = attributes.get(key)
            if value is None:
                continue
            if arg == "age_group" and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = ("child" if value < 13 else "teen" if value < 20 else "young-adult" if value < 30
                         else "adult" if value < 45
                         else "middle-aged" if value < 62 else "elderly")
            kwargs[arg] = value
            break
    layout = face_layout(**kwargs, size=_check_size("visual_clues", size))
    return {"openpose": keypoint_image(layout, size=size), "canny": edge_image(layout, size=size)}
