"""Scene previews (numpy): several meshes, hair strands and a light, rendered for a person to look at.

An assembled character is a head plus parts (eyes, teeth, glasses, a bust), each with its own
texture or colour, some of them transparent, and hair strands. :func:`render_scene` draws them
all in one camera with one shared depth buffer, under a directional light or under second-order
spherical-harmonics (SH) lighting (:mod:`machlib.render`'s convention, :func:`three_sh_lights`
gives three ready environments). :func:`preview_sheet` tiles renders into a contact sheet with
small labels, and :func:`turntable_cameras` gives cameras evenly around the head.

Not differentiable (see :mod:`machlib.render` for that); meshes are rasterized with
:func:`machlib._raster.rasterize_np` and strands with the hair preview's z-buffered strand pass
(:mod:`machlib.hair._render`). Frames and pixel centres follow :doc:`/conventions`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple, Optional, Protocol, Union, runtime_checkable

import numpy as np
from jaxtyping import Float, UInt8

from ._camera import Camera, rotation_matrix
from ._errors import InputError
from ._mesh import Mesh
from ._preview import orbit_camera, sample_texture_np
from ._raster import rasterize_np
from ._strand_raster import (
    _DEFAULT_STRAND_COLOR,
    _deep_shadow,
    _DeepShadow,
    _linear_to_srgb,
    _longitudinal,
    _strand_albedo,
    _strand_geometry,
    _strand_jitter,
    _strand_pass,
    _unit,
    _vertex_normals_np,
)
from ._threads import with_serial_blas
from ._typing import AnyArray
from .render import _sh
from .render._brdf import _ggx_lobe

__all__ = ["ScenePart", "StrandShading", "render_scene", "render_mesh", "depth_map", "PREVIEW_SKIN", "preview_sheet", "turntable_cameras",
           "three_sh_lights"]

_NEAR = 1e-3  # metres: triangles with a corner closer to the camera plane than this are dropped
_AMBIENT = 0.25  # ambient fraction of the directional light (linear light)
_LUMA = np.array([0.2126, 0.7152, 0.0722])
_SHADOW_BIAS = 0.004  # metres towards the light that a point's own strand neighbourhood does not shadow it


@runtime_checkable
class StrandsLike(Protocol):
    """What the scene renderer needs of :class:`machlib.hair.Strands` (so it does not import the
    hair package): ``points`` ``(S, P, 3)`` and ``color`` ``(S, 3)`` or ``None``."""

    points: AnyArray
    color: Optional[AnyArray]

ColorLike = Union[Sequence, np.ndarray, AnyArray]


class StrandShading(NamedTuple):
    """How :func:`render_scene` shades hair strands (see there for the model).

    Attributes:
        ambient: ambient fraction of the strand diffuse term, in ``[0, 1]``.
        specular: strength of the primary (white, reflected) highlight, ``≥ 0``.
        shininess: exponent of the highlight lobes, ``≥ 0`` (the secondary lobe uses a third of
            it: it is broader).
        root_shadow: darkening at the root, in ``[0, 1]`` (an ambient-occlusion stand-in for the
            inside of the hair volume).
        root_shadow_length: arc length in metres over which the root darkening fades, ``> 0``.
        jitter: per-strand melanin jitter, in ``[0, 1)``: each strand's melanin is scaled by
            ``(1 + jitter·u)²`` with ``u`` a fixed pattern in ``[-1, 1]`` (from ``seed``).
        depth_bias: metres by which a strand may lie behind the opaque surfaces and still show
            (keeps roots on the scalp visible), ``≥ 0``.
        secondary: strength of the secondary highlight (coloured by the hair), ``≥ 0``.
        shift: longitudinal shift of the highlights in degrees, in ``[0, 30]``: the primary lobe
            is moved by ``−shift`` (towards the root), the secondary by ``+1.5·shift`` (towards
            the tip), as the tilted cuticle scales of a real fibre move them (Marschner et al.
            2003).
        tip_bleach: fraction of the melanin lost from root to tip, in ``[0, 1)``: tips are
            lighter than roots.
        tip_fade: fraction of each strand's length, at its tip, over which it thins out, in
            ``[0, 1]``: a fixed dither drops a growing share of its supersampled pixels (up to
            80 % at the very tip), so cut ends look soft instead of ruled. Off (0) by default:
            on a full head of hair the ends lie in many layers, and the dropped pixels showed the
            strands and the skin behind them as speckles (short cuts read as grainy, long hair
            had pale dots beside its ends), at either supersampling.
        width: strand width in output pixels, ``> 0`` (at ``supersample`` s it is
            ``round(width·s)`` supersampled pixels, at least one).
        self_shadow: optical density of the hair seen from the key light, ``≥ 0``: the hair's
            shadow on itself and on the meshes under it (a deep opacity map; see
            :func:`render_scene`); ``0`` turns it off.
        secondary_power: the secondary highlight's colour is the fibre's hue at the brightness
            of the albedo's largest channel raised to this power, in ``[0, 2]``. Light in that
            lobe crosses the fibre (Marschner's TRT path), so it is at most as bright as the
            fibre's albedo (``1``, the default: brown hair's highlight stays brown); ``0.5``
            (machlib before issue 17) lifted it towards gold for every colour but blonde.
        seed: integer seed of the per-strand jitter pattern.
    """

    ambient: float = 0.3
    specular: float = 0.08
    shininess: float = 150.0
    root_shadow: float = 0.45
    root_shadow_length: float = 0.03
    jitter: float = 0.2
    depth_bias: float = 5e-4
    secondary: float = 0.35
    shift: float = 5.0
    tip_bleach: float = 0.2
    tip_fade: float = 0.0
    width: float = 1.0
    self_shadow: float = 1.6
    secondary_power: float = 1.0
    seed: int = 0


def _check_strand_shading(style, owner: str) -> StrandShading:
    if not isinstance(style, StrandShading):
        raise TypeError(f"{owner}: strand_shading must be a StrandShading, got {type(style).__name__}")
    for name, lo, hi in (("ambient", 0, 1), ("root_shadow", 0, 1), ("jitter", 0, 0.999),
                         ("specular", 0, np.inf), ("shininess", 0, np.inf),
                         ("root_shadow_length", 1e-9, np.inf), ("depth_bias", 0, np.inf),
                         ("secondary", 0, np.inf), ("shift", 0, 30), ("tip_bleach", 0, 0.999), ("tip_fade", 0, 1),
                         ("width", 1e-3, 64), ("self_shadow", 0, np.inf),
                         ("secondary_power", 0, 2)):
        val = getattr(style, name)
        try:
            ok = lo <= float(val) <= hi
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"{owner}: {name} must be in [{lo}, {hi}], got {val!r}")
    if isinstance(style.seed, bool) or not isinstance(style.seed, (int, np.integer)):
        raise InputError(f"{owner}: seed must be an integer, got {style.seed!r}")
    return StrandShading(*(float(v) for v in style[:-1]), int(style.seed))


class ScenePart(NamedTuple):
    """One mesh of a scene and how it looks.

    Attributes:
        mesh: the :class:`~machlib.Mesh` in head space (metres).
        texture: optional ``(H, W, 3)`` (or ``(H, W, 4)``, alpha ignored) albedo in the mesh's UV
            layout: uint8, or float in ``[0, 1]``; sRGB (display) values as in a PNG, decoded to
            linear light before shading.
        color: linear RGB albedo in ``[0, 1]`` used when there is no texture.
        alpha: opacity in ``[0, 1]``; below 1 the part is composited over what is behind it
            (its diffuse colour by ``alpha``; its highlight is added in full: a clear surface
            such as a cornea or a lens reflects as much light as an opaque one).
        specular: strength of the Blinn-Phong highlight, ``≥ 0``.
        two_sided: draw triangles seen from behind too (with flipped normals). ``False`` culls
            them, which is about twice as fast and looks the same for a closed mesh with
            counter-clockwise outward winding.
        shininess: the highlight's Blinn-Phong exponent, ``≥ 1`` (32: a soft sheen; a few
            hundred: the small, sharp highlight of a wet surface).
        roughness_map: optional ``(h, w)`` glTF roughness in ``[0, 1]`` in the mesh's UV layout
            (the head's :func:`machlib.texture.region_pbr_maps`, times the material's roughness
            factor). With it the highlight is the glTF material's own specular lobe
            (:func:`machlib.texture.ggx_specular`) under the key light, as a glTF viewer shows
            it, and ``specular`` / ``shininess`` are unused.
        specular_map: optional ``(h', w')`` ``KHR_materials_specular`` factor in ``[0, 1]`` for
            the lobe (default 1: F0 = 0.04); only with ``roughness_map``.
    """

    mesh: Mesh
    texture: Optional[AnyArray] = None
    color: ColorLike = (0.5, 0.5, 0.5)
    alpha: float = 1.0
    specular: float = 0.08
    two_sided: bool = True
    shininess: float = 32.0
    roughness_map: Optional[AnyArray] = None
    specular_map: Optional[AnyArray] = None


class _Part(NamedTuple):  # a validated part in float64 numpy
    verts: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    faces_uv: np.ndarray
    texture: Optional[np.ndarray]
    color: np.ndarray
    alpha: float
    specular: float
    two_sided: bool
    shininess: float = 32.0
    roughness: Optional[np.ndarray] = None  # (h, w, 1) float32 glTF roughness: the GGX lobe instead of Blinn-Phong
    spec_map: Optional[np.ndarray] = None  # (h, w, 1) float32 KHR_materials_specular factor


def _pbr_map(m, name: str, owner: str) -> np.ndarray:
    a = np.asarray(m, dtype=np.float32)
    if a.ndim != 2 or min(a.shape) < 1:
        raise InputError(f"{owner}: {name} must be an (h, w) map, got shape {a.shape}")
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise InputError(f"{owner}: {name} must be finite and in [0, 1]")
    return a[..., None]


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _vec(value, shape: tuple[int, ...], name: str, owner: str) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"{owner}: {name} must be numbers of shape {shape}, got {value!r}") from err
    if a.shape != shape or not np.isfinite(a).all():
        raise InputError(f"{owner}: {name} must be finite numbers of shape {shape}, got shape {a.shape}")
    return a


def _sh_shading_np(normals: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """numpy twin of :func:`machlib.render.sh_shading` for unit ``(N, 3)`` normals, float64."""
    x, y, z = normals[:, 0], normals[:, 1], normals[:, 2]
    basis = np.stack([np.full_like(x, _sh._C0), _sh._C1 * y, _sh._C1 * z, _sh._C1 * x, _sh._C2 * x * y,
                      _sh._C2 * y * z, _sh._C3 * (3.0 * z * z - 1.0), _sh._C2 * x * z, _sh._C4 * (x * x - y * y)], 1)
    return (basis * np.asarray(_sh._LOBE)) @ coeffs


def _check_part(part, i: int, owner: str) -> _Part:
    if isinstance(part, Mesh):
        part = ScenePart(part)
    if not isinstance(part, ScenePart):
        raise TypeError(f"{owner}: parts[{i}] must be a ScenePart or a Mesh, got {type(part).__name__}")
    if not isinstance(part.mesh, Mesh):
        raise TypeError(f"{owner}: parts[{i}].mesh must be a machlib.Mesh, got {type(part.mesh).__name__}")
    verts = np.asarray(part.mesh.vertices, dtype=np.float64)
    faces = np.asarray(part.mesh.faces, dtype=np.int64)
    if not np.isfinite(verts).all():
        raise InputError(f"{owner}: parts[{i}].mesh has NaN or infinite vertices")
    if faces.size and (faces.min() < 0 or faces.max() >= len(verts)):
        raise InputError(f"{owner}: parts[{i}].mesh.faces index outside its {len(verts)} vertices")
    tex = None
    if part.texture is not None:
        tex = np.asarray(part.texture)
        if tex.ndim != 3 or tex.shape[2] not in (3, 4) or min(tex.shape[:2]) < 1:
            raise InputError(f"{owner}: parts[{i}].texture must have shape (H, W, 3), got {tex.shape}")
        if tex.dtype != np.uint8:
            tex = tex.astype(np.float64)
            if not np.isfinite(tex).all():
                raise InputError(f"{owner}: parts[{i}].texture has NaN or infinite values")
        tex = tex[..., :3]
    color = _vec(part.color, (3,), f"parts[{i}].color", owner)
    if color.min() < 0 or color.max() > 1:
        raise InputError(f"{owner}: parts[{i}].color must be linear RGB in [0, 1], got {color.tolist()}")
    alpha = float(part.alpha)
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"{owner}: parts[{i}].alpha must be in [0, 1], got {part.alpha!r}")
    spec = float(part.specular)
    if not 0.0 <= spec < np.inf:
        raise InputError(f"{owner}: parts[{i}].specular must be finite and >= 0, got {part.specular!r}")
    shin = float(part.shininess)
    if not 1.0 <= shin < np.inf:
        raise InputError(f"{owner}: parts[{i}].shininess must be finite and >= 1, got {part.shininess!r}")
    rough = spec_map = None
    if part.roughness_map is not None:
        rough = _pbr_map(part.roughness_map, f"parts[{i}].roughness_map", owner)
        if part.specular_map is not None:
            spec_map = _pbr_map(part.specular_map, f"parts[{i}].specular_map", owner)
    elif part.specular_map is not None:
        raise InputError(f"{owner}: parts[{i}].specular_map needs a roughness_map")
    return _Part(verts, faces, np.asarray(part.mesh.uv, dtype=np.float64),
                 np.asarray(part.mesh.faces_uv, dtype=np.int64), tex, color, alpha, spec, bool(part.two_sided), shin,
                 rough, spec_map)


class _View(NamedTuple):  # the camera at the supersampled resolution, float64
    R: np.ndarray
    t: np.ndarray
    focal: np.ndarray
    principal: np.ndarray
    center: np.ndarray
    size: tuple[int, int]


class _Light(NamedTuple):
    L: np.ndarray  # unit direction towards the (key) light
    sh: Optional[np.ndarray]  # (9, 3) or None
    spec_color: np.ndarray  # (3,) colour of highlights
    hair_hi: np.ndarray  # (3,) strand diffuse light facing the key light ...
    hair_lo: np.ndarray  # (3,) ... and its ambient floor
    key_share: float = 1.0  # share of the SH light that comes from the key direction (what a shadow removes)


def _raster(parts: Sequence[_Part], view: _View):
    """Rasterize parts into one depth buffer: ``(covered, part, face, bary, z)`` per pixel."""
    w, h = view.size
    offs = np.cumsum([0] + [len(p.verts) for p in parts])
    verts = np.concatenate([p.verts for p in parts], 0)
    faces = np.concatenate([p.faces + o for p, o in zip(parts, offs[:-1])], 0)
    owner = np.concatenate([np.full(len(p.faces), k) for k, p in enumerate(parts)])
    local = np.concatenate([np.arange(len(p.faces)) for p in parts])
    pc = verts @ view.R.T + view.t
    z = pc[:, 2]
    px = pc[:, :2] / np.where(z > _NEAR, z, 1.0)[:, None] * view.focal + view.principal
    keep = (z[faces] > _NEAR).all(1)
    one_sided = ~np.array([p.two_sided for p in parts])[owner]
    if one_sided.any():
        a, b, c = px[faces[:, 0]], px[faces[:, 1]], px[faces[:, 2]]
        area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        keep &= ~one_sided | (area < 0)  # rasterize_np's back-face test, per part
    ids = np.nonzero(keep)[0]
    tri, bary = rasterize_np(px, faces[ids], (w, h), depth=z)
    covered = tri >= 0
    fid = ids[tri[covered]]
    bw = bary[covered]
    zpix = np.einsum("nk,nk->n", bw, z[faces[fid]])
    return covered, owner[fid], local[fid], bw, zpix


def _key_level(light: _Light, ambient: float) -> np.ndarray:
    """The key light's Lambert level (linear RGB) for the glTF lobe: ``1 − ambient`` of a white
    directional light; under SH the luminance of ``s(L) − s(−L)`` (the light from the key side
    over the light from the opposite one) in the colour of ``s(L)``, the light a surface facing
    the key receives. (A portrait's SH takes up colour that belongs to the albedo, and its band 1
    is often bluish: ``s(L) − s(−L)`` per channel put blue highlights on skin.)"""
    if light.sh is None:
        return (1.0 - ambient) * light.spec_color
    hi = light.hair_hi
    return hi * (float(light.spec_color @ _LUMA) / max(float(hi @ _LUMA), 1e-12))


def _shade(parts: Sequence[_Part], normals: Sequence[np.ndarray], part_id, face_id, bw, light: _Light,
           view: _View, ambient: float, shadow: _DeepShadow | None = None, split: bool = False):
    """Linear RGB of rasterized pixels: albedo × (SH irradiance or Lambert + ambient) + highlight
    (Blinn-Phong, or the glTF lobe of a part with a roughness map), the key light's share
    attenuated by the hair's ``shadow`` when given (``split``: the diffuse and highlight terms
    apart, as two arrays)."""
    out = np.zeros((part_id.size, 3))
    gloss = np.zeros((part_id.size, 3))
    for k in np.unique(part_id):
        p, sel = parts[k], part_id == k
        f, b = face_id[sel], bw[sel]
        n = _unit(np.einsum("nk,nkc->nc", b, normals[k][p.faces[f]]))
        pos = np.einsum("nk,nkc->nc", b, p.verts[p.faces[f]])
        V = _unit(view.center - pos)
        n = np.where(np.sum(n * V, 1, keepdims=True) < 0, -n, n)  # seen from behind: two-sided
        uv = np.einsum("nk,nkc->nc", b, p.uv[p.faces_uv[f]]) if p.texture is not None or p.roughness is not None else None
        if p.texture is not None:
            albedo = _srgb_to_linear(sample_texture_np(p.texture, uv)[:, :3])
        else:
            albedo = np.broadcast_to(p.color, (f.size, 3))
        lit = np.ones(f.size) if shadow is None else shadow.transmittance(pos, _SHADOW_BIAS)
        if light.sh is not None:
            irr = np.clip(_sh_shading_np(n, light.sh), 0.0, None) * (1.0 - light.key_share * (1.0 - lit))[:, None]
        else:
            irr = (ambient + (1.0 - ambient) * np.clip(n @ light.L, 0.0, None) * lit)[:, None]
        out[sel] = albedo * irr
        if p.roughness is not None:
            # the glTF lobe per unit irradiance; the key light's irradiance is pi times its
            # Lambert level here (diffuse = albedo x level x n.l, glTF's = albedo / pi x E x n.l)
            H = _unit(light.L[None] + V)
            rough = sample_texture_np(p.roughness, uv)[:, 0]
            s = 1.0 if p.spec_map is None else sample_texture_np(p.spec_map, uv)[:, 0]
            lobe = _ggx_lobe(np, n @ light.L, np.sum(n * V, 1), np.sum(n * H, 1), np.sum(V * H, 1), rough, s)
            level = _key_level(light, ambient)
            gloss[sel] = (np.pi * lobe * lit)[:, None] * level
        elif p.specular > 0:
            H = _unit(light.L[None] + V)
            hl = np.clip(np.sum(n * H, 1), 0.0, None) ** p.shininess * lit
            gloss[sel] = p.specular * hl[:, None] * light.spec_color
    return (out, gloss) if split else out + gloss


def _shade_strands(points: np.ndarray, colors: np.ndarray, seg, frac, light: _Light, view: _View,
                   style: StrandShading, shadow: _DeepShadow | None = None):
    """Strand colour (linear RGB) at the pixels strands win: Kajiya-Kay diffuse and two shifted
    highlight lobes, per-strand melanin jitter, root-to-tip bleaching, root occlusion and the
    hair's self-shadow (see :func:`render_scene`)."""
    strand, pos, T, arc, t = _strand_geometry(points, seg, frac)
    albedo = _strand_albedo(colors, strand, t, jitter=style.jitter, tip_bleach=style.tip_bleach, seed=style.seed)
    V = _unit(view.center - pos)
    theta_h, cos_phi, sin_l = _longitudinal(T, light.L, V)
    lit = np.ones(strand.size) if shadow is None else shadow.transmittance(pos, _SHADOW_BIAS)
    amb = style.ambient
    span = light.hair_hi - light.hair_lo
    diffuse = (light.hair_lo + span * amb)[None] + (span * (1.0 - amb))[None] * (sin_l * lit)[:, None]
    shift = np.radians(style.shift)
    n_r = style.shininess
    primary = np.clip(np.cos(2.0 * (theta_h + shift)), 0.0, 1.0) ** n_r * np.sqrt(0.5 * (1.0 + cos_phi))
    secondary = np.clip(np.cos(2.0 * (theta_h - 1.5 * shift)), 0.0, 1.0) ** (n_r / 3.0)
    peak = albedo.max(1, keepdims=True)
    tint = albedo / np.maximum(peak, 1e-6) * peak**style.secondary_power  # the fibre's hue, dimmer for darker hair
    glint = 1.0 + 0.6 * _strand_jitter(points.shape[0], style.seed + 1)[strand]  # highlights break up per strand
    highlight = (style.specular * primary[:, None] + style.secondary * secondary[:, None] * tint) * glint[:, None]
    highlight = highlight * light.spec_color
    x = np.clip(arc / style.root_shadow_length, 0.0, 1.0)
    ao = 1.0 - style.root_shadow * (1.0 - x * x * (3.0 - 2.0 * x))
    return ao[:, None] * (albedo * diffuse + lit[:, None] * highlight)


def _fade_tips(points: np.ndarray, hit: np.ndarray, seg, frac, style: StrandShading):
    """Drop a dithered share of the strand pixels near the tips (``style.tip_fade``)."""
    _, _, _, _, t = _strand_geometry(points, seg, frac)
    x = np.clip((t - (1.0 - style.tip_fade)) / max(style.tip_fade, 1e-9), 0.0, 1.0)
    drop_p = 0.8 * x * x * (3.0 - 2.0 * x)
    flat = np.flatnonzero(hit)
    # a fixed hash of the pixel and the strand: the same picture every time
    hsh = (flat.astype(np.uint64) * np.uint64(2654435761) + (seg // max(points.shape[1] - 1, 1)).astype(np.uint64)
           * np.uint64(40503)) % np.uint64(65521)
    keep = hsh.astype(np.float64) / 65521.0 >= drop_p
    out = np.zeros_like(hit)
    out.reshape(-1)[flat[keep]] = True
    return out, seg[keep], frac[keep]


def _strand_depth(points: np.ndarray, seg, frac, view: _View) -> np.ndarray:
    """Camera depth of the strand samples that won their pixels (``seg``, ``frac`` from the
    strand pass): independent of the light, so computed once per render."""
    pp = points if points.shape[1] > 1 else np.concatenate([points, points], 1)
    nseg = pp.shape[1] - 1
    flat = pp.reshape(-1, 3)
    a = (seg // nseg) * pp.shape[1] + seg % nseg
    pos = flat[a] + frac[:, None] * (flat[a + 1] - flat[a])
    return (pos @ view.R.T + view.t)[:, 2]


def _make_light(light_dir, sh, view_R: np.ndarray, owner: str) -> _Light:
    L = None
    if light_dir is not None:
        L = _vec(light_dir, (3,), "light_dir", owner)
        if np.linalg.norm(L) < 1e-12:
            raise InputError(f"{owner}: light_dir must be non-zero")
    if sh is None:
        if L is None:  # above, right of and behind the camera, as render_strands
            L = view_R.T @ np.array([0.35, -0.45, -1.0])
        L = L / np.linalg.norm(L)
        one = np.ones(3)
        return _Light(L, None, one, one, np.zeros(3))
    coeffs = _vec(sh, (9, 3), "sh", owner)
    if L is None:  # the dominant direction of the environment: its luminance's band 1
        lum = coeffs @ _LUMA
        L = np.array([lum[3], lum[1], lum[2]])
        if np.linalg.norm(L) < 1e-9 * max(abs(lum[0]), 1e-30):
            L = view_R.T @ np.array([0.35, -0.45, -1.0])
    L = L / np.linalg.norm(L)
    hi, lo = np.clip(_sh_shading_np(np.stack([L, -L]), coeffs), 0.0, None)
    # the share of the light from the key side; an environment's shadows are soft, so a shadow
    # from the one key direction takes away only 60 % of it
    share = 0.6 * float(np.clip(1.0 - (lo @ _LUMA) / max(float(hi @ _LUMA), 1e-12), 0.0, 1.0))
    return _Light(L, coeffs, np.clip(hi - lo, 0.0, None), hi, lo, share)


#: Linear luminance above which an exposure other than 1 compresses highlights (:func:`_expose`).
HIGHLIGHT_KNEE = 0.8


def _expose(rgb: np.ndarray, alpha: np.ndarray, exposure: float) -> np.ndarray:
    """``rgb`` (linear, premultiplied by ``alpha``) times ``exposure``, with the straight colour's
    luminance ``Y`` above :data:`HIGHLIGHT_KNEE` ``k`` mapped to ``k + (1 − k)(1 − e^{−(Y − k)/(1 − k)})``
    (slope 1 at the knee, approaching 1) and the colour scaled with it, keeping its hue."""
    k = HIGHLIGHT_KNEE
    a = np.maximum(alpha, 1e-12)[..., None]
    c = rgb * (exposure / a)
    y = c @ _LUMA
    over = y > k
    if over.any():
        yo = y[over]
        c[over] *= ((k + (1.0 - k) * -np.expm1(-(yo - k) / (1.0 - k))) / yo)[:, None]
    return c * a


def _background(background, size0: tuple[int, int], owner: str) -> np.ndarray:
    """Linear-light ``(H, W, 3)`` (or ``(3,)``) background."""
    w0, h0 = size0
    bg = np.asarray(background)
    if bg.shape == (3,):
        scale = 255.0 if np.issubdtype(bg.dtype, np.integer) else 1.0
        c = _vec(bg, (3,), "background", owner) / scale
        if c.min() < 0 or c.max() > 1:
            raise InputError(f"{owner}: a background colour must be 3 floats in [0, 1] or 3 ints in [0, 255]")
        return _srgb_to_linear(c)
    if bg.ndim == 3 and bg.shape[:2] == (h0, w0) and bg.shape[2] in (3, 4):
        img = bg[..., :3].astype(np.float64) / (255.0 if bg.dtype == np.uint8 else 1.0)
        if not np.isfinite(img).all():
            raise InputError(f"{owner}: background image has NaN or infinite values")
        return _srgb_to_linear(img)
    raise InputError(f"{owner}: background must be a colour (3,) or an ({h0}, {w0}, 3) image, got shape {bg.shape}")


@with_serial_blas
def render_scene(
    parts: Sequence[ScenePart],
    camera: Camera,
    *,
    strands: Optional[StrandsLike] = None,
    strand_color: Optional[ColorLike] = None,
    strand_shading: StrandShading = StrandShading(),
    light_dir: Optional[ColorLike] = None,
    sh: Optional[ColorLike] = None,
    background: Optional[ColorLike] = None,
    supersample: int = 2,
    ambient: float = _AMBIENT,
    exposure: float = 1.0,
) -> UInt8[np.ndarray, "*L H W C"]:
    """Render meshes and hair strands together, for a person to look at: machlib's one preview
    renderer (fit, texture, hair and character previews, turntables, contact sheets and the
    shape-selection renders all go through it).

    All opaque parts (``alpha == 1``) are rasterized into one depth buffer, so eyes, teeth,
    glasses and a bust hide one another correctly; the strands are then z-tested against that
    depth and against each other and write their own depth: each strand is a polyline
    ``strand_shading.width`` output pixels wide (every projected segment sampled at least once
    per supersampled pixel, then widened by a minimum filter of the strand depth buffer), its
    last ``tip_fade`` of length thinned out by a fixed dither. Last, the transparent parts are
    composited over the result one at a time, farthest first by the mean depth of their
    vertices, each showing its nearest surface where it lies in front of the opaque depth (an
    approximation of per-pixel sorting that is exact for parts that do not interpenetrate).
    Everything is drawn at ``supersample`` times the resolution and box-filtered down, which
    anti-aliases and lets sparse hair read as partly transparent.

    Shading is in linear light: textures are sRGB (display) values and decoded first, part and
    strand colours are linear, and the result is sRGB-encoded. Meshes are Lambertian with a
    Blinn-Phong highlight. With ``sh`` the diffuse light is ``albedo · s(n)``, the SH shading of
    :func:`machlib.render.sh_shading` (clipped at 0); otherwise it is
    ``albedo · (ambient + (1 − ambient) · max(0, n·L))``. A part with a ``roughness_map`` has,
    instead of Blinn-Phong, its glTF material's specular lobe
    (:func:`machlib.texture.ggx_specular` with the part's roughness and specular maps sampled at
    each pixel) lit by the key light ``L`` alone, whose irradiance is ``π`` times its Lambert
    level: under ``sh`` the luminance of ``s(L) − s(−L)`` (the environment's light from the key
    side over the light from the opposite one) in the colour of ``s(L)``, otherwise a white
    ``1 − ambient``; the hair's shadow dims it like the key light's diffuse share.

    Strands (``strand_shading``, a :class:`StrandShading`), with ``T`` the strand tangent (root
    to tip) and ``L``, ``V`` the unit directions to the light and the eye:

    * colour: the strand's albedo with its melanin jittered per strand and bleached towards the
      tip (``jitter``, ``tip_bleach``; a fixed pattern from ``seed``), darkened over the first
      ``root_shadow_length`` metres (``root_shadow``);
    * diffuse: Kajiya-Kay ``sin(T, L) = sqrt(1 − (T·L)²)`` over an ``ambient`` floor;
    * highlights: with the longitudinal half angle ``θ_h = (asin(T·L) + asin(T·V)) / 2``, a white
      primary lobe ``specular · max(0, cos 2(θ_h + α))^shininess · cos(φ/2)`` and a secondary
      lobe coloured by the fibre, ``secondary · max(0, cos 2(θ_h − 1.5α))^(shininess/3)``, with
      ``α = shift`` and ``φ`` the azimuth between ``L`` and ``V`` around the strand: the
      Kajiya-Kay cone ``cos(θ_i + θ_r)`` split and shifted as Marschner et al.'s R and TRT
      lobes (primary towards the root, secondary towards the tip), scaled per strand;
    * self-shadowing (``self_shadow``): a deep opacity map of the strands seen from the key
      light, built once per light. The optical depth at a point is the number of strand samples
      nearer the light in its cell of a light-space grid (up to 64 × 64 cells, none smaller
      than the strands' point spacing; 48 depth slices whose running sums are interpolated),
      relative to the median column's count. The transmittance
      ``exp(−self_shadow · depth)`` scales the strands' direct diffuse light and highlights and
      the meshes' key light (their Lambert term, or under SH 60 % of the share of the light that
      comes from the key side rather than the opposite one: an environment's shadows are soft),
      so the scalp, the
      neck and a forehead under a fringe lie in the hair's shadow.

    Under SH the strands' key light is the
    environment's dominant direction (its luminance's band-1 vector) unless ``light_dir`` is
    given, with the SH shading towards and away from it as the lit and ambient levels.

    Several directional lights (``light_dir`` of shape ``(L, 3)``) or environments (``sh`` of
    shape ``(L, 9, 3)``; both: paired in order) give one image per light from a single
    rasterization and strand pass, each equal to the image of that light alone (the
    shape-selection renders and the character previews' relit sheet use this).

    Args:
        parts: the :class:`ScenePart` s (a bare :class:`~machlib.Mesh` is taken as a grey
            opaque part); may be empty, and parts may have no faces.
        camera: the :class:`~machlib.Camera`; the output has ``camera.image_size``.
        strands: optional :class:`~machlib.hair.Strands` in the same frame.
        strand_color: linear RGB ``(S, 3)`` per strand or ``(3,)`` for all; default
            ``strands.color``, else :data:`~machlib.hair.DEFAULT_HAIR_COLOR`.
        strand_shading: the :class:`StrandShading` parameters.
        light_dir: world direction towards the light, ``(3,)``, or ``(L, 3)`` for one image per
            light; ``None`` puts it above, right of and behind the camera (or, with ``sh``,
            along the environment's dominant direction). With ``sh`` it only places highlights
            and the strands' key light.
        sh: optional ``(9, 3)`` SH radiance coefficients (:func:`machlib.render.sh_directional`,
            :func:`three_sh_lights`) for the diffuse light, or ``(L, 9, 3)`` for one image per
            environment.
        background: ``None`` for RGBA output with alpha = coverage; an sRGB colour (3 floats in
            ``[0, 1]`` or 3 ints in ``[0, 255]``) or an ``(H, W, 3)`` image (uint8, or float in
            ``[0, 1]``) to composite over, giving RGB.
        supersample: integer ``≥ 1`` anti-aliasing factor per axis.
        ambient: ambient fraction of the directional light on meshes, in ``[0, 1]`` (unused
            with ``sh``).
        exposure: positive factor on the scene's linear light (a camera's exposure; the
            background is not scaled). Other than 1, luminance above
            :data:`HIGHLIGHT_KNEE` is then rolled off towards 1 instead of clipping
            (:func:`_expose`), so a brighter exposure does not burn out highlights. The character
            previews use :data:`~machlib.character.PREVIEW_EXPOSURE`.

    Returns:
        ``(H, W, 4)`` uint8 RGBA (straight alpha = coverage, partial for transparent parts over
        nothing and at edges), or ``(H, W, 3)`` uint8 RGB when ``background`` is given;
        ``(W, H) = camera.image_size``. With ``(L, 3)`` lights or ``(L, 9, 3)`` environments, a
        leading axis of length ``L``.

    Raises:
        TypeError: a part is not a :class:`ScenePart`, ``camera`` is not a
            :class:`~machlib.Camera`, ``strands`` not :class:`~machlib.hair.Strands` or
            ``strand_shading`` not a :class:`StrandShading`.
        InputError: (a ``ValueError``) a bad shape or value: a texture, colour, ``alpha`` or
            ``specular`` out of range, ``sh`` not ``(9, 3)`` or ``(L, 9, 3)``, a zero ``light_dir``, a bad
            background, ``supersample``, ``exposure`` or strand shading value, non-finite
            vertices or strand points.

    Example:
        >>> import numpy as np
        >>> from machlib import Mesh
        >>> from machlib._preview import orbit_camera
        >>> from machlib._scene import ScenePart, render_scene
        >>> tri = Mesh(np.array([[-.1, -.1, 0], [.1, -.1, 0], [0, .1, 0]]), np.array([[0, 1, 2]]),
        ...            np.zeros((3, 2)), np.array([[0, 1, 2]]))
        >>> img = render_scene([ScenePart(tri, color=(0.8, 0.1, 0.1))], orbit_camera(0.0, image_size=(32, 32)))
        >>> img.shape, int(img[16, 16, 3]), int(img[0, 0, 3])
        ((32, 32, 4), 255, 0)
    """
    owner = "render_scene"
    if not isinstance(camera, Camera):
        raise TypeError(f"{owner}: camera must be a machlib.Camera, got {type(camera).__name__}")
    if isinstance(parts, (Mesh, ScenePart)) or not isinstance(parts, Sequence):
        raise TypeError(f"{owner}: parts must be a sequence (list) of ScenePart, got {type(parts).__name__}")
    checked = [_check_part(p, i, owner) for i, p in enumerate(parts)]
    if isinstance(supersample, bool) or int(supersample) != supersample or supersample < 1:
        raise InputError(f"{owner}: supersample must be an integer >= 1, got {supersample!r}")
    if not 0.0 <= float(ambient) <= 1.0:
        raise InputError(f"{owner}: ambient must be in [0, 1], got {ambient!r}")
    if isinstance(exposure, bool) or not np.isfinite(float(exposure)) or float(exposure) <= 0.0:
        raise InputError(f"{owner}: exposure must be a positive finite number, got {exposure!r}")
    exposure = float(exposure)
    style = _check_strand_shading(strand_shading, owner)
    ss = int(supersample)
    points = colors = None
    if strands is not None:
        if not isinstance(strands, StrandsLike):
            raise TypeError(f"{owner}: strands must be machlib.hair.Strands, got {type(strands).__name__}")
        points = np.asarray(strands.points, dtype=np.float64)
        if not np.isfinite(points).all():
            raise InputError(f"{owner}: strands.points contain NaN or infinity")
        s = points.shape[0]
        src = strand_color if strand_color is not None else strands.color
        src = _DEFAULT_STRAND_COLOR if src is None else src
        c = np.asarray(src, dtype=np.float64)
        if c.shape == (3,):
            c = np.broadcast_to(c, (s, 3))
        colors = _vec(c, (s, 3), "strand_color", owner)
        if colors.size and (colors.min() < 0 or colors.max() > 1):
            raise InputError(f"{owner}: strand_color must be linear RGB in [0, 1]")
    elif strand_color is not None:
        raise InputError(f"{owner}: strand_color given without strands")
    w0, h0 = camera.image_size
    w, h = w0 * ss, h0 * ss
    bg = None if background is None else _background(background, (w0, h0), owner)

    R = np.asarray(rotation_matrix(np.asarray(camera.rotation, np.float64)), dtype=np.float64)
    t = np.asarray(camera.translation, dtype=np.float64)
    view = _View(R, t, np.asarray(camera.focal, np.float64) * ss, np.asarray(camera.principal, np.float64) * ss,
                 -R.T @ t, (w, h))
    many_dirs = light_dir is not None and np.ndim(light_dir) == 2
    many_sh = sh is not None and np.ndim(sh) == 3
    many = many_dirs or many_sh
    dirs = [light_dir]
    if many_dirs:
        dirs = list(_vec(light_dir, (np.shape(light_dir)[0], 3), "light_dir", owner))
        if len(dirs) == 0:
            raise InputError(f"{owner}: light_dir of shape (L, 3) needs at least one light")
    envs = [sh]
    if many_sh:
        envs = list(_vec(sh, (np.shape(sh)[0], 9, 3), "sh", owner))
        if len(envs) == 0:
            raise InputError(f"{owner}: sh of shape (L, 9, 3) needs at least one light")
    if many_dirs and many_sh and len(dirs) != len(envs):
        raise InputError(f"{owner}: light_dir {np.shape(light_dir)} and sh {np.shape(sh)} give different numbers of lights")
    count = max(len(dirs), len(envs))
    lights = [_make_light(dirs[i % len(dirs)], envs[i % len(envs)], R, owner) for i in range(count)]
    normals = [_vertex_normals_np(p.verts, p.faces) if p.faces.size else p.verts for p in checked]

    # geometry, once for every light: the opaque z-buffer, the strands against it, and the
    # transparent parts' pixels in front of the result
    zbuf = np.full((h, w), np.inf)
    opaque = [k for k, p in enumerate(checked) if p.alpha >= 1.0 and p.faces.size]
    if opaque:
        sub = [checked[k] for k in opaque]
        cov, pid, fid, bw, z = _raster(sub, view)
        zbuf[cov] = z
    strand_hit = None
    if points is not None and points.shape[0] and points.shape[1]:
        px_width = max(1, round(style.width * ss))
        hit, seg, frac = _strand_pass(points, R, t, view.focal, view.principal, (w, h), zbuf, style.depth_bias,
                                      width=px_width)
        if seg.size and style.tip_fade > 0:
            hit, seg, frac = _fade_tips(points, hit, seg, frac, style)
        if seg.size:
            strand_hit = (hit, seg, frac)
            zbuf[hit] = np.minimum(zbuf[hit], _strand_depth(points, seg, frac, view))
    clear = [k for k, p in enumerate(checked) if p.alpha < 1.0 and p.faces.size and p.alpha > 0.0]
    clear.sort(key=lambda k: -float(np.mean(checked[k].verts @ R[2] + t[2])))
    layers = []
    for k in clear:
        c_cov, c_pid, c_fid, c_bw, c_z = _raster([checked[k]], view)
        front = c_z < zbuf[c_cov]
        if front.any():
            rows, cols = np.nonzero(c_cov)
            mask = np.zeros((h, w), bool)
            mask[rows[front], cols[front]] = True
            layers.append((k, mask, c_pid[front], c_fid[front], c_bw[front]))

    def down(a: np.ndarray) -> np.ndarray:
        return a.reshape(h0, ss, w0, ss, *a.shape[2:]).mean(axis=(1, 3)) if ss > 1 else a

    def shade(light: _Light) -> np.ndarray:
        rgb = np.zeros((h, w, 3))  # linear, premultiplied by alpha
        alpha = np.zeros((h, w))
        shadow = None
        if style.self_shadow > 0 and points is not None and points.shape[0] and points.shape[1]:
            shadow = _deep_shadow(points, light.L, style.self_shadow)
        if opaque:
            rgb[cov] = _shade(sub, [normals[k] for k in opaque], pid, fid, bw, light, view, float(ambient), shadow)
            alpha[cov] = 1.0
        if strand_hit is not None:
            hit, seg, frac = strand_hit
            rgb[hit] = _shade_strands(points, colors, seg, frac, light, view, style, shadow)
            alpha[hit] = 1.0
        for k, mask, l_pid, l_fid, l_bw in layers:
            p = checked[k]
            col, gloss = _shade([p], [normals[k]], l_pid, l_fid, l_bw, light, view, float(ambient), split=True)
            rgb[mask] = p.alpha * col + (1.0 - p.alpha) * rgb[mask] + gloss
            alpha[mask] = p.alpha + (1.0 - p.alpha) * alpha[mask]
        if exposure != 1.0:
            rgb = _expose(rgb, alpha, exposure)
        if bg is not None:
            bg_ss = np.repeat(np.repeat(bg, ss, 0), ss, 1) if (bg.ndim == 3 and ss > 1) else bg
            out = _linear_to_srgb(rgb + (1.0 - alpha[..., None]) * bg_ss)
            return (np.clip(down(out), 0, 1) * 255 + 0.5).astype(np.uint8)
        straight = _linear_to_srgb(rgb / np.maximum(alpha, 1e-12)[..., None])
        a = down(alpha)
        col = down(straight * alpha[..., None]) / np.maximum(a, 1e-12)[..., None]
        rgba = np.concatenate([col, a[..., None]], -1)
        return (np.clip(rgba, 0, 1) * 255 + 0.5).astype(np.uint8)

    images = [shade(light) for light in lights]
    return np.stack(images) if many else images[0]


#: Linear RGB of an untextured head in previews (the sRGB skin tone (0.78, 0.6, 0.5)).
PREVIEW_SKIN: tuple[float, float, float] = (0.571, 0.319, 0.214)


def render_mesh(
    mesh: Mesh,
    camera: Camera,
    *,
    texture: Optional[AnyArray] = None,
    color: ColorLike = PREVIEW_SKIN,
    light_dir: Optional[ColorLike] = (0.35, 0.45, 1.0),
    ambient: float = 0.35,
    specular: float = 0.08,
    background: Optional[ColorLike] = None,
    supersample: int = 2,
) -> UInt8[np.ndarray, "H W C"]:
    """One mesh through :func:`render_scene`: the fit, template and completion previews.

    Args:
        mesh: the :class:`~machlib.Mesh`.
        camera: the :class:`~machlib.Camera`; the image has ``camera.image_size``.
        texture: optional ``(H, W, 3)`` sRGB albedo in the mesh's UV layout (uint8 or float).
        color: linear RGB albedo when there is no texture.
        light_dir: world direction towards the light (default: from the upper front right).
        ambient: ambient fraction.
        specular: Blinn-Phong highlight strength.
        background: as in :func:`render_scene` (``None``: RGBA with alpha = coverage).
        supersample: anti-aliasing factor per axis.

    Returns:
        ``(H, W, 4)`` uint8 RGBA, or ``(H, W, 3)`` RGB over ``background``.
    """
    return render_scene([ScenePart(mesh, texture=texture, color=color, specular=specular)], camera,
                        light_dir=light_dir, ambient=ambient, background=background, supersample=supersample)


def depth_map(parts: Sequence[Union[ScenePart, Mesh]], camera: Camera) -> Float[np.ndarray, "H W"]:
    """Camera depth ``Z_c`` in metres of the nearest opaque surface per pixel (``inf`` where
    empty), rasterized exactly as :func:`render_scene` rasterizes at ``supersample=1``.

    Args:
        parts: the :class:`ScenePart` s (or bare meshes); transparent parts are ignored.
        camera: the :class:`~machlib.Camera`; the output has ``camera.image_size``.

    Returns:
        ``(H, W)`` float64 depth.

    Example:
        >>> import numpy as np
        >>> from machlib import Mesh
        >>> from machlib._preview import orbit_camera
        >>> from machlib._scene import depth_map
        >>> tri = Mesh(np.array([[-.1, -.1, 0], [.1, -.1, 0], [0, .1, 0]]), np.array([[0, 1, 2]]),
        ...            np.zeros((3, 2)), np.array([[0, 1, 2]]))
        >>> z = depth_map([tri], orbit_camera(0.0, image_size=(16, 16), distance=0.85, target=(0, 0, 0)))
        >>> round(float(z[8, 8]), 3), bool(np.isinf(z[0, 0]))
        (0.85, True)
    """
    owner = "depth_map"
    if not isinstance(camera, Camera):
        raise TypeError(f"{owner}: camera must be a machlib.Camera, got {type(camera).__name__}")
    if isinstance(parts, (Mesh, ScenePart)) or not isinstance(parts, Sequence):
        raise TypeError(f"{owner}: parts must be a sequence (list) of ScenePart, got {type(parts).__name__}")
    checked = [p for p in (_check_part(p, i, owner) for i, p in enumerate(parts)) if p.alpha >= 1.0 and p.faces.size]
    w, h = camera.image_size
    R = np.asarray(rotation_matrix(np.asarray(camera.rotation, np.float64)), dtype=np.float64)
    t = np.asarray(camera.translation, dtype=np.float64)
    view = _View(R, t, np.asarray(camera.focal, np.float64), np.asarray(camera.principal, np.float64), -R.T @ t,
                 (w, h))
    zbuf = np.full((h, w), np.inf)
    if checked:
        cov, _, _, _, z = _raster(checked, view)
        zbuf[cov] = z
    return zbuf


def turntable_cameras(
    n: int,
    *,
    distance: float,
    target: ColorLike,
    image_size: tuple[int, int],
    fov_degrees: float,
    pitch_degrees: float = 0.0,
) -> list[Camera]:
    """``n`` cameras evenly around the head (yaw ``360° · k / n``, the first facing the face).

    Each is :func:`machlib._preview.orbit_camera` (yaw 0 looks at the face from +z, 90° from the
    subject's left).

    Args:
        n: number of cameras, ``≥ 1``.
        distance: metres from ``target`` to each camera, ``> 0``.
        target: ``(3,)`` point every camera looks at.
        image_size: ``(width, height)`` in pixels.
        fov_degrees: vertical field of view, in ``(0, 180)``.
        pitch_degrees: elevation of the orbit (positive looks down from above), in ``(-90, 90)``.

    Returns:
        A list of ``n`` :class:`~machlib.Camera`.

    Raises:
        InputError: a bad ``n``, ``distance``, ``target``, ``fov_degrees`` or ``pitch_degrees``.
    """
    owner = "turntable_cameras"
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise InputError(f"{owner}: n must be an integer >= 1, got {n!r}")
    if not 0.0 < float(distance) < np.inf:
        raise InputError(f"{owner}: distance must be > 0, got {distance!r}")
    if not 0.0 < float(fov_degrees) < 180.0:
        raise InputError(f"{owner}: fov_degrees must be in (0, 180), got {fov_degrees!r}")
    if not -90.0 < float(pitch_degrees) < 90.0:
        raise InputError(f"{owner}: pitch_degrees must be in (-90, 90), got {pitch_degrees!r}")
    tgt = tuple(_vec(target, (3,), "target", owner).tolist())
    size = tuple(int(v) for v in image_size)
    return [orbit_camera(360.0 * k / int(n), pitch_degrees=float(pitch_degrees), distance=float(distance),
                         target=tgt, image_size=size, fov_degrees=float(fov_degrees)) for k in range(int(n))]


@functools.lru_cache(maxsize=1)
def _lights_raw() -> dict[str, tuple[np.ndarray, tuple[float, float, float]]]:
    def d(direction, color, ambient=(0.0, 0.0, 0.0)):
        return np.asarray(_sh.sh_directional(np.asarray(direction, np.float64), np.asarray(color, np.float64),
                                             ambient=np.asarray(ambient, np.float64)), dtype=np.float64)

    # +x is the subject's left = the viewer's right in a front view; "left" below is the viewer's
    studio = d((-0.55, 0.55, 0.65), (1.0, 0.97, 0.92), (0.16, 0.16, 0.17)) + d((0.7, 0.1, 0.5), (0.18, 0.19, 0.21))
    sunset = d((0.95, 0.12, 0.25), (1.0, 0.6, 0.3), (0.06, 0.05, 0.07)) + d((-0.8, 0.3, 0.4), (0.12, 0.18, 0.32))
    overcast = d((0.0, 1.0, 0.25), (0.6, 0.66, 0.78), (0.3, 0.33, 0.4)) + d((0.0, 0.45, -1.0), (0.3, 0.34, 0.42))
    return {"studio": (studio, (-0.55, 0.55, 0.65)), "sunset": (sunset, (0.95, 0.12, 0.25)),
            "overcast": (overcast, (0.0, 1.0, 0.25))}


def three_sh_lights() -> dict[str, np.ndarray]:
    """Three named SH lighting environments for :func:`render_scene` (``sh=``).

    Built with :func:`machlib.render.sh_directional` (key and fill lights plus a uniform
    ambient term) and scaled so that a white Lambertian surface facing the key light has
    shading 0.9 in its brightest channel. Directions are head space; "left" is the viewer's
    left in a front view (``-x``, the subject's right).

    * ``"studio"``: a soft, slightly warm key from the upper front-left, a weak cool fill from
      the right and a fair ambient.
    * ``"sunset"``: a warm orange key low from the side (the subject's left), a cool blue fill
      from the other side, little ambient.
    * ``"overcast"``: cool sky light from above, a cool rim light from behind and above, and a
      strong cool ambient: soft and shadowless.

    Returns:
        ``{name: (9, 3) float64 coefficients}``.

    Example:
        >>> from machlib._scene import three_sh_lights
        >>> sorted(three_sh_lights()), three_sh_lights()["studio"].shape
        (['overcast', 'studio', 'sunset'], (9, 3))
    """
    out = {}
    for name, (coeffs, key) in _lights_raw().items():
        peak = _sh_shading_np(_unit(np.asarray([key], np.float64)), coeffs)[0].max()
        out[name] = coeffs * (0.9 / peak)  # a fresh array per call: callers may edit it
    return out


# --------------------------------------------------------------------------- contact sheet

# A 5 × 7 bitmap font: seven rows of five bits per glyph (written for this module).
_GLYPHS = {
    "A": "01110 10001 10001 11111 10001 10001 10001", "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110", "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111", "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111", "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110", "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001", "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001", "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110", "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101", "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110", "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110", "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010", "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 01010 00100 00100 00100 00100", "Z": "11111 00001 00010 00100 01000 10000 11111",
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    " ": "00000 00000 00000 00000 00000 00000 00000", ".": "00000 00000 00000 00000 00000 01100 01100",
    ",": "00000 00000 00000 00000 01100 00100 01000", "-": "00000 00000 00000 01110 00000 00000 00000",
    "_": "00000 00000 00000 00000 00000 00000 11111", ":": "00000 01100 01100 00000 01100 01100 00000",
    "/": "00001 00001 00010 00100 01000 10000 10000", "(": "00010 00100 01000 01000 01000 00100 00010",
    ")": "01000 00100 00010 00010 00010 00100 01000", "+": "00000 00100 00100 11111 00100 00100 00000",
    "=": "00000 00000 11111 00000 11111 00000 00000", "?": "01110 10001 00001 00010 00100 00000 00100",
    "!": "00100 00100 00100 00100 00100 00000 00100", "%": "11000 11001 00010 00100 01000 10011 00011",
    "'": "00100 00100 01000 00000 00000 00000 00000", "#": "01010 01010 11111 01010 11111 01010 01010",
    "*": "00000 00100 10101 01110 10101 00100 00000", "°": "01100 10010 10010 01100 00000 00000 00000",
}
_FONT = {ch: np.array([[c == "1" for c in row] for row in rows.split()], bool) for ch, rows in _GLYPHS.items()}


def _text_mask(text: str, scale: int, max_width: int) -> np.ndarray:
    """A boolean ``(7·scale, width)`` mask of ``text`` (upper-cased; unknown characters as ``?``)."""
    glyphs = [_FONT.get(ch, _FONT["?"]) for ch in text.upper()]
    fit = max(0, (max_width // scale + 1) // 6)
    glyphs = glyphs[:fit]
    if not glyphs:
        return np.zeros((7 * scale, 0), bool)
    gap = np.zeros((7, 1), bool)
    row = np.concatenate([np.concatenate([g, gap], 1) for g in glyphs], 1)[:, :-1]
    return np.repeat(np.repeat(row, scale, 0), scale, 1)


def preview_sheet(
    images: Sequence[np.ndarray],
    *,
    columns: int,
    labels: Optional[Sequence[str]] = None,
    pad: int = 4,
    background: ColorLike = (255, 255, 255),
) -> UInt8[np.ndarray, "H W 3"]:
    """Tile renders into a grid over a background, with optional small text labels.

    Each cell is as large as the largest image; images are centred in their cells, RGBA ones
    composited over ``background`` by their alpha. A label is drawn under its image with a
    built-in 5 × 7 bitmap font (capital letters, digits and ``.,-_:/()+=?!%'#*°``; lower case
    is shown in capitals, other characters as ``?``), scaled ×2 for cells at least 256 pixels
    wide and cut to the cell's width, in black or white, whichever contrasts with the background.

    Args:
        images: ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA uint8 images (sizes may differ).
        columns: images per row, ``≥ 1``.
        labels: optional one string per image (``""`` for none).
        pad: pixels between cells and around the sheet, ``≥ 0``.
        background: RGB colour, 3 ints in ``[0, 255]``.

    Returns:
        ``(H, W, 3)`` uint8 RGB.

    Raises:
        InputError: no images, a bad image shape or dtype, labels not one per image, or a bad
            ``columns``, ``pad`` or ``background``.

    Example:
        >>> import numpy as np
        >>> from machlib._scene import preview_sheet
        >>> tiles = [np.zeros((8, 8, 4), np.uint8)] * 3
        >>> preview_sheet(tiles, columns=2, pad=1).shape
        (19, 19, 3)
    """
    owner = "preview_sheet"
    if isinstance(images, np.ndarray) and images.ndim == 3:
        raise InputError(f"{owner}: images must be a sequence of images, got one array of shape {images.shape}")
    imgs = [np.asarray(im) for im in images]
    if not imgs:
        raise InputError(f"{owner}: no images")
    for i, im in enumerate(imgs):
        if im.ndim != 3 or im.shape[2] not in (3, 4) or im.dtype != np.uint8 or min(im.shape[:2]) < 1:
            raise InputError(f"{owner}: images[{i}] must be uint8 (H, W, 3) or (H, W, 4), got {im.dtype} {im.shape}")
    if isinstance(columns, bool) or int(columns) != columns or columns < 1:
        raise InputError(f"{owner}: columns must be an integer >= 1, got {columns!r}")
    if isinstance(pad, bool) or int(pad) != pad or pad < 0:
        raise InputError(f"{owner}: pad must be an integer >= 0, got {pad!r}")
    bgc = _vec(background, (3,), "background", owner)
    if bgc.min() < 0 or bgc.max() > 255:
        raise InputError(f"{owner}: background must be 3 ints in [0, 255], got {bgc.tolist()}")
    if labels is not None:
        if isinstance(labels, str) or len(labels) != len(imgs):
            raise InputError(f"{owner}: labels must be one string per image ({len(imgs)})")
        labels = [str(s) for s in labels]
    cols = min(int(columns), len(imgs))
    rows = -(-len(imgs) // cols)
    pad = int(pad)
    ch = max(im.shape[0] for im in imgs)
    cw = max(im.shape[1] for im in imgs)
    scale = 2 if cw >= 256 else 1
    strip = 7 * scale + 2 * scale + 1 if labels is not None and any(labels) else 0
    H = rows * (ch + strip) + (rows + 1) * pad
    W = cols * cw + (cols + 1) * pad
    sheet = np.empty((H, W, 3), np.float64)
    sheet[:] = bgc
    ink = np.zeros(3) if float(bgc @ _LUMA) > 127 else np.full(3, 255.0)
    for i, im in enumerate(imgs):
        r, c = divmod(i, cols)
        y0, x0 = pad + r * (ch + strip + pad), pad + c * (cw + pad)
        hh, ww = im.shape[:2]
        oy, ox = y0 + (ch - hh) // 2, x0 + (cw - ww) // 2
        rgb = im[..., :3].astype(np.float64)
        if im.shape[2] == 4:
            a = im[..., 3:4].astype(np.float64) / 255.0
            rgb = rgb * a + bgc * (1.0 - a)
        sheet[oy : oy + hh, ox : ox + ww] = rgb
        if strip and labels[i]:
            m = _text_mask(labels[i], scale, cw)
            ty = y0 + ch + scale + 1
            tx = x0 + max(0, (cw - m.shape[1]) // 2)
            region = sheet[ty : ty + m.shape[0], tx : tx + m.shape[1]]
            region[m] = ink
    return (np.clip(sheet, 0, 255) + 0.5).astype(np.uint8)
