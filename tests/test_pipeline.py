"""machlib.pipeline.fit_portrait with a LandmarkDetector other than MediaPipe."""

import numpy as np
import pytest
from jaxtyping import TypeCheckError

from machlib import InputError, default_portrait
from machlib.geometry import LandmarkDetector, Landmarks, MediaPipeDetector, detect_landmarks
from machlib.pipeline import fit_portrait


@pytest.fixture(scope="module")
def portrait():
    return default_portrait()


def test_a_custom_detector_is_used(portrait):
    detected = detect_landmarks(portrait)
    calls = []

    def cached(image, *, strict=False):  # a detector that returns a stored detection
        calls.append((image.shape, strict))
        return detected

    assert isinstance(cached, LandmarkDetector) and isinstance(MediaPipeDetector(), LandmarkDetector)
    seen = []  # on_landmarks: called once, with the fit's image and landmarks, before the fit
    mine = fit_portrait(portrait, detector=cached, strict=True, on_landmarks=lambda im, lm: seen.append((im, lm)))
    assert calls == [(portrait.shape, True)]
    assert len(seen) == 1 and seen[0][0] is mine.image and seen[0][1] is mine.landmarks
    np.testing.assert_array_equal(mine.landmarks.points, detected.points)
    default = fit_portrait(portrait)
    np.testing.assert_allclose(np.asarray(mine.result.mesh.vertices), np.asarray(default.result.mesh.vertices), atol=1e-6)
    # a shifted detection moves the fitted camera: the detector's points are what is fitted
    moved = detected._replace(points=detected.points + np.float32([12.0, 0.0]))
    shifted = fit_portrait(portrait, detector=lambda image, strict=False: moved)
    assert float(shifted.result.camera.principal[0] - default.result.camera.principal[0]) != 0.0 or not np.allclose(
        np.asarray(shifted.result.camera.translation), np.asarray(default.result.camera.translation))


def test_bad_detectors_are_named(portrait):
    lm = detect_landmarks(portrait)
    # the test suite's runtime type checker sees the wrong type first; users get the InputError
    with pytest.raises((InputError, TypeCheckError), match="detector"):
        fit_portrait(portrait, detector="mediapipe")
    with pytest.raises(InputError, match="not Landmarks"):
        fit_portrait(portrait, detector=lambda image, strict=False: lm.points)
    with pytest.raises(InputError, match=r"shape \(68, 2\)"):
        fit_portrait(portrait, detector=lambda image, strict=False: Landmarks(
            lm.points[:68], lm.depth[:68], lm.confidence[:68], lm.box))
    with pytest.raises(InputError, match="non-finite points"):
        fit_portrait(portrait, detector=lambda image, strict=False: lm._replace(points=lm.points * np.nan))
    with pytest.raises(InputError, match="outside"):
        fit_portrait(portrait, detector=lambda image, strict=False: lm._replace(points=lm.points - 1e5))


def test_an_error_in_on_landmarks_stops_the_fit(portrait):
    lm = detect_landmarks(portrait)

    def refuse(image, landmarks):
        raise InputError("refused by the caller")

    with pytest.raises(InputError, match="refused by the caller"):
        fit_portrait(portrait, detector=lambda image, strict=False: lm, on_landmarks=refuse)
