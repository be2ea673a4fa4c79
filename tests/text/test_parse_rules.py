"""RuleParser: lexicon coverage, attachment, negation, ages, conflicts, unknown phrases."""

import pytest

from machlib.text import VOCABULARY, Ambiguity, FaceAttributes, Parser, ParseResult, RuleParser, parse_prompt
from machlib.text._parse import _FIELD_GROUPS, _HEAD_VALUES, _HEADS, _SKIP_CANONICAL


def attrs(prompt):
    return parse_prompt(prompt).attributes.to_dict()


def test_every_synonym_is_read_next_to_its_noun():
    nouns = {g: next(iter(h)) for g, h in _HEADS.items()}
    nouns["person"] = "woman"  # ancestry: "black woman", "east asian woman"
    bad = []
    for field, values in VOCABULARY.items():
        group = _FIELD_GROUPS[field][0]
        for value, synonyms in values.items():
            canonical = [] if value in ("none", "present") or (field, value) in _SKIP_CANONICAL else [value]
            for phrase in [*synonyms, *canonical]:
                prompt = phrase if group is None or (field, value) in _HEAD_VALUES else f"{phrase} {nouns[group]}"
                got = getattr(parse_prompt(prompt).attributes, field)
                if got != value:
                    bad.append((prompt, field, value, got))
    assert not bad


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("no glasses", {"glasses": "none"}),
        ("a man without a beard", {"gender": "male", "beard": "none"}),
        ("she is not wearing glasses", {"gender": "female", "glasses": "none"}),
        ("he doesn't have a moustache", {"gender": "male", "moustache": "none"}),
        ("no facial hair", {"beard": "none", "moustache": "none"}),
        ("no makeup, no lipstick, no bangs", {"makeup": "none", "lipstick_color": "none", "bangs": "none"}),
        ("a woman with no freckles and no wrinkles", {"gender": "female", "freckles": "none", "wrinkles": "none"}),
    ],
)
def test_negation(prompt, expected):
    assert attrs(prompt) == expected


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("red hair", {"hair_color": "red"}),
        ("blue eyes", {"iris_color": "blue"}),
        ("red lipstick", {"lipstick_color": "red"}),
        ("black-framed glasses", {"glasses": "present", "glasses_color": "black"}),
        ("gold rimmed round glasses", {"glasses": "round", "glasses_color": "gold"}),
        ("blue-eyed", {"iris_color": "blue"}),
        ("her hair is red and her eyes are blue", {"gender": "female", "hair_color": "red", "iris_color": "blue"}),
        ("hair: long, dyed pink", {"hair_length": "long", "hair_color": "pink"}),
        ("dark skin and dark eyes", {"skin_tone": "dark", "iris_color": "black"}),
        ("gray short hair", {"hair_color": "gray", "hair_length": "short"}),
    ],
)
def test_colours_attach_to_their_noun(prompt, expected):
    assert attrs(prompt) == expected


@pytest.mark.parametrize(
    "prompt, age",
    [
        ("a 70-year-old", "elderly"),
        ("a woman, 8 years old", "child"),
        ("aged 16", "teen"),
        ("around 20 years old", "young adult"),
        ("in her 30s", "adult"),
        ("a man in his fifties", "middle-aged"),
        ("a young woman, 35 years old", "adult"),  # numbers override age words
    ],
)
def test_ages(prompt, age):
    assert parse_prompt(prompt).attributes.age_group == age


def test_conflicts_are_ambiguous_and_unset():
    r = parse_prompt("a woman with red hair and black hair")
    assert r.attributes.hair_color is None
    assert r.ambiguous == [Ambiguity("red hair / black hair", (("hair_color", "red"), ("hair_color", "black")))]
    r = parse_prompt("round")
    assert r.attributes == FaceAttributes()
    assert {f for f, _ in r.ambiguous[0].candidates} == {"face_shape", "eye_shape", "glasses"}


def test_specific_values_override_mentions():
    assert attrs("glasses, round ones: round glasses") == {"glasses": "round"}
    assert attrs("aviator sunglasses") == {"glasses": "aviator"}
    assert attrs("deep wrinkles") == {"wrinkles": "heavy"}
    assert attrs("a girl, he")["gender"] == "female"  # nouns override pronouns
    # a generic mention and one specific kind agree; present against none stays a conflict
    assert attrs("a bearded man with a goatee") == {"gender": "male", "beard": "goatee"}
    r = parse_prompt("a bearded, clean-shaven man")
    assert r.attributes.beard is None and {v for _, v in r.ambiguous[0].candidates} == {"present", "none"}


def test_hairstyle_from_length_and_texture():
    assert attrs("long curly hair")["hairstyle"] == "long curly"
    assert attrs("long, straight hair")["hairstyle"] == "long straight"
    assert attrs("short wavy hair")["hairstyle"] == "wavy"
    assert "hairstyle" not in attrs("short curly hair")


def test_a_crop_is_a_haircut_only_in_its_phrases():
    assert attrs("a young man with a french crop and a beard")["hairstyle"] == "crop"
    assert attrs("a man with a short crop")["hairstyle"] == "crop"
    assert "hairstyle" not in attrs("a woman in a crop top")  # a bare "crop" is not read as hair


def test_unknown_and_evidence():
    r = parse_prompt("A cool girl with rosy cheeks and red hair, wearing a red scarf")
    assert r.unknown == ["cool", "rosy cheeks", "red scarf"]
    assert r.evidence == {"gender": "girl", "hair_color": "red hair"}
    assert set(r.evidence) == set(r.attributes.to_dict())


def test_parser_protocol_and_custom_parser():
    class Fixed:
        def parse(self, prompt: str) -> ParseResult:
            return ParseResult(attributes=FaceAttributes(gender="male"), unknown=[prompt], ambiguous=[], evidence={})

    assert isinstance(RuleParser(), Parser)
    assert isinstance(Fixed(), Parser)
    assert parse_prompt("anything", parser=Fixed()).unknown == ["anything"]


def test_custom_vocabulary():
    vocab = {f: {v: list(s) for v, s in vals.items()} for f, vals in VOCABULARY.items()}
    vocab["hair_color"]["gray"].append("pewter")
    assert RuleParser(vocabulary=vocab).parse("pewter hair").attributes.hair_color == "gray"
    assert parse_prompt("pewter hair").attributes.hair_color is None
    with pytest.raises(ValueError, match="tail"):
        RuleParser(vocabulary={"tail": {}})


def test_bad_prompt_type():
    with pytest.raises(TypeError):
        parse_prompt(42)


def test_empty_prompt():
    r = parse_prompt("")
    assert (r.attributes, r.unknown, r.ambiguous, r.evidence) == (FaceAttributes(), [], [], {})
