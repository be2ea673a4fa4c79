"""Portrait prompts (issue 5): attributes → a frontal, neutral, evenly lit Stable Diffusion prompt and
its negative prompt."""

import json
from pathlib import Path

import pytest

from machlib.text import VOCABULARY, FaceAttributes, parse_prompt
from machlib.text._prompting import PORTRAIT_NEGATIVE, PortraitPrompt, portrait_prompt

FRAMING = ("frontal", "neutral expression", "mouth closed", "looking straight at the camera", "even lighting")


def _phrases(text):
    return text.split(", ")


def test_framing_and_generic_negatives_are_always_there():
    p = portrait_prompt(FaceAttributes())
    assert isinstance(p, PortraitPrompt) and p == (p.prompt, p.negative_prompt)
    assert p.prompt.startswith("passport-style frontal portrait photo of a person, ")
    for word in FRAMING:
        assert word in p.prompt, word
    assert _phrases(p.negative_prompt) == list(PORTRAIT_NEGATIVE)
    for word in ("profile", "tilted head", "smile", "open mouth", "harsh shadows", "hat", "occlusion", "blurry",
                 "extra faces"):
        assert word in _phrases(p.negative_prompt), word


@pytest.mark.parametrize("field", list(VOCABULARY))
def test_every_set_value_contributes_a_phrase(field):
    base = portrait_prompt(FaceAttributes())
    for value in VOCABULARY[field]:
        p = portrait_prompt(FaceAttributes(**{field: value}))
        assert p != base, (field, value)
        # each phrase appears once
        assert len(set(_phrases(p.prompt))) == len(_phrases(p.prompt)), p.prompt
        assert len(set(_phrases(p.negative_prompt))) == len(_phrases(p.negative_prompt)), p.negative_prompt


def test_subject_from_age_and_gender():
    cases = {
        ("elderly", "male"): "an elderly man", ("teen", "female"): "a teenage girl", ("child", None): "a child",
        (None, "female"): "a woman", ("young adult", "male"): "a young man", ("adult", "neutral"): "an androgynous adult",
    }
    for (age, gender), subject in cases.items():
        p = portrait_prompt(FaceAttributes(age_group=age, gender=gender))
        assert p.prompt.startswith(f"passport-style frontal portrait photo of {subject}, "), (age, gender)
        assert "man" not in _phrases(p.prompt)[1:]  # the subject is not repeated


def test_hair_is_one_phrase_from_its_fields():
    a = FaceAttributes(hair_length="long", hair_texture="wavy", hair_color="red", hairstyle="bun")
    assert "long wavy red hair in a bun" in _phrases(portrait_prompt(a).prompt)
    assert "long curly black hair" in _phrases(portrait_prompt(FaceAttributes(hairstyle="long curly", hair_color="black")).prompt)
    assert "short blonde bob haircut" in portrait_prompt(FaceAttributes(hairstyle="bob", hair_length="short",
                                                                        hair_color="blonde")).prompt
    bald = portrait_prompt(FaceAttributes(hairstyle="bald", hair_color="gray"))
    assert "bald head" in bald.prompt and "gray hair" not in bald.prompt and "hair" in _phrases(bald.negative_prompt)


def test_attribute_driven_negatives():
    p = portrait_prompt(FaceAttributes(glasses="none", beard="none", moustache="none", makeup="none"))
    neg = _phrases(p.negative_prompt)
    for word in ("glasses", "eyeglasses", "beard", "mustache", "makeup", "lipstick"):
        assert word in neg, word
    assert neg.index("glasses") < neg.index("profile")  # attribute negatives come first (CLIP truncates)
    assert "clean-shaven" in p.prompt and "no makeup" in p.prompt and "glasses" not in p.prompt
    # negatives never contradict the prompt
    q = portrait_prompt(FaceAttributes(makeup="none", lipstick_color="red"))
    assert "red lipstick" in q.prompt and "lipstick" not in _phrases(q.negative_prompt)
    young = portrait_prompt(FaceAttributes(age_group="young adult"))
    assert "wrinkles" in _phrases(young.negative_prompt)
    assert "wrinkles" not in _phrases(portrait_prompt(FaceAttributes(age_group="elderly")).negative_prompt)


def test_glasses_phrase_and_include_glasses():
    a = FaceAttributes(glasses="round", glasses_color="tortoiseshell")
    assert "tortoiseshell round glasses" in portrait_prompt(a).prompt
    assert "black-framed glasses" in portrait_prompt(FaceAttributes(glasses="present", glasses_color="black")).prompt
    off = portrait_prompt(a, include_glasses=False)
    assert "glasses" not in off.prompt and "glasses" in _phrases(off.negative_prompt)
    assert "gold glasses" not in portrait_prompt(FaceAttributes(glasses="none", glasses_color="gold")).prompt


def test_text_prompt_is_parsed_and_keeps_unknown_phrases():
    text = ("Chinese girl, Bobo haircut with a straight bangs, around 20 years old. She has a Vshaped face, "
            "cameo lipstick, dimples.")
    p = portrait_prompt(text)
    assert p == portrait_prompt(parse_prompt(text).attributes, extra="dimples")
    assert "a young East Asian woman" in p.prompt  # "Chinese" is read as the ancestry
    for phrase in ("bob haircut", "straight bangs", "cameo pink lipstick", "v-shaped face", "dimples"):
        assert phrase in _phrases(p.prompt), phrase
    assert "dimples" not in portrait_prompt(text, keep_unknown=False).prompt


def test_extra_text_and_determinism():
    a = FaceAttributes(gender="male", beard="goatee", garment="suit")
    p = portrait_prompt(a, extra="  east asian,\n", extra_negative="glare")
    assert "east asian" in _phrases(p.prompt) and _phrases(p.negative_prompt)[-1] == "glare"
    assert p == portrait_prompt(a, extra="east asian", extra_negative="glare")
    assert "goatee" in p.prompt and "wearing a suit" in p.prompt
    # the order is stable: appearance before the shapes the ControlNet clues also carry
    full = portrait_prompt(FaceAttributes(hair_color="black", face_shape="oval", nose="small", skin_tone="tan"))
    ph = _phrases(full.prompt)
    assert ph.index("black hair") < ph.index("tan skin") < ph.index("oval face") < ph.index("small nose")


def test_figure1_prompts_give_sensible_prompts():
    data = json.loads((Path(__file__).parent / "prompts.json").read_text())["prompts"]
    for item in data:
        if not item.get("figure1"):
            continue
        p = portrait_prompt(item["prompt"])
        for word in FRAMING:
            assert word in p.prompt
        assert len(p.prompt.split()) < 70  # comfortably inside CLIP's 77 tokens
    assert "gray hair" in portrait_prompt("An old man with wrinkles on his face, he has gray hair.").prompt


def test_bad_input():
    with pytest.raises((ValueError, TypeError), match="attributes"):
        portrait_prompt({"gender": "male"})
    with pytest.raises((ValueError, TypeError), match="extra"):
        portrait_prompt(FaceAttributes(), extra=3)
