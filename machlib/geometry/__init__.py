"""Head geometry: triplane (UV position map) encode/decode, Make-A-Character's geometry losses,
the template head, dense landmarks and the jit-compiled geometry fit (paper §2.2–2.3), and DreamFace's coarse shape selection: a 14-component
shape space on the template (:func:`apply_shape`) and prompt-driven ranking of candidates
(:func:`select_shape`).

The default template is the parametric human's head (:func:`human_template`, from
:mod:`machlib.human`); its fit has two stages: the camera and the human's shape and expression
(:func:`human_fit`), then Make-A-Character's triplane as a smooth residual (:func:`geometry_fit`).
:func:`self_intersections` and :func:`spikes` check the fitted surface."""

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
from ._landmarks import (
    NUM_LANDMARKS,
    LandmarkDetector,
    Landmarks,
    MediaPipeDetector,
    detect_faces,
    detect_landmarks,
    mirror_permutation,
)
from ._names import LANDMARKS, FaceMeshLandmarks
from ._losses import landmark_loss, landmark_residuals, symmetry_loss, total_variation
from ._template import (
    NUM_TEMPLATE_LANDMARKS,
    Template,
    build_landmark_table,
    default_template,
    face_oval,
    load_template,
    procedural_template,
    template_albedo,
)
from ._human_template import HumanHead, human_albedo, human_template
from ._human_fit import (
    FITTED_EXPRESSIONS,
    FITTED_PHENOTYPE,
    RESIDUAL_SMOOTHING,
    STAGE1_WEIGHTS,
    STAGE2_WEIGHTS,
    HumanFit,
    HumanFitConfig,
    HumanFitParams,
    HumanFitProblem,
    HumanFitState,
    HumanPrior,
    HumanStage,
    expression_basis,
    fit_human,
    human_fit,
    human_problem,
    initial_params,
    residual_config,
)
from ._human_landmarks import build_human_landmark_table, closest_points, landmark_table_error, render_head_for_detection
from ._quality import self_intersections, separate_surfaces, spikes
from ._select import (
    AttributeShapeScorer,
    ShapeCandidate,
    ShapeMatch,
    ShapeScorer,
    candidate_pool,
    describe_human,
    directional_lights,
    human_candidate_pool,
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
    "LandmarkDetector", "MediaPipeDetector", "LANDMARKS", "FaceMeshLandmarks",
    "landmark_loss", "landmark_residuals", "symmetry_loss", "total_variation",
    "NUM_TEMPLATE_LANDMARKS", "Template", "build_landmark_table", "default_template", "face_oval",
    "load_template", "procedural_template", "template_albedo",
    "HumanHead", "human_albedo", "human_template",
    "FITTED_EXPRESSIONS", "FITTED_PHENOTYPE", "RESIDUAL_SMOOTHING", "STAGE1_WEIGHTS", "STAGE2_WEIGHTS",
    "HumanFit", "HumanFitConfig", "HumanFitParams", "HumanFitProblem", "HumanFitState", "HumanPrior", "HumanStage",
    "expression_basis", "fit_human", "human_fit", "human_problem", "initial_params", "residual_config",
    "build_human_landmark_table", "closest_points", "landmark_table_error", "render_head_for_detection",
    "self_intersections", "separate_surfaces", "spikes",
    "SHAPE_BASIS_NAMES", "NUM_SHAPE_PARAMS", "FACE_SHAPE_PRESETS", "shape_params", "shape_basis", "apply_shape",
    "sample_shapes", "face_shape_preset", "classify_face_shape", "describe_shape",
    "ShapeCandidate", "ShapeMatch", "ShapeScorer", "AttributeShapeScorer", "candidate_pool", "select_shape",
    "human_candidate_pool", "describe_human",
    "shape_prompt", "directional_lights", "render_shape",
    "UVRaster", "decode", "decode_mesh", "encode", "encode_mesh", "uv_raster",
]
