"""Words → the human (machlib.human.attribute_human): the stated gender, age, build and ancestry
set the macro values, shape words the sliders, and each says which attribute set it."""

from __future__ import annotations

import numpy as np
import pytest

from machlib.human import ANCESTRY_VALUES, PHENOTYPE_NAMES, attribute_human, default_phenotype
from machlib.text import VOCABULARY, FaceAttributes

RACE = [PHENOTYPE_NAMES.index(n) for n in ("african", "asian", "caucasian")]


@pytest.mark.parametrize("ancestry", list(VOCABULARY["ancestry"]))
def test_a_stated_ancestry_sets_the_race_blend(ancestry):
    ph, _, why = attribute_human(FaceAttributes(gender="male", ancestry=ancestry))
    np.testing.assert_allclose(ph[RACE], ANCESTRY_VALUES[ancestry], atol=1e-6)
    assert abs(float(ph[RACE].sum()) - 1.0) < 1e-6
    assert why["african"] == why["caucasian"] == f"ancestry={ancestry}" and why["gender"] == "gender=male"


def test_without_an_ancestry_the_blend_stays_makehumans_average():
    ph, _, why = attribute_human({"gender": "female", "age_group": "elderly"})
    np.testing.assert_allclose(ph[RACE], np.asarray(default_phenotype())[RACE])
    assert "african" not in why
    black, _, _ = attribute_human({"ancestry": "african"})
    assert black[RACE[0]] == 1.0 and black[RACE[2]] == 0.0
