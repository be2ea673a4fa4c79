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
