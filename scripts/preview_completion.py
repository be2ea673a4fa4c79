"""Write preview PNGs of the texture correction and completion stage (paper §2.4.3) for a person
to look at:

* ``skin_ita{55,30,-20}.png``: the procedural template skin albedo at three skin tones;
* ``masks.png``: the UV region masks (face, eyes, brows, mouth/lips, nostrils) over the albedo;
* ``synthetic_*.png``: a synthetic raw texture (another skin tone, a baked lighting gradient,
  smudged eyes/nostrils, only the face seen), its completion and the completion with make-up;
* ``portrait_*.png``: a raw texture made from the bundled portrait (matplotlib's
  ``grace_hopper.jpg``) by a piecewise-affine warp of its MediaPipe landmarks onto the
  template's landmark UVs (a stand-in for the texture fit), and its completion;
* ``*_head.png``: the completions rendered on the template head from the front, the side and
  the back.

    python scripts/preview_completion.py OUT_DIR [--resolution 1024]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from machlib._image import default_portrait, save_png
from machlib._preview import orbit_camera
from machlib._scene import render_mesh
from machlib.geometry import default_template, detect_landmarks
from machlib.texture import complete_texture, region_masks, skin_albedo


def to_u8(x) -> np.ndarray:
    return (np.clip(np.asarray(x, np.float64), 0, 1) * 255 + 0.5).astype(np.uint8)


def synthetic_raw(resolution: int, landmarks_uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Another person's albedo (tone, seed) with a lighting ramp, smudged features, face only."""
    R = resolution
    raw = np.asarray(skin_albedo(R, ita=18.0, seed=11), np.float64)
    v, u = (np.mgrid[0:R, 0:R] + 0.5) / R
    light = 0.85 + 0.35 * (0.5 - u) + 0.10 * (0.5 - v)  # key light from the subject's right
    raw = raw * light[..., None]
    masks = region_masks(landmarks_uv, R, dilate=0.006)
    smudge = np.maximum(np.asarray(masks["eyes"]), np.asarray(masks["nostrils"]))
    raw = raw * (1 - 0.5 * smudge[..., None]) + 0.5 * smudge[..., None] * np.array([0.25, 0.2, 0.2])
    seen = (np.asarray(region_masks(landmarks_uv, R)["face"]) > 0.5) & (np.abs(u - 0.5) < 0.27)
    return np.clip(raw, 0, 1) * seen[..., None], seen


def portrait_raw(resolution: int, landmarks_uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warp the bundled portrait into UV with the landmark correspondence (piecewise affine)."""
    from scipy.spatial import Delaunay

    from machlib._preview import sample_texture_np

    image = default_portrait()
    points = np.asarray(detect_landmarks(image).points, np.float64)[:, :2]
    R = resolution
    tri = Delaunay(landmarks_uv)
    v, u = (np.mgrid[0:R, 0:R] + 0.5) / R
    q = np.stack([u.ravel(), v.ravel()], 1)
    simplex = tri.find_simplex(q)
    inside = simplex >= 0
    T = tri.transform[simplex[inside]]
    b = np.einsum("nij,nj->ni", T[:, :2], q[inside] - T[:, 2])
    bary = np.concatenate([b, 1 - b.sum(1, keepdims=True)], 1)
    xy = np.einsum("nk,nkc->nc", bary, points[tri.simplices[simplex[inside]]])
    h, w = image.shape[:2]
    rgb = np.zeros((R * R, 3))
    rgb[inside] = sample_texture_np(image, xy / np.array([w, h]))
    # seen: inside the landmark hull and facing a frontal camera (as a texture fit would see it)
    pos = np.asarray(default_template().position_map(R), np.float64)
    normal = np.cross(np.gradient(pos, axis=1), np.gradient(pos, axis=0))
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-12)
    facing = normal[..., 2] * np.sign(normal[R // 3, R // 2, 2])
    seen = inside.reshape(R, R) & (facing > 0.45)
    return rgb.reshape(R, R, 3) * seen[..., None], seen


def head_views(albedo: np.ndarray, mesh) -> np.ndarray:
    views = []
    for yaw in (0.0, 60.0, 180.0):
        cam = orbit_camera(yaw, distance=0.7, image_size=(384, 384))
        rad = np.radians(yaw)
        light = (np.sin(rad) + 0.3 * np.cos(rad), 0.4, np.cos(rad) - 0.3 * np.sin(rad))  # a headlight
        views.append(render_mesh(mesh, cam, texture=to_u8(albedo), light_dir=light,
                                 background=np.full((384, 384, 3), 235, np.uint8)))
    return np.concatenate(views, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="output directory")
    ap.add_argument("--resolution", type=int, default=1024)
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    R = args.resolution
    template = default_template()
    lm = np.asarray(template.landmark_uv)

    for ita in (55, 30, -20):
        t0 = time.perf_counter()
        albedo = skin_albedo(R, ita=float(ita))
        print(f"skin_albedo(ita={ita}): {time.perf_counter() - t0:.2f} s")
        save_png(out / f"skin_ita{ita}.png", to_u8(albedo))

    base = np.asarray(skin_albedo(R, ita=40.0))
    masks = {k: np.asarray(m) for k, m in region_masks(lm, R, dilate=0.012).items()}
    exact = {k: np.asarray(m) for k, m in region_masks(lm, R).items()}
    overlay = base * 0.6
    colours = {"eyes": (0.2, 0.5, 1.0), "brows": (1.0, 0.8, 0.1), "mouth": (1.0, 0.2, 0.3), "nostrils": (0.2, 1.0, 0.3)}
    for k, c in colours.items():
        overlay = overlay * (1 - 0.35 * masks[k][..., None]) + 0.35 * masks[k][..., None] * np.array(c)
    edge = np.abs(np.gradient(exact["face"])[0]) + np.abs(np.gradient(exact["face"])[1])
    overlay = np.where(edge[..., None] > 0.1, 1.0, overlay)
    save_png(out / "masks.png", to_u8(overlay))

    for name, make in (("synthetic", synthetic_raw), ("portrait", portrait_raw)):
        raw, seen = make(R, lm)
        save_png(out / f"{name}_raw.png", to_u8(raw))
        t0 = time.perf_counter()
        flatten = 0.03 if name == "portrait" else 0.0  # the portrait was never delighted
        result = complete_texture(raw, seen, template=template, flatten=flatten)
        np.asarray(result.albedo)
        print(f"complete_texture({name}, R={R}): {time.perf_counter() - t0:.2f} s, ita {result.ita:.1f}")
        save_png(out / f"{name}_completed.png", to_u8(result.albedo))
        save_png(out / f"{name}_template.png", to_u8(result.template))
        dressed = complete_texture(raw, seen, template=template, flatten=flatten, blush=0.6, eye_shadow=0.6,
                                   lipstick=0.5)
        save_png(out / f"{name}_makeup.png", to_u8(dressed.albedo))
        save_png(out / f"{name}_head.png", head_views(np.asarray(result.albedo), template.mesh))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
