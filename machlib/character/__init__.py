"""The assembled character: parts, skeleton, blendshapes, export, previews and ``machlib make``.

* :func:`build_character` puts a fitted, textured head together with generated eyes, eyelashes,
  teeth, gums, tongue and oral cavity, optional glasses and bust, hair strands, the 52 ARKit
  blendshapes and a skeleton (root → neck → head → jaw, eyes).
* :func:`character_glb` writes it as one glTF 2.0 binary; :func:`write_character_obj` as OBJ + MTL;
  :func:`write_bundle` zips a folder's files under safe relative names.
* :func:`make_character` and :func:`write_make_outputs` run the whole job behind ``machlib make``:
  portrait or prompt → fitted, textured, haired, dressed, animatable avatar with previews.
"""

from ._assemble import (
    IRIS_DEFAULT,
    SKIN_TONES,
    ANCESTRY_SKIN_TONES,
    Character,
    CharacterPart,
    Joint,
    build_character,
    character_glb,
    fit_detail_height,
    normal_map_from_albedo,
    posed_parts,
    roughness_map,
    skin_tone_albedo,
    write_bundle,
    write_character_obj,
)

__all__ = [
    "Character", "CharacterPart", "Joint", "build_character", "character_glb", "posed_parts",
    "write_character_obj", "write_bundle", "skin_tone_albedo", "SKIN_TONES", "ANCESTRY_SKIN_TONES", "IRIS_DEFAULT",
    "roughness_map", "normal_map_from_albedo", "fit_detail_height",
]

from ._make import (  # noqa: E402
    DEFAULT_PROMPT,
    PREVIEW_EXPOSURE,
    MakeOutput,
    make_character,
    preview_images,
    write_make_outputs,
)

__all__ += ["MakeOutput", "make_character", "write_make_outputs", "preview_images", "DEFAULT_PROMPT", "PREVIEW_EXPOSURE"]

from ._clothes import GarmentReading, garment_color_name, read_garment_color  # noqa: E402

__all__ += ["GarmentReading", "garment_color_name", "read_garment_color"]

from ._read import (  # noqa: E402
    AttributeClassifier,
    PhotoReading,
    detect_facial_hair,
    glasses_color_name,
    glasses_lens,
    merge_attributes,
    read_attributes,
    skin_tone_from_ita,
)

__all__ += [
    "AttributeClassifier", "PhotoReading", "detect_facial_hair", "glasses_color_name", "glasses_lens",
    "merge_attributes", "read_attributes", "skin_tone_from_ita",
]

from ._eye_color import SCLERA_DEFAULT, EyeColors, iris_color_name, read_eye_colors  # noqa: E402

__all__ += ["EyeColors", "read_eye_colors", "iris_color_name", "SCLERA_DEFAULT"]
