"""Benchmark: ``machlib batch`` against a shell loop of ``machlib texture`` processes (issue 16).

Fit + texture throughput in images per minute over ``--n`` generated variations of the offline
portraits, both ways in the same run, on the same images::

    PYTHONPATH=. python benchmarks/batch.py                   # 50 images, writes the docs tables
    PYTHONPATH=. python benchmarks/batch.py --n 4 --out ''    # a quick check of the script
    PYTHONPATH=. python benchmarks/batch.py --loop-n 8        # 50 in the batch, the loop timed on 8

* **Images.** Variations of the bundled portrait, ``skimage``'s astronaut and, when they are in
  the portrait cache (``benchmarks/identity.py`` puts them there), the six faces of insightface's
  group photo: a random square crop (80–100 % of the shorter side), a mirror flip for every
  other round, colour jitter (brightness, contrast, saturation, per-channel gain), resized to
  512² (a dataset's aligned crops share one size). Written as PNG into the work folder (``--workdir``; never into the repository).
* **Loop.** For each image, one ``machlib texture IMAGE -o DIR -q`` process, one after another
  (what a shell ``for`` loop does): every process pays the imports, MediaPipe's start, loading
  the template and the compiled programs from the persistent cache.
* **Batch.** One ``machlib batch FOLDER -o OUT --stages texture --workers W --batch-size B
  --no-resume`` process: a local Ray, ``W`` long-lived workers, the faces of a batch fitted
  together; like ``machlib texture`` it fits and textures each image and writes the texture
  stage's folder. With ``dlib`` installed it also computes each image's identity distance (work
  the loop does not do).
* Before either is timed, one ``machlib texture`` process and one ``machlib batch`` process (the
  same batch size) on an image outside the set warm the persistent compilation cache both use,
  as any earlier run on the machine would.
* **Answers first.** Every image must succeed or fail in both, and each image's texture result
  must be the same both ways (reprojection error, face PSNR/SSIM, seen texels, the albedo's
  pixels); only then are the times reported.

Progress is printed as it goes (per loop image, and the batch's own progress lines). The work
folder keeps what is done: a second call with the same ``--workdir`` and options reuses the
finished loop images and a finished batch run (``--fresh`` starts over). Target (issue 16):
the batch at least 5× the loop's images per minute on 2 CPU cores. With ``dlib`` installed, the
batch's results table has the identity distance of each image (photo against the textured head
rendered over it in its camera); the report gives its median.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, str(_HERE.parent))

import _common as C
import numpy as np
from PIL import Image

TARGET_RATIO = 5.0
DOCS = _HERE.parent / "docs" / "benchmarks"


def _log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------------------------------------
# images
def _sources() -> dict[str, np.ndarray]:
    """The offline portraits: the bundled one, skimage's astronaut, cached insightface crops."""
    from skimage import data

    from machlib import default_portrait

    out = {"hopper": np.asarray(default_portrait(), np.uint8), "astronaut": np.asarray(data.astronaut(), np.uint8)}
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    cache = Path(base) / "machlib" / "portraits"
    for p in sorted(cache.glob("t1_face[0-9].png")):
        out[p.stem] = np.asarray(Image.open(p).convert("RGB"), np.uint8)
    return out


def _variation(img: np.ndarray, rng: np.random.Generator, flip: bool) -> np.ndarray:
    """A square crop (80–100 % of the shorter side, anywhere in the frame), flipped or not,
    colour-jittered, resized to 512² (a dataset's aligned crops have one size, like FFHQ's)."""
    h, w = img.shape[:2]
    side = round(float(min(h, w) * rng.uniform(0.8, 1.0)))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    x = img[y0:y0 + side, x0:x0 + side].astype(np.float32) / 255.0
    if flip:
        x = x[:, ::-1]
    grey = x.mean(-1, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.75, 1.25)  # saturation
    x = (x - x.mean()) * rng.uniform(0.85, 1.15) + x.mean()  # contrast
    x = x * rng.uniform(0.85, 1.15) * rng.uniform(0.95, 1.05, 3)  # brightness, per-channel gain
    out = Image.fromarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8))
    return np.asarray(out.resize((512, 512), Image.LANCZOS))


def make_images(folder: Path, n: int, seed: int) -> tuple[list[Path], Path, list[str]]:
    """``n`` variations (and one warm-up image outside the set) as PNGs in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = _sources()
    names = list(sources)
    paths = []
    for i in range(n + 1):
        name = names[i % len(names)]
        path = folder / (f"{i:03d}_{name}.png" if i < n else f"warmup_{name}.png")
        if not path.is_file():
            rng = np.random.default_rng([seed, i])
            Image.fromarray(_variation(sources[name], rng, flip=bool((i // len(names)) % 2))).save(path)
        paths.append(path)
    return paths[:n], paths[n], names


# ------------------------------------------------------------------------------------------------
# runs
def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _load() -> float:
    return os.getloadavg()[0]


def run_loop(images: list[Path], out: Path, state: dict, save) -> dict:
    """One ``machlib texture`` process per image; finished images are kept in ``state``."""
    done = state.setdefault("loop", {})
    todo = [p for p in images if p.name not in done]
    _log(f"loop: {len(images) - len(todo)} of {len(images)} images done earlier, {len(todo)} to run")
    for k, img in enumerate(todo):
        dest = out / img.stem
        shutil.rmtree(dest, ignore_errors=True)
        c0, t0 = _children_cpu(), time.perf_counter()
        proc = subprocess.run(["machlib", "texture", str(img), "-o", str(dest), "-q"], capture_output=True, text=True,
                              check=False)
        wall, cpu = time.perf_counter() - t0, _children_cpu() - c0
        ok = proc.returncode == 0 and (dest / "report.json").is_file()
        done[img.name] = {"wall": wall, "cpu": cpu, "ok": ok,
                          "error": None if ok else (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
        save()
        walls = [v["wall"] for v in done.values()]
        eta = statistics.mean(walls) * (len(todo) - k - 1)
        _log(f"  loop [{len(images) - len(todo) + k + 1}/{len(images)}] {img.name}: {wall:.1f} s wall, "
             f"{cpu:.1f} s CPU, {'ok' if ok else 'error: ' + done[img.name]['error']}; "
             f"mean {statistics.mean(walls):.1f} s/image, ETA {eta / 60:.1f} min")
    return done


def run_batch_cli(folder: Path, out: Path, workers: int, batch_size: int, state: dict, save) -> dict:
    """One ``machlib batch`` process over the whole folder (timed as a whole, so rerun in full
    if it did not finish)."""
    if state.get("batch", {}).get("finished"):
        _log("batch: finished earlier, reusing its time")
        return state["batch"]
    shutil.rmtree(out, ignore_errors=True)
    cmd = ["machlib", "batch", str(folder), "-o", str(out), "--stages", "texture", "--workers", str(workers),
           "--batch-size", str(batch_size), "--no-resume"]
    _log("batch: " + " ".join(cmd))
    load0, c0, t0 = _load(), _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, stderr=None, stdout=subprocess.PIPE, text=True, check=False)  # progress lines on stderr
    wall, cpu = time.perf_counter() - t0, _children_cpu() - c0
    _log(proc.stdout.strip())
    if proc.returncode != 0:
        raise SystemExit(f"machlib batch failed (exit {proc.returncode})")
    state["batch"] = {"wall": wall, "cpu_reaped": cpu, "finished": True, "load_before": load0, "load_after": _load()}
    save()
    return state["batch"]


# ------------------------------------------------------------------------------------------------
# answers
def _rows(out: Path) -> dict[str, dict]:
    with open(out / "results.csv", newline="") as f:
        return {Path(r["path"]).name: r for r in csv.DictReader(f)}


def check_answers(images: list[Path], loop_out: Path, batch_out: Path, loop: dict) -> dict:
    rows = _rows(batch_out)
    worst = {"reprojection_px": 0.0, "psnr_db": 0.0, "ssim": 0.0, "seen": 0.0, "albedo_px": 0.0}
    for img in images:
        row, lp = rows.get(img.name), loop[img.name]
        C.check(row is not None, f"{img.name}: a row in results.csv")
        C.check((row["status"] == "ok") == lp["ok"], f"{img.name}: same outcome both ways "
                f"(batch {row['status']} {row['error'] or ''}; loop {'ok' if lp['ok'] else lp['error']})")
        if not lp["ok"]:
            continue
        rep = json.loads((loop_out / img.stem / "report.json").read_text())
        q = rep["texture"]["quality"]
        worst["reprojection_px"] = max(worst["reprojection_px"], abs(
            float(row["reprojection_mean_px"]) - rep["landmarks"]["reprojection_px"]["mean"]))
        worst["psnr_db"] = max(worst["psnr_db"], abs(float(row["face_psnr_db"]) - q["raw"]["face_psnr_db"]))
        worst["ssim"] = max(worst["ssim"], abs(float(row["face_ssim"]) - q["raw"]["face_ssim"]))
        worst["seen"] = max(worst["seen"], abs(float(row["seen_texels"]) - q["seen_texel_fraction"]))
        a = np.asarray(Image.open(batch_out / row["name"] / "texture" / "albedo.png"), np.int16)
        b = np.asarray(Image.open(loop_out / img.stem / "albedo.png"), np.int16)
        worst["albedo_px"] = max(worst["albedo_px"], float(np.abs(a - b).mean()))
    C.check(worst["reprojection_px"] < 0.01, f"reprojection error equal both ways (max |Δ| {worst['reprojection_px']:.2g} px)")
    C.check(worst["psnr_db"] < 0.05, f"face PSNR equal both ways (max |Δ| {worst['psnr_db']:.2g} dB)")
    C.check(worst["ssim"] < 1e-3, f"face SSIM equal both ways (max |Δ| {worst['ssim']:.2g})")
    C.check(worst["seen"] < 1e-3, f"seen texels equal both ways (max |Δ| {worst['seen']:.2g})")
    C.check(worst["albedo_px"] < 0.5, f"albedo.png equal both ways (max mean |Δ| {worst['albedo_px']:.2g} of 255)")
    return worst


def _med(rows, key):
    xs = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
    return (statistics.median(xs), len(xs)) if xs else (None, 0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50, help="number of images (default 50)")
    ap.add_argument("--workers", type=int, default=None, help="batch workers (default: the core count)")
    ap.add_argument("--batch-size", type=int, default=4, help="images per worker call (default 4)")
    ap.add_argument("--loop-n", type=int, default=None,
                    help="time the loop on the first this many of the images (default: all; they cycle through the portraits); "
                         "each loop process is independent, so its images per minute do not depend on how many "
                         "it runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "machlib-batch-bench"),
                    help="images, outputs and the resumable state (default $TMPDIR/machlib-batch-bench)")
    ap.add_argument("--fresh", action="store_true", help="forget earlier progress in --workdir")
    ap.add_argument("--out", default=str(DOCS / "batch.md"), help="Markdown report ('' to write none)")
    ap.add_argument("--rst", default=None, help="reStructuredText twin (default: beside --out, .rst.inc)")
    args = ap.parse_args(argv)
    if args.n < 1 or args.batch_size < 1:
        ap.error("--n and --batch-size must be >= 1")
    if args.loop_n is not None and not 1 <= args.loop_n <= args.n:
        ap.error("--loop-n must be between 1 and --n")
    workers = args.workers or C.core_count()
    work = Path(args.workdir)
    if args.fresh:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    config = {"n": args.n, "seed": args.seed, "workers": workers, "batch_size": args.batch_size,
              "stages": "texture", "images": "square-512"}
    state_path = work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    if state.get("config") not in (None, config):
        raise SystemExit(f"{work} holds a run with other options {state['config']}; use --fresh or another --workdir")
    state["config"] = config

    def save():
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, state_path)

    save()
    info = C.machine_info()
    _log(f"{info['cpu']}, {info['date']}; work folder {work}")
    images, warmup, names = make_images(work / "images", args.n, args.seed)
    _log(f"{len(images)} images from {len(names)} portraits ({', '.join(names)})")
    if not state.get("warmed"):
        _log("warm-up: machlib texture and machlib batch on an image outside the set (fill the compilation cache)")
        t0 = time.perf_counter()
        subprocess.run(["machlib", "texture", str(warmup), "-o", str(work / "warmup_out"), "-q"], check=False,
                       capture_output=True)
        # and one machlib batch on it, which compiles the batched fit for this batch size into the cache
        subprocess.run(["machlib", "batch", str(warmup), "-o", str(work / "warmup_batch"), "--stages", "texture",
                        "--workers", "1", "--batch-size", str(args.batch_size), "--no-resume", "-q"], check=False,
                       capture_output=True)
        _log(f"  {time.perf_counter() - t0:.1f} s")
        state["warmed"] = True
        save()
    folder = work / "set"  # the images only, for machlib batch
    folder.mkdir(exist_ok=True)
    for p in images:
        if not (folder / p.name).exists():
            os.link(p, folder / p.name)

    load0 = _load()
    batch = run_batch_cli(folder, work / "batch_out", workers, args.batch_size, state, save)
    k = args.loop_n or len(images)
    looped = images[:k]  # the images cycle through the portraits: the first k hold min(k, portraits) of them
    loop = run_loop(looped, work / "loop_out", state, save)
    load1 = _load()

    _log("answer checks")
    worst = check_answers(looped, work / "loop_out", work / "batch_out", loop)

    n, k = len(images), len(looped)
    loop_wall = sum(loop[p.name]["wall"] for p in looped)
    loop_cpu = sum(loop[p.name]["cpu"] for p in looped)
    rate_loop, rate_batch = k / loop_wall * 60, n / batch["wall"] * 60
    ratio = rate_batch / rate_loop
    rows = list(_rows(work / "batch_out").values())
    ok = [r for r in rows if r["status"] == "ok"]
    headers = ["run", "images", "wall (min)", "images / min", "s / image", "ratio"]
    table = [
        ["loop of `machlib texture` processes", str(k) if k == n else f"{k} of the {n}", f"{loop_wall / 60:.1f}",
         f"{rate_loop:.2f}", f"{loop_wall / k:.1f}", "1.0×"],
        [f"`machlib batch` ({workers} worker{'s' if workers != 1 else ''}, batches of {args.batch_size})", str(n), f"{batch['wall'] / 60:.1f}",
         f"{rate_batch:.2f}", f"{batch['wall'] / n:.1f}", f"**{ratio:.1f}×**"],
    ]
    qh = ["figure (batch rows, median)", "value", "images"]
    qt = []
    for key, label, fmt in (("reprojection_mean_px", "reprojection error, mean (px)", "{:.2f}"),
                            ("face_psnr_db", "face PSNR of the raw texture's re-render (dB)", "{:.1f}"),
                            ("face_ssim", "face SSIM", "{:.3f}"), ("seen_texels", "seen texels", "{:.3f}"),
                            ("identity_distance", "dlib identity distance, photo vs render over it", "{:.3f}"),
                            ("seconds_fit", "seconds in the fit per image (a worker's share)", "{:.2f}"),
                            ("seconds_texture", "seconds in the texture stage per image", "{:.1f}")):
        med, cnt = _med(ok, key)
        qt.append([label, "—" if med is None else fmt.format(med), str(cnt)])
    verdict = "met" if ratio >= TARGET_RATIO else "not met"
    title = (f"### Fit + texture throughput, {n} images · {info['cpu']} · {info['date']}")
    notes = [
        (f"- Target (issue 16): `machlib batch` ≥ {TARGET_RATIO:.0f}× the loop's images per minute: "
        f"**{ratio:.1f}× — {verdict}**."),
        (f"- Images: {n} variations of {len(names)} portraits ({', '.join(names)}): random square crop (80–100 % of "
        "the shorter side), mirror flip for every other round, colour jitter, resized to 512². "
        f"{len(ok)} of {n} fitted and textured ({n - len(ok)} error rows, the same images failing in the loop)."),
        ("- Loop: one `machlib texture IMAGE -o DIR -q` process per image, one after another"
        + ("" if k == n else f", over the first {k} of the {n} images (`--loop-n {k}`; they cycle through the portraits; each "
           "process is independent, so its rate does not depend on how many it runs)")
        + f"; CPU {loop_cpu / k:.1f} s per image (user + system). Batch: one `machlib batch` process with a local Ray, "
        f"{workers} worker actor{'s' if workers != 1 else ''}, `--stages texture --batch-size {args.batch_size}` (the faces of a batch fitted in "
        "one program; the same folder as `machlib texture`, plus the identity distance when dlib is installed). "
        "Both after a warm-up `machlib texture` and `machlib batch` on another image (persistent compilation cache "
        "filled)."),
        (f"- Answer checks (all passed): every image the loop ran has the same outcome both ways; over them, the largest "
        f"differences are {worst['reprojection_px']:.2g} px (reprojection), {worst['psnr_db']:.2g} dB (face PSNR), "
        f"{worst['ssim']:.2g} (SSIM), {worst['seen']:.2g} (seen texels) and a mean {worst['albedo_px']:.2g}/255 "
        "per albedo pixel."),
        (f"- Load average (1 min): {load0:.2f} before, {load1:.2f} after; batch ran first "
        f"({batch['load_before']:.2f} → {batch['load_after']:.2f})."),
        ("- Identity distance: dlib's 128-D descriptor of the photo against the photo with the textured head "
        "(albedo under the estimated lighting) rendered over it in the fitted camera; same person below about 0.6. "
        "Only computed when `dlib` and `face-recognition-models` are installed."),
    ]
    md = [title, "", C.markdown_table(headers, table), "", C.markdown_table(qh, qt), "", *notes]
    rst = [C.rst_inline(title.lstrip("# ")), "", C.rst_table(headers, [[C.rst_inline(c) for c in r] for r in table]),
           "", C.rst_table(qh, [[C.rst_inline(c) for c in r] for r in qt]), "", *[C.rst_inline(x) for x in notes]]
    out_rst = args.rst or (str(Path(args.out).with_suffix(".rst.inc")) if args.out else None)
    C.emit_tables(md, rst, args.out or None, out_rst)
    (work / "report.json").write_text(json.dumps({"config": config, "loop_wall": loop_wall, "batch_wall": batch["wall"],
                                                  "ratio": ratio, "worst": worst, "info": info}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
