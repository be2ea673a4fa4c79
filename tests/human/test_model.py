"""The parametric human in JAX: MakeHuman's macro interpolation, sliders, facial actions,
validation, symmetry, jit/vmap/grad."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from helpers import x64
from machlib import InputError
from machlib.human import (
    EYE_ANCHOR,
    PHENOTYPE_NAMES,
    HumanParams,
    build_model,
    default_phenotype,
    head_topology,
    human_points,
    load_human_data,
    macro_weights,
    modifier_weights,
    phenotype,
    symmetric_sliders,
    symmetrize_points,
)


@pytest.fixture(scope="module")
def landmarks_model():
    return build_model("landmarks")


def _cats(**selected) -> np.ndarray:
    """A macro-category row: variable name -> anchor index, race by name."""
    names = list(PHENOTYPE_NAMES[:8]) + ["race"]
    row = -np.ones(9, np.int32)
    for k, v in selected.items():
        row[names.index(k)] = v
    return row[None]


@pytest.mark.parametrize("age, expect", [(0.0, [1, 0, 0, 0]), (0.1875, [0, 1, 0, 0]), (0.25, [0, 0.8, 0.2, 0]),
                                         (0.5, [0, 0, 1, 0]), (0.75, [0, 0, 0.5, 0.5]), (1.0, [0, 0, 0, 1])])
def test_age_weights_follow_makehuman(age, expect):
    # MakeHuman: baby 1 year (0), child 11 (0.1875), young 25 (0.5), old 90 (1), linear between
    p = phenotype(age=age)
    got = [float(macro_weights(p, _cats(age=k))[0]) for k in range(4)]
    np.testing.assert_allclose(got, expect, atol=1e-6)


def test_macro_weights_are_products_and_races_normalise():
    p = phenotype(gender=0.25, muscle=0.75, african=2.0, asian=1.0, caucasian=1.0)
    # female 0.75 * maxmuscle 0.5 * african 0.5
    w = macro_weights(p, _cats(gender=0, muscle=2, race=0))
    np.testing.assert_allclose(float(w[0]), 0.75 * 0.5 * 0.5, rtol=1e-6)
    # height has no 'average' target: at 0.5 both extremes are off, at 0.75 maxheight is half on
    assert float(macro_weights(phenotype(height=0.5), _cats(height=2))[0]) == 0.0
    np.testing.assert_allclose(float(macro_weights(phenotype(height=0.75), _cats(height=2))[0]), 0.5, rtol=1e-6)


def test_hat_weights_of_every_variable_sum_to_one():
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = jnp.asarray(np.r_[rng.uniform(0, 1, 8), [0.2, 0.3, 0.5]], jnp.float32)
        for name in PHENOTYPE_NAMES[:8]:
            # (height's and proportions' middle anchor has no target file, but a weight all the same)
            total = sum(float(macro_weights(p, _cats(**{name: a}))[0]) for a in range(4 if name == "age" else 3))
            assert total == pytest.approx(1.0, abs=1e-5)


def test_hat_weights_equal_jnp_interp_bit_for_bit():
    """_hat_weights (no searchsorted loop) does jnp.interp's arithmetic: the same values and
    gradients, bit for bit, at the knots, between them and outside the range, in float32 and 64."""
    from machlib.human._model import _ANCHORS, _MAX_ANCHORS, _hat_weights

    def interp(x, anchors):
        a, eye = jnp.asarray(anchors, x.dtype), jnp.eye(len(anchors), dtype=x.dtype)
        return jnp.pad(jax.vmap(lambda row: jnp.interp(x, a, row))(eye), (0, _MAX_ANCHORS - len(anchors)))

    @jax.jit
    def both(x):  # one program per dtype: (ours, jnp.interp's) values and derivatives per anchor set
        out = []
        for anchors in sorted(set(_ANCHORS)):
            for f in (functools.partial(_hat_weights, anchors=anchors), functools.partial(interp, anchors=anchors)):
                out += [jax.vmap(f)(x), jax.vmap(jax.jacrev(f))(x)]
        return out

    xs = np.r_[np.random.default_rng(1).uniform(-0.2, 1.2, 64), 0.0, 0.1875, 0.25, 0.5, 1.0, -1e-7, 1.0 + 1e-7]
    with x64():
        for dtype in (jnp.float32, jnp.float64):
            out = both(jnp.asarray(xs, dtype))
            for k in range(0, len(out), 4):
                assert out[k].dtype == out[k + 2].dtype == dtype
                assert np.array_equal(out[k], out[k + 2]) and np.array_equal(out[k + 1], out[k + 3]), (dtype, k)


def test_modifier_weights_split_sign():
    np.testing.assert_allclose(modifier_weights(jnp.array([-0.5, 0.25, 0.0])), [0.5, 0, 0, 0, 0.25, 0])


def test_values_out_of_range_are_refused(landmarks_model):
    with pytest.raises(InputError, match="age = 1.2 is outside"):
        phenotype(age=1.2)
    with pytest.raises(InputError, match="unknown variable 'size'"):
        phenotype(size=0.3)
    with pytest.raises(InputError, match="race"):
        phenotype(african=0, asian=0, caucasian=0)
    n = HumanParams.neutral(landmarks_model)
    with pytest.raises(InputError, match="modifier values"):
        HumanParams(n.phenotype, n.modifiers.at[3].set(2.0), n.expression)
    with pytest.raises(InputError, match="expression"):
        HumanParams(n.phenotype, n.modifiers, n.expression.at[0].set(-0.1))
    from machlib.human import check_modifiers

    values = np.zeros(len(landmarks_model.modifier_names))
    values[landmarks_model.modifier_names.index("head/head-oval")] = -0.5  # a single-target slider: [0, 1]
    with pytest.raises(InputError, match="head/head-oval = -0.5 is outside"):
        check_modifiers(landmarks_model, values)


def test_neutral_human_in_head_space(landmarks_model):
    data = load_human_data()
    topo = head_topology(data=data)
    model = build_model(topo.vertices, data=data)
    P = np.asarray(human_points(model, HumanParams.neutral(model)))
    eyes = np.concatenate([topo.parts["eye_left"], topo.parts["eye_right"]])
    np.testing.assert_allclose(P[np.unique(eyes)].mean(0), EYE_ANCHOR, atol=1e-5)
    # a real head: about 15 cm wide at the ears, 23 cm from chin to crown, facing +z
    skin = P[: topo.num_skin]
    assert 0.13 < np.ptp(skin[:, 0]) < 0.19
    L = np.asarray(human_points(landmarks_model, HumanParams.neutral(landmarks_model)))
    assert L[1, 2] > L[234, 2] + 0.05  # the nose tip is in front of the cheek contour
    assert 0.13 < L[10, 1] - L[152, 1] < 0.17  # forehead top to chin: about 15 cm


def test_phenotype_changes_the_head(landmarks_model):
    n = HumanParams.neutral(landmarks_model)
    L0 = human_points(landmarks_model, n)
    old_man = human_points(landmarks_model, HumanParams(phenotype(gender=1.0, age=0.95), n.modifiers, n.expression))
    assert float(jnp.abs(old_man - L0).max()) > 0.005
    wide = n.modifiers.at[landmarks_model.modifier_names.index("nose/nose-scale-horiz-decr|incr")].set(1.0)
    Lw = human_points(landmarks_model, HumanParams(n.phenotype, wide, n.expression))
    assert float(jnp.abs(Lw[358, 0] - Lw[129, 0])) > float(jnp.abs(L0[358, 0] - L0[129, 0])) + 0.002  # wider nostrils
    jaw = n.expression.at[landmarks_model.unit_names.index("jawOpen")].set(1.0)
    Lj = human_points(landmarks_model, HumanParams(n.phenotype, n.modifiers, jaw))
    assert float(L0[152, 1] - Lj[152, 1]) > 0.01  # the chin drops more than a centimetre


def _random_params(model, seed, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    ph = np.r_[rng.uniform(0.05, 0.95, 8), rng.uniform(0.2, 1.0, 3)]
    for k in range(8):  # keep away from the hat functions' knots
        ph[k] = ph[k] if min(abs(ph[k] - a) for a in (0.0, 0.1875, 0.5, 1.0)) > 0.03 else ph[k] + 0.05
    mods = rng.uniform(0.1, 0.9, len(model.modifier_names)) * rng.choice([-1, 1], len(model.modifier_names))
    mods = np.where(np.asarray(model.modifier_minimum) == 0, np.abs(mods), mods)
    expr = rng.uniform(0.1, 0.9, len(model.unit_names))
    return HumanParams(jnp.asarray(ph, dtype), jnp.asarray(mods, dtype), jnp.asarray(expr, dtype))


def test_jit_equals_eager_and_vmap_equals_loop(landmarks_model):
    params = [_random_params(landmarks_model, s) for s in range(3)]
    eager = [human_points(landmarks_model, p) for p in params]
    jitted = jax.jit(human_points)
    for p, e in zip(params, eager):
        np.testing.assert_allclose(jitted(landmarks_model, p), e, atol=1e-6)
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *params)
    batched = jax.vmap(human_points, in_axes=(None, 0))(landmarks_model, stacked)
    np.testing.assert_allclose(batched, jnp.stack(eager), atol=1e-6)


def test_sparse_and_dense_targets_agree(landmarks_model):
    data = load_human_data()
    verts = head_topology(data=data).vertices[:3000]  # more than the dense limit: stored sparse
    sparse = build_model(verts, data=data)
    assert sparse.macro.dense is None
    dense = build_model(verts[:1500], data=data)
    assert dense.macro.dense is not None
    p = _random_params(sparse, 1)
    np.testing.assert_allclose(human_points(sparse, p)[:1500], human_points(dense, p), atol=2e-6)


def test_numpy_evaluation_matches_human_points(landmarks_model):
    """The one-shot numpy evaluation (template build, reports) equals human_points to float32
    rounding, for the dense (landmarks) and the sparse (a large point set) storage, and at the
    hat functions' knots (the neutral human)."""
    from machlib.human._model import _human_points_np

    data = load_human_data()
    sparse = build_model(head_topology(data=data).vertices[:3000], data=data)
    assert sparse.macro.dense is None and landmarks_model.macro.dense is not None
    for model in (landmarks_model, sparse):
        for p in (HumanParams.neutral(model), _random_params(model, 2)):
            np.testing.assert_allclose(_human_points_np(model, p), human_points(model, p), atol=1e-6)


def test_gradients_match_finite_differences(landmarks_model):
    with x64():
        model = jax.tree.map(lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                             landmarks_model)
        p = _random_params(model, 2, jnp.float64)

        def f(ph, mods, expr):
            return jnp.sum(human_points(model, HumanParams(ph, mods, expr))[::37] ** 2)

        check_grads(f, (p.phenotype, p.modifiers, p.expression), order=1, modes=("fwd", "rev"), eps=1e-6)


def test_symmetric_sliders_and_symmetrize(landmarks_model):
    basis, names, single = symmetric_sliders()
    assert basis.shape == (len(landmarks_model.modifier_names), len(names))
    assert np.all(basis.sum(0) >= 1) and np.all(basis.sum(1) <= 1)
    assert "eyes/eye-scale-decr|incr" in names  # l/r tied into one
    assert not any("trans-in|out" in n and not n.startswith("eyes") and not n.startswith("ears") for n in names)
    assert single.sum() >= 5  # head-oval, head-round, ...
    from machlib.geometry import mirror_permutation

    n = HumanParams.neutral(landmarks_model)
    rng = np.random.default_rng(0)
    p = HumanParams(n.phenotype, jnp.asarray(basis @ rng.uniform(-0.5, 0.5, len(names)), jnp.float32), n.expression)
    L = symmetrize_points(human_points(landmarks_model, p), mirror_permutation())
    np.testing.assert_allclose(L[mirror_permutation()] * jnp.array([-1.0, 1, 1]), L, atol=1e-6)


def test_default_phenotype():
    np.testing.assert_allclose(default_phenotype(), [0.5] * 8 + [1 / 3] * 3, atol=1e-7)
