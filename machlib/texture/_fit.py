"""Multi-resolution texture extraction by differentiable rendering (Make-A-Character §2.4.1).

With the fitted geometry and camera fixed, visibility does not change while the texture is
optimised: the head is rasterized **once** in the portrait's camera, and every face pixel keeps
its UV coordinate. Rendering a texture ``T`` is then ``I_R(p) = texture(T, uv_p)`` (bilinear),
and the fit minimises eq. 7,

.. code-block:: text

   L_tex = ‖I_R − I_T‖_F + α · TV(T),      α = 0.01

over the face pixels, level by level through the resolution hierarchy ``[32, 128, 512, 1024]``;
each level starts from the bilinear upsampling of the previous one, so texels that no pixel
centre reaches still inherit the coarse colour. The data term is the Frobenius norm normalised
by the (weighted) pixel count, i.e. the root-mean-square colour error, so ``α`` keeps its meaning
at any portrait size. The paper writes ``TV(I_R)``; we regularise the texture itself, because a
smoothness term on the render cannot reach the texels between pixel samples. ``TV`` is the
resolution-normalised, smoothed anisotropic L1 total variation (edges such as brows survive).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, Shaped

from .._device import to_device
from .._errors import InputError
from .._camera import Camera, check_image_shape, project, rotation_matrix, world_to_camera
from .._mesh import Mesh, vertex_normals
from .._typing import AnyArray
from ..geometry._fit import _upsample_axis
from ..geometry._triplane import encode, uv_raster
from ..render import Raster, build_mip, interpolate, rasterize, texture, to_clip
from ..render._rasterize import _bucket

__all__ = [
    "TextureFitConfig",
    "TextureProblem",
    "TextureFitState",
    "TextureFit",
    "TextureResult",
    "texture_fit",
    "texture_tv",
    "upsample_texture",
    "texture_problem",
    "texel_visibility",
    "fit_texture",
]


class TextureFitConfig(eqx.Module):
    """Settings of the multi-resolution texture fit.

    Attributes:
        resolutions: the texture resolution of each level (static), increasing.
        steps: Adam steps per level (static), one per resolution.
        learning_rates: Adam learning rate per level (colour units per step).
        alpha: weight of the texture total variation (eq. 7, ``α = 0.01``).
        tv_eps: smoothing of the L1 total variation, ``√(d² + ε²)``.
        filter: how a render samples the texture (:func:`~machlib.render.texture`):
            ``"linear"`` (bilinear at pixel centres; the default) or ``"linear-mipmap-linear"``
            (trilinear with the pixels' footprints; about 1.5 dB better face PSNR when the avatar
            is displayed with trilinear filtering, at about 5× the time per step).
    """

    resolutions: tuple[int, ...] = eqx.field(static=True, default=(32, 128, 512, 1024))
    steps: tuple[int, ...] = eqx.field(static=True, default=(120, 100, 80, 60))
    learning_rates: tuple[float, ...] = eqx.field(static=True, default=(0.05, 0.03, 0.02, 0.02))
    alpha: float = eqx.field(static=True, default=0.01)
    tv_eps: float = eqx.field(static=True, default=1e-3)
    filter: str = eqx.field(static=True, default="linear")

    def __check_init__(self):
        res, steps, lrs = self.resolutions, self.steps, self.learning_rates
        if not res or len(steps) != len(res) or len(lrs) != len(res):
            raise InputError(
                "TextureFitConfig: resolutions, steps and learning_rates need one entry per level, got "
                f"{len(res)}, {len(steps)} and {len(lrs)}"
            )
        if any(int(r) < 2 for r in res) or any(b <= a for a, b in zip(res, res[1:])):
            raise InputError(f"TextureFitConfig: resolutions must increase and be >= 2, got {res}")
        if any(int(s) < 1 for s in steps):
            raise InputError(f"TextureFitConfig: steps must be >= 1, got {steps}")
        if any(not lr > 0 for lr in lrs):
            raise InputError(f"TextureFitConfig: learning_rates must be positive, got {lrs}")
        if self.filter not in ("linear", "linear-mipmap-linear"):
            raise InputError(f"TextureFitConfig: filter must be 'linear' or 'linear-mipmap-linear', got {self.filter!r}")
        if not self.alpha >= 0:
            raise InputError(f"TextureFitConfig: alpha must be >= 0, got {self.alpha}")


class TextureProblem(NamedTuple):
    """The observations of a texture fit: one row per face pixel of the portrait.

    Attributes:
        uv: ``(P, 2)`` texture coordinate seen at each pixel centre.
        target: ``(P, C)`` the portrait's colour there (floats, e.g. sRGB in ``[0, 1]``).
        weight: ``(P,)`` non-negative pixel weight (face mask × coverage).
        uv_grad: ``(P, 2, 2)`` screen-space derivatives of ``uv`` (``∂uv/∂(x, y)``) for mip-level
            selection, or ``None`` (then the fit samples bilinearly whatever the config says).
    """

    uv: Float[Array, "P 2"]
    target: Float[Array, "P C"]
    weight: Float[Array, "P"]
    uv_grad: Float[Array, "P 2 2"] | None = None


class TextureFitState(NamedTuple):
    """State of one level's optimisation: the texture and Adam's state."""

    texture: Float[Array, "R R C"]
    opt_state: optax.OptState


class TextureFit(NamedTuple):
    """The functions of one level's fit (like an ``optax.GradientTransformation``).

    Attributes:
        init: ``init(texture) -> TextureFitState``.
        step: ``step(state, problem) -> (state, metrics)``; pure.
        run: ``run(state, problem, num_steps) -> (state, metrics)``: ``lax.scan`` of ``step``
            under ``jit``; ``num_steps`` is static.
        loss: ``loss(texture, problem) -> (total, metrics)``.
    """

    init: Callable
    step: Callable
    run: Callable
    loss: Callable


def texture_tv(tex: Float[ArrayLike, "H W C"], *, eps: float = 1e-3) -> Float[Array, ""]:
    """Resolution-normalised smoothed L1 total variation of a texture.

    ``R · mean(√(Δ² + ε²) − ε)`` over horizontal and vertical neighbour differences and channels:
    a step of height ``h`` along a UV curve of length ``ℓ`` costs about ``h·ℓ`` at any ``R``.

    Args:
        tex: ``(R, R, C)`` texture (``(H, W, C)`` works too; ``R = max(H, W)``).
        eps: smoothing so the gradient is defined at zero.

    Returns:
        Scalar.
    """
    tex = jnp.asarray(tex)
    if tex.ndim != 3:
        raise InputError(f"texture_tv: tex must have shape (R, R, C), got {tex.shape}")
    dx = tex[:, 1:] - tex[:, :-1]
    dy = tex[1:] - tex[:-1]
    smooth = lambda d: jnp.sqrt(d * d + eps * eps) - eps  # noqa: E731
    total = jnp.sum(smooth(dx)) + jnp.sum(smooth(dy))
    return total * max(tex.shape[:2]) / (tex.shape[0] * tex.shape[1] * tex.shape[2])


def upsample_texture(tex: Float[ArrayLike, "R R C"], resolution: int) -> Float[Array, "S S C"]:
    """Bilinear upsampling of a square texture to ``resolution`` (texel centres aligned).

    Integer factors use an O(output) two-tap scheme; other factors ``jax.image.resize``.
    """
    tex = jnp.asarray(tex)
    if tex.ndim != 3 or tex.shape[0] != tex.shape[1]:
        raise InputError(f"upsample_texture: tex must have shape (R, R, C), got {tex.shape}")
    r = tex.shape[0]
    if resolution == r:
        return tex
    if resolution % r == 0:
        s = resolution // r
        return _upsample_axis(_upsample_axis(tex, s, 0), s, 1)
    return jax.image.resize(tex, (resolution, resolution, tex.shape[2]), "linear")


def _upsample_axis_host(x: np.ndarray, s: int, axis: int) -> np.ndarray:
    """:func:`~machlib.geometry._fit._upsample_axis` in numpy, the same float32 operations in the
    same order (so the same numbers to the bit): run eagerly in JAX, its slices, blends, stacks
    and reshapes compiled one small program each per level of :func:`fit_texture`."""
    n = x.shape[axis]
    xp = np.concatenate([x.take([0], axis), x, x.take([n - 1], axis)], axis)  # clamp at the edges
    prev, cur, nxt = (xp.take(np.arange(k, k + n), axis) for k in range(3))
    phases = []
    for p in range(s):
        c = (p + 0.5) / s - 0.5
        phases.append((-c) * prev + (1.0 + c) * cur if c < 0 else (1.0 - c) * cur + c * nxt)
    out = np.stack(phases, axis + 1)
    return out.reshape(x.shape[:axis] + (n * s,) + x.shape[axis + 1 :])


def texture_fit(config: TextureFitConfig = TextureFitConfig(), *, level: int = 0) -> TextureFit:
    """Build the ``init/step/run/loss`` functions of one level of the texture fit (eq. 7).

    Args:
        config: the :class:`TextureFitConfig`.
        level: index into ``config.resolutions`` (sets the learning rate).

    Returns:
        A :class:`TextureFit`.

    Example:
        >>> import jax.numpy as jnp
        >>> from machlib.texture import TextureProblem, texture_fit
        >>> problem = TextureProblem(jnp.array([[0.5, 0.5]]), jnp.array([[0.8, 0.5, 0.4]]), jnp.ones(1))
        >>> fit = texture_fit()
        >>> state, metrics = fit.run(fit.init(jnp.zeros((4, 4, 3))), problem, 200)
        >>> bool(metrics["data"][-1] < 0.05)
        True
    """
    if not 0 <= level < len(config.resolutions):
        raise InputError(f"texture_fit: level must be in [0, {len(config.resolutions)}), got {level}")
    optimizer = optax.adam(config.learning_rates[level])

    def loss(tex, problem: TextureProblem):
        if config.filter == "linear" or problem.uv_grad is None:
            rendered = texture(tex, problem.uv)
        else:
            rendered = texture(tex, problem.uv, problem.uv_grad, filter=config.filter, mip=build_mip(tex))
        sq = jnp.sum((rendered - problem.target) ** 2, axis=-1)
        w = problem.weight
        data = jnp.sqrt(jnp.sum(w * sq) / jnp.maximum(jnp.sum(w), 1e-12) + 1e-12)
        tv = texture_tv(tex, eps=config.tv_eps)
        return data + config.alpha * tv, {"data": data, "tv": tv}

    def init(tex) -> TextureFitState:
        tex = jnp.asarray(tex)
        return TextureFitState(tex, optimizer.init(tex))

    def step(state: TextureFitState, problem: TextureProblem):
        (total, metrics), grad = jax.value_and_grad(loss, has_aux=True)(state.texture, problem)
        updates, opt_state = optimizer.update(grad, state.opt_state, state.texture)
        tex = jnp.clip(optax.apply_updates(state.texture, updates), 0.0, 1.0)
        return TextureFitState(tex, opt_state), {"loss": total, **metrics}

    def run(state, problem, num_steps: int):
        return _run_jit(step, state, problem, int(num_steps))

    return TextureFit(init, step, run, loss)


def _run(step, state, problem, num_steps):
    return jax.lax.scan(lambda s, _: step(s, problem), state, None, length=num_steps)


_run_jit = jax.jit(_run, static_argnums=(0, 3))


def _face_polygon_mask(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from skimage.draw import polygon

    width, height = size
    mask = np.zeros((height, width), bool)
    rr, cc = polygon(points[:, 1] - 0.5, points[:, 0] - 0.5, shape=(height, width))
    mask[rr, cc] = True
    return mask


def texture_problem(
    image: Shaped[AnyArray, "H W C"],
    mesh: Mesh,
    camera: Camera,
    *,
    face_mask: Float[AnyArray, "H W"] | None = None,
    erode: int = 2,
    uv_map: Float[AnyArray, "H W 2"] | None = None,
) -> tuple[TextureProblem, Raster]:
    """Rasterize the fitted head once and collect the face pixels' UVs and colours.

    Args:
        image: ``(H, W, C)`` portrait as floats in ``[0, 1]`` (or uint8, divided by 255).
        mesh: the fitted :class:`~machlib.Mesh` (with ``uv``/``faces_uv``).
        camera: the fitted camera (its ``image_size`` must be ``(W, H)``).
        face_mask: ``(H, W)`` weights of the portrait's face region (e.g. the filled face oval
            of the detected landmarks); default: every covered pixel.
        erode: pixels removed along the render's silhouette so background never leaks in.
        uv_map: ``(H, W, 2)`` optional texture coordinates of the pixels to use instead of the
            mesh's (e.g. :func:`machlib.pipeline.texture_portrait`'s landmark-guided lips of an
            open mouth); where they differ from the mesh's, their screen-space derivatives are
            central differences of ``uv_map``. Coverage still comes from the mesh.

    Returns:
        ``(problem, raster)``: the :class:`TextureProblem` and the :class:`~machlib.render.Raster`
        of the head in the portrait's camera.
    """
    from scipy import ndimage

    img = np.asarray(image)
    if img.ndim != 3:
        raise InputError(f"texture_problem: image must have shape (H, W, C), got {img.shape}")
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    height, width = img.shape[:2]
    check_image_shape("texture_problem", camera, img.shape, "image")
    if mesh.uv is None or mesh.faces_uv is None:
        raise InputError("texture_problem: mesh has no UV coordinates")
    faces = to_device(mesh.faces, np.int32)
    clip = to_clip(to_device(mesh.vertices, np.float32), camera)
    rast = rasterize(clip, faces, image_size=(width, height), cull_backfaces=True, derivatives=True)
    uv, uv_grad = interpolate(to_device(mesh.uv, np.float32), rast, to_device(mesh.faces_uv, np.int32),
                              derivatives=True)
    uv, uv_grad = np.asarray(uv), np.asarray(uv_grad)
    if uv_map is not None:
        um = np.asarray(uv_map, np.float32)
        if um.shape != (height, width, 2) or not np.isfinite(um).all():
            raise InputError(f"texture_problem: uv_map must be a finite {(height, width, 2)} array, got {um.shape}")
        moved = np.any(um != uv, axis=-1)
        if moved.any():
            d_row, d_col = np.gradient(um, axis=(0, 1))
            uv_grad = np.where(moved[..., None, None], np.stack([d_col, d_row], -1), uv_grad)
            uv = np.where(moved[..., None], um, uv)
    covered = np.asarray(rast.triangle) >= 0
    if erode > 0:
        covered = ndimage.binary_erosion(covered, iterations=int(erode), border_value=0)
    weight = covered.astype(np.float32)
    if face_mask is not None:
        fm = np.asarray(face_mask, np.float32)
        check_image_shape("texture_problem", camera, fm.shape, "face_mask")
        if fm.ndim != 2:
            raise InputError(f"texture_problem: face_mask must have shape {(height, width)}, got {fm.shape}")
        weight = weight * fm
    idx = np.nonzero(weight > 0)
    if idx[0].size == 0:
        raise InputError("texture_problem: no face pixel is covered by the fitted head")
    problem = TextureProblem(
        to_device(uv[idx], np.float32),
        to_device(img[idx], np.float32),
        to_device(weight[idx], np.float32),
        to_device(uv_grad[idx], np.float32),
    )
    return problem, rast


def texel_visibility(
    mesh: Mesh,
    camera: Camera,
    rast: Raster,
    resolution: int,
    *,
    pixel_mask: Float[AnyArray, "H W"] | None = None,
    min_cos: float = 0.15,
    depth_tolerance: float = 0.005,
) -> Float[np.ndarray, "R R"]:
    """Which texels the portrait actually shows, as weights in ``[0, 1]``.

    A texel counts as seen where its surface point lies inside the image and inside
    ``pixel_mask``, passes the depth test against ``rast`` (it is the visible surface there), and
    faces the camera; the weight ramps with the cosine between normal and view direction from
    ``min_cos`` to ``2·min_cos``. Texels outside the UV chart are 0. Unseen texels are what
    completion fills (:func:`~machlib.texture.complete_texture`).

    Args:
        mesh: the fitted mesh.
        camera: its camera.
        rast: the raster of the mesh in that camera (:func:`texture_problem` returns it).
        resolution: texture resolution ``R``.
        pixel_mask: ``(H, W)`` optional weights (e.g. the face region used in the fit).
        min_cos: grazing-angle cut-off.
        depth_tolerance: metres a texel may lie behind the rendered surface and still count.

    Returns:
        ``(R, R)`` float32 weights.

    Raises:
        InputError: ``rast`` or ``pixel_mask`` is not of the camera's size (``(H, W)`` arrays
            against the camera's ``(width, height)``).
    """
    check_image_shape("texel_visibility", camera, np.shape(rast.triangle), "rast")
    if pixel_mask is not None:
        check_image_shape("texel_visibility", camera, np.shape(pixel_mask), "pixel_mask")
    raster = uv_raster(mesh, resolution)
    vertices = to_device(mesh.vertices, np.float32)
    pos = np.asarray(encode(vertices, raster))
    nrm = np.asarray(encode(vertex_normals(vertices, to_device(mesh.faces)), raster))
    inside_chart = np.asarray(raster.mask)
    pts = pos.reshape(-1, 3)
    pts_d = to_device(pts)
    xy = np.asarray(project(pts_d, camera))
    depth = np.asarray(world_to_camera(pts_d, camera))[:, 2]
    width, height = camera.image_size
    col = np.floor(xy[:, 0]).astype(np.int64)
    row = np.floor(xy[:, 1]).astype(np.int64)
    in_img = (col >= 0) & (col < width) & (row >= 0) & (row < height) & (depth > 0)
    col_c, row_c = np.clip(col, 0, width - 1), np.clip(row, 0, height - 1)
    # rendered depth in metres at each texel's pixel, from the raster's NDC depth via the clip
    # coordinates of the texel itself: compare in NDC to stay exact
    clip = np.asarray(to_clip(pts_d, camera))
    z_ndc = clip[:, 2] / np.where(clip[:, 3] > 0, clip[:, 3], 1.0)
    z_buf = np.asarray(rast.depth)[row_c, col_c]
    hit = np.asarray(rast.triangle)[row_c, col_c] >= 0
    # convert the tolerance in metres to NDC at this depth: dz_ndc/dZ = 2fn / ((f - n) Z²)
    near, far = 0.01, 100.0
    tol = depth_tolerance * 2 * far * near / ((far - near) * np.maximum(depth, 1e-6) ** 2)
    visible = in_img & hit & (z_ndc <= z_buf + tol)
    eye = np.asarray(_camera_centre(camera))
    view = eye[None] - pts
    view /= np.maximum(np.linalg.norm(view, axis=1, keepdims=True), 1e-12)
    n = nrm.reshape(-1, 3)
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    cos = np.sum(n * view, axis=1)
    w = np.clip((cos - min_cos) / max(min_cos, 1e-6), 0.0, 1.0) * visible
    if pixel_mask is not None:
        pm = np.asarray(pixel_mask, np.float32)
        w = w * np.where(in_img, pm[row_c, col_c], 0.0)
    return (w.reshape(resolution, resolution) * inside_chart).astype(np.float32)


def _camera_centre(camera: Camera) -> jax.Array:
    return -rotation_matrix(camera.rotation).T @ camera.translation


class TextureResult(NamedTuple):
    """Result of :func:`fit_texture`.

    Attributes:
        texture: ``(R, R, C)`` fitted texture at the finest level (float32, ``[0, 1]``).
        levels: the texture after each level, coarse to fine.
        history: per level, the per-step metrics (numpy arrays).
        level_seconds: wall time per level (compiled optimisation only).
        compile_seconds: time spent compiling, all levels.
    """

    texture: np.ndarray
    levels: tuple
    history: tuple
    level_seconds: tuple
    compile_seconds: float


_COMPILED: dict = {}


def _pad_rows(problem: TextureProblem) -> TextureProblem:
    """The problem with its pixel rows padded to a bucket size (a few sizes per octave) by
    zero-weight copies of the first row, so that portraits with about as many face pixels share
    one compiled program per level (in a process, and in the persistent compilation cache). The
    loss and its gradients are unchanged: every padded row has weight 0."""
    P = problem.uv.shape[0]
    n = _bucket(P)
    if n == P:
        return problem

    def pad(x):  # on the host: eager jnp ops here compiled ~10 small programs per process
        if x is None:
            return None
        x = np.asarray(x)
        return to_device(np.concatenate([x, np.broadcast_to(x[:1], (n - P,) + x.shape[1:])]))

    w = np.asarray(problem.weight)
    weight = to_device(np.concatenate([w, np.zeros((n - P,), w.dtype)]))
    return TextureProblem(pad(problem.uv), pad(problem.target), weight, pad(problem.uv_grad))


def fit_texture(
    problem: TextureProblem,
    *,
    config: TextureFitConfig = TextureFitConfig(),
    init: Float[AnyArray, "r r C"] | None = None,
) -> TextureResult:
    """Run the multi-resolution texture fit (eq. 7) through all levels of ``config``.

    Args:
        problem: the :class:`TextureProblem` (see :func:`texture_problem`).
        config: the :class:`TextureFitConfig`.
        init: texture to start the first level from (resized to it); default: the weighted
            mean target colour everywhere.

    Returns:
        A :class:`TextureResult`.
    """
    channels = problem.target.shape[-1]
    r0 = config.resolutions[0]
    problem = _pad_rows(problem)
    if init is None:
        w = problem.weight[:, None]
        mean = jnp.sum(problem.target * w, axis=0) / jnp.maximum(jnp.sum(w), 1e-12)
        tex = jnp.broadcast_to(mean, (r0, r0, channels)).astype(jnp.float32)
    else:
        tex = jnp.asarray(init, jnp.float32)
        if tex.ndim != 3 or tex.shape[-1] != channels:
            raise InputError(f"fit_texture: init must have shape (r, r, {channels}), got {tex.shape}")
        tex = jax.image.resize(tex, (r0, r0, channels), "linear")
    levels, history, seconds = [], [], []
    compile_total = 0.0
    for level, (res, steps) in enumerate(zip(config.resolutions, config.steps)):
        if tex.shape[0] != res and res % tex.shape[0] == 0:  # on the host: no program per level
            f, host = res // tex.shape[0], np.asarray(tex)
            tex = to_device(_upsample_axis_host(_upsample_axis_host(host, f, 0), f, 1))
        elif tex.shape[0] != res:
            tex = upsample_texture(tex, res)
        fit = texture_fit(config, level=level)
        state = fit.init(tex)
        key = (config, level, steps, jax.tree_util.tree_structure(state), tex.shape, problem.uv.shape, problem.target.dtype)
        compiled = _COMPILED.get(key)
        if compiled is None:
            t = time.perf_counter()
            compiled = jax.jit(lambda s, p, _fit=fit, _n=steps: jax.lax.scan(
                lambda c, _: _fit.step(c, p), s, None, length=_n)).lower(state, problem).compile()
            compile_total += time.perf_counter() - t
            _COMPILED[key] = compiled
        t = time.perf_counter()
        state, metrics = compiled(state, problem)
        jax.block_until_ready(state.texture)
        seconds.append(time.perf_counter() - t)
        tex = state.texture
        levels.append(np.asarray(tex))
        history.append({k: np.asarray(v) for k, v in metrics.items()})
    return TextureResult(np.asarray(tex), tuple(levels), tuple(history), tuple(seconds), compile_total)
