"""Tests of machlib.geometry._names: the named FaceMesh indices against MediaPipe's own connection
sets, the mirror permutation and the geometry of a real detection on the bundled portrait."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib.path import Path

from machlib import default_portrait
from machlib.geometry import LANDMARKS, NUM_LANDMARKS, FaceMeshLandmarks, detect_landmarks, mirror_permutation


def _entries():
    return {f.name: getattr(LANDMARKS, f.name) for f in dataclasses.fields(LANDMARKS)}


def test_indices_are_valid_and_read_only():
    for name, ids in _entries().items():
        a = np.atleast_1d(ids)
        assert a.dtype.kind == "i" and (a >= 0).all() and (a < NUM_LANDMARKS).all(), name
        assert len(set(a.tolist())) == a.size, f"{name} repeats an index"
        if isinstance(ids, np.ndarray):
            assert not ids.flags.writeable, name
            with pytest.raises(ValueError):
                ids[0] = 0
    assert LANDMARKS.names() == tuple(_entries())
    with pytest.raises(dataclasses.FrozenInstanceError):
        LANDMARKS.nose_tip = 4
    fresh = FaceMeshLandmarks()
    assert all(np.array_equal(getattr(fresh, k), v) for k, v in _entries().items())


def _loop_edges(loop):
    loop = [int(i) for i in loop]
    return {frozenset(e) for e in zip(loop, loop[1:] + loop[:1])}


def test_contours_match_mediapipe_connections():
    fmc = pytest.importorskip("mediapipe.python.solutions.face_mesh_connections")

    def edges(conn):
        return {frozenset(e) for e in conn}

    assert _loop_edges(LANDMARKS.face_oval) == edges(fmc.FACEMESH_FACE_OVAL)
    assert _loop_edges(LANDMARKS.right_eye) == edges(fmc.FACEMESH_RIGHT_EYE)
    assert _loop_edges(LANDMARKS.left_eye) == edges(fmc.FACEMESH_LEFT_EYE)
    assert set(LANDMARKS.right_brow.tolist()) == {i for e in fmc.FACEMESH_RIGHT_EYEBROW for i in e}
    assert set(LANDMARKS.left_brow.tolist()) == {i for e in fmc.FACEMESH_LEFT_EYEBROW for i in e}
    lips = {i for e in fmc.FACEMESH_LIPS for i in e}
    assert set(LANDMARKS.lips_outer.tolist()) | set(LANDMARKS.lips_inner.tolist()) == lips
    assert set(LANDMARKS.right_iris.tolist()) - {468} == {i for e in fmc.FACEMESH_RIGHT_IRIS for i in e}
    assert set(LANDMARKS.left_iris.tolist()) - {473} == {i for e in fmc.FACEMESH_LEFT_IRIS for i in e}
    # MediaPipe's "left" is the subject's left: the left eye's ring contains the left corners
    assert {LANDMARKS.left_eye_outer, LANDMARKS.left_eye_inner} <= {i for e in fmc.FACEMESH_LEFT_EYE for i in e}


def test_left_is_the_mirror_of_right():
    perm = mirror_permutation()
    np.testing.assert_array_equal(np.sort(perm[LANDMARKS.right_iris]), LANDMARKS.left_iris)  # rim in index order
    pairs = [("right_eye", "left_eye"), ("right_brow", "left_brow"),
             ("right_eye_outer", "left_eye_outer"), ("right_eye_inner", "left_eye_inner"),
             ("mouth_right", "mouth_left"), ("right_iris_centre", "left_iris_centre")]
    for right, left in pairs:
        np.testing.assert_array_equal(perm[getattr(LANDMARKS, right)], getattr(LANDMARKS, left), err_msg=right)
    for mid in ("nose_tip", "nose_bridge", "chin", "forehead", "upper_lip_top", "lower_lip_bottom"):
        assert perm[getattr(LANDMARKS, mid)] == getattr(LANDMARKS, mid), mid
    assert LANDMARKS.iris_centres.tolist() == [LANDMARKS.right_iris_centre, LANDMARKS.left_iris_centre]
    assert LANDMARKS.right_iris[0] == LANDMARKS.right_iris_centre and LANDMARKS.left_iris[0] == LANDMARKS.left_iris_centre
    assert LANDMARKS.right_eye[0] == LANDMARKS.right_eye_outer and LANDMARKS.right_eye[8] == LANDMARKS.right_eye_inner
    assert LANDMARKS.lips_outer[0] == LANDMARKS.mouth_right and LANDMARKS.lips_outer[10] == LANDMARKS.mouth_left
    assert LANDMARKS.face_oval[0] == LANDMARKS.forehead and LANDMARKS.face_oval[18] == LANDMARKS.chin


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    return detect_landmarks(default_portrait()).points.astype(np.float64)


def test_names_agree_with_a_real_detection(points):
    L = LANDMARKS
    x, y = points[:, 0], points[:, 1]
    nose = points[L.nose_tip]
    # frontal portrait: the subject's right eye is on the image left of the nose, the left on the right
    assert x[L.right_eye_outer] < x[L.right_eye_inner] < nose[0] < x[L.left_eye_inner] < x[L.left_eye_outer]
    assert x[L.mouth_right] < nose[0] < x[L.mouth_left]
    assert x[L.right_iris_centre] < nose[0] < x[L.left_iris_centre]
    # vertical order on the midline: forehead, nose bridge, nose tip, lips, chin
    assert y[L.forehead] < y[L.nose_bridge] < nose[1] < y[L.upper_lip_top] < y[L.lower_lip_bottom] < y[L.chin]
    assert y[L.right_eye_outer] < nose[1] < y[L.mouth_right]
    # each iris centre lies inside its own eye opening and the rim around it
    for eye, iris in ((L.right_eye, L.right_iris), (L.left_eye, L.left_iris)):
        assert Path(points[eye]).contains_point(points[iris[0]])
        np.testing.assert_allclose(points[iris[1:]].mean(0), points[iris[0]], atol=2.0)
    # brows above their eyes, mouth opening inside the outer lips
    assert y[L.right_brow].mean() < y[L.right_eye].mean() and y[L.left_brow].mean() < y[L.left_eye].mean()
    assert Path(points[L.lips_outer]).contains_point(points[L.lips_inner].mean(0))
    # the face oval is a simple loop around every other named point, clockwise in the image
    oval = Path(points[L.face_oval])
    inner = np.concatenate([np.atleast_1d(v) for k, v in _entries().items() if k != "face_oval"])
    assert oval.contains_points(points[inner]).all()
    o = points[L.face_oval]
    signed_area = 0.5 * np.sum(o[:, 0] * np.roll(o[:, 1], -1) - np.roll(o[:, 0], -1) * o[:, 1])
    assert signed_area > 0  # positive with y down = clockwise on screen
    assert int(np.argmax(o[:, 1])) in (17, 18, 19)  # the chin is the lowest oval point
    # the arrays index JAX arrays too
    np.testing.assert_allclose(jnp.asarray(points)[L.face_oval], o)
