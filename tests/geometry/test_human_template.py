"""The default template (the human's head): UV layout, landmark table, regions, albedo."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import uv_signed_areas
from machlib.geometry import default_template, human_albedo, mirror_permutation, procedural_template
from machlib.human import head_topology


@pytest.fixture(scope="module")
def template():
    return default_template()


def test_default_is_the_human(template):
    assert template.name == "human" and template.human is not None and template.symmetric
    assert template.mesh.num_vertices == template.human.topology.num_skin
    assert procedural_template().human is None


def test_uv_layout_is_injective_and_gives_the_face_most_texels(template):
    areas = uv_signed_areas(template.mesh)
    assert np.all(areas > 0) or np.all(areas < 0)  # no flipped triangle: a Tutte embedding
    uv = np.asarray(template.mesh.uv)
    assert uv.min() >= 0 and uv.max() <= 1
    luv = np.asarray(template.landmark_uv)
    # at 1024², the face (cheek contour to cheek contour) is at least 600 texels across
    assert np.linalg.norm(luv[234] - luv[454]) * 1024 >= 600
    assert luv[454, 0] > 0.5 > luv[234, 0]  # the subject's left (+x) on the right (u > 0.5)


def test_uv_layout_is_mirror_symmetric(template):
    topo = template.human.topology
    geo = np.zeros(len(topo.uv), np.int64)
    geo[topo.faces_uv.ravel()] = topo.faces.ravel()
    # every UV vertex's mirror partner sits at (1 - u, v)
    uv = topo.uv
    from scipy.spatial import cKDTree

    d, _ = cKDTree(uv).query(np.stack([1 - uv[:, 0], uv[:, 1]], 1))
    assert np.median(d) < 1e-4 and np.percentile(d, 99) < 2e-3
    luv = np.asarray(template.landmark_uv)
    perm = mirror_permutation()
    np.testing.assert_allclose(luv[perm, 0], 1 - luv[:, 0], atol=2e-3)
    np.testing.assert_allclose(luv[perm, 1], luv[:, 1], atol=2e-3)


def test_landmarks_sit_on_the_surface_where_expected(template):
    P = template.landmark_positions()
    skin = template.human.skin
    assert P[1, 2] == pytest.approx(skin[:, 2].max(), abs=0.01)  # landmark 1: the nose tip
    assert abs(P[1, 0]) < 1e-3 and abs(P[152, 0]) < 1e-3  # on the midline
    assert P[159, 1] > P[145, 1]  # upper lid above lower lid


def test_regions(template):
    R = 256
    for name in ("face", "scalp", "eyes", "brows", "lips", "nostrils", "ears", "neck"):
        m = np.asarray(template.regions[name])
        assert m.shape == (R, R) and m.min() >= 0 and m.max() <= 1 and m.max() > 0.5, name
    face, scalp = np.asarray(template.regions["face"]), np.asarray(template.regions["scalp"])
    assert (face > 0.5).mean() > 0.3  # the face fills the middle of the layout
    assert ((face > 0.5) & (scalp > 0.5)).mean() < 0.01


def test_albedo_paints_lips_and_brows(template):
    alb = human_albedo(template, resolution=256).astype(float)
    luv = np.asarray(template.landmark_uv)

    def at(k, k2=None):
        u, v = luv[k] if k2 is None else 0.5 * (luv[k] + luv[k2])
        return alb[int(v * 256), int(u * 256)]

    cheek, lip = at(50), at(0, 13)  # the upper lip's middle
    assert lip[0] / lip[1] > cheek[0] / cheek[1] + 0.2  # the lip is redder than the cheek
    # brows darker than the cheek, and hair strokes with skin between them, not a filled bar
    from machlib._facemesh import RIGHT_BROW
    from machlib.texture import polygon_sdf

    inside = np.zeros((256, 256), bool)
    for idx in (list(RIGHT_BROW), list(mirror_permutation()[list(RIGHT_BROW)])):
        inside |= np.asarray(polygon_sdf(np.asarray(luv[idx], np.float32), 256)) < -1.5 / 256
    s = alb[inside].sum(-1)
    assert np.percentile(s, 10) < cheek.sum() - 150 and s.mean() < cheek.sum() - 50
    assert np.percentile(s, 90) > cheek.sum() - 40  # the skin between the strokes


def test_helper_parts(template):
    topo = head_topology()
    P = template.human.points
    for name in ("eye_left", "eye_right", "teeth_upper", "teeth_lower", "tongue", "lashes_left", "lashes_right"):
        f = topo.parts[name]
        assert len(f) and f.max() < len(P), name
    left = P[np.unique(topo.parts["eye_left"])].mean(0)
    right = P[np.unique(topo.parts["eye_right"])].mean(0)
    assert left[0] > 0.02 and right[0] < -0.02 and abs(left[1] - right[1]) < 1e-4


def test_lid_and_lip_landmarks_follow_the_facial_actions(template):
    """The table binds the lid margins and the inner lips to the lids and lips themselves, not to
    the pockets behind the openings (which the lids and the jaw do not move): eyeBlink closes the
    landmarks' lid aperture, jawOpen lowers the whole lower inner lip and little of the upper."""
    import jax.numpy as jnp

    from machlib.human import HumanParams, human_points

    head = template.human
    names = list(head.landmarks.unit_names)
    p = head.params

    def landmarks(**actions):
        e = np.zeros(len(names), np.float32)
        for k, v in actions.items():
            e[names.index(k)] = v
        return np.asarray(human_points(head.landmarks, HumanParams(p.phenotype, p.modifiers, jnp.asarray(e))))

    rest = landmarks()
    shut = landmarks(eyeBlinkLeft=0.5, eyeBlinkRight=0.5)
    for up, low in ((159, 145), (386, 374)):
        open_mm = np.linalg.norm(rest[up] - rest[low]) * 1000
        assert 6.0 < open_mm < 16.0  # an open eye's aperture, not a point deep in the socket
        assert np.linalg.norm(shut[up] - shut[low]) * 1000 < 0.6 * open_mm
    dy = (landmarks(jawOpen=1.0) - rest)[:, 1] * 1000
    lower = [95, 88, 178, 87, 14, 317, 402, 318, 324]
    upper = [191, 80, 81, 82, 13, 312, 311, 310, 415]
    assert dy[lower].max() < -15.0 and dy[upper].min() > -8.0


def test_mediapipe_lands_on_the_landmark_table(template):
    """The table was made by rendering the default human for MediaPipe; on a render of another
    human, frontal and turned, MediaPipe lands within a few pixels of the table's landmarks."""
    from machlib.geometry import landmark_table_error
    from machlib.human import HumanParams, build_model, human_points, phenotype

    topo = template.human.topology
    n = HumanParams.neutral(template.human.model)
    params = HumanParams(phenotype(gender=0.0, age=0.35), n.modifiers, n.expression)
    P = np.asarray(human_points(template.human.model, params))
    L = np.asarray(human_points(template.human.landmarks, params))
    front = landmark_table_error(P, topo, L, yaw=0.0, size=512)
    turned = landmark_table_error(P, topo, L, yaw=20.0, size=512)
    assert np.median(front) < 3.0 and np.percentile(front, 90) < 7.0
    assert np.median(turned) < 5.0


def test_human_candidates_rank_the_described_person_first():
    from machlib.assets import LexicalEmbedder
    from machlib.geometry import AttributeShapeScorer, human_candidate_pool, select_shape
    from machlib.text import parse_prompt

    prompt = "an old man with a round face and a wide nose"
    pool = human_candidate_pool(parse_prompt(prompt).attributes, n_random=6)
    assert all(c.human is not None for c in pool) and pool[0].name == "described"
    assert "round face" in pool[0].description and "wide nose" in pool[0].description
    best = select_shape(prompt, pool, scorer=AttributeShapeScorer(LexicalEmbedder()), k=1)[0]
    assert float(best.candidate.human.phenotype[0]) == 1.0 and float(best.candidate.human.phenotype[1]) > 0.8
    assert "round face" in best.candidate.description
    from machlib.geometry import render_shape

    imgs = render_shape(best.candidate.params, template=default_template(), human=best.candidate.human, lights=1,
                        size=64)
    assert imgs.shape == (3, 64, 64, 3) and imgs.std() > 5


def test_template_is_cached_on_disk_and_rebuilt_when_damaged(tmp_path, monkeypatch):
    """A later process loads the built template from ~/.cache/machlib/template; a damaged file
    is reported and rebuilt, and the rebuilt template is the same."""
    import pickle

    from machlib.geometry import _human_template as ht

    built = ht.human_template()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = tmp_path / "machlib" / "template" / f"human-{ht._cache_key()}.pickle"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(built, protocol=pickle.HIGHEST_PROTOCOL))
    load = ht.human_template.__wrapped__  # the disk cache without the per-process one
    loaded = load()
    assert loaded is not built
    np.testing.assert_array_equal(np.asarray(loaded.mesh.vertices), np.asarray(built.mesh.vertices))
    path.write_bytes(b"not a pickle")
    with pytest.warns(RuntimeWarning, match="damaged"):
        rebuilt = load()
    np.testing.assert_allclose(np.asarray(rebuilt.mesh.vertices), np.asarray(built.mesh.vertices), atol=1e-6)
    np.testing.assert_array_equal(rebuilt.landmark_uv, built.landmark_uv)
    assert pickle.loads(path.read_bytes()).human is not None  # the rebuilt one replaced the damage
