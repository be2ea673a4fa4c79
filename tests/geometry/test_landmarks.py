"""Tests of machlib.geometry._landmarks (MediaPipe FaceMesh + flip confidence)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from machlib._errors import NoFaceError
from machlib._image import default_portrait
from machlib.geometry._landmarks import (
    NUM_LANDMARKS,
    Landmarks,
    detect_faces,
    detect_landmarks,
    mirror_permutation,
)

# MediaPipe FaceMesh indices on the facial midline (nose tip 1, chin 152, forehead 10, lips 0/17).
MIDLINE = [0, 1, 2, 4, 5, 6, 8, 9, 10, 13, 14, 17, 18, 151, 152, 164, 168, 175, 195, 197, 199, 200]


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return default_portrait()


@pytest.fixture(scope="module")
def portrait_landmarks(portrait) -> Landmarks:
    return detect_landmarks(portrait)


def test_default_portrait_landmarks(portrait, portrait_landmarks):
    lm = portrait_landmarks
    h, w = portrait.shape[:2]
    assert isinstance(lm, Landmarks)
    assert lm.points.shape == (NUM_LANDMARKS, 2) and lm.points.dtype == np.float32
    assert lm.depth.shape == (NUM_LANDMARKS,) and lm.depth.dtype == np.float32
    assert lm.confidence.shape == (NUM_LANDMARKS,) and lm.box.shape == (4,)
    x, y = lm.points[:, 0], lm.points[:, 1]
    assert (x >= 0).all() and (x <= w).all() and (y >= 0).all() and (y <= h).all()
    x0, y0, x1, y1 = lm.box.tolist()
    assert np.allclose(lm.box, [x.min(), y.min(), x.max(), y.max()])
    assert 0.2 * w < x1 - x0 < 0.8 * w and 0.2 * h < y1 - y0 < 0.8 * h
    assert 0.7 < (y1 - y0) / (x1 - x0) < 1.6
    # Anatomy: the subject's right eye (33) is on the image left, nose tip between the eyes,
    # eyes above the nose, nose above the chin (152), nose tip closest to the camera.
    assert lm.points[33, 0] < lm.points[1, 0] < lm.points[263, 0]
    assert lm.points[33, 1] < lm.points[1, 1] < lm.points[152, 1]
    assert lm.depth[1] < np.median(lm.depth)


def test_confidence(portrait_landmarks):
    c = portrait_landmarks.confidence
    assert c.dtype == np.float32 and (c >= 0).all() and (c <= 1).all()
    assert (c > 0.5).mean() > 0.8
    assert np.median(c) > 0.8


def test_flip_confidence_off_keeps_points(portrait, portrait_landmarks):
    lm = detect_landmarks(portrait, flip_confidence=False)
    assert np.array_equal(lm.points, portrait_landmarks.points)
    assert np.array_equal(lm.depth, portrait_landmarks.depth)
    assert (lm.confidence == 1).all()


def test_deterministic(portrait, portrait_landmarks):
    again = detect_landmarks(portrait)
    for a, b in zip(again, portrait_landmarks):
        assert np.array_equal(a, b)


def test_astronaut():
    image = data.astronaut()
    lm = detect_landmarks(image)
    h, w = image.shape[:2]
    assert lm.points.shape == (NUM_LANDMARKS, 2)
    assert (lm.points >= 0).all() and (lm.points[:, 0] <= w).all() and (lm.points[:, 1] <= h).all()
    assert np.median(lm.confidence) > 0.8


def test_blank_image_has_no_face():
    with pytest.raises(NoFaceError, match="no face found in the image"):
        detect_landmarks(np.full((256, 256, 3), 127, np.uint8))
    assert detect_faces(np.zeros((128, 128, 3), np.uint8)) == []


def test_two_faces(portrait):
    h, w = portrait.shape[:2]
    small = np.asarray(Image.fromarray(portrait).resize((w // 2, h // 2), Image.Resampling.BILINEAR))
    right = np.zeros((h, w // 2, 3), np.uint8)
    right[h // 4 : h // 4 + h // 2] = small
    image = np.concatenate([portrait, right], axis=1)

    faces = detect_faces(image)
    assert len(faces) == 2
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert areas[0] > 2 * areas[1]
    assert faces[0].box[2] < w < faces[1].box[0]  # big face on the left, small on the right

    lm = detect_landmarks(image)
    assert lm.box[2] < w and np.array_equal(lm.points, faces[0].points)
    with pytest.raises(NoFaceError, match="found 2 faces; strict mode needs exactly one"):
        detect_landmarks(image, strict=True)
    assert len(detect_faces(image, max_faces=1)) == 1


def test_strict_single_face(portrait, portrait_landmarks):
    lm = detect_landmarks(portrait, strict=True)
    assert np.array_equal(lm.points, portrait_landmarks.points)


def test_bad_inputs(portrait):
    with pytest.raises(TypeError, match="detect_landmarks"):
        detect_landmarks(portrait.astype(np.float32))
    with pytest.raises(ValueError, match="detect_landmarks"):
        detect_landmarks(portrait[..., 0])
    with pytest.raises(ValueError, match="detect_faces"):
        detect_faces(portrait, max_faces=0)


def test_mirror_permutation_is_an_involution():
    perm = mirror_permutation()
    ident = np.arange(NUM_LANDMARKS)
    assert perm.shape == (NUM_LANDMARKS,)
    assert np.array_equal(np.sort(perm), ident)
    assert np.array_equal(perm[perm], ident)
    assert (perm[MIDLINE] == MIDLINE).all()
    # Well-known left/right pairs: eye corners, mouth corners, cheeks, iris centres.
    for a, b in [(33, 263), (133, 362), (61, 291), (234, 454), (468, 473)]:
        assert perm[a] == b and perm[b] == a


def test_mirror_permutation_matches_mediapipe_sets():
    from mediapipe.python.solutions import face_mesh_connections as fmc

    perm = mirror_permutation()

    def idx(conn):
        return sorted({i for edge in conn for i in edge})

    assert sorted(perm[idx(fmc.FACEMESH_LEFT_EYE)]) == idx(fmc.FACEMESH_RIGHT_EYE)
    assert sorted(perm[idx(fmc.FACEMESH_LEFT_IRIS)]) == idx(fmc.FACEMESH_RIGHT_IRIS)
    assert sorted(perm[idx(fmc.FACEMESH_FACE_OVAL)]) == idx(fmc.FACEMESH_FACE_OVAL)


def test_flipped_detection_maps_back(portrait, portrait_landmarks):
    w = portrait.shape[1]
    flipped = detect_landmarks(np.ascontiguousarray(portrait[:, ::-1]), flip_confidence=False)
    back = flipped.points[mirror_permutation()].copy()
    back[:, 0] = w - back[:, 0]
    d = np.linalg.norm(back - portrait_landmarks.points, axis=1)
    assert np.median(d) < 3.0  # pixels; a wrong permutation gives tens of pixels


def test_overlapping_quiet_blocks_of_two_threads_restore_stderr(tmp_path):
    """fd 2 is the process's: the landmarks' and the segmentation's silenced blocks, overlapping
    on two threads, must leave it pointing where it pointed before (not at /dev/null)."""
    import os
    import threading

    from machlib.geometry._landmarks import _quiet_stderr

    log = tmp_path / "stderr.txt"
    saved = os.dup(2)
    try:
        with open(log, "wb") as f:
            os.dup2(f.fileno(), 2)
        inside, leave = threading.Event(), threading.Event()

        def other():
            with _quiet_stderr():
                inside.set()
                leave.wait()

        t = threading.Thread(target=other)
        with _quiet_stderr():  # A enters, then B, A leaves while B is inside, then B leaves
            t.start()
            inside.wait()
            os.write(2, b"silenced\n")
        os.write(2, b"silenced too\n")  # B is still inside
        leave.set()
        t.join()
        os.write(2, b"heard\n")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    assert log.read_bytes() == b"heard\n"
