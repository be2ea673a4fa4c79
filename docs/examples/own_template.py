"""Your own template through the fit and texture stages.

A template is two files: a mesh with non-overlapping UVs (OBJ/GLB, head space, metres) and a
JSON table saying where the 478 MediaPipe landmarks lie on it (:doc:`/templates`). Here the
"own" mesh is made in code (the default head, 6 % wider with a longer nose, so that it runs
anywhere); the table comes from 3D correspondences by nearest vertex, the way published
FLAME↔MediaPipe correspondences are converted. For a real FLAME or ICT mesh, replace
``make_mesh`` and ``correspondences`` with your files. Then: fit, texture, write an OBJ.

    python docs/examples/own_template.py [--small] [--out DIR]
"""

import argparse
import json
import pathlib
import tempfile

import numpy as np

import machlib
from machlib import geometry as G
from machlib import texture as T


def make_mesh():
    """A head of our own (any mesh with welded vertices, UVs and outward CCW faces will do)."""
    head = G.default_template().mesh
    v = np.asarray(head.vertices, np.float64) * np.array([1.06, 1.0, 1.0])
    nose = np.exp(-((v[:, 0] / 0.015) ** 2 + ((v[:, 1] + 0.01) / 0.02) ** 2)) * (v[:, 2] > 0.05)
    v[:, 2] += 0.006 * nose  # 6 mm longer nose
    return machlib.Mesh(v, head.faces, head.uv, head.faces_uv)


def correspondences(mesh):
    """Landmark index -> vertex index: the vertex nearest to each known landmark position."""
    template = G.default_template()
    known = template.landmark_positions() * np.array([1.06, 1.0, 1.0])
    d = np.linalg.norm(np.asarray(mesh.vertices)[None] - known[:, None], axis=-1)
    return {int(k): int(d[k].argmin()) for k in np.flatnonzero(template.landmark_valid)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="few steps, small maps (the test suite uses this)")
    ap.add_argument("--out", type=pathlib.Path, default=None, help="folder for the textured OBJ")
    args = ap.parse_args(argv)
    geometry = G.GeometryFitConfig(resolution=32, levels=3, steps=60) if args.small else G.GeometryFitConfig()
    texture = (T.TextureFitConfig(resolutions=(16, 32), steps=(20, 20), learning_rates=(0.05, 0.03))
               if args.small else T.TextureFitConfig(resolutions=(32, 128, 512), steps=(120, 100, 80),
                                                     learning_rates=(0.05, 0.03, 0.02)))

    with tempfile.TemporaryDirectory() as tmp:  # the two files a user would have
        mesh_path, table_path = pathlib.Path(tmp) / "head.obj", pathlib.Path(tmp) / "head.json"
        mesh = make_mesh()
        machlib.save_obj(mesh_path, mesh)
        table = {"num_landmarks": 478, "symmetric": True,
                 "landmarks": [{"index": k, "vertex": v} for k, v in correspondences(mesh).items()]}
        table_path.write_text(json.dumps(table))
        template = G.load_template(mesh_path, table_path)
    print(f"template: {len(template.mesh.vertices)} vertices, {int(template.landmark_valid.sum())} landmarks")

    image = machlib.default_portrait()
    lm = G.detect_landmarks(image)
    fit = G.fit_landmarks(lm, template, (image.shape[1], image.shape[0]), config=geometry)
    err = np.linalg.norm(fit.residuals, axis=-1)[np.asarray(template.landmark_valid)]
    print(f"geometry: {err.mean():.2f} px mean landmark error; head pose {np.round(np.asarray(machlib.head_pose(fit.camera)), 1)}")

    problem, _ = T.texture_problem(image, fit.mesh, fit.camera)
    tex = T.fit_texture(problem, config=texture)
    loss = [float(h["loss"][-1]) for h in tex.history]
    print(f"texture: {tex.texture.shape[0]}² texels, loss per level {np.round(loss, 4).tolist()}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        machlib.save_png(args.out / "own_template.png", (np.clip(tex.texture, 0, 1) * 255).astype(np.uint8))
        machlib.save_obj(args.out / "own_template.obj", fit.mesh, texture="own_template.png")
    return {"landmark_px": float(err.mean()), "texture": tex.texture, "texture_loss": loss,
            "landmarks": int(template.landmark_valid.sum())}


if __name__ == "__main__":
    main()
