"""A small, interpretable shape space on top of the template head (DreamFace §4.1, eq. 1).

DreamFace samples coarse head candidates from a linear shape space, ``T(β) = T̄ + Σ_i β_i S_i``
with ``β ~ N(0, 1)``. Here the components ``S_i`` are not learned from scans (none ship with
machlib): each is a named, smooth analytic deformation field of head-space position (face width,
face length, jaw width, chin length/taper/projection, cheek fullness, cheekbones, forehead width,
nose length/width/projection, mouth width, lip fullness), placed with the template's landmarks and
confined to the face. A front mask fades every field out behind the face, and an ear mask keeps the
ears still, so the back of the skull and the ears barely move. Every field has a small spatial
gradient (``‖∂S_i/∂p‖₂ ≤ 0.22`` per unit of ``β_i``), so ``p ↦ p + Σ_i β_i S_i(p)`` stays injective
(no fold-over or self-intersection) for any single component up to ``|β_i| = 4`` and for all
components at once up to ``|β_i| ≈ 1.4``; the presets and ``N(0, 2²)`` samples keep every
triangle's orientation (tested).

Units are metres in head space (+y up, +z out of the face, see :doc:`/conventions`); one unit of
``β_i`` is "one standard deviation" of the trait, e.g. about 5 % of the face width.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..text import canonical_value
from ._template import Template

__all__ = [
    "SHAPE_BASIS_NAMES",
    "NUM_SHAPE_PARAMS",
    "FACE_SHAPE_PRESETS",
    "shape_params",
    "shape_basis",
    "apply_shape",
    "sample_shapes",
    "face_shape_preset",
    "classify_face_shape",
    "describe_shape",
]

#: Names of the shape components, in parameter order; ``params[i]`` is the amount of trait ``i``
#: in standard deviations (positive = the first word of :data:`_WORDS`, e.g. wider / longer).
SHAPE_BASIS_NAMES: tuple[str, ...] = (
    "face_width",
    "face_length",
    "jaw_width",
    "chin_length",
    "chin_taper",
    "chin_projection",
    "cheek_fullness",
    "cheekbones",
    "forehead_width",
    "nose_length",
    "nose_width",
    "nose_projection",
    "mouth_width",
    "lip_fullness",
)
#: Number of shape parameters (``len(SHAPE_BASIS_NAMES)``).
NUM_SHAPE_PARAMS = len(SHAPE_BASIS_NAMES)
_INDEX = {n: i for i, n in enumerate(SHAPE_BASIS_NAMES)}

# phrases for positive / negative amounts of each trait (used by describe_shape)
_WORDS: dict[str, tuple[str, str]] = {
    "face_width": ("a wide face", "a narrow face"),
    "face_length": ("a long face", "a short face"),
    "jaw_width": ("a wide jaw", "a narrow jaw"),
    "chin_length": ("a long chin", "a short chin"),
    "chin_taper": ("a pointed chin", "a broad chin"),
    "chin_projection": ("a prominent chin", "a receding chin"),
    "cheek_fullness": ("full cheeks", "hollow cheeks"),
    "cheekbones": ("high cheekbones", "flat cheekbones"),
    "forehead_width": ("a wide forehead", "a narrow forehead"),
    "nose_length": ("a long nose", "a short nose"),
    "nose_width": ("a wide nose", "a narrow nose"),
    "nose_projection": ("a prominent nose", "a flat nose"),
    "mouth_width": ("a wide mouth", "a small mouth"),
    "lip_fullness": ("full lips", "thin lips"),
}

# how describe_shape names a face shape (others: the vocabulary value itself)
_SHAPE_WORDS = {"heart": "heart-shaped", "diamond": "diamond-shaped"}

# the components that make the face outline (used to classify the face shape)
_OUTLINE = ("face_width", "face_length", "jaw_width", "chin_length", "chin_taper", "cheek_fullness",
            "cheekbones", "forehead_width")

#: ``face_shape`` vocabulary value (:data:`machlib.text.VOCABULARY`) → named shape parameters.
#: ``oval`` is the mean (all zeros): the template's own proportions.
FACE_SHAPE_PRESETS: dict[str, dict[str, float]] = {
    "oval": {},
    "round": {"face_width": 1.2, "face_length": -1.6, "jaw_width": 0.6, "chin_length": -0.8,
              "chin_taper": -1.0, "cheek_fullness": 1.8},
    "v-shaped": {"face_width": -0.4, "jaw_width": -1.8, "chin_length": 0.8, "chin_taper": 1.8,
                 "cheek_fullness": -0.6, "cheekbones": 0.6},
    "square": {"face_width": 0.6, "face_length": -0.6, "jaw_width": 2.0, "chin_taper": -1.6,
               "chin_length": -0.3, "forehead_width": 0.8},
    "long": {"face_width": -1.0, "face_length": 2.0, "chin_length": 1.0, "cheek_fullness": -0.6,
             "forehead_width": -0.4},
    "heart": {"forehead_width": 1.8, "jaw_width": -1.4, "chin_taper": 1.4, "cheekbones": 0.8,
              "face_width": 0.3},
    "diamond": {"cheekbones": 2.0, "forehead_width": -1.4, "jaw_width": -1.2, "chin_taper": 1.0,
                "face_width": 0.2},
}


class _Anchors(NamedTuple):
    """Landmark-derived positions (metres) that place the deformation fields."""

    eye_y: float  # height of the eye line
    brow_y: float  # height of the brows
    top_y: float  # forehead top (hairline) height
    chin_y: float  # chin bottom height
    chin_z: float  # chin depth
    side_z: float  # depth of the face sides (tragus level): the front mask's centre
    half_width: float  # half face width at the cheeks
    jaw_x: float  # jaw angle
    jaw_y: float
    nose_y: float  # nose tip
    nose_z: float
    bridge_y: float  # nose bridge (between the eyes)
    mouth_x: float  # mouth corner
    mouth_y: float
    mouth_z: float
    ear_x: float  # ear centre (|x|)
    ear_y: float
    ear_z: float


# measured on the default template's landmarks (MediaPipe indices in _anchors_from_landmarks)
_DEFAULT_ANCHORS = _Anchors(
    eye_y=0.0022, brow_y=0.0279, top_y=0.0514, chin_y=-0.1127, chin_z=0.0879, side_z=0.006,
    half_width=0.0739, jaw_x=0.0574, jaw_y=-0.0823, nose_y=-0.0305, nose_z=0.1235, bridge_y=0.0051,
    mouth_x=0.0256, mouth_y=-0.0655, mouth_z=0.0953, ear_x=0.082, ear_y=-0.006, ear_z=-0.014,
)


def _anchors_from_landmarks(lm: np.ndarray) -> _Anchors:
    lm = np.asarray(lm, dtype=np.float64)
    ear_offset = np.array([_DEFAULT_ANCHORS.ear_x - _DEFAULT_ANCHORS.half_width,
                           _DEFAULT_ANCHORS.ear_y + 0.0173, _DEFAULT_ANCHORS.ear_z - 0.006])
    side = 0.5 * (np.abs(lm[234]) + np.abs(lm[454]))
    return _Anchors(
        eye_y=float(0.25 * (lm[33, 1] + lm[263, 1] + lm[133, 1] + lm[362, 1])),
        brow_y=float(0.5 * (lm[105, 1] + lm[334, 1])),
        top_y=float(lm[10, 1]),
        chin_y=float(lm[152, 1]),
        chin_z=float(lm[152, 2]),
        side_z=float(0.5 * (lm[234, 2] + lm[454, 2])),
        half_width=float(side[0]),
        jaw_x=float(0.5 * (abs(lm[172, 0]) + abs(lm[397, 0]))),
        jaw_y=float(0.5 * (lm[172, 1] + lm[397, 1])),
        nose_y=float(lm[4, 1]),
        nose_z=float(lm[4, 2]),
        bridge_y=float(lm[168, 1]),
        mouth_x=float(0.5 * (abs(lm[61, 0]) + abs(lm[291, 0]))),
        mouth_y=float(0.5 * (lm[61, 1] + lm[291, 1])),
        mouth_z=float(0.5 * (lm[61, 2] + lm[291, 2])),
        ear_x=float(side[0] + ear_offset[0]),
        ear_y=float(0.5 * (lm[234, 1] + lm[454, 1]) + ear_offset[1]),
        ear_z=float(0.5 * (lm[234, 2] + lm[454, 2]) + ear_offset[2]),
    )


_TEMPLATE_ANCHORS: dict[int, tuple[Template, _Anchors]] = {}


def _anchors_for(template: Template) -> _Anchors:
    """Anchors of a template: from its landmarks when it has the full MediaPipe table."""
    hit = _TEMPLATE_ANCHORS.get(id(template))
    if hit is not None and hit[0] is template:
        return hit[1]
    if template.name == "procedural" or len(template.landmark_valid) < 478 or not np.all(template.landmark_valid):
        anchors = _DEFAULT_ANCHORS
    else:
        anchors = _anchors_from_landmarks(template.landmark_positions())
    if len(_TEMPLATE_ANCHORS) >= 8:
        _TEMPLATE_ANCHORS.pop(next(iter(_TEMPLATE_ANCHORS)))
    _TEMPLATE_ANCHORS[id(template)] = (template, anchors)
    return anchors


# ---------------------------------------------------------------------------------------------
# Smooth building blocks (C¹ or smoother, elementwise)


def _sstep(e0, e1, x):
    t = jnp.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * t * (t * (6.0 * t - 15.0) + 10.0)  # smootherstep (C²)


def _gauss(d, s):
    return jnp.exp(-0.5 * (d / s) ** 2)


def _fields(p: Float[Array, "N 3"], a: _Anchors) -> Float[Array, "B N 3"]:
    """Displacement of each component (per unit β) at rest positions ``p``."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ax = jnp.abs(x)
    zero = jnp.zeros_like(x)
    face_h = a.eye_y - a.chin_y  # ~0.115
    # front mask: 1 in front of the face sides, 0 behind the ears
    front = _sstep(a.side_z - 0.045, a.side_z + 0.03, z)
    # ear mask: 0 on the ears, 1 elsewhere
    ear = 1.0 - jnp.exp(-0.5 * (((ax - a.ear_x) / 0.016) ** 2 + ((y - a.ear_y) / 0.034) ** 2
                                + ((z - a.ear_z) / 0.026) ** 2))
    fm = front * ear
    # vertical band of the face: chin (and under it) to the brows, fading into the neck and cranium
    band = _sstep(a.chin_y - 0.07, a.chin_y - 0.005, y) * _sstep(a.top_y + 0.06, a.brow_y, y)

    def vec(dx=None, dy=None, dz=None):
        return jnp.stack([zero if dx is None else dx, zero if dy is None else dy, zero if dz is None else dz], -1)

    def blob(cx, cy, cz, sx, sy, sz, mirror=True):
        xx = ax if mirror else x
        return jnp.exp(-0.5 * (((xx - cx) / sx) ** 2 + ((y - cy) / sy) ** 2 + ((z - cz) / sz) ** 2))

    out = []
    # face_width: lateral scale of the face band (≈ 5 % per unit)
    out.append(vec(dx=0.05 * x * fm * band))
    # face_length: the lower face stretches downward from the eye line (chin ≈ 6 mm per unit), the
    # forehead rises a little; the neck follows and fades out
    t = (a.eye_y - y) / face_h  # 0 at the eye line, 1 at the chin
    lower = 0.5 * (t + jnp.sqrt(t * t + 0.04)) - 0.1  # smooth max(t, 0)
    lower = jnp.minimum(lower, 1.0 + 0.5 * (lower - 1.0))  # gentler below the chin
    neck_fade = _sstep(a.chin_y - 0.09, a.chin_y - 0.01, y)
    upper = _gauss(y - a.top_y, 0.035) * _sstep(a.eye_y - 0.01, a.brow_y + 0.01, y)
    out.append(vec(dy=(-0.006 * lower * neck_fade + 0.0025 * upper) * fm))
    # jaw_width: lateral push of the jaw angle region (≈ 4 mm per unit at the angle)
    jaw = _gauss(y - (a.jaw_y - 0.004), 0.022) * _sstep(0.006, 0.035, ax) * _sstep(a.chin_y - 0.06, a.chin_y, y)
    out.append(vec(dx=0.07 * x * jaw * fm))
    # chin_length: the chin moves down (≈ 4 mm per unit)
    chin = blob(0.0, a.chin_y + 0.004, a.chin_z - 0.01, 0.03, 0.022, 0.03, mirror=False)
    out.append(vec(dy=-0.004 * chin * fm))
    # chin_taper: the lower jaw line narrows towards the chin, the chin sharpens and drops a little
    taper = _gauss(y - (a.chin_y + 0.02), 0.022) * _gauss(ax - 0.025, 0.025)
    out.append(vec(dx=-0.09 * x * taper * fm, dy=-0.0015 * chin * fm))
    # chin_projection: the chin moves forward (≈ 3.5 mm per unit)
    out.append(vec(dz=0.0035 * blob(0.0, a.chin_y + 0.008, a.chin_z, 0.028, 0.02, 0.03, mirror=False) * fm))
    # cheek_fullness: the cheeks push outward, away from the face's vertical axis (≈ 3.5 mm)
    axis_z = a.side_z - 0.02
    rx, rz = x, z - axis_z
    rn = jnp.sqrt(rx * rx + rz * rz + 1e-6)
    cheek = blob(0.045, a.mouth_y + 0.02, a.mouth_z - 0.03, 0.022, 0.025, 0.03)
    out.append(vec(dx=0.0035 * cheek * rx / rn * fm, dz=0.0035 * cheek * rz / rn * fm))
    # cheekbones: the zygomatic area pushes outward and up (≈ 4 mm)
    bone = blob(a.half_width - 0.02, a.eye_y - 0.018, a.side_z + 0.05, 0.02, 0.016, 0.03)
    out.append(vec(dx=0.0042 * bone * rx / rn * fm, dy=0.001 * bone * fm, dz=0.0025 * bone * rz / rn * fm))
    # forehead_width: lateral scale of the temples and forehead (≈ 5 % per unit), fading at the crown
    brow_band = _sstep(a.eye_y - 0.02, a.brow_y + 0.005, y) * _sstep(a.top_y + 0.075, a.top_y, y)
    out.append(vec(dx=0.05 * x * brow_band * fm))
    # nose_length: the tip and the columella move down (≈ 3 mm)
    tip = blob(0.0, a.nose_y - 0.006, a.nose_z - 0.01, 0.016, 0.014, 0.025, mirror=False)
    out.append(vec(dy=-0.003 * tip, dz=0.0008 * tip))
    # nose_width: lateral scale of the alae (≈ 15 % per unit)
    alae = blob(0.0, a.nose_y - 0.006, a.nose_z - 0.02, 0.02, 0.012, 0.02, mirror=False)
    out.append(vec(dx=0.15 * x * alae))
    # nose_projection: the bridge and tip move forward (≈ 3 mm at the tip)
    bridge = _gauss(x, 0.012) * _sstep(a.bridge_y + 0.012, a.bridge_y - 0.01, y) * _gauss(y - a.nose_y, 0.03)
    bridge = bridge * _sstep(a.nose_z - 0.05, a.nose_z - 0.025, z)
    out.append(vec(dz=0.003 * bridge))
    # mouth_width: lateral scale of the mouth (≈ 10 % per unit)
    mouth = blob(0.0, a.mouth_y, a.mouth_z, 0.03, 0.013, 0.02, mirror=False)
    out.append(vec(dx=0.1 * x * mouth))
    # lip_fullness: the lips push forward and away from the mouth line (≈ 1.5 mm)
    lips = blob(0.0, a.mouth_y, a.mouth_z + 0.004, 0.022, 0.01, 0.012, mirror=False)
    out.append(vec(dy=0.12 * (y - a.mouth_y) * lips, dz=0.0015 * lips))
    return jnp.stack(out, 0)


@functools.partial(jax.jit, static_argnums=1)
def _basis_jit(vertices, anchors):
    return _fields(vertices, anchors)


def _resolve(template_or_vertices, owner: str):
    if isinstance(template_or_vertices, Template):
        verts = jnp.asarray(np.asarray(template_or_vertices.mesh.vertices))
        return verts, _anchors_for(template_or_vertices)
    verts = jnp.asarray(template_or_vertices)
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise ValueError(f"{owner}: vertices must have shape (V, 3), got {verts.shape}")
    if not jnp.issubdtype(verts.dtype, jnp.floating):
        verts = verts.astype(jnp.result_type(float))
    return verts, _DEFAULT_ANCHORS


def shape_basis(template_or_vertices: Union[Template, Float[ArrayLike, "V 3"]]) -> Float[Array, "B V 3"]:
    """The shape components ``S_i`` of DreamFace eq. 1 evaluated on a head: ``(B, V, 3)`` metres.

    ``B = NUM_SHAPE_PARAMS``; component ``i`` is the displacement of every vertex for ``β_i = 1``,
    in the order of :data:`SHAPE_BASIS_NAMES`. For a :class:`Template` the fields are placed with
    its landmarks; a bare ``(V, 3)`` array is taken to be in the default template's head space.
    Differentiable with respect to the vertices.

    Args:
        template_or_vertices: a :class:`Template`, or ``(V, 3)`` rest positions in metres.

    Returns:
        ``(B, V, 3)`` displacements, same float dtype as the vertices.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.geometry import shape_basis, NUM_SHAPE_PARAMS
        >>> s = shape_basis(jnp.array([[0.07, -0.05, 0.05], [0.0, 0.05, -0.1]]))
        >>> s.shape == (NUM_SHAPE_PARAMS, 2, 3), round(float(s[0, 0, 0]), 4), float(abs(s[:, 1]).max()) < 1e-5
        (True, 0.0034, True)
    """
    verts, anchors = _resolve(template_or_vertices, "shape_basis")
    return _basis_jit(verts, anchors)


def _check_params(owner: str, params) -> jax.Array:
    params = jnp.asarray(params)
    if params.shape[-1:] != (NUM_SHAPE_PARAMS,):
        raise ValueError(f"{owner}: params must have shape (..., {NUM_SHAPE_PARAMS}) (one per SHAPE_BASIS_NAMES), "
                         f"got {params.shape}")
    return params


def apply_shape(
    template_or_vertices: Union[Template, Float[ArrayLike, "V 3"]],
    params: Float[ArrayLike, "B"],
) -> Float[Array, "V 3"]:
    """Deform a head by shape parameters: ``T(β) = T̄ + Σ_i β_i S_i`` (DreamFace eq. 1).

    Pure and linear in ``params``; works under ``jit``, batches with ``jax.vmap`` over ``params``
    (the basis is computed once), and is differentiable with respect to both arguments.

    Args:
        template_or_vertices: a :class:`Template` (its mesh's vertices, fields placed with its
            landmarks) or ``(V, 3)`` rest positions in the default template's head space (metres).
        params: ``(B,)`` amounts in standard deviations, ordered as :data:`SHAPE_BASIS_NAMES`
            (build one with :func:`shape_params`).

    Returns:
        ``(V, 3)`` deformed positions in metres.

    Raises:
        ValueError: params of the wrong length, vertices not ``(V, 3)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.geometry import apply_shape, shape_params
        >>> v = jnp.array([[0.07, -0.05, 0.05], [0.0, 0.05, -0.1]])
        >>> out = apply_shape(v, shape_params(face_width=2.0))
        >>> round(float(out[0, 0] - v[0, 0]), 4), float(abs(out[1] - v[1]).max()) < 1e-5
        (0.0069, True)
    """
    verts, anchors = _resolve(template_or_vertices, "apply_shape")
    params = _check_params("apply_shape", params)
    if params.ndim != 1:
        raise ValueError(f"apply_shape: params must have shape ({NUM_SHAPE_PARAMS},); vmap for batches, "
                         f"got {params.shape}")
    return _apply_jit(verts, params, anchors)


@functools.partial(jax.jit, static_argnums=2)
def _apply_jit(verts, params, anchors):
    basis = _fields(verts, anchors)
    return verts + jnp.einsum("b,bvc->vc", params.astype(basis.dtype), basis)


def shape_params(**amounts: float) -> Float[Array, "B"]:
    """A parameter vector from named amounts; unnamed components are 0 (the mean).

    Args:
        **amounts: ``name=value`` for names in :data:`SHAPE_BASIS_NAMES`, in standard deviations.

    Returns:
        ``(B,)`` float32 parameters.

    Raises:
        ValueError: an unknown component name.

    Example:
        >>> from machlib.geometry import shape_params, SHAPE_BASIS_NAMES
        >>> p = shape_params(jaw_width=1.5)
        >>> float(p[SHAPE_BASIS_NAMES.index("jaw_width")]), float(abs(p).sum())
        (1.5, 1.5)
    """
    unknown = [k for k in amounts if k not in _INDEX]
    if unknown:
        raise ValueError(f"shape_params: unknown component(s) {unknown}; known: {list(SHAPE_BASIS_NAMES)}")
    out = np.zeros(NUM_SHAPE_PARAMS, np.float32)
    for k, v in amounts.items():
        out[_INDEX[k]] = float(v)
    return jnp.asarray(out)


def sample_shapes(key: jax.Array, n: int, *, scale: float = 1.0) -> Float[Array, "n B"]:
    """Sample ``n`` shape parameter vectors ``β ~ N(0, scale² I)`` (DreamFace samples N(0, 1)).

    Args:
        key: a JAX PRNG key.
        n: number of samples.
        scale: standard deviation of every component.

    Returns:
        ``(n, B)`` float32 parameters; the same key gives the same samples.

    Raises:
        ValueError: ``n`` < 0 or a negative ``scale``.

    Example:
        >>> import jax
        >>> from machlib.geometry import sample_shapes, NUM_SHAPE_PARAMS
        >>> b = sample_shapes(jax.random.key(0), 4)
        >>> b.shape == (4, NUM_SHAPE_PARAMS), bool((b == sample_shapes(jax.random.key(0), 4)).all())
        (True, True)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"sample_shapes: n must be an int >= 0, got {n!r}")
    if not scale >= 0:
        raise ValueError(f"sample_shapes: scale must be >= 0, got {scale!r}")
    return float(scale) * jax.random.normal(key, (int(n), NUM_SHAPE_PARAMS), dtype=jnp.float32)


def _canonical_face_shape(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    if key in FACE_SHAPE_PRESETS:
        return key

    value = canonical_value("face_shape", key)
    if value is None or value not in FACE_SHAPE_PRESETS:
        raise ValueError(f"face_shape_preset: unknown face shape {name!r}; known: {list(FACE_SHAPE_PRESETS)}")
    return value


def face_shape_preset(name: str) -> Float[Array, "B"]:
    """The shape parameters of a ``face_shape`` vocabulary value (``oval`` is the mean).

    Args:
        name: a value of :data:`machlib.text.VOCABULARY` ``["face_shape"]`` (``oval``, ``round``,
            ``v-shaped``, ``square``, ``long``, ``heart``, ``diamond``) or one of its synonyms.

    Returns:
        ``(B,)`` float32 parameters (see :data:`FACE_SHAPE_PRESETS`).

    Raises:
        ValueError: an unknown face shape.

    Example:
        >>> from machlib.geometry import face_shape_preset, SHAPE_BASIS_NAMES
        >>> float(face_shape_preset("long")[SHAPE_BASIS_NAMES.index("face_length")])
        2.0
        >>> float(abs(face_shape_preset("oval")).max())
        0.0
    """
    return shape_params(**FACE_SHAPE_PRESETS[_canonical_face_shape(name)])


def _outline(params: np.ndarray) -> np.ndarray:
    return np.asarray(params, np.float64)[..., [_INDEX[n] for n in _OUTLINE]]


def _preset_projections(params) -> dict[str, float]:
    """Length of the outline components' projection on every preset's direction (in σ)."""
    q = _outline(np.asarray(params))
    out = {}
    for name in FACE_SHAPE_PRESETS:
        d = _outline(np.asarray(face_shape_preset(name)))
        n = float(np.linalg.norm(d))
        out[name] = float(q @ d / n) if n > 0 else 0.0
    return out


def classify_face_shape(params: Float[ArrayLike, "B"], *, threshold: float = 1.0) -> str:
    """The ``face_shape`` value that best describes ``params``' face outline.

    The outline components (face width and length, jaw, chin, cheeks, cheekbones, forehead) are
    projected on the direction of every preset of :data:`FACE_SHAPE_PRESETS`; the preset with
    the longest projection wins if it reaches ``threshold`` standard deviations, else ``oval``
    (the mean).

    Args:
        params: ``(B,)`` shape parameters.
        threshold: minimum projection, in standard deviations, for a shape other than oval.

    Returns:
        A key of :data:`FACE_SHAPE_PRESETS` (a ``face_shape`` vocabulary value).

    Example:
        >>> from machlib.geometry import classify_face_shape, face_shape_preset, shape_params
        >>> classify_face_shape(face_shape_preset("heart")), classify_face_shape(shape_params(face_length=2.5))
        ('heart', 'long')
        >>> classify_face_shape(shape_params(face_length=0.5))
        'oval'
    """
    params = _check_params("classify_face_shape", params)
    proj = _preset_projections(params)
    best = max(proj, key=lambda k: (proj[k], -list(FACE_SHAPE_PRESETS).index(k)))
    return best if proj[best] >= threshold else "oval"


def describe_shape(params: Float[ArrayLike, "B"], *, max_traits: int = 3, threshold: float = 0.75) -> str:
    """A short text description of a shape, e.g. ``"a round face with full cheeks and a wide jaw"``.

    The face shape is :func:`classify_face_shape`; the traits are the components of largest
    ``|β|`` above ``threshold`` (strongest first), each named by its positive or negative phrase
    (a phrase equal to the face shape's, e.g. "a long face" for a long face, is not repeated).
    Used by text-based shape selection (:class:`~machlib.geometry.AttributeShapeScorer`).

    Args:
        params: ``(B,)`` shape parameters.
        max_traits: at most this many traits are named.
        threshold: minimum ``|β_i|`` for a trait to be named.

    Returns:
        The description (lower case, no final full stop).

    Example:
        >>> from machlib.geometry import describe_shape, shape_params
        >>> describe_shape(shape_params(face_width=1.5, cheek_fullness=2.0, face_length=-1.5))
        'a round face with full cheeks, a wide face and a short face'
        >>> describe_shape(shape_params())
        'an oval face with average proportions'
    """
    p = np.asarray(_check_params("describe_shape", params), np.float64)
    if p.ndim != 1:
        raise ValueError(f"describe_shape: params must have shape ({NUM_SHAPE_PARAMS},), got {p.shape}")
    shape = _SHAPE_WORDS.get(classify_face_shape(p), classify_face_shape(p))
    head = f"{'an' if shape[0] in 'aeiou' else 'a'} {shape} face"
    order = sorted(range(NUM_SHAPE_PARAMS), key=lambda i: (-abs(p[i]), i))
    traits = [_WORDS[SHAPE_BASIS_NAMES[i]][0 if p[i] > 0 else 1] for i in order if abs(p[i]) >= threshold]
    traits = [t for t in traits if t != head][:max(int(max_traits), 0)]
    if not traits:
        return head + " with average proportions"
    if len(traits) == 1:
        return f"{head} with {traits[0]}"
    return f"{head} with {', '.join(traits[:-1])} and {traits[-1]}"
