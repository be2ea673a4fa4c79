"""ARKit's 52 blendshape names, FACS action units, and emotion presets built from them.

An *expression* here is a vector of 52 blendshape weights in [0, 1], ordered as
:data:`ARKIT_BLENDSHAPES` (Apple's ``ARFaceAnchor.BlendShapeLocation`` names, the de-facto
standard of face rigs and of glTF ``extras.targetNames``). ``Left``/``Right`` in those names are
the character's own left and right (the viewer's right and left in a frontal view).

Emotions are defined the way psychologists code them: each of the seven basic emotions is a
prototype of FACS action units (Ekman & Friesen's EMFACS prototypes, e.g. happiness = AU6 + AU12),
and each action unit is a small combination of blendshapes. Intensities of several emotions mix
linearly and the result is clipped to [0, 1] (the "emotion sliders" of the single-view thesis).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._typing import AnyArray

from .._errors import InputError

__all__ = [
    "ARKIT_BLENDSHAPES",
    "ACTION_UNITS",
    "EMOTIONS",
    "EMOTION_ACTION_UNITS",
    "action_unit_weights",
    "emotion_basis",
    "expression_weights",
    "parse_expression",
    "emotion_vector",
]

#: The 52 ARKit blendshape names, in Apple's documented grouping (eyes, jaw, mouth, brows, cheeks,
#: nose, tongue). This order is the order of every expression vector and morph-target list.
ARKIT_BLENDSHAPES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)
_INDEX = {name: i for i, name in enumerate(ARKIT_BLENDSHAPES)}


def _both(stem: str, w: float = 1.0) -> dict[str, float]:
    return {f"{stem}Left": w, f"{stem}Right": w}


#: AU24, the lips pressed together and thinned, the corners level. ``mouthPress`` alone presses
#: the lips but also lifts the corners (4.7 mm at weight 1 on the human template, 0.4 of a smile's
#: lift) and the pressed mouth read as a tight smile: ``mouthFrown`` at 0.93 of the press keeps
#: the corners level, and the lips roll in a little (``mouthRoll*``, the red margins thin).
_LIP_PRESSOR = {**_both("mouthPress", 0.7), **_both("mouthFrown", 0.65), "mouthRollUpper": 0.35,
                "mouthRollLower": 0.35}
#: AU23, the lips tightened and narrowed: the lip pressor's shapes, weaker.
_LIP_TIGHTENER = {name: round(0.7 * w, 3) for name, w in _LIP_PRESSOR.items()}

#: FACS action unit number → the blendshapes that produce it, with weights (bilateral). A
#: unilateral unit is written ``"L12"``/``"R12"`` in :data:`EMOTION_ACTION_UNITS` and keeps only
#: that side's shapes.
ACTION_UNITS: dict[int, dict[str, float]] = {
    1: {"browInnerUp": 1.0},                                            # inner brow raiser
    2: _both("browOuterUp"),                                            # outer brow raiser
    4: _both("browDown"),                                               # brow lowerer
    5: _both("eyeWide"),                                                # upper lid raiser
    6: {**_both("cheekSquint"), **_both("eyeSquint", 0.3)},             # cheek raiser
    7: _both("eyeSquint"),                                              # lid tightener
    9: _both("noseSneer"),                                              # nose wrinkler
    10: _both("mouthUpperUp"),                                          # upper lip raiser
    12: _both("mouthSmile"),                                            # lip corner puller
    14: _both("mouthDimple"),                                           # dimpler
    15: _both("mouthFrown"),                                            # lip corner depressor
    16: _both("mouthLowerDown"),                                        # lower lip depressor
    17: {"mouthShrugLower": 1.0},                                       # chin raiser
    18: {"mouthPucker": 1.0},                                           # lip pucker
    20: _both("mouthStretch"),                                          # lip stretcher
    22: {"mouthFunnel": 1.0},                                           # lip funneler
    23: _LIP_TIGHTENER,                                                 # lip tightener
    24: _LIP_PRESSOR,                                                   # lip pressor
    25: {**_both("mouthLowerDown", 0.4), **_both("mouthUpperUp", 0.2)},  # lips part
    26: {"jawOpen": 0.5},                                               # jaw drop
    27: {"jawOpen": 1.0, **_both("mouthStretch", 0.3)},                 # mouth stretch
    28: {"mouthRollLower": 1.0, "mouthRollUpper": 1.0},                 # lip suck
    43: _both("eyeBlink"),                                              # eyes closed
}

#: The seven basic emotions, in the order of :func:`emotion_basis`'s rows.
EMOTIONS: tuple[str, ...] = ("happiness", "sadness", "anger", "fear", "surprise", "disgust", "contempt")

#: Emotion → FACS prototype as action unit → intensity in [0, 1] (FACS letters A–E ≈ 0.2–1.0).
#: From the EMFACS prototypes: happiness 6+12; sadness 1+4+15 (+17); anger 4+5+7+17+24 (the
#: brows lowered and drawn together, the lids tightened, the lips pressed thin over a raised
#: chin: the closed-mouth prototype, as fear, surprise and disgust open the mouth); fear
#: 1+2+4+5+7+20+26 (the stretched mouth more than the dropped jaw, so it is not surprise);
#: surprise 1+2+5B+26; disgust 9+15+16 (+10, 17); contempt L12D+L14 (+ a trace of L10),
#: one-sided on the character's left, the side the expression sheet's camera (turned 12° that
#: way) sees. Sadness's and fear's AU4 is 0.43: the human's ``browDown`` is scaled ×1.4
#: (:data:`machlib.assets.FACIAL_ACTION_GAINS`), so their brows move as at 0.6 before.
EMOTION_ACTION_UNITS: dict[str, dict[str, float]] = {
    "happiness": {"6": 0.8, "12": 1.0, "25": 0.3},
    "sadness": {"1": 1.0, "4": 0.43, "15": 1.0, "17": 0.4},
    "anger": {"4": 1.0, "5": 0.3, "7": 0.8, "17": 0.5, "24": 1.0},
    "fear": {"1": 0.9, "2": 0.6, "4": 0.43, "5": 1.0, "7": 0.3, "20": 1.0, "26": 0.3},
    "surprise": {"1": 1.0, "2": 1.0, "5": 0.4, "26": 0.8},
    "disgust": {"9": 0.9, "10": 0.5, "15": 0.5, "16": 0.4, "17": 0.3},
    "contempt": {"L12": 0.8, "L14": 1.0, "L10": 0.3},
}


def action_unit_weights(unit: int | str, *, intensity: float = 1.0) -> np.ndarray:
    """The 52 blendshape weights of one FACS action unit at an intensity.

    Args:
        unit: an action unit number (``12`` or ``"12"``), optionally prefixed ``"L"``/``"R"`` for
            the character's left or right side only (``"R12"``: a one-sided smile).
        intensity: in [0, 1].

    Returns:
        float32 array of shape (52,), ordered as :data:`ARKIT_BLENDSHAPES`.

    Raises:
        InputError: unknown unit or intensity outside [0, 1].

    Example:
        >>> from machlib.animation import action_unit_weights, ARKIT_BLENDSHAPES
        >>> w = action_unit_weights("R12", intensity=0.5)
        >>> [(ARKIT_BLENDSHAPES[i], float(w[i])) for i in w.nonzero()[0]]
        [('mouthSmileRight', 0.5)]
    """
    m = re.fullmatch(r"\s*(?:AU)?([LR]?)(\d+)\s*", str(unit), flags=re.IGNORECASE)
    if m is None or int(m.group(2)) not in ACTION_UNITS:
        raise InputError(f"unknown action unit {unit!r}; known: {', '.join(map(str, ACTION_UNITS))} "
                         "(optionally prefixed L or R)")
    if not 0.0 <= float(intensity) <= 1.0:
        raise InputError(f"action unit intensity must be in [0, 1], got {intensity}")
    side = m.group(1).upper()
    out = np.zeros(len(ARKIT_BLENDSHAPES), np.float32)
    for name, w in ACTION_UNITS[int(m.group(2))].items():
        if side == "L" and name.endswith("Right") or side == "R" and name.endswith("Left"):
            continue
        out[_INDEX[name]] += w * float(intensity)
    return out


def emotion_basis() -> np.ndarray:
    """The emotion → blendshape matrix: row e is emotion ``EMOTIONS[e]`` at full intensity.

    Returns:
        float32 array of shape (7, 52) with entries in [0, 1].

    Example:
        >>> from machlib.animation import emotion_basis, ARKIT_BLENDSHAPES
        >>> B = emotion_basis()
        >>> B.shape, round(float(B[0, ARKIT_BLENDSHAPES.index("mouthSmileLeft")]), 2)
        ((7, 52), 1.0)
    """
    rows = []
    for emotion in EMOTIONS:
        row = sum(action_unit_weights(u, intensity=i) for u, i in EMOTION_ACTION_UNITS[emotion].items())
        rows.append(np.clip(row, 0.0, 1.0))
    return np.stack(rows).astype(np.float32)


def expression_weights(intensities: Float[AnyArray, "*batch 7"]) -> Float[Array, "*batch 52"]:
    """Blendshape weights of a mix of emotions: ``clip(intensities @ emotion_basis(), 0, 1)``.

    Pure JAX: works under ``jit``, ``vmap`` and ``grad`` (the gradient is zero where a weight is
    clipped).

    Args:
        intensities: per-emotion intensity, ordered as :data:`EMOTIONS`, usually in [0, 1].

    Returns:
        The 52 blendshape weights, in [0, 1].

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.animation import expression_weights, ARKIT_BLENDSHAPES
        >>> w = expression_weights(jnp.array([0.8, 0, 0, 0, 0.3, 0, 0]))  # happiness 0.8, surprise 0.3
        >>> round(float(w[ARKIT_BLENDSHAPES.index("jawOpen")]), 2)
        0.12
    """
    basis = jnp.asarray(emotion_basis(), dtype=jnp.result_type(intensities, jnp.float32))
    return jnp.clip(intensities @ basis, 0.0, 1.0)


def emotion_vector(expression: Mapping[str, float] | str | None) -> np.ndarray:
    """Turn ``{"happiness": 0.8}`` or ``"happiness=0.8,surprise=0.3"`` into a (7,) intensity vector.

    Args:
        expression: a mapping emotion → intensity, a string for :func:`parse_expression`, or
            ``None``/``"neutral"`` for all zeros.

    Returns:
        float32 array of shape (7,), ordered as :data:`EMOTIONS`.

    Example:
        >>> from machlib.animation import emotion_vector
        >>> [round(float(x), 2) for x in emotion_vector("surprise=0.3, happiness=0.8")]
        [0.8, 0.0, 0.0, 0.0, 0.3, 0.0, 0.0]
    """
    if expression is None:
        return np.zeros(len(EMOTIONS), np.float32)
    if isinstance(expression, str):
        expression = parse_expression(expression)
    out = np.zeros(len(EMOTIONS), np.float32)
    for name, value in expression.items():
        key = str(name).strip().lower()
        if key not in EMOTIONS:
            raise InputError(f"unknown emotion {name!r}; known: {', '.join(EMOTIONS)}")
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise InputError(f"intensity of {key} must be in [0, 1], got {value}")
        out[EMOTIONS.index(key)] = value
    return out


def parse_expression(text: str) -> dict[str, float]:
    """Parse the CLI's ``--expression`` syntax: ``"happiness=0.8,surprise=0.3"``.

    Names are case-insensitive; a name without ``=value`` means intensity 1; ``"neutral"`` (or an
    empty string) means no emotion.

    Raises:
        InputError: unknown emotion, a value that is not a number in [0, 1], or a repeated emotion.

    Example:
        >>> from machlib.animation import parse_expression
        >>> parse_expression("Happiness=0.8, surprise")
        {'happiness': 0.8, 'surprise': 1.0}
    """
    out: dict[str, float] = {}
    for part in str(text).split(","):
        part = part.strip()
        if not part or part.lower() == "neutral":
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if name not in EMOTIONS:
            raise InputError(f"--expression: unknown emotion {name!r}; known: {', '.join(EMOTIONS)}")
        if name in out:
            raise InputError(f"--expression: {name} is given twice")
        try:
            v = float(value) if sep else 1.0
        except ValueError:
            raise InputError(f"--expression: the intensity of {name} must be a number, got {value.strip()!r}") from None
        if not (0.0 <= v <= 1.0):
            raise InputError(f"--expression: the intensity of {name} must be in [0, 1], got {v}")
        out[name] = v
    return out
