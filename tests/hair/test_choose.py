"""machlib.hair.style_for: the library style a description asks for, by rule (no text ranking)."""

import pytest

from machlib.hair import HAIR_STYLES, StyleChoice, length_class, style_for
from machlib.text import parse_prompt


def _choose(prompt: str) -> StyleChoice:
    a = parse_prompt(prompt).attributes
    return style_for(hairstyle=a.hairstyle, hair_length=a.hair_length, hair_texture=a.hair_texture,
                     bangs=a.bangs, gender=a.gender, age_group=a.age_group)


@pytest.mark.parametrize("prompt, style", [
    ("a woman in a crop top", "long straight"),  # a crop top is not a crop (the text ranking chose it)
    ("an old woman", "bob"),  # no hair words: not bald (the text ranking's noise chose bald)
    ("a young man", "crop"),  # (the text ranking chose a ponytail)
    ("a man with a beard", "crop"),
    ("a woman with short gray hair", "pixie"),  # short on a woman
    ("a man with short hair in a suit", "crop"),  # short on a man
    ("a woman with curly hair", "long curly"),
    ("a man with short curly hair", "afro"),  # coily hair reads short
    ("a woman with shoulder length hair and bangs", "bob"),
    ("a man with long hair", "long straight"),
    ("a girl with a ponytail", "ponytail"),  # named
    ("a bald man", "bald"),
])
def test_prompts_get_the_style_a_reader_expects(prompt, style):
    choice = _choose(prompt)
    assert choice.style == style, choice
    assert choice.style in choice.candidates and choice.reason.endswith(style)


def test_every_preset_is_reachable_by_name_and_bald_only_by_name():
    for name in HAIR_STYLES:
        assert style_for(hairstyle=name).style == name
    described = {style_for(hair_length=n, hair_texture=t, bangs=b, gender=g).style
                 for n in (None, "very short", "short", "medium", "long", "very long")
                 for t in (None, "straight", "wavy", "curly", "coily") for b in (None, "present", "none")
                 for g in (None, "female", "male")}
    assert "bald" not in described and described <= set(HAIR_STYLES)


def test_length_classes():
    assert [length_class(HAIR_STYLES[s].length) for s in ("bald", "buzz cut", "crop", "bob", "long straight")] == [
        "bald", "very short", "short", "medium", "long"]
    assert length_class(0.10, curl="coily") == "short" and length_class(0.10) == "medium"
    assert length_class(0.05, gathered=True) == "long"
    with pytest.raises(ValueError, match="length_class"):
        length_class(-0.1)


@pytest.mark.parametrize("kwargs, word", [({"hair_length": "waist"}, "hair_length"), ({"gender": "f"}, "gender"),
                                          ({"hairstyle": "mohawk"}, "hairstyle"), ({"age_group": "old"}, "age_group"),
                                          ({"hair_texture": "frizzy"}, "hair_texture"), ({"bangs": "yes"}, "bangs")])
def test_unknown_values_are_named(kwargs, word):
    with pytest.raises(ValueError, match=f"style_for: unknown {word}"):
        style_for(**kwargs)
