"""Text → facial attributes (paper §2.1): the attribute schema and prompt parsers.

* :class:`FaceAttributes`: a frozen, validated, JSON-serialisable record of facial attributes
  (gender, age group, face/eye/eyebrow/nose/mouth shape, colours, skin tone, wrinkles, freckles,
  hairstyle, glasses, beard, garment, ...); :meth:`FaceAttributes.tags` gives asset-matching tags.
* :data:`VOCABULARY`: per field, canonical value → synonyms; :func:`canonical_value` looks one up.
* :class:`Parser`: the interface ``parse(prompt) -> ParseResult``; :class:`RuleParser` is the
  offline rule-based default and :func:`parse_prompt` the convenience entry point;
  :class:`EmbeddingParser` adds sentence-embedding matching of the phrases the rules miss, and
  :class:`LLMParser` asks a chat LLM for schema-valid JSON (with retries).
* visual clues (§2.2): :func:`face_layout` builds a frontal, neutral face layout from attributes
  (:class:`FaceLayout`); :func:`keypoint_image` and :func:`edge_image` draw the OpenPose-style
  face keypoints and the canny-style edge map that steer ControlNet; :func:`visual_clues` does
  both from a dict of attributes (or a :class:`FaceAttributes`).
* prompting: :func:`portrait_prompt` writes the Stable Diffusion prompt and negative prompt of a
  frontal, neutral, evenly lit portrait (:class:`PortraitPrompt`).
"""

from ._clues import (
    FACE_ATTRIBUTE_VALUES,
    N_FACE_KEYPOINTS,
    FaceLayout,
    edge_image,
    face_layout,
    keypoint_image,
    visual_clues,
)
from ._parse import Ambiguity, Parser, ParseResult, RuleParser, parse_prompt
from ._embed_parse import EmbeddingParser, value_descriptions
from ._llm import LLMParser, llm_system_prompt, read_llm_reply
from ._prompting import PORTRAIT_NEGATIVE, PortraitPrompt, portrait_prompt
from ._schema import FIELDS, VOCABULARY, FaceAttributes, canonical_value

__all__ = [
    "FaceAttributes", "FIELDS", "VOCABULARY", "canonical_value",
    "Parser", "ParseResult", "Ambiguity", "RuleParser", "parse_prompt",
    "FaceLayout", "face_layout", "keypoint_image", "edge_image", "visual_clues", "FACE_ATTRIBUTE_VALUES",
    "N_FACE_KEYPOINTS",
    "PortraitPrompt", "portrait_prompt", "PORTRAIT_NEGATIVE",
    "EmbeddingParser", "value_descriptions", "LLMParser", "llm_system_prompt", "read_llm_reply",
]
