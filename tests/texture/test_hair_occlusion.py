"""texture_portrait(hair=...): the hair over the face (the astronaut's side-swept fringe) is
treated as hidden, so its texels are unseen and completed; the mask is returned for the hair
stage to reuse, and a given HairMask is used as is."""

from __future__ import annotations

import numpy as np
import pytest

from machlib.pipeline import face_mask, fit_portrait, texture_portrait
from machlib.texture import TextureFitConfig

SMALL = TextureFitConfig(resolutions=(32, 128), steps=(30, 20), learning_rates=(0.05, 0.03))


@pytest.fixture(scope="module")
def astronaut_fit():
    from skimage import data

    return fit_portrait(data.astronaut())


@pytest.mark.slow
def test_hair_over_the_face_is_unseen(astronaut_fit):
    fit = astronaut_fit
    h, w = fit.image.shape[:2]
    plain = texture_portrait(fit, config=SMALL, hair=False, glasses=False, mouth=False)
    hidden = texture_portrait(fit, config=SMALL, glasses=False)
    assert plain.hair is None and hidden.hair is not None
    face = face_mask(fit.landmarks, (w, h)) > 0.5
    fringe = (hidden.hair.mask > 0.5) & face
    assert fringe.sum() > 50  # her fringe reaches into the face oval
    assert (hidden.occlusion[fringe] > 0.5).all() and plain.occlusion.max() == 0.0
    assert hidden.metrics["seen_texel_fraction"] < plain.metrics["seen_texel_fraction"]
    # the skin tone's ITA has the light read from her teeth divided out; her portrait is
    # white-balanced, so that moves it little (tests/test_illuminant.py tests the shift itself)
    m = hidden.metrics
    assert m["light"]["teeth_pixels"] > 40 and abs(m["ita_degrees"] - m["ita_degrees_unbalanced"]) < 5.0
    # the mask can be handed back in (hair_portrait(mask=tex.hair) does the same), or be wrong
    again = texture_portrait(fit, config=SMALL, glasses=False, hair=hidden.hair)
    assert again.hair is hidden.hair
    np.testing.assert_array_equal(again.occlusion, hidden.occlusion)
    # her smile shows her teeth: the inner lip polygon is hidden (mouth=True, the default), so
    # they are not painted on the lips; with mouth=False it is not
    from machlib._facemesh import LIPS_INNER
    from skimage.draw import polygon

    p = np.asarray(fit.landmarks.points)[list(LIPS_INNER), :2]
    rr, cc = polygon(p[:, 1] - 0.5, p[:, 0] - 0.5, shape=(h, w))
    assert rr.size > 50
    assert (hidden.occlusion[rr, cc] == 1.0).all()
    assert (plain.occlusion[rr, cc] == 0.0).all()
    with pytest.raises((ValueError, TypeError), match="texture_portrait|hair"):
        texture_portrait(fit, config=SMALL, hair=np.zeros((h, w)))
    # the first step, computed apart (make_character runs it beside the geometry fit), gives the same texture
    from machlib.pipeline import portrait_occlusion

    occluded = portrait_occlusion(fit.image, fit.landmarks, glasses=False)
    assert set(occluded.timings) == {"hair mask", "skin"} and occluded.glasses is None
    apart = texture_portrait(fit, config=SMALL, glasses=False, occluded=occluded)
    np.testing.assert_array_equal(apart.occlusion, hidden.occlusion)
    np.testing.assert_array_equal(apart.not_skin, hidden.not_skin)
    np.testing.assert_array_equal(apart.albedo, hidden.albedo)
    with pytest.raises((ValueError, TypeError), match="occluded|occlusion"):
        texture_portrait(fit, config=SMALL, occluded=occluded._replace(hidden=np.zeros((3, 3), np.float32)))
    with pytest.raises((ValueError, TypeError), match="portrait_occlusion"):
        portrait_occlusion(fit.image, fit.landmarks.points)


@pytest.mark.slow
def test_hair_portrait_takes_the_light_from_a_callable_at_its_end(astronaut_fit):
    """make_character runs the texture stage beside the hair stage and hands the hair stage its
    light as a callable: called once, it gives the strands and colour the array gives."""
    from machlib.pipeline import hair_portrait
    from machlib import InputError

    sh = np.zeros((9, 3))
    sh[0], sh[2] = (1.9, 1.8, 1.6), (0.4, 0.4, 0.35)  # a warm ambient light from above
    kw = dict(n_strands=300, n_points=8, guides=60, seed=3)
    given = hair_portrait(astronaut_fit, lighting=sh, **kw)
    calls = []
    waited = hair_portrait(astronaut_fit, lighting=lambda: calls.append(1) or sh, **kw)
    assert calls == [1]
    assert given.color["calibration"] and waited.color == given.color
    assert waited.reading == given.reading and waited.reading["hair_color"] == given.color["name"]
    np.testing.assert_array_equal(waited.strands.points, given.strands.points)
    np.testing.assert_array_equal(waited.strands.color, given.strands.color)
    np.testing.assert_array_equal(waited.cleanup.strands.color, waited.strands.color)
    with pytest.raises(InputError, match="lighting"):  # what the callable returns is checked too
        hair_portrait(astronaut_fit, mask=given.mask, style="bald", lighting=lambda: sh[:3], **kw)
