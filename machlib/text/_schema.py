"""The facial attribute schema: fields, vocabularies (canonical value → synonyms) and asset tags.

Every vocabulary lives in :data:`VOCABULARY`, one dict per field mapping a canonical value to the
phrases that mean it. The parser, the validation and the asset tags all read from it, so adding a
value or a synonym is a one-line change here.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from .._errors import InputError

# --------------------------------------------------------------------------------------------
# Vocabularies: field -> {canonical value: [synonyms / phrases]}. Phrases are lower case, words
# separated by single spaces (hyphens in prompts are read as spaces). The canonical value itself is
# always a synonym of itself (with hyphens read as spaces).
# --------------------------------------------------------------------------------------------

#: Per field, canonical value → synonyms (lower case; hyphens in prompts read as spaces).
VOCABULARY: dict[str, dict[str, list[str]]] = {
    "gender": {
        "female": ["woman", "women", "girl", "lady", "she", "her", "hers", "herself", "mother", "mom",
                   "actress", "queen", "princess", "grandmother", "grandma", "granny", "daughter", "sister",
                   "wife", "feminine", "little girl", "schoolgirl", "gal", "girls", "ladies"],
        "male": ["man", "men", "boy", "guy", "gentleman", "he", "his", "him", "himself", "father", "dad",
                 "king", "prince", "grandfather", "grandpa", "son", "brother", "husband", "masculine",
                 "dude", "little boy", "schoolboy", "boys", "lad", "bloke"],
        "neutral": ["androgynous", "non binary", "nonbinary", "gender neutral", "genderless"],
    },
    "age_group": {
        "child": ["kid", "baby", "toddler", "infant", "children", "little girl", "little boy", "kids"],
        "teen": ["teenager", "teenage", "teenaged", "adolescent", "teens", "high school", "schoolgirl",
                 "schoolboy", "teen"],
        "young adult": ["young", "youthful", "young adult", "college student", "student", "twenties",
                        "twentysomething"],
        "adult": ["adult", "grown up", "thirties", "thirtysomething"],
        "middle-aged": ["middle aged", "middle age", "midlife", "forties", "fifties"],
        "elderly": ["old", "elderly", "senior", "grandmother", "grandma", "granny", "grandfather",
                    "grandpa", "sixties", "seventies", "eighties", "nineties", "elder", "retired", "aged"],
    },
    "build": {
        "slim": ["thin", "slender", "skinny", "petite", "lean"],
        "average": ["average build", "medium build"],
        "athletic": ["muscular", "fit", "sporty", "toned"],
        "heavy": ["chubby", "plump", "fat", "heavy", "overweight", "stocky", "chunky", "heavyset",
                  "portly", "rotund"],
    },
    "face_shape": {
        "oval": ["egg shaped", "oval shaped"],
        "round": ["rounded", "moon", "round shaped"],
        "v-shaped": ["vshaped", "v", "v line", "pointed", "pointy", "melon seed", "tapered"],
        "square": ["squared", "angular", "boxy", "square jawed"],
        "long": ["oblong", "elongated", "narrow"],
        "heart": ["heart shaped"],
        "diamond": ["diamond shaped"],
    },
    "eye_shape": {
        "almond": ["almond shaped"],
        "round": ["big", "large", "big round", "wide", "doe", "round shaped"],
        "narrow": ["phoenix", "slanted", "slit", "small", "thin", "narrowed"],
        "upturned": ["cat", "fox", "upward slanting", "cat like", "foxy", "upswept"],
        "downturned": ["droopy", "puppy", "downward slanting", "drooping", "sleepy"],
        "monolid": ["monolidded", "single eyelid", "single eyelids", "single lidded", "single lid"],
        "hooded": ["heavy lidded"],
        "double-lid": ["double eyelid", "double eyelids", "double lidded", "double lid"],
    },
    "iris_color": {
        "brown": ["light brown", "dark brown", "chocolate", "chestnut"],
        "black": ["dark", "jet black", "onyx"],
        "blue": ["light blue", "sky blue", "ice blue", "azure", "baby blue", "deep blue"],
        "green": ["emerald", "jade", "light green"],
        "gray": ["grey", "silver", "steel"],
        "hazel": [],
        "amber": ["golden", "gold", "honey"],
        "violet": ["purple", "lavender"],
        "red": ["crimson", "scarlet", "ruby"],
    },
    "eyebrow": {
        "willow-leaf": ["willow", "willow shaped", "willowy", "willow leaf shaped"],
        "sword-like": ["sword", "sword shaped", "swordlike", "sword style"],
        "straight": ["flat", "level"],
        "arched": ["high arched", "curved", "arching"],
        "thick": ["dense", "heavy", "full", "bold", "strong"],
        "thin": ["fine", "slim", "sparse", "pencil thin", "slender", "delicate"],
        "bushy": ["unkempt", "shaggy", "untamed"],
    },
    "nose": {
        "small": ["little", "petite", "tiny", "dainty", "cute"],
        "large": ["big", "prominent"],
        "straight": ["greek"],
        "aquiline": ["hooked", "roman", "hook", "beak", "eagle", "beaked"],
        "button": [],
        "wide": ["broad", "flat"],
        "narrow": ["thin", "slim", "slender", "pointed", "sharp", "pointy"],
        "upturned": ["snub", "turned up", "ski slope", "snubbed"],
        "high-bridged": ["high bridged", "high bridge"],
    },
    "mouth": {
        "thin": ["narrow"],
        "full": ["plump", "thick", "pouty", "fleshy", "luscious", "puffy", "fuller", "plush"],
        "wide": ["big", "large", "broad"],
        "small": ["little", "cherry", "tiny", "petite", "dainty"],
        "bow-shaped": ["cupid's bow", "cupids bow", "bow", "heart shaped", "m shaped"],
    },
    "lipstick_color": {
        "none": [],
        "red": ["scarlet", "crimson", "cherry red", "bright red", "ruby"],
        "pink": ["rose", "rosy", "baby pink", "light pink", "hot pink", "fuchsia"],
        "cameo": ["cameo pink", "dusty pink", "dusty rose", "mauve"],
        "nude": ["natural", "beige", "nude pink"],
        "coral": ["peach", "orange", "peachy"],
        "berry": ["plum", "wine", "burgundy", "dark red", "purple", "maroon"],
    },
    "skin_tone": {
        "very light": ["very fair", "very pale", "porcelain", "alabaster", "snow white", "ivory"],
        "light": ["fair", "pale", "white", "light colored"],
        "intermediate": ["medium", "olive", "wheat", "wheatish", "wheat colored", "honey"],
        "tan": ["tanned", "sun tanned", "suntanned", "golden", "bronze", "bronzed", "sun kissed"],
        "brown": ["caramel", "light brown"],
        "dark": ["deep", "black", "ebony", "dark brown", "very dark", "dark skinned"],
    },
    # the ancestry a description states ("a Black man", "an Asian woman"); "black" and "white" are
    # read so only before a word for a person (the parser), so "black hair" stays a hair colour
    "ancestry": {
        "african": ["black", "african", "african american", "afro american", "afro caribbean"],
        "east asian": ["asian", "chinese", "japanese", "korean", "vietnamese", "taiwanese", "mongolian"],
        "south asian": ["indian", "pakistani", "bangladeshi", "sri lankan", "nepali"],
        "european": ["white", "caucasian", "european"],
        "hispanic": ["latino", "latina", "latinx", "latin american", "mexican"],
        "middle eastern": ["arab", "arabic", "persian", "iranian", "turkish"],
    },
    "wrinkles": {
        "none": ["smooth", "wrinkle free"],
        "light": ["fine", "slight", "light", "faint", "few", "a few", "subtle", "minor"],
        "moderate": ["some", "visible", "noticeable"],
        "heavy": ["deep", "heavy", "many", "lots of", "lot of", "prominent", "deeply", "pronounced",
                  "plenty of", "numerous"],
    },
    "freckles": {
        "none": ["freckle free"],
        "light": ["few", "a few", "light", "faint", "scattered", "sparse", "slight", "some", "subtle",
                  "a sprinkle of", "a smattering of"],
        "moderate": ["visible", "noticeable"],
        "heavy": ["many", "lots of", "lot of", "heavy", "covered in", "covered with", "full of", "dense",
                  "plenty of", "numerous", "heavily"],
    },
    "moles": {
        "none": [],
        "light": ["small", "tiny", "single", "one"],
        "moderate": ["several", "some", "few", "a few"],
        "heavy": ["many", "lots of", "lot of", "numerous"],
    },
    "makeup": {
        "none": ["bare faced", "barefaced", "makeup free", "make up free", "no makeup"],
        "light": ["natural", "subtle", "minimal", "light", "soft", "nude"],
        "moderate": ["some", "everyday"],
        "heavy": ["heavy", "bold", "dramatic", "smoky", "glamorous", "full", "thick", "glam", "heavily"],
    },
    "hairstyle": {
        "bald": ["hairless", "shaved head", "shaven head", "no hair", "bald headed", "balding"],
        "buzz cut": ["buzzcut", "crew cut", "crewcut", "buzzed", "shaved", "buzz"],
        "crop": ["crop cut", "short crop", "french crop", "caesar cut", "textured crop", "crop haircut"],
        "pixie": ["pixie cut", "pixie style", "elfin"],
        "bob": ["bobo", "bob cut", "bobbed", "lob", "bob haircut"],
        "long straight": ["sleek long"],
        "long curly": ["ringlets"],
        "wavy": ["beach waves"],
        "ponytail": ["pony tail", "ponytails", "pigtails", "high ponytail"],
        "bun": ["top knot", "topknot", "updo", "hair bun", "buns", "space buns", "high bun"],
        "low bun": ["chignon", "low chignon", "nape bun", "low knot"],
        "afro": ["afro style"],
    },
    "hair_length": {
        "very short": ["cropped", "close cropped", "extremely short", "super short"],
        "short": ["ear length", "chin length", "shortish", "cropped short"],
        "medium": ["medium length", "shoulder length", "mid length", "shoulder", "collarbone length"],
        "long": ["lengthy", "flowing", "waist length"],
        "very long": ["floor length", "extremely long", "super long", "hip length"],
    },
    "hair_texture": {
        "straight": ["sleek", "poker straight", "silky straight"],
        "wavy": ["wave", "waves", "loose waves"],
        "curly": ["curls", "curled", "ringlets", "permed", "frizzy"],
        "coily": ["kinky", "tightly curled", "afro textured", "tight curls", "coiled"],
    },
    "hair_color": {
        "black": ["jet black", "raven", "dark", "ink black"],
        "brown": ["brunette", "dark brown", "light brown", "chestnut", "chocolate", "coffee", "brownish"],
        "blonde": ["blond", "golden", "platinum", "platinum blonde", "honey blonde", "flaxen", "yellow",
                   "ash blonde"],
        "red": ["ginger", "redhead", "carrot", "fiery red", "red haired"],
        "auburn": ["copper", "reddish brown", "mahogany", "coppery"],
        "gray": ["grey", "silver", "salt and pepper", "graying", "greying", "grayish", "greyish", "silvery"],
        "white": ["snow white", "snowy", "platinum white"],
        "green": ["emerald", "mint"],
        "blue": ["navy", "teal", "sky blue", "light blue"],
        "pink": ["pastel pink", "hot pink", "rose pink"],
        "purple": ["violet", "lavender", "lilac"],
    },
    "bangs": {
        "none": [],
        "present": [],
        "straight": ["blunt", "full", "thick", "heavy", "even"],
        "side-swept": ["side swept", "sideswept", "side", "swept", "side parted"],
        "curtain": ["curtain style", "parted"],
        "wispy": ["see through", "air", "thin", "light", "airy", "feathered"],
    },
    "glasses": {
        "none": [],
        "present": [],
        "round": ["circular", "round framed", "round rimmed"],
        "square": ["rectangular", "boxy", "square framed"],
        "aviator": ["aviators", "pilot"],
        "cat-eye": ["cat eye", "cateye", "cat eyed"],
        "rimless": ["frameless", "rim less"],
        "half-rim": ["half rim", "half rimmed", "semi rimless", "browline"],
        "sunglasses": ["tinted glasses", "shades", "sunnies"],
    },
    "glasses_color": {
        "black": ["jet black"],
        "brown": ["dark brown"],
        "tortoiseshell": ["tortoise shell", "tortoise"],
        "gold": ["golden"],
        "silver": ["metal", "metallic", "steel"],
        "red": [],
        "blue": [],
        "pink": [],
        "white": [],
        "clear": ["transparent"],
    },
    "beard": {
        "none": ["clean shaven", "beardless", "shaven", "clean shaved"],
        "present": [],
        "stubble": ["stubbly", "five o'clock shadow", "designer stubble", "scruff", "scruffy"],
        "goatee": ["goatees"],
        "short": ["trimmed", "neat", "well trimmed", "neatly trimmed"],
        "full": ["long", "thick", "bushy", "big", "heavy"],
    },
    "moustache": {
        "none": ["clean shaven", "clean shaved"],
        "present": [],
        "thin": ["pencil", "pencil thin"],
        "thick": ["bushy", "full", "big", "walrus", "heavy"],
        "handlebar": [],
    },
    "garment": {
        "t-shirt": ["t shirt", "tshirt", "tee", "tee shirt"],
        "shirt": ["button up", "button down", "collared shirt", "dress shirt"],
        "blouse": [],
        "suit": ["tuxedo", "blazer", "business suit"],
        "dress": ["gown", "sundress"],
        "hoodie": ["hooded sweatshirt", "sweatshirt"],
        "sweater": ["jumper", "cardigan", "pullover", "knit sweater", "turtleneck"],
        "jacket": ["leather jacket", "denim jacket", "bomber"],
        "coat": ["trench coat", "overcoat", "parka"],
        "tank top": ["singlet", "camisole"],
    },
}

#: The fields of :class:`FaceAttributes`, in order.
FIELDS: tuple[str, ...] = tuple(VOCABULARY)

#: Tags implied by a value, added by :meth:`FaceAttributes.tags` unless the implied field is set.
IMPLIED: dict[tuple[str, str], dict[str, str]] = {
    ("hairstyle", "buzz cut"): {"hair_length": "very short"},
    ("hairstyle", "crop"): {"hair_length": "short"},
    ("hairstyle", "pixie"): {"hair_length": "short"},
    ("hairstyle", "bob"): {"hair_length": "short"},
    ("hairstyle", "long straight"): {"hair_length": "long", "hair_texture": "straight"},
    ("hairstyle", "long curly"): {"hair_length": "long", "hair_texture": "curly"},
    ("hairstyle", "wavy"): {"hair_texture": "wavy"},
    ("hairstyle", "ponytail"): {"hair_length": "long"},
    ("hairstyle", "bun"): {"hair_length": "long"},
    ("hairstyle", "low bun"): {"hair_length": "long"},
    ("hairstyle", "afro"): {"hair_texture": "coily"},
}

#: Fields whose non-``"none"`` values all imply ``field:present`` in the tags.
PRESENCE_FIELDS: tuple[str, ...] = ("glasses", "beard", "moustache", "bangs")


def canonical_value(field: str, phrase: str) -> str | None:
    """The canonical value of ``field`` that ``phrase`` names (a value or a synonym), else ``None``.

    Args:
        field: a field name of :class:`FaceAttributes`.
        phrase: text, any case; hyphens are read as spaces.

    Returns:
        The canonical value, or ``None`` when the phrase is not in the field's vocabulary.

    Raises:
        InputError: when ``field`` is not a field.

    Example:
        >>> from machlib.text import canonical_value
        >>> canonical_value("hair_color", "Grey")
        'gray'
        >>> canonical_value("eyebrow", "willow leaf")
        'willow-leaf'
    """
    if field not in VOCABULARY:
        raise InputError(f"canonical_value: unknown field {field!r}; known: {list(FIELDS)}")
    key = " ".join(phrase.lower().replace("-", " ").split())
    for value, synonyms in VOCABULARY[field].items():
        if key == value.replace("-", " ") or key in synonyms:
            return value
    return None


@dataclasses.dataclass(frozen=True, kw_only=True)
class FaceAttributes:
    """Facial attributes of a character; every field is optional (``None`` = unspecified).

    The values of each field are the keys of :data:`VOCABULARY` ``[field]`` (e.g. ``hair_color`` in
    ``black, brown, blonde, ...`` like :data:`machlib.hair.HAIR_COLORS`, ``hairstyle`` the names of
    :data:`machlib.hair.HAIR_STYLES`). Levels (``wrinkles``, ``freckles``, ``moles``, ``makeup``)
    are ``none / light / moderate / heavy``; ``glasses``, ``beard``, ``moustache`` and ``bangs``
    take ``"none"``, ``"present"`` (mentioned, type unspecified) or a type. ``skin_tone`` follows the
    six ITA categories (very light … dark). ``ancestry`` is what a description states ("a Black
    man", "an Asian woman"): ``african``, ``east asian``, ``south asian``, ``european``,
    ``hispanic`` or ``middle eastern``; without a stated skin tone it sets the skin's default
    (:data:`machlib.character.ANCESTRY_SKIN_TONES`) and the human's race blend
    (:func:`machlib.human.attribute_human`).

    Raises:
        InputError: for a value outside the field's vocabulary (naming the field and value).
        TypeError: for a value that is not a string or ``None``.

    Example:
        >>> from machlib.text import FaceAttributes
        >>> a = FaceAttributes(gender="female", hair_color="red", glasses="round")
        >>> a.to_dict()
        {'gender': 'female', 'hair_color': 'red', 'glasses': 'round'}
        >>> FaceAttributes.from_json(a.to_json()) == a
        True
    """

    gender: str | None = None
    age_group: str | None = None
    build: str | None = None
    face_shape: str | None = None
    eye_shape: str | None = None
    iris_color: str | None = None
    eyebrow: str | None = None
    nose: str | None = None
    mouth: str | None = None
    lipstick_color: str | None = None
    skin_tone: str | None = None
    ancestry: str | None = None
    wrinkles: str | None = None
    freckles: str | None = None
    moles: str | None = None
    makeup: str | None = None
    hairstyle: str | None = None
    hair_length: str | None = None
    hair_texture: str | None = None
    hair_color: str | None = None
    bangs: str | None = None
    glasses: str | None = None
    glasses_color: str | None = None
    beard: str | None = None
    moustache: str | None = None
    garment: str | None = None

    def __post_init__(self):
        for field in FIELDS:
            value = getattr(self, field)
            if value is None:
                continue
            if not isinstance(value, str):
                raise TypeError(f"FaceAttributes: {field} must be a string or None, got {type(value).__name__}")
            if value not in VOCABULARY[field]:
                raise InputError(
                    f"FaceAttributes: unknown value {value!r} for field {field!r}; known: {list(VOCABULARY[field])}"
                )

    def to_dict(self, *, include_none: bool = False) -> dict[str, str | None]:
        """The attributes as a plain dict, in field order.

        Args:
            include_none: keep unspecified fields (as ``None``); by default only set fields appear.

        Returns:
            ``{field: value}``.

        Example:
            >>> from machlib.text import FaceAttributes
            >>> FaceAttributes(beard="goatee").to_dict()
            {'beard': 'goatee'}
        """
        out = {f: getattr(self, f) for f in FIELDS}
        return out if include_none else {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaceAttributes:
        """Build from a dict such as :meth:`to_dict` returns; ``None`` values mean unspecified.

        Args:
            data: ``{field: value}``.

        Returns:
            The validated attributes.

        Raises:
            InputError: for an unknown field or value (naming it).

        Example:
            >>> from machlib.text import FaceAttributes
            >>> FaceAttributes.from_dict({"eyebrow": "sword-like"}).eyebrow
            'sword-like'
        """
        if not isinstance(data, dict):
            raise TypeError(f"FaceAttributes.from_dict: expected a dict, got {type(data).__name__}")
        unknown = [k for k in data if k not in FIELDS]
        if unknown:
            raise InputError(f"FaceAttributes.from_dict: unknown field(s) {unknown}; known: {list(FIELDS)}")
        return cls(**data)

    def to_json(self, *, indent: int | None = None) -> str:
        """The set fields as a JSON object (see :meth:`to_dict`).

        Args:
            indent: passed to :func:`json.dumps`.

        Returns:
            A JSON string.

        Example:
            >>> from machlib.text import FaceAttributes
            >>> FaceAttributes(face_shape="oval").to_json()
            '{"face_shape": "oval"}'
        """
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> FaceAttributes:
        """Parse a JSON object written by :meth:`to_json`.

        Args:
            text: a JSON object ``{field: value}``.

        Returns:
            The validated attributes.

        Raises:
            InputError: for invalid JSON, a non-object, or an unknown field or value.

        Example:
            >>> from machlib.text import FaceAttributes
            >>> FaceAttributes.from_json('{"hair_color": "gray"}').hair_color
            'gray'
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"FaceAttributes.from_json: invalid JSON: {e}") from None
        if not isinstance(data, dict):
            raise InputError(f"FaceAttributes.from_json: expected a JSON object, got {type(data).__name__}")
        return cls.from_dict(data)

    def tags(self) -> list[str]:
        """Asset-matching tags ``"field:value"`` for the set fields, plus implied ones.

        A hairstyle implies its length and texture (``bob`` → ``hair_length:short``) unless those
        fields are set; a glasses/beard/moustache/bangs type implies ``field:present``.

        Returns:
            The tags, in field order, without duplicates.

        Example:
            >>> from machlib.text import FaceAttributes
            >>> FaceAttributes(hairstyle="long curly", glasses="round").tags()
            ['hairstyle:long curly', 'glasses:round', 'glasses:present', 'hair_length:long', 'hair_texture:curly']
        """
        tags: list[str] = []
        for field, value in self.to_dict().items():
            tags.append(f"{field}:{value}")
            if field in PRESENCE_FIELDS and value not in ("none", "present"):
                tags.append(f"{field}:present")
        for field, value in self.to_dict().items():
            for implied_field, implied in IMPLIED.get((field, value), {}).items():
                if getattr(self, implied_field) is None:
                    tags.append(f"{implied_field}:{implied}")
        return list(dict.fromkeys(tags))

    def replace(self, **changes: str | None) -> FaceAttributes:
        """A copy with some fields changed (validated).

        Args:
            **changes: ``field=value`` pairs.

        Returns:
            The new attributes.

        Example:
            >>> from machlib.text import FaceAttributes
            >>> FaceAttributes(gender="male").replace(beard="full").to_dict()
            {'gender': 'male', 'beard': 'full'}
        """
        unknown = [k for k in changes if k not in FIELDS]
        if unknown:
            raise InputError(f"FaceAttributes.replace: unknown field(s) {unknown}; known: {list(FIELDS)}")
        return dataclasses.replace(self, **changes)
