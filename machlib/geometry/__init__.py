"""Head geometry: triplane (UV position map) encode/decode, Make-A-Character's geometry losses,
the template head, dense landmarks and the jit-compiled geometry fit (paper §2.2–2.3), and DreamFace's coarse shape selection: a 14-component
shape space on the template (:func:`apply_shape`) and prompt-driven ranking of candidates
(:func:`select_shape`)."""

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
from ._select import (
    AttributeShapeScorer,
    ShapeCandidate,
    ShapeMatch,
    ShapeScorer,
    candidate_pool,
    directional_lights,
    render_shape,
    select_shape,
    shape_prompt,
)
from ._triplane import UVRaster, decode, decode_mesh, encode, encode_mesh, uv_raster
from ._variations import (
    FACE_SHAPE_PRESETS,
    NUM_SHAPE_PARAMS,
    SHAPE_BASIS_NAMES,
    apply_shape,
    classify_face_shape,
    describe_shape,
    face_shape_preset,
    sample_shapes,
    shape_basis,
    shape_params,
)

__all__ = [
    "GeometryFit", "GeometryFitConfig", "GeometryFitState", "GeometryParams", "GeometryProblem",
    "GeometryResult", "LandmarkTargets", "fit_landmarks", "geometry_fit", "init_camera",
    "landmark_weights", "learning_rate_schedule", "triplane_from_params", "zero_params",
    "NUM_LANDMARKS", "Landmarks", "detect_faces", "detect_landmarks", "mirror_permutation",
    "landmark_loss", "landmark_residuals", "symmetry_loss", "total_variation",
    "NUM_TEMPLATE_LANDMARKS", "Template", "build_landmark_table", "default_template", "face_oval",
    "load_template", "template_albedo",
    "SHAPE_BASIS_NAMES", "NUM_SHAPE_PARAMS", "FACE_SHAPE_PRESETS", "shape_params", "shape_basis", "apply_shape",
    "sample_shapes", "face_shape_preset", "classify_face_shape", "describe_shape",
    "ShapeCandidate", "ShapeMatch", "ShapeScorer", "AttributeShapeScorer", "candidate_pool", "select_shape",
    "shape_prompt", "directional_lights", "render_shape",
    "UVRaster", "decode", "decode_mesh", "encode", "encode_mesh", "uv_raster",
]
