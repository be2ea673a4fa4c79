"""The human's skeleton: MakeHuman's default rig placed on a shape, posed and skinned in pure JAX.

MakeHuman's default skeleton (163 bones, :class:`~machlib.human.Rig`) places every bone head and
tail at the mean of some mesh vertices, so any shape of the human gets a matching skeleton:
:func:`skeleton` builds it (optionally for a subset of the bones, e.g. :data:`BUST_JOINTS`),
:func:`skin_weights` gives the four strongest influences per vertex among the skeleton's joints,
:func:`forward_kinematics` poses it from per-joint rotation vectors and
:func:`linear_blend_skinning` moves the vertices. :func:`gltf_joints` turns a skeleton into glTF
nodes (local translation and rotation per joint) and inverse bind matrices.

**Bone frames.** A joint's rest transform has its translation at the bone head and its rotation
columns equal to the bone's local X, Y, Z axes in head space (:doc:`/conventions`): Y points
from head to tail and X, Z follow Blender's rule for a bone with a *roll* (``bone_mat`` of
Blender's ``vec_roll_to_mat3_normalized``: the shortest rotation taking +Y to the bone direction,
then a right-handed rotation by ``roll`` about the bone). The rig's rolls are Blender's, defined
in Blender's z-up frame, so the rule is applied there and converted:

.. code-block:: text

   R = C · blender_bone_mat(Cᵀ d, roll),   C = [[1, 0, 0], [0, 0, 1], [0, −1, 0]]

with ``d`` the unit head→tail direction in head space and ``C`` Blender's axes → machlib's
(Blender ``(x, y, z)`` = machlib ``(x, −z, y)``). So a rotation vector ``(θ, 0, 0)`` on a joint
is the same pose-bone rotation as in Blender (or MPFB) and bends about the bone's X axis; for the
neck, head and jaw (roll 0) X is the subject's left (+x), and ``+θ`` turns +y toward +z: the head
nods down (chin toward the chest) and the jaw opens.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Integer

from .._camera import rotation_matrix
from .._errors import InputError
from ._data import Rig

__all__ = [
    "BUST_JOINTS",
    "Skeleton",
    "skeleton",
    "skin_weights",
    "forward_kinematics",
    "linear_blend_skinning",
    "GltfJoints",
    "gltf_joints",
]

#: The bones an upper-body bust animates: the spine chain from the root to the head, the jaw and
#: the eyes (MakeHuman's default-rig names, parents before children).
BUST_JOINTS = ("root", "spine05", "spine04", "spine03", "spine02", "spine01", "neck01", "neck02", "neck03",
               "head", "jaw", "eye.L", "eye.R")

#: machlib (head-space) coordinates of Blender's axes: ``p_machlib = _BLENDER_TO_HEAD @ p_blender``.
_BLENDER_TO_HEAD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

_HIGHEST = jax.lax.Precision.HIGHEST


class Skeleton(eqx.Module):
    """A posable skeleton in its rest pose (a pytree; names and parents are static).

    Build it with :func:`skeleton`. The joints are ordered parents before children.

    Attributes:
        names: ``(J,)`` joint (bone) names.
        parents: ``(J,)`` parent index of each joint, ``-1`` for a root; ``parents[j] < j``.
        rest: ``(J, 4, 4)`` rest-pose world transforms in head space (metres): rotation columns
            are the bone's X, Y, Z axes (Y from head to tail, X/Z from the roll, see the module
            docstring), translation is the bone head. Row-major, ``rest[j] @ [x, y, z, 1]`` maps
            joint-local coordinates to head space.
        lengths: ``(J,)`` bone lengths (head to tail) in metres.
    """

    rest: Float[Array, "J 4 4"]
    lengths: Float[Array, "J"]
    names: tuple = eqx.field(static=True)
    parents: tuple = eqx.field(static=True)

    def __check_init__(self):
        J = len(self.names)
        if len(self.parents) != J or len(set(self.names)) != J:
            raise InputError(f"Skeleton: {J} names (unique) and {len(self.parents)} parents must match")
        if any(not -1 <= p < j for j, p in enumerate(self.parents)):
            raise InputError("Skeleton: parents must come before their children (parents[j] < j, -1 for a root)")
        if self.rest.shape[-3:] != (J, 4, 4) or self.lengths.shape[-1:] != (J,):
            raise InputError(f"Skeleton: rest {self.rest.shape} and lengths {self.lengths.shape} do not fit {J} joints")

    @property
    def num_joints(self) -> int:
        """Number of joints ``J``."""
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of the joint called ``name`` (raises :class:`~machlib.InputError` if absent)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise InputError(f"Skeleton.index: no joint {name!r} (joints: {', '.join(self.names[:8])}, ...)") from None

    @property
    def heads(self) -> Float[Array, "*batch J 3"]:
        """``(J, 3)`` bone heads (the joints' positions) in head space, metres."""
        return self.rest[..., :3, 3]

    @property
    def tails(self) -> Float[Array, "*batch J 3"]:
        """``(J, 3)`` bone tails: each head plus its length along the bone's Y axis."""
        return self.rest[..., :3, 3] + self.rest[..., :3, 1] * self.lengths[..., None]

    @property
    def inverse_bind(self) -> Float[Array, "*batch J 4 4"]:
        """``(J, 4, 4)`` inverse rest transforms (rigid inverses of :attr:`rest`), the inverse bind
        matrices of :func:`linear_blend_skinning` and of a glTF skin."""
        return _rigid_inverse(self.rest)


# ------------------------------------------------------------------------------ helpers


def _rigid_inverse(T: Array) -> Array:
    """Inverse of rigid ``(..., 4, 4)`` transforms: ``[Rᵀ, −Rᵀ t]``."""
    R = T[..., :3, :3]
    t = T[..., :3, 3]
    Rt = jnp.swapaxes(R, -1, -2)
    ti = -jnp.einsum("...ij,...j->...i", Rt, t, precision=_HIGHEST)
    top = jnp.concatenate([Rt, ti[..., None]], -1)
    bottom = jnp.broadcast_to(jnp.asarray([0.0, 0.0, 0.0, 1.0], T.dtype), top.shape[:-2] + (1, 4))
    return jnp.concatenate([top, bottom], -2)


def _transform(R: Array, t: Array) -> Array:
    """``(..., 4, 4)`` from rotations ``(..., 3, 3)`` and translations ``(..., 3)``."""
    top = jnp.concatenate([R, t[..., None]], -1)
    bottom = jnp.broadcast_to(jnp.asarray([0.0, 0.0, 0.0, 1.0], R.dtype), top.shape[:-2] + (1, 4))
    return jnp.concatenate([top, bottom], -2)


def _blender_bone_matrix(nor: Array, roll: Array) -> Array:
    """Blender's ``vec_roll_to_mat3_normalized`` in Blender's axes.

    ``nor``: ``(3,)`` unit bone direction; ``roll``: radians. Returns the ``(3, 3)`` matrix whose
    columns are the bone's X, Y (= ``nor``), Z axes: the shortest rotation taking +Y to ``nor``,
    then a right-handed rotation by ``roll`` about ``nor``. One departure from Blender: where
    ``nor`` points downward (``y < 0``) the divisor ``θ = 1 + y`` is computed as the equal
    ``(x² + z²) / (1 − y)``, which has no cancellation (Blender uses ``1 + y`` and, within 6.1e-3
    of −Y, a series that leaves the matrix orthonormal only to ~1e-5); exactly at −Y (``x² + z²``
    below ``(2.5e-4)²``) the frame is Blender's ``diag(−1, −1, 1)``. Double ``where`` keeps values
    and gradients finite on every branch.
    """
    x, y, z = nor[0], nor[1], nor[2]
    safe, critical2 = 6.1e-3, 2.5e-4 ** 2
    theta_alt = x * x + z * z
    regular = (1.0 + y > safe) | (theta_alt > critical2)
    down = y < 0.0
    theta = jnp.where(down, theta_alt / jnp.where(down, 1.0 - y, 1.0), 1.0 + y)
    theta = jnp.where(regular, theta, 1.0)
    B = jnp.stack([
        jnp.stack([1.0 - x * x / theta, x, -x * z / theta]),
        jnp.stack([-x, y, -z]),
        jnp.stack([-x * z / theta, z, 1.0 - z * z / theta]),
    ])
    B = jnp.where(regular, B, jnp.diag(jnp.asarray([-1.0, -1.0, 1.0], nor.dtype)))
    return jnp.matmul(rotation_matrix(nor * roll), B, precision=_HIGHEST)


def _bone_frame(head: Array, tail: Array, roll: Array) -> tuple[Array, Array]:
    """Head-space ``(3, 3)`` bone axes and length of one bone (see the module docstring)."""
    d = tail - head
    n2 = jnp.sum(d * d)
    tiny = jnp.finfo(d.dtype).tiny ** 0.5
    degenerate = n2 <= tiny
    length = jnp.sqrt(jnp.where(degenerate, 1.0, n2))
    up = jnp.asarray([0.0, 1.0, 0.0], d.dtype)
    unit = jnp.where(degenerate, up, d / length)
    C = jnp.asarray(_BLENDER_TO_HEAD, d.dtype)
    # Blender's matrix has the bone's axes as columns, in Blender's frame; C converts each column
    R = jnp.matmul(C, _blender_bone_matrix(C.T @ unit, roll), precision=_HIGHEST)
    return R, jnp.where(degenerate, 0.0, length)


def _selection(rig: Rig, joints, fn: str) -> np.ndarray:
    """Sorted rig indices of the kept bones."""
    if joints is None:
        return np.arange(len(rig.names))
    if isinstance(joints, str):
        raise InputError(f"{fn}: joints must be a sequence of bone names, not the string {joints!r}")
    index = {n: i for i, n in enumerate(rig.names)}
    missing = [n for n in joints if n not in index]
    if missing:
        raise InputError(f"{fn}: unknown bones {missing[:5]} (the rig has {len(rig.names)} bones, e.g. "
                         f"{', '.join(rig.names[:4])})")
    keep = np.unique(np.asarray([index[n] for n in joints], np.int64))
    if not len(keep):
        raise InputError(f"{fn}: joints is empty")
    return keep


def _kept_ancestor(rig: Rig, keep: np.ndarray) -> np.ndarray:
    """``(J_rig,)`` for every rig bone, its index in ``keep`` if kept, else that of its nearest kept
    ancestor, else ``-1``."""
    where = np.full(len(rig.names), -1, np.int64)
    where[keep] = np.arange(len(keep))
    out = np.full(len(rig.names), -1, np.int64)
    for j in range(len(rig.names)):  # parents come first
        p = int(rig.parent[j])
        out[j] = where[j] if where[j] >= 0 else (out[p] if p >= 0 else -1)
    return out


def _rows(matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, col, weight)`` of ``matrix[rows]`` for a scipy CSR ``matrix``."""
    sub = matrix[rows].tocoo()
    return sub.row.astype(np.int32), sub.col.astype(np.int32), sub.data


@jax.jit
def _place(vertices: Array, head: tuple, tail: tuple, roll: Array) -> tuple[Array, Array]:
    """Rest transforms ``(J, 4, 4)`` and lengths ``(J,)`` of bones whose heads and tails are the
    vertex combinations ``head``/``tail`` (``(row, col, weight)`` triples)."""
    J = roll.shape[0]

    def combine(row, col, w):
        return jax.ops.segment_sum(w.astype(vertices.dtype)[:, None] * vertices[col], row, num_segments=J)

    heads, tails = combine(*head), combine(*tail)
    R, lengths = jax.vmap(_bone_frame)(heads, tails, roll)
    return _transform(R, heads), lengths


def _levels(parents: tuple) -> list[np.ndarray]:
    """Joint indices grouped by depth in the hierarchy (roots first)."""
    depth = np.zeros(len(parents), np.int64)
    for j, p in enumerate(parents):
        depth[j] = 0 if p < 0 else depth[p] + 1
    return [np.flatnonzero(depth == d) for d in range(int(depth.max(initial=-1)) + 1)]


# ------------------------------------------------------------------------------ public


def skeleton(rig: Rig, vertices: Float[ArrayLike, "N 3"], *, joints: Sequence[str] | None = None) -> Skeleton:
    """Place the rig's bones on a shape of the human (pure JAX in ``vertices``; jit/vmap/grad).

    Each bone head and tail is the rig's fixed combination of mesh vertices
    (``rig.head_matrix @ vertices``, ``rig.tail_matrix @ vertices``); the rest rotation is the
    bone frame of the module docstring (Y along the bone, X/Z from Blender's roll, converted to
    head space).

    Args:
        rig: the :class:`~machlib.human.Rig` (``load_human_data().rig``).
        vertices: ``(N, 3)`` positions of all ``N`` hm08 vertices in metres, e.g.
            ``human_points(build_model("body"), params)`` (head space) or the base mesh.
        joints: optional bone names to keep (any order; duplicates ignored). The skeleton keeps
            the rig's order (parents before children) and re-parents each kept bone to its
            nearest kept ancestor; a kept bone without one becomes a root. ``None`` keeps all.

    Returns:
        The :class:`Skeleton`, in the frame and dtype of ``vertices``.

    Raises:
        InputError: ``vertices`` is not ``(N, 3)`` for the rig's ``N``.
        InputError: an unknown bone name, or an empty ``joints``.

    Example:
        >>> from machlib.human import load_human_data
        >>> from machlib.human._rig import BUST_JOINTS, skeleton
        >>> data = load_human_data()
        >>> sk = skeleton(data.rig, data.vertices, joints=BUST_JOINTS)
        >>> sk.rest.shape, sk.names[sk.parents[sk.index("eye.L")]]
        ((13, 4, 4), 'head')
    """
    fn = "skeleton"
    N = rig.head_matrix.shape[1]
    v = jnp.asarray(vertices)
    if v.shape != (N, 3):
        raise InputError(f"{fn}: vertices must have shape ({N}, 3) (every hm08 vertex), got {v.shape}")
    if not jnp.issubdtype(v.dtype, jnp.floating):
        v = v.astype(jnp.float32)
    keep = _selection(rig, joints, fn)
    anc = _kept_ancestor(rig, keep)
    parents = tuple(int(anc[rig.parent[j]]) if rig.parent[j] >= 0 else -1 for j in keep)
    roll = jnp.asarray(np.asarray(rig.roll)[keep], v.dtype)
    rest, lengths = _place(v, _rows(rig.head_matrix, keep), _rows(rig.tail_matrix, keep), roll)
    return Skeleton(rest, lengths, tuple(rig.names[j] for j in keep), parents)


def skin_weights(rig: Rig, vertex_ids: Integer[ArrayLike, "n"], skeleton: Skeleton, *,
                 influences: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The strongest skin influences of some hm08 vertices among a skeleton's joints (numpy).

    The rig's weight of every bone the skeleton lacks is first moved to its nearest kept ancestor
    (to joint 0, the skeleton's first root, when it has none), so no weight is lost; then each
    vertex keeps its ``influences`` largest weights, renormalised to sum to 1.

    Args:
        rig: the :class:`~machlib.human.Rig` the skeleton was built from.
        vertex_ids: ``(n,)`` hm08 vertex indices.
        skeleton: a :class:`Skeleton` of this rig (its joint names select the bones).
        influences: influences per vertex ``K`` (4 for glTF's ``JOINTS_0``/``WEIGHTS_0``).

    Returns:
        ``(joints, weights)``: ``(n, K)`` int32 joint indices into ``skeleton`` and ``(n, K)``
        float32 weights, each row sorted by decreasing weight, non-negative and summing to 1
        (unused slots: joint 0, weight 0).

    Raises:
        InputError: an unknown joint name, a vertex index out of range, or ``influences < 1``.

    Example:
        >>> import numpy as np
        >>> from machlib.human import load_human_data
        >>> from machlib.human._rig import BUST_JOINTS, skeleton, skin_weights
        >>> data = load_human_data()
        >>> sk = skeleton(data.rig, data.vertices, joints=BUST_JOINTS)
        >>> j, w = skin_weights(data.rig, np.arange(10), sk)
        >>> j.shape, w.dtype, bool(np.allclose(w.sum(1), 1.0))
        ((10, 4), dtype('float32'), True)
    """
    fn = "skin_weights"
    if isinstance(influences, bool) or not isinstance(influences, (int, np.integer)) or influences < 1:
        raise InputError(f"{fn}: influences must be a positive int, got {influences!r}")
    ids = np.asarray(vertex_ids)
    N = rig.weights.shape[1]
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise InputError(f"{fn}: vertex_ids must be a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
    if len(ids) and (ids.min() < 0 or ids.max() >= N):
        raise InputError(f"{fn}: vertex_ids must lie in 0..{N - 1}, got [{ids.min()}, {ids.max()}]")
    keep = _selection(rig, skeleton.names, fn)
    if tuple(rig.names[j] for j in keep) != tuple(skeleton.names):
        raise InputError(f"{fn}: the skeleton's joints are not in the rig's order; build it with skeleton()")
    anc = _kept_ancestor(rig, keep)
    target = np.where(anc >= 0, anc, 0)
    import scipy.sparse as sp

    J = len(keep)
    move = sp.csr_matrix((np.ones(len(target)), (target, np.arange(len(target)))), shape=(J, len(target)))
    W = np.asarray((move @ rig.weights.astype(np.float64)[:, ids]).todense()).T  # (n, J)
    W = np.maximum(W, 0.0)
    k = min(influences, J)
    order = np.argsort(-W, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(W, order, 1)
    total = w.sum(1, keepdims=True)
    if (total <= 0).any():
        bad = ids[np.flatnonzero(total[:, 0] <= 0)[:5]].tolist()
        raise InputError(f"{fn}: hm08 vertices {bad} have no skin weight")
    w = w / total
    order = np.where(w > 0, order, 0)
    joints_out = np.zeros((len(ids), influences), np.int32)
    weights_out = np.zeros((len(ids), influences), np.float32)
    joints_out[:, :k] = order
    weights_out[:, :k] = w
    return joints_out, weights_out


def forward_kinematics(skeleton: Skeleton, rotations: Float[ArrayLike, "J 3"]) -> Float[Array, "J 4 4"]:
    """Posed world transforms of the joints (pure JAX; jit/vmap/grad, NaN-safe at zero).

    Each joint turns by ``rotation_matrix(rotations[j])`` in its own rest frame (about its head,
    axes = the bone's X, Y, Z; Blender's pose-bone rotation), carrying its children along:

    .. code-block:: text

       P_j = P_parent(j) · (W_parent(j)⁻¹ · W_j) · R_j        (P_j = W_j · R_j for a root)

    with ``W = skeleton.rest``. Zero rotations give back ``skeleton.rest``.

    Args:
        skeleton: the :class:`Skeleton`.
        rotations: ``(J, 3)`` rotation vectors (axis × angle, radians) in the joints' local
            frames (:doc:`/conventions`).

    Returns:
        ``(J, 4, 4)`` posed world transforms in head space (row-major), in the dtype of
        ``rotations`` and ``skeleton.rest`` combined.

    Raises:
        InputError: ``rotations`` is not ``(J, 3)``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.human import load_human_data
        >>> from machlib.human._rig import BUST_JOINTS, forward_kinematics, skeleton
        >>> data = load_human_data()
        >>> sk = skeleton(data.rig, data.vertices, joints=BUST_JOINTS)
        >>> pose = jnp.zeros((13, 3)).at[sk.index("head")].set(jnp.array([0.3, 0.0, 0.0]))
        >>> P = forward_kinematics(sk, pose)
        >>> bool(jnp.allclose(P[:9], sk.rest[:9], atol=1e-6)), bool(jnp.allclose(P[9], sk.rest[9]))
        (True, False)
    """
    J = skeleton.num_joints
    r = jnp.asarray(rotations)
    if r.shape != (J, 3):
        raise InputError(f"forward_kinematics: rotations must have shape ({J}, 3) for {J} joints, got {r.shape}")
    dtype = jnp.result_type(r.dtype, skeleton.rest.dtype, jnp.float32)
    return _forward_kinematics(skeleton.rest.astype(dtype), r.astype(dtype), skeleton.parents)


@functools.partial(jax.jit, static_argnums=2)
def _forward_kinematics(W: Array, r: Array, parents: tuple) -> Array:
    J = W.shape[0]
    dtype = W.dtype
    R = jax.vmap(rotation_matrix)(r)
    R4 = _transform(R, jnp.zeros((J, 3), dtype))
    par = np.asarray(parents, np.int64)
    parent_rest = jnp.where((par >= 0)[:, None, None], W[np.maximum(par, 0)], jnp.eye(4, dtype=dtype))
    local = jnp.matmul(_rigid_inverse(parent_rest), W, precision=_HIGHEST)  # rest, relative to the parent
    local = jnp.matmul(local, R4, precision=_HIGHEST)
    out = jnp.zeros_like(W)
    for idx in _levels(parents):
        if par[idx[0]] < 0:  # depth 0: the roots
            out = out.at[idx].set(local[idx])
        else:
            out = out.at[idx].set(jnp.matmul(out[par[idx]], local[idx], precision=_HIGHEST))
    return out


def linear_blend_skinning(
    vertices: Float[ArrayLike, "n 3"],
    joints: Integer[ArrayLike, "n K"],
    weights: Float[ArrayLike, "n K"],
    transforms: Float[ArrayLike, "J 4 4"],
    inverse_bind: Float[ArrayLike, "J 4 4"],
) -> Float[Array, "n 3"]:
    """Linear blend skinning (pure JAX; jit/vmap/grad).

    ``v' = Σ_k w_k · (transforms[j_k] · inverse_bind[j_k]) · v`` (homogeneous ``v``).

    Args:
        vertices: ``(n, 3)`` rest positions (metres, the skeleton's frame).
        joints: ``(n, K)`` joint indices (e.g. from :func:`skin_weights`).
        weights: ``(n, K)`` weights, each row summing to 1.
        transforms: ``(J, 4, 4)`` posed joint transforms (:func:`forward_kinematics`).
        inverse_bind: ``(J, 4, 4)`` inverse rest transforms (:attr:`Skeleton.inverse_bind`).

    Returns:
        ``(n, 3)`` posed positions.

    Raises:
        InputError: mismatched shapes.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.human._rig import linear_blend_skinning
        >>> shift = jnp.eye(4).at[0, 3].set(1.0)[None]   # one joint moved 1 m along +x
        >>> v = jnp.zeros((2, 3))
        >>> linear_blend_skinning(v, jnp.zeros((2, 1), int), jnp.ones((2, 1)), shift, jnp.eye(4)[None]).tolist()
        [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    """
    fn = "linear_blend_skinning"
    v = jnp.asarray(vertices)
    j = jnp.asarray(joints)
    w = jnp.asarray(weights)
    T = jnp.asarray(transforms)
    B = jnp.asarray(inverse_bind)
    if j.shape != w.shape or j.shape[0] != v.shape[0]:
        raise InputError(f"{fn}: joints {j.shape} and weights {w.shape} must be (n, K) for {v.shape[0]} vertices")
    if T.shape != B.shape:
        raise InputError(f"{fn}: transforms {T.shape} and inverse_bind {B.shape} must both be (J, 4, 4)")
    if v.ndim != 2 or v.shape[1] != 3 or T.ndim != 3 or T.shape[1:] != (4, 4):
        raise InputError(f"{fn}: vertices must be (n, 3) and transforms (J, 4, 4), got {v.shape} and {T.shape}")
    if not jnp.issubdtype(j.dtype, jnp.integer):
        raise TypeError(f"{fn}: joints must be integers, got dtype {j.dtype}")
    dtype = jnp.result_type(v.dtype, w.dtype, T.dtype, B.dtype, jnp.float32)
    return _skin(v.astype(dtype), j.astype(jnp.int32), w.astype(dtype), T.astype(dtype), B.astype(dtype))


@jax.jit
def _skin(v: Array, j: Array, w: Array, T: Array, B: Array) -> Array:
    M = jnp.matmul(T, B, precision=_HIGHEST)[:, :3, :]  # (J, 3, 4)
    blend = jnp.einsum("nk,nkab->nab", w, M[j], precision=_HIGHEST)  # (n, 3, 4)
    return jnp.einsum("nab,nb->na", blend[:, :, :3], v, precision=_HIGHEST) + blend[:, :, 3]


class GltfJoints(NamedTuple):
    """A skeleton as glTF joint nodes and a skin (numpy, float64).

    Attributes:
        names: ``(J,)`` joint names (node names).
        parents: ``(J,)`` parent joint index, ``-1`` for a root (a scene root, or a child of
            whatever node the caller puts the skeleton under).
        translation: ``(J, 3)`` node translation relative to the parent joint (a root's: in head
            space), metres.
        rotation: ``(J, 4)`` unit quaternions ``(x, y, z, w)``, ``w ≥ 0``, relative to the parent.
        inverse_bind: ``(J, 4, 4)`` row-major inverse bind matrices (last row ``0 0 0 1``).
    """

    names: tuple
    parents: tuple
    translation: np.ndarray
    rotation: np.ndarray
    inverse_bind: np.ndarray


def _quaternion(R: np.ndarray) -> np.ndarray:
    """``(x, y, z, w)`` of a rotation matrix (Shepperd's method), ``w ≥ 0``."""
    m = R
    tr = np.trace(m)
    cands = np.array([tr, m[0, 0], m[1, 1], m[2, 2]])
    k = int(np.argmax(cands))
    if k == 0:
        s = 2.0 * np.sqrt(max(1.0 + tr, 0.0))
        q = np.array([(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s])
    else:
        i = k - 1
        jj, kk = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(max(1.0 + m[i, i] - m[jj, jj] - m[kk, kk], 0.0))
        q = np.zeros(4)
        q[i] = 0.25 * s
        q[jj] = (m[jj, i] + m[i, jj]) / s
        q[kk] = (m[kk, i] + m[i, kk]) / s
        q[3] = (m[kk, jj] - m[jj, kk]) / s
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def gltf_joints(skeleton: Skeleton) -> GltfJoints:
    """What a glTF skin needs from a skeleton: local node TRS per joint and inverse bind matrices.

    Add one node per joint in order (``parent`` = the node of ``parents[j]``), with
    ``translation`` and ``rotation``; then a skin over those nodes with ``inverse_bind``. Node
    world matrices then equal ``skeleton.rest``, and ``JOINTS_0`` indices from
    :func:`skin_weights` refer to the skin's joints in the same order. glTF is y-up, metres, +z
    forward, like head space, so nothing is converted. Rest rotations are re-orthonormalised (in
    float64) before being turned into quaternions.

    Args:
        skeleton: the :class:`Skeleton` (unbatched).

    Returns:
        The :class:`GltfJoints`.

    Example:
        >>> import numpy as np
        >>> from machlib.human import load_human_data
        >>> from machlib.human._rig import BUST_JOINTS, gltf_joints, skeleton
        >>> data = load_human_data()
        >>> g = gltf_joints(skeleton(data.rig, data.vertices, joints=BUST_JOINTS))
        >>> g.translation.shape, g.rotation.shape, g.inverse_bind.shape
        ((13, 3), (13, 4), (13, 4, 4))
    """
    W = np.asarray(skeleton.rest, np.float64)
    if W.ndim != 3:
        raise InputError(f"gltf_joints: expected an unbatched skeleton, rest has shape {W.shape}")
    U, _, Vt = np.linalg.svd(W[:, :3, :3])
    W = W.copy()
    W[:, :3, :3] = U @ Vt  # nearest rotation (the rest frames are rotations up to rounding)
    W[:, 3] = (0.0, 0.0, 0.0, 1.0)
    inv = np.linalg.inv(W)
    inv[:, 3] = (0.0, 0.0, 0.0, 1.0)
    J = len(W)
    translation = np.zeros((J, 3))
    rotation = np.zeros((J, 4))
    for j, p in enumerate(skeleton.parents):
        local = W[j] if p < 0 else inv[p] @ W[j]
        translation[j] = local[:3, 3]
        rotation[j] = _quaternion(local[:3, :3])
    return GltfJoints(tuple(skeleton.names), tuple(skeleton.parents), translation, rotation, inv)
