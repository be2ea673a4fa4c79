"""Where a warm batch worker's CPU time goes, per image (issue 16; docs/batch.rst).

One process imports machlib once, runs :func:`machlib.batch.process_batch` (texture stage, its
folder and the identity distance; batches padded to 4) over a warm-up image and ``--n`` of
``benchmarks/batch.py``'s generated images to compile every program, then runs the same images
again and prints the CPU seconds (``time.process_time``) per image of each step, every step's
result waited for (``block_until_ready``), so that JAX's asynchronous dispatch does not move
time between steps::

    PYTHONPATH=. python benchmarks/batch_profile.py --n 3
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, str(_HERE.parent))

import batch as B

STEPS = {
    "machlib.pipeline": ["fit_portraits", "texture_portrait", "write_texture_outputs", "complete_texture",
                         "fit_texture", "texel_visibility", "relit_image", "hair_mask", "detect_glasses",
                         "texture_problem", "delight_sh", "save_png", "glb_bytes", "_balanced_ita",
                         "texture_report", "ssim"],
    "machlib.texture._complete": ["_blend", "_transfer_onto_completed", "_stage_template", "skin_albedo"],
    "machlib.batch": ["identity_distance"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3, help="images measured (after one warm-up pass)")
    ap.add_argument("--workdir", default=None, help="where the images and folders go (default: a temp dir)")
    args = ap.parse_args()
    if args.workdir is not None:
        run(Path(args.workdir), args.n)
        return
    with tempfile.TemporaryDirectory(prefix="machlib-batch-profile-") as tmp:  # removed afterwards
        run(Path(tmp), args.n)


def run(work: Path, n_images: int) -> None:
    images, warm, _ = B.make_images(work / "images", n_images, 0)

    import importlib

    import jax

    import machlib.batch as MB
    from machlib._cache import enable_compilation_cache

    enable_compilation_cache()
    cpu: dict = collections.defaultdict(float)

    def timed(fn, name):
        def wrapper(*a, **k):
            t = time.process_time()
            try:
                return jax.block_until_ready(fn(*a, **k))
            finally:
                cpu[name] += time.process_time() - t
        return wrapper

    for module, names in STEPS.items():
        mod = importlib.import_module(module)
        for name in names:
            setattr(mod, name, timed(getattr(mod, name), name))
    items, _ = MB.plan_items([warm, *images])
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    MB.process_batch(items, out, ("texture",), pad_to=4)  # compiles every program
    cpu.clear()
    t = time.process_time()
    rows = MB.process_batch(items[1:], out, ("texture",), pad_to=4)
    n = len(rows)
    print(f"CPU per image {(time.process_time() - t) / n:.2f} s over {n} images "
          f"({sum(r['status'] == 'ok' for r in rows)} ok); per step (nested steps count in their callers too):")
    for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]):
        print(f"  {k:26s} {v / n:6.2f}")


if __name__ == "__main__":
    main()
