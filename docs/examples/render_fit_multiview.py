"""Render-and-fit: recover a texture and per-vertex offsets from renders by three cameras.

A differentiable renderer is built from machlib's primitives (``to_clip`` → ``rasterize`` →
``interpolate`` → ``texture`` → ``antialias``) for *one* camera, then ``jax.vmap``-ed over a
stacked :class:`machlib.Camera` (three head poses from :func:`machlib.camera_from_head_pose`).
Targets are renders of the template with a hidden texture and a hidden bump along the normals;
optax recovers both from the images. Prints the image loss and the errors of the unknowns.

    python docs/examples/render_fit_multiview.py [--small] [--out DIR]
"""

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

import machlib
from machlib import geometry as G
from machlib import render as MR


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="tiny sizes (the test suite uses this)")
    ap.add_argument("--out", type=pathlib.Path, default=None, help="folder for target/fit renders (PNG)")
    args = ap.parse_args(argv)
    size, R, steps = (32, 16, 30) if args.small else (160, 64, 400)

    mesh = G.default_template().mesh
    V, F = jnp.asarray(mesh.vertices, jnp.float32), jnp.asarray(mesh.faces, jnp.int32)
    UV, FUV = jnp.asarray(mesh.uv, jnp.float32), jnp.asarray(mesh.faces_uv, jnp.int32)
    normals = machlib.vertex_normals(V, F)
    cams = machlib.camera_from_head_pose(jnp.array([[-35.0, 0.0, 0.0], [0.0, 5.0, 0.0], [35.0, 0.0, 0.0]]),
                                         distance=0.6, target=(0.0, -0.02, 0.0), image_size=(size, size))
    # a hidden texture (smooth colour bands) and a hidden 3 mm bump along the normals
    u, v = jnp.meshgrid((jnp.arange(R) + 0.5) / R, (jnp.arange(R) + 0.5) / R)
    tex_true = jnp.stack([0.5 + 0.4 * jnp.sin(6 * u), 0.5 + 0.4 * jnp.cos(5 * v), 0.3 + 0.4 * u * v], -1)
    bump_true = 0.003 * jnp.sin(25.0 * V[:, 1])
    capacity = 2 * max(MR.fragment_count(MR.to_clip(V, cams[i]), F, image_size=(size, size)) for i in range(3))

    def render(bump, tex, cam):  # one camera
        verts = V + bump[:, None] * normals
        clip = MR.to_clip(verts, cam)
        rast = MR.rasterize(clip, F, image_size=cam.image_size, cull_backfaces=True, capacity=capacity)
        color = MR.texture(tex, MR.interpolate(UV, rast, FUV))
        color = jnp.where((rast.triangle >= 0)[..., None], color, 0.0)
        return MR.antialias(color, rast, clip, F)

    render_all = jax.jit(jax.vmap(render, in_axes=(None, None, 0)))  # over the stacked cameras
    targets = render_all(bump_true, tex_true, cams)  # (3, H, W, 3)

    def loss(params):
        images = render_all(params["bump"], params["tex"], cams)
        smooth = jnp.mean(params["bump"] ** 2) * 1e2
        return jnp.mean((images - targets) ** 2) + smooth

    params = {"bump": jnp.zeros(V.shape[0]), "tex": jnp.full((R, R, 3), 0.5)}
    opt = optax.multi_transform({"bump": optax.adam(2e-4), "tex": optax.adam(3e-2)},
                                {"bump": "bump", "tex": "tex"})
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    first = None
    for _ in range(steps):
        params, state, value = step(params, state)
        first = float(value) if first is None else first
    final = float(step(params, state)[2])  # the loss at the fitted parameters (step's value precedes its update)
    seen = MR.texture(tex_true, UV)  # compare the texture where the mesh's UVs sample it
    tex_err = float(jnp.mean(jnp.abs(MR.texture(params["tex"], UV) - seen)))
    tex_err0 = float(jnp.mean(jnp.abs(0.5 - seen)))
    print(f"image loss {first:.5f} -> {final:.5f}; texture error {tex_err0:.3f} -> {tex_err:.3f}; "
          f"bump correlation {float(jnp.corrcoef(params['bump'], bump_true)[0, 1]):.2f}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        fitted = render_all(params["bump"], params["tex"], cams)
        rows = [np.concatenate(list(np.asarray(x)), axis=1) for x in (targets, fitted)]
        machlib.save_png(args.out / "multiview_fit.png", (np.clip(np.concatenate(rows, 0), 0, 1) * 255).astype(np.uint8))
    return {"loss_start": first, "loss_end": final, "tex_error_start": tex_err0, "tex_error_end": tex_err}


if __name__ == "__main__":
    main()
