"""Procedural hairstyles: :class:`HairStyle`, named presets with tags, :func:`grow_style`, and hair
colour from melanin concentrations (:func:`hair_color`, :data:`HAIR_COLORS`).

A style is a handful of numbers (length, curl, volume, parting, fringe, cut height, gathering)
that define a direction field and an occupancy region in head space; :func:`grow_style` samples
roots on the scalp and grows strands through that field with :func:`~machlib.hair.grow_strands`.
No learned network or hairstyle data set is used. Units are metres, head space (+y up, +z out of
the face; see :doc:`/conventions`).
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import InputError
from ._growth import HeadSDF, _resolve_geometry, _unit, grow_strands, head_sdf_grid, scalp_roots
from .._strands import DEFAULT_HAIR_WIDTH, Strands

__all__ = ["HairStyle", "HAIR_STYLES", "grow_style", "hair_color", "HAIR_COLORS", "find_styles"]

CurlKind = Literal["straight", "wavy", "curly", "coily"]
#: (radius m, period m of arc length, helix 0 = planar wave … 1 = circular helix) per curl type
_CURL = {
    "straight": (0.0, 0.05, 0.0),
    "wavy": (0.008, 0.06, 0.0),
    "curly": (0.010, 0.045, 1.0),
    "coily": (0.003, 0.009, 1.0),
}
#: strands per curl clump (a ringlet or coil that neighbouring strands share) per curl type
_CLUMP = {"curly": 10, "coily": 6}
_CENTER = (0.0, 0.01, -0.01)  # head centre used by the radial (volume) term
_CROWN_Z = -0.03  # z of the vertical axis that hair spreads from on top of the head
_PONY = (0.0, 0.01, -0.125)  # ponytail tie point, behind the head
_BUN = (0.0, 0.115, -0.10)  # bun centre, top-back of the head
_LOW_BUN = (0.0, -0.035, -0.115)  # a low bun's (chignon's) centre, on the nape
_BUN_RADIUS = 0.032
# a swept fringe's heading near its root: sideways weight, change of the downward and forward
# weights, and the extra decay length (m) of that heading (see _StyleField)
_SWEEP = (2.0, -0.2, 0.5, 0.04)


class HairStyle(eqx.Module):
    """A procedural hairstyle: parameters of a direction field and an occupancy region.

    Every field is static, so a style is hashable and can be a dictionary key or a ``jit``
    static argument.

    Attributes:
        name: a short label, e.g. ``"bob"``.
        tags: descriptive words for text matching (a tuple of lower-case strings).
        length: mean strand length in metres; ``0`` means bald (no strands).
        curl: ``"straight"``, ``"wavy"`` (a planar wave), ``"curly"`` (a helix) or ``"coily"`` (a
            tight helix).
        volume: ``≥ 0``, how strongly strands stand away from the head (radial lift; ``1`` for
            an afro).
        gravity: ``≥ 0``, weight of the downward pull.
        parting: ``"none"`` (hair spreads from the crown), ``"center"``, ``"left"`` or
            ``"right"`` (the subject's left is +x).
        bangs: fringe length in metres (front strands fall forward over the forehead); ``0``
            sweeps the front hair back.
        sweep: the side a fringe is swept toward, ``"left"`` or ``"right"`` (the subject's;
            left is +x), its strands running across the forehead and down past the temple on
            that side; ``"none"``: a straight fringe falling forward. No effect without ``bangs``.
        cut_height: strands stop where they would go below this head-space ``y`` (metres); a bob
            cut at the jaw.
        max_radius: strands stop beyond this distance in metres from the head centre (the
            outline of an afro).
        gather: ``"none"``, ``"ponytail"`` (gathered behind the head, then falling), ``"bun"``
            (gathered and wound around a ball on the top-back of the head) or ``"low bun"`` (the
            same knot low on the nape: a chignon).
        length_jitter: relative standard deviation of strand lengths.
        color: a key of :data:`HAIR_COLORS`.
        taper: in ``[0, 1)``, how much shorter the hair on the sides and back is than on top (a
            men's cut): a root's length is scaled by ``1 − taper · (1 − min(n_y / 0.7, 1))``,
            ``n_y`` the upward component of the scalp's normal there (``0``: one length).

    Example:
        >>> from machlib.hair import HAIR_STYLES, HairStyle
        >>> HAIR_STYLES["bob"].length, "short" in HAIR_STYLES["pixie"].tags
        (0.22, True)
        >>> HairStyle("mohawk", ("punk",), 0.08, volume=1.5).curl
        'straight'
    """

    name: str = eqx.field(static=True)
    tags: tuple[str, ...] = eqx.field(static=True)
    length: float = eqx.field(static=True)
    curl: CurlKind = eqx.field(static=True, default="straight")
    volume: float = eqx.field(static=True, default=0.2)
    gravity: float = eqx.field(static=True, default=1.0)
    parting: Literal["none", "center", "left", "right"] = eqx.field(static=True, default="none")
    bangs: float = eqx.field(static=True, default=0.0)
    sweep: Literal["none", "left", "right"] = eqx.field(static=True, default="none")
    cut_height: float = eqx.field(static=True, default=-10.0)
    max_radius: float = eqx.field(static=True, default=10.0)
    gather: Literal["none", "ponytail", "bun", "low bun"] = eqx.field(static=True, default="none")
    length_jitter: float = eqx.field(static=True, default=0.1)
    color: str = eqx.field(static=True, default="brown")
    taper: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        if not isinstance(self.tags, tuple) or not all(isinstance(t, str) for t in self.tags):
            raise InputError(f"HairStyle: tags must be a tuple of strings, got {self.tags!r}")
        if self.curl not in _CURL:
            raise InputError(f"HairStyle: curl must be one of {sorted(_CURL)}, got {self.curl!r}")
        if self.parting not in ("none", "center", "left", "right"):
            raise InputError(f"HairStyle: parting must be none/center/left/right, got {self.parting!r}")
        if self.sweep not in ("none", "left", "right"):
            raise InputError(f"HairStyle: sweep must be none/left/right, got {self.sweep!r}")
        if self.gather not in ("none", "ponytail", "bun", "low bun"):
            raise InputError(f"HairStyle: gather must be none/ponytail/bun/low bun, got {self.gather!r}")
        for k in ("length", "volume", "gravity", "bangs", "length_jitter"):
            v = getattr(self, k)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise InputError(f"HairStyle: {k} must be a finite number >= 0, got {v!r}")
        if not (isinstance(self.taper, (int, float)) and 0.0 <= self.taper < 1.0):
            raise InputError(f"HairStyle: taper must be a number in [0, 1), got {self.taper!r}")
        if self.length_jitter >= 0.5:
            raise InputError(f"HairStyle: length_jitter must be < 0.5, got {self.length_jitter!r}")
        if not self.max_radius > 0:
            raise InputError(f"HairStyle: max_radius must be > 0, got {self.max_radius!r}")
        if self.color not in HAIR_COLORS:
            raise InputError(f"HairStyle: color must be one of {sorted(HAIR_COLORS)}, got {self.color!r}")

    @property
    def bald(self) -> bool:
        """True for a style without hair (``length == 0``)."""
        return self.length == 0


class _StyleField(eqx.Module):
    """The direction field of a style; its parameters are array leaves, so one compiled
    integrator serves every style."""

    volume: Array
    part_x: Array
    part_k: Array
    bangs: Array
    sweep: Array
    pony: Array
    bun: Array
    bun_at: Array
    bun_back: Array

    def __call__(self, p, root, normal, s):
        dtype = p.dtype
        c = jnp.asarray(_CENTER, dtype)
        radial = _unit(p - c)
        lift = self.volume * (0.4 + 1.6 * jnp.exp(-s / 0.03))
        # flow over the scalp, near the root: away from the parting (or the crown's vertical
        # axis), never forward
        # a parting runs from the hairline back to the crown, not on down the back of the head,
        # where hair falls from the crown's whorl (a side parting's pull there split the nape)
        fore = jax.nn.sigmoid((p[2] - _CROWN_Z) / 0.01)
        k = 1.0 + (self.part_k - 1.0) * fore
        h = jnp.stack([k * (p[0] - self.part_x * fore), 0.0 * p[1], jnp.minimum(p[2] - _CROWN_Z, 0.0)])
        flow = 0.8 * jnp.exp(-s / 0.06) * _unit(h)
        # front roots: forward as a fringe, or swept back until behind the forehead
        front = jax.nn.sigmoid((root[2] - 0.03) / 0.006) * jax.nn.sigmoid((root[1] - 0.03) / 0.006)
        # swept back over the skull (strongly enough to beat gravity until behind the crown), so
        # no hairline strand falls onto the face
        back = 2.0 * jax.nn.sigmoid((p[2] + 0.02) / 0.01) * jnp.array([0.0, 0.4, -1.0], dtype)
        # a straight fringe falls forward; a swept one runs across the forehead to one side and
        # keeps that heading for longer, so it reaches the temple before gravity takes over
        swept = jnp.abs(self.sweep)
        ahead = jnp.stack([_SWEEP[0] * self.sweep, -0.4 + _SWEEP[1] * swept, 1.0 - _SWEEP[2] * swept])
        fringe = jnp.where(self.bangs > 0, jnp.exp(-s / (0.03 + _SWEEP[3] * swept)) * ahead, back)
        free = lift * radial + (1 - front) * flow + front * fringe
        # ponytail: pulled toward a tie point behind the head, then falling
        # each strand passes the tie at its own spot of a 1.5 cm disc (from its root's direction),
        # so the tail has a round cross-section instead of collapsing onto one line
        spot = _unit(jnp.stack([root[0] - c[0], root[1] - c[1] - 0.05, 0.0 * p[0]]))
        tie = jnp.asarray(_PONY, dtype) + 0.015 * spot
        tail = jax.nn.sigmoid((tie[2] - p[2]) / 0.003)
        fall = jnp.array([0.0, -1.0, -0.3], dtype) + 0.15 * spot
        pony = (1 - tail) * (3.0 * _unit(tie - p) + back) + tail * fall  # over the skull, not the face
        # bun: pulled toward a ball on the head (top-back, or the nape for a low bun), then
        # wound around it
        b = self.bun_at.astype(dtype)
        axis = _unit(jnp.cross(root - c, b - c) + jnp.array([1e-3, 0.0, 0.0], dtype))
        rel = p - b
        dist = jnp.linalg.norm(rel)
        on_ball = jax.nn.sigmoid((_BUN_RADIUS + 0.01 - dist) / 0.003)
        wind = _unit(jnp.cross(axis, rel)) + 4.0 * (_BUN_RADIUS - dist) / _BUN_RADIUS * _unit(rel)
        # (a low bun's strands go back over the skull first, as a ponytail's: the straight way
        # from the hairline to the nape runs through the head, and collision slid it over the face)
        bun = (1 - on_ball) * (3.0 * _unit(b - p) + self.bun_back * back) + on_ball * 3.0 * wind
        gathered = self.pony * pony + self.bun * bun
        return (1 - self.pony - self.bun) * free + gathered


class _StyleOccupancy(eqx.Module):
    """Positive inside a style's occupancy region (above the cut, within the outline)."""

    cut_height: Array
    max_radius: Array

    def __call__(self, p):
        r = jnp.linalg.norm(p - jnp.asarray(_CENTER, p.dtype))
        return jnp.minimum(p[1] - self.cut_height, self.max_radius - r)


def _field_of(style: HairStyle, dtype) -> tuple[_StyleField, _StyleOccupancy]:
    part_x = {"none": 0.0, "center": 0.0, "left": 0.025, "right": -0.025}[style.parting]
    part_k = 1.0 if style.parting == "none" else 4.0
    a = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    field = _StyleField(
        a(style.volume), a(part_x), a(part_k), a(style.bangs), a({"none": 0.0, "left": 1.0, "right": -1.0}[style.sweep]),
        a(float(style.gather == "ponytail")), a(float(style.gather in ("bun", "low bun"))),
        a(_LOW_BUN if style.gather == "low bun" else _BUN), a(float(style.gather == "low bun")),
    )
    return field, _StyleOccupancy(a(style.cut_height), a(style.max_radius))


def _rgb_of(color, owner: str) -> np.ndarray:
    """Linear RGB ``(3,)`` float32 of a :data:`HAIR_COLORS` name or an RGB triple."""
    if isinstance(color, str):
        if color not in HAIR_COLORS:
            raise InputError(f"{owner}: unknown colour {color!r}; known: {sorted(HAIR_COLORS)}")
        return np.asarray(HAIR_COLORS[color], np.float32)
    rgb = np.asarray(color, np.float32)
    if rgb.shape != (3,):
        raise InputError(f"{owner}: color must be a name or shape (3,), got {rgb.shape}")
    return rgb


_SDF_CACHE: dict = {}  # id(mesh) -> (mesh, HeadSDF); the mesh is kept so its id is not reused


def _cached_sdf(mesh) -> HeadSDF:
    hit = _SDF_CACHE.get(id(mesh))
    if hit is None or hit[0] is not mesh:
        if len(_SDF_CACHE) >= 4:
            _SDF_CACHE.pop(next(iter(_SDF_CACHE)))
        hit = _SDF_CACHE[id(mesh)] = (mesh, head_sdf_grid(mesh))
    return hit[1]


def _clumped_phases(key, roots: np.ndarray, per_clump: int) -> jnp.ndarray:
    """Curl phases shared by clumps of neighbouring roots (each strand: its clump's phase plus a
    little noise). Curls with independent phases average out into frizz; real curls form
    ringlets, locks of strands that turn together."""
    from scipy.spatial import cKDTree

    n = roots.shape[0]
    k = max(1, n // int(per_clump))
    k_c, k_n = jax.random.split(key)
    centre_phase = np.asarray(jax.random.uniform(k_c, (k,), maxval=2.0 * np.pi), np.float64)
    _, nearest = cKDTree(roots[:k]).query(roots)  # roots are random: the first k are random centres
    noise = np.asarray(jax.random.normal(k_n, (n,)), np.float64) * 0.25
    return jnp.asarray(centre_phase[nearest] + noise, jnp.float32)


def _style_lengths(key: PRNGKeyArray, style: HairStyle, roots, geometry, *, template=None) -> Float[Array, " S"]:
    """``(S,)`` the lengths in metres that ``style`` gives the strands from ``roots``
    (:class:`~machlib.hair.ScalpSamples` on ``geometry``), as :func:`grow_style` grows them:
    ``style.length`` times ``1 + j`` (``j`` normal with standard deviation
    ``style.length_jitter``, clipped to two of them: uneven ends); with ``style.taper``, times
    ``1 − taper · (1 − min(n_y / 0.7, 1))`` for the root normal's upward component ``n_y`` (short
    back and sides: the nape and the hair over the ears are the shortest); with ``style.bangs``,
    the front roots' (``z > 0.03``, ``y > 0.03``) at most the fringe's length, jittered alike, and
    a straight fringe's at most its arc down to 4 mm above the brows."""
    mesh, template = _resolve_geometry(geometry, template, "grow_style")
    n = int(np.shape(roots.points)[0])
    # numpy in float32 after the one random draw: the same values as jax.numpy's op-by-op float32
    # arithmetic, without compiling a program per operation for every strand count (about 30 tiny
    # programs per cold ``machlib make``)
    f32 = np.float32
    jitter = np.clip(np.asarray(jax.random.normal(key, (n,)), f32), f32(-2.0), f32(2.0)) * f32(style.length_jitter)
    lengths = f32(style.length) * (f32(1.0) + jitter)
    if style.taper > 0:  # short back and sides, longer on top
        up = np.clip(np.asarray(roots.normals, f32)[:, 1] * (f32(1.0) / f32(0.7)), f32(0.0), f32(1.0))  # as XLA divides
        lengths = lengths * (f32(1.0) - f32(style.taper) * (f32(1.0) - up))
    if style.bangs > 0:
        p = np.asarray(roots.points, f32)
        front = (p[:, 2] > f32(0.03)) & (p[:, 1] > f32(0.03))
        fringe = f32(style.bangs) * (f32(1.0) + jitter)
        brows = _brow_top(mesh, template) if style.sweep == "none" else None
        if brows is not None:
            # a straight fringe ends above the brows on any head (a fixed length hung over the eyes
            # of a head with a low forehead); 1.25: the arc over the forehead's curve
            fringe = np.minimum(fringe, np.maximum(f32(1.25) * (p[:, 1] - f32(brows) - f32(0.004)), f32(0.01)))
        lengths = np.where(front, np.minimum(lengths, fringe), lengths)
    return jnp.asarray(lengths, jnp.float32)


def grow_style(
    key: PRNGKeyArray,
    style: HairStyle,
    geometry,
    *,
    n_strands: int = 10000,
    n_points: int = 64,
    sdf: HeadSDF | None = None,
    color: str | Float[ArrayLike, "3"] | None = None,
    template=None,
    guides: int | None = None,
) -> Strands:
    """Grow a procedural hairstyle on a head.

    Roots are sampled on the scalp (:func:`~machlib.hair.scalp_roots`), strand lengths drawn
    around ``style.length`` (front strands of a style with bangs get the fringe length), and the
    strands grown through the style's direction field with gravity, curl, occupancy stopping and
    collision against the head (:func:`~machlib.hair.grow_strands`).

    Args:
        key: JAX PRNG key; the same key gives the same strands.
        style: the :class:`HairStyle` (e.g. ``HAIR_STYLES["bob"]``).
        geometry: a :class:`~machlib.geometry.Template`, a fitted :class:`~machlib.Mesh` with the
            template topology, or a :class:`~machlib.geometry.GeometryResult`.
        n_strands: number of strands, ``≥ 0``; a bald style gives none.
        n_points: points per strand, ``≥ 2``.
        sdf: the head's :class:`~machlib.hair.HeadSDF`; ``None`` builds one
            (:func:`~machlib.hair.head_sdf_grid`, a few seconds, cached per mesh object).
        color: a :data:`HAIR_COLORS` name or linear RGB; default ``style.color``.
        template: the template whose scalp mask applies to a fitted mesh (default template).
        guides: grow this many guide strands and interpolate the rest
            (see :func:`~machlib.hair.grow_strands`); ``None`` integrates every strand.

    Returns:
        :class:`~machlib.hair.Strands` with ``float32`` numpy points ``(S, n_points, 3)``, one
        colour and the default thickness per strand.

    Raises:
        InputError: bad counts, an unknown colour name or a bad geometry.

    Example:
        >>> import jax
        >>> from machlib.geometry import default_template
        >>> from machlib.hair import HAIR_STYLES, grow_style
        >>> s = grow_style(jax.random.key(0), HAIR_STYLES["pixie"], default_template(),
        ...                n_strands=50, n_points=16)
        >>> s.points.shape
        (50, 16, 3)
        >>> grow_style(jax.random.key(0), HAIR_STYLES["bald"], default_template()).num_strands
        0
    """
    if not isinstance(style, HairStyle):
        raise InputError(f"grow_style: style must be a HairStyle, got {type(style).__name__}")
    for name, v, lo in (("n_strands", n_strands, 0), ("n_points", n_points, 2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise InputError(f"grow_style: {name} must be an int >= {lo}, got {v!r}")
    rgb = _rgb_of(style.color if color is None else color, "grow_style")
    mesh, template = _resolve_geometry(geometry, template, "grow_style")
    n = 0 if style.bald else int(n_strands)
    if n == 0:
        return Strands(np.zeros((0, n_points, 3), np.float32), np.zeros((0, 3), np.float32), np.zeros(0, np.float32))
    k_roots, k_len, k_phase = jax.random.split(key, 3)
    roots = scalp_roots(k_roots, mesh, n, template=template)
    sdf = _cached_sdf(mesh) if sdf is None else sdf
    lengths = _style_lengths(k_len, style, roots, mesh, template=template)
    phases = jax.random.uniform(k_phase, (n,), maxval=2.0 * np.pi)
    radius, period, helix = _CURL[style.curl]
    if helix > 0:
        phases = _clumped_phases(k_phase, np.asarray(roots.points, np.float64), _CLUMP[style.curl])
        # a helix needs about six points per turn; coarser strands would alias it into zigzags
        # and spikes, so their turns are stretched along the strand instead (same radius)
        period = max(period, 6.0 * style.length / max(int(n_points) - 1, 1))
    field, occupancy = _field_of(style, jnp.float32)
    pts = grow_strands(
        roots.points, roots.normals, field, length=lengths, n_points=int(n_points), gravity=style.gravity,
        curl_radius=radius, curl_period=period, curl_helix=helix, phases=phases, sdf=sdf, occupancy=occupancy,
        guides=guides,
    )
    return Strands(
        np.asarray(pts, np.float32), np.broadcast_to(rgb, (n, 3)).copy(), np.full(n, DEFAULT_HAIR_WIDTH, np.float32)
    )


# ---------------------------------------------------------------------------------------------
# Colour


# Chiang et al. 2016: absorption per unit concentration of the two melanins (linear RGB), and
# the factor D(β) of a rough fibre's albedo exp(−D(β)·√σ); shared by hair_color and the fits
# that invert it (machlib.hair._color)
EUMELANIN_ABSORPTION = (0.419, 0.697, 1.37)
PHEOMELANIN_ABSORPTION = (0.187, 0.4, 1.05)


def fibre_d(roughness: float) -> float:
    """``D(β)`` of :func:`hair_color` for a fibre roughness ``β``."""
    b = float(roughness)
    return 5.969 - 0.215 * b + 2.532 * b**2 - 10.73 * b**3 + 5.574 * b**4 + 0.245 * b**5


def hair_color(
    melanin: float | Float[ArrayLike, "..."],
    pheomelanin: float | Float[ArrayLike, "..."],
    *,
    roughness: float = 0.3,
) -> Float[Array, "... 3"]:
    """Linear RGB colour of hair from its melanin concentrations.

    The absorption coefficient of the hair fibre is the sum of the two pigments' spectra,
    ``σ_a = melanin · (0.419, 0.697, 1.37) + pheomelanin · (0.187, 0.4, 1.05)`` (eumelanin, the
    brown-black pigment; pheomelanin, the red-yellow one), and the colour is the single-scattering
    albedo that gives that absorption in a rough fibre, ``exp(−D(β) · √σ_a)`` with
    ``D(β) = 5.969 − 0.215β + 2.532β² − 10.73β³ + 5.574β⁴ + 0.245β⁵`` and ``β`` the roughness
    (the published inversion of Chiang et al. 2016, "A practical and controllable hair and fur
    model for production path tracing"). :data:`HAIR_COLORS` uses melanin 8 for black, 0.6 for
    brown, 0.12 (with 0.05 pheomelanin) for blonde; red hair is 0.7 pheomelanin alone.

    Args:
        melanin: eumelanin concentration, ``≥ 0`` (any shape).
        pheomelanin: pheomelanin concentration, ``≥ 0`` (broadcast with ``melanin``).
        roughness: fibre roughness ``β`` in ``(0, 1]``.

    Returns:
        ``(..., 3)`` linear RGB in ``[0, 1]``. Differentiable in both concentrations.

    Raises:
        InputError: a negative concentration or a roughness outside ``(0, 1]``.

    Example:
        >>> from machlib.hair import hair_color
        >>> [round(float(c), 3) for c in hair_color(0.0, 0.0)]     # no pigment: white
        [1.0, 1.0, 1.0]
        >>> bool((hair_color(8.0, 0.0) < 0.01).all())              # black
        True
    """
    if not 0.0 < float(roughness) <= 1.0:
        raise InputError(f"hair_color: roughness must be in (0, 1], got {roughness!r}")
    mel = jnp.asarray(melanin, jnp.result_type(float))
    phe = jnp.asarray(pheomelanin, mel.dtype)
    for name, v in (("melanin", mel), ("pheomelanin", phe)):
        if not isinstance(v, jax.core.Tracer) and bool(jnp.any(v < 0)):
            raise InputError(f"hair_color: {name} must be >= 0")
    eu = jnp.asarray(EUMELANIN_ABSORPTION, mel.dtype)
    pheo = jnp.asarray(PHEOMELANIN_ABSORPTION, mel.dtype)
    sigma = mel[..., None] * eu + phe[..., None] * pheo
    d = fibre_d(roughness)
    ok = sigma > 0
    root = jnp.where(ok, jnp.sqrt(jnp.where(ok, sigma, 1.0)), 0.0)  # NaN-free gradient at 0
    return jnp.exp(-d * root)


def _natural(mel: float, phe: float = 0.0) -> tuple[float, float, float]:
    # hair_color's formula in numpy (float32, as hair_color computes it): the table is built at
    # import, where a JAX call would start the backend and compile a program per operation
    sigma = np.float32(mel) * np.array(EUMELANIN_ABSORPTION, np.float32) + \
        np.float32(phe) * np.array(PHEOMELANIN_ABSORPTION, np.float32)
    d = fibre_d(0.3)
    rgb = np.exp(np.float32(-d) * np.sqrt(sigma, dtype=np.float32), dtype=np.float32)
    return tuple(round(float(c), 4) for c in rgb)


#: Named hair colours, linear RGB: natural ones from :func:`hair_color`, greys and dyes as RGB.
HAIR_COLORS: dict[str, tuple[float, float, float]] = {
    "black": _natural(8.0),
    "brown": _natural(0.6),
    "blonde": _natural(0.12, 0.05),
    "red": _natural(0.0, 0.7),
    "auburn": _natural(0.4, 0.6),
    "gray": (0.30, 0.30, 0.29),
    "white": (0.78, 0.77, 0.74),
    "green": (0.03, 0.30, 0.06),
    "blue": (0.03, 0.08, 0.45),
    "pink": (0.80, 0.25, 0.42),
    "purple": (0.25, 0.05, 0.42),
}


def _brow_top(mesh, template) -> float | None:
    """Head-space height of the brows' upper edges (the highest of MediaPipe's brow points), or
    None for a template without the dense landmarks."""
    import dataclasses

    from .._facemesh import RIGHT_BROW
    from ..geometry import mirror_permutation

    if template is None or getattr(template, "landmark_uv", None) is None or len(template.landmark_uv) < 468:
        return None
    lm = dataclasses.replace(template, mesh=mesh).landmark_positions()
    upper = np.asarray(RIGHT_BROW[:5])
    idx = np.concatenate([upper, np.asarray(mirror_permutation())[upper]])
    return float(np.max(lm[idx, 1]))


# ---------------------------------------------------------------------------------------------
# Presets


def _presets() -> dict[str, HairStyle]:
    s = [
        HairStyle("bald", ("bald", "shaved", "no hair", "hairless"), 0.0),
        HairStyle("buzz cut", ("buzz", "buzz cut", "crew", "very short", "short", "shaved", "military", "straight"),
                  0.008, volume=0.25, gravity=0.3, length_jitter=0.05, color="black"),
        HairStyle("crop", ("crop", "crop cut", "french crop", "short", "textured", "straight"),
                  0.045, volume=0.08, gravity=0.5, length_jitter=0.15, taper=0.7),
        HairStyle("pixie", ("pixie", "short", "cropped", "fringe", "bangs", "side part", "side swept", "straight"),
                  0.06, volume=0.15, gravity=0.9, parting="left", bangs=0.05, sweep="right", color="blonde", taper=0.5),
        HairStyle("bob", ("bob", "medium", "chin length", "jaw length", "fringe", "bangs", "straight", "rounded"),
                  0.22, volume=0.12, gravity=1.0, bangs=0.07, cut_height=-0.085, length_jitter=0.05),
        HairStyle("long straight", ("long", "straight", "sleek", "center part", "flowing", "loose"),
                  0.40, volume=0.15, gravity=1.0, parting="center", cut_height=-0.40, color="black"),
        HairStyle("long curly", ("long", "curly", "curls", "ringlets", "voluminous", "loose"),
                  0.40, curl="curly", volume=0.35, gravity=0.8, parting="center", color="auburn"),
        HairStyle("wavy", ("medium", "wavy", "waves", "beach waves", "shoulder length", "side part", "loose"),
                  0.28, curl="wavy", volume=0.25, gravity=0.9, parting="right", color="blonde"),
        HairStyle("ponytail", ("ponytail", "tied", "tied back", "pulled back", "long", "updo", "straight"),
                  0.36, volume=0.05, gravity=1.0, gather="ponytail"),
        HairStyle("bun", ("bun", "updo", "tied", "top knot", "pulled back", "elegant"),
                  0.30, volume=0.05, gravity=0.3, gather="bun", color="black"),
        HairStyle("low bun", ("low bun", "chignon", "bun", "tied", "tied back", "pulled back", "updo", "nape",
                              "elegant"),
                  0.30, volume=0.05, gravity=0.3, gather="low bun", color="black"),
        HairStyle("afro", ("afro", "coily", "kinky", "natural", "voluminous", "big", "round", "curly"),
                  0.10, curl="coily", volume=1.0, gravity=0.1, max_radius=0.17, color="black"),
    ]
    return {st.name: st for st in s}


#: The preset library: name → :class:`HairStyle` (bald, buzz cut, crop, pixie, bob, long
#: straight, long curly, wavy, ponytail, bun, low bun, afro).
HAIR_STYLES: dict[str, HairStyle] = _presets()


def find_styles(text: str) -> list[str]:
    """Preset names ranked by how many of their tags occur in ``text`` (best first, ties by name).

    Args:
        text: a free-text description, e.g. ``"short blonde hair with bangs"``.

    Returns:
        Names of :data:`HAIR_STYLES` with at least one matching tag.

    Raises:
        InputError: ``text`` is not a string.

    Example:
        >>> from machlib.hair import find_styles
        >>> find_styles("a big round afro")[0]
        'afro'
    """
    if not isinstance(text, str):
        raise InputError(f"find_styles: text must be a string, got {type(text).__name__}")
    words = f" {' '.join(text.lower().replace(',', ' ').split())} "
    scores = {n: sum(f" {t} " in words for t in st.tags) for n, st in HAIR_STYLES.items()}
    return sorted((n for n, k in scores.items() if k > 0), key=lambda n: (-scores[n], n))
