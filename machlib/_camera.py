"""Pinhole camera pytree and projection.

See :doc:`/conventions` for the coordinate frames used here.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._typing import AnyArray

Vec3 = Float[AnyArray, "3"] | tuple[float, float, float]

__all__ = [
    "Camera",
    "rotation_matrix",
    "project",
    "world_to_camera",
    "look_at",
    "matrix_to_rotvec",
    "intrinsics_from_fov",
]


def _eps(dtype) -> float:
    return float(jnp.finfo(dtype).eps)


class Camera(eqx.Module):
    """A pinhole camera (OpenCV frame): world → camera by ``X_c = R(rotation) X_w + translation``.

    Attributes:
        rotation: ``(3,)`` float, axis-angle (rotation vector, radians) of the world → camera
            rotation. Differentiable, NaN-safe at zero.
        translation: ``(3,)`` float, metres, the world origin in camera coordinates.
        focal: ``(2,)`` float, ``(fx, fy)`` in pixels. Held fixed by the fits.
        principal: ``(2,)`` float, ``(cx, cy)`` in pixels (continuous coordinates, pixel
            ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``).
        image_size: static ``(width, height)`` in pixels.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib import Camera, project
        >>> cam = Camera(jnp.zeros(3), jnp.array([0.0, 0.0, 1.0]), jnp.array([500.0, 500.0]),
        ...              jnp.array([256.0, 256.0]), image_size=(512, 512))
        >>> project(jnp.array([[0.1, 0.0, 0.0]]), cam).tolist()
        [[306.0, 256.0]]
    """

    rotation: Float[AnyArray, "3"]
    translation: Float[AnyArray, "3"]
    focal: Float[AnyArray, "2"]
    principal: Float[AnyArray, "2"]
    image_size: tuple[int, int] = eqx.field(static=True, default=(512, 512))

    def __check_init__(self):
        for name, n in (("rotation", 3), ("translation", 3), ("focal", 2), ("principal", 2)):
            shape = jnp.shape(getattr(self, name))
            if shape != (n,):
                raise ValueError(f"Camera: {name} must have shape ({n},), got {shape}")
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"Camera: image_size must be (width, height) >= 1, got {self.image_size}")


@jax.jit
def rotation_matrix(rotvec: Float[ArrayLike, "3"]) -> Float[Array, "3 3"]:
    """Rodrigues' formula: rotation vector (axis × angle, radians) → 3×3 rotation matrix.

    NaN-safe: value and gradients are finite at ``rotvec = 0`` (Taylor branch with a double
    ``where``).

    Args:
        rotvec: ``(3,)`` float rotation vector.

    Returns:
        ``(3, 3)`` rotation matrix ``R`` such that ``R @ x`` rotates ``x``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib import rotation_matrix
        >>> R = rotation_matrix(jnp.array([0.0, 0.0, jnp.pi / 2]))
        >>> [round(float(v), 6) for v in R @ jnp.array([1.0, 0.0, 0.0])]
        [0.0, 1.0, 0.0]
    """
    rotvec = jnp.asarray(rotvec)
    if rotvec.shape != (3,):
        raise ValueError(f"rotation_matrix: rotvec must have shape (3,), got {rotvec.shape}")
    theta2 = jnp.sum(rotvec * rotvec)
    small = theta2 < _eps(rotvec.dtype) ** 0.5
    safe_theta2 = jnp.where(small, 1.0, theta2)
    theta = jnp.sqrt(safe_theta2)
    a = jnp.where(small, 1.0 - theta2 / 6.0, jnp.sin(theta) / theta)
    b = jnp.where(small, 0.5 - theta2 / 24.0, (1.0 - jnp.cos(theta)) / safe_theta2)
    x, y, z = rotvec
    zero = jnp.zeros_like(x)
    K = jnp.array([[zero, -z, y], [z, zero, -x], [-y, x, zero]])
    return jnp.eye(3, dtype=rotvec.dtype) + a * K + b * (K @ K)


@jax.jit
def world_to_camera(points: Float[ArrayLike, "N 3"], camera: Camera) -> Float[Array, "N 3"]:
    """Transform world points (metres) to the camera frame (x right, y down, z forward).

    Args:
        points: ``(N, 3)`` world positions.
        camera: the :class:`Camera`.

    Returns:
        ``(N, 3)`` camera-frame positions; ``z`` is the depth in metres.
    """
    points = jnp.asarray(points)
    if points.ndim != 2 or points.shape[-1] != 3:
        raise ValueError(f"world_to_camera: points must have shape (N, 3), got {points.shape}")
    R = rotation_matrix(camera.rotation)
    return jnp.matmul(points, R.T, precision=jax.lax.Precision.HIGHEST) + camera.translation


@jax.jit
def project(points: Float[ArrayLike, "N 3"], camera: Camera) -> Float[Array, "N 2"]:
    """Project world points to continuous pixel coordinates ``(x, y)``.

    ``x = fx · X_c / Z_c + cx`` and ``y = fy · Y_c / Z_c + cy``; the depth is clamped away from
    zero so gradients stay finite for points behind or on the camera plane.

    Args:
        points: ``(N, 3)`` world positions in metres.
        camera: the :class:`Camera`.

    Returns:
        ``(N, 2)`` pixel coordinates, origin at the top-left image corner, row axis down.
    """
    pc = world_to_camera(points, camera)
    z = pc[:, 2:3]
    eps = 1e-6
    z = jnp.where(jnp.abs(z) < eps, jnp.where(z < 0, -eps, eps), z)
    return pc[:, :2] / z * camera.focal + camera.principal


def intrinsics_from_fov(
    image_size: tuple[int, int], *, fov_degrees: float = 25.0, axis: str = "height"
) -> tuple[Float[Array, "2"], Float[Array, "2"]]:
    """Square-pixel intrinsics for a field of view.

    Args:
        image_size: ``(width, height)`` in pixels.
        fov_degrees: full field of view in degrees along ``axis``. The default, 25°, is a
            typical portrait lens (about 85 mm full-frame equivalent across the long side).
        axis: ``"height"``, ``"width"`` or ``"max"``: which image extent ``fov_degrees`` spans.

    Returns:
        ``(focal, principal)``: ``(fx, fy)`` and ``(cx, cy)`` in pixels, the principal point at
        the image centre.

    Example:
        >>> from machlib import intrinsics_from_fov
        >>> f, c = intrinsics_from_fov((640, 480), fov_degrees=90.0)
        >>> [round(float(v), 3) for v in f], c.tolist()
        ([240.0, 240.0], [320.0, 240.0])
    """
    w, h = image_size
    if not (0.0 < fov_degrees < 180.0):
        raise ValueError(f"intrinsics_from_fov: fov_degrees must be in (0, 180), got {fov_degrees}")
    extent = {"height": h, "width": w, "max": max(w, h)}.get(axis)
    if extent is None:
        raise ValueError(f"intrinsics_from_fov: axis must be 'height', 'width' or 'max', got {axis!r}")
    f = 0.5 * extent / math.tan(math.radians(fov_degrees) / 2.0)
    return jnp.array([f, f]), jnp.array([w / 2.0, h / 2.0])


def matrix_to_rotvec(R: Float[ArrayLike, "3 3"]) -> Float[Array, "3"]:
    """Inverse of :func:`rotation_matrix`: a 3×3 rotation matrix → rotation vector.

    Robust at every angle including π (Shepperd's quaternion method, branch chosen with
    ``where`` so it traces under ``jit``). Returns the vector with angle in ``[0, π]``.

    Args:
        R: ``(3, 3)`` rotation matrix.

    Returns:
        ``(3,)`` rotation vector (axis × angle, radians).

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib import matrix_to_rotvec
        >>> [round(abs(float(v)), 4) for v in matrix_to_rotvec(jnp.diag(jnp.array([1.0, -1.0, -1.0])))]
        [3.1416, 0.0, 0.0]
    """
    R = jnp.asarray(R)
    if R.shape != (3, 3):
        raise ValueError(f"matrix_to_rotvec: R must have shape (3, 3), got {R.shape}")
    tr = jnp.trace(R)
    d = jnp.diagonal(R)
    # Four candidate (unnormalised) quaternions (w, x, y, z); pick the best-conditioned one.
    cands = jnp.stack([
        jnp.array([1.0 + tr, R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]),
        jnp.array([R[2, 1] - R[1, 2], 1.0 + 2 * d[0] - tr, R[0, 1] + R[1, 0], R[0, 2] + R[2, 0]]),
        jnp.array([R[0, 2] - R[2, 0], R[0, 1] + R[1, 0], 1.0 + 2 * d[1] - tr, R[1, 2] + R[2, 1]]),
        jnp.array([R[1, 0] - R[0, 1], R[0, 2] + R[2, 0], R[1, 2] + R[2, 1], 1.0 + 2 * d[2] - tr]),
    ])
    keys = jnp.array([tr, d[0], d[1], d[2]])
    q = cands[jnp.argmax(keys)]
    q = q / jnp.linalg.norm(q)
    q = jnp.where(q[0] < 0, -q, q)
    w, v = q[0], q[1:]
    n2 = jnp.sum(v * v)
    small = n2 < 1e-12
    n = jnp.sqrt(jnp.where(small, 1.0, n2))
    angle = 2.0 * jnp.arctan2(n, w)
    return jnp.where(small, 2.0 * v / jnp.maximum(w, 1e-12), v * (angle / n))


def look_at(
    eye: Vec3,
    target: Vec3,
    *,
    up: Vec3 = (0.0, 1.0, 0.0),
    image_size: tuple[int, int] = (512, 512),
    fov_degrees: float = 25.0,
) -> Camera:
    """A camera at ``eye`` looking at ``target`` with world ``up`` pointing up in the image.

    Args:
        eye: ``(3,)`` camera centre in world metres.
        target: ``(3,)`` point that lands on the principal point.
        up: ``(3,)`` world direction that appears upward in the image (default +y).
        image_size: ``(width, height)`` in pixels.
        fov_degrees: vertical field of view, see :func:`intrinsics_from_fov`.

    Returns:
        A :class:`Camera`.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib import look_at, project
        >>> cam = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3), image_size=(100, 100))
        >>> project(jnp.zeros((1, 3)), cam).tolist()
        [[50.0, 50.0]]
    """
    eye = jnp.asarray(eye, dtype=jnp.result_type(float))
    target = jnp.asarray(target, dtype=eye.dtype)
    up = jnp.asarray(up, dtype=eye.dtype)
    forward = target - eye
    right = jnp.cross(forward, up)
    if not isinstance(forward, jax.core.Tracer):  # eager: say what is wrong instead of NaN
        if float(jnp.linalg.norm(forward)) < 1e-12:
            raise ValueError("look_at: eye and target coincide")
        if float(jnp.linalg.norm(right)) < 1e-9 * float(jnp.linalg.norm(forward)):
            raise ValueError("look_at: the viewing direction is parallel to up; choose another up")
    forward = forward / jnp.linalg.norm(forward)
    right = right / jnp.linalg.norm(right)
    down = jnp.cross(forward, right)
    R = jnp.stack([right, down, forward])  # rows: camera axes in world coordinates
    focal, principal = intrinsics_from_fov(image_size, fov_degrees=fov_degrees)
    return Camera(
        rotation=matrix_to_rotvec(R),
        translation=-R @ eye,
        focal=focal.astype(eye.dtype),
        principal=principal.astype(eye.dtype),
        image_size=tuple(int(s) for s in image_size),
    )
