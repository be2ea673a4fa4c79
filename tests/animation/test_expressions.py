"""Emotion presets: ARKit names, FACS action units, mixing, parsing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from helpers import x64
from machlib import InputError
from machlib.animation import (
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


def test_arkit_names_are_the_52_standard_ones():
    assert len(ARKIT_BLENDSHAPES) == 52 == len(set(ARKIT_BLENDSHAPES))
    for name in ("eyeBlinkLeft", "jawOpen", "mouthSmileRight", "browInnerUp", "cheekPuff", "tongueOut",
                 "noseSneerLeft", "mouthRollUpper", "eyeLookOutRight"):
        assert name in ARKIT_BLENDSHAPES
    # every sided shape has its mirror
    for name in ARKIT_BLENDSHAPES:
        if name.endswith("Left"):
            assert name[:-4] + "Right" in ARKIT_BLENDSHAPES


def test_action_units_use_known_shapes_and_sides():
    for shapes in ACTION_UNITS.values():
        assert set(shapes) <= set(ARKIT_BLENDSHAPES)
    both, right, left = action_unit_weights(12), action_unit_weights("R12"), action_unit_weights("L12")
    np.testing.assert_allclose(right + left, both)
    assert right[ARKIT_BLENDSHAPES.index("mouthSmileRight")] == 1 and right[ARKIT_BLENDSHAPES.index("mouthSmileLeft")] == 0


@pytest.mark.parametrize("unit, intensity, match", [(13, 1.0, "unknown action unit"), ("X4", 1.0, "unknown action unit"),
                                                    (4, 1.5, r"\[0, 1\]")])
def test_action_unit_bad_input(unit, intensity, match):
    with pytest.raises((ValueError, TypeError), match=match):
        action_unit_weights(unit, intensity=intensity)


def test_emotion_prototypes_move_the_expected_shapes():
    B = emotion_basis()
    assert B.shape == (7, 52) and B.min() >= 0 and B.max() <= 1
    idx = ARKIT_BLENDSHAPES.index
    row = dict(zip(EMOTIONS, B))
    assert row["happiness"][idx("mouthSmileLeft")] == 1 and row["happiness"][idx("cheekSquintRight")] > 0.5
    assert row["sadness"][idx("mouthFrownLeft")] > 0.5 and row["sadness"][idx("browInnerUp")] > 0.5
    assert row["anger"][idx("browDownLeft")] == 1 and row["anger"][idx("mouthSmileLeft")] == 0
    assert row["surprise"][idx("jawOpen")] > 0.3 and row["surprise"][idx("browOuterUpRight")] == 1
    assert row["fear"][idx("mouthStretchLeft")] > 0.5 and row["fear"][idx("eyeWideRight")] > 0.5
    assert row["disgust"][idx("noseSneerLeft")] > 0.5
    # contempt is one-sided
    assert row["contempt"][idx("mouthDimpleRight")] > 0 and row["contempt"][idx("mouthDimpleLeft")] == 0
    # no two emotions are the same expression
    assert len({tuple(np.round(r, 3)) for r in B}) == 7
    assert set(EMOTION_ACTION_UNITS) == set(EMOTIONS)


def test_expression_weights_mix_and_clip():
    v = emotion_vector({"happiness": 0.5, "surprise": 0.5})
    w = np.asarray(expression_weights(jnp.asarray(v)))
    B = emotion_basis()
    np.testing.assert_allclose(w, np.clip(0.5 * B[0] + 0.5 * B[4], 0, 1), atol=1e-6)
    full = np.asarray(expression_weights(jnp.ones(7)))
    assert full.max() == 1.0 and full.min() >= 0.0
    assert np.all(np.asarray(expression_weights(jnp.zeros(7))) == 0)


def test_expression_weights_jit_vmap_and_gradient():
    key = jax.random.PRNGKey(0)
    batch = jax.random.uniform(key, (5, 7), minval=0.0, maxval=0.3)
    eager = np.stack([np.asarray(expression_weights(b)) for b in batch])
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(expression_weights))(batch)), eager, atol=1e-6)
    with x64():
        x = jnp.asarray([0.2, 0.1, 0.05, 0.1, 0.15, 0.1, 0.2], jnp.float64)  # interior: nothing clipped
        check_grads(lambda v: jnp.sum(expression_weights(v) ** 2), (x,), order=1, modes=("rev",), eps=1e-6)


def test_parse_expression():
    assert parse_expression("happiness=0.8,surprise=0.3") == {"happiness": 0.8, "surprise": 0.3}
    assert parse_expression("  ANGER ") == {"anger": 1.0}
    assert parse_expression("neutral") == {} == parse_expression("")
    np.testing.assert_array_equal(emotion_vector(None), np.zeros(7))


@pytest.mark.parametrize("text, match", [("joy=0.5", "unknown emotion 'joy'"), ("fear=high", "must be a number"),
                                         ("fear=1.5", r"\[0, 1\]"), ("fear=0.1,fear=0.2", "given twice")])
def test_parse_expression_errors(text, match):
    with pytest.raises(InputError, match=match):
        parse_expression(text)


def test_emotion_vector_errors():
    with pytest.raises(InputError, match="unknown emotion"):
        emotion_vector({"bliss": 0.2})
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        emotion_vector({"fear": -0.1})
