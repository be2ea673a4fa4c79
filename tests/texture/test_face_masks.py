"""texture_portrait's photo masks that are pure numpy: the strands that run on from the hair into
the face (skin=True). Synthetic inputs, no fit."""

from __future__ import annotations

import numpy as np

from machlib.pipeline import HAIR_STRAND_TEST, _strands_from_hair


def test_strands_from_hair_follow_the_hair_not_creases():
    h, w, fw = 80, 120, 200.0  # reach: 30 px
    hair = np.zeros((h, w), bool)
    hair[:, :10] = True  # the hair beside the face
    allowed = ~hair
    likely = np.ones((h, w), np.float32)  # skin everywhere
    likely[30:34, 10:35] = 0.6  # a strand, half skin by colour, running on from the hair
    likely[31, 20] = 1.0  # a highlight on it that reads as skin
    likely[60:63, 50:70] = 0.2  # a crease inside the face, far from the hair
    likely[10:13, 10:100] = 0.6  # a long strand: followed only 15 % of the face width
    out = _strands_from_hair(hair, likely, allowed, fw)
    assert out.dtype == np.float32 and out.shape == (h, w)
    assert out[30:34, 10:35].min() == 1.0  # the whole strand, its highlight closed over
    assert out[60:63, 50:70].max() == 0.0  # the crease does not touch the hair
    assert out[11, 10 + int(HAIR_STRAND_TEST[1] * fw) - 2] == 1.0 and out[11, 10 + int(HAIR_STRAND_TEST[1] * fw) + 3:].max() == 0.0
    assert out[hair].max() == 0.0 and out[45:55, 20:].max() == 0.0  # neither the hair nor skin
    assert not _strands_from_hair(np.zeros_like(hair), likely, allowed, fw).any()


def test_skin_test_band_follows_the_edge_of_the_shown_face():
    from machlib.pipeline import SKIN_TEST_BAND, _skin_test_band

    h, w, fw = 60, 200, 100.0  # band: full within 4 px, none beyond 8 px
    oval = np.zeros((h, w), np.float32)
    oval[5:55, 5:195] = 1.0
    hidden = np.zeros_like(oval)
    hidden[:, 120:] = 1.0  # hair over one side of the face, far inside the oval
    band = _skin_test_band(oval, hidden, fw)
    assert band.dtype == np.float32 and band.shape == (h, w)
    assert band[30, 117] == 1.0  # beside the hair's edge, inside the oval: tested
    assert band[30, 120 - int(SKIN_TEST_BAND[1] * fw) - 2] == 0.0  # further in: the face's own shading
    assert band[30, 6] == 1.0 and band[30, 60] == 0.0  # along the oval's own edge as before
    assert np.array_equal(_skin_test_band(oval, np.zeros_like(oval), fw)[:, :100],
                          _skin_test_band(oval, hidden, fw)[:, :100])  # nothing hidden near: unchanged
