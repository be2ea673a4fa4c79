"""Head geometry: triplane (UV position map) encode/decode, Make-A-Character's geometry losses,
the template head, dense landmarks and the jit-compiled geometry fit (paper §2.2–2.3)."""

from ._fit import (
    GeometryFit,
    GeometryFitConfig,
    GeometryFitState,
    GeometryParams,
    GeometryProblem,
    GeometryResult,
    LandmarkTargets,
    fit_landmarks,
    geometry_fit,
    init_camera,
    landmark_weights,
    learning_rate_schedule,
    triplane_from_params,
    zero_params,
)
from ._landmarks import NUM_LANDMARKS, Landmarks, detect_faces, detect_landmarks, mirror_permutation
from ._losses import landmark_loss, landmark_residuals, symmetry_loss, total_variation
from ._template import (
    NUM_TEMPLATE_LANDMARKS,
    Template,
    build_landmark_table,
    default_template,
    face_oval,
    load_template,
    template_albedo,
)
from ._triplane import UVRaster, decode, decode_mesh, encode, encode_mesh, uv_raster

__all__ = [
    "GeometryFit", "GeometryFitConfig", "GeometryFitState", "GeometryParams", "GeometryProblem",
    "GeometryResult", "LandmarkTargets", "fit_landmarks", "geometry_fit", "init_camera",
    "landmark_weights", "learning_rate_schedule", "triplane_from_params", "zero_params",
    "NUM_LANDMARKS", "Landmarks", "detect_faces", "detect_landmarks", "mirror_permutation",
    "landmark_loss", "landmark_residuals", "symmetry_loss", "total_variation",
    "NUM_TEMPLATE_LANDMARKS", "Template", "build_landmark_table", "default_template", "face_oval",
    "load_template", "template_albedo",
    "UVRaster", "decode", "decode_mesh", "encode", "encode_mesh", "uv_raster",
]
