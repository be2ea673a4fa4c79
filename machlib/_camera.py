"""Pinhole camera pytree and projection.

See :doc:`/conventions` for the coordinate frames used here.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
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
    "extrinsics_filter",
    "head_pose",
    "camera_from_head_pose",
]


def _eps(dtype) -> float:
    return float(jnp.finfo(dtype).eps)


class Camera(eqx.Module):
    """A pinhole camera (OpenCV frame): world → camera by ``X_c = R(rotation) X_w + translation``.

    A camera may carry leading *batch* dimensions ``*B`` (the same on every field): a stack of
    cameras sharing one ``image_size``, as built by :meth:`Camera.stack`. :func:`project`,
    :func:`world_to_camera`, :func:`rotation_matrix` and :func:`head_pose` broadcast over them;
    ``camera[i]`` picks one camera, and ``jax.vmap(f)(points, cameras)`` maps any function
    written for one camera over the stack (see "Batched cameras" on :doc:`/conventions`).

    Attributes:
        rotation: ``(*B, 3)`` float, axis-angle (rotation vector, radians) of the world → camera
            rotation. Differentiable, NaN-safe at zero.
        translation: ``(*B, 3)`` float, metres, the world origin in camera coordinates.
        focal: ``(*B, 2)`` float, ``(fx, fy)`` in pixels. Held fixed by the fits: optimise
            ``camera.split()[0]`` (or use :func:`extrinsics_filter`) to leave it alone.
        principal: ``(*B, 2)`` float, ``(cx, cy)`` in pixels (continuous coordinates, pixel
            ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``). Held fixed like ``focal``.
        image_size: static ``(width, height)`` in pixels.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib import Camera, project
        >>> cam = Camera(jnp.zeros(3), jnp.array([0.0, 0.0, 1.0]), jnp.array([500.0, 500.0]),
        ...              jnp.array([256.0, 256.0]), image_size=(512, 512))
        >>> project(jnp.array([[0.1, 0.0, 0.0]]), cam).tolist()
        [[306.0, 256.0]]
        >>> cams = Camera.stack([cam, cam.replace_extrinsics(translation=jnp.array([0.0, 0.0, 2.0]))])
        >>> cams.batch_shape, project(jnp.array([[0.1, 0.0, 0.0]]), cams).tolist()
        ((2,), [[[306.0, 256.0]], [[281.0, 256.0]]])
    """

    rotation: Float[AnyArray, "*batch 3"]
    translation: Float[AnyArray, "*batch 3"]
    focal: Float[AnyArray, "*batch 2"]
    principal: Float[AnyArray, "*batch 2"]
    image_size: tuple[int, int] = eqx.field(static=True, default=(512, 512))

    def __check_init__(self):
        batch = None
        for name, n in (("rotation", 3), ("translation", 3), ("focal", 2), ("principal", 2)):
            shape = jnp.shape(getattr(self, name))
            if len(shape) < 1 or shape[-1] != n:
                raise ValueError(f"Camera: {name} must have shape ({n},) or (*batch, {n}), got {shape}")
            if batch is None:
                batch = shape[:-1]
            elif shape[:-1] != batch:
                raise ValueError(
                    f"Camera: every field must have the same batch shape; rotation has {batch}, "
                    f"{name} has {shape[:-1]} (use Camera.stack to batch cameras)"
                )
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"Camera: image_size must be (width, height) >= 1, got {self.image_size}")

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(height, width)``: the leading shape of an image array seen by this camera (the
        reverse of :attr:`image_size`, which is ``(width, height)``; see :doc:`/conventions`).

        Example:
            >>> import jax.numpy as jnp
            >>> from machlib import look_at
            >>> cam = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3), image_size=(160, 120))
            >>> cam.image_size, cam.image_shape
            ((160, 120), (120, 160))
        """
        return (int(self.image_size[1]), int(self.image_size[0]))

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The leading batch dimensions ``*B`` (``()`` for a single camera)."""
        return tuple(jnp.shape(self.rotation)[:-1])

    @classmethod
    def stack(cls, cameras) -> Camera:
        """Stack cameras with the same ``image_size`` into one camera with batch shape ``(n,)``.

        Args:
            cameras: a non-empty sequence of :class:`Camera` with equal batch shapes (usually
                single cameras) and equal ``image_size``.

        Returns:
            A :class:`Camera` whose fields have one more leading axis.

        Example:
            >>> import jax.numpy as jnp
            >>> from machlib import Camera, look_at
            >>> cams = Camera.stack([look_at(jnp.array([x, 0.0, 1.0]), jnp.zeros(3)) for x in (-0.3, 0.0, 0.3)])
            >>> cams.batch_shape, cams.rotation.shape, cams[1].batch_shape
            ((3,), (3, 3), ())
        """
        cameras = list(cameras)
        if not cameras or not all(isinstance(c, Camera) for c in cameras):
            raise ValueError("Camera.stack: expected a non-empty sequence of Camera")
        sizes = {c.image_size for c in cameras}
        if len(sizes) != 1:
            raise ValueError(f"Camera.stack: cameras must share image_size (width, height), got {sorted(sizes)}")
        batches = {c.batch_shape for c in cameras}
        if len(batches) != 1:
            raise ValueError(f"Camera.stack: cameras must share a batch shape, got {sorted(batches)}")
        return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *cameras)

    def __getitem__(self, index) -> Camera:
        """Index the batch dimensions (``cams[0]``, ``cams[1:3]``); the vectors stay whole."""
        batch = self.batch_shape
        if not batch:
            raise IndexError("Camera: a single camera (batch shape ()) cannot be indexed")
        if isinstance(index, tuple) and sum(i is not None and i is not Ellipsis for i in index) > len(batch):
            raise IndexError(f"Camera: too many indices {index!r} for batch shape {batch}")
        if index is Ellipsis or (isinstance(index, tuple) and Ellipsis in index):
            raise IndexError("Camera: Ellipsis is not supported; index the batch dimensions explicitly")
        return jax.tree.map(lambda x: jnp.asarray(x)[index], self)

    def extrinsics(self) -> tuple[Float[Array, "*batch 3"], Float[Array, "*batch 3"]]:
        """The optimised part of the camera: ``(rotation, translation)``.

        Example:
            >>> import jax.numpy as jnp
            >>> from machlib import look_at
            >>> rotation, translation = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3)).extrinsics()
            >>> [round(float(v), 4) for v in translation]
            [0.0, 0.0, 1.0]
        """
        return jnp.asarray(self.rotation), jnp.asarray(self.translation)

    def replace_extrinsics(self, rotation=None, translation=None) -> Camera:
        """The same camera (intrinsics and ``image_size`` kept) with a new rotation and/or
        translation; ``None`` keeps the current value. Batched extrinsics given to a single
        camera broadcast it into a stack that shares its intrinsics.

        Args:
            rotation: ``(*B, 3)`` rotation vector, radians.
            translation: ``(*B, 3)`` translation, metres (broadcast against ``rotation``).

        Returns:
            A new :class:`Camera` (the shapes are validated).

        Example:
            >>> import jax.numpy as jnp
            >>> from machlib import look_at
            >>> cam = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3))
            >>> moved = cam.replace_extrinsics(translation=jnp.array([0.0, 0.0, 2.0]))
            >>> moved.translation.tolist(), bool((moved.focal == cam.focal).all())
            ([0.0, 0.0, 2.0], True)
            >>> cam.replace_extrinsics(rotation=jnp.zeros((4, 3))).batch_shape  # 4 rotations, one lens
            (4,)
        """
        rotation = jnp.asarray(self.rotation if rotation is None else rotation)
        translation = jnp.asarray(self.translation if translation is None else translation)
        focal, principal = jnp.asarray(self.focal), jnp.asarray(self.principal)
        if min(rotation.ndim, translation.ndim) >= 1:
            try:  # batched extrinsics on one camera: a stack sharing its intrinsics
                batch = jnp.broadcast_shapes(rotation.shape[:-1], translation.shape[:-1], focal.shape[:-1])
                rotation, translation, focal, principal = (
                    jnp.broadcast_to(a, batch + a.shape[-1:]) for a in (rotation, translation, focal, principal))
            except ValueError:
                pass  # incompatible batch shapes: Camera names the mismatch
        return Camera(rotation, translation, focal, principal, image_size=self.image_size)

    def split(self) -> tuple[Camera, Camera]:
        """``eqx.partition`` of the camera into ``(extrinsics, intrinsics)``: the first holds the
        rotation and translation (``focal``/``principal`` are ``None``), the second the
        intrinsics. Optimise the first and rebuild with ``eqx.combine(extrinsics, intrinsics)``,
        so that ``jax.grad`` and optax never see (and never change) the intrinsics.

        Returns:
            ``(extrinsics, intrinsics)``: two partial cameras (pytrees with ``None`` holes).

        Example:
            >>> import equinox as eqx, jax, jax.numpy as jnp, optax
            >>> from machlib import look_at, project
            >>> cam = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3), image_size=(64, 64))
            >>> params, fixed = cam.split()
            >>> def loss(p):
            ...     return jnp.sum((project(jnp.zeros((1, 3)), eqx.combine(p, fixed)) - 40.0) ** 2)
            >>> opt = optax.adam(1e-2)
            >>> state = opt.init(params)
            >>> updates, state = opt.update(jax.grad(loss)(params), state)
            >>> new = eqx.combine(optax.apply_updates(params, updates), fixed)
            >>> bool((new.focal == cam.focal).all()), bool((new.translation != cam.translation).any())
            (True, True)
        """
        return eqx.partition(self, extrinsics_filter(self))


def check_image_shape(name: str, camera: Camera, shape, argument: str) -> None:
    """Raise :class:`~machlib.InputError` unless an array's leading ``(H, W)`` is the camera's.

    The message names both orders (an array's ``(H, W)`` and the camera's ``(width, height)``)
    and says so when the two are swapped, the mistake a square test image hides.
    """
    from ._errors import InputError

    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise InputError(f"{name}: {argument} must be an (H, W, ...) image array, got shape {shape}")
    if shape[:2] != camera.image_shape:
        width, height = camera.image_size
        swapped = shape[:2] == (width, height)
        raise InputError(
            f"{name}: {argument} has shape {shape} (H={shape[0]} rows, W={shape[1]} columns) but the camera's "
            f"image_size is (width, height) = ({width}, {height}), i.e. arrays of (H, W) = ({height}, {width})"
            + ("; the sizes are swapped" if swapped else "")
        )


def extrinsics_filter(camera: Camera) -> Camera:
    """An ``eqx.partition`` filter spec that selects a camera's extrinsics.

    A camera-shaped pytree of booleans: ``True`` on ``rotation`` and ``translation``, ``False`` on
    ``focal`` and ``principal``. Use it inside a larger parameter pytree (e.g. with
    ``eqx.tree_at``) when the camera is one field of your model; :meth:`Camera.split` is the
    one-camera shortcut.

    Args:
        camera: a :class:`Camera` (single or batched).

    Returns:
        A :class:`Camera`-structured pytree of ``bool``.

    Example:
        >>> import equinox as eqx, jax.numpy as jnp
        >>> from machlib import extrinsics_filter, look_at
        >>> cam = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3))
        >>> trainable, fixed = eqx.partition(cam, extrinsics_filter(cam))
        >>> trainable.focal is None, fixed.rotation is None
        (True, True)
    """
    if not isinstance(camera, Camera):
        raise TypeError(f"extrinsics_filter: expected a Camera, got {type(camera).__name__}")
    spec = jax.tree.map(lambda _: False, camera)
    return eqx.tree_at(lambda c: (c.rotation, c.translation), spec, (True, True))


@jax.jit
def rotation_matrix(rotvec: Float[ArrayLike, "*batch 3"]) -> Float[Array, "*batch 3 3"]:
    """Rodrigues' formula: rotation vector (axis × angle, radians) → 3×3 rotation matrix.

    NaN-safe: value and gradients are finite at ``rotvec = 0`` (Taylor branch with a double
    ``where``). Broadcasts over leading batch dimensions.

    Args:
        rotvec: ``(*B, 3)`` float rotation vector(s).

    Returns:
        ``(*B, 3, 3)`` rotation matrices ``R`` such that ``R @ x`` rotates ``x``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib import rotation_matrix
        >>> R = rotation_matrix(jnp.array([0.0, 0.0, jnp.pi / 2]))
        >>> [round(float(v), 6) for v in R @ jnp.array([1.0, 0.0, 0.0])]
        [0.0, 1.0, 0.0]
        >>> rotation_matrix(jnp.zeros((4, 2, 3))).shape
        (4, 2, 3, 3)
    """
    rotvec = jnp.asarray(rotvec)
    if rotvec.ndim < 1 or rotvec.shape[-1] != 3:
        raise ValueError(f"rotation_matrix: rotvec must have shape (3,) or (*batch, 3), got {rotvec.shape}")
    theta2 = jnp.sum(rotvec * rotvec, axis=-1)[..., None, None]
    small = theta2 < _eps(rotvec.dtype) ** 0.5
    safe_theta2 = jnp.where(small, 1.0, theta2)
    theta = jnp.sqrt(safe_theta2)
    a = jnp.where(small, 1.0 - theta2 / 6.0, jnp.sin(theta) / theta)
    b = jnp.where(small, 0.5 - theta2 / 24.0, (1.0 - jnp.cos(theta)) / safe_theta2)
    x, y, z = rotvec[..., 0], rotvec[..., 1], rotvec[..., 2]
    zero = jnp.zeros_like(x)
    K = jnp.stack([
        jnp.stack([zero, -z, y], -1),
        jnp.stack([z, zero, -x], -1),
        jnp.stack([-y, x, zero], -1),
    ], -2)
    return jnp.eye(3, dtype=rotvec.dtype) + a * K + b * (K @ K)


@jax.jit
def world_to_camera(points: Float[ArrayLike, "*points N 3"], camera: Camera) -> Float[Array, "... N 3"]:
    """Transform world points (metres) to the camera frame (x right, y down, z forward).

    Broadcasts: with a batched camera (batch shape ``*B``) and ``(N, 3)`` points every camera
    sees the same points; ``(*B, N, 3)`` points give each camera its own set.

    Args:
        points: ``(N, 3)`` or ``(*P, N, 3)`` world positions.
        camera: the :class:`Camera` (batch shape ``*B`` broadcast against ``*P``).

    Returns:
        ``(*broadcast(P, B), N, 3)`` camera-frame positions; ``z`` is the depth in metres.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib import look_at, world_to_camera
        >>> cam = look_at(jnp.array([0.0, 0.0, 2.0]), jnp.zeros(3))
        >>> [round(float(v), 4) for v in world_to_camera(jnp.zeros((1, 3)), cam)[0]]
        [0.0, 0.0, 2.0]
    """
    points = jnp.asarray(points)
    if points.ndim < 2 or points.shape[-1] != 3:
        raise ValueError(f"world_to_camera: points must have shape (N, 3) or (*batch, N, 3), got {points.shape}")
    R = rotation_matrix(camera.rotation)
    out = jnp.matmul(points, jnp.swapaxes(R, -1, -2), precision=jax.lax.Precision.HIGHEST)
    return out + jnp.asarray(camera.translation)[..., None, :]


@jax.jit
def project(points: Float[ArrayLike, "*points N 3"], camera: Camera) -> Float[Array, "... N 2"]:
    """Project world points to continuous pixel coordinates ``(x, y)``.

    ``x = fx · X_c / Z_c + cx`` and ``y = fy · Y_c / Z_c + cy``; the depth is clamped away from
    zero so gradients stay finite for points behind or on the camera plane. Broadcasts over a
    batched camera like :func:`world_to_camera`.

    Args:
        points: ``(N, 3)`` or ``(*P, N, 3)`` world positions in metres.
        camera: the :class:`Camera` (batch shape ``*B``).

    Returns:
        ``(*broadcast(P, B), N, 2)`` pixel coordinates, origin at the top-left image corner, row
        axis down.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib import look_at, project
        >>> cam = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3), image_size=(100, 80))
        >>> project(jnp.zeros((1, 3)), cam).tolist()
        [[50.0, 40.0]]
    """
    pc = world_to_camera(points, camera)
    z = pc[..., 2:3]
    eps = 1e-6
    z = jnp.where(jnp.abs(z) < eps, jnp.where(z < 0, -eps, eps), z)
    return pc[..., :2] / z * jnp.asarray(camera.focal)[..., None, :] + jnp.asarray(camera.principal)[..., None, :]


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


def matrix_to_rotvec(R: Float[ArrayLike, "*batch 3 3"]) -> Float[Array, "*batch 3"]:
    """Inverse of :func:`rotation_matrix`: a 3×3 rotation matrix → rotation vector.

    Robust at every angle including π (Shepperd's quaternion method, branch chosen with
    ``where`` so it traces under ``jit``). Returns the vector with angle in ``[0, π]``.
    Leading batch dimensions are mapped over.

    Args:
        R: ``(3, 3)`` or ``(*B, 3, 3)`` rotation matrices.

    Returns:
        ``(*B, 3)`` rotation vectors (axis × angle, radians).

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib import matrix_to_rotvec
        >>> [round(abs(float(v)), 4) for v in matrix_to_rotvec(jnp.diag(jnp.array([1.0, -1.0, -1.0])))]
        [3.1416, 0.0, 0.0]
    """
    R = jnp.asarray(R)
    if R.ndim < 2 or R.shape[-2:] != (3, 3):
        raise ValueError(f"matrix_to_rotvec: R must have shape (3, 3) or (*batch, 3, 3), got {R.shape}")
    if R.ndim > 2:
        flat = jax.vmap(_matrix_to_rotvec)(R.reshape((-1, 3, 3)))
        return flat.reshape(R.shape[:-2] + (3,))
    return _matrix_to_rotvec(R)


@jax.jit  # one compiled program instead of ~30 eager operations on a first call
def _matrix_to_rotvec(R: Array) -> Array:
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
    if not any(isinstance(a, jax.core.Tracer) for a in (eye, target, up)):  # eager: say what is wrong, not NaN
        forward = np.asarray(target, np.float64) - np.asarray(eye, np.float64)
        right = np.cross(forward, np.asarray(up, np.float64))
        if float(np.linalg.norm(forward)) < 1e-12:
            raise ValueError("look_at: eye and target coincide")
        if float(np.linalg.norm(right)) < 1e-9 * float(np.linalg.norm(forward)):
            raise ValueError("look_at: the viewing direction is parallel to up; choose another up")
    rotation, translation = _look_at_extrinsics(eye, target, up)
    focal, principal = intrinsics_from_fov(image_size, fov_degrees=fov_degrees)
    return Camera(
        rotation=rotation,
        translation=translation,
        focal=jnp.asarray(focal, eye.dtype),
        principal=jnp.asarray(principal, eye.dtype),
        image_size=tuple(int(s) for s in image_size),
    )


@jax.jit
def _look_at_extrinsics(eye: Array, target: Array, up: Array) -> tuple[Array, Array]:
    forward = target - eye
    right = jnp.cross(forward, up)
    forward = forward / jnp.linalg.norm(forward)
    right = right / jnp.linalg.norm(right)
    down = jnp.cross(forward, right)
    R = jnp.stack([right, down, forward])  # rows: camera axes in world coordinates
    return _matrix_to_rotvec(R), -R @ eye


def _rotation_matrix_np(rotvec: np.ndarray) -> np.ndarray:
    """:func:`rotation_matrix` in numpy (float64) for one concrete rotation vector: a one-shot
    step that needs no compiled program."""
    r = np.asarray(rotvec, np.float64).reshape(3)
    theta = float(np.linalg.norm(r))
    K = np.array([[0.0, -r[2], r[1]], [r[2], 0.0, -r[0]], [-r[1], r[0], 0.0]])
    if theta < 1e-8:
        a, b = 1.0 - theta * theta / 6.0, 0.5 - theta * theta / 24.0
    else:
        a, b = np.sin(theta) / theta, (1.0 - np.cos(theta)) / (theta * theta)
    return np.eye(3) + a * K + b * (K @ K)


# The viewer frame of a head pose: x to the image right, y up, z toward the camera (the OpenCV
# camera frame with y and z flipped). A frontal ``look_at`` camera from +z has R = diag(1, -1, -1),
# so the head's rotation seen by the viewer is H = F @ R with F = diag(1, -1, -1).
_FLIP = (1.0, -1.0, -1.0)


@jax.jit
def head_pose(camera: Camera) -> Float[Array, "*batch 3"]:
    """The head's pose seen from a camera: ``(yaw, pitch, roll)`` in degrees.

    The head is the world (head space, :doc:`/conventions`), so the pose is the camera's rotation
    read as the rotation ``H`` of the head in a *viewer frame*: x to the image right, y up in
    the image, z from the head toward the camera. ``H = diag(1, −1, −1) · R(camera.rotation)``
    is decomposed as ``H = R_y(yaw) · R_x(pitch) · R_z(roll)``:

    * ``(0, 0, 0)``: the head looks straight at the camera, upright (a frontal
      :func:`look_at` from +z gives this);
    * ``yaw > 0``: the face turns toward the image's right (the subject's own left);
    * ``pitch > 0``: the face tilts down (chin toward the chest), ``pitch < 0`` looks up;
    * ``roll > 0``: the head rolls counter-clockwise in the image.

    Yaw and roll are in ``(−180, 180]``, pitch in ``[−90, 90]`` (gimbal lock at ``|pitch| = 90``,
    where only ``yaw ± roll`` is defined). Only the rotation matters, not where the camera is;
    :func:`camera_from_head_pose` is the inverse. Broadcasts over a batched camera.

    Args:
        camera: a :class:`Camera` (batch shape ``*B``).

    Returns:
        ``(*B, 3)`` float ``(yaw, pitch, roll)`` in degrees.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib import head_pose, look_at
        >>> frontal = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3))
        >>> [round(float(a), 3) + 0.0 for a in head_pose(frontal)]
        [0.0, 0.0, 0.0]
        >>> side = look_at(jnp.array([1.0, 0.0, 1.0]), jnp.zeros(3))  # camera 45° to the head's left
        >>> [round(float(a), 3) + 0.0 for a in head_pose(side)]
        [-45.0, 0.0, 0.0]
    """
    R = rotation_matrix(camera.rotation)
    H = jnp.asarray(_FLIP, R.dtype)[:, None] * R
    yaw = jnp.arctan2(H[..., 0, 2], H[..., 2, 2])
    pitch = jnp.arcsin(jnp.clip(-H[..., 1, 2], -1.0, 1.0))
    roll = jnp.arctan2(H[..., 1, 0], H[..., 1, 1])
    return jnp.degrees(jnp.stack([yaw, pitch, roll], -1))


def camera_from_head_pose(
    pose_degrees: Float[ArrayLike, "*batch 3"],
    *,
    distance: float = 1.0,
    target: Vec3 = (0.0, 0.0, 0.0),
    image_size: tuple[int, int] = (512, 512),
    fov_degrees: float = 25.0,
) -> Camera:
    """The inverse of :func:`head_pose`: a camera that sees the head in a given pose.

    The camera looks at ``target`` (which lands on the principal point) from ``distance``
    metres, with intrinsics from :func:`intrinsics_from_fov`; ``head_pose`` of the result
    returns ``pose_degrees``. ``(0, 0, 0)`` is the frontal :func:`look_at` camera from +z.

    Args:
        pose_degrees: ``(*B, 3)`` ``(yaw, pitch, roll)`` in degrees, in :func:`head_pose`'s frame.
        distance: metres from the camera centre to ``target`` along the optical axis.
        target: ``(3,)`` head-space point looked at.
        image_size: ``(width, height)`` in pixels.
        fov_degrees: vertical field of view.

    Returns:
        A :class:`Camera` with batch shape ``*B``.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib import camera_from_head_pose, head_pose
        >>> cam = camera_from_head_pose(jnp.array([30.0, -10.0, 5.0]), distance=0.6)
        >>> [round(float(a), 3) for a in head_pose(cam)]
        [30.0, -10.0, 5.0]
    """
    pose = jnp.asarray(pose_degrees, dtype=jnp.result_type(float))
    if pose.ndim < 1 or pose.shape[-1] != 3:
        raise ValueError(f"camera_from_head_pose: pose_degrees must have shape (*batch, 3), got {pose.shape}")
    if not isinstance(distance, jax.core.Tracer) and not float(distance) > 0.0:
        raise ValueError(f"camera_from_head_pose: distance must be > 0, got {distance}")
    rotation, translation = _pose_extrinsics(pose, jnp.asarray(distance, pose.dtype), jnp.asarray(target, pose.dtype))
    focal, principal = intrinsics_from_fov(image_size, fov_degrees=fov_degrees)
    batch = pose.shape[:-1]
    return Camera(
        rotation=rotation,
        translation=translation,
        focal=jnp.broadcast_to(focal.astype(pose.dtype), batch + (2,)),
        principal=jnp.broadcast_to(principal.astype(pose.dtype), batch + (2,)),
        image_size=tuple(int(s) for s in image_size),
    )


@jax.jit
def _pose_extrinsics(pose: Array, distance: Array, target: Array) -> tuple[Array, Array]:
    """Rotation vector and translation of :func:`camera_from_head_pose` (one compiled program)."""
    a, b, c = (jnp.radians(pose[..., i]) for i in range(3))
    one, zero = jnp.ones_like(a), jnp.zeros_like(a)

    def mat(rows):
        return jnp.stack([jnp.stack(r, -1) for r in rows], -2)

    Ry = mat([[jnp.cos(a), zero, jnp.sin(a)], [zero, one, zero], [-jnp.sin(a), zero, jnp.cos(a)]])
    Rx = mat([[one, zero, zero], [zero, jnp.cos(b), -jnp.sin(b)], [zero, jnp.sin(b), jnp.cos(b)]])
    Rz = mat([[jnp.cos(c), -jnp.sin(c), zero], [jnp.sin(c), jnp.cos(c), zero], [zero, zero, one]])
    R = jnp.asarray(_FLIP, pose.dtype)[:, None] * (Ry @ Rx @ Rz)
    t = jnp.asarray([0.0, 0.0, 1.0], pose.dtype) * distance - jnp.einsum("...ij,j->...i", R, target)
    return matrix_to_rotvec(R), t
