"""Names for MediaPipe FaceMesh landmark indices (the 478-point topology with irises).

``left`` and ``right`` are the **subject's** sides, as in MediaPipe's own ``FACEMESH_LEFT_EYE``:
the subject's left eye appears on the image's *right* in a frontal portrait, and lies on head
space +x (:doc:`/conventions`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._facemesh import LIPS_INNER, LIPS_OUTER, RIGHT_BROW, RIGHT_EYE, RIGHT_IRIS

__all__ = ["FaceMeshLandmarks", "LANDMARKS"]


def _ids(values) -> np.ndarray:
    a = np.asarray(values, dtype=np.int32)
    a.setflags(write=False)
    return a


def _field(values):
    return dataclasses.field(default_factory=lambda: _ids(values))


# The face silhouette, from the top of the forehead (10) toward the subject's left (image right in
# a frontal view), down to the chin (152) and back up the right side: clockwise in the image.
_FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
              152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
# Mirror images (MediaPipe's FACEMESH_LEFT_*) of the right-side contours, in corresponding order.
_LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
_LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
_LEFT_IRIS = (473, 474, 475, 476, 477)


@dataclasses.dataclass(frozen=True)
class FaceMeshLandmarks:
    """Named indices into MediaPipe FaceMesh's 478 landmarks (use the instance :data:`LANDMARKS`).

    Single points are ``int``; groups are read-only ``int32`` numpy arrays, so both index a
    ``(478, 2)`` or ``(478, 3)`` array directly (numpy or JAX): ``points[LANDMARKS.nose_tip]`` is
    one point, ``points[LANDMARKS.face_oval]`` a ``(36, 2)`` polygon. ``left``/``right`` are the
    subject's sides (MediaPipe's naming): the left eye is on the image's right in a frontal view.
    Contours are closed loops, listed without repeating the first point.

    Attributes:
        nose_tip: ``1``, the tip of the nose (pronasale).
        nose_bridge: ``168``, the bridge between the eyes (near the sellion).
        chin: ``152``, the lowest point of the chin on the midline (menton).
        forehead: ``10``, the top of the face oval on the midline.
        right_eye_outer: ``33``, outer (lateral) corner of the right eye.
        right_eye_inner: ``133``, inner (medial) corner of the right eye.
        left_eye_outer: ``263``, outer corner of the left eye.
        left_eye_inner: ``362``, inner corner of the left eye.
        mouth_right: ``61``, right corner of the mouth (outer lip contour).
        mouth_left: ``291``, left corner of the mouth.
        upper_lip_top: ``0``, top of the upper lip on the midline.
        lower_lip_bottom: ``17``, bottom of the lower lip on the midline.
        right_iris_centre: ``468``, centre of the right iris (pupil).
        left_iris_centre: ``473``, centre of the left iris.
        iris_centres: ``(2,)`` ``[468, 473]``, right then left.
        right_iris: ``(5,)`` right iris centre then 4 rim points (469–472).
        left_iris: ``(5,)`` left iris centre then 4 rim points (474–477; index order, so the rim
            is not point-for-point the mirror of :attr:`right_iris`).
        right_eye: ``(16,)`` right eye opening (lid margin), from the outer corner along the upper
            lid to the inner corner and back along the lower lid.
        left_eye: ``(16,)`` the left eye's opening, the mirror image of :attr:`right_eye` point for
            point (outer corner, upper lid, inner corner, lower lid).
        right_brow: ``(10,)`` right eyebrow: upper edge outer → inner, then lower edge inner → outer.
        left_brow: ``(10,)`` left eyebrow, the mirror of :attr:`right_brow`.
        lips_outer: ``(20,)`` outer lip contour from the right mouth corner over the upper lip to the
            left corner and back along the lower lip.
        lips_inner: ``(20,)`` inner lip contour (the mouth opening), ordered like :attr:`lips_outer`.
        face_oval: ``(36,)`` the face silhouette, from :attr:`forehead` toward the subject's left,
            through :attr:`chin` and back (clockwise in the image).

    Example:
        >>> import numpy as np
        >>> from machlib.geometry import LANDMARKS
        >>> LANDMARKS.iris_centres.tolist(), LANDMARKS.face_oval.shape
        ([468, 473], (36,))
        >>> points = np.zeros((478, 2), np.float32)
        >>> points[LANDMARKS.left_eye].shape, points[LANDMARKS.nose_tip].shape
        ((16, 2), (2,))
    """

    nose_tip: int = 1
    nose_bridge: int = 168
    chin: int = 152
    forehead: int = 10
    right_eye_outer: int = 33
    right_eye_inner: int = 133
    left_eye_outer: int = 263
    left_eye_inner: int = 362
    mouth_right: int = 61
    mouth_left: int = 291
    upper_lip_top: int = 0
    lower_lip_bottom: int = 17
    right_iris_centre: int = 468
    left_iris_centre: int = 473
    iris_centres: np.ndarray = _field((468, 473))
    right_iris: np.ndarray = _field(RIGHT_IRIS)
    left_iris: np.ndarray = _field(_LEFT_IRIS)
    right_eye: np.ndarray = _field(RIGHT_EYE)
    left_eye: np.ndarray = _field(_LEFT_EYE)
    right_brow: np.ndarray = _field(RIGHT_BROW)
    left_brow: np.ndarray = _field(_LEFT_BROW)
    lips_outer: np.ndarray = _field(LIPS_OUTER)
    lips_inner: np.ndarray = _field(LIPS_INNER)
    face_oval: np.ndarray = _field(_FACE_OVAL)

    def names(self) -> tuple[str, ...]:
        """The names of all entries, in declaration order.

        Example:
            >>> from machlib.geometry import LANDMARKS
            >>> LANDMARKS.names()[:3]
            ('nose_tip', 'nose_bridge', 'chin')
        """
        return tuple(f.name for f in dataclasses.fields(self))


#: Named MediaPipe FaceMesh indices: iris centres, eye and mouth corners, nose tip, chin, face oval,
#: eye, brow and lip contours (a :class:`FaceMeshLandmarks`; ``left``/``right`` are the subject's).
LANDMARKS = FaceMeshLandmarks()
