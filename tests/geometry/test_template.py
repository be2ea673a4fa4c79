"""Templates: the procedural head (machlib's default before the parametric human) (mesh, UV chart, symmetry, landmarks, regions, albedo)
and user templates loaded from an OBJ and a JSON landmark table."""

import json

import numpy as np
import pytest
from PIL import Image

from helpers import edge_counts, signed_volume, small_mesh, uv_signed_areas
from machlib import save_obj
from machlib._errors import InputError
from machlib._raster import rasterize_np
from machlib.geometry import (
    NUM_TEMPLATE_LANDMARKS,
    Template,
    procedural_template,
    face_oval,
    load_template,
    mirror_permutation,
    template_albedo,
)

pytestmark = pytest.mark.slow  # the default template takes ~5 s to build (once per process)


@pytest.fixture(scope="module")
def template():
    return procedural_template()


@pytest.fixture(scope="module")
def landmark_positions(template):
    return template.landmark_positions()


# --------------------------------------------------------------------------------------------
# mesh


def test_procedural_template_basics(template):
    assert isinstance(template, Template)
    assert template.symmetric is True and template.human is None
    assert procedural_template() is template  # cached
    m = template.mesh
    assert m.num_vertices > 10_000 and m.num_faces > 20_000


def test_mesh_is_closed_and_outward(template):
    F = np.asarray(template.mesh.faces)
    assert set(edge_counts(F)) == {2}  # every undirected edge shared by exactly two faces
    directed = np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed)  # consistently oriented
    vol = signed_volume(template.mesh.vertices, F)
    assert 0.003 < vol < 0.01  # positive (outward), a head-sized volume in m³ (measured 0.0057)
    # Euler characteristic of a sphere
    V = template.mesh.num_vertices
    E = len(edge_counts(F))
    assert V - E + len(F) == 2


def test_mesh_no_degenerate_faces(template):
    V, F = np.asarray(template.mesh.vertices), np.asarray(template.mesh.faces)
    assert np.all(F[:, 0] != F[:, 1]) and np.all(F[:, 1] != F[:, 2]) and np.all(F[:, 0] != F[:, 2])
    a, b, c = V[F[:, 0]], V[F[:, 1]], V[F[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    assert area.min() > 1e-8  # m² (measured 2.0e-7)
    assert np.all(np.isfinite(V))


def test_mesh_dimensions(template):
    V = np.asarray(template.mesh.vertices)
    size = V.max(0) - V.min(0)
    assert 0.14 < size[0] < 0.22  # width incl. ears
    assert 0.25 < size[1] < 0.40  # crown to neck cut
    # mirror-symmetric extent in x
    np.testing.assert_allclose(V[:, 0].max(), -V[:, 0].min(), atol=1e-3)


# --------------------------------------------------------------------------------------------
# UV chart


def test_uv_layout_non_overlapping(template):
    m = template.mesh
    uv = np.asarray(m.uv)
    assert uv.min() >= 0.0 and uv.max() <= 1.0
    areas = uv_signed_areas(m)
    # no folds: every UV triangle has the same orientation and a non-zero area
    assert np.all(areas < 0) or np.all(areas > 0)
    total = np.abs(areas).sum()
    assert total <= 1.0 + 1e-9
    # a texel claimed by two triangles would make the covered fraction fall below the area sum
    R = 512
    tri, _ = rasterize_np(uv * R, np.asarray(m.faces_uv), (R, R))
    covered = float((tri >= 0).mean())
    assert abs(covered - total) < 2e-3, (covered, total)
    assert covered > 0.95


def test_position_map_is_mirror_symmetric(template):
    R = 256
    t = np.asarray(template.position_map(R), np.float64)
    f = t[:, ::-1]
    dx = np.abs(t[..., 0] + f[..., 0])
    dyz = np.abs(t[..., 1:] - f[..., 1:])
    # measured: mean |d| 3.8e-5 m, p99 4.5e-4 m (max 7 mm on the steep flanks of the nose)
    for d in (dx, dyz[..., 0], dyz[..., 1]):
        assert d.mean() < 1e-4
        assert np.percentile(d, 99) < 1.5e-3
    # the u = 0.5 column pair straddles the midline: x changes sign across it
    assert np.all(t[R // 4: 3 * R // 4, R // 2 - 1, 0] <= 1e-3)
    assert np.all(t[R // 4: 3 * R // 4, R // 2, 0] >= -1e-3)


def test_position_map_faces_front_at_u_half(template):
    t = np.asarray(template.position_map(128))
    # the centre column (front) is forward (+z), the border columns (seam) at the back (−z)
    mid = t[40:90, 63:65, 2]
    seam = t[40:90, [0, 127], 2]
    assert mid.min() > 0.05 and seam.max() < -0.05
    # v grows downwards: crown at the top rows
    assert t[2, :, 1].mean() > t[-3, :, 1].mean()


# --------------------------------------------------------------------------------------------
# landmarks


def test_landmark_table(template):
    uv, valid = template.landmark_uv, template.landmark_valid
    assert uv.shape == (NUM_TEMPLATE_LANDMARKS, 2) == (478, 2)
    assert valid.shape == (478,) and valid.dtype == bool and valid.all()
    assert uv.min() >= 0.0 and uv.max() <= 1.0
    # landmarks sit on the front of the chart
    assert 0.1 < uv[:, 0].min() and uv[:, 0].max() < 0.9


def test_landmark_uv_mirror_symmetric(template):
    perm = mirror_permutation()
    uv = template.landmark_uv
    np.testing.assert_allclose(uv[perm, 0], 1.0 - uv[:, 0], atol=1e-6)
    np.testing.assert_allclose(uv[perm, 1], uv[:, 1], atol=1e-6)
    midline = perm == np.arange(478)
    np.testing.assert_allclose(uv[midline, 0], 0.5, atol=1e-6)


def test_landmark_positions_conventions(template, landmark_positions):
    p = landmark_positions
    assert p.shape == (478, 3) and np.all(np.isfinite(p))
    # +x is the subject's left (image right in a frontal view). MediaPipe 33 is the subject's
    # RIGHT eye outer corner (image left), 263 the subject's LEFT eye outer corner.
    assert p[33, 0] < 0 < p[263, 0]
    assert p[133, 0] < 0 < p[362, 0]  # inner eye corners
    assert p[33, 0] < p[133, 0] and p[362, 0] < p[263, 0]  # outer corners further out
    # eyes above the nose tip, the nose tip above the mouth, the chin lowest of these
    assert p[33, 1] > p[1, 1] > p[13, 1] > p[152, 1]
    # nose tip (1) is (roughly) the most forward landmark; measured z[1] = 0.1222, max 0.1235 (#4)
    assert p[1, 2] > p[:, 2].max() - 3e-3
    assert abs(p[1, 0]) < 1e-3
    # mirror pairs are mirror images (measured max 1.2 mm)
    perm = mirror_permutation()
    np.testing.assert_allclose(p[perm] * np.array([-1.0, 1.0, 1.0]), p, atol=3e-3)
    # every landmark lies on the head surface, near a mesh vertex (coarse on the nose flanks;
    # measured max 7.5 mm, median < 1 mm)
    V = np.asarray(template.mesh.vertices)
    d = np.min(np.linalg.norm(p[:, None] - V[None], axis=-1), axis=1)
    assert d.max() < 1.2e-2 and np.median(d) < 2e-3


def test_face_oval():
    oval = face_oval()
    assert oval.shape == (36,) and len(set(oval.tolist())) == 36
    assert 10 in oval and 152 in oval  # forehead top and chin


# --------------------------------------------------------------------------------------------
# regions and albedo


def test_regions(template):
    regions = template.regions
    for name in ("face", "scalp", "eyes", "lips", "brows"):
        assert name in regions, name
        r = regions[name]
        assert r.shape == (256, 256) and r.dtype == np.float32
        assert r.min() >= 0.0 and r.max() <= 1.0 and r.max() > 0.5, name
    face, scalp = regions["face"], regions["scalp"]
    assert 0.1 < face.mean() < 0.5 and 0.1 < scalp.mean() < 0.6
    overlap = (face * scalp).sum()
    assert overlap < 0.05 * min(face.sum(), scalp.sum())  # mostly disjoint (measured 0)
    # the face mask sits at the front of the chart, mirror-symmetric
    assert face[:, :32].sum() == 0 and face[:, -32:].sum() == 0
    assert np.abs(face - face[:, ::-1]).mean() < 0.01
    # eyes, lips and brows are inside the face
    for name in ("eyes", "lips", "brows"):
        w = regions[name]
        assert (w * face).sum() > 0.8 * w.sum(), name


def test_template_albedo(template):
    R = 256
    alb = template_albedo(R, template=template)
    assert alb.shape == (R, R, 3) and alb.dtype == np.uint8
    rgb = alb.astype(np.float64)
    redness = rgb[..., 0] / np.maximum(rgb.sum(-1), 1)
    lips = template.regions["lips"] > 0.9
    pos = np.asarray(template.position_map(R))
    cheek = (np.abs(np.abs(pos[..., 0]) - 0.045) < 0.008) & (np.abs(pos[..., 1] + 0.03) < 0.008) & (pos[..., 2] > 0.04)
    assert lips.sum() > 20 and cheek.sum() > 20
    assert redness[lips].mean() > redness[cheek].mean() + 0.02  # measured 0.49 vs 0.44
    assert rgb[lips].mean() < rgb[cheek].mean()  # lips are darker too
    # brows are dark
    brows = template.regions["brows"] > 0.9
    assert rgb[brows].mean() < 0.6 * rgb[cheek].mean()


# --------------------------------------------------------------------------------------------
# user templates


def _write_user_template(tmp_path, table, name="head"):
    mesh = small_mesh()
    save_obj(tmp_path / f"{name}.obj", mesh)
    path = tmp_path / f"{name}.json"
    path.write_text(table if isinstance(table, str) else json.dumps(table))
    return mesh, tmp_path / f"{name}.obj", path


def _good_table():
    return {
        "num_landmarks": 478,
        "symmetric": True,
        "landmarks": [
            {"index": 1, "uv": [0.5, 0.55]},
            {"index": 33, "uv": [0.4, 0.45]},
            {"index": 263, "uv": [0.6, 0.45]},
            {"index": 61, "uv": [0.45, 0.65]},
            {"index": 291, "vertex": 40},
            {"index": 152, "vertex": 80},
            {"index": 10, "uv": [0.5, 0.3]},
        ],
    }


def test_load_user_template(tmp_path):
    mesh, obj, table = _write_user_template(tmp_path, _good_table())
    t = load_template(obj, table)
    assert t.name == "head" and t.symmetric is True
    assert t.mesh.num_vertices == mesh.num_vertices and t.mesh.num_faces == mesh.num_faces
    assert t.landmark_uv.shape == (478, 2) and t.landmark_valid.sum() == 7
    np.testing.assert_allclose(t.landmark_uv[33], [0.4, 0.45])
    vuv = t.mesh.vertex_uv()
    np.testing.assert_allclose(t.landmark_uv[291], vuv[40])
    np.testing.assert_allclose(t.landmark_uv[152], vuv[80])
    assert not t.landmark_valid[0]
    assert "face" not in t.regions  # only built from a complete table
    # the override wins over the table's flag
    assert load_template(obj, table, symmetric=False).symmetric is False
    # positions of the landmarks lie on the unit sphere
    p = t.landmark_positions()[t.landmark_valid]
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=0.05)


def test_load_user_template_small_table_and_regions(tmp_path):
    table = {"num_landmarks": 6, "landmarks": [{"index": k, "uv": [0.2 + 0.1 * k, 0.5]} for k in range(6)],
             "regions": {"scalp": "scalp.png"}}
    _, obj, path = _write_user_template(tmp_path, table)
    img = np.zeros((8, 8), np.uint8)
    img[:4] = 255
    Image.fromarray(img).save(tmp_path / "scalp.png")
    t = load_template(obj, path)
    assert t.landmark_uv.shape == (6, 2) and t.landmark_valid.all()
    assert t.symmetric is False  # the table's default
    scalp = t.regions["scalp"]
    assert scalp.shape == (256, 256) and scalp.dtype == np.float32
    assert scalp[:100].mean() > 0.99 and scalp[-100:].mean() < 0.01


def _table_with(**changes):
    t = _good_table()
    t.update(changes)
    return t


@pytest.mark.parametrize(
    "table,match",
    [
        ({"num_landmarks": 478}, "'landmarks' list"),
        ([1, 2, 3], "'landmarks' list"),
        (_table_with(landmarks=_good_table()["landmarks"] + [{"index": 500, "uv": [0.5, 0.5]}]), "index 500 outside"),
        (_table_with(landmarks=_good_table()["landmarks"] + [{"index": -1, "uv": [0.5, 0.5]}]), "index -1 outside"),
        (_table_with(landmarks=_good_table()["landmarks"] + [{"index": 5, "uv": [1.2, 0.5]}]), r"outside \[0, 1\]"),
        (_table_with(landmarks=_good_table()["landmarks"] + [{"index": 5, "uv": [0.5, -0.1]}]), r"outside \[0, 1\]"),
        (_table_with(landmarks=_good_table()["landmarks"] + [{"index": 5, "vertex": 10_000}]), "vertex 10000 outside"),
        (_table_with(landmarks=_good_table()["landmarks"] + [{"index": 5}]), "needs 'uv' or 'vertex'"),
        (_table_with(landmarks=_good_table()["landmarks"] + [{"uv": [0.5, 0.5]}]), "bad landmark entry"),
        (_table_with(landmarks=_good_table()["landmarks"] + [{"index": 5, "uv": [0.5]}]), "bad landmark entry"),
        (_table_with(landmarks=_good_table()["landmarks"][:5]), "at least 6 landmarks"),
        (_table_with(landmarks=[]), "at least 6 landmarks"),
        ("{not json", "not valid JSON"),
        (_table_with(regions={"scalp": "missing.png"}), "region 'scalp'"),
    ],
)
def test_load_template_bad_tables(tmp_path, table, match):
    _, obj, path = _write_user_template(tmp_path, table)
    with pytest.raises(InputError, match=match) as info:
        load_template(obj, path)
    assert str(path) in str(info.value)  # the message names the table


def test_load_template_missing_files(tmp_path):
    _, obj, path = _write_user_template(tmp_path, _good_table())
    with pytest.raises(InputError, match="no such landmark table"):
        load_template(obj, tmp_path / "nope.json")
    with pytest.raises(InputError, match="no such mesh"):
        load_template(tmp_path / "nope.obj", path)
