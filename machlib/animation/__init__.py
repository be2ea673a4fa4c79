"""Animation: ARKit's 52 blendshapes, FACS action units and mixable emotion presets.

* :data:`ARKIT_BLENDSHAPES`: the 52 names, the order of every expression vector.
* :data:`ACTION_UNITS` and :func:`action_unit_weights`: FACS action units as blendshape weights.
* :data:`EMOTIONS`, :data:`EMOTION_ACTION_UNITS` and :func:`emotion_basis`: the seven basic emotions
  as action-unit prototypes, and their (7, 52) blendshape matrix.
* :func:`expression_weights` (pure JAX) mixes emotion intensities into blendshape weights;
  :func:`parse_expression` and :func:`emotion_vector` read the CLI's ``happiness=0.8,surprise=0.3``.
* :func:`blendshape_triplanes`: the 52 blendshapes as displacement fields in the template's UV
  layout ("delta triplanes"), built from :func:`blendshape_field` placed by :func:`face_frame`;
  :func:`head_blendshapes` samples them on a fitted head, :func:`mouth_cut` parts its lips,
  :func:`eye_blendshapes` turns the eyeballs, and :func:`apply_blendshapes` (pure JAX) poses a mesh.
"""

from ._expressions import (
    ACTION_UNITS,
    ARKIT_BLENDSHAPES,
    EMOTION_ACTION_UNITS,
    EMOTIONS,
    action_unit_weights,
    emotion_basis,
    emotion_vector,
    expression_weights,
    parse_expression,
)

from ._blendshapes import (
    EYE_LOOK_DEGREES,
    FaceFrame,
    MouthCut,
    apply_blendshapes,
    blendshape_field,
    blendshape_triplanes,
    eye_blendshapes,
    face_frame,
    head_blendshapes,
    mouth_cut,
)

__all__ = [
    "ARKIT_BLENDSHAPES", "ACTION_UNITS", "EMOTIONS", "EMOTION_ACTION_UNITS",
    "action_unit_weights", "emotion_basis", "expression_weights", "parse_expression", "emotion_vector",
    "FaceFrame", "face_frame", "blendshape_field", "blendshape_triplanes", "head_blendshapes", "MouthCut",
    "mouth_cut", "eye_blendshapes", "apply_blendshapes", "EYE_LOOK_DEGREES",
]
