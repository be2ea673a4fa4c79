"""Camera: Rodrigues rotation and its inverse, projection, look_at, intrinsics, validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from helpers import assert_tree_allclose, random_camera, x64
from machlib import (
    Camera,
    intrinsics_from_fov,
    look_at,
    matrix_to_rotvec,
    project,
    rotation_matrix,
    world_to_camera,
)

finite = st.floats(-6.0, 6.0, allow_nan=False, allow_infinity=False)
rotvecs = st.tuples(finite, finite, finite)
unit_axes = st.tuples(finite, finite, finite).filter(lambda a: np.linalg.norm(a) > 1e-3)


def _hat(w):
    x, y, z = w
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def _rodrigues_np(r):
    r = np.asarray(r, np.float64)
    th = np.linalg.norm(r)
    if th < 1e-12:
        return np.eye(3) + _hat(r)
    K = _hat(r / th)
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def _cam(rotation=(0.0, 0.0, 0.0), translation=(0.0, 0.0, 1.0), focal=(500.0, 500.0), principal=(256.0, 256.0),
         image_size=(512, 512), dtype=None):
    dtype = dtype or jnp.result_type(float)
    arr = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    return Camera(arr(rotation), arr(translation), arr(focal), arr(principal), image_size=image_size)


# --------------------------------------------------------------------------------------------
# rotation_matrix / matrix_to_rotvec


@settings(max_examples=60, deadline=None)
@given(rotvecs)
def test_rotation_matrix_is_a_rotation(r):
    R = np.asarray(rotation_matrix(jnp.asarray(r, jnp.float32)), np.float64)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=2e-5)
    assert abs(np.linalg.det(R) - 1.0) < 2e-5
    np.testing.assert_allclose(R, _rodrigues_np(np.float32(r)), atol=2e-5)


def test_rotation_matrix_known_values():
    R = rotation_matrix(jnp.array([0.0, 0.0, jnp.pi / 2]))
    np.testing.assert_allclose(R @ jnp.array([1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(rotation_matrix(jnp.zeros(3)), np.eye(3), atol=0)
    # rotation by pi about x
    np.testing.assert_allclose(rotation_matrix(jnp.array([jnp.pi, 0.0, 0.0])), np.diag([1.0, -1.0, -1.0]), atol=1e-6)


def test_rotation_matrix_small_angle_branch_is_continuous():
    with x64():
        eps = float(jnp.finfo(jnp.float64).eps) ** 0.25  # |r| where theta² crosses the threshold
        for s in (0.5, 0.999, 1.001, 2.0):
            r = jnp.array([s * eps, -0.3 * eps, 0.2 * eps], jnp.float64)
            np.testing.assert_allclose(np.asarray(rotation_matrix(r)), _rodrigues_np(r), atol=1e-14)


@settings(max_examples=60, deadline=None)
@given(unit_axes, st.one_of(
    st.floats(0.0, math.pi),
    st.floats(0.0, 1e-5),
    st.floats(math.pi - 1e-4, math.pi),
    st.sampled_from([0.0, 1e-9, 1e-7, math.pi - 1e-7, math.pi]),
))
def test_matrix_to_rotvec_round_trip(axis, angle):
    with x64():
        axis = np.asarray(axis, np.float64)
        r = axis / np.linalg.norm(axis) * angle
        R = rotation_matrix(jnp.asarray(r))
        back = matrix_to_rotvec(R)
        assert np.all(np.isfinite(np.asarray(back)))
        assert float(jnp.linalg.norm(back)) <= math.pi + 1e-9
        np.testing.assert_allclose(np.asarray(rotation_matrix(back)), np.asarray(R), atol=1e-9)
        if angle < math.pi - 1e-3:  # away from pi the vector itself is unique
            np.testing.assert_allclose(np.asarray(back), r, atol=1e-8)


def test_matrix_to_rotvec_float32_at_pi():
    R = jnp.diag(jnp.array([1.0, -1.0, -1.0]))
    back = matrix_to_rotvec(R)
    np.testing.assert_allclose(np.abs(np.asarray(back)), [np.pi, 0.0, 0.0], atol=1e-5)


def test_rotation_matrix_jacobian_finite_at_zero():
    """jaxlie test_so3_nan style: the Taylor branch keeps jacrev finite at rotvec = 0."""
    jac = jax.jit(jax.jacrev(rotation_matrix))
    hess = jax.jit(jax.hessian(lambda r: jnp.sum(rotation_matrix(r))))
    expected = np.stack([_hat(e) for e in np.eye(3)], -1)  # dR/dr_i at 0 is hat(e_i)
    for dtype in (jnp.float32, jnp.float64):
        with x64():
            J = jac(jnp.zeros(3, dtype))
            assert np.all(np.isfinite(np.asarray(J)))
            np.testing.assert_allclose(np.asarray(J), expected, atol=1e-6)
            assert np.all(np.isfinite(np.asarray(hess(jnp.zeros(3, dtype)))))


def test_matrix_to_rotvec_jacobian_finite_at_identity():
    J = jax.jit(jax.jacrev(matrix_to_rotvec))(jnp.eye(3))
    assert np.all(np.isfinite(np.asarray(J)))


def test_rotation_matrix_shape_error():
    with pytest.raises((ValueError, TypeError), match="rotation_matrix|rotvec|shape"):
        rotation_matrix(jnp.zeros(4))
    with pytest.raises((ValueError, TypeError)):
        matrix_to_rotvec(jnp.eye(4))


def test_rotation_matrix_jit_and_vmap():
    rs = jax.random.normal(jax.random.PRNGKey(0), (7, 3))
    eager = [rotation_matrix(r) for r in rs]
    np.testing.assert_allclose(jax.jit(rotation_matrix)(rs[0]), eager[0], atol=1e-6)
    np.testing.assert_allclose(jax.vmap(rotation_matrix)(rs), np.stack(eager), atol=1e-6)
    np.testing.assert_allclose(jax.vmap(matrix_to_rotvec)(jnp.stack(eager)),
                               np.stack([matrix_to_rotvec(R) for R in eager]), atol=1e-6)


def test_rotation_matrix_grads():
    with x64():
        for r in ([0.3, -0.2, 0.5], [1e-3, 2e-3, -1e-3], [2.5, 1.0, -0.4]):
            check_grads(rotation_matrix, (jnp.asarray(r, jnp.float64),), order=1, modes=["rev", "fwd"],
                        eps=1e-6, atol=1e-6, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# project / world_to_camera


def test_project_known_values():
    cam = _cam()
    np.testing.assert_allclose(project(jnp.array([[0.1, 0.0, 0.0]]), cam), [[306.0, 256.0]], atol=1e-4)
    # y is down: a point with positive camera y lands below the principal point
    np.testing.assert_allclose(project(jnp.array([[0.0, 0.2, 1.0]]), cam), [[256.0, 306.0]], atol=1e-4)
    # anisotropic focal and offset principal point
    cam2 = _cam(focal=(400.0, 300.0), principal=(100.0, 50.0), translation=(0.0, 0.0, 2.0))
    np.testing.assert_allclose(project(jnp.array([[0.5, -0.5, 0.0]]), cam2), [[200.0, -25.0]], atol=1e-4)
    # a rotation of pi/2 about y maps world +x onto camera -z ... and world +z onto camera +x
    cam3 = _cam(rotation=(0.0, np.pi / 2, 0.0), translation=(0.0, 0.0, 2.0))
    pc = world_to_camera(jnp.array([[0.0, 0.0, 1.0]]), cam3)
    np.testing.assert_allclose(pc, [[1.0, 0.0, 2.0]], atol=1e-6)
    np.testing.assert_allclose(project(jnp.array([[0.0, 0.0, 1.0]]), cam3), [[506.0, 256.0]], atol=1e-3)


def test_project_finite_on_camera_plane():
    cam = _cam(translation=(0.0, 0.0, 0.0))
    pts = jnp.array([[0.1, 0.1, 0.0], [0.1, 0.0, -1.0]])
    assert np.all(np.isfinite(np.asarray(project(pts, cam))))
    g = jax.grad(lambda p: jnp.sum(project(p, cam)))(pts)
    assert np.all(np.isfinite(np.asarray(g)))


def test_project_shape_error():
    with pytest.raises((ValueError, TypeError)):
        project(jnp.zeros((4, 2)), _cam())


@pytest.mark.slow
def test_project_jit_and_vmap():
    key = jax.random.PRNGKey(1)
    pts = jax.random.normal(key, (5, 11, 3)) * 0.2
    cams = [random_camera(k) for k in jax.random.split(jax.random.PRNGKey(2), 5)]
    eager = np.stack([project(p, c) for p, c in zip(pts, cams)])
    jitted = np.stack([jax.jit(project)(p, c) for p, c in zip(pts, cams)])
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-3)
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *cams)
    np.testing.assert_allclose(jax.vmap(project)(pts, stacked), eager, rtol=1e-5, atol=1e-3)
    # one camera, many point sets
    np.testing.assert_allclose(jax.vmap(project, in_axes=(0, None))(pts, cams[0]),
                               np.stack([project(p, cams[0]) for p in pts]), rtol=1e-5, atol=1e-3)


def test_project_grads():
    with x64():
        cam = random_camera(jax.random.PRNGKey(3), dtype=jnp.float64)
        pts = 0.3 * jax.random.normal(jax.random.PRNGKey(4), (6, 3), jnp.float64)
        check_grads(lambda p: project(p, cam), (pts,), order=1, modes=["rev"], eps=1e-6, atol=1e-5, rtol=1e-5)

        def wrt_pose(rotation, translation):
            c = Camera(jnp.asarray(rotation), jnp.asarray(translation), cam.focal, cam.principal, image_size=cam.image_size)
            return project(pts, c)

        check_grads(wrt_pose, (cam.rotation, cam.translation), order=1, modes=["rev"], eps=1e-6,
                    atol=1e-5, rtol=1e-5)
        # through the small-angle branch too
        check_grads(wrt_pose, (jnp.zeros(3, jnp.float64), cam.translation), order=1, modes=["rev"], eps=1e-6,
                    atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# look_at / intrinsics_from_fov


@pytest.mark.parametrize("eye", [(0.0, 0.0, 1.0), (0.8, 0.3, 1.2), (-1.5, 0.4, -0.3), (0.0, 0.5, -2.0)])
def test_look_at_target_and_up(eye):
    target = jnp.array([0.05, -0.02, 0.01])
    cam = look_at(jnp.asarray(eye), target, image_size=(320, 240))
    assert cam.image_size == (320, 240)
    np.testing.assert_allclose(project(target[None], cam)[0], cam.principal, atol=1e-3)
    np.testing.assert_allclose(cam.principal, [160.0, 120.0])
    # target in front of the camera at the eye distance
    depth = world_to_camera(target[None], cam)[0, 2]
    np.testing.assert_allclose(depth, np.linalg.norm(np.asarray(eye) - np.asarray(target)), rtol=1e-5)
    # world +y appears upward (smaller row coordinate) and centred horizontally
    above = project((target + jnp.array([0.0, 0.05, 0.0]))[None], cam)[0]
    assert float(above[1]) < float(cam.principal[1]) - 1.0
    R = np.asarray(rotation_matrix(cam.rotation))
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-5)
    assert np.linalg.det(R) > 0


def test_look_at_frontal_right_is_image_right():
    # camera on +z looking at the origin (a frontal view of the head): +x is image right
    cam = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3), image_size=(100, 100))
    p = project(jnp.array([[0.1, 0.0, 0.0]]), cam)[0]
    assert float(p[0]) > 50.0
    np.testing.assert_allclose(project(jnp.zeros((1, 3)), cam), [[50.0, 50.0]], atol=1e-4)


def test_look_at_custom_up():
    cam = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3), up=jnp.array([1.0, 0.0, 0.0]), image_size=(100, 100))
    p = project(jnp.array([[0.1, 0.0, 0.0]]), cam)[0]
    assert float(p[1]) < 50.0 - 1.0
    np.testing.assert_allclose(float(p[0]), 50.0, atol=1e-3)


def test_look_at_up_as_tuple():
    cam = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3), up=(1.0, 0.0, 0.0), image_size=(100, 100))
    assert float(project(jnp.array([[0.1, 0.0, 0.0]]), cam)[0, 1]) < 49.0


def test_intrinsics_from_fov_values():
    f, c = intrinsics_from_fov((640, 480), fov_degrees=90.0)
    np.testing.assert_allclose(f, [240.0, 240.0], rtol=1e-6)
    np.testing.assert_allclose(c, [320.0, 240.0])
    f, _ = intrinsics_from_fov((640, 480), fov_degrees=90.0, axis="width")
    np.testing.assert_allclose(f, [320.0, 320.0], rtol=1e-6)
    f, _ = intrinsics_from_fov((480, 640), fov_degrees=90.0, axis="max")
    np.testing.assert_allclose(f, [320.0, 320.0], rtol=1e-6)
    f, _ = intrinsics_from_fov((512, 512), fov_degrees=60.0)
    np.testing.assert_allclose(f, [256.0 / math.tan(math.radians(30.0))] * 2, rtol=1e-6)
    f, _ = intrinsics_from_fov((512, 512))  # default 25°
    np.testing.assert_allclose(f, [256.0 / math.tan(math.radians(12.5))] * 2, rtol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(fov_degrees=0.0), dict(fov_degrees=180.0), dict(fov_degrees=-5.0),
                                    dict(axis="diagonal")])
def test_intrinsics_from_fov_errors(kwargs):
    with pytest.raises(ValueError, match="intrinsics_from_fov"):
        intrinsics_from_fov((640, 480), **kwargs)


# --------------------------------------------------------------------------------------------
# Camera validation


@pytest.mark.parametrize("field,shape", [("rotation", (4,)), ("translation", (3, 1)), ("focal", (3,)),
                                         ("principal", (1,))])
def test_camera_shape_validation(field, shape):
    kwargs = dict(rotation=jnp.zeros(3), translation=jnp.zeros(3), focal=jnp.ones(2), principal=jnp.ones(2))
    kwargs[field] = jnp.zeros(shape)
    with pytest.raises((ValueError, TypeError), match=field + "|Camera|shape"):
        Camera(**kwargs)


@pytest.mark.parametrize("image_size", [(0, 512), (512,), (512, 512, 3)])
def test_camera_image_size_validation(image_size):
    with pytest.raises((ValueError, TypeError), match="image_size"):
        Camera(jnp.zeros(3), jnp.zeros(3), jnp.ones(2), jnp.ones(2), image_size=image_size)


def test_camera_is_a_pytree_with_static_image_size():
    cam = random_camera(jax.random.PRNGKey(5), image_size=(300, 200))
    leaves = jax.tree_util.tree_leaves(cam)
    assert len(leaves) == 4
    doubled = jax.tree_util.tree_map(lambda x: 2 * x, cam)
    assert doubled.image_size == (300, 200)
    assert_tree_allclose(jax.jit(lambda c: c)(cam), cam)


@pytest.mark.parametrize("eye,target", [((0.0, 1.0, 0.0), (0.0, 0.0, 0.0)), ((0.0, 0.0, 1.0), (0.0, 0.0, 1.0))])
def test_look_at_degenerate_raises(eye, target):
    with pytest.raises(ValueError, match="look_at"):
        look_at(jnp.array(eye), jnp.array(target))
