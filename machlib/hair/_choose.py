"""Which library hairstyle a description asks for: :func:`style_for`.

A prompt that names a style ("a bob", "a ponytail") gets it. Most prompts do not: they say how long
the hair is, its texture, a fringe, or only who the person is ("an old woman", "a young man"). Ranking
the whole prompt against the library's tags by text similarity then picks by accident (a "crop top"
is not a crop; "an old woman" shares no word with any style, so the ranking is noise). This module
decides from the structured description instead, with a rule table a reader can check:

* **length** (``very short`` / ``short`` / ``medium`` / ``long`` / ``very long``) picks the styles of
  that length (:func:`length_class` of each preset's strand length, a gathered style counting as
  long);
* **texture** (``straight`` / ``wavy`` / ``curly`` / ``coily``) keeps the styles of that curl, or the
  nearest one (curly at short length is the afro; wavy hair that is long is the long wavy style);
* **bangs** prefer a style with a fringe;
* **gender and age** break the remaining ties, the way a casting director would: a short cut is a
  crop on a man and a pixie on a woman; without any hair words a man gets the crop, a woman long
  straight hair, and an elderly woman the bob.

Everything is plain Python on strings (no arrays): the hair layer does not depend on
:mod:`machlib.text`; its :class:`~machlib.text.FaceAttributes` fields are passed by name.
"""

from __future__ import annotations

from typing import NamedTuple

from .._errors import InputError
from ._styles import HAIR_STYLES

__all__ = ["StyleChoice", "length_class", "style_for"]

_LENGTHS = ("very short", "short", "medium", "long", "very long")
_TEXTURES = ("straight", "wavy", "curly", "coily")
_GENDERS = ("female", "male", "neutral")
_AGES = ("child", "teen", "young adult", "adult", "middle-aged", "elderly")

# per gender, the styles in order of preference when several fit the description (a short cut on
# a man is a crop, on a woman a pixie); styles not listed come after, by name
_PREFERENCE = {
    "male": ("crop", "buzz cut", "wavy", "long straight", "ponytail", "afro", "long curly", "bob", "pixie", "bun", "low bun"),
    "female": ("long straight", "bob", "pixie", "wavy", "long curly", "ponytail", "bun", "low bun", "afro", "crop", "buzz cut"),
    None: ("bob", "crop", "long straight", "wavy", "pixie", "long curly", "afro", "ponytail", "bun", "low bun", "buzz cut"),
}
# with no hair words at all
_DEFAULT = {"male": "crop", "female": "long straight", None: "bob"}
_DEFAULT_ELDERLY = {"male": "crop", "female": "bob", None: "bob"}


class StyleChoice(NamedTuple):
    """What :func:`style_for` chose and why.

    Attributes:
        style: a :data:`~machlib.hair.HAIR_STYLES` name.
        reason: one sentence for reports, e.g. ``"short hair on a man: crop"``.
        candidates: the styles that fitted the description, in order of preference.
    """

    style: str
    reason: str
    candidates: tuple[str, ...]


def length_class(length: float, *, gathered: bool = False, curl: str = "straight") -> str:
    """The length word (``"bald"``, ``"very short"``, ``"short"``, ``"medium"``, ``"long"``) of a
    strand length in metres: ``0`` bald, below 2 cm very short, below 8 cm short, below 30 cm medium
    (chin to shoulder), else long. ``gathered`` (a ponytail or bun) counts as long. Coily hair
    (``curl="coily"``) looks half as long as its strands (it shrinks into its coils), so a 10 cm
    afro reads as short.

    Example:
        >>> from machlib.hair import HAIR_STYLES, length_class
        >>> [length_class(HAIR_STYLES[s].length) for s in ("bald", "buzz cut", "pixie", "bob", "long straight")]
        ['bald', 'very short', 'short', 'medium', 'long']
    """
    length = float(length)
    if not length >= 0.0:
        raise InputError(f"length_class: length must be a length in metres >= 0, got {length!r}")
    if length == 0.0:
        return "bald"
    if gathered:
        return "long"
    if curl == "coily":
        length *= 0.5
    return "very short" if length < 0.02 else "short" if length < 0.08 else "medium" if length < 0.30 else "long"


def style_for(*, hairstyle: str | None = None, hair_length: str | None = None, hair_texture: str | None = None,
              bangs: str | None = None, gender: str | None = None, age_group: str | None = None) -> StyleChoice:
    """The library hairstyle a description asks for, by the rules in the module's docstring.

    The arguments are :class:`~machlib.text.FaceAttributes` fields of the same names (``None``:
    not stated); a ``hairstyle`` that names a preset wins outright.

    Args:
        hairstyle: a :data:`~machlib.hair.HAIR_STYLES` name, or None.
        hair_length: ``"very short"``, ``"short"``, ``"medium"``, ``"long"`` or ``"very long"``.
        hair_texture: ``"straight"``, ``"wavy"``, ``"curly"`` or ``"coily"``.
        bangs: ``"present"`` or ``"none"``.
        gender: ``"female"``, ``"male"`` or ``"neutral"``.
        age_group: ``"child"``, ``"teen"``, ``"young adult"``, ``"adult"``, ``"middle-aged"`` or
            ``"elderly"``.

    Returns:
        A :class:`StyleChoice`.

    Raises:
        InputError: a value outside those lists.

    Example:
        >>> from machlib.hair import style_for
        >>> style_for(hair_length="short", gender="male").style, style_for(hair_length="short", gender="female").style
        ('crop', 'pixie')
        >>> style_for(gender="female", age_group="elderly").style, style_for(hair_texture="curly").style
        ('bob', 'long curly')
    """
    for name, value, known in (("hair_length", hair_length, _LENGTHS), ("hair_texture", hair_texture, _TEXTURES),
                               ("bangs", bangs, ("present", "none")), ("gender", gender, _GENDERS),
                               ("age_group", age_group, _AGES)):
        if value is not None and value not in known:
            raise InputError(f"style_for: unknown {name} {value!r}; known: {', '.join(known)}")
    if hairstyle is not None:
        if hairstyle not in HAIR_STYLES:
            raise InputError(f"style_for: unknown hairstyle {hairstyle!r}; known: {', '.join(HAIR_STYLES)}")
        return StyleChoice(hairstyle, f"the description names the style: {hairstyle}", (hairstyle,))
    sex = gender if gender in ("female", "male") else None
    who = {"female": "a woman", "male": "a man", None: "a person"}[sex]
    order = {s: i for i, s in enumerate(_PREFERENCE[sex])}
    if hair_length is None and hair_texture is None and bangs != "present":
        style = (_DEFAULT_ELDERLY if age_group == "elderly" else _DEFAULT)[sex]
        return StyleChoice(style, f"no hair described; the default for {who}"
                           f"{' of that age' if age_group == 'elderly' else ''}: {style}", (style,))

    def fits(name: str) -> tuple:
        st = HAIR_STYLES[name]
        if st.length == 0.0:
            return (99,)  # bald only by name
        have = length_class(st.length, gathered=st.gather != "none", curl=st.curl)
        want = {"very long": "long"}.get(hair_length, hair_length)
        # length mismatch in steps of the length scale (0 when not stated)
        dl = 0 if want is None else abs(_LENGTHS.index(have) - _LENGTHS.index(want))
        tex = st.curl  # the presets' curl words are the vocabulary's textures
        dt = 0 if hair_texture is None else (0 if tex == hair_texture else 1 if {tex, hair_texture} in (
            {"curly", "coily"}, {"wavy", "curly"}, {"straight", "wavy"}) else 2)
        db = 0 if bangs is None else int((st.bangs > 0) != (bangs == "present"))
        return (dl + dt, db, order.get(name, len(order)), name)

    ranked = sorted(HAIR_STYLES, key=fits)
    best = fits(ranked[0])[:2]
    candidates = tuple(n for n in ranked if fits(n)[:2] == best)
    words = " ".join(w for w in (hair_length, hair_texture) if w) or "hair"
    words += (" hair" if hair_length or hair_texture else "") + (" with a fringe" if bangs == "present" else "")
    return StyleChoice(ranked[0], f"{words} on {who}: {ranked[0]}", candidates)
