"""Landmark fit, then home-made 3D measurements and a vmapped landmark loss.

Fits the default template to the bundled portrait's MediaPipe landmarks, reads the head pose
(:func:`machlib.head_pose`), measures distances on the fitted 3D head at named landmarks
(:data:`machlib.geometry.LANDMARKS`), and scans the landmark loss over a stack of cameras that
turn the head by a few degrees (one ``jax.vmap`` over a batched :class:`machlib.Camera`).

    python docs/examples/landmark_measure.py [--small] [--out DIR]
"""

import argparse
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import machlib
from machlib import geometry as G
from machlib import render


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="few steps (the test suite uses this)")
    ap.add_argument("--out", type=pathlib.Path, default=None, help="folder for a render of the fitted head (PNG)")
    args = ap.parse_args(argv)
    config = G.residual_config(resolution=32, steps=20, levels=2) if args.small else None
    human_config = G.HumanFitConfig(steps=20) if args.small else None

    image = machlib.default_portrait()
    template = G.default_template()
    lm = G.detect_landmarks(image)
    size = (image.shape[1], image.shape[0])  # (width, height)
    fit = G.fit_landmarks(lm, template, size, config=config, human_config=human_config)
    yaw, pitch, roll = (float(a) for a in machlib.head_pose(fit.camera))
    print(f"head pose: yaw {yaw:+.1f}°, pitch {pitch:+.1f}°, roll {roll:+.1f}°; "
          f"mean residual {np.linalg.norm(fit.residuals, axis=-1).mean():.2f} px")

    # the fitted surface point under each landmark: sample the fitted mesh's position map
    position_map, _ = G.encode_mesh(fit.mesh, 128 if args.small else 256)
    points = np.asarray(G.decode(position_map, jnp.asarray(template.landmark_uv, position_map.dtype)))
    L = G.LANDMARKS

    def mm(a, b):
        return 1000.0 * float(np.linalg.norm(points[a] - points[b]))

    measures = {
        "interpupillary": mm(L.right_iris_centre, L.left_iris_centre),
        "mouth_width": mm(L.mouth_right, L.mouth_left),
        "eye_width_right": mm(L.right_eye_outer, L.right_eye_inner),
        "nose_to_chin": mm(L.nose_tip, L.chin),
        # how far the nose tip stands out in front of the inner eye corners (head +z)
        "nose_depth": 1000.0 * float(points[L.nose_tip, 2] - points[[L.right_eye_inner, L.left_eye_inner], 2].mean()),
    }
    for name, value in measures.items():
        print(f"  {name:16s} {value:6.1f} mm")

    # vmapped landmark loss: turn the head by -6..6 degrees about its own up axis
    angles = jnp.radians(jnp.linspace(-6.0, 6.0, 13))
    turn = jnp.stack([jnp.zeros_like(angles), angles, jnp.zeros_like(angles)], -1)
    R = machlib.rotation_matrix(fit.camera.rotation) @ machlib.rotation_matrix(turn)  # (13, 3, 3)
    cams = fit.camera.replace_extrinsics(rotation=machlib.matrix_to_rotvec(R))  # a stack of 13
    uv = jnp.asarray(template.landmark_uv, jnp.float32)
    weights = jnp.asarray(G.landmark_weights(template, confidence=lm.confidence), jnp.float32)
    loss = jax.vmap(lambda cam: G.landmark_loss(position_map, cam, uv, lm.points, weights=weights))(cams)
    best = float(jnp.degrees(angles[jnp.argmin(loss)]))
    print(f"landmark loss over turns: min {float(loss.min()):.2f} px at {best:+.1f}°, "
          f"{float(loss[0]):.2f} px at -6°, {float(loss[-1]):.2f} px at +6°")
    if args.out is not None:  # the fitted head, grey, in the photo's camera and turned 40 degrees
        args.out.mkdir(parents=True, exist_ok=True)
        m, light = fit.mesh, render.sh_directional(jnp.array([0.3, 0.4, 0.9]), jnp.full(3, 0.8), ambient=0.25)
        turned = fit.camera.replace_extrinsics(rotation=machlib.matrix_to_rotvec(
            machlib.rotation_matrix(fit.camera.rotation) @ machlib.rotation_matrix(jnp.array([0.0, 0.7, 0.0]))))
        views = [render.render_textured(m.vertices, m.faces, m.uv, m.faces_uv, jnp.full((4, 4, 3), 0.75), c,
                                        lighting=light, filter="linear") for c in (fit.camera, turned)]
        rgb = np.concatenate([np.asarray(v[..., :3] * v[..., 3:] + 1.0 - v[..., 3:]) for v in views], 1)
        machlib.save_png(args.out / "fitted_head.png", (np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    return {"pose": (yaw, pitch, roll), "measures": measures, "best_turn_degrees": best,
            "loss": np.asarray(loss)}


if __name__ == "__main__":
    main()
