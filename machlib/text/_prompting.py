"""Facial attributes → a Stable Diffusion prompt and negative prompt for a reference portrait.

Make-A-Character (§2.1) needs a *frontal*, *neutral-expression*, *evenly lit* portrait from which
geometry and texture can be fitted. :func:`portrait_prompt` writes a passport-style prompt:
framing and lighting first, then one phrase per set attribute, then a short quality tail; and a
negative prompt that rules out what spoils a reference portrait (profile views, tilted heads,
smiles and open mouths, harsh shadows, hats and other occluders, blur, extra faces) plus
what the attributes exclude (``glasses="none"`` → ``"glasses"``, ``beard="none"`` → ``"beard"``).

CLIP, the text encoder of Stable Diffusion 1.x, reads 77 tokens and drops the rest, so phrases are
ordered by how much they depend on the text: appearance that only the prompt can give (hair,
skin, iris colour, glasses, beard, make-up) comes before the shape attributes (face, eyes, brows,
nose, mouth) that the ControlNet clues of :func:`~machlib.text.visual_clues` also carry.
Attribute-driven negatives come before the generic ones for the same reason.
"""

from __future__ import annotations

from typing import NamedTuple

from ._parse import Parser, parse_prompt
from ._schema import FaceAttributes

__all__ = ["PortraitPrompt", "portrait_prompt", "PORTRAIT_NEGATIVE"]


class PortraitPrompt(NamedTuple):
    """A prompt pair for Stable Diffusion.

    Attributes:
        prompt: what to generate (comma-separated phrases).
        negative_prompt: what to steer away from (comma-separated phrases).
    """

    prompt: str
    negative_prompt: str


#: The generic negative phrases of every portrait prompt, most important first.
PORTRAIT_NEGATIVE: tuple[str, ...] = (
    "profile", "side view", "tilted head", "looking away", "smile", "open mouth", "teeth", "closed eyes",
    "harsh shadows", "side lighting", "hat", "hair over eyes", "hand on face", "occlusion", "blurry",
    "lowres", "extra faces", "multiple people", "deformed", "cartoon", "watermark", "text",
)

_HEAD = "passport-style frontal portrait photo of {subject}, neutral expression, mouth closed, " \
        "looking straight at the camera, soft even lighting"
_TAIL = "plain light gray background, head and shoulders, sharp focus, realistic skin texture"

_NOUN = {  # (age_group, gender) -> noun phrase; None = unspecified
    ("child", "female"): "a girl", ("child", "male"): "a boy", ("child", None): "a child",
    ("teen", "female"): "a teenage girl", ("teen", "male"): "a teenage boy", ("teen", None): "a teenager",
    ("young adult", "female"): "a young woman", ("young adult", "male"): "a young man",
    ("young adult", None): "a young adult",
    ("adult", "female"): "an adult woman", ("adult", "male"): "an adult man", ("adult", None): "an adult",
    ("middle-aged", "female"): "a middle-aged woman", ("middle-aged", "male"): "a middle-aged man",
    ("middle-aged", None): "a middle-aged person",
    ("elderly", "female"): "an elderly woman", ("elderly", "male"): "an elderly man",
    ("elderly", None): "an elderly person",
    (None, "female"): "a woman", (None, "male"): "a man", (None, None): "a person",
}
_NEUTRAL = {  # gender "neutral": an androgynous person of the age group
    "child": "an androgynous child", "teen": "an androgynous teenager", "young adult": "an androgynous young adult",
    "adult": "an androgynous adult", "middle-aged": "an androgynous middle-aged person",
    "elderly": "an androgynous elderly person", None: "an androgynous person",
}
_BUILD = {"slim": "slim", "average": "average build", "athletic": "athletic build", "heavy": "chubby, full cheeks"}
_SKIN = {"very light": "very fair skin", "light": "fair skin", "intermediate": "medium skin tone",
         "tan": "tan skin", "brown": "brown skin", "dark": "dark skin"}
_LEVEL = {  # field -> level -> phrase ("none" handled separately)
    "wrinkles": {"light": "fine wrinkles", "moderate": "wrinkles", "heavy": "deep wrinkles"},
    "freckles": {"light": "a few freckles", "moderate": "freckles", "heavy": "heavy freckles"},
    "moles": {"light": "a small mole", "moderate": "a few moles", "heavy": "many moles"},
    "makeup": {"light": "natural makeup", "moderate": "makeup", "heavy": "heavy makeup"},
}
_NONE = {  # field -> (positive phrase or None, negative phrases) for the value "none"
    "wrinkles": ("smooth skin", ("wrinkles",)),
    "freckles": (None, ("freckles",)),
    "moles": (None, ("moles",)),
    "makeup": ("no makeup", ("makeup", "lipstick")),
    "lipstick_color": (None, ("lipstick",)),
    "bangs": ("forehead visible", ("bangs",)),
    "glasses": (None, ("glasses", "eyeglasses", "sunglasses")),
    "beard": ("clean-shaven", ("beard", "stubble")),
    "moustache": (None, ("mustache",)),
}
_HAIR_LENGTH = {"very short": "very short", "short": "short", "medium": "shoulder-length", "long": "long",
                "very long": "very long"}
_HAIRSTYLE = {  # hairstyle -> (template around the adjectives, length it spells out, texture it spells out)
    "buzz cut": ("{adj} buzz cut", None, None),
    "crop": ("{adj} crop haircut", "short", None),
    "pixie": ("{adj} pixie cut", None, None),
    "bob": ("{adj} bob haircut", None, None),
    "long straight": ("{adj} hair", "long", "straight"),
    "long curly": ("{adj} hair", "long", "curly"),
    "wavy": ("{adj} hair", None, "wavy"),
    "ponytail": ("{adj} hair in a ponytail", None, None),
    "bun": ("{adj} hair in a bun", None, None),
    "low bun": ("{adj} hair in a low bun", None, None),
    "afro": ("{adj} afro", None, None),
}
_EYES = {"almond": "almond-shaped eyes", "round": "big round eyes", "narrow": "narrow eyes",
         "upturned": "upturned eyes", "downturned": "downturned eyes", "monolid": "monolid eyes",
         "hooded": "hooded eyes", "double-lid": "double eyelids"}
_BROWS = {"willow-leaf": "willow-leaf eyebrows", "sword-like": "sword-like eyebrows", "straight": "straight eyebrows",
          "arched": "arched eyebrows", "thick": "thick eyebrows", "thin": "thin eyebrows", "bushy": "bushy eyebrows"}
_MOUTH = {"thin": "thin lips", "full": "full lips", "wide": "wide mouth", "small": "small mouth",
          "bow-shaped": "cupid's bow lips"}
_LIPSTICK = {"cameo": "cameo pink lipstick"}
_BEARD = {"present": "beard", "stubble": "stubble", "goatee": "goatee", "short": "short beard", "full": "full beard"}
_MOUSTACHE = {"present": "mustache", "thin": "thin mustache", "thick": "thick mustache",
              "handlebar": "handlebar mustache"}


#: How the subject names an ``ancestry`` ("a young Black woman", "an East Asian man").
_ANCESTRY = {"african": "Black", "east asian": "East Asian", "south asian": "South Asian", "european": "white",
             "hispanic": "Hispanic", "middle eastern": "Middle Eastern"}


def _subject(a: FaceAttributes) -> str:
    subject = _NEUTRAL[a.age_group] if a.gender == "neutral" else _NOUN[(a.age_group, a.gender)]
    if a.ancestry is None:
        return subject
    words = subject.split()  # article, [age words], noun: the ancestry goes before the noun
    words.insert(len(words) - 1, _ANCESTRY[a.ancestry])
    if len(words) == 3 and words[0] in ("a", "an"):  # the article now stands before the ancestry
        words[0] = "an" if words[1][0].lower() in "aeiou" else "a"
    return " ".join(words)


def _hair(a: FaceAttributes) -> str | None:
    if a.hairstyle == "bald":
        return "bald head"  # a bald head has no length, texture or colour to show
    template, style_length, style_texture = _HAIRSTYLE.get(a.hairstyle, ("{adj} hair", None, None))
    words = []
    if a.hair_length is not None:
        words.append(_HAIR_LENGTH[a.hair_length])
    elif style_length is not None:
        words.append(style_length)
    if a.hair_texture is not None:
        words.append(a.hair_texture)
    elif style_texture is not None:
        words.append(style_texture)
    if a.hair_color is not None:
        words.append(a.hair_color)
    if not words and a.hairstyle is None:
        return None
    return template.format(adj=" ".join(words)).strip()


def _glasses(a: FaceAttributes) -> str | None:
    if a.glasses == "none":
        return None
    color = a.glasses_color
    if a.glasses is None and color is None:
        return None
    if a.glasses == "sunglasses":
        kind = "sunglasses"
    elif a.glasses in (None, "present"):
        kind = "glasses"
    else:
        kind = f"{a.glasses} glasses"
    if color is None:
        return kind
    return f"{color}-framed {kind}" if kind == "glasses" else f"{color} {kind}"


def _facial_hair(a: FaceAttributes) -> list[str]:
    out = []
    if a.beard == "none":
        out.append(_NONE["beard"][0])
    elif a.beard is not None:
        out.append(_BEARD[a.beard])
    if a.moustache not in (None, "none"):
        out.append(_MOUSTACHE[a.moustache])
    return out


def _phrases(a: FaceAttributes, include_glasses: bool) -> list[str]:
    """The attribute phrases of the prompt, in a fixed order (see the module docstring)."""
    out: list[str | None] = [_hair(a)]
    if a.bangs is not None:
        out.append(_NONE["bangs"][0] if a.bangs == "none" else
                   "bangs" if a.bangs == "present" else f"{a.bangs} bangs")
    out.append(_SKIN.get(a.skin_tone))
    out.append(None if a.iris_color is None else f"{a.iris_color} eyes")
    if include_glasses:
        out.append(_glasses(a))
    out.extend(_facial_hair(a))
    for field in ("makeup", "wrinkles", "freckles", "moles"):
        value = getattr(a, field)
        if value == "none":
            out.append(_NONE[field][0])
        elif value is not None:
            out.append(_LEVEL[field][value])
    if a.lipstick_color not in (None, "none"):
        out.append(_LIPSTICK.get(a.lipstick_color, f"{a.lipstick_color} lipstick"))
    out.append(None if a.face_shape is None else f"{a.face_shape} face")
    out.append(_EYES.get(a.eye_shape))
    out.append(_BROWS.get(a.eyebrow))
    out.append(None if a.nose is None else f"{a.nose} nose")
    out.append(_MOUTH.get(a.mouth))
    out.append(_BUILD.get(a.build))
    out.append(None if a.garment is None else f"wearing a {a.garment}")
    return list(dict.fromkeys(p for p in out if p))


def _negatives(a: FaceAttributes, include_glasses: bool) -> list[str]:
    out: list[str] = []
    for field, (_, negative) in _NONE.items():
        if getattr(a, field) == "none":
            out.extend(n for n in negative if n != "lipstick" or a.lipstick_color in (None, "none"))
    if not include_glasses and a.glasses != "none":
        out.extend(_NONE["glasses"][1])
    if a.hairstyle == "bald":
        out.append("hair")
    if a.age_group in ("child", "teen", "young adult") and a.wrinkles is None:
        out.append("wrinkles")
    return out


def _clean(text: str, what: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"portrait_prompt: {what} must be a string, got {type(text).__name__}")
    return " ".join(text.replace("\n", " ").split()).strip(" ,")


def portrait_prompt(
    attributes: FaceAttributes | str,
    *,
    extra: str = "",
    extra_negative: str = "",
    include_glasses: bool = True,
    keep_unknown: bool = True,
    parser: Parser | None = None,
) -> PortraitPrompt:
    """A prompt and negative prompt for a frontal, neutral, evenly lit portrait with given attributes.

    The prompt is ``"passport-style frontal portrait photo of <subject>, neutral expression, mouth
    closed, looking straight at the camera, soft even lighting, <attribute phrases>, <extra>,
    <tail>"``, where ``<subject>`` comes from ``age_group`` and ``gender`` ("an elderly man",
    "a teenage girl", "a person") and every other set field adds one phrase, in this order: hair
    (length, texture, colour and style in one phrase: "long wavy red hair in a bun"), bangs, skin
    tone, iris colour, glasses (type and colour), beard and moustache, make-up, wrinkles, freckles,
    moles, lipstick, face shape, eye shape, eyebrows, nose, mouth, build, garment. A field set to
    ``"none"`` adds its exclusion to the negative prompt instead (``glasses`` → "glasses,
    eyeglasses, sunglasses", ``beard`` → "beard, stubble", ...), and a positive phrase where one
    reads well ("clean-shaven", "smooth skin", "no makeup", "forehead visible"). Contradictory
    fields are resolved simply: a ``"bald"`` hairstyle ignores the hair length, texture and colour;
    a glasses colour with ``glasses="none"`` is ignored. The result is deterministic.

    Args:
        attributes: the :class:`~machlib.text.FaceAttributes`, or a text prompt, which is parsed
            with :func:`~machlib.text.parse_prompt` first.
        extra: free text appended after the attribute phrases (e.g. ``"east asian"``).
        extra_negative: free text appended to the negative prompt.
        include_glasses: put the glasses in the image. ``False`` leaves them out and forbids
            them, for a portrait whose face texture must be unoccluded (Make-A-Character adds
            glasses afterwards as 3D assets, §2.6).
        keep_unknown: for a text prompt, append the phrases the parser did not understand
            (``"Chinese girl"`` → "chinese"), so that details outside the schema still reach
            Stable Diffusion.
        parser: the :class:`~machlib.text.Parser` for a text prompt (default the rule parser).

    Returns:
        The :class:`PortraitPrompt` ``(prompt, negative_prompt)``.

    Raises:
        TypeError: ``attributes`` is neither :class:`FaceAttributes` nor a string.

    Example:
        >>> from machlib.text import FaceAttributes, portrait_prompt
        >>> p = portrait_prompt(FaceAttributes(gender="male", age_group="elderly", hair_color="gray", beard="none"))
        >>> print(p.prompt)  # doctest: +NORMALIZE_WHITESPACE
        passport-style frontal portrait photo of an elderly man, neutral expression, mouth closed,
        looking straight at the camera, soft even lighting, gray hair, clean-shaven, plain light gray
        background, head and shoulders, sharp focus, realistic skin texture
        >>> print(p.negative_prompt[:52])
        beard, stubble, profile, side view, tilted head, loo
        >>> print(portrait_prompt("A cool girl with red hair").prompt.split(", ")[5:8])
        ['red hair', 'cool', 'plain light gray background']
    """
    if isinstance(attributes, str):
        result = parse_prompt(attributes, parser=parser)
        attrs = result.attributes
        unknown = [u for u in result.unknown if u] if keep_unknown else []
    elif isinstance(attributes, FaceAttributes):
        attrs, unknown = attributes, []
    else:
        raise TypeError(
            f"portrait_prompt: attributes must be a FaceAttributes or a prompt string, got {type(attributes).__name__}"
        )
    extras = [_clean(u, "an unknown phrase") for u in unknown] + [_clean(extra, "extra")]
    phrases = _phrases(attrs, include_glasses) + [e for e in extras if e]
    prompt = ", ".join([_HEAD.format(subject=_subject(attrs)), *phrases, _TAIL])
    negatives = [*_negatives(attrs, include_glasses), *PORTRAIT_NEGATIVE]
    extra_negative = _clean(extra_negative, "extra_negative")
    if extra_negative:
        negatives.append(extra_negative)
    return PortraitPrompt(prompt, ", ".join(dict.fromkeys(negatives)))
