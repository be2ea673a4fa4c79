"""jit == eager, vmap == loop and finite-difference gradients for the remaining primitives:
world_to_camera, look_at, matrix_to_rotvec, vertex_normals, landmark_residuals."""

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

import machlib
from machlib import look_at, matrix_to_rotvec, rotation_matrix, vertex_normals, world_to_camera
from machlib.geometry import landmark_residuals

from helpers import small_mesh, x64


def _cam(dtype=jnp.float32):
    return look_at(jnp.array([0.1, 0.05, 0.7], dtype), jnp.zeros(3, dtype), image_size=(64, 48))


def test_world_to_camera_jit_vmap_grads():
    pts = jax.random.normal(jax.random.PRNGKey(0), (5, 3)) * 0.1
    cam = _cam()
    eager = world_to_camera(pts, cam)
    np.testing.assert_allclose(jax.jit(world_to_camera)(pts, cam), eager, rtol=1e-6)
    batch = jnp.stack([pts, 2 * pts])
    out = jax.vmap(world_to_camera, in_axes=(0, None))(batch, cam)
    np.testing.assert_allclose(out[1], world_to_camera(2 * pts, cam), rtol=1e-6)
    with x64():
        cam64 = _cam(jnp.float64)
        check_grads(lambda p, r, t: world_to_camera(p, machlib.Camera(r, t, cam64.focal, cam64.principal, (64, 48))),
                    (pts.astype(jnp.float64), cam64.rotation, cam64.translation), order=1, modes=["rev"])


def test_look_at_jit_vmap_grads():
    eyes = jnp.array([[0.0, 0.0, 1.0], [0.3, 0.1, 0.9]])
    target = jnp.zeros(3)
    f = lambda e, t: look_at(e, t, image_size=(32, 32))  # noqa: E731
    eager = [f(e, target) for e in eyes]
    jitted = jax.jit(f)(eyes[1], target)
    np.testing.assert_allclose(jitted.translation, eager[1].translation, rtol=1e-5, atol=1e-6)
    batched = jax.vmap(f, in_axes=(0, None))(eyes, target)
    for i in range(2):
        np.testing.assert_allclose(rotation_matrix(batched.rotation[i]), rotation_matrix(eager[i].rotation), atol=1e-5)
        np.testing.assert_allclose(batched.translation[i], eager[i].translation, rtol=1e-5, atol=1e-6)
    with x64():
        check_grads(lambda e: look_at(e, jnp.zeros(3, jnp.float64), image_size=(32, 32)).translation,
                    (jnp.array([0.3, 0.1, 0.9], jnp.float64),), order=1, modes=["rev"])


def test_matrix_to_rotvec_grads_and_vmap():
    with x64():
        r = jnp.array([0.3, -0.2, 0.5], jnp.float64)
        check_grads(lambda v: matrix_to_rotvec(rotation_matrix(v)), (r,), order=1, modes=["rev"])
        Rs = jax.vmap(rotation_matrix)(jnp.stack([r, 2 * r]))
        np.testing.assert_allclose(jax.vmap(matrix_to_rotvec)(Rs)[1], 2 * r, rtol=1e-10)


def test_vertex_normals_vmap_equals_loop():
    mesh = small_mesh()
    V = jnp.asarray(mesh.vertices, jnp.float32)
    F = jnp.asarray(mesh.faces)
    batch = jnp.stack([V, V * jnp.array([1.0, 2.0, 0.5])])
    out = jax.vmap(vertex_normals, in_axes=(0, None))(batch, F)
    for i in range(2):
        np.testing.assert_allclose(out[i], vertex_normals(batch[i], F), rtol=1e-5, atol=1e-6)


def test_landmark_residuals_jit_vmap_grads():
    tp = jax.random.normal(jax.random.PRNGKey(1), (8, 8, 3)) * 0.05
    uv = jnp.array([[0.3, 0.4], [0.61, 0.52], [0.2, 0.77]])
    tgt = jnp.array([[30.0, 20.0], [33.0, 25.0], [28.0, 22.0]])
    cam = _cam()
    eager = landmark_residuals(tp, cam, uv, tgt)
    np.testing.assert_allclose(jax.jit(landmark_residuals)(tp, cam, uv, tgt), eager, rtol=1e-5)
    out = jax.vmap(landmark_residuals, in_axes=(0, None, None, None))(jnp.stack([tp, tp * 0.5]), cam, uv, tgt)
    np.testing.assert_allclose(out[1], landmark_residuals(tp * 0.5, cam, uv, tgt), rtol=1e-5)
    with x64():
        cam64 = _cam(jnp.float64)
        check_grads(lambda t: landmark_residuals(t, cam64, uv.astype(jnp.float64), tgt.astype(jnp.float64)),
                    (tp.astype(jnp.float64),), order=1, modes=["rev"])
