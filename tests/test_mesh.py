"""Mesh: validation, per-vertex UVs, seam splitting, normals, OBJ and GLB input/output."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from helpers import quad_patch, small_mesh, uv_sphere, x64
from machlib import Mesh, load_mesh, save_glb, save_obj, vertex_normals
from machlib._errors import InputError


# --------------------------------------------------------------------------------------------
# construction and validation


def test_mesh_basic():
    m = small_mesh()
    assert m.num_vertices == 146 and m.num_faces == 288
    tri = Mesh(np.eye(3), np.array([[0, 1, 2]]), np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([[0, 1, 2]]))
    assert (tri.num_vertices, tri.num_faces) == (3, 1)


@pytest.mark.parametrize("bad", ["vertices", "faces", "uv", "faces_uv"])
def test_mesh_validation(bad):
    args = dict(vertices=np.zeros((4, 3)), faces=np.array([[0, 1, 2], [0, 2, 3]]), uv=np.zeros((4, 2)),
                faces_uv=np.array([[0, 1, 2], [0, 2, 3]]))
    args[bad] = {
        "vertices": np.zeros((4, 2)),
        "faces": np.array([[0, 1, 2, 3]]),
        "uv": np.zeros((4, 3)),
        "faces_uv": np.array([[0, 1, 2]]),
    }[bad]
    # ValueError from __check_init__; the test-time type checker may catch it first (TypeError)
    with pytest.raises((ValueError, TypeError), match=f"{bad}|Mesh"):
        Mesh(**args)


def test_vertex_uv_matches_a_corner():
    q = quad_patch(3)
    np.testing.assert_allclose(q.vertex_uv(), np.asarray(q.vertices)[:, :2])
    m = small_mesh()
    vuv = m.vertex_uv()
    assert vuv.shape == (m.num_vertices, 2)
    f, ft, uv = np.asarray(m.faces), np.asarray(m.faces_uv), np.asarray(m.uv)
    for v in range(m.num_vertices):
        corners = uv[ft[f == v]]
        assert np.any(np.all(np.isclose(corners, vuv[v]), axis=1))
    # first corner wins: the top pole's uv is the first face's first corner
    np.testing.assert_allclose(vuv[f[0, 0]], uv[ft[0, 0]])


def test_vertex_uv_unused_vertex():
    m = Mesh(np.zeros((4, 3)), np.array([[0, 1, 2]]), np.zeros((3, 2)), np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="1 vertices"):
        m.vertex_uv()


def test_split_reconstructs():
    m = small_mesh()
    pos, uv, faces, source = m.split()
    V, F, UV, FT = (np.asarray(x) for x in (m.vertices, m.faces, m.uv, m.faces_uv))
    np.testing.assert_array_equal(pos[faces], V[F])
    np.testing.assert_array_equal(uv[faces], UV[FT])
    np.testing.assert_array_equal(pos, V[source])
    assert len(pos) >= m.num_vertices  # seams and poles split
    assert len(np.unique(source)) == m.num_vertices
    # a mesh without seams does not grow
    q = quad_patch(2)
    assert len(q.split()[0]) == q.num_vertices


# --------------------------------------------------------------------------------------------
# normals


def test_vertex_normals_outward_unit():
    m = small_mesh()
    n = np.asarray(vertex_normals(jnp.asarray(m.vertices), jnp.asarray(m.faces)))
    V = np.asarray(m.vertices)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, rtol=1e-5)
    cos = np.sum(n * V, 1) / np.linalg.norm(V, axis=1)
    assert cos.min() > 0.95
    # flat patch: +z everywhere
    q = quad_patch(2)
    nq = np.asarray(vertex_normals(jnp.asarray(q.vertices), jnp.asarray(q.faces)))
    np.testing.assert_allclose(nq, np.tile([0.0, 0.0, 1.0], (q.num_vertices, 1)), atol=1e-6)


def test_vertex_normals_isolated_vertex_is_zero_and_grad_finite():
    V = jnp.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5]])
    F = jnp.array([[0, 1, 2]])
    n = vertex_normals(V, F)
    np.testing.assert_array_equal(np.asarray(n[3]), 0.0)
    g = jax.grad(lambda v: jnp.sum(vertex_normals(v, F) ** 2))(V)
    assert np.all(np.isfinite(np.asarray(g)))
    # a degenerate (zero-area) triangle too
    Vd = jnp.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]])
    g = jax.grad(lambda v: jnp.sum(vertex_normals(v, F)))(Vd)
    assert np.all(np.isfinite(np.asarray(g)))


def test_vertex_normals_grads():
    m = uv_sphere(6, 4)
    with x64():
        V = jnp.asarray(m.vertices, jnp.float64)
        V = V + 0.05 * jax.random.normal(jax.random.PRNGKey(0), V.shape, jnp.float64)
        F = jnp.asarray(m.faces)
        check_grads(lambda v: vertex_normals(v, F), (V,), order=1, modes=["rev"], eps=1e-6, atol=1e-5, rtol=1e-5)


def test_vertex_normals_jit_matches_eager():
    m = small_mesh()
    V, F = jnp.asarray(m.vertices, jnp.float32), jnp.asarray(m.faces)
    np.testing.assert_allclose(jax.jit(vertex_normals)(V, F), vertex_normals(V, F), atol=1e-6)


# --------------------------------------------------------------------------------------------
# OBJ


@st.composite
def random_meshes(draw):
    nv = draw(st.integers(3, 12))
    nt = draw(st.integers(3, 12))
    nf = draw(st.integers(1, 10))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1e-3, 1.0, 250.0]))
    V = rng.uniform(-1, 1, (nv, 3)) * scale
    UV = rng.uniform(0, 1, (nt, 2))
    F = np.stack([rng.choice(nv, 3, replace=False) for _ in range(nf)])
    FT = rng.integers(0, nt, (nf, 3))
    return Mesh(V, F, UV, FT)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(random_meshes())
def test_obj_round_trip(tmp_path, mesh):
    path = tmp_path / "m.obj"
    save_obj(path, mesh)
    back = load_mesh(path)
    np.testing.assert_array_equal(np.asarray(back.faces), np.asarray(mesh.faces))
    np.testing.assert_array_equal(np.asarray(back.faces_uv), np.asarray(mesh.faces_uv))
    np.testing.assert_allclose(back.vertices, mesh.vertices, rtol=1e-6, atol=1e-12)  # %.7g
    np.testing.assert_allclose(back.uv, mesh.uv, rtol=0, atol=1e-6)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write leaves no temporaries


def test_obj_round_trip_sphere_with_texture(tmp_path):
    m = small_mesh()
    save_obj(tmp_path / "s.obj", m, texture="skin.png")
    text = (tmp_path / "s.obj").read_text()
    assert "mtllib s.mtl" in text and "usemtl skin" in text
    assert "map_Kd skin.png" in (tmp_path / "s.mtl").read_text()
    back = load_mesh(tmp_path / "s.obj")
    np.testing.assert_allclose(back.vertices, m.vertices, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(back.uv, m.uv, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(back.faces), np.asarray(m.faces))


def test_obj_v_flip_convention(tmp_path):
    p = tmp_path / "t.obj"
    p.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0.25 0.0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n")
    m = load_mesh(p)
    np.testing.assert_allclose(np.asarray(m.uv), [[0.25, 1.0], [1.0, 1.0], [0.0, 0.0]])


def test_obj_polygons_and_negative_indices(tmp_path):
    p = tmp_path / "quad.obj"
    p.write_text(
        "# a quad\n\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
        "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvn 0 0 1\n"
        "f -4/-4/1 -3/-3/1 -2/-2/1 -1/-1/1\n"
    )
    m = load_mesh(p)
    np.testing.assert_array_equal(np.asarray(m.faces), [[0, 1, 2], [0, 2, 3]])
    np.testing.assert_array_equal(np.asarray(m.faces_uv), [[0, 1, 2], [0, 2, 3]])


@pytest.mark.parametrize(
    "name,content,match",
    [
        ("missing.obj", None, "no such"),
        ("bad.obj", "v 0 0 zero\nvt 0 0\nf 1/1 1/1 1/1\n", "line 1"),
        ("novt.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "texture coordinates"),
        ("novt2.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1//1 2//1 3//1\n", "texture coordinates"),
        ("range.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 7/1\n", "out of range"),
        ("empty.obj", "# nothing\n", "no vertices or no faces"),
        ("twocorner.obj", "v 0 0 0\nv 1 0 0\nvt 0 0\nf 1/1 2/1\n", "line 4"),
        ("mesh.ply", "ply\n", "unsupported"),
        ("binary.obj", b"\xff\xfe\x00v", "not a text"),
    ],
)
def test_load_mesh_errors(tmp_path, name, content, match):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=match):
        load_mesh(path)


def test_load_mesh_bad_glb(tmp_path):
    p = tmp_path / "junk.glb"
    p.write_bytes(b"not a gltf file at all")
    with pytest.raises(InputError):
        load_mesh(p)


# --------------------------------------------------------------------------------------------
# GLB


def _corner_arrays(m):
    V, F, UV, FT = (np.asarray(x, np.float64) if i % 2 == 0 else np.asarray(x) for i, x in
                    enumerate((m.vertices, m.faces, m.uv, m.faces_uv)))
    return V[F], UV[FT]


@pytest.mark.parametrize("with_texture", [False, True])
def test_glb_round_trip(tmp_path, with_texture):
    m = small_mesh()
    tex = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8) if with_texture else None
    save_glb(tmp_path / "s.glb", m, texture=tex)
    back = load_mesh(tmp_path / "s.glb")
    assert back.num_vertices == m.num_vertices  # welded again
    assert back.num_faces == m.num_faces
    pos0, uv0 = _corner_arrays(m)
    pos1, uv1 = _corner_arrays(back)
    np.testing.assert_allclose(pos1, pos0, atol=1e-6)  # float32 storage
    np.testing.assert_allclose(uv1, uv0, atol=1e-5)
    # welded and closed: every undirected edge shared by two faces
    from helpers import edge_counts

    assert set(edge_counts(back.faces)) == {2}


def test_glb_round_trip_keeps_vertex_order(tmp_path):
    """Welding after glTF's seam split numbers vertices by first appearance, so vertex-indexed
    landmark tables stay valid for GLB templates."""
    from machlib import Mesh, load_mesh, save_glb

    V = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, -1.0, -1.0]])
    F = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    T = np.array([[0.1, 0.2], [0.8, 0.1], [0.5, 0.9], [0.3, 0.6], [0.95, 0.95]])
    FT = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 4]])
    save_glb(tmp_path / "t.glb", Mesh(V, F, T, FT))
    back = load_mesh(tmp_path / "t.glb")
    np.testing.assert_allclose(np.asarray(back.vertices), V, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(back.faces), F)


def test_obj_short_vertex_line_is_an_input_error(tmp_path):
    from machlib import InputError, load_mesh

    p = tmp_path / "bad.obj"
    p.write_text("v 0 1\nv 1 0 0\nv 0 0 1\nvt 0 0\nf 1/1 2/1 3/1\n")
    with pytest.raises(InputError, match="line 1"):
        load_mesh(p)
