"""The interpretable shape space on the template head (DreamFace §4.1, eq. 1)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import x64
from jax.test_util import check_grads

from machlib.geometry._variations import (
    _DEFAULT_ANCHORS,
    _fields,
    FACE_SHAPE_PRESETS,
    NUM_SHAPE_PARAMS,
    SHAPE_BASIS_NAMES,
    apply_shape,
    classify_face_shape,
    describe_shape,
    face_shape_preset,
    sample_shapes,
    shape_basis,
    shape_params,
)

# a few head-space points of the default template (MediaPipe landmarks): chin 152, forehead 10,
# face sides 234/454, cheeks 132/361, jaw 172/397, nose tip 4, mouth corners 61/291
POINTS = np.array([
    [0.0, -0.1127, 0.0879], [0.0, 0.0514, 0.0969], [-0.0738, -0.0173, 0.006], [0.0739, -0.0173, 0.006],
    [-0.0647, -0.0506, 0.0528], [0.0647, -0.0506, 0.0528], [-0.0574, -0.0823, 0.0594], [0.0574, -0.0823, 0.0594],
    [0.0, -0.0305, 0.1235], [-0.0256, -0.0655, 0.0953], [0.0256, -0.0655, 0.0953],
])


@pytest.fixture(scope="module")
def template():
    from machlib.geometry import procedural_template

    return procedural_template()  # the shape space's analytic fields are checked on the procedural head


def test_shapes_and_names():
    assert len(SHAPE_BASIS_NAMES) == NUM_SHAPE_PARAMS == len(set(SHAPE_BASIS_NAMES))
    v = jnp.asarray(POINTS, jnp.float32)
    assert shape_basis(v).shape == (NUM_SHAPE_PARAMS, len(POINTS), 3)
    out = apply_shape(v, shape_params(face_width=1.0))
    assert out.shape == v.shape and out.dtype == jnp.float32
    np.testing.assert_allclose(apply_shape(v, shape_params()), v, atol=0)


def test_linear_in_params():
    v = jnp.asarray(POINTS, jnp.float32)
    b = sample_shapes(jax.random.key(3), 2)
    lhs = apply_shape(v, b[0] + 2 * b[1]) - v
    rhs = (apply_shape(v, b[0]) - v) + 2 * (apply_shape(v, b[1]) - v)
    np.testing.assert_allclose(lhs, rhs, atol=1e-7)
    np.testing.assert_allclose(lhs, jnp.einsum("b,bvc->vc", b[0] + 2 * b[1], shape_basis(v)), atol=1e-7)


def test_jit_and_vmap_match_eager():
    v = jnp.asarray(POINTS, jnp.float32)
    b = sample_shapes(jax.random.key(1), 5)
    eager = np.stack([np.asarray(apply_shape(v, p)) for p in b])
    np.testing.assert_allclose(jax.vmap(lambda p: apply_shape(v, p))(b), eager, atol=1e-7)
    np.testing.assert_allclose(jax.jit(apply_shape)(v, b[0]), eager[0], atol=1e-7)
    np.testing.assert_allclose(jax.jit(jax.vmap(apply_shape, (None, 0)))(v, b), eager, atol=1e-7)


def test_gradients_float64_finite_differences():
    with x64():
        rng = np.random.default_rng(0)
        v = jnp.asarray(POINTS + 0.002 * rng.standard_normal(POINTS.shape), jnp.float64)
        p = jnp.asarray(rng.standard_normal(NUM_SHAPE_PARAMS), jnp.float64)
        check_grads(lambda p: apply_shape(v, p), (p,), order=1, modes=["fwd", "rev"])
        g = jax.grad(lambda p: jnp.sum(apply_shape(v, p) ** 2))(p)
        assert g.dtype == jnp.float64 and bool(jnp.isfinite(g).all())


@pytest.mark.slow
def test_vertex_gradients_float64_finite_differences():
    """Also differentiable with respect to the rest positions (compiling the field's VJP takes a while)."""
    with x64():
        rng = np.random.default_rng(1)
        v = jnp.asarray(POINTS[:6] + 0.002 * rng.standard_normal((6, 3)), jnp.float64)
        p = jnp.asarray(rng.standard_normal(NUM_SHAPE_PARAMS), jnp.float64)
        check_grads(apply_shape, (v, p), order=1, modes=["rev"], atol=1e-6, rtol=1e-5)


def test_sampling_is_deterministic_and_standard_normal():
    a = sample_shapes(jax.random.key(7), 4000)
    np.testing.assert_array_equal(a, sample_shapes(jax.random.key(7), 4000))
    assert not np.array_equal(a, sample_shapes(jax.random.key(8), 4000))
    assert abs(float(a.mean())) < 0.03 and abs(float(a.std()) - 1.0) < 0.03
    assert abs(float(sample_shapes(jax.random.key(7), 4000, scale=2.0).std()) - 2.0) < 0.06
    assert sample_shapes(jax.random.key(0), 0).shape == (0, NUM_SHAPE_PARAMS)


def _ratio(verts):
    """Face height (forehead top − chin) over width at the cheeks (132 ↔ 361)."""
    return float((verts[1, 1] - verts[0, 1]) / (verts[5, 0] - verts[4, 0]))


def test_presets_differ_in_the_intended_direction():
    v = jnp.asarray(POINTS, jnp.float32)
    shaped = {n: np.asarray(apply_shape(v, face_shape_preset(n))) for n in FACE_SHAPE_PRESETS}
    ratio = {n: _ratio(s) for n, s in shaped.items()}
    assert ratio["long"] > ratio["oval"] > ratio["round"]
    jaw = {n: s[7, 0] - s[6, 0] for n, s in shaped.items()}
    assert jaw["square"] > jaw["oval"] > jaw["v-shaped"]
    assert jaw["heart"] < jaw["oval"]
    assert shaped["long"][0, 1] < shaped["oval"][0, 1] < shaped["round"][0, 1]  # the chin drops
    np.testing.assert_array_equal(face_shape_preset("oval"), np.zeros(NUM_SHAPE_PARAMS))
    np.testing.assert_array_equal(face_shape_preset("Heart shaped"), face_shape_preset("heart"))
    for name in FACE_SHAPE_PRESETS:
        assert classify_face_shape(face_shape_preset(name)) == name


def test_each_component_moves_its_region():
    v = jnp.asarray(POINTS, jnp.float32)
    d = np.asarray(shape_basis(v))
    i = SHAPE_BASIS_NAMES.index
    assert d[i("face_width"), 5, 0] > 0.002 and d[i("face_width"), 4, 0] < -0.002  # cheeks outward
    assert d[i("face_length"), 0, 1] < -0.004  # chin down
    assert d[i("jaw_width"), 7, 0] > 0.002
    assert d[i("chin_projection"), 0, 2] > 0.002
    assert d[i("nose_length"), 8, 1] < -0.001
    assert d[i("mouth_width"), 10, 0] > 0.001
    # mirror symmetry: (x, y, z) -> (-x, y, z) maps the field onto itself
    m = np.array([-1.0, 1.0, 1.0])
    pts = np.concatenate([POINTS, POINTS * m])
    f = np.asarray(shape_basis(jnp.asarray(pts)))
    np.testing.assert_allclose(f[:, len(POINTS):], f[:, :len(POINTS)] * m, atol=1e-7)


@pytest.mark.slow
def test_back_of_head_and_ears_stay_put(template):
    verts = np.asarray(template.mesh.vertices)
    basis = np.asarray(shape_basis(template))
    assert np.isfinite(basis).all()
    worst = 2.0 * np.abs(basis).sum(0)  # |β_i| = 2 on every component at once, worst-case signs
    move = np.linalg.norm(worst, axis=1)
    back = verts[:, 2] < -0.05
    assert move[back].max() < 5e-4, move[back].max()
    a = _DEFAULT_ANCHORS
    ears = (np.abs(verts[:, 0]) > a.ear_x - 0.002) & (np.abs(verts[:, 1] - a.ear_y) < 0.02) & \
        (np.abs(verts[:, 2] - a.ear_z) < 0.012)
    assert ears.sum() > 50 and move[ears].max() < 1.5e-3, move[ears].max()
    face = verts[:, 2] > 0.06
    assert move[face].max() > 0.01  # while the face changes by centimetres


@pytest.mark.slow
def test_no_self_intersection_at_two_sigma(template):
    """A displacement field with Lipschitz constant < 1 makes p ↦ p + d(p) injective (no fold-over, no
    self-intersection): every component alone up to |β_i| = 4, all components at once up to |β_i| = 1.4."""
    verts = jnp.asarray(np.asarray(template.mesh.vertices), jnp.float32)
    jac = jax.vmap(jax.jacfwd(lambda p: _fields(p[None], _DEFAULT_ANCHORS)[:, 0]))(verts)  # (V, B, 3, 3)
    norms = np.linalg.norm(np.asarray(jac, np.float64), ord=2, axis=(-2, -1))  # (V, B)
    assert 4.0 * norms.max() < 0.9, norms.max(0)
    assert 1.4 * norms.sum(1).max() < 0.99, norms.sum(1).max()
    # and triangles keep their orientation for presets and wide random samples
    faces = np.asarray(template.mesh.faces)

    def normals(v):
        a, b, c = (v[faces[:, k]] for k in range(3))
        return np.cross(b - a, c - a)

    n0 = normals(np.asarray(verts, np.float64))
    shapes = [face_shape_preset(n) for n in FACE_SHAPE_PRESETS] + list(sample_shapes(jax.random.key(0), 4, scale=2.0))
    for p in shapes:
        v = np.asarray(apply_shape(template, p), np.float64)
        assert np.isfinite(v).all()
        n1 = normals(v)
        big = np.linalg.norm(n0, axis=1) > 1e-10
        assert (np.sum(n0 * n1, 1)[big] > 0).all()


@pytest.mark.slow
def test_template_and_vertices_agree(template):
    p = face_shape_preset("square")
    a = apply_shape(template, p)
    b = apply_shape(jnp.asarray(np.asarray(template.mesh.vertices)), p)
    np.testing.assert_allclose(a, b, atol=1e-7)


def test_describe_shape_names_the_dominant_trait():
    assert describe_shape(shape_params(jaw_width=2.0)).endswith("with a wide jaw")
    assert "a narrow nose" in describe_shape(shape_params(nose_width=-1.8, face_width=0.2))
    d = describe_shape(shape_params(face_length=2.5, lip_fullness=1.0))
    assert d == "a long face with full lips"
    assert describe_shape(face_shape_preset("round")).startswith("a round face with full cheeks")
    assert describe_shape(shape_params()) == "an oval face with average proportions"
    assert describe_shape(shape_params(jaw_width=2.0, chin_length=1.5), max_traits=1).count("with") == 1


def test_bad_inputs_raise():
    v = jnp.asarray(POINTS, jnp.float32)
    with pytest.raises((ValueError, TypeError), match="params"):
        apply_shape(v, jnp.zeros(3))
    with pytest.raises((ValueError, TypeError)):
        apply_shape(jnp.zeros((4, 2)), shape_params())
    with pytest.raises(ValueError, match="unknown component"):
        shape_params(ears=1.0)
    with pytest.raises(ValueError, match="unknown face shape"):
        face_shape_preset("triangular-ish")
    with pytest.raises(ValueError, match="n must be"):
        sample_shapes(jax.random.key(0), -1)
