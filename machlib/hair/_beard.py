"""Beards and moustaches as strands: :class:`BeardStyle`, the presets :data:`BEARD_STYLES`
(stubble, moustache, goatee, short, full), :func:`beard_roots`, :func:`grow_beard` and
:func:`beard_style_for` (the style a ``FaceAttributes.beard`` / ``moustache`` pair asks for).

Facial hair grows from zones of the lower face placed by the head's own landmarks (the
template's MediaPipe landmarks on the fitted mesh: lip line, mouth corners, nose wings, chin,
the sides of the face at the ears), so a fitted head gets a beard that fits it: the
*moustache* between the upper lip and the nose, the
*chin* under the lower lip, the *jaw* from the mouth corners up to sideburns in front of the
ears, and the *neck* under the jaw. The lips and nostrils (the template's UV region masks) are
never covered. Strands are short, grown with :func:`~machlib.hair.grow_strands` through a field
that runs along the face, downward and a little outward, and kept outside the head by its
signed distance. Units are metres, head space (+y up, +z out of the face; see
:doc:`/conventions`).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import InputError
from .._facemesh import LIPS_OUTER
from .._mesh import vertex_normals
from .._strands import DEFAULT_HAIR_WIDTH, Strands
from ._growth import (
    HeadSDF,
    ScalpSamples,
    _resolve_geometry,
    _sample_faces,
    _unit,
    grow_strands,
)

__all__ = ["BEARD_STYLES", "BEARD_ZONES", "BeardStyle", "beard_roots", "beard_style_for", "grow_beard"]

#: The zones of the lower face that facial hair grows from.
BEARD_ZONES: tuple[str, ...] = ("moustache", "chin", "jaw", "neck")


class BeardStyle(eqx.Module):
    """A beard or moustache: the zones it covers, its length and how many strands it has.

    Attributes:
        name: a short label, e.g. ``"goatee"``.
        tags: descriptive words for matching (lower-case strings).
        zones: the :data:`BEARD_ZONES` it covers.
        length: mean strand length in metres, ``> 0``.
        n_strands: strands for a head of the default template's size, ``≥ 1``.
        n_points: points per strand, ``≥ 2``.
        curl: radius in metres of a loose wave (``0``: straight).
        length_jitter: relative standard deviation of strand lengths, in ``[0, 0.5)``.

    Example:
        >>> from machlib.hair import BEARD_STYLES
        >>> BEARD_STYLES["goatee"].zones
        ('moustache', 'chin')
    """

    name: str = eqx.field(static=True)
    tags: tuple[str, ...] = eqx.field(static=True)
    zones: tuple[str, ...] = eqx.field(static=True)
    length: float = eqx.field(static=True)
    n_strands: int = eqx.field(static=True, default=3000)
    n_points: int = eqx.field(static=True, default=8)
    curl: float = eqx.field(static=True, default=0.0)
    length_jitter: float = eqx.field(static=True, default=0.2)

    def __check_init__(self):
        if not self.zones or any(z not in BEARD_ZONES for z in self.zones):
            raise InputError(f"BeardStyle: zones must be a non-empty tuple of {BEARD_ZONES}, got {self.zones!r}")
        if not (np.isfinite(self.length) and self.length > 0):
            raise InputError(f"BeardStyle: length must be > 0, got {self.length!r}")
        if int(self.n_strands) < 1 or int(self.n_points) < 2:
            raise InputError(f"BeardStyle: need n_strands >= 1 and n_points >= 2, got {self.n_strands}, {self.n_points}")
        if not self.curl >= 0 or not 0 <= self.length_jitter < 0.5:
            raise InputError(f"BeardStyle: need curl >= 0 and length_jitter in [0, 0.5), got {self.curl}, "
                             f"{self.length_jitter}")


#: The presets: name → :class:`BeardStyle`.
BEARD_STYLES: dict[str, BeardStyle] = {
    s.name: s for s in (
        BeardStyle("stubble", ("stubble", "unshaven", "five o'clock shadow", "short"), BEARD_ZONES, 0.0025,
                   n_strands=6000, n_points=3, length_jitter=0.3),
        BeardStyle("moustache", ("moustache", "mustache"), ("moustache",), 0.012, n_strands=900, n_points=6),
        BeardStyle("goatee", ("goatee", "chin"), ("moustache", "chin"), 0.02, n_strands=1800, n_points=8,
                   curl=0.001),
        BeardStyle("short", ("short", "trimmed", "neat", "beard"), BEARD_ZONES, 0.009, n_strands=5000, n_points=5),
        BeardStyle("full", ("full", "thick", "bushy", "beard"), BEARD_ZONES, 0.03, n_strands=6000, n_points=8,
                   curl=0.0015),
    )
}


def beard_style_for(beard: str | None, moustache: str | None = None) -> str | None:
    """The :data:`BEARD_STYLES` name that ``FaceAttributes.beard`` and ``.moustache`` ask for.

    ``beard``: ``"stubble"``, ``"goatee"``, ``"short"``, ``"full"`` name their style and
    ``"present"`` (a beard of no stated kind) is ``"full"``; without a beard, a moustache of any
    kind (``present``, ``thin``, ``thick``, ``handlebar``) gives ``"moustache"``. ``None`` or
    ``"none"`` for both: no facial hair.

    Args:
        beard: the ``beard`` attribute (:data:`machlib.text.VOCABULARY`), or None.
        moustache: the ``moustache`` attribute, or None.

    Returns:
        A style name, or None.

    Raises:
        InputError: a value outside the vocabulary.

    Example:
        >>> from machlib.hair import beard_style_for
        >>> beard_style_for("present"), beard_style_for(None, "thick"), beard_style_for("none")
        ('full', 'moustache', None)
    """
    beards = {None: None, "none": None, "present": "full", "stubble": "stubble", "goatee": "goatee",
              "short": "short", "full": "full"}
    if beard not in beards:
        raise InputError(f"beard_style_for: unknown beard {beard!r}; known: {sorted(k for k in beards if k)}")
    if moustache not in (None, "none", "present", "thin", "thick", "handlebar"):
        raise InputError(f"beard_style_for: unknown moustache {moustache!r}")
    style = beards[beard]
    if style is None and moustache not in (None, "none"):
        return "moustache"
    return style


class _Face(NamedTuple):
    """What the zones need of a head's landmarks (MediaPipe indices), head space."""

    scale: float
    lip_line: np.ndarray  # (K, 2) x, y of the lips' contact line, x ascending
    mouth_corners: np.ndarray  # (2, 3)
    alae: np.ndarray  # (2, 3) nose wings
    chin: np.ndarray  # (3,)
    jaw_pivot: np.ndarray  # (3,) between the ears (its z: the ears' depth)
    lower_lip: np.ndarray  # (K, 2) x, y of the lower lip's outer edge, x ascending


_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
_LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
_LOWER_OUTER = LIPS_OUTER[10:] + LIPS_OUTER[:1]  # the outer lip contour's lower half, corner to corner


def _landmarks(mesh, template) -> np.ndarray:
    import dataclasses

    return np.asarray(dataclasses.replace(template, mesh=mesh).landmark_positions(), np.float64)


def _frame_of(mesh, template) -> _Face:
    from ..geometry import default_template

    lm = _landmarks(mesh, template)
    if lm.shape[0] < 468:
        raise InputError(f"beard zones need MediaPipe's 468 (or 478) landmarks on the template, got {lm.shape[0]}")
    ref = _landmarks(default_template().mesh, default_template())
    scale = float(np.linalg.norm(lm[33] - lm[263]) / max(np.linalg.norm(ref[33] - ref[263]), 1e-9))
    line = 0.5 * (lm[list(_UPPER_INNER)] + lm[list(_LOWER_INNER)])[:, :2]
    line = line[np.argsort(line[:, 0])]
    sides = lm[[234, 454]].mean(0)
    lower = lm[list(_LOWER_OUTER)][:, :2]
    return _Face(scale, line, lm[[61, 291]], lm[[98, 327]], lm[152], sides, lower[np.argsort(lower[:, 0])])


def _zone_mask(p: np.ndarray, frame, zone: str) -> np.ndarray:
    """Which of the ``(N, 3)`` points lie in a zone (before the lips and nostrils are removed)."""
    s = float(frame.scale)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ax = np.abs(x)
    line = np.asarray(frame.lip_line, np.float64)
    lip_y = np.interp(x, line[:, 0], line[:, 1])
    corner_x = float(np.abs(np.asarray(frame.mouth_corners)[:, 0]).max())
    corner_y = float(np.asarray(frame.mouth_corners)[:, 1].mean())
    nose_y = float(np.asarray(frame.alae)[:, 1].mean())
    chin = np.asarray(frame.chin, np.float64)
    jaw_z = float(np.asarray(frame.jaw_pivot)[2])
    front = z > jaw_z - 0.005 * s
    if zone == "moustache":
        return (ax < corner_x + 0.006 * s) & (y > lip_y) & (y < nose_y - 0.003 * s) & (z > chin[2] - 0.01 * s)
    if zone == "chin":
        # below the lower lip's outer edge (the lips' contact line alone let roots onto a full
        # lower lip once the landmark table bound the inner lips to their own lips, 21f2881)
        below = np.interp(x, frame.lower_lip[:, 0], frame.lower_lip[:, 1]) - 0.002 * s
        return (ax < 0.022 * s) & (y < np.minimum(lip_y - 0.004 * s, below)) & (y > chin[1] - 0.012 * s) \
            & (z > chin[2] - 0.04 * s)
    if zone == "jaw":
        # from the mouth corners' level beside the mouth up to sideburns in front of the ears
        t = np.clip((ax - corner_x) / (0.07 * s - corner_x), 0.0, 1.0)
        top = (1.0 - t) * (corner_y + 0.012 * s) + t * (-0.012 * s)
        return front & (ax > 0.012 * s) & (y < top) & (y > chin[1] - 0.01 * s)
    if zone == "neck":
        return front & (z > 0.0) & (y <= chin[1] + 0.01 * s) & (y > chin[1] - 0.045 * s) & (ax < 0.055 * s)
    raise InputError(f"beard zone must be one of {BEARD_ZONES}, got {zone!r}")


def _zone_faces(mesh, template, zones) -> np.ndarray:
    """Per-face sampling weight: 3D area of the faces whose centroid lies in one of ``zones`` and
    not on the lips or nostrils."""
    from ..geometry import decode

    v = np.asarray(mesh.vertices, np.float64)
    f = np.asarray(mesh.faces)
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    centroid = tri.mean(1)
    frame = _frame_of(mesh, template)
    inside = np.zeros(len(f), bool)
    for zone in zones:
        inside |= _zone_mask(centroid, frame, zone)
    # never in or on the mouth: a box around the lips' contact line between the mouth corners
    # (the lip mask below misses the lips' inner surfaces)
    lip_y = np.interp(centroid[:, 0], frame.lip_line[:, 0], frame.lip_line[:, 1])
    corner_x = float(np.abs(frame.mouth_corners[:, 0]).max())
    s = float(frame.scale)
    inside &= ~((np.abs(centroid[:, 0]) < corner_x + 0.002 * s) & (centroid[:, 1] > lip_y - 0.007 * s)
                & (centroid[:, 1] < lip_y + 0.005 * s))
    uv = jnp.asarray(np.asarray(mesh.uv, np.float64)[np.asarray(mesh.faces_uv)].mean(1), jnp.float32)
    for region in ("lips", "nostrils", "eyes"):
        if region in template.regions:
            m = np.asarray(decode(jnp.asarray(template.regions[region], jnp.float32)[..., None], uv))[:, 0]
            inside &= m < 0.3
    return np.where(inside, area, 0.0)


def beard_roots(
    key: PRNGKeyArray,
    geometry,
    n: int,
    *,
    zones: tuple[str, ...] = BEARD_ZONES,
    template=None,
) -> ScalpSamples:
    """Sample ``n`` facial-hair roots uniformly by area on zones of the lower face.

    The zones (:data:`BEARD_ZONES`) are placed by the head's landmarks (see the module
    docstring); the lips, nostrils and eyes are excluded. Roots lie exactly on the mesh
    (barycentric points of its faces, as :func:`~machlib.hair.scalp_roots`).

    Args:
        key: JAX PRNG key; the same key gives the same roots.
        geometry: a :class:`~machlib.geometry.Template`, a fitted :class:`~machlib.Mesh` with
            the template's topology, or a result with a ``.mesh``.
        n: number of roots, ``≥ 0``.
        zones: the zones to sample.
        template: the template whose landmarks and regions apply to a fitted mesh (default
            template).

    Returns:
        :class:`~machlib.hair.ScalpSamples` (points, normals, uv).

    Raises:
        InputError: a bad ``n`` or zone, a mesh with another topology, or no face in the zones.

    Example:
        >>> import jax
        >>> from machlib.geometry import default_template
        >>> from machlib.hair import beard_roots
        >>> r = beard_roots(jax.random.key(0), default_template(), 50, zones=("chin",))
        >>> r.points.shape, bool((r.points[:, 1] < -0.06).all())     # below the mouth
        ((50, 3), True)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"beard_roots: n must be an int >= 0, got {n!r}")
    if isinstance(zones, str) or not zones or any(z not in BEARD_ZONES for z in zones):
        raise InputError(f"beard_roots: zones must be a non-empty tuple of {BEARD_ZONES}, got {zones!r}")
    mesh, template = _resolve_geometry(geometry, template, "beard_roots")
    weights = _zone_faces(mesh, template, tuple(zones))
    if weights.sum() <= 0:
        raise InputError(f"beard_roots: no mesh face lies in the zones {zones}")
    v = jnp.asarray(mesh.vertices, jnp.float32)
    f = jnp.asarray(mesh.faces, jnp.int32)
    return _sample_faces(key, v, vertex_normals(v, f), f, jnp.asarray(mesh.uv, jnp.float32),
                         jnp.asarray(mesh.faces_uv, jnp.int32), jnp.asarray(weights / weights.sum(), jnp.float32),
                         int(n))


class _BeardField(eqx.Module):
    """Facial hair's direction: along the face, downward, a little outward; above the lip line
    (the moustache) also sideways, away from the philtrum towards the mouth corners."""

    out: Array
    lip_y: Array

    def __call__(self, p, root, normal, s):
        dt = p.dtype
        above = jax.nn.sigmoid((root[1] - self.lip_y) / 0.002)
        side = 0.8 * above * jnp.tanh(root[0] / 0.004) * jnp.array([1.0, 0.0, 0.0], dt)
        want = jnp.array([0.0, -1.0, 0.0], dt) + side
        along = _unit(want - jnp.sum(want * normal) * normal)  # in the skin's tangent plane
        return along + self.out * normal


#: longest moustache strand in metres: a full beard's moustache still leaves the lips free
_MOUSTACHE_MAX = 0.012


def grow_beard(
    key: PRNGKeyArray,
    style: BeardStyle | str,
    geometry,
    *,
    n_strands: int | None = None,
    n_points: int | None = None,
    sdf: HeadSDF | None = None,
    color: str | Float[ArrayLike, "3"] = "brown",
    template=None,
) -> Strands:
    """Grow a beard or moustache on a head.

    Roots are sampled on the style's zones (:func:`beard_roots`), lengths drawn around
    ``style.length`` (moustache strands at most 12 mm, so the lips stay free), and the strands
    grown with :func:`~machlib.hair.grow_strands` through a field that runs down the face's
    tangent plane and slightly outward (facial hair lies on the skin and points down; a
    moustache is combed from the philtrum towards the mouth corners), with a light gravity, an optional loose wave (``style.curl``), and
    collision against the head (0.5 mm clearance) so no strand enters the face.

    Args:
        key: JAX PRNG key; the same key gives the same beard.
        style: a :class:`BeardStyle` or a :data:`BEARD_STYLES` name.
        geometry: a :class:`~machlib.geometry.Template`, a fitted :class:`~machlib.Mesh` with the
            template topology, or a result with a ``.mesh``.
        n_strands: number of strands (default ``style.n_strands``).
        n_points: points per strand (default ``style.n_points``).
        sdf: the head's :class:`~machlib.hair.HeadSDF` (``None``: built and cached per mesh).
        color: a :data:`~machlib.hair.HAIR_COLORS` name or linear RGB ``(3,)``.
        template: the template whose landmarks and regions apply to a fitted mesh.

    Returns:
        :class:`~machlib.hair.Strands`, float32 points ``(S, n_points, 3)``, one colour.

    Raises:
        InputError: an unknown style or colour, bad counts or a bad geometry.

    Example:
        >>> import jax
        >>> from machlib.geometry import default_template
        >>> from machlib.hair import grow_beard
        >>> b = grow_beard(jax.random.key(0), "moustache", default_template(), n_strands=20)
        >>> b.points.shape
        (20, 6, 3)
    """
    from ._styles import _cached_sdf, _rgb_of

    if isinstance(style, str):
        if style not in BEARD_STYLES:
            raise InputError(f"grow_beard: unknown style {style!r}; known: {sorted(BEARD_STYLES)}")
        style = BEARD_STYLES[style]
    if not isinstance(style, BeardStyle):
        raise InputError(f"grow_beard: style must be a BeardStyle or a name, got {type(style).__name__}")
    n = style.n_strands if n_strands is None else n_strands
    p = style.n_points if n_points is None else n_points
    for name, val, lo in (("n_strands", n, 0), ("n_points", p, 2)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < lo:
            raise InputError(f"grow_beard: {name} must be an int >= {lo}, got {val!r}")
    rgb = _rgb_of(color, "grow_beard")
    mesh, template = _resolve_geometry(geometry, template, "grow_beard")
    if n == 0:
        return Strands(np.zeros((0, p, 3), np.float32), np.zeros((0, 3), np.float32), np.zeros(0, np.float32))
    k_roots, k_len, k_phase = jax.random.split(key, 3)
    roots = beard_roots(k_roots, mesh, int(n), zones=style.zones, template=template)
    sdf = _cached_sdf(mesh) if sdf is None else sdf
    jitter = jnp.clip(jax.random.normal(k_len, (int(n),)), -2.0, 2.0) * style.length_jitter
    lengths = style.length * (1.0 + jitter)
    face = _frame_of(mesh, template)
    on_lip = _zone_mask(np.asarray(roots.points, np.float64), face, "moustache")
    lengths = jnp.where(jnp.asarray(on_lip), jnp.minimum(lengths, _MOUSTACHE_MAX * (1.0 + jitter)), lengths)
    phases = jax.random.uniform(k_phase, (int(n),), maxval=2.0 * np.pi)
    lip_y = float(np.interp(0.0, face.lip_line[:, 0], face.lip_line[:, 1]))
    field = _BeardField(jnp.asarray(0.35, jnp.float32), jnp.asarray(lip_y, jnp.float32))
    pts = grow_strands(
        roots.points, roots.normals, field, length=lengths, n_points=int(p),
        gravity=0.3, curl_radius=float(style.curl), curl_period=0.012, curl_helix=0.5, phases=phases, sdf=sdf,
        clearance=0.0005,
    )
    return Strands(np.asarray(pts, np.float32), np.broadcast_to(rgb, (int(n), 3)).copy(),
                   np.full(int(n), DEFAULT_HAIR_WIDTH, np.float32))
