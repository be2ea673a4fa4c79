"""Texture: multi-resolution extraction, delighting, correction and completion (paper §2.4)."""

from ._skin import ITA_CATEGORIES, ita_of, lab_to_srgb, shift_to_ita, skin_color, srgb_to_lab

__all__ = [
    "ITA_CATEGORIES", "ita_of", "lab_to_srgb", "shift_to_ita", "skin_color", "srgb_to_lab",
]
from ._fit import (
    TextureFit,
    TextureFitConfig,
    TextureFitState,
    TextureProblem,
    TextureResult,
    fit_texture,
    texel_visibility,
    texture_fit,
    texture_problem,
    texture_tv,
    upsample_texture,
)

__all__ += [
    "TextureFit", "TextureFitConfig", "TextureFitState", "TextureProblem", "TextureResult", "fit_texture",
    "texel_visibility", "texture_fit", "texture_problem", "texture_tv", "upsample_texture",
]
from ._marks import recolor_brows, skin_marks

__all__ += ["skin_marks", "recolor_brows"]
from ._delight import SHDelight, Sheen, delight_sh, estimate_lighting, normal_map, sheen_layer

__all__ += ["SHDelight", "delight_sh", "estimate_lighting", "normal_map", "Sheen", "sheen_layer"]
from ._delight_data import (
    BATCH_RANGES,
    ITA_BINS,
    LIGHTING_KINDS,
    LIGHTING_RANGES,
    DelightBatch,
    DelightScene,
    albedo_variations,
    ambient_occlusion,
    bake_lighting,
    bake_visibility,
    color_temperature_rgb,
    delight_scene,
    delighting_batch,
    delighting_pairs,
    light_directions,
    sample_lighting,
    sh_disc,
    sky_lighting,
)

__all__ += [
    "LIGHTING_KINDS", "LIGHTING_RANGES", "albedo_variations", "bake_lighting", "color_temperature_rgb",
    "delighting_pairs", "sample_lighting", "sh_disc", "sky_lighting",
    "BATCH_RANGES", "ITA_BINS", "DelightBatch", "DelightScene", "ambient_occlusion", "bake_visibility",
    "delight_scene", "delighting_batch", "light_directions",
]
from ._flax_delight import (
    BUNDLED_FLAX_DELIGHTER,
    FlaxDelight,
    FlaxDelighter,
    FlaxDelighterConfig,
    delight_flax,
    flax_delighter_apply,
    flax_delighter_inputs,
    init_flax_delighter,
    load_flax_delighter,
    save_flax_delighter,
)

__all__ += [
    "BUNDLED_FLAX_DELIGHTER", "FlaxDelight", "FlaxDelighter", "FlaxDelighterConfig", "delight_flax",
    "flax_delighter_apply", "flax_delighter_inputs", "init_flax_delighter", "load_flax_delighter",
    "save_flax_delighter",
]
from ._metrics import psnr, ssim
from ._glasses import GlassesDetection, detect_glasses

__all__ += ["GlassesDetection", "detect_glasses"]

__all__ += ["psnr", "ssim"]
from ._complete import TextureCompletion, color_transfer, complete_texture, skin_albedo
from ._confidence import (
    eye_confidence,
    eye_openness,
    lip_confidence,
    lip_misfit,
    mirror_fill,
    skin_confidence,
    skin_low_pass,
    texel_confidence,
)
from ._transfer import detail_patches, skin_detail, synthesize_detail, transfer_skin
from ._makeup import blend_layer, makeup
from ._poisson import poisson_blend, poisson_residual
from ._regions import dilate_mask, erode_mask, feather_mask, polygon_sdf, region_masks

__all__ += [
    "TextureCompletion", "color_transfer", "complete_texture", "skin_albedo", "blend_layer", "makeup",
    "poisson_blend", "poisson_residual", "dilate_mask", "erode_mask", "feather_mask", "polygon_sdf",
    "region_masks", "texel_confidence", "skin_confidence", "lip_misfit", "mirror_fill", "skin_low_pass", "eye_openness", "eye_confidence", "lip_confidence",
    "skin_detail",
    "synthesize_detail", "detail_patches", "transfer_skin",
]
from ._pbr import (
    FOREHEAD_LANDMARKS,
    NOSE_LANDMARKS,
    PBR_REGION_VALUES,
    TexelFrame,
    detail_normal_map,
    ggx_specular,
    mesh_tangents,
    region_pbr_maps,
    sheen_specular_map,
    super_resolve_albedo,
    surface_height,
    texel_frame,
)

__all__ += [
    "FOREHEAD_LANDMARKS", "NOSE_LANDMARKS", "PBR_REGION_VALUES", "TexelFrame", "detail_normal_map", "ggx_specular",
    "mesh_tangents", "region_pbr_maps", "sheen_specular_map", "super_resolve_albedo", "surface_height", "texel_frame",
]
