"""A brow the portrait shows only in part is completed along its whole length (texture._brows)."""

import numpy as np
import pytest

from machlib.geometry import default_template, template_albedo
from machlib.texture import polygon_sdf
from machlib.texture._brows import BROW_HIDDEN, _complete_brows
from machlib.texture._regions import RIGHT_BROW, mirrored
from machlib.texture._skin import srgb_to_lab

R = 128


@pytest.fixture(scope="module")
def setup():
    lm = np.asarray(default_template().landmark_uv, np.float32)
    template = np.asarray(template_albedo(R), np.float32) / 255.0
    inside = {side: np.asarray(polygon_sdf(lm[list(idx)], R)) <= 0
              for side, idx in (("right", RIGHT_BROW), ("left", mirrored(RIGHT_BROW)))}
    # the portrait's albedo: the template's skin with no brows (a light brow that reads as skin)
    skin = np.median(template[R // 2 - 4:R // 2 + 4, R // 2 - 20:R // 2 - 12].reshape(-1, 3), 0)
    brows = inside["right"] | inside["left"]
    grown = np.zeros_like(brows)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            grown |= np.roll(brows, (dy, dx), (0, 1))
    albedo = np.where(grown[..., None], skin, template).astype(np.float32)
    # the right brow's lower half unseen (a rim across it), the left brow seen whole
    rows = np.nonzero(inside["right"].any(1))[0]
    lower = np.zeros((R, R), bool)
    lower[(rows.min() + rows.max()) // 2:] = True
    confidence = np.where(inside["right"] & lower, 0.0, 1.0).astype(np.float32)
    return lm, template, albedo, confidence, inside


def test_a_half_hidden_brow_takes_the_template_strokes_along_its_whole_length(setup):
    lm, template, albedo, confidence, inside = setup
    out, hidden = _complete_brows(albedo, template, confidence, lm)
    out, hidden = np.asarray(out), np.asarray(hidden)
    assert hidden[0] >= BROW_HIDDEN and hidden[1] == 0.0
    L = lambda x: np.asarray(srgb_to_lab(x))[..., 0]  # noqa: E731
    right = inside["right"]
    # the seen upper half of the right brow darkens too (the strokes continue through it)
    seen_half = right & (confidence > 0.5)
    assert L(out)[seen_half].mean() < L(albedo)[seen_half].mean() - 5.0
    assert L(out)[right].mean() == pytest.approx(L(template)[right].mean(), abs=2.0)
    # the fully seen left brow and everything away from the brows are unchanged
    far = np.ones((R, R), bool)
    far[: R // 2] = False
    np.testing.assert_array_equal(out[far], albedo[far])
    np.testing.assert_allclose(out[inside["left"]], albedo[inside["left"]], atol=1e-6)


def test_a_brow_hidden_on_one_side_only_is_left_to_the_mirror(setup):
    lm, template, albedo, confidence, inside = setup
    out, hidden = _complete_brows(albedo, template, confidence, lm, mirror=True)
    assert np.asarray(hidden).max() == 0.0  # its mirror texels are seen: completion mirrored them
    np.testing.assert_array_equal(np.asarray(out), albedo)
    both = np.minimum(confidence, confidence[:, ::-1])  # hidden on both sides: completed again
    out, hidden = _complete_brows(albedo, template, both, lm, mirror=True)
    assert np.asarray(hidden).min() >= BROW_HIDDEN
    assert not np.array_equal(np.asarray(out)[inside["left"]], albedo[inside["left"]])


def test_the_portraits_darker_hairs_stay(setup):
    lm, template, albedo, confidence, inside = setup
    dark = np.where(inside["right"][..., None], 0.02, albedo).astype(np.float32)  # darker than any stroke
    out, _ = _complete_brows(dark, template, confidence, lm)
    np.testing.assert_allclose(np.asarray(out)[inside["right"]], dark[inside["right"]], atol=1e-6)
