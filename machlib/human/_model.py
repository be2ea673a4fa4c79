"""The parametric human in pure JAX: base mesh + macro modifiers + local modifiers + facial actions.

``points = base + Σ_t w_t(phenotype) · D_t + Σ_m a_m(modifiers) · M_m + Σ_k e_k · U_k``, then
moved into head space (the midpoint of the eyeballs at :data:`EYE_ANCHOR`).

* **Macro weights** ``w_t`` reproduce MakeHuman's interpolation: each macro variable (gender,
  age, muscle, weight, height, proportions, cup size, firmness) is a value in ``[0, 1]`` and puts
  piecewise-linear "hat" weights on its anchors (age: baby 0, child 0.1875, young 0.5, old 1;
  the others at 0, 0.5, 1); the race values (African, Asian, Caucasian) are normalised to sum to
  one. A combination target such as ``universal-female-young-maxmuscle-averageweight`` gets the
  product of its categories' weights.
* **Local modifiers** are MakeHuman's sliders: a two-sided slider's value ``a ∈ [−1, 1]`` puts
  weight ``max(−a, 0)`` on its ``decr`` target and ``max(a, 0)`` on its ``incr`` target; a
  single-target slider takes ``a ∈ [0, 1]``.
* **Facial actions** are the 52 ARKit targets, weights in ``[0, 1]``.

A :class:`HumanModel` holds the targets for a chosen set of *points*: mesh vertices (the whole
body, or the head's), or fixed linear combinations of them such as the 478 landmarks on their
triangles. Every function is pure: jit, vmap and grad apply.
"""

from __future__ import annotations

import numpy as np
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._device import to_device
from .._errors import InputError
from ._data import MACRO_VARIABLES, HumanData, SparseTargets, load_human_data

__all__ = [
    "PHENOTYPE_NAMES",
    "EYE_ANCHOR",
    "HumanModel",
    "HumanParams",
    "build_model",
    "check_modifiers",
    "default_phenotype",
    "human_points",
    "macro_weights",
    "modifier_weights",
    "phenotype",
    "symmetric_sliders",
    "symmetrize_points",
]

#: Names of the entries of a phenotype vector, in order.
PHENOTYPE_NAMES = tuple(MACRO_VARIABLES) + ("african", "asian", "caucasian")

#: Head-space position (metres) of the midpoint between the two eyeball centres: the human is
#: translated so that this point is fixed whatever its shape (the origin is then near the centre
#: of the head, as for every machlib template).
EYE_ANCHOR = (0.0, 0.004, 0.070)

_DENSE_MAX_POINTS = 2048  # targets over at most this many points are stored dense
_ANCHORS = tuple(tuple(x for _, x in a) for a in MACRO_VARIABLES.values())
_MAX_ANCHORS = max(len(a) for a in _ANCHORS)


def default_phenotype(*, dtype=jnp.float32) -> Float[Array, "11"]:
    """MakeHuman's default human: every macro variable 0.5, races 1/3 each (``(11,)``)."""
    return to_device(np.array([0.5] * len(MACRO_VARIABLES) + [1 / 3] * 3), dtype)


def phenotype(**values: float) -> Float[Array, "11"]:
    """A phenotype vector from named values; unnamed entries keep MakeHuman's defaults.

    Args:
        **values: any of :data:`PHENOTYPE_NAMES` (``gender=0`` female … ``1`` male; ``age=0``
            1 year, ``0.1875`` 11 years, ``0.5`` 25 years, ``1`` 90 years; ``muscle``, ``weight``,
            ``height``, ``proportions``, ``cupsize``, ``firmness`` in ``[0, 1]``; ``african``,
            ``asian``, ``caucasian`` ≥ 0, normalised to sum 1 by the model).

    Returns:
        ``(11,)`` float32.

    Raises:
        InputError: an unknown name or a value out of range.

    Example:
        >>> from machlib.human import phenotype
        >>> phenotype(gender=1.0, age=0.7).tolist()[:2]
        [1.0, 0.699999988079071]
    """
    out = np.asarray(default_phenotype(), np.float64)
    for name, value in values.items():
        if name not in PHENOTYPE_NAMES:
            raise InputError(f"phenotype: unknown variable {name!r} (known: {', '.join(PHENOTYPE_NAMES)})")
        out[PHENOTYPE_NAMES.index(name)] = float(value)
    _check_phenotype("phenotype", out)
    return jnp.asarray(out, jnp.float32)


def _check_phenotype(fn: str, p: np.ndarray) -> None:
    if p.shape != (len(PHENOTYPE_NAMES),):
        raise InputError(f"{fn}: phenotype must have shape ({len(PHENOTYPE_NAMES)},), got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise InputError(f"{fn}: phenotype has non-finite values")
    for name, v in zip(PHENOTYPE_NAMES[: len(MACRO_VARIABLES)], p):
        if not 0.0 <= v <= 1.0:
            raise InputError(f"{fn}: {name} = {v:g} is outside [0, 1]")
    race = p[len(MACRO_VARIABLES):]
    if np.any(race < 0) or race.sum() <= 0:
        raise InputError(f"{fn}: race values {race.tolist()} must be >= 0 with a positive sum")


def _hat_weights(x: Array, anchors: tuple) -> Array:
    """``(_MAX_ANCHORS,)`` piecewise-linear interpolation weights of ``x`` on ``anchors``
    (padded with zeros). Values outside the anchors' range are clamped.

    The same arithmetic as ``jnp.interp(x, anchors, row)`` for each row of the identity (values
    and gradients bit for bit), without its ``searchsorted`` loop: the segment is found by
    counting the anchors ``<= x``. Nine loops fewer in every program that evaluates the human
    (about a tenth of a cold fit's compile time)."""
    n = len(anchors)
    a = jnp.asarray(anchors, x.dtype)
    i = jnp.clip(jnp.sum((a <= x).astype(jnp.int32)), 1, n - 1)  # searchsorted(a, x, "right")
    k = jnp.arange(n)
    lo = (k == i - 1).astype(x.dtype)  # fp[i - 1] of each identity row
    df = (k == i).astype(x.dtype) - lo  # fp[i] - fp[i - 1]
    w = lo + ((x - a[i - 1]) / (a[i] - a[i - 1])) * df
    w = jnp.where(x < a[0], (k == 0).astype(x.dtype), w)
    w = jnp.where(x > a[-1], (k == n - 1).astype(x.dtype), w)
    return jnp.pad(w, (0, _MAX_ANCHORS - n))


@jax.jit
def macro_weights(phenotype: Float[ArrayLike, "11"], categories: ArrayLike) -> Float[Array, "T"]:
    """Weights of the macro targets for a phenotype (MakeHuman's interpolation, pure JAX).

    Args:
        phenotype: ``(11,)`` values, :data:`PHENOTYPE_NAMES` order.
        categories: ``(T, 9)`` int per target and variable (then race): the anchor index the
            target's name selects, or ``-1`` (see :attr:`machlib.human.HumanData.macro_categories`).

    Returns:
        ``(T,)`` weights (each a product of hat weights; race weights normalised to sum 1).

    Example:
        >>> import numpy as np
        >>> from machlib.human import default_phenotype, macro_weights
        >>> cats = np.array([[0, 2, -1, -1, -1, -1, -1, -1, 0]])  # african-female-young
        >>> round(float(macro_weights(default_phenotype(), cats)[0]), 4)  # 0.5 female · 1/3
        0.1667
    """
    p = jnp.asarray(phenotype)
    cats = jnp.asarray(categories)
    nvar = len(MACRO_VARIABLES)
    table = jnp.stack([_hat_weights(p[i], _ANCHORS[i]) for i in range(nvar)])  # (nvar, A)
    race = p[nvar:]
    race = race / jnp.maximum(jnp.sum(race), jnp.finfo(p.dtype).tiny)
    table = jnp.concatenate([table, jnp.pad(race, (0, _MAX_ANCHORS - 3))[None]], 0)  # (nvar+1, A)
    rows = jnp.arange(nvar + 1)[None, :]
    picked = table[rows, jnp.maximum(cats, 0)]  # (T, nvar+1)
    return jnp.prod(jnp.where(cats >= 0, picked, 1.0), axis=1)


def modifier_weights(values: Float[ArrayLike, "M"]) -> Float[Array, "2*M"]:
    """Target weights of slider values: ``[max(−a, 0) …, max(a, 0) …]`` (negative targets first).

    Single-target sliders have no negative target; their negative weight multiplies an empty
    target, so the same formula serves both kinds.
    """
    a = jnp.asarray(values)
    return jnp.concatenate([jnp.maximum(-a, 0.0), jnp.maximum(a, 0.0)])


class _Blend(eqx.Module):
    """Targets over ``n`` points: ``out = Σ_t w_t · D_t``.

    Stored dense, ``(T', n, 3)`` for the ``T'`` targets that move the points (``active``), for a
    few thousand points at most (a contraction is the fastest evaluation, e.g. for the 478
    landmarks), otherwise as a coordinate list (``out[point[i]] += w[target[i]] · offset[i]``).
    """

    target: Array | None
    point: Array | None
    offset: Array | None
    dense: Array | None
    num_points: int = eqx.field(static=True)
    active: Array | None = None

    def apply(self, weights: Array) -> Array:
        if self.dense is not None:
            # dense rows only for the targets that move these points (``active``)
            return jnp.einsum("t,tnc->nc", weights[self.active], self.dense.astype(weights.dtype))
        contrib = weights[self.target][:, None] * self.offset.astype(weights.dtype)
        return jax.ops.segment_sum(contrib, self.point, num_segments=self.num_points)


class HumanModel(eqx.Module):
    """The human's targets evaluated on a fixed set of points (a pytree of arrays).

    Build it with :func:`build_model`; evaluate it with :func:`human_points`.

    Attributes:
        base: ``(n, 3)`` base positions of the points, metres (MakeHuman frame).
        anchor_base: ``(3,)`` base position of the eyes' midpoint.
        macro: the macro targets on the points (and the anchor, as point ``n``).
        modifiers: the local modifiers' targets (negative halves then positive halves).
        units: the 52 facial-action targets.
        macro_categories: ``(T, 9)`` int32 (see :func:`macro_weights`).
        modifier_names: names of the sliders (``M``), static.
        modifier_minimum: ``(M,)`` lowest value of each slider (−1 or 0).
        unit_names: the 52 ARKit names, static.
    """

    base: Float[Array, "n 3"]
    anchor_base: Float[Array, "3"]
    macro: _Blend
    modifiers: _Blend
    units: _Blend
    modifier_minimum: Float[Array, "M"]
    macro_categories: Array
    modifier_names: tuple = eqx.field(static=True)
    unit_names: tuple = eqx.field(static=True)

    @property
    def num_points(self) -> int:
        """Number of points ``n``."""
        return int(self.base.shape[0])


class HumanParams(eqx.Module):
    """Parameters of one human (a pytree; checked on construction when concrete).

    Attributes:
        phenotype: ``(11,)`` macro values, :data:`PHENOTYPE_NAMES` order, each in ``[0, 1]``
            (races ≥ 0).
        modifiers: ``(M,)`` slider values in ``[minimum, 1]`` (see
            :attr:`HumanModel.modifier_minimum`).
        expression: ``(U,)`` facial-action weights in ``[0, 1]`` (``U = 52`` ARKit actions, in the
            order of :attr:`HumanModel.unit_names`).
    """

    phenotype: Float[ArrayLike, "11"]
    modifiers: Float[ArrayLike, "M"]
    expression: Float[ArrayLike, "U"]

    def __check_init__(self):
        try:
            p = np.asarray(self.phenotype, np.float64)
            m = np.asarray(self.modifiers, np.float64)
            e = np.asarray(self.expression, np.float64)
        except (TypeError, jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
            return  # traced: checked by whoever built the concrete values
        if p.ndim != 1 or m.ndim != 1 or e.ndim != 1:
            return  # batched (vmap over a stack of checked params)
        _check_phenotype("HumanParams", p)
        if not np.all(np.isfinite(m)) or np.any(np.abs(m) > 1.0):
            raise InputError(f"HumanParams: modifier values must be finite and in [-1, 1], got max |a| = {np.abs(m).max():g}")
        if not np.all(np.isfinite(e)) or np.any(e < 0) or np.any(e > 1):
            raise InputError("HumanParams: expression weights must be in [0, 1]")

    @classmethod
    def neutral(cls, model: HumanModel, *, dtype=jnp.float32) -> "HumanParams":
        """MakeHuman's default human, every slider at zero, a neutral face."""
        return cls(default_phenotype(dtype=dtype), to_device(np.zeros(len(model.modifier_names)), dtype),
                   to_device(np.zeros(len(model.unit_names)), dtype))


def check_modifiers(model: HumanModel, values) -> None:
    """Raise :class:`~machlib.InputError` naming the first slider outside its range."""
    v = np.asarray(values, np.float64)
    if v.shape != (len(model.modifier_names),):
        raise InputError(f"check_modifiers: expected {len(model.modifier_names)} values, got shape {v.shape}")
    lo = np.asarray(model.modifier_minimum)
    bad = np.flatnonzero(~((v >= lo - 1e-9) & (v <= 1.0 + 1e-9)))
    if len(bad):
        i = int(bad[0])
        raise InputError(f"modifier {model.modifier_names[i]} = {v[i]:g} is outside [{lo[i]:g}, 1]")


@jax.jit
def human_points(model: HumanModel, params: HumanParams) -> Float[Array, "n 3"]:
    """Evaluate the human at its points, in head space (pure JAX; jit/vmap/grad).

    Args:
        model: a :class:`HumanModel` (e.g. :func:`build_model` over the head's vertices).
        params: the :class:`HumanParams`.

    Returns:
        ``(n, 3)`` positions in metres, head space (:doc:`/conventions`): the eyes' midpoint at
        :data:`EYE_ANCHOR`.

    Example:
        >>> from machlib.human import HumanParams, build_model, human_points, phenotype
        >>> model = build_model(points="landmarks")
        >>> neutral = HumanParams.neutral(model)
        >>> old = HumanParams(phenotype(age=1.0), neutral.modifiers, neutral.expression)
        >>> human_points(model, old).shape
        (478, 3)
    """
    dtype = jnp.result_type(params.phenotype, jnp.float32)
    w = macro_weights(params.phenotype, model.macro_categories).astype(dtype)
    m = modifier_weights(params.modifiers).astype(dtype)
    e = jnp.asarray(params.expression, dtype)
    full = jnp.concatenate([model.base, model.anchor_base[None]], 0).astype(dtype)
    full = full + model.macro.apply(w) + model.modifiers.apply(m) + model.units.apply(e)
    return full[:-1] - full[-1] + jnp.asarray(EYE_ANCHOR, dtype)


def _human_points_np(model: HumanModel, params: HumanParams) -> np.ndarray:
    """:func:`human_points` in float64 numpy for one concrete human: for one-shot evaluations
    (building the template, reports), where compiling ``human_points`` for the model's shapes
    costs far more than the evaluation. Returns ``(n, 3)`` float64."""
    p = np.asarray(params.phenotype, np.float64)
    cats = np.asarray(model.macro_categories)
    nvar = len(MACRO_VARIABLES)
    table = np.zeros((nvar + 1, _MAX_ANCHORS))
    for i, anchors in enumerate(_ANCHORS[:nvar]):
        a = np.asarray(anchors, np.float64)
        table[i, : len(a)] = [np.interp(p[i], a, row) for row in np.eye(len(a))]
    race = p[nvar:]
    table[nvar, :3] = race / max(race.sum(), np.finfo(np.float64).tiny)
    picked = table[np.arange(nvar + 1)[None, :], np.maximum(cats, 0)]
    w = np.prod(np.where(cats >= 0, picked, 1.0), axis=1)
    a = np.asarray(params.modifiers, np.float64)
    m = np.concatenate([np.maximum(-a, 0.0), np.maximum(a, 0.0)])
    e = np.asarray(params.expression, np.float64)
    full = np.concatenate([np.asarray(model.base, np.float64), np.asarray(model.anchor_base, np.float64)[None]], 0)
    for blend, weights in ((model.macro, w), (model.modifiers, m), (model.units, e)):
        if blend.dense is not None:
            full += np.einsum("t,tnc->nc", weights[np.asarray(blend.active)], np.asarray(blend.dense, np.float64))
        else:
            contrib = weights[np.asarray(blend.target)][:, None] * np.asarray(blend.offset, np.float64)
            point = np.asarray(blend.point)
            for k in range(3):
                full[:, k] += np.bincount(point, contrib[:, k], minlength=blend.num_points)
    return full[:-1] - full[-1] + np.asarray(EYE_ANCHOR)


# ------------------------------------------------------------------------------ building


def _operator(points, data: HumanData):
    """``(n, N)`` scipy CSR matrix of the points as combinations of mesh vertices."""
    import scipy.sparse as sp

    N = data.num_vertices
    if isinstance(points, sp.spmatrix) or sp.issparse(points):
        op = sp.csr_matrix(points)
    else:
        idx = np.asarray(points, np.int64)
        if idx.ndim != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= N)):
            raise InputError(f"build_model: vertex indices must be a 1-D array in 0..{N - 1}")
        op = sp.csr_matrix((np.ones(len(idx)), (np.arange(len(idx)), idx)), shape=(len(idx), N))
    if op.shape[1] != N:
        raise InputError(f"build_model: the point operator has {op.shape[1]} columns, the mesh {N} vertices")
    return op


def _eye_anchor_row(data: HumanData):
    import scipy.sparse as sp

    eyes = data.group_vertices("helper-l-eye", "helper-r-eye")
    return sp.csr_matrix((np.full(len(eyes), 1.0 / len(eyes)), (np.zeros(len(eyes), int), eyes)),
                         shape=(1, data.num_vertices))


def _blend(targets: SparseTargets, op, num_targets: int | None = None) -> _Blend:
    """The targets pushed through the point operator (``op`` includes the anchor row)."""
    import scipy.sparse as sp

    T = len(targets.names) if num_targets is None else num_targets
    N = op.shape[1]
    used = np.zeros(N, bool)
    used[op.indices] = True
    keep = used[targets.vertex]  # only the vertices the points are made of
    vertex, tid, offset = targets.vertex[keep], targets.target[keep], targets.offset[keep]
    # D: (N, 3T), column 3t + k the k-th coordinate of target t, built in one go (the zero
    # coordinates left out, duplicates summed: the matrix the sum of one matrix per coordinate
    # made, and the same products below)
    nz = offset != 0
    rows = np.broadcast_to(vertex[:, None], offset.shape)[nz]
    cols = (tid.astype(np.int64) * 3)[:, None] + np.arange(3)
    D = sp.csr_matrix((offset[nz].astype(np.float64), (rows, cols[nz])), shape=(N, 3 * T))
    D.sum_duplicates()
    P = (op @ D).tocsr()  # (n+1, 3T)
    P.sort_indices()
    P = P.tocoo()  # rows in order, columns sorted within a row: the keys below are non-decreasing
    # group the three coordinates of a (point, target) pair into one entry (each coordinate of
    # a pair appears once; "+ 0.0" turns -0.0 into 0.0 as adding into zeros did)
    key = P.row.astype(np.int64) * T + P.col // 3
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    uniq = key[first]
    inv = np.cumsum(first) - 1
    off = np.zeros((len(uniq), 3), np.float32)
    off[inv, P.col % 3] = P.data + 0.0
    point = (uniq // T).astype(np.int32)
    target = (uniq % T).astype(np.int32)
    n = int(op.shape[0])
    if n <= _DENSE_MAX_POINTS:
        active = np.unique(target)
        row = np.full(T, -1, np.int64)
        row[active] = np.arange(len(active))
        dense = np.zeros((len(active), n, 3), np.float32)
        dense[row[target], point] = off
        return _Blend(None, None, None, to_device(dense), n, to_device(active.astype(np.int32)))
    return _Blend(to_device(target), to_device(point), to_device(off), None, n)


def _modifier_targets(data: HumanData) -> tuple[SparseTargets, np.ndarray]:
    """Targets ordered [negative of each slider…, positive of each slider…] (empty where none)."""
    index = {n: i for i, n in enumerate(data.modifier_targets.names)}
    M = len(data.modifiers)
    order = [m.negative for m in data.modifiers] + [m.positive for m in data.modifiers]
    new = np.full(len(data.modifier_targets.names), -1, np.int64)
    rows, tids = [], []
    src = data.modifier_targets
    by_target = {}
    for slot, name in enumerate(order):
        if name:
            by_target.setdefault(index[name], []).append(slot)
    for t, slots in by_target.items():
        sel = np.flatnonzero(src.target == t)
        for s in slots:
            rows.append(sel)
            tids.append(np.full(len(sel), s, np.int32))
    del new
    sel = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    out = SparseTargets(tuple(order), np.concatenate(tids) if tids else np.zeros(0, np.int32),
                        src.vertex[sel], src.offset[sel])
    minimum = np.array([m.minimum for m in data.modifiers], np.float32)
    assert len(out.names) == 2 * M
    return out, minimum


def build_model(points="head", *, data: HumanData | None = None, dtype=jnp.float32) -> HumanModel:
    """Precompute the human's targets on a set of points (explicit precomputation; numpy).

    Args:
        points: ``"head"`` (the vertices of the default head template's region, see
            :func:`machlib.human.head_vertices`), ``"body"`` (all vertices), ``"landmarks"``
            (the 478 MediaPipe landmarks on the template's surface), an ``(n,)`` array of vertex
            indices, or an ``(n, N)`` scipy sparse matrix of vertex combinations.
        data: the :class:`HumanData` (default :func:`load_human_data`).
        dtype: float dtype of the arrays.

    Returns:
        The :class:`HumanModel`.
    """
    import scipy.sparse as sp

    data = data or load_human_data()
    if isinstance(points, str):
        from ._head import head_landmark_operator, head_vertices

        if points == "head":
            points = head_vertices(data=data)
        elif points == "body":
            points = np.arange(data.num_vertices)
        elif points == "landmarks":
            points = head_landmark_operator(data=data)
        else:
            raise InputError(f"build_model: points must be 'head', 'body', 'landmarks' or an array, got {points!r}")
    op = sp.vstack([_operator(points, data), _eye_anchor_row(data)]).tocsr()
    base = np.asarray(op @ data.vertices.astype(np.float64))
    mod_targets, minimum = _modifier_targets(data)
    return HumanModel(
        base=to_device(base[:-1], dtype),
        anchor_base=to_device(base[-1], dtype),
        macro=_blend(data.macro, op),
        modifiers=_blend(mod_targets, op),
        units=_blend(data.face_units, op),
        modifier_minimum=to_device(minimum, dtype),
        macro_categories=to_device(data.macro_categories, np.int32),
        modifier_names=tuple(m.name for m in data.modifiers),
        unit_names=tuple(data.face_units.names),
    )


def symmetric_sliders(*, data: HumanData | None = None, tolerance: float = 0.5):
    """The left/right-tied, mirror-symmetric subset of the local modifiers.

    Sided sliders (``l-…`` and ``r-…``) share one value; an unsided slider is kept when each of
    its targets is its own mirror image (``x → −x`` through hm08's mirror table) on the body's
    skin to within ``tolerance`` of its largest displacement: sideways translations (asymmetry 2)
    are left out, hand-sculpted targets with small asymmetries (up to 0.3) are kept — symmetrise
    the evaluated points (:func:`symmetrize_points`) when exact symmetry matters.

    Args:
        data: the :class:`HumanData` (default :func:`load_human_data`).
        tolerance: relative asymmetry allowed.

    Returns:
        ``(basis, names, single)``: ``(M, S)`` float32 matrix mapping ``S`` symmetric values to the
        ``M`` sliders, the ``S`` names (side prefix dropped), and ``(S,)`` bool, True for
        single-target sliders (range ``[0, 1]``; the others span ``[−1, 1]``).
    """
    data = data or load_human_data()
    t = data.modifier_targets
    N = data.num_vertices
    flip = np.array([-1.0, 1.0, 1.0], np.float32)
    body = data.group_vertices("body")  # the clothing helpers are not mirrored exactly

    def asym(name):
        if not name:
            return 0.0
        m = t.target == t.names.index(name)
        D = np.zeros((N, 3), np.float32)
        D[t.vertex[m]] = t.offset[m]
        big = float(np.abs(D[body]).max())
        if big == 0:
            return 0.0
        return float(np.abs(D - D[data.mirror] * flip)[body].max() / big)

    groups: dict[str, list[int]] = {}
    for i, mod in enumerate(data.modifiers):
        key = mod.name.replace("/l-", "/").replace("/r-", "/") if mod.side else mod.name
        if not mod.side and max(asym(mod.negative), asym(mod.positive)) > tolerance:
            continue
        groups.setdefault(key, []).append(i)
    names = tuple(groups)
    basis = np.zeros((len(data.modifiers), len(names)), np.float32)
    single = np.zeros(len(names), bool)
    for s, (name, members) in enumerate(groups.items()):
        basis[members, s] = 1.0
        single[s] = data.modifiers[members[0]].minimum == 0.0
    return basis, names, single


@jax.jit
def symmetrize_points(points: Float[ArrayLike, "n 3"], mirror: ArrayLike) -> Float[Array, "n 3"]:
    """Average points with the mirror images of their partners: ``(p + flip(p[mirror])) / 2``.

    Args:
        points: ``(n, 3)`` head-space points.
        mirror: ``(n,)`` int index of each point's mirror partner (itself on the midline).

    Returns:
        ``(n, 3)`` points, exactly symmetric under ``x → −x``.
    """
    p = jnp.asarray(points)
    flip = jnp.asarray([-1.0, 1.0, 1.0], p.dtype)
    return 0.5 * (p + p[jnp.asarray(mirror)] * flip)
