"""FaceAttributes: validation, dict/JSON round trips, vocabularies and asset tags."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import machlib.hair
from machlib.text import FIELDS, VOCABULARY, FaceAttributes, canonical_value

attributes = st.fixed_dictionaries(
    {}, optional={f: st.sampled_from(list(VOCABULARY[f])) for f in FIELDS}
).map(lambda d: FaceAttributes(**d))


@given(attributes)
def test_dict_and_json_round_trip(a):
    assert FaceAttributes.from_dict(a.to_dict()) == a
    assert FaceAttributes.from_dict(a.to_dict(include_none=True)) == a
    assert FaceAttributes.from_json(a.to_json()) == a
    assert FaceAttributes.from_json(a.to_json(indent=2)) == a
    assert all(v is not None for v in a.to_dict().values())
    assert list(a.to_dict(include_none=True)) == list(FIELDS)


def test_every_value_is_valid_and_round_trips():
    for field, values in VOCABULARY.items():
        for value in values:
            a = FaceAttributes(**{field: value})
            assert json.loads(a.to_json()) == {field: value}
            assert f"{field}:{value}" in a.tags()


def test_unknown_value_names_field_and_value():
    with pytest.raises((ValueError, TypeError), match="hair_color"):
        FaceAttributes(hair_color="chartreuse")
    with pytest.raises(ValueError, match="chartreuse"):
        FaceAttributes.from_dict({"hair_color": "chartreuse"})
    with pytest.raises(ValueError, match="glasses"):
        FaceAttributes.from_json('{"glasses": "monocle"}')


def test_unknown_field_is_named():
    with pytest.raises(ValueError, match="tail_length"):
        FaceAttributes.from_dict({"gender": "female", "tail_length": "long"})
    with pytest.raises(ValueError, match="tail_length"):
        FaceAttributes.from_json('{"tail_length": "long"}')
    with pytest.raises(ValueError, match="tail_length"):
        FaceAttributes().replace(tail_length="long")
    with pytest.raises((ValueError, TypeError), match="tail_length"):
        FaceAttributes(tail_length="long")


def test_wrong_types_raise():
    with pytest.raises((ValueError, TypeError), match="age_group"):
        FaceAttributes(age_group=70)
    with pytest.raises((ValueError, TypeError)):
        FaceAttributes.from_dict(["gender", "male"])
    with pytest.raises(ValueError, match="JSON"):
        FaceAttributes.from_json("{not json")
    with pytest.raises(ValueError, match="object"):
        FaceAttributes.from_json('["gender"]')


def test_frozen_and_replace():
    a = FaceAttributes(gender="male")
    with pytest.raises(AttributeError):
        a.gender = "female"
    b = a.replace(beard="goatee")
    assert (a.beard, b.beard, b.gender) == (None, "goatee", "male")
    with pytest.raises(ValueError, match="beard"):
        a.replace(beard="braided")


def test_hair_vocabularies_match_the_hair_library():
    assert list(VOCABULARY["hairstyle"]) == list(machlib.hair.HAIR_STYLES)
    assert list(VOCABULARY["hair_color"]) == list(machlib.hair.HAIR_COLORS)


def test_synonyms_are_unique_within_a_field():
    for field, values in VOCABULARY.items():
        seen = {}
        for value, synonyms in values.items():
            for phrase in [value.replace("-", " "), *synonyms]:
                assert phrase == phrase.lower().strip(), (field, phrase)
                assert seen.setdefault(phrase, value) == value, f"{field}: {phrase!r} names two values"


def test_canonical_value():
    assert canonical_value("hair_color", "Grey") == "gray"
    assert canonical_value("hair_color", "platinum-blonde") == "blonde"
    assert canonical_value("eyebrow", "willow leaf") == "willow-leaf"
    assert canonical_value("face_shape", "V-shaped") == "v-shaped"
    assert canonical_value("nose", "trunk") is None
    with pytest.raises(ValueError, match="horns"):
        canonical_value("horns", "long")


def test_tags():
    assert FaceAttributes().tags() == []
    tags = FaceAttributes(hairstyle="bob", hair_length="medium", beard="goatee", glasses="none").tags()
    assert tags == ["hairstyle:bob", "hair_length:medium", "glasses:none", "beard:goatee", "beard:present"]
    assert "hair_texture:coily" in FaceAttributes(hairstyle="afro").tags()
    assert FaceAttributes(glasses="present").tags() == ["glasses:present"]
