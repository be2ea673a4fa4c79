"""Prompt → :class:`FaceAttributes`: the :class:`Parser` interface and the offline :class:`RuleParser`.

The paper (§2.1) uses an LLM (Qwen-14B) for this step; :class:`RuleParser` is the offline default:
a lexicon built from :data:`~machlib.text.VOCABULARY`, longest-match lookup over word n-grams (up
to 3 words), adjectives attached to the nearest body-part noun ("red hair", "round glasses",
"black-framed glasses"), negation ("no glasses", "without a beard"), age numbers ("a 70-year-old")
and conflict detection. Any object with a ``parse(prompt) -> ParseResult`` method is a
:class:`Parser` (e.g. a wrapper around an LLM).
"""

from __future__ import annotations

import dataclasses
import re
from typing import NamedTuple, Protocol, runtime_checkable

from .._errors import InputError
from ._schema import FIELDS, VOCABULARY, FaceAttributes


class Ambiguity(NamedTuple):
    """A phrase with several readings, or a field given conflicting values; the field is left unset.

    Attributes:
        phrase: the phrase(s) of the prompt (conflicting phrases joined by ``" / "``).
        candidates: the ``(field, value)`` readings.

    Example:
        >>> from machlib.text import parse_prompt
        >>> parse_prompt("round").ambiguous[0].candidates
        (('face_shape', 'round'), ('eye_shape', 'round'), ('glasses', 'round'))
    """

    phrase: str
    candidates: tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParseResult:
    """What a :class:`Parser` understood of a prompt.

    Attributes:
        attributes: the attributes read (fields not mentioned, or ambiguous, are ``None``).
        unknown: phrases of the prompt not understood, in prompt order.
        ambiguous: readings that could not be decided (see :class:`Ambiguity`).
        evidence: per set field, the prompt phrase it was read from.

    Example:
        >>> from machlib.text import parse_prompt
        >>> r = parse_prompt("A cool girl with red hair")
        >>> r.attributes.hair_color, r.evidence["hair_color"], r.unknown
        ('red', 'red hair', ['cool'])
    """

    attributes: FaceAttributes
    unknown: list[str]
    ambiguous: list[Ambiguity]
    evidence: dict[str, str]


@runtime_checkable
class Parser(Protocol):
    """Anything that turns a prompt into a :class:`ParseResult` (rule-based, LLM, ...).

    Example:
        >>> from machlib.text import Parser, RuleParser
        >>> isinstance(RuleParser(), Parser)
        True
    """

    def parse(self, prompt: str) -> ParseResult:
        """Read the attributes of ``prompt``."""
        ...


# --------------------------------------------------------------------------------------------
# Lexicon data
# --------------------------------------------------------------------------------------------

# field -> the noun groups its adjectives attach to (None: stands alone, e.g. "girl", "old")
_FIELD_GROUPS: dict[str, tuple[str | None, ...]] = {
    "gender": (None,), "age_group": (None,), "build": (None,),
    "face_shape": ("face",), "eye_shape": ("eyes",), "iris_color": ("eyes",), "eyebrow": ("eyebrow",),
    "nose": ("nose",), "mouth": ("mouth",), "lipstick_color": ("lipstick", "mouth"), "skin_tone": ("skin",),
    "ancestry": ("person",),  # "a Black man": read before a word for a person (see _person_after)
    "wrinkles": ("wrinkles",), "freckles": ("freckles",), "moles": ("moles",), "makeup": ("makeup",),
    "hairstyle": ("hair",), "hair_length": ("hair",), "hair_texture": ("hair",), "hair_color": ("hair",),
    "bangs": ("bangs",), "glasses": ("glasses",), "glasses_color": ("glasses",), "beard": ("beard",),
    "moustache": ("moustache",), "garment": ("garment",),
}

# noun group -> head nouns -> what the noun alone says (a default that adjectives override)
_HEADS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "face": {p: [] for p in ["face", "faced", "face shape", "facial shape", "jaw", "jawline", "face type",
                             "facial structure", "facial features", "features"]},
    "eyes": {p: [] for p in ["eyes", "eye", "eyed", "iris", "irises", "eye color", "eye colour", "pupils"]},
    "eyebrow": {p: [] for p in ["eyebrow", "eyebrows", "brow", "brows", "browed", "eye brows"]},
    "nose": {p: [] for p in ["nose", "nosed", "nose bridge"]},
    "mouth": {p: [] for p in ["lips", "lip", "mouth", "mouthed", "lipped"]},
    "lipstick": {p: [] for p in ["lipstick", "lip color", "lip colour", "lip gloss", "lip tint", "lipsticks"]},
    "skin": {p: [] for p in ["skin", "skinned", "complexion", "skin tone", "skin color", "skin colour"]},
    "wrinkles": {**{p: [("wrinkles", "moderate")] for p in ["wrinkles", "wrinkle", "wrinkled", "wrinkly",
                                                          "crow's feet", "crows feet", "laugh lines"]},
                 "fine lines": [("wrinkles", "light")]},
    "freckles": {p: [("freckles", "moderate")] for p in ["freckles", "freckle", "freckled", "freckly"]},
    "moles": {"mole": [("moles", "light")], "moles": [("moles", "moderate")], "beauty mark": [("moles", "light")],
              "beauty spot": [("moles", "light")]},
    "makeup": {p: [("makeup", "moderate")] for p in ["makeup", "make up", "cosmetics"]},
    "hair": {p: [] for p in ["hair", "haircut", "hairstyle", "hairdo", "haired", "hair style", "locks", "mane",
                             "hair color", "hair colour", "cut"]},
    "bangs": {p: [("bangs", "present")] for p in ["bangs", "fringe", "bang"]},
    "glasses": {p: [("glasses", "present")] for p in ["glasses", "eyeglasses", "spectacles", "specs", "frames",
                                                      "eyewear"]},
    "beard": {**{p: [("beard", "present")] for p in ["beard", "bearded", "beards", "facial hair"]},
              "no facial hair": [("beard", "none"), ("moustache", "none")]},
    "moustache": {p: [("moustache", "present")] for p in ["moustache", "mustache", "mustached", "moustached",
                                                          "mustaches", "moustaches"]},
    "garment": {p: [] for p in ["clothes", "outfit", "clothing"]},
}

# values whose phrases are nouns (heads) rather than adjectives
_HEAD_VALUES = {("hairstyle", v) for v in ["bald", "buzz cut", "crop", "pixie", "bob", "ponytail", "bun", "low bun", "afro"]}
_HEAD_VALUES |= {("beard", "stubble"), ("beard", "goatee"), ("beard", "none"), ("moustache", "none"),
                 ("glasses", "sunglasses"), ("makeup", "none")}
_HEAD_VALUES |= {("garment", v) for v in VOCABULARY["garment"]}
# canonical names that are read from their parts ("long" + "curly" → "long curly")
_SKIP_CANONICAL = {("hairstyle", "long straight"), ("hairstyle", "long curly")}
# ... and names read only in their phrases: a bare "crop" is as often a crop top as a haircut
_SKIP_CANONICAL |= {("hairstyle", "crop")}

# what a negated noun group says ("no glasses", "without a beard")
_NEGATED: dict[str, list[tuple[str, str]]] = {
    "glasses": [("glasses", "none")], "beard": [("beard", "none")], "moustache": [("moustache", "none")],
    "bangs": [("bangs", "none")], "wrinkles": [("wrinkles", "none")], "freckles": [("freckles", "none")],
    "moles": [("moles", "none")], "makeup": [("makeup", "none")], "lipstick": [("lipstick_color", "none")],
}
# adjectives read this way when they attach to no noun
_DEFAULTS: dict[str, list[tuple[str, str]]] = {
    "long": [("hair_length", "long")], "short": [("hair_length", "short")],
    "very short": [("hair_length", "very short")], "very long": [("hair_length", "very long")],
}
_NEGATION = {"no", "not", "without", "never", "doesn't", "don't", "isn't", "aren't", "didn't", "nor", "lacks",
             "lacking", "doesnt", "dont", "isnt", "zero", "free"}
_PRONOUNS = {"she", "her", "hers", "herself", "he", "his", "him", "himself"}
_FILLER = {"a", "an", "the", "framed", "rimmed", "frame", "frames", "colored", "coloured", "color", "colour",
           "toned", "tone", "very", "rather", "slightly", "lightly", "quite", "pretty", "really", "fairly",
           "natural", "naturally", "shaped", "style", "styled", "length"}
_BOUNDARY = {".", ",", ";", ":", "!", "?", "(", ")", "but"}
# words that may link a noun to an adjective after it ("hair is long", "hair, dyed pink")
_BACKLINK = {"is", "are", "was", "were", "that", "which", "dyed", "colored", "coloured", "painted", "and", "very",
             "quite", "slightly", "rather", "pretty", "look", "looks", "appear", "appears", "seem", "seems", "a",
             "an", "bit", "both", "tinted", "done", "in", ",", ":", "as", "kind", "of", "fairly", "really", "naturally"}
# nouns outside the schema: an adjective right before one belongs to it ("rosy cheeks")
_OTHER_NOUNS = {"cheek", "cheeks", "forehead", "chin", "ear", "ears", "neck", "shoulders", "head", "body",
                "smile", "teeth", "dress", "shirt", "skirt", "jeans", "hat", "cap", "scarf", "earrings"}
_STOPWORDS = {
    "a", "an", "the", "with", "and", "or", "is", "are", "was", "were", "be", "has", "have", "having", "had",
    "who", "that", "which", "this", "of", "on", "in", "at", "to", "for", "wearing", "wears", "wear", "worn",
    "sporting", "sports", "dressed", "featuring", "looking", "look", "looks", "appearance", "very", "quite",
    "slightly", "rather", "around", "about", "approximately", "roughly", "nearly", "over", "under", "almost",
    "early", "late", "mid", "their", "its", "it", "they", "them", "cheek", "cheeks", "forehead", "character",
    "avatar", "portrait", "photo", "person", "people", "someone", "human", "by", "from", "also", "both",
    "some", "one", "kind", "style", "styled", "tied", "up", "into", "her", "his", "face", "head", "pair",
    "years", "year", "old", "yo", "age", "aged", "framed", "rimmed", "colored", "coloured", "shaped", "like",
    "pretty", "really", "fairly", "lightly", "just", "any", "visible", "hair", "so", "too", "plus", "as",
    "s", "'s", "dyed", "got", "gets", "real", "here", "there", "being", "shows", "showing", "cut", "features",
    "descent", "heritage", "origin", "ancestry", "ethnicity",
}
_TOKEN_RE = re.compile(r"\d+s\b|\d+|[a-z]+(?:'[a-z]+)?|[.,;:!?()]")


def _words(phrase: str) -> tuple[str, ...]:
    return tuple(phrase.lower().replace("-", " ").split())


class _Lexicon:
    def __init__(self, vocabulary: dict[str, dict[str, list[str]]]):
        self.mods: dict[tuple[str, ...], list[tuple[str | None, str, str]]] = {}
        self.heads: dict[tuple[str, ...], tuple[str, list[tuple[str, str]]]] = {}
        for group, nouns in _HEADS.items():
            for noun, assigned in nouns.items():
                self.heads[_words(noun)] = (group, list(assigned))
        for field, values in vocabulary.items():
            for value, synonyms in values.items():
                phrases = list(synonyms)
                if value not in ("none", "present") and (field, value) not in _SKIP_CANONICAL:
                    phrases.append(value)
                for phrase in phrases:
                    key = _words(phrase)
                    if (field, value) in _HEAD_VALUES:
                        group, assigned = self.heads.setdefault(key, (_FIELD_GROUPS[field][0], []))
                        if (field, value) not in assigned:
                            assigned.append((field, value))
                        continue
                    entries = self.mods.setdefault(key, [])
                    for group in _FIELD_GROUPS[field]:
                        if (group, field, value) not in entries:
                            entries.append((group, field, value))
        for key in self.heads:
            self.mods.pop(key, None)
        self.words = {w for k in [*self.mods, *self.heads] for w in k}


@dataclasses.dataclass
class _Item:
    start: int
    end: int
    kind: str  # "mod" | "head" | "cue" | "age"
    clause: int
    mods: list = dataclasses.field(default_factory=list)
    group: str | None = None
    assigned: list = dataclasses.field(default_factory=list)
    negated: bool = False
    done: bool = False


def _age_group(years: int) -> str:
    if years < 13:
        return "child"
    if years < 20:
        return "teen"
    if years < 30:
        return "young adult"
    if years < 45:
        return "adult"
    if years < 65:
        return "middle-aged"
    return "elderly"


def _span(toks: list, a: int, b: int) -> str:
    return " ".join(toks[a:b])


def _forward_head(items: list, toks: list, j: int) -> _Item | None:
    prev = items[j]
    for it in items[j + 1:]:
        if it.clause != prev.clause:
            return None
        gap = toks[prev.end:it.start]
        if any(g not in _FILLER and g != "and" for g in gap):
            return None
        if "and" in gap and it.kind != "mod":
            return None
        if it.kind == "head":
            return None if it.negated else it
        if it.kind != "mod" or all(g is None for g, _, _ in it.mods):
            return None
        prev = it
    return None

def _person_after(items: list, toks: list, j: int) -> _Item | None:
    """The word for a person right after a modifier, past age and build words ("a Black man",
    "an Asian young woman"), else ``None``: ancestry words are read before one."""
    prev = items[j]
    for it in items[j + 1:]:
        if it.clause != prev.clause or it.kind != "mod" or any(g not in _FILLER for g in toks[prev.end:it.start]):
            return None
        fields = {f for _, f, _ in it.mods}
        if "gender" in fields and _span(toks, it.start, it.end) not in _PRONOUNS:
            return it
        if not fields <= {"age_group", "build"}:
            return None
        prev = it
    return None


def _backward_head(items: list, toks: list, covered: list, j: int) -> _Item | None:
    mod = items[j]
    if _mod_end_noun(mod, toks, covered) is not None and None not in {g for g, _, _ in mod.mods}:
        return None
    later = mod
    for it in reversed(items[:j]):
        gap = toks[it.end:later.start]
        if mod.start - it.end > 8 or any(g not in _BACKLINK for g in gap):
            return None
        if it.kind == "head":
            return None if it.negated else it
        if it.kind != "mod":
            return None
        later = it
    return None

def _mod_end_noun(it: _Item, toks: list, covered: list) -> str | None:
    k = it.end
    n = len(toks)
    while k < n and toks[k] in _FILLER:
        k += 1
    if k < n and not covered[k] and toks[k] in _OTHER_NOUNS:
        return " ".join(toks[it.end:k + 1])
    return None



_DEFAULT_LEXICON: _Lexicon | None = None


class RuleParser:
    """The offline rule-based :class:`Parser`: lexicon lookup with attachment, negation and ages.

    Words are matched longest first over n-grams of up to 3 words. Adjectives attach to the next
    body-part noun (skipping other adjectives and words like "framed"), else to the previous one
    in the same clause ("her hair is red"); one that attaches to none is read alone ("blonde",
    "thin") or reported as ambiguous ("round"). A negation ("no", "not", "without", ...) sets the
    next noun's field to ``"none"``. Ages in years map to an age group (<13 child, <20 teen, <30
    young adult, <45 adult, <65 middle-aged, else elderly). Conflicting values leave the field unset
    and are reported in :attr:`ParseResult.ambiguous`; explicit adjectives override what a noun
    alone implies ("glasses" → ``present``, "round glasses" → ``round``), and ages in numbers
    override age words. ``long`` + ``curly``/``straight`` hair give the library hairstyle
    ``long curly``/``long straight``, and ``wavy`` hair the style ``wavy``.

    Args:
        vocabulary: field → {value: synonyms}; defaults to :data:`~machlib.text.VOCABULARY`.

    Example:
        >>> from machlib.text import RuleParser
        >>> r = RuleParser().parse("A middle-aged man, sword-like eyebrow, no glasses.")
        >>> r.attributes.to_dict()
        {'gender': 'male', 'age_group': 'middle-aged', 'eyebrow': 'sword-like', 'glasses': 'none'}
        >>> r.evidence["glasses"]
        'no glasses'
    """

    def __init__(self, *, vocabulary: dict[str, dict[str, list[str]]] | None = None):
        global _DEFAULT_LEXICON
        if vocabulary is None:
            if _DEFAULT_LEXICON is None:
                _DEFAULT_LEXICON = _Lexicon(VOCABULARY)
            self._lex = _DEFAULT_LEXICON
        else:
            unknown = [f for f in vocabulary if f not in FIELDS]
            if unknown:
                raise InputError(f"RuleParser: unknown field(s) {unknown} in vocabulary")
            self._lex = _Lexicon(vocabulary)

    # -- tokens ------------------------------------------------------------------------------
    def _tokens(self, prompt: str) -> list[str]:
        text = prompt.lower().replace("\u2019", "'").replace("\u2018", "'")
        text = re.sub(r"[-/_~\u2013\u2014]", " ", text)
        out = []
        for tok in _TOKEN_RE.findall(text):
            if tok.endswith("'s") and tok not in self._lex.words:
                tok = tok[:-2]
            out.append(tok)
        return out

    def parse(self, prompt: str) -> ParseResult:
        """Read the attributes of ``prompt``.

        Args:
            prompt: free text in English.

        Returns:
            The :class:`ParseResult`.

        Example:
            >>> from machlib.text import RuleParser
            >>> RuleParser().parse("An elderly lady, gray short hair.").attributes.to_dict()
            {'gender': 'female', 'age_group': 'elderly', 'hair_length': 'short', 'hair_color': 'gray'}
        """
        if not isinstance(prompt, str):
            raise TypeError(f"RuleParser.parse: prompt must be a str, got {type(prompt).__name__}")
        toks = self._tokens(prompt)
        n = len(toks)
        clause = []
        c = 0
        for t in toks:
            if t in _BOUNDARY:
                c += 1
            clause.append(c)
        covered = [False] * n
        items: list[_Item] = []
        assigns: list[tuple[str, str, str, int, int]] = []  # field, value, phrase, priority, position
        unknown: list[tuple[int, str]] = []
        ambiguous: list[Ambiguity] = []

        # ages in numbers
        i = 0
        while i < n:
            t, years, end = toks[i], None, i
            if t.isdigit() and i + 1 < n and toks[i + 1] in ("year", "years", "yr", "yrs", "yo"):
                years, end = int(t), i + 2
                if end < n and toks[end] == "old":
                    end += 1
            elif t in ("aged", "age") and i + 1 < n and toks[i + 1].isdigit():
                years, end = int(toks[i + 1]), i + 2
            elif re.fullmatch(r"\d+s", t):
                years, end = int(t[:-1]) + 5, i + 1
            if years is not None:
                assigns.append(("age_group", _age_group(years), _span(toks, i, end), 2, i))
                for k in range(i, end):
                    covered[k] = True
                i = end
            else:
                i += 1

        # lexicon items, longest match first
        i = 0
        while i < n:
            if covered[i] or toks[i] in _BOUNDARY:
                i += 1
                continue
            for m in (3, 2, 1):
                key = tuple(toks[i:i + m])
                if len(key) < m or any(covered[k] or toks[k] in _BOUNDARY for k in range(i, i + m)):
                    continue
                if key in self._lex.heads:
                    group, assigned = self._lex.heads[key]
                    items.append(_Item(i, i + m, "head", clause[i], group=group, assigned=assigned))
                elif key in self._lex.mods:
                    items.append(_Item(i, i + m, "mod", clause[i], mods=self._lex.mods[key]))
                elif m == 1 and key[0] in _NEGATION:
                    items.append(_Item(i, i + 1, "cue", clause[i]))
                else:
                    continue
                for k in range(i, i + m):
                    covered[k] = True
                i += m
                break
            else:
                i += 1

        # negation: the next noun (within 5 words, same clause) and the adjectives before it
        for j, cue in enumerate(items):
            if cue.kind != "cue":
                continue
            cue.done = True
            between = []
            for it in items[j + 1:]:
                if it.clause != cue.clause or it.start - cue.end > 5:
                    break
                if it.kind == "mod":
                    between.append(it)
                    continue
                if it.kind == "head":
                    it.negated = True
                    for m_ in between:
                        m_.done = True
                    neg = _NEGATED.get(it.group)
                    if neg is None:
                        unknown.append((cue.start, _span(toks, cue.start, it.end)))
                    else:
                        for f, v in neg:
                            assigns.append((f, v, _span(toks, cue.start, it.end), 1, cue.start))
                    between = []
                break
            if between:  # "not young": the first adjective is negated, which the schema cannot say
                between[0].done = True
                unknown.append((cue.start, _span(toks, cue.start, between[0].end)))

        for j, it in enumerate(items):
            if it.kind != "mod" or it.done:
                continue
            groups = {g for g, _, _ in it.mods}
            head = fwd = _forward_head(items, toks, j)
            if head is None or head.group not in groups:
                back = _backward_head(items, toks, covered, j)
                if back is not None and back.group in groups:
                    head = back
            phrase = _span(toks, it.start, it.end)
            person = _person_after(items, toks, j) if "person" in groups else None
            if person is not None and (fwd is None or fwd.group not in groups):
                for g, f, v in it.mods:
                    if g == "person":
                        assigns.append((f, v, f"{phrase} {_span(toks, person.start, person.end)}", 1, it.start))
            elif head is not None and head.group in groups:
                a, b = min(it.start, head.start), max(it.end, head.end)
                ev = f"{phrase} {_span(toks, head.start, head.end)}" if head.start > it.start else _span(toks, a, b)
                for g, f, v in it.mods:
                    if g == head.group:
                        assigns.append((f, v, ev, 1, it.start))
            elif None in groups:
                prio = 0 if phrase in _PRONOUNS else 1
                for g, f, v in it.mods:
                    if g is None:
                        assigns.append((f, v, phrase, prio, it.start))
            elif _mod_end_noun(it, toks, covered) is not None:
                unknown.append((it.start, f"{phrase} {_mod_end_noun(it, toks, covered)}"))
                covered[it.end + len(_mod_end_noun(it, toks, covered).split()) - 1] = True
            elif head is not None:
                unknown.append((it.start, f"{phrase} {_span(toks, head.start, head.end)}"))
            elif phrase in _DEFAULTS:
                for f, v in _DEFAULTS[phrase]:
                    assigns.append((f, v, phrase, 1, it.start))
            elif len(groups) == 1:
                for g, f, v in it.mods:
                    assigns.append((f, v, phrase, 1, it.start))
            else:
                cands = tuple(dict.fromkeys((f, v) for g, f, v in it.mods))
                ambiguous.append(Ambiguity(phrase, cands))

        for it in items:
            if it.kind == "head" and not it.negated:
                for f, v in it.assigned:
                    assigns.append((f, v, _span(toks, it.start, it.end), 0, it.start))

        # unknown words
        k = 0
        while k < n:
            if covered[k] or toks[k] in _BOUNDARY or toks[k] in _STOPWORDS or toks[k] in _PRONOUNS:
                k += 1
                continue
            e = k
            while e < n and not covered[e] and toks[e] not in _BOUNDARY and toks[e] not in _STOPWORDS:
                e += 1
            unknown.append((k, _span(toks, k, e)))
            k = e

        # merge: highest priority wins; different values at that priority are a conflict
        values: dict[str, str] = {}
        evidence: dict[str, str] = {}
        for field in FIELDS:
            mine = [a for a in assigns if a[0] == field]
            if not mine:
                continue
            top = max(a[3] for a in mine)
            mine = sorted((a for a in mine if a[3] == top), key=lambda a: a[4])
            distinct = list(dict.fromkeys(a[1] for a in mine))
            specific = [v for v in distinct if v not in ("present", "none")]
            if "present" in distinct and "none" not in distinct and len(specific) == 1:
                # a generic mention and one specific kind agree: "a bearded man with a goatee"
                distinct = specific
            if len(distinct) == 1:
                values[field] = distinct[0]
                evidence[field] = "; ".join(dict.fromkeys(a[2] for a in mine))
            else:
                ambiguous.append(Ambiguity(" / ".join(dict.fromkeys(a[2] for a in mine)),
                                           tuple((field, v) for v in distinct)))

        # library hairstyles from their parts
        if "hairstyle" not in values and not any(a.candidates[0][0] == "hairstyle" for a in ambiguous):
            length, texture = values.get("hair_length"), values.get("hair_texture")
            style = None
            if length in ("long", "very long") and texture in ("curly", "straight"):
                style = f"long {texture}"
            elif texture == "wavy":
                style = "wavy"
            if style is not None:
                values["hairstyle"] = style
                evidence["hairstyle"] = "; ".join(
                    dict.fromkeys(evidence[f] for f in ("hair_length", "hair_texture") if f in values))

        attributes = FaceAttributes(**values)
        evidence = {f: evidence[f] for f in FIELDS if f in values}
        return ParseResult(attributes=attributes, unknown=[u for _, u in sorted(unknown, key=lambda x: x[0])],
                           ambiguous=ambiguous, evidence=evidence)


def parse_prompt(prompt: str, *, parser: Parser | None = None) -> ParseResult:
    """Read facial attributes from a text prompt.

    Args:
        prompt: free text, e.g. ``"A boy with brown skin and black glasses, green hair."``.
        parser: any :class:`Parser`; defaults to :class:`RuleParser`.

    Returns:
        The :class:`ParseResult` (attributes, unknown phrases, ambiguities, evidence).

    Example:
        >>> from machlib.text import parse_prompt
        >>> parse_prompt("A boy with brown skin and black glasses, green hair.").attributes.to_dict()
        {'gender': 'male', 'skin_tone': 'brown', 'hair_color': 'green', 'glasses': 'present', 'glasses_color': 'black'}
    """
    return (RuleParser() if parser is None else parser).parse(prompt)
