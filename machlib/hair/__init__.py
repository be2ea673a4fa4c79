"""Strand hair (Make-A-Character §2.5): strand containers, strand file I/O, strand growth and a
procedural hairstyle library.

What exists now:

* containers: :class:`Strands` (``S`` strands × ``P`` points, the fixed shape that growth and
  rendering use) and :class:`RaggedStrands` (strands of different lengths, stored flat as the file
  formats store them), with conversions, :func:`strands_from_list` and arc-length
  :func:`resample_strands`;
* file formats: USC-HairSalon ``.data`` (:func:`read_hair_data`, :func:`write_hair_data`), Cem
  Yuksel's ``.hair`` (:func:`read_cem_hair`, :func:`write_cem_hair`), USD ``BasisCurves`` as ASCII
  ``.usda`` (:func:`write_usd_curves`), glTF ``LINES`` arrays (:func:`strands_to_gltf_lines`) and
  triangle ribbons that every mesh renderer draws (:func:`strand_ribbons`, :func:`ribbon_faces`);
* growth: roots on the template's scalp region (:func:`scalp_roots`), a signed distance grid of
  the head for collision (:class:`HeadSDF`, :func:`head_sdf_grid`, :func:`sdf_lookup`), and an
  RK2 integrator of a direction field, vmapped over strands under ``jit`` (:func:`grow_strands`);
* styles: :class:`HairStyle` with the tagged presets :data:`HAIR_STYLES` (bald, buzz cut, crop, pixie,
  bob, long straight, long curly, wavy, ponytail, bun, low bun, afro), :func:`find_styles` for text
  matching, :func:`style_for` (the style a description's length, texture, fringe, gender and age ask
  for, with :class:`StyleChoice` saying why; :func:`length_class`), :func:`grow_style`, and hair colour from melanin (:func:`hair_color`,
  :data:`HAIR_COLORS`);
* fitting to the photo: :func:`fit_strand_tips` trims and extends strands so that their visible
  tips end where the portrait's hair ends (:class:`TipFit`); :func:`clump_strands` gathers
  strands into clumps with layered tips and a few flyaways, so the hair does not read as a shell;
  :func:`tuck_tips` turns a short cut's ends under, towards the head, as a bob's are;
  :func:`cover_ears` brings long hair that passes beside an ear in front of it (the ear's box:
  :func:`ear_boxes`), as hair worn over the ears falls;
* resting on the body: :func:`body_sdf` (a signed distance grid of the body and its clothes) and
  :func:`drape_strands` (long hair slides over the shoulders, chest and back instead of passing
  through them);
* facial hair: :class:`BeardStyle` with the presets :data:`BEARD_STYLES` (stubble, moustache,
  goatee, short, full) grown on zones of the lower face (:func:`beard_roots`,
  :func:`grow_beard`), chosen from the ``beard`` / ``moustache`` attributes
  (:func:`beard_style_for`).

Positions are metres in head space (+y up, +z out of the face; see :doc:`/conventions`); colours
are linear RGB; thickness is a diameter in metres. Orientation maps, image-guided styles and
clean-up are planned (see :doc:`/hair`).
"""

from ._beard import BEARD_STYLES, BEARD_ZONES, BeardStyle, beard_roots, beard_style_for, grow_beard
from ._choose import StyleChoice, length_class, style_for
from ._cleanup import CleanupResult, cleanup_strands, cleanup_to_count, resample_uniform, smooth_strands, strand_lengths, transfer_strands
from ._color import (HairColorEstimate, estimate_hair_color, fit_melanin, hair_shading_from_sh, light_from_skin,
                     strand_colors_from_photo)
from ._clump import clump_strands
from ._drape import body_sdf, drape_strands
from ._fit import TipFit, fit_strand_tips
from ._tuck import tuck_tips
from ._ears import cover_ears, ear_boxes
from ._growth import HeadSDF, ScalpSamples, grow_strands, head_sdf_grid, scalp_roots, sdf_lookup
from ..export import (
    read_cem_hair,
    read_hair_data,
    strands_to_gltf_lines,
    write_cem_hair,
    write_hair_data,
    write_usd_curves,
)
from ._match import StyleMatch, match_styles, strand_coverage
from ._orient import HairMask, OrientationMap, hair_mask, orientation_image, orientation_map
from ._reading import LENGTHS, HairReading, read_hairstyle, style_agreement
from ._render import HAIR_PREVIEW_VIEWS, hair_preview, render_strands, scalp_tint
from ._ribbons import ribbon_faces, strand_ribbons
from ._styles import HAIR_COLORS, HAIR_STYLES, HairStyle, find_styles, grow_style, hair_color
from ._volume import HairVolume, grow_from_volume, lift_hair, strands_to_volume, style_volume, volume_lookup
from .._illuminant import Illuminant, light_from_eyes
from .._strands import (
    DEFAULT_HAIR_COLOR,
    DEFAULT_HAIR_WIDTH,
    RaggedStrands,
    Strands,
    resample_strands,
    strands_from_list,
)

__all__ = [
    "DEFAULT_HAIR_COLOR", "DEFAULT_HAIR_WIDTH", "RaggedStrands", "Strands", "resample_strands",
    "strands_from_list",
    "read_hair_data", "write_hair_data", "read_cem_hair", "write_cem_hair", "write_usd_curves",
    "strands_to_gltf_lines", "strand_ribbons", "ribbon_faces",
    "ScalpSamples", "scalp_roots", "HeadSDF", "head_sdf_grid", "sdf_lookup", "grow_strands",
    "HairStyle", "HAIR_STYLES", "find_styles", "style_for", "StyleChoice", "length_class", "grow_style", "hair_color", "HAIR_COLORS",
    "HairMask", "hair_mask", "OrientationMap", "orientation_map", "orientation_image",
    "HairVolume", "strands_to_volume", "volume_lookup", "lift_hair", "grow_from_volume", "style_volume",
    "CleanupResult", "cleanup_strands", "cleanup_to_count", "smooth_strands", "resample_uniform", "strand_lengths", "transfer_strands",
    "TipFit", "fit_strand_tips", "clump_strands", "tuck_tips", "cover_ears", "ear_boxes", "body_sdf", "drape_strands",
    "StyleMatch", "match_styles", "strand_coverage", "HairColorEstimate", "estimate_hair_color",
    "render_strands", "hair_preview", "HAIR_PREVIEW_VIEWS", "scalp_tint",
    "HairReading", "read_hairstyle", "style_agreement", "LENGTHS", "light_from_skin", "hair_shading_from_sh", "fit_melanin",
    "strand_colors_from_photo",
    "Illuminant", "light_from_eyes",
    "BeardStyle", "BEARD_STYLES", "BEARD_ZONES", "beard_roots", "beard_style_for", "grow_beard",
]
