"""Dataset scale: machlib's stages mapped over many portraits with Ray, resumable, with a table.

:func:`run_batch` (and ``machlib batch``) takes a folder of images, a text file of paths, or a
CSV/Parquet table with a ``path`` column, and runs the requested stages (``fit``, ``texture``,
``hair``, ``make``) on every image:

* **Engine.** `Ray <https://www.ray.io>`_ (the ``batch`` extra). By default a local Ray is
  started in this process (nothing to set up); ``address`` joins an existing cluster
  (``"auto"`` or ``"ray://HOST:PORT"``). Workers are long-lived actors: each imports machlib
  once and keeps its compiled XLA programs warm (and shares JAX's on-disk compilation cache), so
  only the first image of each worker pays the compilation. Items go to the workers in batches
  of ``batch_size``; a worker fits the geometry of a batch's faces together, in one compiled
  program (:func:`process_batch`), and asks for a GPU when the cluster has GPUs.
* **Results.** One folder per image, ``OUT/<name>-<hash>/<stage>/``, each stage's folder
  exactly as ``machlib <stage> -o`` writes it (the stages share one fit). An item's folder
  appears in one rename once all its stages are written, so a folder in ``OUT`` is always
  complete; work in progress lives under ``OUT/.partial/``. The table ``OUT/results.csv``
  (appended as items finish) and ``OUT/results.parquet`` (rewritten as it grows) hold one row
  per image: path, content hash, status, error message, per-stage seconds and the quality
  figures (reprojection error, face PSNR/SSIM, seen texels and, with the texture stage when
  ``dlib`` is installed, the identity distance of :func:`identity_distance`).
* **Faults.** A bad or faceless image is a row with ``status = "error"`` and its message, never
  a stopped run. A worker that dies mid-item is restarted by Ray and the item retried
  (``max_retries``); rows are written by this process only, once per item, and item folders
  appear by rename, so nothing is lost or written twice.
* **Resume.** Items are keyed by a hash of the file's bytes. With ``resume`` (the default), an
  item whose key has an ``ok`` row and a complete folder is skipped; the rest, including earlier
  errors, run again, and the table is rewritten with one row per key (rows of images not in
  this run's input are kept).

Example (a local Ray, one worker)::

    from machlib.batch import run_batch
    summary = run_batch("photos/", "out/", stages=("fit",), workers=1)
    print(summary.done, summary.errors, summary.skipped)
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ._errors import InputError, MachlibError

__all__ = ["STAGES", "BatchItem", "BatchSummary", "read_inputs", "content_hash", "plan_items", "process_item",
           "process_batch", "identity_distance", "run_batch", "RESULT_COLUMNS"]

#: The stages ``run_batch`` can run, in order; they share one fit per image.
STAGES: tuple[str, ...] = ("fit", "texture", "hair", "make")

#: Columns of ``results.csv`` / ``results.parquet``, in order.
RESULT_COLUMNS: tuple[str, ...] = (
    "path", "hash", "name", "status", "error", "attempts", "stages", "seconds_total",
    "seconds_fit", "seconds_texture", "seconds_hair", "seconds_make",
    "reprojection_mean_px", "reprojection_max_px", "face_psnr_db", "face_ssim", "seen_texels",
    "identity_distance",
)

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
_MAX_LIST_BYTES = 256 * 2**20  # a text or CSV list of paths larger than this is refused


@dataclass(frozen=True)
class BatchItem:
    """One image of a batch.

    Attributes:
        path: the image file.
        hash: the first 16 hex digits of the SHA-256 of its bytes (the resume key).
        name: its result folder's name, ``<file stem>-<hash[:8]>`` in safe characters.
    """

    path: Path
    hash: str
    name: str


@dataclass(frozen=True)
class BatchSummary:
    """What :func:`run_batch` did.

    Attributes:
        out: the output folder.
        total: images in the input (after removing repeated contents).
        done: images processed successfully in this run.
        errors: images that ended with an error row in this run.
        skipped: images already done (resume).
        rows: the final table, one dict per image (:data:`RESULT_COLUMNS`).
        seconds: wall time of the run.
    """

    out: Path
    total: int
    done: int
    errors: int
    skipped: int
    rows: list
    seconds: float


def content_hash(path: Union[str, os.PathLike]) -> str:
    """The first 16 hex digits of the SHA-256 of a file's bytes.

    Example:
        >>> import tempfile, pathlib
        >>> from machlib.batch import content_hash
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_bytes(b"abc")
        >>> content_hash(p)
        'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in _IMAGE_SUFFIXES and not p.name.startswith(".")


def read_inputs(source: Union[str, os.PathLike]) -> list[Path]:
    """The image paths a batch input names.

    Args:
        source: a folder (its image files, sorted by name; not recursive), a text file (one path
            per line; blank lines and ``#`` comments ignored), or a ``.csv`` / ``.parquet`` table
            with a ``path`` column. Relative paths in a list or table are relative to the list's
            folder.

    Returns:
        The paths, in input order. They are not checked here: a missing or unreadable image
        becomes an error row when it is processed.

    Raises:
        InputError: the source is missing, empty, not a regular file or folder, too large, or a
            table without a ``path`` column.
    """
    src = Path(source)
    if src.is_dir():
        paths = sorted(p for p in src.iterdir() if p.is_file() and _is_image(p))
        if not paths:
            raise InputError(f"batch input {src} has no image files ({', '.join(sorted(_IMAGE_SUFFIXES))})")
        return paths
    if not src.exists():
        raise InputError(f"batch input {src} does not exist")
    if not src.is_file():
        raise InputError(f"batch input {src} is not a regular file or a folder")
    base = src.parent
    suffix = src.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            table = pq.read_table(src)
        except ImportError:
            raise InputError("reading a Parquet list needs pyarrow: pip install 'machlib[batch]'") from None
        except Exception as e:  # pyarrow raises its own types for damaged files
            raise InputError(f"batch input {src}: not a readable Parquet file ({type(e).__name__}: {e})") from None
        if "path" not in table.column_names:
            raise InputError(f"batch input {src}: no 'path' column (columns: {table.column_names})")
        values = [v for v in table.column("path").to_pylist() if v not in (None, "")]
    else:
        if src.stat().st_size > _MAX_LIST_BYTES:
            raise InputError(f"batch input {src} is larger than {_MAX_LIST_BYTES >> 20} MiB")
        if _is_image(src):
            return [src]
        try:
            text = src.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"batch input {src}: not a text list, a table or an image") from None
        if suffix == ".csv":
            rows = list(csv.DictReader(text.splitlines()))
            if not rows or "path" not in rows[0]:
                raise InputError(f"batch input {src}: a CSV needs a header row with a 'path' column")
            values = [r["path"] for r in rows if r.get("path")]
        else:
            values = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if not values:
        raise InputError(f"batch input {src} lists no paths")
    return [p if p.is_absolute() else base / p for p in (Path(str(v)) for v in values)]


def _safe_name(stem: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:48]
    return s or "image"


def plan_items(paths: Sequence[Union[str, os.PathLike]]) -> tuple[list[BatchItem], list[dict]]:
    """Hash every input and drop repeated contents.

    Returns:
        ``(items, unreadable)``: one :class:`BatchItem` per distinct content, in input order, and
        an error row (see :data:`RESULT_COLUMNS`) per path that cannot be read.
    """
    items, seen, bad = [], set(), []
    for p in map(Path, paths):
        try:
            if not p.is_file():
                raise OSError("not a regular file" if p.exists() else "no such file")
            key = content_hash(p)
        except OSError as e:
            reason = getattr(e, "strerror", None) or str(e)
            bad.append(_row(p, "", _safe_name(p.stem), "error", f"{p}: cannot read the file ({reason})", 0, ()))
            continue
        if key in seen:
            continue
        seen.add(key)
        items.append(BatchItem(p, key, f"{_safe_name(p.stem)}-{key[:8]}"))
    return items, bad


def _row(path, key, name, status, error, attempts, stages, **figures) -> dict:
    row = dict.fromkeys(RESULT_COLUMNS, None)
    row.update(path=str(path), hash=key, name=name, status=status, error=error, attempts=attempts,
               stages=",".join(stages))
    row.update(figures)
    return row


def _one_line(message: str, limit: int = 500) -> str:
    s = " ".join(str(message).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def process_item(item: BatchItem, out: Union[str, os.PathLike], stages: Sequence[str], *, fit=None) -> dict:
    """Run ``stages`` on one image and write its result folder; never raises for a bad image.

    The stages' folders are written under ``OUT/.partial/`` and moved to ``OUT/<item.name>/``
    in one rename at the end (replacing an older result of the same content), so a result
    folder is never partial.

    Args:
        item: the image.
        out: the output folder.
        stages: names from :data:`STAGES`.
        fit: the image's fit when it was computed already (a
            :class:`~machlib.pipeline.FitOutput`, or the error its fit raised), as
            :func:`process_batch` passes it; default: :func:`~machlib.pipeline.fit_portrait`
            is called here.

    Returns:
        The item's row (:data:`RESULT_COLUMNS`), ``status`` ``"ok"`` or ``"error"``.
    """
    from . import pipeline
    from ._image import load_image

    out = Path(out)
    t0 = time.perf_counter()
    partial = out / ".partial" / f"{item.name}.{uuid.uuid4().hex[:8]}"
    seconds, figures = {}, {}
    try:
        if isinstance(fit, BaseException):
            raise fit
        image = fit.image if fit is not None else load_image(item.path)
        partial.mkdir(parents=True)
        if fit is not None:
            seconds["fit"] = float(sum(fit.timings.values()))
        elif any(s in ("fit", "texture", "hair") for s in stages):
            t = time.perf_counter()
            fit = pipeline.fit_portrait(image)
            seconds["fit"] = time.perf_counter() - t
        for stage in stages:
            t = time.perf_counter()
            dest = partial / stage
            if stage == "fit":
                report = pipeline.write_fit_outputs(dest, fit)
            elif stage == "texture":
                tex = pipeline.texture_portrait(fit)
                report = pipeline.write_texture_outputs(dest, fit, tex)
                quality = report["texture"]["quality"]
                figures.update(face_psnr_db=quality["raw"]["face_psnr_db"], face_ssim=quality["raw"]["face_ssim"],
                               seen_texels=quality["seen_texel_fraction"])
                figures["identity_distance"] = identity_distance(image, tex.render)
            elif stage == "hair":
                hair = pipeline.hair_portrait(fit)
                report = pipeline.write_hair_outputs(dest, fit, hair)
            else:  # make
                from .character import make_character, write_make_outputs

                report = write_make_outputs(dest, make_character(image=image))
            if "landmarks" in report:
                rp = report["landmarks"]["reprojection_px"]
                figures.update(reprojection_mean_px=rp["mean"], reprojection_max_px=rp["max"])
            seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - t
        final = out / item.name
        if final.exists():  # an older result of the same content (a run without resume)
            old = out / ".partial" / f"{item.name}.old.{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            os.replace(partial, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(partial, final)
        status, error = "ok", None
    except MachlibError as e:
        status, error = "error", _one_line(e)
    except Exception as e:  # a bug must not stop a dataset run; the row names it
        status, error = "error", _one_line(f"internal error {type(e).__name__}: {e}")
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return _row(item.path, item.hash, item.name, status, error, 1, stages,
                seconds_total=time.perf_counter() - t0,
                **{f"seconds_{k}": v for k, v in seconds.items()}, **figures)


def process_batch(items: Sequence[BatchItem], out: Union[str, os.PathLike], stages: Sequence[str], *,
                  pad_to: Optional[int] = None) -> list:
    """:func:`process_item` for several images, their geometry fitted together.

    Each image is loaded and its landmarks detected on its own; the faces found are then fitted
    in one batched program (:func:`~machlib.pipeline.fit_portraits`, padded to
    ``pad_to`` faces so that every batch of a run reuses the compiled programs), and each image
    goes on through the rest of ``stages`` and into its folder as :func:`process_item` does.
    The fits equal those of the single-image path (to float rounding), so the folders do too.

    Args:
        items: the images.
        out: the output folder.
        stages: names from :data:`STAGES`.
        pad_to: the batch size the fit programs are compiled for (``≥ len(items)``); default:
            ``len(items)``.

    Returns:
        One row per item (:data:`RESULT_COLUMNS`), in order; a bad image is an ``"error"`` row.
    """
    from . import pipeline
    from ._image import load_image

    items = list(items)
    if not any(s in ("fit", "texture", "hair") for s in stages) or not items:
        return [process_item(it, out, stages) for it in items]
    t0 = time.perf_counter()
    fits: list = [None] * len(items)
    images, where = [], []
    for i, it in enumerate(items):
        try:
            images.append(load_image(it.path))
            where.append(i)
        except MachlibError as e:
            fits[i] = e
        except Exception as e:  # as process_item: a bug is a row, not a stopped batch
            fits[i] = MachlibError(f"internal error {type(e).__name__}: {e}")
    if images:
        try:
            pad = None if pad_to is None else max(int(pad_to), len(images))
            for i, f in zip(where, pipeline.fit_portraits(images, pad_to=pad)):
                fits[i] = f
        except MachlibError as e:
            for i in where:
                fits[i] = e
        except Exception as e:
            for i in where:
                fits[i] = MachlibError(f"internal error {type(e).__name__}: {e}")
    shared = (time.perf_counter() - t0) / len(items)
    rows = []
    for it, fit in zip(items, fits):
        row = process_item(it, out, stages, fit=fit)
        row["seconds_total"] = (row["seconds_total"] or 0.0) + shared  # its share of loading and fitting
        rows.append(row)
    return rows


_IDENTITY: list = []


def _identity_model():
    """dlib's face detector, 68-point predictor and ResNet descriptor, or ``None`` without dlib."""
    if not _IDENTITY:
        try:
            import dlib

            try:
                import face_recognition_models as frm

                pose, rec = frm.pose_predictor_model_location(), frm.face_recognition_model_location()
            except ImportError:  # its __init__ needs pkg_resources; the data files are still there
                import importlib.util

                spec = importlib.util.find_spec("face_recognition_models")
                if spec is None or not spec.submodule_search_locations:
                    raise
                models = Path(next(iter(spec.submodule_search_locations))) / "models"
                pose = str(models / "shape_predictor_68_face_landmarks.dat")
                rec = str(models / "dlib_face_recognition_resnet_model_v1.dat")
            _IDENTITY.append((dlib.get_frontal_face_detector(), dlib.shape_predictor(pose),
                              dlib.face_recognition_model_v1(rec)))
        except (ImportError, RuntimeError, OSError):
            _IDENTITY.append(None)
    return _IDENTITY[0]


def _descriptor(model, image):
    import numpy as np

    detector, predictor, encoder = model
    img = np.ascontiguousarray(image[..., :3])
    for up in (0, 1):
        boxes = sorted(detector(img, up), key=lambda b: -b.width() * b.height())
        if boxes:
            return np.asarray(encoder.compute_face_descriptor(img, predictor(img, boxes[0])), np.float64)
    return None


def identity_distance(photo, render) -> Optional[float]:
    """dlib's identity distance between a portrait and the textured head rendered in its camera.

    The render (RGBA, the head under the estimated lighting in the fitted camera, as
    :attr:`~machlib.pipeline.TextureOutput.render`) is laid over the photo, so hair and
    background are the photo's and only the head differs; the distance is that of dlib's
    128-D ResNet face descriptors of the photo and of the composite (the same person below
    about 0.6). An independent evaluator, optional: it needs ``dlib`` and
    ``face-recognition-models``, which are not machlib dependencies.

    Args:
        photo: ``(H, W, 3)`` uint8 portrait.
        render: ``(H, W, 4)`` float RGBA in ``[0, 1]`` (sRGB), the same size.

    Returns:
        The distance, or ``None`` without dlib or when dlib finds no face in either image.
    """
    import numpy as np

    model = _identity_model()
    if model is None:
        return None
    photo = np.asarray(photo, np.uint8)
    rgba = np.asarray(render, np.float32)
    if rgba.shape[:2] != photo.shape[:2] or rgba.shape[-1] != 4:
        raise InputError(f"identity_distance: render must be (H, W, 4) like the photo {photo.shape[:2]}, "
                         f"got {rgba.shape}")
    a = rgba[..., 3:]
    comp = np.clip(rgba[..., :3] * a + photo.astype(np.float32) / 255.0 * (1.0 - a), 0.0, 1.0)
    comp = (comp * 255.0 + 0.5).astype(np.uint8)
    d_photo, d_render = _descriptor(model, photo), _descriptor(model, comp)
    if d_photo is None or d_render is None:
        return None
    return float(np.linalg.norm(d_photo - d_render))


class _Worker:
    """A Ray actor: imports machlib once, keeps compiled programs warm, processes item lists."""

    def __init__(self, out: str, stages: tuple, batch_size: int = 1):
        self.out, self.stages, self.batch_size = out, stages, batch_size
        from ._cache import enable_compilation_cache

        enable_compilation_cache()
        crash = os.environ.get("MACHLIB_BATCH_CRASH_ONCE")  # fault injection for the tests
        self._crash = Path(crash) if crash else None

    def run(self, items: list) -> list:
        if self._crash is not None and not self._crash.exists():
            self._crash.write_text(items[0].hash)
            os._exit(1)  # die mid-item, as a crashed or killed worker does
        if self.batch_size > 1:
            return process_batch(items, self.out, self.stages, pad_to=self.batch_size)
        return [process_item(item, self.out, self.stages) for item in items]


def _read_table(out: Path) -> dict:
    """Earlier rows of ``OUT/results.csv`` by hash (the last row of each hash wins)."""
    path = out / "results.csv"
    if not path.is_file():
        return {}
    rows = {}
    with open(path, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r.get("hash"):
                rows[r["hash"]] = {k: (r.get(k) or None) for k in RESULT_COLUMNS}
    return rows


def _write_tables(out: Path, rows: list) -> None:
    import io

    from .export import write_atomic

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in RESULT_COLUMNS})
    write_atomic(out / "results.csv", buf.getvalue().encode("utf-8"))
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return
    cols = {k: [None if r.get(k) in (None, "") else str(r.get(k)) for r in rows] for k in RESULT_COLUMNS}
    numeric = [k for k in RESULT_COLUMNS if k.startswith(("seconds", "reprojection", "face_", "seen", "identity"))]
    for k in numeric + ["attempts"]:
        cols[k] = [None if v is None else float(v) for v in cols[k]]
    tmp = out / f".results.parquet.tmp{os.getpid()}"
    pq.write_table(pa.table(cols), tmp)
    os.replace(tmp, out / "results.parquet")


def _append_csv(out: Path, row: dict) -> None:
    path = out / "results.csv"
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=RESULT_COLUMNS, lineterminator="\n")
        if new:
            w.writeheader()
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in RESULT_COLUMNS})


def _progress_line(done: int, total: int, t0: float, errors: int) -> str:
    el = time.perf_counter() - t0
    rate = done / el if el > 0 and done else 0.0
    eta = (total - done) / rate if rate else float("nan")
    eta_s = "?" if eta != eta else f"{eta / 60:.1f} min"
    return f"[{done}/{total}] {rate * 60:.1f} images/min, {errors} errors, ETA {eta_s}"


class _Progress:
    """Progress of a run: a bar on a terminal (rich), else one status line per finished image."""

    def __init__(self, total: int, callback: Optional[Callable[[str], None]]):
        self.total, self.callback, self.t0, self.bar = total, callback, time.perf_counter(), None
        if callback is None and total and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
            )

            self.bar = Progress(TextColumn("machlib batch"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[status]}"), console=Console(stderr=True))
            self.task = self.bar.add_task("batch", total=total, status="starting the workers")
            self.bar.start()

    def update(self, done: int, errors: int) -> None:
        line = _progress_line(done, self.total, self.t0, errors)
        if self.bar is not None:
            self.bar.update(self.task, completed=done, status=line.split("] ", 1)[1])
        elif self.callback is not None:
            self.callback(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run_batch(
    inputs: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
    out: Union[str, os.PathLike],
    *,
    stages: Sequence[str] = ("fit",),
    address: Optional[str] = None,
    workers: Optional[int] = None,
    batch_size: int = 1,
    resume: bool = True,
    max_retries: int = 2,
    progress: Optional[Callable[[str], None]] = None,
) -> BatchSummary:
    """Run machlib's stages over many images on Ray (see the module docstring).

    Args:
        inputs: a folder, a text list, a CSV/Parquet table (:func:`read_inputs`), or a sequence
            of image paths.
        out: the output folder (created).
        stages: any of :data:`STAGES`, run in that order per image.
        address: ``None`` starts a local Ray in this process (or uses the one already
            initialised); ``"auto"`` or ``"ray://HOST:PORT"`` joins a cluster.
        workers: number of worker actors; default: the CPUs Ray reports (at most the number of
            images), one per GPU when the cluster has GPUs.
        batch_size: images per call to a worker, ``≥ 1``. Above 1, a worker fits the geometry
            of its images together (:func:`process_batch`: one compiled program for the batch,
            every batch padded to ``batch_size`` faces); the results are those of
            ``batch_size=1``.
        resume: skip images whose content already has an ``ok`` row and a complete folder.
        max_retries: times an item is retried after its worker died.
        progress: called with a one-line status after each finished image (images done, images
            per minute, errors, ETA); default: a progress bar with the same figures on stderr
            when it is a terminal, else the lines printed to stderr.

    Returns:
        A :class:`BatchSummary`.

    Raises:
        InputError: bad ``stages``, ``workers``, ``batch_size``, ``max_retries``, inputs or
            output folder.
        ImportError: Ray is not installed (``pip install 'machlib[batch]'``).
    """
    from ._validate import check_output_dir

    stages = tuple(stages)
    if not stages or any(s not in STAGES for s in stages) or len(set(stages)) != len(stages):
        raise InputError(f"stages must be distinct names from {list(STAGES)}, got {list(stages)}")
    stages = tuple(s for s in STAGES if s in stages)
    for name, value, lo in (("batch_size", batch_size, 1), ("max_retries", max_retries, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise InputError(f"{name} must be an integer >= {lo}, got {value!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"workers must be an integer >= 1, got {workers!r}")
    paths = read_inputs(inputs) if isinstance(inputs, (str, os.PathLike)) else [Path(p) for p in inputs]
    if not paths:
        raise InputError("no input images")
    out = Path(out)
    check_output_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    items, unreadable = plan_items(paths)
    shutil.rmtree(out / ".partial", ignore_errors=True)  # a killed run's work in progress
    earlier = _read_table(out) if resume else {}
    current = {it.hash for it in items}
    # hash (or path for unreadable files) -> row: earlier rows of other images are kept
    table = {h: r for h, r in earlier.items() if h not in current}
    todo, skipped = [], 0
    for it in items:
        old = earlier.get(it.hash)
        if old and old.get("status") == "ok" and (out / it.name).is_dir() and set(stages) <= set(
                (old.get("stages") or "").split(",")):
            table[it.hash] = old
            skipped += 1
        else:
            todo.append(it)
    for r in unreadable:
        table[f"path:{r['path']}"] = r
    _write_tables(out, list(table.values()))  # the skipped rows, and nothing half-known

    done = errors = 0
    bar = _Progress(len(todo), progress)
    if todo:
        import ray

        started = False
        if not ray.is_initialized():
            kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            if address is None:
                kwargs.update(num_cpus=max(1, min(os.cpu_count() or 1, workers or os.cpu_count() or 1)),
                              object_store_memory=256 * 2**20)
            with warnings.catch_warnings():  # Ray starts its processes with fork + exec, not bare fork
                warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
                ray.init(address=address, **kwargs)
            started = True
        try:
            res = ray.cluster_resources()
            gpus = int(res.get("GPU", 0))
            n = workers or max(1, gpus or int(res.get("CPU", 1)))
            n = min(n, len(todo))
            opts = dict(max_restarts=-1, max_task_retries=max_retries, num_cpus=1)
            if gpus:
                opts["num_gpus"] = 1
            Actor = ray.remote(_Worker).options(**opts)
            actors = [Actor.remote(str(out.resolve()), stages, batch_size) for _ in range(n)]
            batches = [todo[i: i + batch_size] for i in range(0, len(todo), batch_size)]
            pending = {}
            queue = list(batches)
            free = list(range(n))

            def submit():
                while free and queue:
                    a, b = free.pop(0), queue.pop(0)
                    pending[actors[a].run.remote(b)] = (a, b)

            submit()
            written = 0
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                ref = ready[0]
                a, batch = pending.pop(ref)
                try:
                    rows = ray.get(ref)
                except Exception as e:  # the worker died more often than max_retries allows
                    rows = [_row(it.path, it.hash, it.name, "error",
                                 _one_line(f"worker died ({type(e).__name__}) after {max_retries + 1} attempts"),
                                 max_retries + 1, stages) for it in batch]
                for r in rows:
                    table[r["hash"]] = r
                    _append_csv(out, r)
                    done += r["status"] == "ok"
                    errors += r["status"] != "ok"
                    bar.update(done + errors, errors)
                if done + errors - written >= 50:  # the Parquet table follows every 50 images
                    _write_tables(out, list(table.values()))
                    written = done + errors
                free.append(a)
                submit()
        finally:
            bar.close()
            if started:
                ray.shutdown()
    shutil.rmtree(out / ".partial", ignore_errors=True)  # empty now: every item was moved or dropped
    rows = list(table.values())
    _write_tables(out, rows)
    (out / "batch.json").write_text(json.dumps({"stages": list(stages), "inputs": len(paths),
                                                "distinct": len(items)}, indent=2) + "\n")
    return BatchSummary(out, len(items) + len(unreadable), done, errors + len(unreadable), skipped, rows,
                        time.perf_counter() - t0)
