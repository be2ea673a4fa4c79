"""Look test: does the avatar ``machlib make`` builds look like the person in the photo?

Run from the repository root::

    PYTHONPATH=. python benchmarks/identity.py                         # every portrait (~1 min each on 2 cores, ~9 min in all)
    PYTHONPATH=. python benchmarks/identity.py --quick                 # smoke run: small hair and texture settings
    PYTHONPATH=. python benchmarks/identity.py --portraits hopper,t1_face2 --out /tmp/look

To measure another checkout (a git worktree of an older commit, say), run this script with that
tree first on ``PYTHONPATH``; the script prints ``machlib.__file__`` and records the commit::

    cd /tmp/machlib_baseline && PYTHONPATH=/tmp/machlib_baseline \\
        python /work/main/benchmarks/identity.py --out /tmp/machlib_identity_baseline

For every portrait the whole job runs through the Python API, as ``machlib make --image PHOTO``
does (:func:`machlib.character.make_character` then :func:`machlib.character.write_make_outputs`,
into ``OUT/<portrait>/avatar/``). The assembled character (hair, eyes, glasses, bust included) is
then rendered with machlib's scene renderer (``machlib._scene.render_scene``, the renderer of
``preview_*.png``) under the portrait's estimated SH lighting, 512 × 512, in three cameras:

* ``input``: the fitted camera of the portrait, cropped to a square around the head (the photo
  panel of the contact sheet shows the same crop, pixel for pixel);
* ``yaw-30`` / ``yaw+30``: that camera turned about the head's vertical axis (world +y through the
  head's centre) by −30° / +30°, at the same distance; +30° moves the camera towards the
  subject's left, as :func:`machlib._preview.orbit_camera` does. The head's centre stays on the
  same pixel, so the three views share the framing.

An independent face recogniser scores the likeness: dlib's ResNet face descriptor (128-D; two
photos of the same person are usually below 0.6 Euclidean distance, of different people above)
of the photo's face against each render's face ("no face" when dlib's HOG detector finds none).
As a check on the measure itself, each render is also compared with the *other* portraits' photos:
``rank`` 1 means the avatar is closer to its own photo than to anyone else's. The landmark
reprojection error and face PSNR/SSIM come from the run's ``report.json``.

Portraits (built in code, cached as PNG under ``~/.cache/machlib/portraits/``; never commit them):

* ``hopper``: the bundled default portrait (:func:`machlib.default_portrait`, matplotlib's
  Grace Hopper);
* ``astronaut``: ``skimage.data.astronaut()``;
* ``t1_face0`` … ``t1_face5``: the six faces of the group photo ``insightface/data/images/t1.jpg``
  from the insightface 2.1 wheel (``pip download --no-deps insightface==2.1``, only that member is
  unzipped, nothing is installed), left to right, each cropped square at 2.2× dlib's face box
  (head, hair and some shoulders) and resized to 512 × 512.

Output (``--out``, default ``/tmp/machlib_identity``): ``identity.json`` (everything, with
machine, date, machlib commit), ``identity.md`` (the table), ``sheet_<portrait>.png`` (photo |
input view | −30° | +30°, with the distances) and ``<portrait>/`` (the renders and the full
``machlib make`` output).

Requirements: machlib's dependencies plus ``dlib`` and ``face-recognition-models`` (not machlib
dependencies; the script exits with status 2 and says so when they are missing). Exit status 1
when a portrait fails.
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))  # _common only: machlib itself comes from PYTHONPATH (see the docstring)

import _common as C  # noqa: E402

DEVICE = C.select_device()  # before JAX is imported

import numpy as np  # noqa: E402

SIZE = 512  # side of the renders and of the contact sheet's panels
YAWS = (("input", 0.0), ("yaw-30", -30.0), ("yaw+30", 30.0))
MATCH = 0.6  # dlib's same-person threshold
T1_NAMES = tuple(f"t1_face{i}" for i in range(6))
ALL_PORTRAITS = ("hopper", "astronaut") + T1_NAMES
INSIGHTFACE_WHEEL = "insightface==2.1"
T1_MEMBER = "insightface/data/images/t1.jpg"
BACKGROUND = (0.55, 0.55, 0.55)


# ------------------------------------------------------------------------------------------------
# the independent evaluator: dlib
class FaceEvaluator:
    """dlib's HOG face detector, 68-point shape predictor and ResNet descriptor."""

    def __init__(self):
        import dlib

        pose, rec = _dlib_model_paths()
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(pose)
        self.encoder = dlib.face_recognition_model_v1(rec)
        self.version = getattr(dlib, "__version__", "?")

    def faces(self, image: np.ndarray) -> list:
        """Face boxes (largest first), trying 0 then 1 then 2 upsamplings."""
        img = np.ascontiguousarray(image[..., :3])
        for up in (0, 1, 2):
            boxes = list(self.detector(img, up))
            if boxes:
                return sorted(boxes, key=lambda b: -b.width() * b.height())
        return []

    def describe(self, image: np.ndarray):
        """``(descriptor (128,), box (l, t, r, b))`` of the largest face, or ``(None, None)``."""
        img = np.ascontiguousarray(image[..., :3])
        boxes = self.faces(img)
        if not boxes:
            return None, None
        b = boxes[0]
        shape = self.predictor(img, b)
        desc = np.asarray(self.encoder.compute_face_descriptor(img, shape), np.float64)
        return desc, (b.left(), b.top(), b.right(), b.bottom())


def _dlib_model_paths() -> tuple[str, str]:
    try:
        import face_recognition_models as frm

        return frm.pose_predictor_model_location(), frm.face_recognition_model_location()
    except ImportError as e:  # its __init__ needs pkg_resources, gone from recent setuptools
        import importlib.util

        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise e
        models = Path(list(spec.submodule_search_locations)[0]) / "models"
        pose = models / "shape_predictor_68_face_landmarks.dat"
        rec = models / "dlib_face_recognition_resnet_model_v1.dat"
        if not (pose.is_file() and rec.is_file()):
            raise e
        return str(pose), str(rec)


def _require_dlib() -> None:
    try:
        import dlib  # noqa: F401

        _dlib_model_paths()
    except ImportError as e:
        print(f"identity.py needs dlib and face-recognition-models (not machlib dependencies): {e}\n"
              "  pip install dlib face-recognition-models   (dlib compiles from source, ~6 min on 2 cores)",
              file=sys.stderr)
        raise SystemExit(2)


# ------------------------------------------------------------------------------------------------
# portraits
def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    d = Path(base) / "machlib" / "portraits"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _load_png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"), np.uint8)


def _save_png(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(img, np.uint8)).save(path)


def _hopper() -> np.ndarray:
    import machlib

    if hasattr(machlib, "default_portrait"):
        return np.asarray(machlib.default_portrait(), np.uint8)
    from matplotlib import cbook  # older/newer trees without the helper

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        from PIL import Image

        return np.asarray(Image.open(f).convert("RGB"), np.uint8)


def _astronaut() -> np.ndarray:
    from skimage import data

    return np.asarray(data.astronaut(), np.uint8)


def _t1_photo(cache: Path) -> np.ndarray:
    """The group photo from the insightface 2.1 wheel (downloaded once, only t1.jpg kept)."""
    from PIL import Image

    jpg = cache / "t1.jpg"
    if not jpg.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", INSIGHTFACE_WHEEL, "-d", tmp]
            print("  downloading the insightface 2.1 wheel for t1.jpg:", " ".join(cmd[3:]), flush=True)
            subprocess.run(cmd, check=True)
            wheels = list(Path(tmp).glob("insightface-*.whl"))
            if not wheels:
                raise RuntimeError("pip download gave no insightface wheel")
            with zipfile.ZipFile(wheels[0]) as z:
                data = z.read(T1_MEMBER)
        jpg.write_bytes(data)
    return np.asarray(Image.open(io.BytesIO(jpg.read_bytes())).convert("RGB"), np.uint8)


def _crop_square(image: np.ndarray, cx: float, cy: float, side: float) -> tuple[int, int, int]:
    """A square box ``(x0, y0, side)`` centred on (cx, cy), shrunk and moved to lie in the image."""
    h, w = image.shape[:2]
    s = int(round(min(side, h, w)))
    x0 = int(round(np.clip(cx - s / 2, 0, w - s)))
    y0 = int(round(np.clip(cy - s / 2, 0, h - s)))
    return x0, y0, s


def _t1_faces(cache: Path, evaluator: FaceEvaluator) -> dict[str, np.ndarray]:
    from PIL import Image

    photo = _t1_photo(cache)
    boxes = list(evaluator.detector(np.ascontiguousarray(photo), 0))
    if len(boxes) < 6:
        boxes = list(evaluator.detector(np.ascontiguousarray(photo), 1))
    boxes = sorted(sorted(boxes, key=lambda b: -b.width() * b.height())[:6], key=lambda b: b.left())
    if len(boxes) != 6:
        raise RuntimeError(f"dlib found {len(boxes)} faces in t1.jpg, expected 6")
    out = {}
    for i, b in enumerate(boxes):
        bw = max(b.width(), b.height())
        cx = (b.left() + b.right()) / 2
        cy = (b.top() + b.bottom()) / 2 - 0.15 * bw  # room for the hair above
        x0, y0, s = _crop_square(photo, cx, cy, 2.2 * bw)
        crop = Image.fromarray(photo[y0:y0 + s, x0:x0 + s]).resize((SIZE, SIZE), Image.LANCZOS)
        out[f"t1_face{i}"] = np.asarray(crop, np.uint8)
        (cache / f"t1_face{i}.json").write_text(json.dumps({"box_in_t1": [x0, y0, s], "dlib_face": [
            b.left(), b.top(), b.right(), b.bottom()]}) + "\n")
    return out


def load_portraits(names, evaluator: FaceEvaluator, *, required=()) -> dict[str, np.ndarray]:
    """The portraits by name (from the cache, else built and cached). A portrait that cannot be
    built (no network for the wheel, say) is left out with a message, or raises when ``required``."""
    cache = cache_dir()
    out = {}
    for name in names:
        png = cache / f"{name}.png"
        try:
            if not png.is_file():
                if name == "hopper":
                    _save_png(png, _hopper())
                elif name == "astronaut":
                    _save_png(png, _astronaut())
                else:
                    for k, v in _t1_faces(cache, evaluator).items():
                        _save_png(cache / f"{k}.png", v)
            out[name] = _load_png(png)
        except Exception as e:
            if name in required:
                raise
            print(f"  portrait {name} left out of the comparison set: {type(e).__name__}: {e}", file=sys.stderr)
    return out


# ------------------------------------------------------------------------------------------------
# machlib: the job, and renders of the character
def machlib_commit() -> str:
    import machlib

    root = Path(machlib.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "machlib"],
                               capture_output=True, text=True).stdout.strip()
        return sha[:12] + ("+dirty (uncommitted changes under machlib/)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def enable_compilation_cache() -> None:
    """The XLA cache ``machlib`` commands use (``$MACHLIB_CACHE_DIR``, ``off`` disables it)."""
    where = os.environ.get("MACHLIB_CACHE_DIR")
    if where == "off":
        return
    if not where:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        where = os.path.join(base, "machlib", "xla")
    os.makedirs(where, exist_ok=True)
    import jax

    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def _quick_texture_patch():
    """``--quick``: a 3-level texture fit with few steps. ``make_character`` takes no texture
    settings, so when it has no such keyword, ``pipeline.texture_portrait``'s default config is
    replaced in this process (``make_character`` looks it up at call time). Returns an undo."""
    from machlib import pipeline

    try:
        from machlib.texture import TextureFitConfig
    except ImportError:
        return lambda: None
    orig = getattr(pipeline, "texture_portrait", None)
    if orig is None or "config" not in inspect.signature(orig).parameters:
        return lambda: None
    cfg = TextureFitConfig(resolutions=(32, 128, 512), steps=(30, 20, 10), learning_rates=(0.05, 0.03, 0.02))

    def quick(fit, *a, **kw):
        kw.setdefault("config", cfg)
        if kw["config"] is None:
            kw["config"] = cfg
        return orig(fit, *a, **kw)

    pipeline.texture_portrait = quick

    def undo():
        pipeline.texture_portrait = orig

    return undo


def make_kwargs(quick: bool) -> dict:
    """Keywords for ``make_character`` that this tree's version accepts."""
    from machlib.character import make_character

    params = inspect.signature(make_character).parameters
    want = {"seed": 0}
    if quick:
        want.update(n_strands=1000, n_points=16, guides=100)
    return {k: v for k, v in want.items() if k in params}


def run_make(image: np.ndarray, out: Path, *, quick: bool, progress) -> tuple[object, dict, float]:
    from machlib.character import make_character, write_make_outputs

    kw = make_kwargs(quick)
    t = time.perf_counter()
    result = make_character(image=image, prompt=None, progress=progress, **kw)
    wkw = {"size": 128} if quick and "size" in inspect.signature(write_make_outputs).parameters else {}
    report = write_make_outputs(out, result, **wkw)
    if not isinstance(report, dict):  # a tree whose writer returns nothing: read the file
        report = json.loads((Path(out) / "report.json").read_text())
    return result, report, time.perf_counter() - t


def _scene_inputs(character):
    """The character as ``render_scene`` inputs: (ScenePart list, Strands or None)."""
    try:  # the helpers _make.py renders its previews with
        from machlib.character._make import _scene_parts, _strands_of

        from machlib.character import posed_parts

        return _scene_parts(posed_parts(character, None)), _strands_of(character)
    except ImportError:
        pass
    from machlib._scene import ScenePart
    from machlib.character import posed_parts
    from machlib.hair import Strands

    parts = [ScenePart(p.mesh, texture=p.texture, color=tuple(p.base_color[:3]), alpha=p.alpha,
                       specular=0.25 if p.name in ("cornea", "lenses") else 0.08, two_sided=p.double_sided)
             for p in posed_parts(character, None)]
    strands = None
    if getattr(character, "hair", None) is not None and len(character.hair):
        n = len(character.hair)
        strands = Strands(np.asarray(character.hair, np.float32),
                          np.broadcast_to(np.asarray(character.hair_color, np.float32), (n, 3)).copy(),
                          np.full(n, 8e-5, np.float32))
    return parts, strands


def head_centre(character) -> np.ndarray:
    """The head's centre in head space: x and z the middle of the head mesh between chin and
    crown height, y the eyes' height (only x and z place the vertical turning axis)."""
    try:
        head = character.part("head").mesh
    except (AttributeError, KeyError):
        head = max((p.mesh for p in character.parts), key=lambda m: len(np.asarray(m.vertices)))
    v = np.asarray(head.vertices, np.float64)
    frame = getattr(character, "frame", None)
    if frame is not None and hasattr(frame, "eye_centers") and hasattr(frame, "chin"):
        eye_y = float(np.mean(np.asarray(frame.eye_centers)[:, 1]))
        chin_y = float(np.asarray(frame.chin)[1])
        band = v[(v[:, 1] >= chin_y) & (v[:, 1] <= eye_y + (eye_y - chin_y))]
        if len(band) > 10:
            lo, hi = band.min(0), band.max(0)
            return np.array([(lo[0] + hi[0]) / 2, eye_y, (lo[2] + hi[2]) / 2])
    top = v[v[:, 1] >= np.median(v[:, 1])]
    lo, hi = top.min(0), top.max(0)
    return (lo + hi) / 2


def _rotvec(R: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(R).as_rotvec()


def view_cameras(fitted, centre: np.ndarray, image_hw: tuple[int, int]):
    """The three 512² cameras, the square crop box ``(x0, y0, side)`` of the portrait they share,
    and the fitted camera's pose seen from the head (yaw: + towards the subject's left; pitch: +
    from above; distance to the centre in metres).

    The crop is a square of side min(H, W) centred on the head centre's projection (clamped to
    the image); the intrinsics are the fitted camera's, cropped and scaled to 512². The yawed
    cameras turn the fitted one about the vertical axis through ``centre``: camera centre
    ``C' = c + R_y(θ)(C − c)``, rotation ``R' = R R_y(θ)ᵀ`` (so ``c`` keeps its camera coordinates
    and its pixel)."""
    import machlib
    from machlib import Camera

    rot = getattr(machlib, "rotation_matrix")
    R = np.asarray(rot(np.asarray(fitted.rotation, np.float64)), np.float64)
    t = np.asarray(fitted.translation, np.float64)
    f = np.asarray(fitted.focal, np.float64)
    p = np.asarray(fitted.principal, np.float64)
    h, w = image_hw
    xc = R @ centre + t
    u, v = f * xc[:2] / xc[2] + p
    x0, y0, s = _crop_square(np.zeros((h, w)), u, v, min(h, w))
    k = SIZE / s
    focal, principal = f * k, (p - np.array([x0, y0])) * k
    C = -R.T @ t
    d = C - centre
    pose = {"yaw_degrees": round(float(np.degrees(np.arctan2(d[0], d[2]))), 1),
            "pitch_degrees": round(float(np.degrees(np.arctan2(d[1], np.hypot(d[0], d[2])))), 1),
            "distance_m": round(float(np.linalg.norm(d)), 4)}
    cams = {}
    for name, yaw in YAWS:
        a = np.radians(yaw)
        Ry = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
        R2 = R @ Ry.T
        C2 = centre + Ry @ (C - centre)
        t2 = -R2 @ C2
        cams[name] = Camera(np.asarray(_rotvec(R2), np.float32), np.asarray(t2, np.float32),
                            np.asarray(focal, np.float32), np.asarray(principal, np.float32), image_size=(SIZE, SIZE))
    return cams, (x0, y0, s), pose


def render_views(result) -> tuple[dict, tuple[int, int, int], dict]:
    from machlib._scene import render_scene

    ch = result.character
    parts, strands = _scene_inputs(ch)
    sh = None
    if getattr(result, "texture", None) is not None and getattr(result.texture, "lighting", None) is not None:
        sh = np.asarray(result.texture.lighting, np.float64)
    fitted = result.fit.result.camera
    image = result.image
    cams, box, pose = view_cameras(fitted, head_centre(ch), image.shape[:2])
    renders = {name: render_scene(parts, cam, strands=strands, sh=sh, background=BACKGROUND)
               for name, cam in cams.items()}
    return renders, box, pose


# ------------------------------------------------------------------------------------------------
# contact sheet
def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def contact_sheet(name: str, photo_crop: np.ndarray, renders: dict, scores: dict, boxes: dict,
                  photo_box, header: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    pad, top, cap = 8, 34, 26
    panels = [("photo", photo_crop)] + [(k, renders[k]) for k, _ in YAWS]
    W = len(panels) * (SIZE + pad) + pad
    H = top + SIZE + cap + pad
    sheet = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, 8), header, fill=(0, 0, 0), font=_font(18))
    labels = {"photo": "photo", "input": "input view", "yaw-30": "yaw -30°", "yaw+30": "yaw +30°"}
    for i, (k, img) in enumerate(panels):
        x = pad + i * (SIZE + pad)
        sheet.paste(Image.fromarray(np.asarray(img[..., :3], np.uint8)), (x, top))
        box = photo_box if k == "photo" else boxes.get(k)
        if box is not None:
            l, t_, r, b = box
            draw.rectangle([x + l, top + t_, x + r, top + b], outline=(0, 200, 0), width=2)
        if k == "photo":
            text = labels[k]
        else:
            d = scores.get(k)
            verdict = "no face" if d is None else f"dist {d:.3f} " + ("match" if d < MATCH else "NO match")
            text = f"{labels[k]}: {verdict}"
        draw.text((x, top + SIZE + 4), text, fill=(0, 0, 0), font=_font(18))
    return np.asarray(sheet)


# ------------------------------------------------------------------------------------------------
def _fmt(d) -> str:
    return "no face" if d is None else f"{d:.3f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="/tmp/machlib_identity", help="output folder (default /tmp/machlib_identity)")
    p.add_argument("--portraits", help=f"comma-separated subset of {','.join(ALL_PORTRAITS)}")
    p.add_argument("--quick", action="store_true",
                   help="small settings: 1,000 × 16 strands, 3-level texture fit with 30/20/10 steps, 128² previews")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    args = p.parse_args(argv)
    names = ALL_PORTRAITS if not args.portraits else tuple(n.strip() for n in args.portraits.split(",") if n.strip())
    bad = [n for n in names if n not in ALL_PORTRAITS]
    if bad:
        print(f"unknown portrait(s) {', '.join(bad)}; known: {', '.join(ALL_PORTRAITS)}", file=sys.stderr)
        return 2
    _require_dlib()

    import jax
    import machlib

    enable_compilation_cache()
    info = C.machine_info()
    commit = machlib_commit()
    print(f"machlib {getattr(machlib, '__version__', '?')} from {machlib.__file__} (commit {commit})")
    print(f"{info['cpu']} · {jax.default_backend()} · {info['date']}" + (" · QUICK settings" if args.quick else ""))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ev = FaceEvaluator()

    t = time.perf_counter()
    # the photos' descriptors first: every portrait is also an impostor for the others
    photos = load_portraits(ALL_PORTRAITS, ev, required=names)
    photo_desc = {}
    photo_box = {}
    for n, img in photos.items():
        photo_desc[n], photo_box[n] = ev.describe(img)
    print(f"portraits ready ({time.perf_counter() - t:.1f} s): "
          + ", ".join(f"{n} {photos[n].shape[1]}×{photos[n].shape[0]}" for n in photos))
    # the measure itself: the same photo mirrored must match, different people should not
    mirror = {}
    for n, img in photos.items():
        d, _ = ev.describe(np.ascontiguousarray(img[:, ::-1]))
        mirror[n] = None if d is None or photo_desc[n] is None else round(float(np.linalg.norm(d - photo_desc[n])), 4)
    print("  check: photo vs its mirror image (same person): "
          + ", ".join(f"{n} {_fmt(v)}" for n, v in mirror.items()))
    pair = {a: {b: round(float(np.linalg.norm(photo_desc[a] - photo_desc[b])), 4)
                for b in photos if b != a and photo_desc[a] is not None and photo_desc[b] is not None}
            for a in photos}

    undo = _quick_texture_patch() if args.quick else (lambda: None)
    rows, entries, failed = [], [], 0
    try:
        for name in names:
            image = photos[name]
            print(f"\n== {name} ({image.shape[1]}×{image.shape[0]})", flush=True)
            entry = {"portrait": name, "size": [int(image.shape[1]), int(image.shape[0])],
                     "photo_face_box": photo_box[name]}
            if photo_desc[name] is None:
                print("  dlib finds no face in the photo itself")
            t0 = time.perf_counter()

            def progress(stage, _t0=t0):
                print(f"  {time.perf_counter() - _t0:6.1f} s  {stage}", flush=True)

            try:
                result, report, secs = run_make(image, out / name / "avatar", quick=args.quick, progress=progress)
                renders, (x0, y0, s), pose = render_views(result)
            except Exception as e:  # one portrait's failure must not hide the others' numbers
                import traceback

                traceback.print_exc()
                failed += 1
                entry["error"] = f"{type(e).__name__}: {e}"
                entries.append(entry)
                rows.append([name, "error", "", "", "", "", "", "", "", "", f"{type(e).__name__}"])
                continue
            from PIL import Image

            crop = np.asarray(Image.fromarray(image[y0:y0 + s, x0:x0 + s]).resize((SIZE, SIZE), Image.LANCZOS))
            pb = photo_box[name]
            crop_box = None if pb is None else tuple(int(round((c - o) * SIZE / s))
                                                     for c, o in zip(pb, (x0, y0, x0, y0)))
            scores, boxes, ranks, nearest = {}, {}, {}, {}
            for view, img in renders.items():
                _save_png(out / name / f"render_{view}.png", img)
                desc, box = ev.describe(img)
                boxes[view] = box
                if desc is None or photo_desc[name] is None:
                    scores[view] = None
                    continue
                scores[view] = float(np.linalg.norm(desc - photo_desc[name]))
                others = {o: float(np.linalg.norm(desc - d)) for o, d in photo_desc.items()
                          if o != name and d is not None}
                ranks[view] = 1 + sum(v < scores[view] for v in others.values())
                if others:
                    o = min(others, key=others.get)
                    nearest[view] = {"portrait": o, "distance": round(others[o], 4)}
            matched = sum(d is not None and d < MATCH for d in scores.values())
            res = report.get("landmark_residual_px", {})
            fm = report.get("face_metrics", {})
            relit = fm.get("relit_albedo", {}) if isinstance(fm, dict) else {}
            raw = fm.get("raw", {}) if isinstance(fm, dict) else {}
            hair = (report.get("assets", {}) or {}).get("hairstyle", {}) or {}
            entry.update({
                "distance": {k: (None if v is None else round(v, 4)) for k, v in scores.items()},
                "render_face_box": boxes,
                "rank_among_photos": ranks,
                "nearest_other_photo": nearest,
                "matched": matched,
                "landmark_residual_px": res,
                "face_metrics": fm,
                "hairstyle": hair.get("style"),
                "hair_color_linear_rgb": (report.get("hair", {}) or {}).get("color_linear_rgb"),
                "attributes": report.get("attributes"),
                "photo_crop_box": [x0, y0, s],
                "input_camera_from_head": pose,
                "view_yaw_degrees": {k: round(pose["yaw_degrees"] + y, 1) for k, y in YAWS},
                "seconds": round(secs, 1),
                "sheet": f"sheet_{name}.png",
            })
            entries.append(entry)
            n_ok = len(photo_desc) - 1
            rank_txt = "/".join("–" if ranks.get(k) is None else str(ranks[k]) for k, _ in YAWS)
            rows.append([name, f"{pose['yaw_degrees']:+.0f}°",
                         _fmt(scores["input"]), _fmt(scores["yaw-30"]), _fmt(scores["yaw+30"]),
                         f"{matched}/3", f"{rank_txt} of {n_ok + 1}",
                         f"{res.get('mean', float('nan')):.2f}" if res else "–",
                         f"{relit.get('face_psnr_db', float('nan')):.2f}" if relit else "–",
                         f"{relit.get('face_ssim', float('nan')):.3f}" if relit else "–",
                         f"{raw.get('face_psnr_db', float('nan')):.2f}" if raw else "–", hair.get("style") or "–"])
            header = (f"{name}: dlib distance photo vs render (same person < {MATCH}); reprojection "
                      f"{res.get('mean', float('nan')):.2f} px, "
                      f"face PSNR {relit.get('face_psnr_db', float('nan')):.2f} dB"
                      f" · machlib {commit}")
            _save_png(out / f"sheet_{name}.png",
                      contact_sheet(name, crop, renders, scores, boxes, crop_box, header))
            print(f"  {secs:6.1f} s  make; distances " + ", ".join(f"{k} {_fmt(v)}" for k, v in scores.items())
                  + f"; ranks {rank_txt}", flush=True)
    finally:
        undo()

    settings = "quick (1,000 × 16 strands, texture 32/128/512 × 30/20/10 steps, 128² previews)" if args.quick \
        else "machlib make defaults"
    title = (f"Identity look-test · machlib {commit} · {info['cpu']} · {jax.default_backend()} · {info['date']} "
             f"· {settings}")
    headers = ["portrait", "photo yaw", "dist input view", "dist −30°", "dist +30°", f"matched (<{MATCH})",
               "rank input/−30/+30", "reprojection px (mean)", "face PSNR dB", "face SSIM", "raw-texture PSNR dB",
               "hair style"]
    md = [f"### {title}", "", C.markdown_table(headers, rows), "",
          f"dlib {ev.version} ResNet descriptors (HOG detector, 68-point alignment); distance of the photo's face "
          f"to each render's face at 512², fitted camera cropped square and turned ±30° about the head's vertical "
          f"axis; \"no face\": dlib's detector finds none in the render. Rank: place of the portrait's own photo "
          f"among all {len(photo_desc)} photos by distance to the render (1 = nearest). Photo yaw: the fitted camera's "
          f"direction from the head (0° = frontal, + = from the subject's left); the ±30° views sit 30° either side "
          f"of it, so a three-quarter photo's +30° view approaches profile, where dlib's frontal detector gives up. "
          f"Reprojection and PSNR/SSIM "
          f"(face region, relit albedo vs photo, fitted camera) are from the run's report.json.", ""]
    if any(pair.values()):
        md += ["Photo-to-photo distances (different people; the scale of the measure): "
               + ", ".join(f"min {min(v.values()):.3f} for {k}" for k, v in pair.items() if v) + "; each photo "
               "vs its mirror image (same person): "
               + ", ".join(f"{k} {_fmt(v)}" for k, v in mirror.items()) + "."]
    C.write_text(out / "identity.md", "\n".join(md))
    doc = {"title": title, "machine": info, "backend": jax.default_backend(), "machlib_commit": commit,
           "machlib_file": machlib.__file__, "machlib_version": getattr(machlib, "__version__", None),
           "dlib": ev.version, "quick": bool(args.quick), "settings": settings, "match_threshold": MATCH,
           "render_size": SIZE, "yaws_degrees": [y for _, y in YAWS], "photo_pair_distances": pair,
           "photo_mirror_distances": mirror,
           "portraits": entries}
    (out / "identity.json").write_text(json.dumps(doc, indent=2, default=float) + "\n")
    print()
    print("\n".join(md))
    print(f"\nwrote {out}/identity.md, identity.json and sheet_*.png")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
