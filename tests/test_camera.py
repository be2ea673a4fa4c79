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


# --------------------------------------------------------------------------------------------
# batched cameras (issue 19, item 2)


def _three_cameras(dtype=None):
    eyes = [(0.0, 0.0, 1.0), (0.5, 0.2, 0.9), (-0.6, -0.1, 0.8)]
    return [look_at(jnp.asarray(e, dtype or jnp.result_type(float)), jnp.zeros(3), image_size=(160, 120))
            for e in eyes]


def test_camera_stack_and_index():
    cams = _three_cameras()
    stacked = Camera.stack(cams)
    assert stacked.batch_shape == (3,) and cams[0].batch_shape == ()
    assert stacked.rotation.shape == (3, 3) and stacked.focal.shape == (3, 2)
    assert stacked.image_size == (160, 120)
    for i, c in enumerate(cams):
        assert_tree_allclose(stacked[i], c)
    assert stacked[1:].batch_shape == (2,)
    two_d = Camera.stack([stacked, stacked])
    assert two_d.batch_shape == (2, 3)
    assert_tree_allclose(two_d[1, 2], cams[2])
    with pytest.raises(IndexError):
        cams[0][0]
    with pytest.raises(ValueError, match="image_size"):
        Camera.stack([cams[0], look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3), image_size=(120, 160))])
    with pytest.raises(ValueError, match="Camera.stack"):
        Camera.stack([])


def test_camera_batch_shape_must_agree():
    with pytest.raises((ValueError, TypeError), match="batch"):
        Camera(jnp.zeros((2, 3)), jnp.zeros((3, 3)), jnp.ones((2, 2)), jnp.ones((2, 2)))
    with pytest.raises((ValueError, TypeError), match="batch"):
        Camera(jnp.zeros((2, 3)), jnp.zeros((2, 3)), jnp.ones(2), jnp.ones(2))


def test_project_broadcasts_over_stacked_cameras():
    cams = _three_cameras()
    stacked = Camera.stack(cams)
    pts = 0.1 * jax.random.normal(jax.random.PRNGKey(7), (9, 3))
    loop = np.stack([project(pts, c) for c in cams])
    np.testing.assert_allclose(project(pts, stacked), loop, rtol=1e-5, atol=1e-3)  # shared points
    np.testing.assert_allclose(world_to_camera(pts, stacked),
                               np.stack([world_to_camera(pts, c) for c in cams]), atol=1e-5)
    per_cam = pts[None] + jnp.arange(3.0)[:, None, None] * 0.01  # one point set per camera
    np.testing.assert_allclose(project(per_cam, stacked),
                               np.stack([project(p, c) for p, c in zip(per_cam, cams)]), rtol=1e-5, atol=1e-3)
    # vmap over the stack == broadcast == loop, and jit == eager
    np.testing.assert_allclose(jax.vmap(project, in_axes=(None, 0))(pts, stacked), loop, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(jax.jit(project)(pts, stacked), loop, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(rotation_matrix(stacked.rotation),
                               np.stack([rotation_matrix(c.rotation) for c in cams]), atol=1e-6)
    Rs = rotation_matrix(stacked.rotation)
    np.testing.assert_allclose(rotation_matrix(matrix_to_rotvec(Rs)), Rs, atol=1e-5)  # rotvec at π is ±


def test_project_batched_grads():
    with x64():
        stacked = Camera.stack(_three_cameras(jnp.float64))
        pts = 0.2 * jax.random.normal(jax.random.PRNGKey(8), (4, 3), jnp.float64)

        def f(rotation, translation):
            return project(pts, stacked.replace_extrinsics(rotation, translation))

        check_grads(f, (stacked.rotation, stacked.translation), order=1, modes=["rev"], eps=1e-6,
                    atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# extrinsics / split (issue 19, item 3)


def test_extrinsics_and_replace():
    cam = _three_cameras()[1]
    r, t = cam.extrinsics()
    np.testing.assert_array_equal(r, cam.rotation)
    new = cam.replace_extrinsics(translation=t + 1.0)
    np.testing.assert_array_equal(new.rotation, cam.rotation)
    np.testing.assert_array_equal(new.focal, cam.focal)
    np.testing.assert_allclose(new.translation, t + 1.0)
    assert new.image_size == cam.image_size
    with pytest.raises((ValueError, TypeError), match="Camera|rotation"):
        cam.replace_extrinsics(rotation=jnp.zeros(4))


def test_optax_step_on_split_camera_leaves_intrinsics_unchanged():
    import equinox as eqx
    import optax

    from machlib import extrinsics_filter

    cam = _three_cameras()[1]
    target = jnp.array([[70.0, 50.0], [90.0, 65.0]])
    pts = jnp.array([[0.0, 0.0, 0.0], [0.05, -0.05, 0.02]])

    def loss(c):
        return jnp.sum((project(pts, c) - target) ** 2)

    # a plain gradient reaches the intrinsics ...
    g = jax.grad(loss)(cam)
    assert float(jnp.abs(g.focal).sum()) > 0 and float(jnp.abs(g.principal).sum()) > 0
    # ... the split camera's does not, and optax moves only the extrinsics
    params, fixed = cam.split()
    assert params.focal is None and params.principal is None and fixed.rotation is None
    opt = optax.adam(1e-2)
    state = opt.init(params)
    for _ in range(3):
        grads = jax.grad(lambda p: loss(eqx.combine(p, fixed)))(params)
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    new = eqx.combine(params, fixed)
    np.testing.assert_array_equal(new.focal, cam.focal)
    np.testing.assert_array_equal(new.principal, cam.principal)
    assert float(jnp.abs(new.rotation - cam.rotation).max()) > 1e-3
    assert float(loss(new)) < float(loss(cam))
    # the filter spec works on a stack, inside a bigger pytree too
    stacked = Camera.stack(_three_cameras())
    spec = extrinsics_filter(stacked)
    assert jax.tree.leaves(spec) == [True, True, False, False]
    model = {"cams": stacked, "scale": jnp.ones(())}
    trainable, _ = eqx.partition(model, {"cams": spec, "scale": True})
    assert trainable["cams"].focal is None and trainable["cams"].rotation.shape == (3, 3)
    with pytest.raises(TypeError, match="extrinsics_filter"):
        extrinsics_filter(jnp.zeros(3))


# --------------------------------------------------------------------------------------------
# head pose (issue 19, item 4)


def test_head_pose_frontal_is_zero():
    from machlib import head_pose

    for d in (0.5, 1.0, 3.0):
        cam = look_at(jnp.array([0.0, 0.0, d]), jnp.zeros(3), image_size=(320, 240))
        np.testing.assert_allclose(head_pose(cam), [0.0, 0.0, 0.0], atol=1e-3)
    # translation does not matter, only the rotation
    cam = look_at(jnp.array([0.2, 0.1, 1.0]), jnp.array([0.2, 0.1, 0.0]))
    np.testing.assert_allclose(head_pose(cam), [0.0, 0.0, 0.0], atol=1e-3)


def test_head_pose_known_poses():
    from machlib import head_pose

    def pose(eye, up=(0.0, 1.0, 0.0)):
        return np.asarray(head_pose(look_at(jnp.asarray(eye), jnp.zeros(3), up=up)))

    # camera on the subject's left (+x) sees the face turned toward the image left: yaw < 0
    np.testing.assert_allclose(pose((1.0, 0.0, 1.0)), [-45.0, 0.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(pose((-1.0, 0.0, np.sqrt(3.0))), [30.0, 0.0, 0.0], atol=1e-3)
    # camera above: the face is seen tilted down (pitch > 0)
    np.testing.assert_allclose(pose((0.0, 1.0, 1.0)), [0.0, 45.0, 0.0], atol=1e-3)
    # camera rolled with its up toward the head's +x: the head appears rolled counter-clockwise
    a = np.radians(20.0)
    np.testing.assert_allclose(pose((0.0, 0.0, 1.0), up=(np.sin(a), np.cos(a), 0.0)), [0.0, 0.0, 20.0], atol=1e-3)
    np.testing.assert_allclose(pose((0.0, 0.0, 1.0), up=(-np.sin(a), np.cos(a), 0.0)), [0.0, 0.0, -20.0], atol=1e-3)
    # on the image: positive roll lifts the subject's left ear (image right)
    cam = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3), up=(np.sin(a), np.cos(a), 0.0), image_size=(100, 100))
    left_ear = project(jnp.array([[0.1, 0.0, 0.0]]), cam)[0]
    assert float(left_ear[1]) < 50.0  # image right side goes up: counter-clockwise in the image


@settings(max_examples=40, deadline=None)
@given(st.floats(-170.0, 170.0), st.floats(-85.0, 85.0), st.floats(-170.0, 170.0))
def test_head_pose_round_trip(yaw, pitch, roll):
    from machlib import camera_from_head_pose, head_pose

    with x64():
        pose = jnp.array([yaw, pitch, roll], jnp.float64)
        cam = camera_from_head_pose(pose, distance=0.7, target=(0.0, 0.05, 0.02), image_size=(200, 100))
        np.testing.assert_allclose(head_pose(cam), pose, atol=1e-6)
        # the target lands on the principal point at the given distance
        np.testing.assert_allclose(world_to_camera(jnp.array([[0.0, 0.05, 0.02]]), cam)[0], [0.0, 0.0, 0.7],
                                   atol=1e-9)
        assert cam.image_size == (200, 100)


def test_camera_from_head_pose_frontal_matches_look_at_and_batches():
    from machlib import camera_from_head_pose, head_pose

    ref = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3), image_size=(64, 48))
    cam = camera_from_head_pose(jnp.zeros(3), distance=1.0, image_size=(64, 48))
    np.testing.assert_allclose(rotation_matrix(cam.rotation), rotation_matrix(ref.rotation), atol=1e-6)
    np.testing.assert_allclose(cam.translation, ref.translation, atol=1e-6)
    np.testing.assert_allclose(cam.focal, ref.focal)
    poses = jnp.array([[10.0, 0.0, 0.0], [0.0, -20.0, 5.0], [-40.0, 15.0, -10.0]])
    cams = camera_from_head_pose(poses)
    assert cams.batch_shape == (3,)
    np.testing.assert_allclose(head_pose(cams), poses, atol=2e-3)
    np.testing.assert_allclose(jax.jit(head_pose)(cams), jax.vmap(head_pose)(cams), atol=1e-5)
    with pytest.raises((ValueError, TypeError), match="camera_from_head_pose"):
        camera_from_head_pose(jnp.zeros(2))
    with pytest.raises(ValueError, match="distance"):
        camera_from_head_pose(jnp.zeros(3), distance=0.0)


def test_head_pose_grads():
    from machlib import head_pose

    with x64():
        from machlib import camera_from_head_pose

        cam = camera_from_head_pose(jnp.array([20.0, -10.0, 5.0], jnp.float64))
        check_grads(lambda r: head_pose(cam.replace_extrinsics(rotation=r)), (cam.rotation,), order=1,
                    modes=["rev", "fwd"], eps=1e-6, atol=1e-5, rtol=1e-5)


def test_replace_extrinsics_broadcasts_a_single_camera():
    cam = _three_cameras()[0]
    rots = jnp.zeros((4, 3))
    stack = cam.replace_extrinsics(rotation=rots)
    assert stack.batch_shape == (4,)
    np.testing.assert_array_equal(stack.focal, np.broadcast_to(cam.focal, (4, 2)))
    np.testing.assert_array_equal(stack.translation, np.broadcast_to(cam.translation, (4, 3)))
    np.testing.assert_allclose(project(jnp.zeros((1, 3)), stack)[2], project(jnp.zeros((1, 3)), cam.replace_extrinsics(rotation=jnp.zeros(3))))
    with pytest.raises((ValueError, TypeError)):
        Camera.stack(_three_cameras()).replace_extrinsics(rotation=jnp.zeros((4, 3)))  # 3 cameras, 4 rotations


def test_image_shape_is_the_reverse_of_image_size():
    cam = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3), image_size=(160, 120))
    assert cam.image_size == (160, 120) and cam.image_shape == (120, 160)


def test_sizes_are_checked_against_the_camera():
    """Issue 19, item 1: an image of the wrong size (here the transposed one, which a square test
    image would hide) given with a camera raises an InputError naming both orders."""
    from machlib import InputError, Mesh
    from machlib._camera import check_image_shape
    from machlib.render import rasterize, to_clip
    from machlib.texture import texel_visibility, texture_problem

    cam = look_at(jnp.array([0.0, 0.0, 1.0]), jnp.zeros(3), image_size=(160, 120))
    check_image_shape("f", cam, (120, 160, 3), "image")  # the right size passes
    with pytest.raises(InputError, match=r"f: image has shape \(160, 120, 3\).*\(width, height\) = \(160, 120\).*"
                                         r"\(H, W\) = \(120, 160\); the sizes are swapped"):
        check_image_shape("f", cam, (160, 120, 3), "image")
    with pytest.raises(InputError, match=r"mask has shape \(100, 100\)") as info:
        check_image_shape("f", cam, (100, 100), "mask")
    assert "swapped" not in str(info.value)
    v = np.array([[-0.1, -0.1, 0.0], [0.1, -0.1, 0.0], [0.0, 0.1, 0.0]], np.float32)
    mesh = Mesh(v, np.array([[0, 2, 1]]), np.array([[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]], np.float32), np.array([[0, 2, 1]]))
    with pytest.raises(InputError, match="texture_problem: image has shape .*swapped"):
        texture_problem(np.zeros((160, 120, 3), np.float32), mesh, cam)
    rast = rasterize(to_clip(jnp.asarray(v), cam), jnp.array([[0, 2, 1]]), image_size=(120, 160))  # swapped
    with pytest.raises(InputError, match="texel_visibility: rast has shape .*swapped"):
        texel_visibility(mesh, cam, rast, 8)
    rast = rasterize(to_clip(jnp.asarray(v), cam), jnp.array([[0, 2, 1]]), image_size=cam.image_size)
    with pytest.raises(InputError, match="texel_visibility: pixel_mask has shape"):
        texel_visibility(mesh, cam, rast, 8, pixel_mask=np.ones((160, 120)))
    assert texel_visibility(mesh, cam, rast, 8).shape == (8, 8)


def test_numpy_rotation_and_projection_equal_the_jax_ones():
    # machlib fit's export writes camera.json and the overlay with these numpy copies (edfe876)
    from machlib._camera import _rotation_matrix_np
    from machlib.geometry._human_fit import _project_np

    for rv in ([0.0, 0.0, 0.0], [1e-9, 0.0, 0.0], [0.3, -0.2, 0.1], [0.0, 3.0, 0.0]):
        np.testing.assert_allclose(_rotation_matrix_np(np.asarray(rv)), np.asarray(rotation_matrix(jnp.asarray(rv))),
                                   atol=1e-6)
    cam = random_camera(jax.random.key(5))
    pts = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32) * 0.2
    np.testing.assert_allclose(_project_np(pts, cam), np.asarray(project(jnp.asarray(pts), cam)), atol=1e-3)
