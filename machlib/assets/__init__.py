"""Tagged asset library and text matching (Make-A-Character §2.6).

Pre-produced assets (hairstyles, glasses, garments, iris textures, eyelashes, beards) are listed
in a manifest with a text label and tags; the asset whose label embedding is most similar (cosine)
to the prompt's is selected.

* manifests: :class:`Asset`, :class:`AssetManifest`, :data:`ASSET_KINDS`, :func:`load_manifest`
  (validated: known fields, unique ids, known kinds, relative paths that stay inside the library
  root), atomic :func:`save_manifest`, and :func:`builtin_manifest` for machlib's own generated
  assets (the ten :data:`machlib.hair.HAIR_STYLES` presets, plus labelled glasses, garments,
  irises, eyelashes and beards);
* matching: the :class:`Embedder` protocol with :class:`LexicalEmbedder` (offline, deterministic),
  :class:`SentenceTransformerEmbedder` and :class:`ClipTextEmbedder` (local model folders, lazy
  imports), :func:`default_embedder`, and :func:`match_assets` returning ranked
  :class:`AssetMatch`.
"""

from ._manifest import ASSET_KINDS, Asset, AssetManifest, builtin_manifest, load_manifest, save_manifest
from ._match import (
    AssetMatch,
    ClipTextEmbedder,
    Embedder,
    LexicalEmbedder,
    SentenceTransformerEmbedder,
    default_embedder,
    match_assets,
)

__all__ = [
    "ASSET_KINDS", "Asset", "AssetManifest", "load_manifest", "save_manifest", "builtin_manifest",
    "Embedder", "LexicalEmbedder", "SentenceTransformerEmbedder", "ClipTextEmbedder", "default_embedder",
    "AssetMatch", "match_assets",
]
