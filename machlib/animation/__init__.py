"""Animation: ARKit's 52 blendshapes, FACS action units and mixable emotion presets.

* :data:`ARKIT_BLENDSHAPES`: the 52 names, the order of every expression vector.
* :data:`ACTION_UNITS` and :func:`action_unit_weights`: FACS action units as blendshape weights.
* :data:`EMOTIONS`, :data:`EMOTION_ACTION_UNITS` and :func:`emotion_basis`: the seven basic emotions
  as action-unit prototypes, and their (7, 52) blendshape matrix.
* :func:`expression_weights` (pure JAX) mixes emotion intensities into blendshape weights;
  :func:`parse_expression` and :func:`emotion_vector` read the CLI's ``happiness=0.8,surprise=0.3``.
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

__all__ = [
    "ARKIT_BLENDSHAPES", "ACTION_UNITS", "EMOTIONS", "EMOTION_ACTION_UNITS",
    "action_unit_weights", "emotion_basis", "expression_weights", "parse_expression", "emotion_vector",
]
