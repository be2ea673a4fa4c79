"""The embedding prompt parser: the rule parser, then text-embedding matching of what it missed.

:class:`EmbeddingParser` runs :class:`~machlib.text.RuleParser` and then embeds each phrase the
rules reported as unknown (alone, and within its chunk of the prompt, e.g. ``"sapphire"`` and
``"sapphire eyes"``) and compares it by cosine similarity with short descriptions of every
attribute value (``"round face"``, ``"willow leaf eyebrows"``, ``"almond eyes"``, ``"red
lipstick"``, ... built from :data:`~machlib.text.VOCABULARY` and its synonyms).
"""

from __future__ import annotations

import re
import weakref
from typing import Any

import numpy as np

from .._errors import InputError
from ._embed import LexicalEmbedder, default_embedder
from ._parse import (
    _FIELD_GROUPS,
    _HEADS,
    Ambiguity,
    Parser,
    ParseResult,
    RuleParser,
    _Lexicon,
)
from ._schema import FIELDS, VOCABULARY, FaceAttributes

__all__ = ["EmbeddingParser", "value_descriptions"]

# what each field's values describe; "{}" is the value or synonym
_NOUN = {
    "build": "build", "face_shape": "face", "eye_shape": "eyes", "iris_color": "eyes", "eyebrow": "eyebrows",
    "nose": "nose", "mouth": "lips", "lipstick_color": "lipstick", "skin_tone": "skin", "wrinkles": "wrinkles",
    "freckles": "freckles", "moles": "moles", "makeup": "makeup", "hairstyle": "hairstyle",
    "hair_length": "hair", "hair_texture": "hair", "hair_color": "hair", "bangs": "bangs",
    "glasses": "glasses", "glasses_color": "glasses frames", "beard": "beard", "moustache": "moustache",
    "ancestry": "person",
}
# words that already name the thing (a synonym containing one is used as it is)
_NOUN_WORDS = {"face", "faced", "jaw", "eyes", "eye", "eyelid", "eyelids", "lid", "lidded", "eyebrows", "nose",
               "lips", "mouth", "lipstick", "skin", "skinned", "wrinkles", "wrinkle", "freckles", "freckle",
               "moles", "mole", "makeup", "make", "hair", "haired", "head", "cut", "haircut", "bun", "buns",
               "ponytail", "ponytails", "tail", "pigtails", "knot", "topknot", "chignon", "updo", "afro", "bob",
               "bangs", "glasses", "shades", "sunnies", "aviators", "beard", "stubble", "shadow", "moustache",
               "mustache", "shaven", "shaved", "barefaced", "ringlets", "waves", "curls", "lob", "buzz", "buzzcut",
               "crewcut"}
_PRONOUNS = {"she", "her", "hers", "herself", "he", "his", "him", "himself"}
_FIELD_NOUNS = {"glasses": "glasses", "beard": "a beard", "moustache": "a moustache", "bangs": "bangs",
                "wrinkles": "wrinkles", "freckles": "freckles", "moles": "moles", "makeup": "makeup",
                "lipstick_color": "lipstick"}
_SPLIT_WORDS = {"with", "and", "wearing", "wears", "in", "who", "has", "have", "having", "but", "sporting",
                "plus", "or", "while", "whose", "is", "are", "was", "also"}
_LEADING = {"a", "an", "the", "her", "his", "their", "its", "my", "this", "that"}
def _phrase(text: str) -> str:
    return " ".join(text.replace("-", " ").split())


# a chunk naming one of these parts is about them: only their fields are candidates
_PART_FIELDS: dict[str, set[str]] = {g: {f for f, gs in _FIELD_GROUPS.items() if g in gs} for g in _HEADS}
_PART_FIELDS["face"] |= {"wrinkles", "freckles", "moles", "makeup", "skin_tone", "glasses", "beard", "moustache"}
_PART_FIELDS["eyes"] |= {"makeup", "glasses"}
_PART_NOUNS: dict[tuple[str, ...], str] = {tuple(_phrase(n).split()): g for g, ns in _HEADS.items() for n in ns}
_PART_NOUNS.update({("tresses",): "hair", ("curls",): "hair", ("gaze",): "eyes", ("peepers",): "eyes",
                    ("eyelids",): "eyes", ("lids",): "eyes", ("visage",): "face", ("cheekbones",): "face",
                    ("brow",): "eyebrow", ("eyelashes",): "eyes", ("lashes",): "eyes"})
_PART_NOUNS.update({k: g for k, (g, _) in _Lexicon(VOCABULARY).heads.items() if g is not None and k not in _PART_NOUNS})
_AND_PHRASES = {tuple(_phrase(p).split()) for vs in VOCABULARY.values() for ps in vs.values() for p in ps
                if " and " in f" {_phrase(p)} "}
# a chunk naming one of these (and no part above) is about something outside the schema: left unknown
_OUTSIDE = {"cheek", "cheeks", "forehead", "chin", "ear", "ears", "neck", "shoulders", "smile", "grin", "teeth",
            "braces", "hairline", "dimple", "dimples", "scar", "scars", "tattoo", "tattoos", "piercing", "piercings",
            "earring", "earrings", "hat", "cap", "scarf", "necklace", "skirt", "jeans", "voice"}
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[.,;:!?()]")


def value_descriptions(field: str) -> dict[str, list[str]]:
    """The texts that describe each value of ``field`` for embedding matching.

    Each value and each of its synonyms in :data:`~machlib.text.VOCABULARY` is put in the
    context of the field's noun (``"almond"`` → ``"almond eyes"``, ``"sword like"`` →
    ``"sword like eyebrows"``; phrases naming the thing already, such as ``"shaved head"`` or
    ``"clean shaven"``, are kept as they are); ``"none"`` reads ``"no <noun>"`` and ``"present"``
    the noun alone. Gender and age group use the words alone (pronouns dropped), garments
    ``"wearing a <garment>"``.

    Args:
        field: a field of :class:`~machlib.text.FaceAttributes`.

    Returns:
        ``{value: [description, ...]}`` in vocabulary order (no duplicates).

    Raises:
        InputError: ``field`` is not a field.

    Example:
        >>> from machlib.text._embed_parse import value_descriptions
        >>> value_descriptions("eyebrow")["willow-leaf"][:2]
        ['willow leaf eyebrows', 'willow eyebrows']
        >>> value_descriptions("glasses")["none"]
        ['no glasses', 'without glasses']
    """
    if field not in VOCABULARY:
        raise InputError(f"value_descriptions: unknown field {field!r}; known: {list(FIELDS)}")
    out: dict[str, list[str]] = {}
    for value, synonyms in VOCABULARY[field].items():
        texts: list[str] = []
        if value == "none" and field in _FIELD_NOUNS:
            texts += [f"no {_FIELD_NOUNS[field].removeprefix('a ')}", f"without {_FIELD_NOUNS[field]}"]
        elif value == "present" and field in _FIELD_NOUNS:
            texts += [_FIELD_NOUNS[field], f"with {_FIELD_NOUNS[field]}"]
        for phrase in [value, *synonyms]:
            if phrase in ("none", "present"):
                continue
            p = _phrase(phrase)
            if field in ("gender", "age_group"):
                if p not in _PRONOUNS:
                    texts.append(p)
            elif field == "garment":
                texts.append(f"wearing a {p}")
            elif set(p.split()) & _NOUN_WORDS or p.startswith("no "):
                texts.append(p)
            else:
                texts.append(f"{p} {_NOUN[field]}")
        out[value] = list(dict.fromkeys(texts))
    return out


class _Table:
    """All (field, value) descriptions, and the bare value words, embedded once for one embedder."""

    def __init__(self, embedder: Any):
        texts, owners, bare, bare_owners = [], [], [], []
        self.pairs: list[tuple[str, str]] = []
        for field in FIELDS:
            for value, descs in value_descriptions(field).items():
                self.pairs.append((field, value))
                texts += descs
                owners += [len(self.pairs) - 1] * len(descs)
                words = [_phrase(w) for w in [value, *VOCABULARY[field][value]] if w not in ("none", "present")]
                words = list(dict.fromkeys(words)) or descs[:1]
                bare += words
                bare_owners += [len(self.pairs) - 1] * len(words)
        unique = list(dict.fromkeys(texts + bare))
        emb = np.asarray(embedder.embed(unique), dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(unique):
            raise InputError(f"EmbeddingParser: the embedder returned shape {emb.shape} for {len(unique)} texts")
        row = {t: i for i, t in enumerate(unique)}
        emb = emb[[row[t] for t in texts + bare]]
        self.embeddings, self.bare = emb[:len(texts)], emb[len(texts):]
        self.owner, self.bare_owner = np.asarray(owners), np.asarray(bare_owners)
        self.field_of = np.asarray([FIELDS.index(f) for f, _ in self.pairs])

    def _best(self, query: np.ndarray, emb: np.ndarray, owner: np.ndarray) -> np.ndarray:
        sims = query @ emb.T  # (q, descriptions)
        out = np.full((query.shape[0], len(self.pairs)), -np.inf, dtype=np.float32)
        for q in range(query.shape[0]):
            np.maximum.at(out[q], owner, sims[q])
        return out

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Per (field, value) pair: the best cosine over its descriptions, for each query row."""
        return self._best(query, self.embeddings, self.owner)

    def bare_scores(self, query: np.ndarray) -> np.ndarray:
        """Per (field, value) pair: the best cosine over its bare value words, for each query row."""
        return self._best(query, self.bare, self.bare_owner)


_TABLES: "weakref.WeakKeyDictionary[Any, _Table]" = weakref.WeakKeyDictionary()
_TABLES_BY_ID: dict[int, tuple[Any, _Table]] = {}


def _table_for(embedder: Any) -> _Table:
    try:
        table = _TABLES.get(embedder)
        if table is None:
            table = _TABLES[embedder] = _Table(embedder)
        return table
    except TypeError:  # not weak-referenceable (or unhashable): keep it alive alongside its table
        hit = _TABLES_BY_ID.get(id(embedder))
        if hit is None or hit[0] is not embedder:
            hit = _TABLES_BY_ID[id(embedder)] = (embedder, _Table(embedder))
        return hit[1]


def _chunks(prompt: str) -> list[list[str]]:
    toks = _TOKEN.findall(prompt.lower().replace("\u2019", "'").replace("-", " ").replace("/", " "))
    chunks, cur = [], []
    for i, t in enumerate(toks):
        if t == "and" and tuple(toks[i - 1:i + 2]) in _AND_PHRASES:
            cur.append(t)
        elif not t[0].isalnum() or t in _SPLIT_WORDS:
            if cur:
                chunks.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur:
        chunks.append(cur)
    return chunks


def _context(phrase_toks: list[str], chunks: list[list[str]], used: set) -> tuple[str | None, set | None]:
    """The chunk of the prompt holding the phrase (without leading articles/possessives) and the
    fields it can be about (``None``: any; empty: none, the chunk is about something else)."""
    n = len(phrase_toks)
    for ci, chunk in enumerate(chunks):
        for i in range(len(chunk) - n + 1):
            if chunk[i:i + n] == phrase_toks and (ci, i) not in used:
                used.add((ci, i))
                words = list(chunk)
                while words and words[0] in _LEADING:
                    words.pop(0)
                fields: set | None = None
                for k in range(len(chunk)):
                    for m in (2, 1):
                        group = _PART_NOUNS.get(tuple(chunk[k:k + m]))
                        if group is not None:
                            fields = (fields or set()) | _PART_FIELDS[group]
                if fields is None and _OUTSIDE & set(chunk):
                    fields = set()
                return " ".join(words), fields
    return None, None


class EmbeddingParser:
    """A :class:`~machlib.text.Parser`: the rule parser, then embedding matching of what it missed.

    The prompt is first read by :class:`~machlib.text.RuleParser`; what it sets is kept. Each
    phrase it reports as unknown is embedded twice, alone and within its chunk of the prompt (the
    words between punctuation and connectives such as "with", "and", "wearing": ``"pillowy"`` and
    ``"pillowy lips"``), and compared by cosine similarity with the descriptions of every
    attribute value (:func:`value_descriptions`, from :data:`~machlib.text.VOCABULARY`'s synonyms:
    "round face", "willow leaf eyebrows", "almond eyes", "red lipstick", ...). A value's score is
    the mean of two cosines: the best of (phrase or chunk) against its descriptions, which finds
    the part of the face, and the phrase alone against its bare value words, which tells the
    values of one field apart. Candidates are the fields still unset; a chunk naming a part
    ("eyes", "nose", "lipstick", "hair", "face", ...) limits them to that part's fields, and a
    chunk about a part outside the schema ("cheeks", "chin", "smile", "hairline", ...) is left
    unknown. The phrase is assigned the best (field, value) when its score is at least
    ``threshold`` and beats every other (field, value) by at least ``margin``; when another
    candidate is within ``margin`` it becomes an :class:`~machlib.text.Ambiguity` listing them
    (best first, at most four); below ``threshold`` it stays unknown. A phrase the rules found
    ambiguous is decided the same way among the rules' readings only, or stays ambiguous.
    Phrases are decided best score first, and a field set by one is no longer a candidate for
    the next. The description embeddings are computed once per embedder object and cached.

    With the packaged all-MiniLM-L6-v2 (``pip install 'machlib[embed]'``), paraphrases the lexicon
    lacks are understood when the model knows them: "hawkish nose" → ``nose=aquiline``, "tux" →
    ``garment=suit``, "flame-coloured hair" → ``hair_color=red``, "pillowy lips" →
    ``mouth=full``, "hair cascading to her waist" → ``hair_length=long``; colours of gems and fruit
    ("sapphire", "tangerine") mostly end as near ties, and single words without a part
    ("lanky", "svelte") are weak (see the accuracy table in the docs). With the lexical fallback
    (:class:`~machlib.assets.LexicalEmbedder`, used when the model is not installed) similarity is
    spelling, not meaning: it catches inflections, compounds and misspellings of vocabulary
    words ("ponytailed", "wavey") and the synonyms of its own small table, but no paraphrase
    ("sapphire" is not "blue" to it), and its hashed features can collide (e.g. "cheerful" and
    "buzz"), so its default threshold is higher. Either way nothing the rule parser read is
    changed: the parser only fills fields the rules left unset.

    Args:
        embedder: any :class:`~machlib.assets.Embedder`; ``None``:
            :func:`~machlib.assets.default_embedder` (the packaged MiniLM when installed, else the
            lexical fallback).
        threshold: the lowest cosine similarity that assigns a value; ``None``: 0.7 for
            :class:`~machlib.assets.LexicalEmbedder`, 0.6 for model embedders (tuned on
            ``tests/text/paraphrases.json`` and ``tests/text/prompts.json`` with all-MiniLM-L6-v2).
        margin: how far the best value must beat the runner-up (another field or value).
        rules: the first-pass parser; ``None``: :class:`~machlib.text.RuleParser`.

    Raises:
        InputError: ``threshold`` outside [-1, 1] or ``margin`` < 0.

    Example:
        >>> from machlib.assets import LexicalEmbedder
        >>> from machlib.text import EmbeddingParser
        >>> r = EmbeddingParser(LexicalEmbedder()).parse("A woman with ponytailed hair and a zorblax")
        >>> r.attributes.to_dict(), r.unknown
        ({'gender': 'female', 'hairstyle': 'ponytail'}, ['zorblax'])
    """

    def __init__(self, embedder: Any = None, *, threshold: float | None = None, margin: float = 0.05,
                 rules: Parser | None = None):
        if embedder is None:
            embedder = default_embedder()
        if not callable(getattr(embedder, "embed", None)):
            raise InputError(f"EmbeddingParser: embedder must have an embed(texts) method, got {type(embedder).__name__}")
        if threshold is None:
            threshold = 0.7 if isinstance(embedder, LexicalEmbedder) else 0.6
        if not -1.0 <= float(threshold) <= 1.0:
            raise InputError(f"EmbeddingParser: threshold must be in [-1, 1], got {threshold!r}")
        if float(margin) < 0:
            raise InputError(f"EmbeddingParser: margin must be >= 0, got {margin!r}")
        self.embedder = embedder
        self.threshold = float(threshold)
        self.margin = float(margin)
        self.rules = RuleParser() if rules is None else rules
        self._bare_weight = 0.5

    def match(self, phrases: list[str]) -> np.ndarray:
        """Scores of each phrase against every (field, value): ``(len(phrases), len(pairs))``.

        The columns follow :meth:`pairs`. Useful to inspect why a phrase was (not) assigned.

        Example:
            >>> from machlib.assets import LexicalEmbedder
            >>> from machlib.text import EmbeddingParser
            >>> p = EmbeddingParser(LexicalEmbedder())
            >>> p.pairs()[int(p.match(["ponytailed hair"])[0].argmax())]
            ('hairstyle', 'ponytail')
        """
        table = _table_for(self.embedder)
        q = np.asarray(self.embedder.embed(list(phrases)), dtype=np.float32)
        return table.scores(q)

    def pairs(self) -> list[tuple[str, str]]:
        """The (field, value) pairs that :meth:`match` scores, in column order."""
        return list(_table_for(self.embedder).pairs)

    def parse(self, prompt: str) -> ParseResult:
        """Read the attributes of ``prompt``: the rules first, then embedding matching.

        Args:
            prompt: free text in English.

        Returns:
            The :class:`~machlib.text.ParseResult`; evidence of an embedding match is the text
            that matched (the phrase or its chunk).

        Example:
            >>> from machlib.assets import LexicalEmbedder
            >>> from machlib.text import EmbeddingParser
            >>> r = EmbeddingParser(LexicalEmbedder()).parse("a guy with wavey hair")
            >>> r.attributes.to_dict(), r.ambiguous[0].phrase, len(r.ambiguous[0].candidates)
            ({'gender': 'male'}, 'wavey', 2)
        """
        if not isinstance(prompt, str):
            raise TypeError(f"EmbeddingParser.parse: prompt must be a str, got {type(prompt).__name__}")
        base = self.rules.parse(prompt)
        values = base.attributes.to_dict()
        evidence = dict(base.evidence)
        # the phrases to look at: (kind, index in its list, phrase)
        todo = [("unknown", i, u) for i, u in enumerate(base.unknown)]
        todo += [("ambiguous", i, a.phrase) for i, a in enumerate(base.ambiguous)
                 if " / " not in a.phrase]  # conflicts between phrases are left to the user
        if not todo:
            return base
        chunks, used = _chunks(prompt), set()
        texts: list[list[str]] = []
        allowed: list[set | None] = []
        for _, _, phrase in todo:
            own = _phrase(phrase.lower())
            ctx, fields = _context(own.split(), chunks, used)
            texts.append([own] if ctx is None or ctx == own else [own, ctx])
            allowed.append(fields)
        for j, (kind, idx, _) in enumerate(todo):
            if kind == "ambiguous":  # the rules' readings are the only candidates
                allowed[j] = {f for f, _ in base.ambiguous[idx].candidates} & (allowed[j] or set(FIELDS))
        table = _table_for(self.embedder)
        field_of = table.field_of
        flat = [t for ts in texts for t in ts]
        q = np.asarray(self.embedder.embed(flat), dtype=np.float32)
        scores, bare = table.scores(q), table.bare_scores(q)
        per_phrase, k = [], 0
        w = self._bare_weight
        for ts in texts:
            block = scores[k:k + len(ts)]
            best_row = block.argmax(axis=0)  # which text gave each pair's score
            # the context picks the part; the phrase alone against the bare value words picks the value
            per_phrase.append(((1 - w) * block.max(axis=0) + w * bare[k], [ts[j] for j in best_row]))
            k += len(ts)

        resolved: dict[tuple[str, int], Any] = {}
        set_fields = {FIELDS.index(f) for f in values}
        blocked = {FIELDS.index(f) for a in base.ambiguous if " / " in a.phrase for f, _ in a.candidates}
        order = sorted(range(len(todo)), key=lambda j: -float(per_phrase[j][0].max()))
        for j in order:
            s, which = per_phrase[j]
            kind, idx, phrase = todo[j]
            open_ = np.array([f not in set_fields and f not in blocked
                              and (allowed[j] is None or FIELDS[f] in allowed[j]) for f in field_of])
            if kind == "ambiguous":
                cands = set(base.ambiguous[idx].candidates)
                open_ &= np.array([p in cands for p in table.pairs])
            if not open_.any():
                continue
            s = np.where(open_, s, -np.inf)
            best = int(s.argmax())
            if s[best] < self.threshold:
                continue
            close = [int(i) for i in np.argsort(-s) if s[i] >= s[best] - self.margin]
            if len(close) > 1:
                resolved[(kind, idx)] = Ambiguity(phrase, tuple(table.pairs[i] for i in close[:4]))
                continue
            field, value = table.pairs[best]
            values[field] = value
            evidence[field] = which[best]
            set_fields.add(FIELDS.index(field))
            resolved[(kind, idx)] = (field, value)

        unknown = [u for i, u in enumerate(base.unknown) if ("unknown", i) not in resolved]
        ambiguous = []
        for i, a in enumerate(base.ambiguous):
            r = resolved.get(("ambiguous", i))
            if r is None:
                ambiguous.append(a)
            elif isinstance(r, Ambiguity):
                ambiguous.append(r)
        ambiguous += [r for (kind, _), r in sorted(resolved.items()) if kind == "unknown" and isinstance(r, Ambiguity)]
        return ParseResult(attributes=FaceAttributes(**values), unknown=unknown, ambiguous=ambiguous,
                           evidence={f: evidence[f] for f in FIELDS if f in values})

    def __repr__(self) -> str:
        return f"EmbeddingParser({self.embedder!r}, threshold={self.threshold}, margin={self.margin})"
