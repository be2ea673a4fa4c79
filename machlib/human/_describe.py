"""Words → the human: facial attributes (gender, age group, build, ancestry, face, eye, nose,
mouth and brow shapes) as MakeHuman macro values and mirror-tied sliders.

The mapping is a table written here (MakeHuman's own sliders, not a learned model): a prompt such
as "an elderly heavy man with a round face and a wide nose" sets gender 1, age 0.88 (about 75
years), weight 0.9 and the ``head-round``, ``head-fat``, ``nose-scale-horiz`` and
``nose-flaring`` sliders. Attributes are read by name from any object with the fields of
:class:`machlib.text.FaceAttributes` (or a mapping), so this layer does not import the text
package.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ._model import PHENOTYPE_NAMES, default_phenotype

__all__ = ["AGE_VALUES", "GENDER_VALUES", "BUILD_VALUES", "ANCESTRY_VALUES", "SHAPE_SLIDERS", "attribute_human"]

#: ``gender`` value → MakeHuman's gender (0 female … 1 male).
GENDER_VALUES = {"female": 0.0, "male": 1.0, "neutral": 0.5}

#: ``age_group`` value → MakeHuman's age (0: 1 year, 0.1875: 11, 0.5: 25, 1: 90; linear between).
AGE_VALUES = {"child": 0.12, "teen": 0.28, "young adult": 0.46, "adult": 0.55, "middle-aged": 0.70,
              "elderly": 0.88}

#: ``build`` value → (muscle, weight).
BUILD_VALUES = {"slim": (0.4, 0.2), "average": (0.5, 0.5), "athletic": (0.85, 0.45), "heavy": (0.5, 0.9)}

#: ``ancestry`` value → MakeHuman's race blend ``(african, asian, caucasian)`` (sums to 1). The
#: MakeHuman human has three ethnic targets only; the others are blends of them written here, a
#: coarse prior of face shape (the photo, when there is one, fits the face itself).
ANCESTRY_VALUES = {"african": (1.0, 0.0, 0.0), "east asian": (0.0, 1.0, 0.0), "european": (0.0, 0.0, 1.0),
                   "south asian": (0.2, 0.2, 0.6), "hispanic": (0.1, 0.3, 0.6), "middle eastern": (0.05, 0.1, 0.85)}

#: ``(field, value)`` → symmetric slider name (as :func:`machlib.human.symmetric_sliders` names
#: them) → value. Unlisted values (``almond`` eyes, ``oval``-ish defaults) leave the sliders at 0.
SHAPE_SLIDERS: dict[tuple[str, str], dict[str, float]] = {
    ("face_shape", "oval"): {"head/head-oval": 0.6},
    ("face_shape", "round"): {"head/head-round": 0.7, "head/head-fat-decr|incr": 0.3, "cheek/cheek-volume-decr|incr": 0.4},
    ("face_shape", "v-shaped"): {"head/head-invertedtriangular": 0.7, "chin/chin-width-decr|incr": -0.4},
    ("face_shape", "square"): {"head/head-square": 0.7, "chin/chin-width-decr|incr": 0.4, "chin/chin-bones-decr|incr": 0.4},
    ("face_shape", "long"): {"head/head-rectangular": 0.5, "head/head-scale-vert-decr|incr": 0.5,
                             "chin/chin-height-decr|incr": 0.3},
    ("face_shape", "heart"): {"head/head-invertedtriangular": 0.5, "chin/chin-width-decr|incr": -0.3,
                              "cheek/cheek-bones-decr|incr": 0.3},
    ("face_shape", "diamond"): {"head/head-diamond": 0.7, "cheek/cheek-bones-decr|incr": 0.5},
    ("eye_shape", "round"): {"eyes/eye-height2-decr|incr": 0.5, "eyes/eye-scale-decr|incr": 0.3},
    ("eye_shape", "narrow"): {"eyes/eye-height2-decr|incr": -0.6},
    ("eye_shape", "upturned"): {"eyes/eye-corner1-down|up": 0.6},
    ("eye_shape", "downturned"): {"eyes/eye-corner1-down|up": -0.6},
    ("eye_shape", "monolid"): {"eyes/eye-epicanthus-in|out": 0.6, "eyes/eye-eyefold-down|up": -0.5},
    ("eye_shape", "hooded"): {"eyes/eye-eyefold-down|up": -0.6},
    ("eye_shape", "double-lid"): {"eyes/eye-eyefold-down|up": 0.4},
    ("nose", "small"): {"nose/nose-scale-horiz-decr|incr": -0.4, "nose/nose-scale-vert-decr|incr": -0.4,
                        "nose/nose-scale-depth-decr|incr": -0.3},
    ("nose", "large"): {"nose/nose-scale-horiz-decr|incr": 0.5, "nose/nose-scale-vert-decr|incr": 0.5,
                        "nose/nose-scale-depth-decr|incr": 0.4},
    ("nose", "straight"): {"nose/nose-greek-decr|incr": 0.5, "nose/nose-hump-decr|incr": -0.3},
    ("nose", "aquiline"): {"nose/nose-hump-decr|incr": 0.8, "nose/nose-point-down|up": -0.4},
    ("nose", "button"): {"nose/nose-point-width-decr|incr": 0.4, "nose/nose-scale-vert-decr|incr": -0.4,
                         "nose/nose-point-down|up": 0.3},
    ("nose", "wide"): {"nose/nose-scale-horiz-decr|incr": 0.6, "nose/nose-flaring-decr|incr": 0.5},
    ("nose", "narrow"): {"nose/nose-scale-horiz-decr|incr": -0.6, "nose/nose-flaring-decr|incr": -0.3},
    ("nose", "upturned"): {"nose/nose-point-down|up": 0.7},
    ("nose", "high-bridged"): {"nose/nose-hump-decr|incr": 0.3, "nose/nose-width1-decr|incr": 0.3,
                               "nose/nose-scale-depth-decr|incr": 0.3},
    ("mouth", "thin"): {"mouth/mouth-lowerlip-volume-decr|incr": -0.6, "mouth/mouth-upperlip-volume-decr|incr": -0.6},
    ("mouth", "full"): {"mouth/mouth-lowerlip-volume-decr|incr": 0.6, "mouth/mouth-upperlip-volume-decr|incr": 0.6},
    ("mouth", "wide"): {"mouth/mouth-scale-horiz-decr|incr": 0.6},
    ("mouth", "small"): {"mouth/mouth-scale-horiz-decr|incr": -0.6},
    ("mouth", "bow-shaped"): {"mouth/mouth-cupidsbow-decr|incr": 0.7},
    ("eyebrow", "arched"): {"eyebrows/eyebrows-angle-down|up": 0.5},
    ("eyebrow", "straight"): {"eyebrows/eyebrows-angle-down|up": -0.3},
    ("eyebrow", "sword-like"): {"eyebrows/eyebrows-angle-down|up": 0.7},
    ("eyebrow", "willow-leaf"): {"eyebrows/eyebrows-angle-down|up": 0.2},
}


def _get(attributes, field: str):
    if isinstance(attributes, Mapping):
        return attributes.get(field)
    return getattr(attributes, field, None)


def attribute_human(attributes, *, names=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The human an attribute set describes.

    Args:
        attributes: a :class:`machlib.text.FaceAttributes` (or a mapping of its fields); ``None``
            fields are left at MakeHuman's average.
        names: the symmetric slider names (default :func:`machlib.human.symmetric_sliders`'s);
            the returned slider vector follows their order.

    Returns:
        ``(phenotype, sliders, set_by)``: the ``(11,)`` phenotype (:data:`PHENOTYPE_NAMES`
        order), the ``(S,)`` symmetric slider values, and which attribute set each named value
        (``{"gender": "gender=female", "head/head-round": "face_shape=round", …}``) for
        reports.

    Example:
        >>> from machlib.human import attribute_human
        >>> ph, sliders, why = attribute_human({"gender": "female", "age_group": "elderly"})
        >>> round(float(ph[0]), 2), round(float(ph[1]), 2), why["age"]
        (0.0, 0.88, 'age_group=elderly')
    """
    from ._model import symmetric_sliders

    if names is None:
        names = symmetric_sliders()[1]
    index = {n: i for i, n in enumerate(names)}
    ph = np.asarray(default_phenotype(), np.float64)
    sliders = np.zeros(len(names))
    why: dict = {}

    def put(var, value, reason):
        ph[PHENOTYPE_NAMES.index(var)] = value
        why[var] = reason

    g = _get(attributes, "gender")
    if g in GENDER_VALUES:
        put("gender", GENDER_VALUES[g], f"gender={g}")
    a = _get(attributes, "age_group")
    if a in AGE_VALUES:
        put("age", AGE_VALUES[a], f"age_group={a}")
    r = _get(attributes, "ancestry")
    if r in ANCESTRY_VALUES:
        for var, value in zip(("african", "asian", "caucasian"), ANCESTRY_VALUES[r]):
            put(var, value, f"ancestry={r}")
    b = _get(attributes, "build")
    if b in BUILD_VALUES:
        m, w = BUILD_VALUES[b]
        put("muscle", m, f"build={b}")
        put("weight", w, f"build={b}")
    for field in ("face_shape", "eye_shape", "nose", "mouth", "eyebrow"):
        value = _get(attributes, field)
        for slider, amount in SHAPE_SLIDERS.get((field, value), {}).items():
            if slider in index:
                sliders[index[slider]] = amount
                why[slider] = f"{field}={value}"
    return ph.astype(np.float32), sliders.astype(np.float32), why
