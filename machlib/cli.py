"""Command line: ``machlib fit [IMAGE] -o OUT/``, ``machlib texture [IMAGE] -o OUT/`` and
``machlib hair [IMAGE] [--style NAME] [--color NAME] -o OUT/`` and
``machlib attributes "PROMPT" [--clues DIR] [--parser rule|embedding|llm]``,
``machlib match "PROMPT" [--kind KIND]``, ``machlib shape "PROMPT" [--clip DIR]`` and
``machlib portrait "PROMPT" -o OUT/`` (Stable Diffusion + ControlNet from local weights),
``machlib make [--prompt TEXT] [--image PATH] [--hair STYLE] [--expression ...] -o OUT/`` (the whole
job: an assembled, animatable character) and ``machlib view OUT/`` (a local browser viewer).

The CLI only parses arguments, shows progress and writes files; the work is done by
:mod:`machlib.pipeline`. Bad input prints one line ``machlib: error: ...`` and exits with 2;
nothing is written to ``OUT`` then.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

__all__ = ["main", "build_parser"]

#: The largest 32-bit seed (JAX and torch generators take 32-bit seeds).
_MAX_SEED = 2**32 - 1


class _UsageError(Exception):
    """A command line that argparse cannot parse; :func:`main` prints it as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with machlib's error form: one line ``machlib: error: ...`` and no usage block
    (``--help`` still prints the usage). Sub-command parsers are of this class too."""

    def error(self, message: str):
        raise _UsageError(message)


def _int_in(lo: int, hi: int):
    """An argparse ``type``: an integer in ``[lo, hi]`` (``1e20`` or ``10**12`` are refused at parse time)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer from {lo} to {hi}, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be an integer from {lo} to {hi}, got {value}")
        return value

    return parse


def _float_in(lo: float, hi: float):
    """An argparse ``type``: a finite number in ``[lo, hi]``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number from {lo:g} to {hi:g}, got {text!r}") from None
        if not lo <= value <= hi:  # NaN fails too
            raise argparse.ArgumentTypeError(f"must be a number from {lo:g} to {hi:g}, got {text}")
        return value

    return parse


_SEED = _int_in(0, _MAX_SEED)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``machlib`` command.

    Every numeric flag has its range checked while parsing, and ``--help`` states it: a value out
    of range is a one-line ``machlib: error: argument --steps: must be an integer from 1 to
    10000, got ...`` before any work.
    """
    p = _Parser(prog="machlib", description="Portrait/text → animatable 3D head (Make-A-Character).")
    sub = p.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make", help="portrait and/or prompt → complete animatable character (avatar.glb, "
                                     "OBJ, hair, previews, avatar.zip); no arguments: the bundled portrait")
    mk.add_argument("--prompt", help="text description: attributes steer irises, glasses, garment, hair "
                                     "(alone: generated portrait with diffusion weights, else the shaped template)")
    mk.add_argument("--image", help="portrait photo (JPEG/PNG, RGB): photo → avatar")
    mk.add_argument("--hair", help="try on a library hairstyle instead of the one retrieved from the photo")
    mk.add_argument("--expression", help="emotion mix for the posed previews, e.g. happiness=0.8,surprise=0.3")
    mk.add_argument("--body", choices=("bust", "full"), default="bust",
                    help="the human's head, neck, shoulders and upper torso (default), or the whole figure")
    mk.add_argument("--classifier", metavar="DIR",
                    help="local CLIP model folder: read gender and age group from the photo (zero-shot); "
                         "without it they stay unset unless the prompt says them")
    mk.add_argument("-o", "--out", default="out", help="output folder (default: out/)")
    mk.add_argument("--seed", type=_SEED, default=0, help="random seed, 0 to 2^32-1 (default 0)")
    mk.add_argument("--strands", type=_int_in(1, 100_000), default=6000, help="hair strands, 1 to 100000 (default 6000)")
    mk.add_argument("--albedo-resolution", type=int, choices=(2048, 4096), default=None,
                    help="super-resolve the head's albedo to 2048 or 4096 texels (edge-aware upsampling and "
                         "synthesised skin detail; default: 1024, a GLB under 12 MB)")
    mk.add_argument("--delighter", default="sh",
                    help="with --image: sh (default: SH delighting), flax (the bundled learned flax delighter), a "
                         "flax weights .json of scripts/train_flax_delighter.py, or torch pix2pixHD weights "
                         "(.safetensors)")
    mk.add_argument("--preview-size", type=_int_in(64, 2048), default=384,
                    help="preview image size in pixels, 64 to 2048 (default 384)")
    mk.add_argument("--weights-config", help="TOML/JSON file naming the diffusion weight folders (prompt-only path)")
    mk.add_argument("--steps", type=_int_in(1, 200), default=30,
                    help="denoising steps of a generated portrait, 1 to 200 (default 30)")
    mk.add_argument("--size", type=_int_in(64, 1024), default=512,
                    help="side of a generated portrait in pixels, a multiple of 8 from 64 to 1024 (default 512)")
    mk.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    mk.add_argument("-v", "--verbose", action="store_true", help="let native libraries (MediaPipe) write to the terminal")
    ba = sub.add_parser("batch", help="run stages over a folder, list or CSV/Parquet table of images on Ray "
                                      "(one folder per image, results.csv/.parquet, resumable)")
    ba.add_argument("input", help="a folder of images, a text file of paths, or a .csv/.parquet table with a "
                                  "'path' column")
    ba.add_argument("-o", "--out", required=True, help="output folder")
    ba.add_argument("--stages", default="fit",
                    help="comma-separated, from fit,texture,hair,make (default fit); they share one fit per image")
    ba.add_argument("--address", default=None,
                    help="Ray cluster to join: auto or ray://HOST:PORT (default: a local Ray in this process)")
    ba.add_argument("--workers", type=_int_in(1, 4096), default=None,
                    help="worker actors, 1 to 4096 (default: one per CPU, or per GPU when the cluster has GPUs)")
    ba.add_argument("--batch-size", type=_int_in(1, 1024), default=1,
                    help="images per call to a worker, 1 to 1024 (default 1); above 1 a worker fits "
                         "their geometry together in one compiled program")
    ba.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                    help="skip images (by content hash) already done in OUT (default: --resume)")
    ba.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    vw = sub.add_parser("view", help="serve a local browser viewer of a `machlib make` output folder")
    vw.add_argument("out", help="the output folder of `machlib make` (holds avatar.glb)")
    vw.add_argument("--port", type=_int_in(0, 65535), default=8000,
                    help="port on 127.0.0.1, 0 to 65535 (default 8000; 0 picks a free one)")
    vw.add_argument("--open", action="store_true", help="open the page in the default browser")
    f = sub.add_parser("fit", help="detect dense landmarks and fit head geometry and camera to a portrait")
    _fit_arguments(f)
    t = sub.add_parser("texture", help="fit, then extract, delight and complete the face texture (albedo.png)")
    _fit_arguments(t)
    t.add_argument("--levels", default="32,128,512,1024",
                   help="texture resolution hierarchy, comma-separated, the finest at most 4096 "
                        "(default 32,128,512,1024)")
    t.add_argument("--texture-steps", default=None,
                   help="Adam steps per texture level, 1 to 10000: one number for every level, or one per level, "
                        "comma-separated (default 120,100,80,60)")
    t.add_argument("--delighter", default="sh",
                   help="sh (default: SH delighting), flax (the bundled learned flax delighter), a flax weights "
                        ".json of scripts/train_flax_delighter.py, or torch pix2pixHD weights (.safetensors)")
    for name in ("blush", "eye-shadow", "lipstick"):
        t.add_argument(f"--{name}", type=_float_in(0.0, 1.0), default=0.0,
                       help=f"{name.replace('-', ' ')} strength in [0, 1] (default 0)")
    h = sub.add_parser("hair", help="fit, then grow strand hair from the portrait or try on a library style")
    _fit_arguments(h)
    h.add_argument("--style", help="a library hairstyle to try on (e.g. 'bob', 'long curly'; see --list-styles) "
                                   "or a .data/.hair strand file in template head space; default: from the portrait")
    h.add_argument("--color", help="hair colour name (e.g. black, brown, blonde, red, gray, green); "
                                   "default: estimated from the portrait")
    h.add_argument("--strands", type=_int_in(1, 200_000), default=10000,
                   help="number of strands, 1 to 200000 (default 10000)")
    h.add_argument("--points", type=_int_in(2, 1024), default=64, help="points per strand, 2 to 1024 (default 64)")
    h.add_argument("--guides", type=_int_in(0, 200_000), default=0,
                   help="integrate this many guide strands (at most 200000) and interpolate the rest (default 0: integrate every "
                        "strand, which benchmarks/hair.py measures as faster on a CPU)")
    h.add_argument("--seed", type=_SEED, default=0, help="random seed, 0 to 2^32-1 (default 0)")
    h.add_argument("--list-styles", action="store_true", help="print the library's styles with their tags and exit")
    a = sub.add_parser("attributes", help="parse a text prompt into facial attributes and print them as JSON")
    a.add_argument("prompt", help='the description, e.g. "a middle-aged man with a sword-like eyebrow"')
    a.add_argument("--clues", metavar="DIR",
                   help="also write the visual clues (openpose.png, canny.png) for ControlNet into DIR")
    a.add_argument("--size", type=_int_in(64, 4096), default=512,
                   help="side of the clue images in pixels, 64 to 4096 (default 512)")
    _parser_arguments(a)
    m = sub.add_parser("match", help="rank library assets (hairstyles, glasses, garments, ...) against a prompt")
    m.add_argument("prompt", help='the description, e.g. "a woman with a short bob and round glasses"')
    m.add_argument("--kind", help="only this kind of asset (hairstyle, glasses, garment, iris, eyelashes, beard)")
    m.add_argument("-k", "--top", type=_int_in(1, 1000), default=5, help="how many matches to print, 1 to 1000 (default 5)")
    m.add_argument("--manifest", help="an asset manifest (.json/.toml); default: machlib's built-in library")
    m.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sh = sub.add_parser("shape", help="rank template shape variations against a prompt (DreamFace's coarse selection)")
    sh.add_argument("prompt", help='the description, e.g. "a man with a square jaw"')
    sh.add_argument("--clip", metavar="DIR",
                    help="a local CLIP model folder: score rendered candidates by CLIP image-text similarity "
                         "(default: attribute-text similarity, offline)")
    sh.add_argument("--random", type=_int_in(0, 10_000), default=32,
                    help="random candidates sampled from the shape space besides the face-shape presets, "
                         "0 to 10000 (default 32)")
    sh.add_argument("-k", "--top", type=_int_in(1, 1000), default=5, help="how many matches to print, 1 to 1000 (default 5)")
    sh.add_argument("--seed", type=_SEED, default=0, help="seed of the random candidates, 0 to 2^32-1 (default 0)")
    sh.add_argument("--json", action="store_true", help="print JSON instead of a table")
    po = sub.add_parser("portrait", help="text → frontal reference portrait: visual clues steer Stable Diffusion "
                                         "through OpenPose + Canny ControlNets (needs local weights)")
    po.add_argument("prompt", help='the description, e.g. "a young woman with short red hair and freckles"')
    po.add_argument("-o", "--out", default="out", help="output folder (default: out/)")
    po.add_argument("--sd-model", metavar="DIR", help="Stable Diffusion 1.5-style base model folder (diffusers layout); "
                                                       "or $MACHLIB_SD_MODEL")
    po.add_argument("--controlnet-openpose", metavar="DIR", help="OpenPose ControlNet folder; or $MACHLIB_CONTROLNET_OPENPOSE")
    po.add_argument("--controlnet-canny", metavar="DIR", help="Canny ControlNet folder; or $MACHLIB_CONTROLNET_CANNY")
    po.add_argument("--weights-config", metavar="FILE",
                    help="TOML/JSON file with keys base, controlnet_openpose, controlnet_canny; or $MACHLIB_DIFFUSION_CONFIG")
    po.add_argument("--check-weights", action="store_true", help="print where each weight folder comes from and exit")
    po.add_argument("--seed", type=_SEED, default=0, help="random seed, 0 to 2^32-1 (default 0)")
    po.add_argument("--steps", type=_int_in(1, 1000), default=30, help="denoising steps, 1 to 1000 (default 30)")
    po.add_argument("--size", type=_int_in(64, 4096), default=512,
                    help="image side in pixels, a multiple of 8 from 64 to 4096 (default 512)")
    po.add_argument("--guidance", type=_float_in(0.0, 50.0), default=7.5,
                    help="classifier-free guidance scale, 0 to 50 (default 7.5)")
    po.add_argument("--scheduler", default="unipc", help="sampler: unipc, dpm++, ddim, euler, euler-a, pndm or base "
                                                         "(default unipc)")
    po.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    po.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                    help="weights dtype (default float32; float16 needs a GPU)")
    _parser_arguments(po)
    po.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    return p


def _parser_arguments(a: argparse.ArgumentParser) -> None:
    a.add_argument("--parser", choices=("rule", "embedding", "llm"), default="rule",
                   help="prompt parser: offline rules (default), rules + sentence-embedding matching of what they "
                        "miss, or a local chat LLM (--llm)")
    a.add_argument("--llm", metavar="DIR", help="local transformers chat-model folder for --parser llm; or $MACHLIB_LLM")


# Typical seconds of each progress stage on a first run (2 CPU cores, benchmarks/make.py): the
# progress display's estimate of the time left is the elapsed time scaled by the stages to come.
_STAGE_SECONDS = {
    "attributes": 0.1, "portrait": 40.0, "landmarks": 0.6, "template": 5.0, "fit": 6.5, "texture: rasterize": 4.0,
    "texture: fit 32→128→512→1024": 1.5, "texture: visibility": 2.7, "texture: delight": 0.9,
    "texture: complete": 10.0, "texture: render": 5.0, "head sdf": 0.6, "hair mask": 0.4, "orientation": 0.6,
    "match": 4.6, "volume": 1.0, "lift": 1.2, "grow": 6.4, "cleanup": 1.4, "assemble": 5.8,
    "export and previews": 13.0, "export": 2.0,
}


class _Progress:
    """One live line: the stage, a bar, the elapsed time and an estimate of the time left."""

    def __init__(self, console, stages):
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._weights = [_STAGE_SECONDS.get(st, 1.0) for st in stages]
        self._index = {st: i for i, st in enumerate(stages)}
        self._total = float(sum(self._weights))
        self._t0 = time.perf_counter()
        self._console = console
        self._bar = Progress(SpinnerColumn(), TextColumn("[bold]{task.description:<30}"), BarColumn(),
                             TimeElapsedColumn(), TextColumn("{task.fields[left]}"), console=console,
                             transient=True)
        self._task = self._bar.add_task("starting", total=self._total, left="")
        self._done = 0.0
        self._lock = threading.Lock()

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)

    def __call__(self, stage: str) -> None:
        with self._lock:  # `make` calls it from two threads (the texture and hair stages run side by side)
            if not self._console.is_terminal:  # a log or a pipe: one line per stage, with the time so far
                self._console.print(f"[{time.perf_counter() - self._t0:6.1f} s] {stage} …", highlight=False)
                return
            i = self._index.get(stage)
            done = sum(self._weights[:i]) if i is not None else None
            if done is not None:  # the bar never goes back when the other thread names an earlier stage
                done = self._done = max(done, self._done)
            left = ""
            if done:
                elapsed = time.perf_counter() - self._t0
                left = f"≈ {elapsed * (self._total - done) / done:.0f} s left"
            kw = {} if done is None else {"completed": done}
            self._bar.update(self._task, description=stage, left=left, **kw)


_FIT_STAGES = ("landmarks", "template", "fit")
_TEXTURE_STAGES = ("texture: rasterize", "texture: fit 32→128→512→1024", "texture: visibility", "texture: delight",
                   "texture: complete", "texture: render")
_HAIR_STAGES = ("head sdf", "hair mask", "orientation", "match", "volume", "lift", "grow", "cleanup")
# make: the hair mask is made beside the fit, then the texture and hair stages run side by side
# (the bar shows the furthest stage reached)
_MAKE_STAGES = ("attributes", "portrait", *_FIT_STAGES, *_TEXTURE_STAGES,
                *(st for st in _HAIR_STAGES if st != "hair mask"), "assemble", "export and previews")


#: The files each command writes into its output folder: none of them may be a folder there
#: (checked before any work; :func:`machlib.pipeline.atomic_output_dir` checks every destination
#: again before its first rename).
_OUTPUT_FILES = {
    "fit": ("head.glb", "head.obj", "head.mtl", "head_albedo.png", "camera.json", "overlay.png", "preview.png",
            "report.json"),
    "texture": ("albedo.png", "texture_raw.png", "shading.png", "masks.png", "head.glb", "render_input_view.png",
                "relit.png", "camera.json", "report.json"),
    "hair": ("hair.data", "hair.usda", "hair_preview.png", "hair_input_view.png", "hair_mask.png", "head.glb",
             "camera.json", "report.json"),
    "make": ("avatar.glb", "avatar.obj", "avatar.mtl", "avatar_albedo.png", "avatar_normal.png",
             "avatar_roughness.png", "avatar_specular.png", "avatar_sclera_R_albedo.png", "avatar_sclera_L_albedo.png",
             "avatar_iris_R_albedo.png", "avatar_iris_L_albedo.png", "albedo.png", "hair.data", "hair.usda", "beard.data",
             "beard.usda",
             "preview_front.png", "preview_three_quarter.png", "preview_profile.png", "preview_back.png",
             "turntable.png", "expressions.png", "relit.png", "render_input_view.png", "report.json", "avatar.zip"),
    "portrait": ("portrait.png", "openpose.png", "canny.png", "portrait.json"),
    "attributes": ("openpose.png", "canny.png"),
}


def _require_modules(flag: str, modules: tuple[str, ...], extra: str) -> None:
    """Raise :class:`~machlib.interop.TorchMissingError` unless ``modules`` are importable
    (looked up, not imported: torch takes seconds to import)."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        from .interop import TorchMissingError

        raise TorchMissingError(f"{flag} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                                f"not installed; install {'it' if len(missing) == 1 else 'them'} with: "
                                f"pip install 'machlib[{extra}]'")


def _check_delighter_option(value) -> None:
    """``--delighter`` of ``texture`` and ``make``: ``sh``, ``flax``, or a weights file that loads."""
    from ._errors import InputError
    from ._validate import check_input_file

    if value in (None, "sh", "flax"):
        return
    if Path(value).suffix.lower() == ".json":
        from .texture import load_flax_delighter

        check_input_file(value, "--delighter")
        try:
            load_flax_delighter(path=value)
        except InputError as e:
            raise InputError(f"--delighter: {e}") from None
    else:
        _check_delighter(value)


def _check_delighter(path: str) -> None:
    """``--delighter FILE``: a regular weights file whose format and config can be read, and torch.

    A ``.safetensors`` file's header is parsed (no tensors are read, torch is not imported), so a
    pickle or random bytes under that name fails here, before the fit, not after it.
    """
    from ._errors import InputError
    from ._validate import check_input_file
    from .interop._delighter import _find_config
    from .interop._torch import WEIGHT_SUFFIXES, load_metadata

    p = check_input_file(path, "--delighter")
    if p.suffix.lower() not in WEIGHT_SUFFIXES:
        raise InputError(f"--delighter {p}: weights must be one of {', '.join(WEIGHT_SUFFIXES)}, "
                         f"got {p.suffix or 'no suffix'!r}")
    try:
        _find_config(p, load_metadata(p))
    except InputError as e:
        raise InputError(f"--delighter: {e}") from None
    _require_modules("--delighter", ("torch", "safetensors"), "torch")


def _check_strand_file(path: str) -> None:
    """``--style FILE``: a readable strand file with at least one strand of two or more points."""
    import numpy as np

    from ._errors import InputError
    from ._validate import check_input_file
    from .hair import read_cem_hair, read_hair_data

    p = check_input_file(path, "--style")
    try:
        ragged = (read_hair_data if p.suffix.lower() == ".data" else read_cem_hair)(p)
    except (ValueError, OSError) as e:
        raise InputError(f"--style: {e}") from None
    if not np.any(np.asarray(ragged.counts) >= 2):
        raise InputError(f"--style: {p} holds no strand with two or more points")


def _preflight(args) -> None:
    """The validation pass every command runs before any work (issue 18).

    Input files must be regular, readable files (a FIFO would block; see
    :func:`machlib._validate.check_input_file`); model folders must exist, and the backend a
    model needs must be installed; the output folder must be creatable and writable, with no
    destination file name taken by a folder (:func:`machlib._validate.check_output_dir`); a
    strand file given as ``--style`` must hold strands. Number ranges are checked by the parser.

    Raises:
        InputError: one line naming the flag, the path and the problem.
        TorchMissingError: a model flag whose backend (torch, transformers) is not installed.
    """
    import os

    from ._errors import InputError
    from ._validate import check_input_dir, check_input_file, check_output_dir

    cmd = args.command
    if cmd in ("fit", "texture", "hair"):
        if cmd == "hair" and args.list_styles:
            return
        procedural = args.template == "procedural"
        if not procedural and (args.template is None) != (args.landmarks is None):
            raise InputError("--template and --landmarks must be given together")
        if procedural and args.landmarks is not None:
            raise InputError("--template procedural has its own landmark table; drop --landmarks")
        if args.image is not None:
            check_input_file(args.image, "image")
        if args.template not in (None, "procedural"):
            check_input_file(args.template, "--template")
        if args.landmarks is not None:
            check_input_file(args.landmarks, "--landmarks")
        if cmd == "texture":
            _check_delighter_option(args.delighter)
        if cmd == "hair" and args.style is not None and Path(args.style).suffix.lower() in (".data", ".hair"):
            from .hair import HAIR_STYLES

            if args.style not in HAIR_STYLES:
                _check_strand_file(args.style)
        check_output_dir(args.out, names=_OUTPUT_FILES[cmd])
    elif cmd == "make":
        if args.image is not None:
            check_input_file(args.image, "--image")
        if args.weights_config is not None:
            check_input_file(args.weights_config, "--weights-config")
        if args.classifier is not None:
            check_input_dir(args.classifier, "--classifier")
        _check_delighter_option(args.delighter)
        check_output_dir(args.out, names=_OUTPUT_FILES[cmd])
    elif cmd == "portrait":
        if args.weights_config is not None:
            check_input_file(args.weights_config, "--weights-config")
        for flag in ("sd_model", "controlnet_openpose", "controlnet_canny"):
            if getattr(args, flag) is not None:
                check_input_dir(getattr(args, flag), "--" + flag.replace("_", "-"))
        if not args.check_weights:
            check_output_dir(args.out, names=_OUTPUT_FILES[cmd])
    elif cmd == "batch":
        if not Path(args.input).is_dir():
            check_input_file(args.input, "input")
        check_output_dir(args.out, names=("results.csv", "results.parquet", "batch.json"))
    elif cmd == "attributes" and args.clues is not None:
        check_output_dir(args.clues, names=_OUTPUT_FILES[cmd], what="--clues")
    elif cmd == "match" and args.manifest is not None:
        check_input_file(args.manifest, "--manifest")
    elif cmd == "shape" and args.clip is not None:
        check_input_dir(args.clip, "--clip")
        _require_modules("--clip", ("torch", "transformers"), "torch")
    if cmd in ("attributes", "portrait") and args.parser == "llm":
        llm = args.llm or os.environ.get("MACHLIB_LLM")
        if llm:
            check_input_dir(llm, "--llm" if args.llm else "$MACHLIB_LLM")
            _require_modules("--parser llm", ("torch", "transformers"), "torch")


def _set_verbose(args) -> None:
    """``--verbose``: let native libraries (MediaPipe, TFLite, absl) write to the terminal."""
    import os

    if getattr(args, "verbose", False):
        os.environ["MACHLIB_VERBOSE"] = "1"


def _fit_arguments(f: argparse.ArgumentParser) -> None:
    f.add_argument("image", nargs="?", default=None,
                   help="portrait (JPEG/PNG, RGB); default: the bundled portrait (matplotlib's grace_hopper.jpg)")
    f.add_argument("-o", "--out", default="out", help="output folder (default: out/)")
    f.add_argument("--template", help="'procedural' (machlib's older code-generated head), or a user template mesh "
                                      "(.obj/.glb with UVs, with --landmarks); default: the MakeHuman human's head")
    f.add_argument("--landmarks", help="JSON landmark table of the user template")
    f.add_argument("--steps", type=_int_in(1, 10_000), default=None,
                   help="triplane optimisation steps, 1 to 10000 (default 200 for the human's residual, 300 otherwise)")
    f.add_argument("--resolution", type=_int_in(8, 1024), default=None,
                   help="triplane resolution, 8 to 1024: a multiple of 8 for the human's residual (default 64), "
                        "of 32 with --template (default 256)")
    f.add_argument("--fov", type=_float_in(5.0, 120.0), default=25.0,
                   help="assumed vertical field of view, 5 to 120 degrees (default 25)")
    f.add_argument("--strict", action="store_true", help="fail when the image has more than one face")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    f.add_argument("-v", "--verbose", action="store_true", help="let native libraries (MediaPipe) write to the terminal")


def _texture_config(args):
    from ._errors import InputError
    from .texture import TextureFitConfig

    try:
        levels = tuple(int(v) for v in str(args.levels).split(","))
    except ValueError:
        raise InputError(f"--levels must be comma-separated integers, got {args.levels!r}") from None
    default = TextureFitConfig()
    steps = default.steps if len(levels) == len(default.steps) else tuple([100] * len(levels))
    if args.texture_steps is not None:
        try:
            steps = tuple(int(v) for v in str(args.texture_steps).split(","))
        except ValueError:
            raise InputError(f"--texture-steps must be an integer or comma-separated integers, "
                             f"got {args.texture_steps!r}") from None
        if not all(1 <= v <= 10_000 for v in steps):
            raise InputError(f"--texture-steps: every value must be from 1 to 10000, got {args.texture_steps}")
        if len(steps) == 1:
            steps = steps * len(levels)
        elif len(steps) != len(levels):
            raise InputError(f"--texture-steps: {len(steps)} values for {len(levels)} levels")
    lrs = default.learning_rates if len(levels) == len(default.learning_rates) else tuple([0.03] * len(levels))
    if levels and levels[-1] > 4096:
        raise InputError(f"--levels: the finest level must be at most 4096, got {levels[-1]}")
    try:
        config = TextureFitConfig(resolutions=levels, steps=steps, learning_rates=lrs)
    except ValueError as e:
        raise InputError(f"--levels/--texture-steps: {e}") from None
    makeup = {}
    for name in ("blush", "eye_shadow", "lipstick"):
        value = getattr(args, name)
        if value > 0:
            makeup[name] = value
    if args.delighter not in (None, "sh", "flax"):
        from pathlib import Path as _P

        if not _P(args.delighter).is_file():
            raise InputError(f"--delighter: no such file {args.delighter}")
    return config, makeup


def _fit(args) -> int:
    from rich.console import Console

    from . import pipeline
    from ._errors import InputError
    from ._image import default_portrait, load_image
    from .geometry import GeometryFitConfig, load_template

    console = Console(stderr=True, quiet=args.quiet)
    procedural = args.template == "procedural"
    try:  # the config validates itself; its message names the rule that failed
        if args.template is None:
            from .geometry import residual_config

            config = residual_config(resolution=64 if args.resolution is None else args.resolution,
                                     steps=200 if args.steps is None else args.steps)
        else:
            config = GeometryFitConfig(resolution=256 if args.resolution is None else args.resolution,
                                       steps=300 if args.steps is None else args.steps)
    except ValueError as e:
        raise InputError(f"--resolution/--steps: {e}") from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder")
    texture_setup = _texture_config(args) if args.command == "texture" else None
    hair_setup = _hair_setup(args) if args.command == "hair" else None
    t0 = time.perf_counter()
    image = default_portrait() if args.image is None else load_image(args.image)
    if procedural:
        from .geometry import procedural_template

        template = procedural_template()
    else:
        template = load_template(args.template, args.landmarks) if args.template else None
    load_s = time.perf_counter() - t0
    extra = {"fit": (), "texture": _TEXTURE_STAGES, "hair": _HAIR_STAGES}[args.command]
    stages = (*_FIT_STAGES, *extra, "export")
    with _Progress(console, stages) as progress:
        fit = pipeline.fit_portrait(image, template=template, config=config, fov_degrees=args.fov,
                                    strict=args.strict, progress=progress)
        if hair_setup is not None:
            hair = pipeline.hair_portrait(fit, progress=progress, **hair_setup)
            progress("export")
            report = pipeline.write_hair_outputs(args.out, fit, hair, extra_timings={"load": load_s})
        elif texture_setup is not None:
            tex_config, makeup = texture_setup
            tex = pipeline.texture_portrait(fit, config=tex_config, delighter=args.delighter, makeup=makeup,
                                            progress=progress)
            progress("export")
            report = pipeline.write_texture_outputs(args.out, fit, tex, extra_timings={"load": load_s})
        else:
            progress("export")
            report = pipeline.write_fit_outputs(args.out, fit, extra_timings={"load": load_s})
    rp = report["landmarks"]["reprojection_px"]
    console.print(
        f"[green]done[/green] → {str(args.out).rstrip('/')}/  reprojection mean {rp['mean']:.2f} px, max {rp['max']:.2f} px; "
        f"fit {report['timings']['fit']:.2f} s (+{report['timings']['compile']:.2f} s compile)"
    )
    if "texture" in report:
        q = report["texture"]["quality"]["raw"]
        console.print(f"texture {report['texture']['total_seconds']:.1f} s; face PSNR {q['face_psnr_db']:.1f} dB, "
                      f"SSIM {q['face_ssim']:.3f}")
    if "hair" in report:
        hr = report["hair"]
        console.print(f"hair: {hr['style']} ({hr['mode']}), {hr['strands']} strands × {hr['points_per_strand']} points, "
                      f"{100 * hr['removed_fraction']:.1f}% removed by clean-up; {hr['total_seconds']:.1f} s")
    return 0


def _hair_setup(args) -> dict:
    from ._errors import InputError
    from .hair import HAIR_COLORS, HAIR_STYLES

    style = args.style
    if style is not None and style not in HAIR_STYLES:
        suffix = Path(style).suffix.lower()
        if suffix not in (".data", ".hair"):
            raise InputError(f"--style: unknown hairstyle {style!r}; known: {', '.join(HAIR_STYLES)} "
                             "(or a .data/.hair strand file)")
        # a strand file was read and checked by _preflight (_check_strand_file) before any work
    if args.color is not None and args.color not in HAIR_COLORS:
        raise InputError(f"--color: unknown hair colour {args.color!r}; known: {', '.join(sorted(HAIR_COLORS))}")
    return {"style": style, "color": args.color, "n_strands": args.strands, "n_points": args.points,
            "guides": args.guides or None, "seed": args.seed}


def _attributes(args) -> int:
    import json

    from ._errors import InputError
    from .text import parse_prompt, visual_clues

    if not args.prompt.strip():
        raise InputError("the prompt is empty")
    result = parse_prompt(args.prompt, parser=_make_parser(args))
    out = {
        "attributes": result.attributes.to_dict(),
        "tags": result.attributes.tags(),
        "evidence": result.evidence,
        "unknown": list(result.unknown),
        "ambiguous": [{"phrase": a.phrase, "candidates": list(a.candidates)} for a in result.ambiguous],
    }
    if args.clues:
        from . import pipeline
        from ._image import save_png

        clues = visual_clues(result.attributes.to_dict(), size=args.size)
        with pipeline.atomic_output_dir(args.clues) as tmp:
            for name, img in clues.items():
                save_png(tmp / f"{name}.png", img)
        out["clues"] = {name: str(Path(args.clues) / f"{name}.png") for name in clues}
    print(json.dumps(out, indent=2))
    return 0


def _match(args) -> int:
    import json

    from ._errors import InputError
    from .assets import ASSET_KINDS, builtin_manifest, load_manifest, match_assets

    if not args.prompt.strip():
        raise InputError("the prompt is empty")
    if args.kind is not None and args.kind not in ASSET_KINDS:
        raise InputError(f"--kind must be one of {', '.join(ASSET_KINDS)}, got {args.kind!r}")
    if args.manifest is not None:
        if not Path(args.manifest).is_file():
            raise InputError(f"--manifest: no such file {args.manifest}")
        try:
            manifest = load_manifest(args.manifest)
        except ValueError as e:
            raise InputError(str(e)) from None
    else:
        manifest = builtin_manifest()
    matches = match_assets(args.prompt, manifest, kind=args.kind, k=args.top)
    if args.json:
        print(json.dumps([{"id": m.asset.id, "kind": m.asset.kind, "label": m.asset.label, "path": m.asset.path,
                           "score": round(float(m.score), 4)} for m in matches], indent=2))
    else:
        for m in matches:
            print(f"{m.score:6.3f}  {m.asset.kind:10s} {m.asset.id:20s} {m.asset.label}")
    return 0


def _make_parser(args):
    """The prompt parser chosen by ``--parser``/``--llm``."""
    import os

    from ._errors import InputError

    if args.parser == "rule":
        if args.llm is not None:
            raise InputError("--llm needs --parser llm")
        return None
    if args.parser == "embedding":
        from .text import EmbeddingParser

        return EmbeddingParser()
    from .text import LLMParser

    path = args.llm or os.environ.get("MACHLIB_LLM")
    if not path:
        raise InputError("--parser llm needs a local chat model: --llm DIR or the environment variable MACHLIB_LLM "
                         "(a transformers model folder with its tokenizer, e.g. a small instruct model)")
    return LLMParser(path)


def _shape(args) -> int:
    import json

    import jax

    from ._errors import InputError
    from .geometry import candidate_pool, default_template, human_candidate_pool, select_shape
    from .text import parse_prompt

    if not args.prompt.strip():
        raise InputError("the prompt is empty")
    scorer = None
    if args.clip is not None:
        from .interop import ClipShapeScorer

        scorer = ClipShapeScorer(args.clip)
    if default_template().human is not None:  # samples of the parametric human around the prompt's person
        pool = human_candidate_pool(parse_prompt(args.prompt).attributes, key=jax.random.key(args.seed),
                                    n_random=args.random)
    else:
        pool = candidate_pool(key=jax.random.key(args.seed), n_random=args.random)
    matches = select_shape(args.prompt, pool, scorer=scorer, k=args.top)
    if args.json:
        print(json.dumps([{"name": m.candidate.name, "description": m.candidate.description,
                           "score": round(float(m.score), 4),
                           "params": [round(float(v), 4) for v in m.candidate.params]} for m in matches], indent=2))
    else:
        for m in matches:
            print(f"{m.score:7.3f}  {m.candidate.name:12s} {m.candidate.description}")
    return 0


def _portrait(args) -> int:
    import json

    from rich.console import Console

    from . import pipeline
    from ._errors import InputError
    from ._image import save_png
    from .interop import TorchMissingError, describe_diffusion_weights, resolve_diffusion_weights
    from .text import parse_prompt

    flags = dict(base=args.sd_model, controlnet_openpose=args.controlnet_openpose,
                 controlnet_canny=args.controlnet_canny, config=args.weights_config)
    if args.check_weights:
        print(describe_diffusion_weights(**flags))
        return 0
    if not args.prompt.strip():
        raise InputError("the prompt is empty")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder")
    if not 64 <= args.size <= 4096 or args.size % 8:
        raise InputError(f"--size must be a multiple of 8 between 64 and 4096, got {args.size}")
    weights = resolve_diffusion_weights(**flags)  # WeightsMissingError says what is missing and how to give it
    parsed = parse_prompt(args.prompt, parser=_make_parser(args))
    try:  # torch, diffusers and transformers are optional: import them only now that the weights are there
        from .interop import PORTRAIT_SCHEDULERS, generate_portrait, load_portrait_pipeline

        _quiet_hf_progress()
    except ImportError as e:  # TorchMissingError included
        raise TorchMissingError("machlib portrait needs PyTorch, diffusers and transformers, which are not all "
                                "installed; install them with: pip install 'machlib[diffusion]'") from e
    if args.scheduler not in PORTRAIT_SCHEDULERS:
        raise InputError(f"--scheduler must be one of {', '.join(PORTRAIT_SCHEDULERS)}, got {args.scheduler!r}")
    console = Console(stderr=True, quiet=args.quiet)
    timings = {}
    with console.status("loading Stable Diffusion + ControlNets"):
        t0 = time.perf_counter()
        pipe = load_portrait_pipeline(weights, device=args.device, dtype=args.dtype, scheduler=args.scheduler)
        timings["load"] = time.perf_counter() - t0
    with console.status(f"generating ({args.steps} steps)"):
        t0 = time.perf_counter()
        result = generate_portrait(pipe, parsed.attributes, size=args.size, steps=args.steps,
                                   guidance_scale=args.guidance, seed=args.seed)
        timings["generate"] = time.perf_counter() - t0
    report = {
        "prompt": args.prompt,
        "attributes": result.attributes.to_dict(),
        "unknown": list(parsed.unknown),
        "ambiguous": [{"phrase": a.phrase, "candidates": list(a.candidates)} for a in parsed.ambiguous],
        "sd_prompt": result.prompt,
        "negative_prompt": result.negative_prompt,
        "seed": result.seed,
        "settings": result.settings,
        "weights": {name: str(getattr(weights, name)) for name in ("base", "controlnet_openpose", "controlnet_canny")},
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    with pipeline.atomic_output_dir(out) as tmp:
        save_png(tmp / "portrait.png", result.image)
        for name, img in result.clues.items():
            save_png(tmp / f"{name}.png", img)
        (tmp / "portrait.json").write_text(json.dumps(report, indent=2))
    console.print(f"[green]done[/green] → {str(out).rstrip('/')}/portrait.png  ({timings['generate']:.1f} s, seed {args.seed})")
    return 0


def _quiet_hf_progress() -> None:
    """No per-file progress bars from diffusers/transformers while loading (the CLI shows its own)."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def _list_styles() -> int:
    from .hair import HAIR_STYLES

    for name, st in HAIR_STYLES.items():
        print(f"{name:14s} length {st.length:.3f} m, {st.curl}; tags: {', '.join(st.tags)}")
    return 0


def _enable_compilation_cache() -> None:
    """Keep XLA's compiled programs on disk between runs (see :func:`machlib._cache.enable_compilation_cache`)."""
    from ._cache import enable_compilation_cache

    enable_compilation_cache()


def _make(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ._errors import InputError
    from ._image import default_portrait, load_image
    from .animation import parse_expression
    from .character import DEFAULT_PROMPT, make_character, write_make_outputs

    console = Console(stderr=True, quiet=args.quiet)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder")
    if args.expression is not None:
        parse_expression(args.expression)  # names the bad emotion or value before any work
    if args.prompt is not None and not args.prompt.strip():
        raise InputError("--prompt is empty")
    if args.size % 8 or not 64 <= args.size <= 1024:
        raise InputError(f"--size must be a multiple of 8 between 64 and 1024, got {args.size}")
    prompt, image, weights = args.prompt, None, None
    if args.image is not None:
        image = load_image(args.image)
    elif prompt is None:
        image, prompt = default_portrait(), DEFAULT_PROMPT
    else:
        from .interop import diffusion_weights_status, resolve_diffusion_weights

        status = diffusion_weights_status(config=args.weights_config)
        if all(v.get("problem") is None for v in status.values()):
            weights = resolve_diffusion_weights(config=args.weights_config)
    t0 = time.perf_counter()
    with _Progress(console, _MAKE_STAGES) as progress:
        result = make_character(image=image, prompt=prompt, hair=args.hair, expression=args.expression,
                                weights=weights, seed=args.seed, n_strands=args.strands, portrait_steps=args.steps,
                                portrait_size=args.size, body=args.body, classifier=args.classifier,
                                progress=progress, albedo_resolution=args.albedo_resolution,
                                delighter=args.delighter)
        for note in result.notices:
            console.print(f"[yellow]notice:[/yellow] {note}")
        progress("export and previews")
        report = write_make_outputs(out, result, size=args.preview_size)
    table = Table(title="machlib make: seconds per stage")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for k, v in report["timings"].items():
        table.add_row(k, f"{v:.2f}")
    table.add_row("[bold]total[/bold]", f"{time.perf_counter() - t0:.2f}")
    console.print(table)
    print(f"wrote {out}/avatar.glb, avatar.zip, previews and report.json ({report['mode']} mode)")
    return 0


def _batch(args) -> int:
    from ._errors import InputError
    from .batch import run_batch

    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    try:
        import ray  # noqa: F401
    except ImportError:
        raise InputError("machlib batch needs Ray: pip install 'machlib[batch]'") from None
    summary = run_batch(args.input, args.out, stages=stages, address=args.address, workers=args.workers,
                        batch_size=args.batch_size, resume=args.resume,
                        progress=(lambda line: None) if args.quiet else None)
    print(f"batch: {summary.done} done, {summary.errors} errors, {summary.skipped} skipped of {summary.total} "
          f"images in {summary.seconds:.1f} s → {args.out}/results.csv")
    return 0


def _view(args) -> int:
    from .viewer import run_viewer

    run_viewer(args.out, port=args.port, open_browser=args.open)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``machlib`` command; returns the exit status."""
    from ._errors import InputError, MachlibError
    from ._threads import serial_blas
    from ._validate import output_lock

    try:
        args = build_parser().parse_args(argv)
    except _UsageError as e:
        print(f"machlib: error: {e}", file=sys.stderr)
        return 2
    _set_verbose(args)
    try:
        _preflight(args)
        _prefetch_human(args)
        out = _locked_output(args)
        # numpy's BLAS on one thread: machlib's numpy calls are small, and idle BLAS threads
        # spinning beside XLA's and the previews' threads cost CPU time (machlib._threads)
        with serial_blas():
            if out is not None:  # one run per output folder, for the whole run
                with output_lock(out):
                    return _dispatch(args)
            return _dispatch(args)
    except InputError as e:
        print(f"machlib: error: {e}", file=sys.stderr)
        return 2
    except MachlibError as e:
        print(f"machlib: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("machlib: interrupted", file=sys.stderr)
        return 130


def _prefetch_human(args) -> None:
    """Commands that fit the human head start parsing its data now, in a helper process, when
    it is not cached yet (a fresh installation): the parse then runs on the other core while this
    process imports JAX and the stages (:func:`machlib.human._data.prefetch`)."""
    if args.command in ("fit", "texture", "hair", "make") and getattr(args, "template", None) is None \
            and not getattr(args, "list_styles", False):
        from .human._data import prefetch

        prefetch()


def _locked_output(args) -> str | None:
    """The output folder a command writes (locked for the whole run), or ``None``."""
    if args.command in ("fit", "texture", "hair", "make", "batch") and not getattr(args, "list_styles", False):
        return args.out
    if args.command == "portrait" and not args.check_weights:
        return args.out
    if args.command == "attributes":
        return args.clues
    return None


def _dispatch(args) -> int:
    """Run the command of parsed, pre-checked ``args``."""
    _enable_compilation_cache()
    if args.command == "make":
        return _make(args)
    if args.command == "view":
        return _view(args)
    if args.command == "batch":
        return _batch(args)
    if args.command == "attributes":
        return _attributes(args)
    if args.command == "match":
        return _match(args)
    if args.command == "shape":
        return _shape(args)
    if args.command == "portrait":
        return _portrait(args)
    if args.command == "hair" and args.list_styles:
        return _list_styles()
    if args.command in ("fit", "texture", "hair"):
        return _fit(args)
    return 1


if __name__ == "__main__":
    sys.exit(main())
