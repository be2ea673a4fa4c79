"""Dense 2D face landmarks (MediaPipe FaceMesh, 478 points) with per-point confidence.

The detector is MediaPipe FaceMesh from ``mediapipe==0.10.14`` (its model ships inside the
wheel, so detection works offline), legacy ``mp.solutions.face_mesh`` API, with
``refine_landmarks=True``: 468 face-mesh points plus 10 iris points (468–472 and 473–477).

Coordinates follow :doc:`/conventions`: continuous pixel coordinates ``(x, y)``, origin at the
top-left image corner, ``y`` down, pixel ``(i, j)`` centred at ``(j + 0.5, i + 0.5)``.

MediaPipe's legacy API reports no per-point confidence, so :func:`detect_landmarks` estimates one
by test-time augmentation: it also detects on the horizontally flipped image, maps those landmarks
back (``x → W − x`` and the left/right index permutation of the mesh topology, shipped as
``machlib/data/mediapipe_mirror.json``) and scores each point by how well the two estimates agree.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import warnings
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
from jaxtyping import Float32, Int

from .._errors import InputError, NoFaceError
from .._image import DEFAULT_PORTRAIT, default_portrait

__all__ = ["NUM_LANDMARKS", "Landmarks", "detect_faces", "detect_landmarks", "mirror_permutation",
           "LandmarkDetector", "MediaPipeDetector"]

#: Number of landmarks per face: 468 FaceMesh points + 10 iris points.
NUM_LANDMARKS = 478

#: Agreement scale of the flip confidence, as a fraction of the face-box diagonal.
_CONFIDENCE_SCALE = 0.02

_MIRROR_PATH = Path(__file__).resolve().parent.parent / "data" / "mediapipe_mirror.json"
_LOCK = threading.Lock()  # a MediaPipe graph must not run two images at once


class Landmarks(NamedTuple):
    """Landmarks of one face, all numpy ``float32``.

    Attributes:
        points: ``(K, 2)`` continuous pixel coordinates ``(x, y)`` (``K = NUM_LANDMARKS``),
            exactly MediaPipe's estimate on the unflipped image. Points may lie slightly outside
            the image when the face is cut by the border.
        depth: ``(K,)`` relative depth in pixels (MediaPipe's ``z × W``), origin near the head
            centre, negative = towards the camera.
        confidence: ``(K,)`` in ``[0, 1]``: ``exp(-(d / (0.02 · D))²)`` where ``d`` is the
            distance between the estimate on the image and the mirrored estimate on its
            horizontal flip, and ``D`` the diagonal of :attr:`box`. All ones when flip
            confidence is disabled; all zeros when the flipped image yields no matching face.
        box: ``(4,)`` ``(x0, y0, x1, y1)`` in pixels, the bounding box of :attr:`points`.
    """

    points: Float32[np.ndarray, "K 2"]
    depth: Float32[np.ndarray, " K"]
    confidence: Float32[np.ndarray, " K"]
    box: Float32[np.ndarray, "4"]


def _check_image(fn: str, image: object) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{fn}: image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"{fn}: image must have dtype uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"{fn}: image must have shape (H, W, 3), got {image.shape}")
    return np.ascontiguousarray(image)


_QUIET_LOCK = threading.Lock()
_quiet = {"depth": 0, "saved": None}


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C++-level stderr (TFLite/absl start-up chatter) for the duration of the block,
    unless ``$MACHLIB_VERBOSE`` is set (``machlib --verbose``).

    File descriptor 2 belongs to the whole process, so the blocks of all threads share one
    redirection: the first to enter saves the terminal's descriptor and points fd 2 at
    ``/dev/null``, the last to leave restores it. (Each saving and restoring on its own, two
    threads' overlapping blocks, e.g. the landmarks and the person segmentation of ``machlib
    make``, could leave fd 2 silenced for good.)"""
    if os.environ.get("MACHLIB_VERBOSE"):
        yield
        return
    with _QUIET_LOCK:
        if _quiet["depth"] == 0:
            try:
                saved = os.dup(2)
            except OSError:  # no usable fd 2: nothing to silence
                saved = None
            if saved is not None:
                with open(os.devnull, "wb") as null:
                    os.dup2(null.fileno(), 2)
            _quiet["saved"] = saved
        _quiet["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet["depth"] -= 1
            if _quiet["depth"] == 0 and _quiet["saved"] is not None:
                os.dup2(_quiet["saved"], 2)
                os.close(_quiet["saved"])
                _quiet["saved"] = None


@functools.lru_cache(maxsize=8)
def _face_mesh(max_faces: int):
    """The FaceMesh graph for ``max_faces``, created once and reused."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from .._mediapipe import solution

        face_mesh = solution("face_mesh")

        with _quiet_stderr():
            mesh = face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=max_faces,
                refine_landmarks=True,
                min_detection_confidence=0.5,
            )
    return mesh


def _run_mesh(image: np.ndarray, max_faces: int) -> list[np.ndarray]:
    """Raw MediaPipe output: a list of ``(K, 3)`` float64 arrays ``(x·W, y·H, z·W)``."""
    h, w = image.shape[:2]
    # The graph's sub-models log their start-up (XNNPACK, absl) to fd 2 when they open, on the
    # graph's own threads, some time after the graph is built and before its first result, or
    # the first time they run (the landmark model first runs on the first face): the graph is
    # built and run in one silenced block, so that no line escapes in between.
    with _LOCK, warnings.catch_warnings(), _quiet_stderr():
        warnings.simplefilter("ignore")  # protobuf deprecation warnings from mediapipe
        result = _face_mesh(max_faces).process(image)
    faces = []
    for face in result.multi_face_landmarks or ():
        xyz = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float64)
        if xyz.shape != (NUM_LANDMARKS, 3):
            raise RuntimeError(
                f"MediaPipe returned {xyz.shape[0]} landmarks, expected {NUM_LANDMARKS}"
            )
        faces.append(xyz * np.array([w, h, w], dtype=np.float64))
    return faces


def _box(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def _area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


@functools.lru_cache(maxsize=1)
def _mirror_cached() -> np.ndarray:
    with open(_MIRROR_PATH, encoding="utf-8") as f:
        perm = np.asarray(json.load(f)["permutation"], dtype=np.int64)
    if perm.shape != (NUM_LANDMARKS,) or not np.array_equal(perm[perm], np.arange(NUM_LANDMARKS)):
        raise RuntimeError(f"{_MIRROR_PATH} is not a valid mirror permutation")
    perm.setflags(write=False)
    return perm


def mirror_permutation() -> Int[np.ndarray, " 478"]:
    """Left/right mirror correspondence of the 478 MediaPipe landmarks.

    ``perm[k]`` is the index of the landmark that is the mirror image of landmark ``k`` (e.g.
    the left outer eye corner ↔ the right one); points on the facial midline map to themselves.
    It is an involution: ``perm[perm] == arange(478)``. To mirror landmarks of a horizontally
    flipped image of width ``W`` back onto the original: ``x = W − x_flipped[perm]``.

    Returns:
        ``(478,)`` int64 array, a fresh copy.

    Example:
        >>> import numpy as np
        >>> from machlib.geometry import mirror_permutation
        >>> perm = mirror_permutation()
        >>> bool((perm[perm] == np.arange(478)).all()), int(perm[1])  # 1 = nose tip, midline
        (True, 1)
    """
    return _mirror_cached().copy()


def _flip_confidence(faces: list[np.ndarray], image: np.ndarray, max_faces: int) -> list[np.ndarray]:
    """Per-point agreement between each face and its mirrored estimate on the flipped image."""
    w = image.shape[1]
    perm = _mirror_cached()
    flipped = _run_mesh(np.ascontiguousarray(image[:, ::-1]), max_faces)
    back = []
    for xyz in flipped:
        pts = xyz[perm, :2].copy()
        pts[:, 0] = w - pts[:, 0]
        back.append(pts)
    back_boxes = [_box(p) for p in back]
    out = []
    for xyz in faces:
        pts = xyz[:, :2]
        box = _box(pts)
        ious = [_iou(box, b) for b in back_boxes]
        if not ious or max(ious) < 0.3:
            out.append(np.zeros(NUM_LANDMARKS, np.float32))
            continue
        other = back[int(np.argmax(ious))]
        d = np.linalg.norm(pts - other, axis=1)
        size = max(float(np.hypot(box[2] - box[0], box[3] - box[1])), 1e-6)
        out.append(np.exp(-((d / (_CONFIDENCE_SCALE * size)) ** 2)).astype(np.float32))
    return out


def _detect(image: np.ndarray, max_faces: int, flip_confidence: bool) -> list[Landmarks]:
    faces = _run_mesh(image, max_faces)
    if not faces:
        return []
    if flip_confidence:
        confidences = _flip_confidence(faces, image, max_faces)
    else:
        confidences = [np.ones(NUM_LANDMARKS, np.float32) for _ in faces]
    result = [
        Landmarks(
            points=xyz[:, :2].astype(np.float32),
            depth=xyz[:, 2].astype(np.float32),
            confidence=conf,
            box=_box(xyz[:, :2]).astype(np.float32),
        )
        for xyz, conf in zip(faces, confidences)
    ]
    # Largest first; ties broken by position so the order is deterministic.
    result.sort(key=lambda lm: (-_area(lm.box), float(lm.box[0]), float(lm.box[1])))
    return result


def _windows(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Sub-images ``(y, x, h, w)`` that a second detector pass looks at: overlapping squares
    along the long side (side = the short side, half-overlapping) and the four corner squares of
    two thirds of the short side."""
    side = min(height, width)
    long = max(height, width)
    count = max(1, int(np.ceil(long / (side / 2))) - 1) if long > side else 1
    starts = np.linspace(0, long - side, count).round().astype(int) if long > side else [0]
    out = [(0, int(st), side, side) if width >= height else (int(st), 0, side, side) for st in starts]
    tile = round(2 * side / 3)
    out += [(y, x, tile, tile) for y in (0, height - tile) for x in (0, width - tile)]
    return out


def _more_faces(image: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
    """Boxes of faces that the whole-image pass missed, found in :func:`_windows` of the image.

    MediaPipe's face detector sees the image letterboxed to 128 × 128: in a wide image of two
    people side by side it may find only one face. Each window is searched again; a face is new
    when its box neither overlaps a known box (IoU > 0.3) nor has its centre inside one (a face
    cut by a window's edge).
    """
    found = [np.asarray(b, np.float64) for b in boxes]
    new = []
    height, width = image.shape[:2]
    for y, x, h, w in _windows(height, width):
        if h < 32 or w < 32:
            continue
        for xyz in _run_mesh(np.ascontiguousarray(image[y : y + h, x : x + w]), 4):
            box = _box(xyz[:, :2]) + np.array([x, y, x, y], np.float64)
            centre = 0.5 * (box[:2] + box[2:])
            if any(_iou(box, b) > 0.3 or (b[0] <= centre[0] <= b[2] and b[1] <= centre[1] <= b[3]) for b in found):
                continue
            found.append(box)
            new.append(box)
    return new


def detect_faces(
    image: np.ndarray, *, max_faces: int = 4, flip_confidence: bool = True
) -> list[Landmarks]:
    """Detect up to ``max_faces`` faces and their 478 landmarks.

    Deterministic: the same image gives bit-identical results. The MediaPipe graph is created
    once per ``max_faces`` and reused (thread-safe; calls are serialised).

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB image (e.g. from :func:`machlib.load_image`).
        max_faces: most faces to return, ``>= 1``.
        flip_confidence: estimate :attr:`Landmarks.confidence` by re-detecting on the
            horizontally flipped image (doubles the cost); if False confidences are all ones.

    Returns:
        One :class:`Landmarks` per face, sorted by box area, largest first; empty if none.

    Raises:
        TypeError: ``image`` is not a ``uint8`` numpy array.
        ValueError: ``image`` is not ``(H, W, 3)``, or ``max_faces < 1``.
    """
    image = _check_image("detect_faces", image)
    if not isinstance(max_faces, int) or max_faces < 1:
        raise ValueError(f"detect_faces: max_faces must be an integer >= 1, got {max_faces!r}")
    return _detect(image, max_faces, flip_confidence)


def detect_landmarks(
    image: np.ndarray, *, strict: bool = False, flip_confidence: bool = True
) -> Landmarks:
    """Landmarks of the largest face in a portrait.

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB image (e.g. from :func:`machlib.load_image`).
        strict: require exactly one face. Up to 4 are looked for in the whole image and, when
            it holds one, again in overlapping windows of it (MediaPipe's detector sees the
            image at 128 × 128, so one of two faces side by side can be missed); that second
            pass costs about six more detector runs.
        flip_confidence: see :func:`detect_faces`.

    Returns:
        :class:`Landmarks` of the face with the largest landmark box.

    Raises:
        NoFaceError: no face was found; or ``strict`` and more than one face was found.
        TypeError: ``image`` is not a ``uint8`` numpy array.
        ValueError: ``image`` is not ``(H, W, 3)``.

    Example:
        >>> from machlib import default_portrait
        >>> from machlib.geometry import detect_landmarks
        >>> lm = detect_landmarks(default_portrait())
        >>> lm.points.shape, lm.points.dtype.name, bool(lm.confidence.min() >= 0)
        ((478, 2), 'float32', True)
    """
    image = _check_image("detect_landmarks", image)
    faces = _detect(image, 4, flip_confidence)
    if not faces:
        raise NoFaceError("no face found in the image")
    if strict and len(faces) == 1:  # a second pass over parts of the image: faces side by side
        faces = faces + [None] * len(_more_faces(image, [faces[0].box]))
    if strict and len(faces) > 1:
        raise NoFaceError(f"found {len(faces)} faces; strict mode needs exactly one")
    return faces[0]


@runtime_checkable
class LandmarkDetector(Protocol):
    """Anything that finds the dense landmarks of the main face in a portrait.

    ``detector(image, strict=False) -> Landmarks``: ``image`` is an ``(H, W, 3)`` ``uint8`` RGB
    array; the result holds :data:`NUM_LANDMARKS` points in MediaPipe Face Mesh's order (the
    fit's landmark tables use that order), in pixels. Raise :class:`~machlib.NoFaceError` when
    there is no face (or several, with ``strict``). :class:`MediaPipeDetector` is the default;
    pass another to :func:`machlib.pipeline.fit_portrait` (``detector=``) to fit with a
    different model, a cached detection or hand-placed points.
    """

    def __call__(self, image: np.ndarray, *, strict: bool = False) -> Landmarks: ...


class MediaPipeDetector:
    """The default :class:`LandmarkDetector`: MediaPipe Face Mesh with iris refinement
    (:func:`detect_landmarks`).

    Args:
        flip_confidence: score each point by the agreement with the detection on the mirrored
            image (see :func:`detect_faces`).

    Example:
        >>> from machlib import default_portrait
        >>> from machlib.geometry import LandmarkDetector, MediaPipeDetector
        >>> det = MediaPipeDetector()
        >>> isinstance(det, LandmarkDetector), det(default_portrait()).points.shape
        (True, (478, 2))
    """

    def __init__(self, *, flip_confidence: bool = True):
        self.flip_confidence = bool(flip_confidence)

    def __call__(self, image: np.ndarray, *, strict: bool = False) -> Landmarks:
        return detect_landmarks(image, strict=strict, flip_confidence=self.flip_confidence)

    def __repr__(self) -> str:
        return f"MediaPipeDetector(flip_confidence={self.flip_confidence})"


def check_landmarks(landmarks: object, image_size: tuple[int, int], owner: str) -> Landmarks:
    """A detector's result as :class:`Landmarks`, or an :class:`~machlib.InputError` naming what
    is wrong (type, shape, non-finite values, all points outside the image)."""
    if not isinstance(landmarks, Landmarks):
        raise InputError(f"{owner}: the landmark detector returned {type(landmarks).__name__}, not Landmarks")
    pts = np.asarray(landmarks.points)
    if pts.shape != (NUM_LANDMARKS, 2):
        raise InputError(f"{owner}: the landmark detector returned points of shape {pts.shape}, "
                         f"expected ({NUM_LANDMARKS}, 2) in MediaPipe Face Mesh order")
    for name in ("points", "depth", "confidence", "box"):
        if not np.isfinite(np.asarray(getattr(landmarks, name), np.float64)).all():
            raise InputError(f"{owner}: the landmark detector returned non-finite {name}")
    if np.shape(landmarks.depth) != (NUM_LANDMARKS,) or np.shape(landmarks.confidence) != (NUM_LANDMARKS,):
        raise InputError(f"{owner}: the landmark detector's depth and confidence must have shape ({NUM_LANDMARKS},)")
    w, h = image_size
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= w) & (pts[:, 1] >= 0) & (pts[:, 1] <= h)
    if not inside.any():
        raise InputError(f"{owner}: every landmark lies outside the {w}×{h} image")
    return Landmarks(*(np.asarray(getattr(landmarks, k), np.float32) for k in Landmarks._fields))


# --------------------------------------------------------------------------------------------
# One-off generator of machlib/data/mediapipe_mirror.json (run by hand; the result is shipped).


def _kabsch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Proper rotation ``R`` and translation ``t`` minimising ``|src @ R.T + t − dst|²``."""
    cs, cd = src.mean(0), dst.mean(0)
    u, _, vt = np.linalg.svd((src - cs).T @ (dst - cd))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return r, cd - cs @ r.T


def _symmetry_cost(xyz: np.ndarray, iters: int = 30) -> np.ndarray:
    """Cost ``C[i, j]``: squared distance of point ``i`` to mirrored point ``j``, after fitting
    the face's symmetry plane (reflection + rigid ICP with Hungarian matching). Scale-free."""
    from scipy.optimize import linear_sum_assignment

    p = xyz - xyz.mean(0)
    p = p / np.sqrt((p**2).sum(1).mean())
    q = p * np.array([-1.0, 1.0, 1.0])  # reflect about the image-vertical plane
    perm = None
    moved = q
    for _ in range(iters):
        cost = ((p[:, None, :] - moved[None, :, :]) ** 2).sum(-1)
        _, new = linear_sum_assignment(cost)
        if perm is not None and np.array_equal(new, perm):
            break
        perm = new
        r, t = _kabsch(q[perm], p)
        moved = q @ r.T + t
    return ((p[:, None, :] - moved[None, :, :]) ** 2).sum(-1)


def _involution(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost involution (pairs + fixed points) for a cost matrix: Hungarian on the
    symmetrised cost, then any non-involutive cycles re-paired greedily by cost."""
    from scipy.optimize import linear_sum_assignment

    c = 0.5 * (cost + cost.T)
    _, perm = linear_sum_assignment(c)
    n = len(perm)
    ok = perm[perm] == np.arange(n)
    out = np.where(ok, perm, -1)
    todo = [i for i in range(n) if not ok[i]]
    while todo:
        sub = c[np.ix_(todo, todo)]
        a, b = np.unravel_index(np.argmin(sub), sub.shape)
        i, j = todo[a], todo[b]
        out[i], out[j] = j, i
        todo = [k for k in todo if k not in (i, j)]
    return out


def _build_mirror_permutation(path: str | os.PathLike | None = None) -> np.ndarray:
    """Compute the left/right landmark correspondence and write it as JSON (run once, by hand).

    Detects the 3D landmarks (``x·W, y·H, z·W``) of the default portrait and of
    ``skimage.data.astronaut()``, fits each face's symmetry plane (mirror + rigid ICP, matching
    by the Hungarian algorithm) and solves one assignment on the summed costs, forced to be an
    involution. Checks it against MediaPipe's own left/right eye, eyebrow and iris index sets.

    Args:
        path: output JSON; defaults to ``machlib/data/mediapipe_mirror.json``.

    Returns:
        The ``(478,)`` permutation.
    """
    from skimage import data

    from .._mediapipe import solution

    fmc = solution("face_mesh_connections")

    cost = np.zeros((NUM_LANDMARKS, NUM_LANDMARKS))
    for image in (default_portrait(), data.astronaut()):
        faces = _run_mesh(np.ascontiguousarray(image), 1)
        if not faces:
            raise RuntimeError("_build_mirror_permutation: no face in a reference image")
        cost += _symmetry_cost(faces[0])
    perm = _involution(cost)

    ident = np.arange(NUM_LANDMARKS)
    if not np.array_equal(perm[perm], ident):
        raise RuntimeError("mirror permutation is not an involution")

    def idx(conn):
        return sorted({int(i) for e in conn for i in e})

    for left, right in (
        (fmc.FACEMESH_LEFT_EYE, fmc.FACEMESH_RIGHT_EYE),
        (fmc.FACEMESH_LEFT_EYEBROW, fmc.FACEMESH_RIGHT_EYEBROW),
        (fmc.FACEMESH_LEFT_IRIS, fmc.FACEMESH_RIGHT_IRIS),
    ):
        if sorted(perm[idx(left)].tolist()) != idx(right):
            raise RuntimeError("mirror permutation does not swap MediaPipe's left/right sets")
    for sym in (fmc.FACEMESH_LIPS, fmc.FACEMESH_FACE_OVAL):
        if sorted(perm[idx(sym)].tolist()) != idx(sym):
            raise RuntimeError("mirror permutation does not keep lips/face oval onto themselves")

    fixed = [int(i) for i in ident[perm == ident]]
    doc = {
        "description": (
            "Left/right mirror correspondence of MediaPipe FaceMesh's 478 landmarks "
            "(refine_landmarks=True): permutation[k] is the mirror of landmark k; an involution. "
            "Generated by machlib.geometry._landmarks._build_mirror_permutation()."
        ),
        "source_images": [DEFAULT_PORTRAIT, "skimage.data.astronaut"],
        "num_landmarks": NUM_LANDMARKS,
        "midline": fixed,
        "permutation": [int(i) for i in perm],
    }
    out = Path(path) if path is not None else _MIRROR_PATH
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    _mirror_cached.cache_clear()
    return perm
