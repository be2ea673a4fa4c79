"""Facts about MediaPipe FaceMesh's 478-point topology shared by every stage."""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["face_oval", "RIGHT_EYE", "RIGHT_BROW", "LIPS_OUTER", "LIPS_INNER", "RIGHT_NOSTRIL", "RIGHT_IRIS"]

#: Right eye opening (lid margin), ordered around the eye starting at the outer corner (16).
RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
#: Right eyebrow: upper edge outer → inner, then lower edge inner → outer (10).
RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
#: Outer lip contour, ordered from the right mouth corner over the upper lip (20).
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
#: Inner lip contour (the mouth opening), ordered like :data:`LIPS_OUTER` (20).
LIPS_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
#: Points ringing the right nostril opening (unordered; see the module docstring) (10).
RIGHT_NOSTRIL = (20, 60, 75, 79, 99, 141, 166, 238, 241, 242)
#: Right iris centre and its 4 rim points (FaceMesh with ``refine_landmarks``).
RIGHT_IRIS = (468, 469, 470, 471, 472)


@functools.lru_cache(maxsize=1)
def face_oval() -> np.ndarray:
    """Indices of MediaPipe's face-oval landmarks, ordered around the face (36,)."""
    from ._mediapipe import solution

    fmc = solution("face_mesh_connections")

    edges = {}
    for a, b in fmc.FACEMESH_FACE_OVAL:
        edges.setdefault(a, []).append(b)
        edges.setdefault(b, []).append(a)
    start = min(edges)
    order, prev = [start], None
    while True:
        cur = order[-1]
        nxt = [n for n in edges[cur] if n != prev]
        if not nxt or nxt[0] == start:
            break
        prev = cur
        order.append(nxt[0])
    return np.array(order)
