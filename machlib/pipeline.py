"""The CLI's stages as plain functions: each takes explicit inputs and returns a typed result.

* :func:`fit_portrait`: portrait → dense landmarks → the two-stage head fit (the parametric
  human, then the triplane residual) → :class:`FitOutput` (``machlib fit``);
* :func:`texture_portrait`: the fit → multi-resolution texture, delighting, completion →
  :class:`TextureOutput` (``machlib texture``);
* :func:`hair_portrait`: the fit → hair mask, orientation, style retrieval, growth, clean-up →
  :class:`HairOutput` (``machlib hair``);
* their reports (:func:`fit_report`, :func:`texture_report`, :func:`hair_report`) and images.

Writing files is separate from computing (:func:`write_fit_outputs`, :func:`write_texture_outputs`,
:func:`write_hair_outputs`) and is atomic (:func:`atomic_output_dir`): everything goes to a
temporary folder beside ``OUT`` and is moved into place only at the end. The complete character
(``machlib make``) is :func:`machlib.character.make_character`, built from these stages.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from ._camera import _rotation_matrix_np
from ._errors import InputError
from ._facemesh import LIPS_INNER, LIPS_OUTER
from ._image import save_png
from ._mesh import Mesh
from .export import glb_bytes, save_obj
from ._preview import draw_lines, draw_points, orbit_camera
from ._raster import rasterize_np
from ._scene import render_mesh
from ._strand_raster import _vertex_normals_np
from ._threads import in_background
from ._validate import check_finite, check_output_dir, output_lock
from ._version import __version__
from .geometry import (
    FITTED_EXPRESSIONS,
    GeometryFitConfig,
    GeometryResult,
    HumanPrior,
    LandmarkDetector,
    Landmarks,
    MediaPipeDetector,
    Template,
    default_template,
    expression_basis,
    face_oval,
    fit_landmarks,
    self_intersections,
    spikes,
    template_albedo,
    uv_raster,
)
from .geometry._human_fit import _project_np, _sliders_cached
from .geometry._landmarks import _check_image, check_landmarks
from .hair import (
    DEFAULT_HAIR_WIDTH,
    HAIR_COLORS,
    HAIR_STYLES,
    HairMask,
    Strands,
    cleanup_strands,
    cleanup_to_count,
    clump_strands,
    cover_ears,
    tuck_tips,
    estimate_hair_color,
    fit_strand_tips,
    grow_from_volume,
    grow_style,
    hair_mask,
    hair_preview,
    hair_shading_from_sh,
    head_sdf_grid,
    lift_hair,
    light_from_eyes,
    light_from_skin,
    match_styles,
    orientation_image,
    orientation_map,
    read_cem_hair,
    read_hair_data,
    read_hairstyle,
    render_strands,
    style_agreement,
    strand_colors_from_photo,
    style_volume,
    transfer_strands,
    write_hair_data,
    write_usd_curves,
)
from .hair._fit import _seen
from .hair._styles import _style_lengths
from .hair._color import _hair_beside_hat
from .hair._ears import _ears_under_hair
from .human import PHENOTYPE_NAMES, HumanParams
from .human._model import _human_points_np
from .render import linear_to_srgb, render_textured, sh_directional, srgb_to_linear
from .texture._brows import _complete_brows
from .texture._fit import _camera_centre
from .texture._pbr import (
    _fit_specular_irradiance,
    _sh_light_direction,
    _specular_image,
    region_pbr_maps,
    sheen_specular_map,
)
from .texture import (
    TextureFitConfig,
    complete_texture,
    delight_sh,
    detect_glasses,
    estimate_lighting,
    eye_confidence,
    eye_openness,
    fit_texture,
    lip_confidence,
    lip_misfit,
    normal_map,
    psnr,
    sheen_layer,
    skin_confidence,
    ssim,
    texel_confidence,
    texel_visibility,
    texture_problem,
)

__all__ = [
    "FitOutput", "fit_portrait", "fit_portraits", "write_fit_outputs", "fit_report", "human_report", "fit_report_reprojection",
    "overlay_image", "atomic_output_dir",
    "TextureOutput", "PortraitOcclusion", "portrait_occlusion", "face_mask", "texture_portrait", "relit_image", "texture_report", "glasses_report",
    "write_texture_outputs",
    "RELIGHT_PRESETS", "HairOutput", "hair_portrait", "hair_allowed", "hair_report", "hair_images", "write_hair_outputs",
]


class FitOutput(NamedTuple):
    """Everything :func:`fit_portrait` computed.

    Attributes:
        image: ``(H, W, 3)`` uint8 portrait.
        landmarks: the detected :class:`~machlib.geometry.Landmarks`.
        template: the :class:`~machlib.geometry.Template` that was fitted.
        result: the :class:`~machlib.geometry.GeometryResult`.
        timings: seconds per stage (``compile`` apart from ``fit``).
    """

    image: np.ndarray
    landmarks: Landmarks
    template: Template
    result: GeometryResult
    timings: dict


def fit_portrait(
    image: np.ndarray,
    *,
    template: Template | None = None,
    config: GeometryFitConfig | None = None,
    fov_degrees: float = 25.0,
    strict: bool = False,
    attributes=None,
    progress: Callable[[str], None] | None = None,
    detector: LandmarkDetector | None = None,
    on_landmarks: Callable[[np.ndarray, Landmarks], None] | None = None,
) -> FitOutput:
    """Detect landmarks on a portrait and fit the template head and camera to them.

    Args:
        image: ``(H, W, 3)`` uint8 RGB portrait (see :func:`machlib.load_image`).
        template: the template head; :func:`~machlib.geometry.default_template` by default.
        config: the :class:`~machlib.geometry.GeometryFitConfig` (``None``: the default; for the
            human template, of the second stage).
        fov_degrees: vertical field of view assumed for the portrait.
        strict: fail if the image has more than one face (default: use the largest).
        attributes: optional :class:`~machlib.text.FaceAttributes` (e.g. from the prompt): for the
            human template, stated gender and age are held, the build and shape words set the
            prior (:class:`~machlib.geometry.HumanPrior`).
        progress: optional callback called with each stage's name as it starts.
        detector: the :class:`~machlib.geometry.LandmarkDetector` (default
            :class:`~machlib.geometry.MediaPipeDetector`).
        on_landmarks: optional callback called as ``on_landmarks(image, landmarks)`` (the
            checked image, as :attr:`FitOutput.image`, and :attr:`FitOutput.landmarks`) as soon as
            the landmarks are detected, before the template is awaited and the fit compiled and
            run: a caller can start work that needs only those (``make_character`` starts the
            hair mask on another thread there). An error it raises propagates.

    Returns:
        A :class:`FitOutput`.

    Raises:
        NoFaceError: no face (or several, with ``strict``).
        InputError: ``detector`` is not a detector, or returned landmarks that are not 478
            finite points on the image; or the fitted mesh or camera is not finite (a degenerate
            template), so that no NaN leaves the stage.
    """
    say = progress or (lambda _: None)
    timings = {}
    t = time.perf_counter()
    say("landmarks")
    if detector is not None and not isinstance(detector, LandmarkDetector):
        raise InputError(f"fit_portrait: detector must be callable as detector(image, strict=...), "
                         f"got {type(detector).__name__}")
    image = _check_image("fit_portrait", image)
    # the default template builds beside the detection (in a fresh installation it parses the
    # human's data, seconds of numpy; MediaPipe's graph runs in C++ without the GIL)
    built = in_background(default_template, name="machlib-template") if template is None else None
    try:
        if detector is None:
            detector = MediaPipeDetector()
        landmarks = check_landmarks(detector(image, strict=strict), (image.shape[1], image.shape[0]),
                                    "fit_portrait")
        if on_landmarks is not None:
            on_landmarks(image, landmarks)
    except BaseException:
        if built is not None:  # no build left running behind the caller (its error is the lesser one)
            built(raise_error=False)
        raise
    timings["landmarks"] = time.perf_counter() - t
    t = time.perf_counter()
    say("template")
    template = template or built()
    if template.human is None:
        template.position_map((config or GeometryFitConfig()).resolution)
    timings["template"] = time.perf_counter() - t
    say("fit")
    h, w = image.shape[:2]
    prior = None
    if template.human is not None and attributes is not None:
        prior = HumanPrior.from_attributes(attributes)
    result = fit_landmarks(landmarks, template, (w, h), config=config, fov_degrees=fov_degrees, human_prior=prior)
    cam = result.camera
    check_finite("fit", vertices=result.mesh.vertices, residuals=result.residuals, camera_rotation=cam.rotation,
                 camera_translation=cam.translation, camera_focal=cam.focal)
    timings["setup"] = result.setup_seconds  # template maps, camera init, upsampling: eager work
    timings["compile"] = result.compile_seconds
    timings["fit"] = result.fit_seconds
    return FitOutput(image, landmarks, template, result, timings)


def fit_portraits(
    images,
    *,
    pad_to: int | None = None,
    template: Template | None = None,
    config: GeometryFitConfig | None = None,
    fov_degrees: float = 25.0,
    strict: bool = False,
    detector: LandmarkDetector | None = None,
) -> list:
    """:func:`fit_portrait` for many portraits: landmarks per image, then one batched geometry fit.

    Landmarks are detected image by image; the faces found are then fitted together: the whole
    two-stage fit (set-up, the parametric human, the glue, the triplane residual) of every face
    runs inside one compiled ``lax.map`` over the faces, compiled once per batch size, and only
    the host-side finish runs face by face. Each face's fit equals :func:`fit_portrait`'s to
    float rounding.

    Args:
        images: a sequence of ``(H, W, 3)`` uint8 RGB portraits (sizes may differ).
        pad_to: fit this many faces (``≥`` the number of faces found; the last face is repeated),
            so that a short last batch reuses the compiled programs; default: no padding.
        template, config, fov_degrees, strict, detector: as for :func:`fit_portrait` (the same
            for every image). A template without the parametric human is fitted face by face.

    Returns:
        One entry per image, in order: its :class:`FitOutput`, or the :class:`MachlibError`
        (e.g. :class:`~machlib.NoFaceError`) that :func:`fit_portrait` would have raised for it.
        ``timings["compile"]`` and ``timings["fit"]`` are the batch's divided by the number of
        faces.

    Raises:
        InputError: ``images`` is empty, or ``pad_to`` or ``detector`` is invalid.
    """
    from ._errors import MachlibError
    from .geometry._batch_fit import fit_human_batch

    images = list(images)
    if not images:
        raise InputError("fit_portraits: images is empty")
    if pad_to is not None and (isinstance(pad_to, bool) or not isinstance(pad_to, int) or pad_to < 1):
        raise InputError(f"fit_portraits: pad_to must be an integer >= 1, got {pad_to!r}")
    if detector is None:
        detector = MediaPipeDetector()
    elif not isinstance(detector, LandmarkDetector):
        raise InputError(f"fit_portraits: detector must be callable as detector(image, strict=...), "
                         f"got {type(detector).__name__}")
    t = time.perf_counter()
    template = template or default_template()
    if template.human is None:
        template.position_map((config or GeometryFitConfig()).resolution)
    template_s = time.perf_counter() - t
    out: list = [None] * len(images)
    found = []  # (index, image, landmarks, seconds)
    for i, image in enumerate(images):
        t = time.perf_counter()
        try:
            image = _check_image("fit_portraits", image)
            lm = check_landmarks(detector(image, strict=strict), (image.shape[1], image.shape[0]), "fit_portraits")
        except MachlibError as e:
            out[i] = e
            continue
        found.append((i, image, lm, time.perf_counter() - t))
    if not found:
        return out
    if template.human is None:  # the single-stage template: face by face
        for i, image, _, _ in found:
            try:
                out[i] = fit_portrait(image, template=template, config=config, fov_degrees=fov_degrees,
                                      strict=strict, detector=detector)
            except MachlibError as e:
                out[i] = e
        return out
    if pad_to is not None and pad_to < len(found):
        raise InputError(f"fit_portraits: pad_to ({pad_to}) is smaller than the {len(found)} faces found")
    results = fit_human_batch([lm for _, _, lm, _ in found], template,
                              [(im.shape[1], im.shape[0]) for _, im, _, _ in found],
                              pad_to=pad_to, config=config, fov_degrees=fov_degrees)
    for (i, image, lm, seconds), result in zip(found, results):
        cam = result.camera
        try:
            check_finite("fit", vertices=result.mesh.vertices, residuals=result.residuals,
                         camera_rotation=cam.rotation, camera_translation=cam.translation, camera_focal=cam.focal)
        except MachlibError as e:
            out[i] = e
            continue
        timings = {"landmarks": seconds, "template": template_s / len(found), "setup": result.setup_seconds,
                   "compile": result.compile_seconds, "fit": result.fit_seconds}
        out[i] = FitOutput(image, lm, template, result, timings)
    return out


def overlay_image(fit: FitOutput) -> np.ndarray:
    """The portrait with the fitted mesh's wireframe (front-facing edges, translucent white),
    the detected landmarks (green) and the fitted mesh's projected landmarks (red).

    Portraits under 1024 px are drawn at twice their size so the wireframe stays readable.
    """
    res = fit.result
    verts = np.asarray(res.mesh.vertices)
    faces = np.asarray(res.mesh.faces)
    px = _project_np(verts, res.camera)  # numpy: a one-shot step needs no compiled program
    a, b, c = px[faces[:, 0]], px[faces[:, 1]], px[faces[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    front = faces[area < 0]  # facing the camera (see the conventions page)
    edges = np.concatenate([front[:, [0, 1]], front[:, [1, 2]], front[:, [2, 0]]])
    edges = np.unique(np.sort(edges, 1), axis=0)
    # small portraits are drawn at 2× so the wireframe stays readable
    scale = 2 if max(fit.image.shape[:2]) < 1024 else 1
    from PIL import Image

    base = np.asarray(Image.fromarray(fit.image).resize(
        (fit.image.shape[1] * scale, fit.image.shape[0] * scale), Image.BICUBIC))
    img = draw_lines(base, px[edges] * scale, (255, 255, 255), alpha=0.22)
    img = draw_points(img, np.asarray(fit.landmarks.points) * scale, (40, 220, 60), radius=1.8 * scale)
    valid = np.asarray(fit.template.landmark_valid)
    fitted = np.asarray(fit.landmarks.points) + res.residuals
    return draw_points(img, fitted[valid] * scale, (235, 40, 40), radius=1.0 * scale)


def fit_report(fit: FitOutput, *, extra_timings: dict | None = None) -> dict:
    """The ``report.json`` content: timings, reprojection statistics, camera, configuration."""
    valid = np.asarray(fit.template.landmark_valid)
    d = np.linalg.norm(fit.result.residuals[valid], axis=1)
    timings = {**fit.timings, **(extra_timings or {})}
    cam = fit.result.camera
    h, w = fit.image.shape[:2]
    return {
        "machlib_version": __version__,
        "stage": "fit",
        "image": {"width": int(w), "height": int(h)},
        "timings": {k: round(float(v), 4) for k, v in timings.items()},
        "landmarks": {
            "detector": "mediapipe-facemesh-478",
            "count": int(valid.sum()),
            "confidence_median": float(np.median(fit.landmarks.confidence)),
            "reprojection_px": {"mean": float(d.mean()), "median": float(np.median(d)), "max": float(d.max())},
        },
        "fit": {
            "template": fit.template.name,
            "steps": int(len(fit.result.history["loss"])),
            "final_loss": float(fit.result.history["loss"][-1]),
            "vertices": fit.result.mesh.num_vertices,
            "faces": fit.result.mesh.num_faces,
        },
        "camera": camera_dict(cam),
        "platform": {"jax_backend": jax.default_backend(), "python": platform.python_version()},
        **({"human": human_report(fit)} if getattr(fit.result, "human", None) is not None else {}),
    }


def human_report(fit: FitOutput) -> dict:
    """The two stages of a human template's fit, for ``report.json``.

    Stage 1: its landmark error, the phenotype (MakeHuman's macro values), the largest slider
    values and the photo's facial actions. Gender and age are also given in words and years where
    they were held at a prompt's or a classifier's value (``held``); where the landmarks alone set
    them they are ``None``: one view's landmarks do not tell them (on the eight look-test portraits
    the fitted gender value did not separate the women from the men, and the fitted age put a
    77-year-old at 38), so the values stay shape parameters and are not reported as a reading.
    Stage 2: the residual's largest displacement, how far it raises a vertex out of its
    neighbours (spikes), and the neutral surface's self-intersections.
    """
    stage = fit.result.human
    head = fit.template.human
    topo = head.topology
    ns = topo.num_skin
    d1 = np.linalg.norm(stage.residuals[np.asarray(fit.template.landmark_valid)], axis=1)
    ph = {n: round(float(v), 4) for n, v in zip(PHENOTYPE_NAMES, np.asarray(stage.params.phenotype))}
    basis, names, _ = _sliders_cached()
    values = np.linalg.lstsq(basis, np.asarray(stage.params.modifiers, np.float64), rcond=None)[0]
    top = np.argsort(-np.abs(values))[:8]
    eb = expression_basis(head.landmarks.unit_names)
    ex = np.linalg.lstsq(eb, np.asarray(stage.params.expression, np.float64), rcond=None)[0]
    # one evaluation: numpy (compiling human_points for the head's shapes costs ~1 s CPU)
    stage1_neutral = _human_points_np(head.model, HumanParams(
        np.asarray(stage.params.phenotype), np.asarray(stage.params.modifiers),
        np.zeros_like(np.asarray(stage.params.expression))))[:ns].astype(np.float32)
    neutral = stage.neutral_points[:ns]
    age_years = float(np.interp(ph["age"], [0.0, 0.1875, 0.5, 1.0], [1.0, 11.0, 25.0, 90.0]))
    return {
        "stage1": {
            "what": "camera + MakeHuman human (gender, age, mirror-tied sliders) + the photo's facial actions",
            "steps": int(len(stage.history["loss"])),
            "reprojection_px": {"mean": float(d1.mean()), "median": float(np.median(d1)), "max": float(d1.max())},
            "phenotype": ph,
            "held": list(stage.held),
            "gender": (("female" if ph["gender"] < 0.4 else "male" if ph["gender"] > 0.6 else "neutral")
                       if "gender" in stage.held else None),
            "age_years": round(age_years, 1) if "age" in stage.held else None,
            "sliders": {names[i]: round(float(values[i]), 3) for i in top if abs(values[i]) > 1e-3},
            "expression": {n: round(float(v), 3) for n, v in zip(FITTED_EXPRESSIONS, ex) if v > 0.02},
            "compile_s": round(float(stage.compile_seconds), 3),
            "fit_s": round(float(stage.fit_seconds), 3),
        },
        "stage2": {
            "what": "Make-A-Character's triplane as a masked, smoothed residual on the fitted human",
            "reprojection_px": fit_report_reprojection(fit),
            "max_displacement_mm": round(float(1000 * np.abs(neutral - stage1_neutral).max()), 3),
            "max_spike_mm": round(float(1000 * spikes(neutral, stage1_neutral, topo.faces).max()), 3),
            "self_intersections": int(self_intersections(neutral, topo.faces)),
        },
    }


def fit_report_reprojection(fit: FitOutput) -> dict:
    """Mean, median and maximum reprojection error (pixels) of the fit's final landmarks."""
    valid = np.asarray(fit.template.landmark_valid)
    d = np.linalg.norm(fit.result.residuals[valid], axis=1)
    return {"mean": float(d.mean()), "median": float(np.median(d)), "max": float(d.max())}


def camera_dict(camera) -> dict:
    """A camera as JSON-ready numbers, with the conventions spelled out."""
    return {
        "convention": "OpenCV: x right, y down, z forward; X_cam = R X_world + t; pixels from top-left",
        "rotation_vector": [float(v) for v in np.asarray(camera.rotation)],
        "rotation_matrix": _rotation_matrix_np(np.asarray(camera.rotation)).tolist(),
        "translation": [float(v) for v in np.asarray(camera.translation)],
        "focal": [float(v) for v in np.asarray(camera.focal)],
        "principal": [float(v) for v in np.asarray(camera.principal)],
        "image_size": list(camera.image_size),
    }


@contextmanager
def atomic_output_dir(out: str | os.PathLike):
    """Yield a temporary folder beside ``out``; on success move its files into ``out``.

    Everything is written into the temporary folder first; only when the body finishes are the
    files renamed into ``out`` (the whole folder when ``out`` does not exist yet, file by file
    otherwise, so unrelated files already in ``out`` are left alone). Before the first rename
    every destination is checked (a folder where a result file goes, or a result folder over a
    file, fails then, with ``out`` untouched); if a rename still fails, the files already moved
    are taken out again and the old ones put back. On an exception nothing in ``out`` is
    touched, ``out`` is not created and the temporary folder is removed.

    The output folder's lock (:func:`machlib._validate.output_lock`) is held throughout, so a
    second run writing the same ``out`` fails with a clear message instead of silently replacing
    this one's results.

    Raises:
        InputError: ``out`` exists and is not a folder, cannot be written, a destination cannot be
            replaced, or another run holds its lock.
    """
    out = Path(out)
    check_output_dir(out)
    with output_lock(out):
        parent = Path(os.path.abspath(out)).parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp", dir=parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would otherwise become OUT's mode
        try:
            yield tmp
            if out.exists() and not out.is_dir():
                raise InputError(f"output {out} exists and is not a folder")
            if not out.exists():
                os.replace(tmp, out)
            else:
                _replace_into(tmp, out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _replace_into(tmp: Path, out: Path) -> None:
    """Move every entry of ``tmp`` into the existing folder ``out``, all or nothing.

    All destinations are checked first. Old entries are moved aside into a backup folder beside
    ``out`` before the new ones go in; on any failure the new entries are removed and the old ones
    put back, so ``out`` is as it was. The backup is removed at the end.
    """
    new = sorted(tmp.iterdir())
    for f in new:
        dest = out / f.name
        if not os.path.lexists(dest):
            continue
        if dest.is_dir() and not dest.is_symlink() and not f.is_dir():
            raise InputError(f"output {out}: {f.name} is a folder there, so the result {f.name} cannot replace "
                             f"it; move it away")
        if f.is_dir() and not (dest.is_dir() and not dest.is_symlink()):
            raise InputError(f"output {out}: {f.name} is a file there, so the result folder {f.name} cannot "
                             f"replace it; move it away")
    backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old", dir=tmp.parent))
    moved: list[tuple[Path, bool]] = []  # (destination, had an old entry)
    try:
        for f in new:
            dest = out / f.name
            had = os.path.lexists(dest)
            if had:
                os.replace(dest, backup / f.name)
            moved.append((dest, had))
            os.replace(f, dest)
    except BaseException:
        for dest, had in reversed(moved):
            try:
                arrived = not os.path.lexists(tmp / dest.name)  # the new entry left tmp: it is at dest
                if arrived and os.path.lexists(dest):
                    if dest.is_dir() and not dest.is_symlink():
                        shutil.rmtree(dest)
                    else:
                        dest.unlink()
                if had:
                    os.replace(backup / dest.name, dest)
            except OSError:
                pass
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)


def write_fit_outputs(out: str | os.PathLike, fit: FitOutput, *, extra_timings: dict | None = None) -> dict:
    """Write ``head.glb``, ``head.obj`` (+ ``head.mtl``, ``head_albedo.png``), ``camera.json``,
    ``overlay.png``, ``preview.png`` and ``report.json`` into ``out`` atomically.

    Returns:
        The report dict.
    """
    t = time.perf_counter()
    mesh: Mesh = fit.result.mesh
    albedo = template_albedo(1024) if fit.template.name == "procedural" else None
    def view(yaw):
        return render_mesh(mesh, orbit_camera(yaw, image_size=(384, 384), distance=0.95), texture=albedo,
                           background=np.full((384, 384, 3), 235, np.uint8))

    # the three preview views render on two threads (numpy's array work releases the GIL) while
    # this one writes the mesh files
    with atomic_output_dir(out) as tmp, ThreadPoolExecutor(2, thread_name_prefix="machlib-fit-preview") as pool:
        views = [pool.submit(view, yaw) for yaw in (0, 35, 90)]
        (tmp / "head.glb").write_bytes(glb_bytes(mesh, texture=albedo))
        if albedo is not None:
            save_png(tmp / "head_albedo.png", albedo)
        save_obj(tmp / "head.obj", mesh, texture="head_albedo.png" if albedo is not None else None)
        (tmp / "camera.json").write_text(json.dumps(camera_dict(fit.result.camera), indent=2) + "\n")
        save_png(tmp / "overlay.png", overlay_image(fit))
        save_png(tmp / "preview.png", np.concatenate([v.result() for v in views], 1))
        report = fit_report(fit, extra_timings={**(extra_timings or {}), "export": time.perf_counter() - t})
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


# --------------------------------------------------------------------------------------------
# texture stage (paper §2.4): extract → delight → correct and complete


class TextureOutput(NamedTuple):
    """Everything :func:`texture_portrait` computed (textures are float32 sRGB in ``[0, 1]``).

    Attributes:
        raw: ``(R, R, 3)`` texture extracted by the multi-resolution fit.
        seen: ``(R, R)`` weight of each texel's observation (0: never seen, to be completed).
        shading: ``(R, R, 3)`` estimated shading in UV space (linear, mean 1 on seen skin).
        lighting: ``(9, 3)`` SH radiance coefficients of the portrait's estimated lighting.
        delit: ``(R, R, 3)`` raw texture with the shading removed.
        albedo: ``(R, R, 3)`` corrected and completed diffuse albedo.
        masks: UV masks used by completion, name → ``(R, R)``.
        face_mask: ``(H, W)`` the portrait's face pixels the metrics compare: the face oval less
            the hidden pixels and the pixels whose colour is no skin (:attr:`not_skin` ``> 0.5``)
            and a 5-pixel margin around them (SSIM's window half-width); the fit uses the face oval
            less both.
        render_raw: ``(H, W, 4)`` the raw texture rendered in the fitted camera (RGBA).
        render: ``(H, W, 4)`` the albedo under the estimated lighting in the fitted camera.
        metrics: face-region PSNR (dB) and SSIM of both renders against the portrait (over
            :attr:`face_mask`: pixels hidden by glasses or given occlusion do not count);
            ``ita_degrees``, the ITA of the seen skin of the delighted albedo with the light's
            colour (:func:`~machlib.hair.light_from_eyes`, no prior) divided out (the shift
            this gives the seen skin texels' ITA, added to the completion's), beside
            ``ita_degrees_unbalanced`` (without) and ``light`` (the colour and its pixels).
        timings: seconds per step (``compile`` apart; ``level_<R>`` per fit level).
        delighter: ``"sh"``, ``"flax"`` or the path of the learned delighter's weights.
        glasses: the :class:`~machlib.texture.GlassesDetection` of the portrait (``None`` when
            detection was turned off); where present, its footprint was treated as unseen.
        occlusion: ``(H, W)`` the portrait's pixels treated as hidden (glasses, hair, an open
            mouth's interior, given occlusion), in ``[0, 1]``.
        hair: the portrait's :class:`~machlib.hair.HairMask` whose hair was treated as hidden
            (``None`` with ``hair=False``); :func:`hair_portrait` can reuse it (``mask=``).
        not_skin: ``(H, W)`` weights in ``[0, 1]`` of the face oval's pixels near its edge that
            were treated as unseen because their colour is no skin (``skin=True``; ``None``
            with ``skin=False``).
        gloss: ``(R, R)`` the photo's sheen taken out of the albedo (:func:`~machlib.texture.sheen_layer`,
            linear, in the albedo's units); ``None`` with ``sheen=False``.
        roughness_map: ``(r, r)`` the head's glTF roughness (``r = min(R, 512)``; the region map,
            :func:`~machlib.texture.region_pbr_maps`).
        specular_map: ``(r, r)`` the head's ``KHR_materials_specular`` factor: the region map, where
            the photo shows its sheen the gloss it asks for (:func:`~machlib.texture.sheen_specular_map`).
    """

    raw: np.ndarray
    seen: np.ndarray
    shading: np.ndarray
    lighting: np.ndarray
    delit: np.ndarray
    albedo: np.ndarray
    masks: dict
    face_mask: np.ndarray
    render_raw: np.ndarray
    render: np.ndarray
    metrics: dict
    timings: dict
    delighter: str
    glasses: object = None
    occlusion: np.ndarray | None = None
    hair: HairMask | None = None
    not_skin: np.ndarray | None = None
    gloss: np.ndarray | None = None
    roughness_map: np.ndarray | None = None
    specular_map: np.ndarray | None = None


def face_mask(landmarks: Landmarks, size: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` float32 mask of the face: the filled face oval of the detected landmarks."""
    return _filled_polygons(np.asarray(landmarks.points), [face_oval()], size).astype(np.float32)


def _template_region(template: Template, name: str, resolution: int) -> np.ndarray:
    from PIL import Image

    region = template.regions.get(name)
    if region is None:
        return np.zeros((resolution, resolution), np.float32)
    img = Image.fromarray(np.asarray(region, np.float32), mode="F").resize((resolution, resolution), Image.BILINEAR)
    return np.clip(np.asarray(img, np.float32), 0.0, 1.0)


#: Three SH lights for relit previews: warm key from the upper left, cool key from the right,
#: and a dim overhead light with a strong rim from behind.
RELIGHT_PRESETS = {
    "warm-left": ((-0.7, 0.5, 0.6), (1.3, 1.05, 0.8), 0.12),
    "cool-right": ((0.8, 0.2, 0.5), (0.7, 0.9, 1.3), 0.15),
    "top-rim": ((0.0, 1.0, -0.4), (1.2, 1.2, 1.2), 0.12),
}


class PortraitOcclusion(NamedTuple):
    """What hides the face's skin in a portrait (:func:`portrait_occlusion`), found from the photo
    and its landmarks alone, before any geometry.

    Attributes:
        hidden: ``(H, W)`` float32 weights in ``[0, 1]`` of the pixels that hide the face's skin:
            the given occlusion, the hair over the face with a margin of 4 % of the face width,
            the glasses' frames and an open mouth's interior.
        not_skin: ``(H, W)`` float32 weights of the face oval's pixels near its edge whose colour
            is no skin (``None`` with ``skin=False``).
        oval: ``(H, W)`` float32 face oval (:func:`face_mask`).
        hair: the portrait's :class:`~machlib.hair.HairMask` (``None`` with ``hair=False``).
        glasses: the :class:`~machlib.texture.GlassesDetection` (``None`` with ``glasses=False``).
        timings: seconds per step (``hair mask``, ``glasses``, ``skin``).
    """

    hidden: np.ndarray
    not_skin: np.ndarray | None
    oval: np.ndarray
    hair: object
    glasses: object
    timings: dict


def portrait_occlusion(
    image: np.ndarray,
    landmarks: Landmarks,
    *,
    occlusion: np.ndarray | None = None,
    glasses: bool = True,
    hair: bool | HairMask = True,
    skin: bool = True,
    mouth: bool = True,
    progress: Callable[[str], None] | None = None,
) -> PortraitOcclusion:
    """The first step of :func:`texture_portrait`: what hides the face's skin in the photo.

    It needs only the photo and its landmarks, so a caller can run it beside the geometry fit
    (:func:`~machlib.character.make_character` does, on a second thread) and hand the result to
    :func:`texture_portrait` (``occluded=``), which then skips it.

    Args:
        image: ``(H, W, 3)`` uint8 portrait (:attr:`FitOutput.image`).
        landmarks: its :class:`~machlib.geometry.Landmarks` (:attr:`FitOutput.landmarks`).
        occlusion, glasses, hair, skin, mouth, progress: as for :func:`texture_portrait`.

    Returns:
        A :class:`PortraitOcclusion`.

    Raises:
        InputError: an image that is not ``(H, W, 3)`` uint8, landmarks that are not 478 points,
            an ``occlusion`` not of the image's size, or a ``hair`` mask of another image.
    """
    image = _check_image("portrait_occlusion", image)
    if not (isinstance(landmarks, Landmarks) and np.shape(landmarks.points) == (478, 2)):
        raise InputError(f"portrait_occlusion: landmarks must be the portrait's 478 Landmarks, "
                         f"got {type(landmarks).__name__}")
    return _occlusion(image, landmarks, occlusion=occlusion, glasses=glasses, hair=hair, skin=skin, mouth=mouth,
                      progress=progress, owner="portrait_occlusion")


def _occlusion(image: np.ndarray, landmarks: Landmarks, *, occlusion, glasses, hair, skin, mouth, progress,
               owner: str) -> PortraitOcclusion:
    """:func:`portrait_occlusion` of a checked image and landmarks; errors name ``owner``."""
    say = progress or (lambda _: None)
    timings: dict = {}
    height, width = image.shape[:2]
    hidden = np.zeros((height, width), np.float32)
    if occlusion is not None:
        occ = np.asarray(occlusion, np.float32)
        if occ.shape != (height, width) or not np.isfinite(occ).all():
            raise InputError(f"{owner}: occlusion must be a finite ({height}, {width}) mask, "
                             f"got shape {occ.shape}")
        hidden = np.clip(occ, 0.0, 1.0)
    hm = None
    if hair is True:
        say("texture: hair")
        t = time.perf_counter()
        hm = hair_mask(image, landmarks)
        timings["hair mask"] = time.perf_counter() - t
    elif hair is not False:
        if not (hasattr(hair, "mask") and np.shape(hair.mask) == (height, width)):
            raise InputError(f"{owner}: hair must be True, False or the portrait's HairMask, "
                             f"got {type(hair).__name__}")
        hm = hair
    if hm is not None:
        from scipy import ndimage

        over = np.clip(np.asarray(hm.mask, np.float32), 0.0, 1.0)
        hidden = np.maximum(hidden, np.where(over > 0.1, over, 0.0))  # not the smoothing's faint tails
        # the mask's edge misses the thin strands beside it: grow it by 4 % of the face width
        fw = float(np.ptp(np.asarray(landmarks.points)[face_oval()][:, 0]))
        grown = ndimage.binary_dilation(over > 0.5, iterations=max(1, int(round(0.04 * fw))))
        hidden = np.maximum(hidden, grown.astype(np.float32))
    found = None
    if glasses:
        say("texture: glasses")
        t = time.perf_counter()
        found = detect_glasses(image, landmarks)
        hidden = np.maximum(hidden, found.mask)
        timings["glasses"] = time.perf_counter() - t
    if mouth:  # an open mouth's teeth, tongue and dark are not the lips
        hidden = np.maximum(hidden, _mouth_interior(landmarks, (width, height)))

    oval = face_mask(landmarks, (width, height))
    not_skin = None
    if skin:  # what the face oval holds near its edge that is no skin by its colour
        t = time.perf_counter()
        not_skin = _not_skin(image.astype(np.float32) / 255.0, landmarks, oval, hidden, hm)
        timings["skin"] = time.perf_counter() - t
    return PortraitOcclusion(hidden, not_skin, oval, hm, found, timings)


def texture_portrait(
    fit: FitOutput,
    *,
    config: "TextureFitConfig | None" = None,
    delighter: str | os.PathLike | None = None,
    makeup: dict | None = None,
    occlusion: np.ndarray | None = None,
    glasses: bool = True,
    hair: bool | HairMask = True,
    skin: bool = True,
    mouth: bool = True,
    progress: Callable[[str], None] | None = None,
    occluded: PortraitOcclusion | None = None,
    sheen: bool = False,
) -> TextureOutput:
    """Extract, delight, correct and complete the face texture of a fitted portrait (§2.4).

    Pixels where something hides the face (``occlusion``; with ``hair``, the hair that
    :func:`~machlib.hair.hair_mask` finds over the face; with ``glasses``, the footprint of
    the frames that :func:`~machlib.texture.detect_glasses` finds) are treated as unseen: their
    texels get zero confidence and completion fills them from the surroundings, the mirrored
    half and the template, so the frames are not painted into the albedo.

    Args:
        fit: the output of :func:`fit_portrait`.
        config: the :class:`~machlib.texture.TextureFitConfig` (default: levels 32→128→512→1024).
        delighter: ``"sh"`` (default, also ``None``): SH delighting
            (:func:`~machlib.texture.delight_sh`); ``"flax"``: the learned flax delighter with the
            bundled weights (:func:`~machlib.texture.delight_flax`), or the path of a ``.json``
            written by ``scripts/train_flax_delighter.py``; any other path: torch pix2pixHD weights
            (``.safetensors``, see :func:`machlib.interop.load_delighter`).
        makeup: optional make-up strengths ``{"blush": 0.4, "eye_shadow": 0.3, "lipstick": 0.5}``.
        occlusion: optional ``(H, W)`` weights in ``[0, 1]`` of the portrait's pixels that do not
            show the face's skin (hair, hands, accessories): 1 is hidden.
        glasses: detect glasses worn in the portrait and treat their footprint as hidden.
        hair: treat the hair that covers the face (a fringe, strands over the temples and
            cheeks) as hidden: ``True`` segments it (:func:`~machlib.hair.hair_mask`), a
            :class:`~machlib.hair.HairMask` of the portrait is used as is, ``False`` turns it off.
            The mask (``> 0.5``) is grown by 4 % of the face width, since its edge misses the
            thin strands beside it (on t1_face0 this hides 87 % of the hair drawn inside the
            face oval instead of 51 %, and 5.5 % of the oval's skin).
        skin: treat the pixels near the face oval's edge whose colour is no skin as unseen: a
            robust CIELAB model of the face's own skin colour, taken over the oval less what
            hides it and less the eyes, brows, lips and nostrils, against a model of the hair
            beside the face (:func:`~machlib.texture.skin_confidence`), gives each pixel a
            confidence; in a band along the oval's edge (full within 4 % of the face width,
            fading out by 8 %: :data:`SKIN_TEST_BAND`) the pixels off those features lose the
            rest (the dark gap between jaw and hair, strands and their shadow at the cheeks,
            background at the silhouette), so completion fills them instead of painting them
            into the albedo. On the bundled portrait this removes the dark patches at the sides
            of the jaw. Inside the band the face's own creases and shading stay. Like hidden
            pixels, they are left out of the metrics (:attr:`TextureOutput.not_skin`).
            Strands that fall from the hair across the face further in (red or blond ones,
            close to skin in colour, mixed with it where thin) are found by their connection
            to the hair: the pixels below :data:`HAIR_STRAND_TEST`'s confidence that reach the
            hair through such pixels, within a reach of 15 % of the face width, are no skin
            either (t1_face0's strands beside her left eye). So is the edge of red or blond
            hair blurred into the cheek, which the colour model takes for skin: the pixels
            whose a*b* lie at least 30 % of the way from the local skin's to the local hair's
            (:data:`HAIR_MIX_TEST`), reached from the hair through such pixels within 8 % of
            the face width (t1_face0's left cheek, an orange stripe from temple to jaw).
        mouth: treat an open mouth's interior in the photo (teeth, tongue, the dark between
            them: the inner lip polygon of the landmarks, when the lips part by at least
            :data:`MOUTH_OPEN` of the mouth's width) as hidden. The fitted head rarely opens
            its mouth exactly as wide as the photo's, and the character is exported with it
            closed, so the teeth would otherwise be painted across the lips; the lips are
            completed with the portrait's lip colour instead. An open mouth's lips are mapped
            onto the head's by their landmarks, not by the fitted head's surface (whose
            expressions do not follow a laugh's: t1_face3's upper teeth lay on the head's upper
            lip, which took the template's painted lip, and his own thin upper lip on the skin
            above it), fading into the mesh's map over a ring around them; the head's lips
            count as seen where the photo's that map onto them are, and its mouth opening,
            which the photo never shows, is painted in a shade of the lips around it. Above an
            open mouth, the photo's lip-coloured pixels that still land on the head's skin
            (more than about 1.5 mm off its lips in UV: :func:`~machlib.texture.lip_misfit`)
            are hidden too: a laugh's thin upper lip, which the landmarks place low, painted a
            red band above the neutral head's lips (t1_face3: mean CIELAB a* of the albedo
            3-10 mm above the upper lip 32.3 -> 28.4; the cheeks' 19).
        progress: optional callback called with each step's name as it starts.
        occluded: the portrait's :class:`PortraitOcclusion` when already computed
            (:func:`portrait_occlusion` of ``fit.image`` and ``fit.landmarks``, with the same
            ``occlusion``, ``glasses``, ``hair``, ``skin`` and ``mouth``); ``None``: computed here.
        sheen: move the photo's sheen (specular highlights on the forehead, nose, cheeks) from
            the albedo into the specular map: :func:`~machlib.texture.sheen_layer` finds the seen
            skin's achromatic excess over its local colour, the albedo keeps the rest, and
            :func:`~machlib.texture.sheen_specular_map` turns the excess (times the shading: the
            radiance the camera saw) into the :attr:`TextureOutput.specular_map`, under a light
            from the sheen's mirror direction, which the relit render's specular lobe uses beside
            the SH lighting's (both irradiances fitted together). Only what that map gives back
            in the photo's view leaves the albedo, so the relit render gets it back from the
            specular term. Off by default: on five portraits it raised the relit PSNR of the
            two with a flash's sheen (t1_face5 +0.5, t1_face0 +0.3 dB) but the albedo it leaves
            is grey-blue where the sheen was (the SH delighting had already taken the sheen's
            brightness into its shading, so what is taken out darkens the skin) and the dlib
            identity distances rose by 0.02-0.08 (``docs/benchmarks/fidelity.md``).

    An eye the photo shows nearly shut and less open than the fitted head's (looking down,
    blinking: the :func:`~machlib.texture.eye_openness` of the photo's landmarks against the
    head's projected ones, in ``metrics["eye_openness"]``) loses its lids' confidence
    (:func:`~machlib.texture.eye_confidence`), so the photo's lowered lids and lashes are not
    painted around the head's open eyes.

    A brow of which at least 15 % of the texels are unseen (a heavy top rim, a fringe or a hand
    across it; with a mirrored layout, texels whose mirror texel is seen count as seen; the
    fractions, right and left, are ``metrics["brows_hidden"]``) is completed along its whole
    length: the template's stroked brow in the portrait's brow colour
    (:attr:`~machlib.texture.TextureCompletion.template`) is laid over it where it is darker than
    the albedo, so the photo's own darker hairs stay and a brow cut lengthwise by a rim does not
    become a strip of strokes under a strip of skin.

    Returns:
        A :class:`TextureOutput`.

    Raises:
        InputError: unknown make-up layers; an ``occlusion`` not of the portrait's size; or a
            texture, albedo or lighting that is not finite (no NaN leaves the stage).
    """
    import jax.numpy as jnp


    say = progress or (lambda _: None)
    config = config or TextureFitConfig()
    makeup = dict(makeup or {})
    unknown = set(makeup) - {"blush", "eye_shadow", "lipstick"}
    if unknown:
        raise InputError(f"unknown make-up layers {sorted(unknown)}; use blush, eye_shadow, lipstick")
    timings: dict = {}
    mesh, camera = fit.result.mesh, fit.result.camera
    height, width = fit.image.shape[:2]
    image = fit.image.astype(np.float32) / 255.0
    res = config.resolutions[-1]

    if occluded is None:
        occluded = _occlusion(fit.image, fit.landmarks, occlusion=occlusion, glasses=glasses, hair=hair, skin=skin,
                              mouth=mouth, progress=progress, owner="texture_portrait")
    elif not (isinstance(occluded, PortraitOcclusion) and np.shape(occluded.hidden) == (height, width)):
        raise InputError(f"texture_portrait: occluded must be the portrait's PortraitOcclusion "
                         f"(portrait_occlusion(fit.image, fit.landmarks)), got {type(occluded).__name__}")
    timings.update(occluded.timings)
    hidden, oval, hm, found = occluded.hidden, occluded.oval, occluded.hair, occluded.glasses
    not_skin_out = occluded.not_skin
    not_skin = np.zeros_like(hidden) if not_skin_out is None else not_skin_out
    avoid = np.maximum(hidden, not_skin)

    say("texture: rasterize")
    t = time.perf_counter()
    # the face's skin that the photo shows: the face oval less what hides it
    fmask = oval * (1.0 - avoid)
    problem, rast = texture_problem(image, mesh, camera, face_mask=fmask)
    lip_uv = None
    if mouth:  # the photo's lips where the head has skin (a laugh's thin upper lip): a red band otherwise
        from .render import interpolate

        pixel_uv = np.asarray(interpolate(np.asarray(mesh.uv, np.float32), rast, np.asarray(mesh.faces_uv, np.int32)))
        covered = np.asarray(rast.triangle) >= 0
        # an open mouth's lips by their landmarks: the head's expressions do not follow a laugh's
        # (not on a profile, nor a smile's teeth over lips that the head already puts in place)
        if _mouth_map_wanted(image, fit.landmarks, fit.template, camera, pixel_uv, covered):
            lip_uv = _mouth_uv(fit.landmarks, fit.template, pixel_uv, covered)
        if lip_uv is not None:
            lip_uv, squeezed = lip_uv
            avoid = np.maximum(avoid, squeezed)
            fmask = oval * (1.0 - avoid)
        teeth = None
        points = np.asarray(fit.landmarks.points)[:, :2]
        if lip_uv is None and points.shape[0] >= 468 and _mouth_open(points):
            # the head's own coordinates: a smile's teeth in the photo's lip band are no lip
            teeth = _band_teeth(image, points)
            if teeth.any():
                hidden, avoid = np.maximum(hidden, teeth), np.maximum(avoid, teeth)
                fmask = oval * (1.0 - avoid)
        off = _lips_off_mouth(image, fit.landmarks, fit.template, pixel_uv if lip_uv is None else lip_uv, covered,
                              oval, avoid)
        if off.any():
            hidden, avoid = np.maximum(hidden, off), np.maximum(avoid, off)
            fmask = oval * (1.0 - avoid)
        if off.any() or lip_uv is not None or (teeth is not None and teeth.any()):
            problem, rast = texture_problem(image, mesh, camera, face_mask=fmask, uv_map=lip_uv)
    timings["rasterize"] = time.perf_counter() - t

    say("texture: fit " + "→".join(str(r) for r in config.resolutions))
    result = fit_texture(problem, config=config)
    timings["compile"] = result.compile_seconds
    for r, s in zip(config.resolutions, result.level_seconds):
        timings[f"level_{r}"] = s
    raw = np.clip(result.texture, 0.0, 1.0)

    say("texture: visibility")
    t = time.perf_counter()
    seen = texel_visibility(mesh, camera, rast, res, pixel_mask=fmask)
    if lip_uv is not None:  # the head's lips are seen where the photo's that map onto them are
        seen = _mouth_seen(seen, fit.landmarks, fit.template, fmask)
    # confidence: a wide ramp from the face region's silhouette (blurred with hair and background,
    # seen edge-on), a narrow one around what hides the face inside it (a frame, a strand), so the
    # eyes and brows seen between a frame's rims keep the portrait's colour
    if avoid.max() > 0:
        open_face = texel_visibility(mesh, camera, rast, res, pixel_mask=oval)
        if lip_uv is not None:
            open_face = _mouth_seen(open_face, fit.landmarks, fit.template, oval)
        confidence = np.minimum(np.asarray(texel_confidence(open_face)),
                                np.asarray(texel_confidence(seen, edge=0.003)))
    else:
        confidence = np.asarray(texel_confidence(seen))
    # the portrait's eyes only where the geometry's eye opening agrees with the photo's: lowered
    # or closed lids painted around the head's open eyes leave lashes and lid shadow on the lids
    eyes = _eye_agreement(fit)
    if eyes is not None:
        confidence = np.asarray(eye_confidence(confidence, fit.template.landmark_uv, eyes["photo"], eyes["geometry"]))
    # a lip the open mouth stretches to a thin strip over the teeth (a laugh's upper lip): the
    # template's lip in the portrait's lip colour, not the strip's shadow spread over the whole lip
    own_lips = (False, False)
    if mouth and _lips_stretchable(fit):
        stretch = _lip_stretch(fit.landmarks, fit.template)
        confidence = np.asarray(lip_confidence(confidence, fit.template.landmark_uv, stretch,
                                               low=LIP_STRETCH[0], high=LIP_STRETCH[1]))
        own_lips = tuple(bool(s > LIP_STRETCH[0]) for s in stretch)  # those lips take their own colour
    # the texels the glasses' frames hid: completion fills them from the portrait's own texels
    # around them (the brow above a top rim, the lid below it), not from the template's features
    frames_uv = None
    if found is not None and found.present and float(np.max(found.mask)) > 0.5:
        from scipy import ndimage

        frames_uv = texel_visibility(mesh, camera, rast, res, pixel_mask=found.mask, min_cos=0.01) > 0.5
        # and the confidence ramp around them (texel_confidence(seen, edge=0.003) above)
        frames_uv = ndimage.binary_dilation(frames_uv, iterations=max(1, int(round(0.004 * res))))
        frames_uv = frames_uv.astype(np.float32)
    normals = normal_map(mesh, res)
    timings["visibility"] = time.perf_counter() - t

    say("texture: delight")
    t = time.perf_counter()
    error_prone = np.maximum.reduce([_template_region(fit.template, k, res) for k in ("eyes", "brows", "lips", "nostrils")])
    skin_weights = seen * (1.0 - error_prone)
    sh = delight_sh(raw, normals, skin_weights)
    lighting = sh.coeffs
    if delighter is None or delighter == "sh":
        delit, delighter_name = sh.albedo, "sh"
    elif delighter == "flax" or str(delighter).endswith(".json"):
        # the learned flax delighter: bundled weights, or a file of scripts/train_flax_delighter.py
        from .texture import delight_flax, load_flax_delighter

        model = load_flax_delighter(path=None if delighter == "flax" else delighter)
        delit = delight_flax(raw, normals, seen, model=model).albedo
        delighter_name = str(delighter)
        lighting = np.asarray(estimate_lighting(raw, normals, skin_weights, albedo=delit))
    else:
        from .interop import delight_learned, load_delighter

        delit = np.asarray(delight_learned(raw, load_delighter(delighter)), np.float32)
        delighter_name = str(delighter)
        lighting = np.asarray(estimate_lighting(raw, normals, skin_weights, albedo=delit))
    timings["delight"] = time.perf_counter() - t

    # the photo's sheen: out of the albedo, into the specular map (the radiance the camera saw:
    # the gloss times the shading delighting divided by)
    pbr_res = min(res, 512)
    rough_map, spec_map = region_pbr_maps(fit.template.regions, fit.template.landmark_uv, pbr_res)
    gloss, sheen_light = None, None
    if sheen:
        say("texture: sheen")
        t = time.perf_counter()
        gloss = np.asarray(sheen_layer(delit, skin_weights, sigma=SHEEN_SIGMA, threshold=SHEEN_THRESHOLD,
                                       brighter=SHEEN_BRIGHTER).gloss,
                           np.float32)
        shade = np.maximum(np.asarray(sh.shading, np.float32) @ np.asarray([0.2126, 0.7152, 0.0722], np.float32),
                           DELIGHT_FLOOR)
        radiance = _downsample(gloss * shade, pbr_res)
        positions, texel_normals = _texel_geometry(mesh, pbr_res)
        spec_map, _, sheen_light, given = sheen_specular_map(
            radiance, texel_normals, positions, np.asarray(_camera_centre(camera)), rough_map, spec_map,
            _downsample(seen, pbr_res), lights=(_sh_light_direction(lighting),),
            fit_weights=_downsample(skin_weights, pbr_res), prior=SHEEN_PRIOR)
        # out of the albedo goes only what the specular map gives back in the photo's view
        share = np.clip(given / np.maximum(radiance, 1e-6), 0.0, 1.0) * (radiance > 0)
        gloss = gloss * _upsample(share, res)
        delit = _remove_gloss(delit, gloss)
        timings["sheen"] = time.perf_counter() - t

    say("texture: complete")
    t = time.perf_counter()
    # keep what is seen (issue 15): per-texel confidence, the better-seen half mirrored
    completion = complete_texture(
        delit, seen > 0.5, landmarks_uv=fit.template.landmark_uv, template=fit.template,
        confidence=confidence, mirror=bool(fit.template.symmetric), inpaint=frames_uv, own_lips=own_lips, **makeup
    )
    # a brow the photo shows only in part (a heavy top rim, a fringe across it) gets the template's
    # strokes in the portrait's brow colour along its whole length, where they are darker
    # (a brow that only a frame hid was filled from its own hairs above the rim: not hidden here)
    brow_conf = confidence if frames_uv is None else np.maximum(confidence, frames_uv)
    albedo, brows_hidden = _complete_brows(jnp.asarray(completion.albedo, jnp.float32),
                                           jnp.asarray(completion.template, jnp.float32),
                                           jnp.asarray(brow_conf, jnp.float32),
                                           jnp.asarray(fit.template.landmark_uv, jnp.float32),
                                           mirror=bool(fit.template.symmetric))
    albedo = np.clip(np.asarray(albedo, np.float32), 0.0, 1.0)
    if lip_uv is not None:  # the head's mouth opening, which the photo never shows: dark, not the lips' colour
        albedo = _paint_mouth_opening(albedo, fit.template.landmark_uv)
    timings["complete"] = time.perf_counter() - t

    say("texture: render")
    t = time.perf_counter()
    args = (mesh.vertices, mesh.faces, mesh.uv, mesh.faces_uv)
    # sampled as the fit sampled it (config.filter), so the metrics measure the fit itself
    render_raw = np.asarray(render_textured(*args, jnp.asarray(raw), camera, filter=config.filter))
    render = np.asarray(render_textured(*args, jnp.asarray(albedo), camera, lighting=jnp.asarray(lighting),
                                        filter=config.filter))
    # the metrics compare skin the photo shows: hidden pixels and SSIM's window half-width (5 px)
    # around them are left out, or a removed frame would count against the albedo it was removed from
    compared = fmask
    if avoid.max() > 0:  # (the pixels whose colour is no skin count as hidden: the albedo no longer shows them)
        from scipy import ndimage

        compared = oval * ~ndimage.binary_dilation((hidden > 0.0) | (not_skin > 0.5), iterations=5)
    # the avatar's specular lobe (glTF's, with the GLB's own roughness and specular maps) under a
    # white light from the SH lighting's dominant direction, its irradiance fitted in closed form
    # to what the diffuse render leaves of the photo: relit = diffuse + specular, in linear RGB
    render_diffuse = render
    # and, where the photo shows a sheen, a second white light from the sheen's own direction (the
    # highlights lie at its mirror direction), both irradiances fitted together
    lights = [d for d in (_sh_light_direction(lighting), sheen_light) if d is not None]
    specular = {"light_direction": None, "irradiance": 0.0}
    if lights:
        lobes = [_specular_image(*args, camera, rast, rough_map, spec_map, d) for d in lights]
        lin = np.asarray(srgb_to_linear(jnp.asarray(render[..., :3])))
        irradiances = _fit_specular_irradiances(lobes, np.asarray(srgb_to_linear(jnp.asarray(image))) - lin,
                                                compared * (render[..., 3] > 0.999))
        glossy = sum(e * lobe for e, lobe in zip(irradiances, lobes))
        if max(irradiances) > 0:
            rgb = np.clip(np.asarray(linear_to_srgb(jnp.asarray(lin + glossy[..., None]))), 0.0, 1.0)
            render = np.concatenate([rgb, render[..., 3:]], -1).astype(np.float32)
        specular = {"light_direction": [round(float(x), 4) for x in lights[0]], "irradiance": round(irradiances[0], 4)}
        if len(lights) > 1:
            specular["sheen_light_direction"] = [round(float(x), 4) for x in lights[1]]
            specular["sheen_irradiance"] = round(irradiances[1], 4)
    metrics = {}
    for name, img in (("raw", render_raw), ("relit_albedo", render), ("relit_albedo_diffuse", render_diffuse)):
        mask = compared * (img[..., 3] > 0.999)
        metrics[name] = {
            "face_psnr_db": float(psnr(img[..., :3], image, mask=mask)),
            "face_ssim": float(ssim(img[..., :3], image, mask=mask)),
        }
    metrics["face_pixels"] = int(problem.uv.shape[0])
    metrics["specular"] = specular
    if eyes is not None:
        metrics["eye_openness"] = {k: [round(float(x), 3) for x in v] for k, v in eyes.items()}
    metrics["seen_texel_fraction"] = float((seen > 0.5).mean())
    metrics["brows_hidden"] = [round(float(x), 3) for x in np.asarray(brows_hidden)]
    # the skin tone of the albedo under a white light: the colour cast read from the eye whites
    # and teeth divided out (no prior: the skin's own colour is what is being measured)
    # (the shift that dividing it out gives the seen skin's ITA, added to the completion's ITA)
    light = light_from_eyes(fit.image, np.asarray(fit.landmarks.points))
    skin = np.asarray(completion.masks["skin"])
    shift = _balanced_ita(delit, skin, light.rgb) - _balanced_ita(delit, skin, np.ones(3))
    metrics["ita_degrees"] = float(completion.ita) + shift
    metrics["ita_degrees_unbalanced"] = float(completion.ita)
    metrics["light"] = {"rgb": [round(float(c), 4) for c in light.rgb], "sclera_pixels": light.sclera_pixels,
                        "teeth_pixels": light.teeth_pixels, "weight": round(light.weight, 3)}
    timings["render"] = time.perf_counter() - t
    check_finite("texture", raw_texture=result.texture, albedo=completion.albedo, lighting=lighting)
    masks = {**{k: np.asarray(v, np.float32) for k, v in completion.masks.items()}, "seen_weight": seen}
    return TextureOutput(raw, seen, np.asarray(sh.shading), np.asarray(lighting), np.asarray(delit), albedo, masks,
                         compared, render_raw, render, metrics, timings, delighter_name, found, hidden, hm,
                         not_skin_out, gloss, rough_map, spec_map)


#: The smallest shading :func:`~machlib.texture.delight_sh` divides by (its ``floor``).
DELIGHT_FLOOR = 0.35
#: :func:`~machlib.texture.sheen_layer`'s noise floor, low-pass width and brightness test in
#: :func:`texture_portrait`, and :func:`~machlib.texture.sheen_specular_map`'s prior weight
#: (measured on five portraits: ``docs/benchmarks/fidelity.md``, "The photo's sheen").
SHEEN_THRESHOLD = 0.15
SHEEN_SIGMA = 0.12
SHEEN_BRIGHTER = False
SHEEN_PRIOR = 0.05


def _fit_specular_irradiances(lobes: list, residual: np.ndarray, weights: np.ndarray) -> list:
    """Non-negative irradiances ``E_i`` of white lights whose lobes ``Σ E_i · lobe_i`` best explain
    ``residual`` (:func:`~machlib.texture._pbr._fit_specular_irradiance` for several lights: the
    joint least squares, or where it gives a light a negative irradiance, the best single one)."""
    if len(lobes) == 1:
        return [_fit_specular_irradiance(lobes[0], residual, weights)]
    w = np.asarray(weights, np.float64)
    r = np.asarray(residual, np.float64).sum(-1) / 3.0
    L = [np.asarray(lobe, np.float64) for lobe in lobes]
    A = np.array([[float(np.sum(w * a * b)) for b in L] for a in L])
    y = np.array([float(np.sum(w * a * r)) for a in L])
    try:
        E = np.linalg.solve(A + 1e-12 * np.trace(A) * np.eye(len(L)), y)
    except np.linalg.LinAlgError:
        E = np.full(len(L), -1.0)
    if (E >= 0).all():
        return [float(e) for e in E]
    best, out = None, [0.0] * len(L)
    for i in range(len(L)):
        e = _fit_specular_irradiance(lobes[i], residual, weights)
        gain = e * y[i]  # the squared error removed: 2 e y − e² A_ii = e y at the optimum
        if best is None or gain > best:
            best, out = gain, [0.0] * len(L)
            out[i] = e
    return out


def _upsample(x: np.ndarray, size: int) -> np.ndarray:
    """``(r, r)`` → ``(size, size)`` by nearest texel (``size`` a multiple of ``r``, else nearest index)."""
    r = x.shape[0]
    if r == size:
        return x
    idx = np.minimum(((np.arange(size) + 0.5) * r / size).astype(int), r - 1)
    return x[np.ix_(idx, idx)]


def _remove_gloss(albedo: np.ndarray, gloss: np.ndarray) -> np.ndarray:
    """The sRGB albedo less ``gloss`` (linear, white) per texel, computed only where it is > 0."""
    out = np.array(albedo, np.float32)
    sel = gloss > 0
    if sel.any():
        a = np.clip(out[sel].astype(np.float64), 0.0, 1.0)
        lin = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4) - gloss[sel][:, None]
        lin = np.clip(lin, 0.0, 1.0)
        out[sel] = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return out


def _downsample(x: np.ndarray, size: int) -> np.ndarray:
    """``(R, R, ...)`` → ``(size, size, ...)``: box means where ``size`` divides ``R``, else nearest."""
    x = np.asarray(x, np.float32)
    R = x.shape[0]
    if R == size:
        return x
    if R % size == 0:
        f = R // size
        return x.reshape((size, f, size, f) + x.shape[2:]).mean((1, 3))
    idx = np.minimum(((np.arange(size) + 0.5) * R / size).astype(int), R - 1)
    return x[np.ix_(idx, idx)]


def _texel_geometry(mesh: Mesh, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """``(positions, unit normals)``, each ``(R, R, 3)``, of a mesh laid out in its UV chart (numpy:
    :func:`~machlib.geometry.uv_raster`'s corners and barycentrics, area-weighted vertex normals)."""
    raster = uv_raster(mesh, resolution)
    v = np.asarray(mesh.vertices, np.float64)
    corners = np.asarray(raster.corners)
    bary = np.asarray(raster.bary, np.float64)
    pos = np.einsum("ijk,ijkc->ijc", bary, v[corners])
    n = np.einsum("ijk,ijkc->ijc", bary, _vertex_normals_np(v, np.asarray(mesh.faces, np.int64))[corners])
    n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
    return pos.astype(np.float32), n.astype(np.float32)


#: The band along the face oval's edge where :func:`texture_portrait` tests the colour of skin:
#: the full test within the first fraction of the face width from the edge, none beyond the second.
SKIN_TEST_BAND = (0.04, 0.08)


def _not_skin(image: np.ndarray, landmarks: Landmarks, oval: np.ndarray, hidden: np.ndarray,
              hm: HairMask | None) -> np.ndarray:
    """``(H, W)`` weights in ``[0, 1]`` of the face oval's pixels near its edge whose colour is no
    skin (``texture_portrait(skin=True)``).

    The skin model is taken over the oval less what hides it and less the features
    (:func:`_feature_pixels`); the hair of ``hm`` outside the oval (where present) is the other
    model (:func:`~machlib.texture.skin_confidence`). Only a band along the oval's edge
    (:data:`SKIN_TEST_BAND`) is tested: that is where hair, the shadow between jaw and hair and
    the background come in (and where the fitted head's silhouette misses the photo's), while
    the creases and shading inside the face are the portrait's own."""
    from scipy import ndimage

    height, width = oval.shape
    features = _feature_pixels(landmarks, (width, height))
    sure = oval * (1.0 - hidden) * (1.0 - features)
    if sure.sum() < 100:
        return np.zeros_like(oval)
    fw = max(float(np.ptp(np.asarray(landmarks.points)[face_oval()][:, 0])), 1.0)
    other = None
    if hm is not None:  # the hair beside the face (within 15 % of the face width): lit like the face's edge
        near = ndimage.binary_dilation(oval > 0.5, iterations=max(1, int(round(0.15 * fw))))
        hair_px = (np.asarray(hm.mask) > 0.5) & (oval < 0.5) & near
        if hair_px.sum() >= 100:
            other = hair_px.astype(np.float32)
    likely = np.asarray(skin_confidence(image, sure, other=other), np.float32)
    inward = ndimage.distance_transform_edt(oval > 0.5) / fw
    t = np.clip((inward - SKIN_TEST_BAND[0]) / (SKIN_TEST_BAND[1] - SKIN_TEST_BAND[0]), 0.0, 1.0)
    band = 1.0 - t * t * (3.0 - 2.0 * t)
    out = (oval * (1.0 - features) * band * (1.0 - likely)).astype(np.float32)
    if hm is not None:
        hair = np.asarray(hm.mask) > 0.5
        out = np.maximum(out, _strands_from_hair(hair, likely, (oval > 0.5) & (features < 0.5), fw,
                                                 mixed=_hair_mixture(image, hair, sure > 0.5, fw)))
    return out


#: Strands that fall from the hair across the face (``texture_portrait(skin=True)``): pixels whose
#: skin confidence is below the first value and that connect to the hair through such pixels, up
#: to the second value × the face width from it, are no skin.
HAIR_STRAND_TEST = (0.9, 0.15)

#: Hair blended into the skin at the face's edge (``texture_portrait(skin=True)``,
#: :func:`_hair_mixture`): pixels whose colour lies at least the first value of the way from the
#: local skin to the local hair (in CIELAB a*b*) and that reach the hair through such pixels, up
#: to the second value × the face width from the band that already hides the hair's edge (4 %
#: of it), are no skin; only where the hair is lighter than the skin by less than the third
#: value (L*) and differs from it in a*b* by more than the fourth.
HAIR_MIX_TEST = (0.3, 0.08, 40.0, 5.0)


def _hair_mixture(image: np.ndarray, hair: np.ndarray, skin: np.ndarray, fw: float) -> np.ndarray:
    """``(H, W)`` float32 share of the hair's colour in each pixel's, in CIELAB a*b*: the
    projection of the pixel's a*b* minus the local skin's onto the local hair's minus the local
    skin's (0 at the skin's colour, 1 at the hair's).

    The local skin is the Gaussian-weighted mean (σ 8 % of the face width ``fw``) of ``skin``
    (bool: the face's skin the photo shows) at least 10 % of the face width from ``hair`` (bool);
    the local hair that of ``hair`` eroded by 3 % of it (σ 6 %), its edge being blended with
    what it lies on. Chroma, not lightness: the skin's shading changes L* and hardly a*b*.
    0 where the hair is darker than the skin by :data:`HAIR_MIX_TEST` ``[2]`` or more in L*
    (the skin's colour model tells them apart, :func:`~machlib.texture.skin_confidence`, and
    shading would read as a blend) or their a*b* differ by less than ``[3]``, and where either
    is absent."""
    from scipy import ndimage

    from .texture._skin import _srgb_to_lab_np

    out = np.zeros(hair.shape, np.float32)
    core = ndimage.binary_erosion(hair, iterations=max(1, int(round(0.03 * fw))))
    skin = skin & (ndimage.distance_transform_edt(~hair) > 0.10 * fw)
    if not (core.any() and skin.any()):
        return out
    lab = _srgb_to_lab_np(image)

    def local(w, sigma):
        den = ndimage.gaussian_filter(w.astype(np.float64), sigma)
        num = np.stack([ndimage.gaussian_filter(lab[..., c] * w, sigma) for c in range(3)], -1)
        return num / np.maximum(den, 1e-9)[..., None], den > 1e-6

    hc, has_h = local(core, 0.06 * fw)
    sc, has_s = local(skin, 0.08 * fw)
    d = (hc - sc)[..., 1:]
    n2 = (d * d).sum(-1)
    ok = has_h & has_s & (n2 > HAIR_MIX_TEST[3] ** 2) & (sc[..., 0] - hc[..., 0] < HAIR_MIX_TEST[2])
    share = ((lab - sc)[..., 1:] * d).sum(-1) / np.maximum(n2, 1e-9)
    out[ok] = share[ok]
    return out


def _strands_from_hair(hair: np.ndarray, likely: np.ndarray, allowed: np.ndarray, fw: float, *,
                       mixed: np.ndarray | None = None) -> np.ndarray:
    """``(H, W)`` float32 mask of the strands that continue the hair (``hair``, bool) into the
    face: the pixels of ``allowed`` (the face oval off its features) whose skin confidence
    ``likely`` is below ``HAIR_STRAND_TEST[0]`` and that reach the hair through such
    pixels within ``HAIR_STRAND_TEST[1]`` × the face width ``fw`` (a geodesic growth
    from the hair), closed over 1 % of the face width (the strands' thin highlights between
    them, which read as skin by colour).

    Thin strands over the skin mix the two colours, so their pixels only lose part of the skin
    confidence, and red or blond strands are close to skin anyway; what gives them away is that
    they run on from the hair. Shading and creases inside the face do not touch the hair, and
    the skin beside the hair that reads as skin stops the growth.

    With ``mixed`` (the hair's share in each pixel's colour, :func:`_hair_mixture`), the pixels
    of ``allowed`` where it is at least ``HAIR_MIX_TEST[0]`` and that reach the hair's 4 % band
    (which :func:`portrait_occlusion` already hides) through such pixels within
    ``HAIR_MIX_TEST[1]`` × ``fw`` are no skin either: the edge of red or blond hair blended into
    the cheek, which the skin's colour model takes for skin (t1_face0's left cheek)."""
    from scipy import ndimage

    weak = allowed & (likely < HAIR_STRAND_TEST[0])
    blend = np.zeros(likely.shape, bool)
    if mixed is not None and hair.any():
        mix = allowed & (mixed >= HAIR_MIX_TEST[0])
        band = ndimage.binary_dilation(hair, iterations=max(1, int(round(0.04 * fw))))
        if mix.any():
            blend = ndimage.binary_dilation(band, mask=mix | band, iterations=max(1, int(round(HAIR_MIX_TEST[1] * fw))))
            blend &= ~band & allowed
    if not (hair.any() and weak.any()):
        return blend.astype(np.float32)
    grown = ndimage.binary_dilation(hair, mask=weak | hair, iterations=max(1, int(round(HAIR_STRAND_TEST[1] * fw))))
    grown &= ~hair
    close = max(1, int(round(0.01 * fw)))
    grown = ndimage.binary_closing(grown, iterations=close) & allowed
    return (grown | blend).astype(np.float32)


def _grown_polygons(points: np.ndarray, polygons, size: tuple[int, int], grow: float) -> np.ndarray:
    """``(H, W)`` float32 mask of the landmark polygons (index sequences into ``points``), filled
    and grown by ``grow`` × the face width (the face oval's horizontal extent)."""
    from scipy import ndimage

    mask = _filled_polygons(points, polygons, size)
    fw = float(np.ptp(points[face_oval()][:, 0]))
    return ndimage.binary_dilation(mask, iterations=max(1, int(round(grow * fw)))).astype(np.float32)


def _filled_polygons(points: np.ndarray, polygons, size: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool mask of the landmark polygons (index sequences into ``points``), filled."""
    from skimage.draw import polygon

    width, height = size
    mask = np.zeros((height, width), bool)
    for poly in polygons:
        p = points[list(poly)]
        rr, cc = polygon(p[:, 1] - 0.5, p[:, 0] - 0.5, shape=(height, width))
        mask[rr, cc] = True
    return mask


def _feature_pixels(landmarks: Landmarks, size: tuple[int, int], *, grow: float = 0.03) -> np.ndarray:
    """``(H, W)`` float32 mask of the face's features in the photo: the landmarks' lid, brow,
    nostril and outer lip polygons, grown by ``grow`` × the face width (lashes, brow hairs and
    the lip line around them)."""
    from .texture._regions import LIPS_OUTER, RIGHT_BROW, RIGHT_EYE, RIGHT_NOSTRIL, mirrored

    pts = np.asarray(landmarks.points)[:, :2]
    if pts.shape[0] < 468:
        return np.zeros((size[1], size[0]), np.float32)
    polys = [q for idx in (RIGHT_EYE, RIGHT_BROW, RIGHT_NOSTRIL) for q in (idx, mirrored(idx))]
    return _grown_polygons(pts, polys + [LIPS_OUTER], size, grow)


#: The mouth opening (inner lips' gap at the centre over the inner corners' distance) from which
#: :func:`texture_portrait` treats the photo's mouth interior as hidden.
MOUTH_OPEN = 0.03


def _mouth_interior(landmarks: Landmarks, size: tuple[int, int], *, grow: float = 0.01) -> np.ndarray:
    """``(H, W)`` float32 mask of an open mouth's interior in the photo: the inner lip polygon
    (FaceMesh ``LIPS_INNER``), grown by ``grow`` × the face width (the teeth's edge against the
    lips), when the gap between the inner lips' centres (landmarks 13, 14) is at least
    :data:`MOUTH_OPEN` of the inner corners' distance (78, 308); zeros for a closed mouth (its
    lip line is the portrait's own) or landmarks without the FaceMesh lips."""
    pts = np.asarray(landmarks.points)[:, :2]
    if pts.shape[0] < 468 or not _mouth_open(pts):
        return np.zeros((size[1], size[0]), np.float32)
    return _grown_polygons(pts, [LIPS_INNER], size, grow)


def _mouth_open(pts: np.ndarray) -> bool:
    """Whether the photo's mouth is open: the gap between the inner lips' centres (FaceMesh
    landmarks 13, 14) is at least :data:`MOUTH_OPEN` of the inner corners' distance (78, 308)."""
    gap = float(np.linalg.norm(pts[13] - pts[14]))
    span = float(np.linalg.norm(pts[78] - pts[308]))
    return gap >= MOUTH_OPEN * max(span, 1e-6)


#: The zone around the photo's mouth (the outer lip polygon grown by this fraction of the face
#: width) whose lip-coloured pixels :func:`texture_portrait` checks against the head's lips.
LIP_ZONE = 0.05


def _lips_off_mouth(image: np.ndarray, landmarks: Landmarks, template: Template, pixel_uv: np.ndarray,
                    covered: np.ndarray, oval: np.ndarray, avoid: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 0/1 mask of an open mouth's lip-coloured pixels above it that the fitted
    head shows as skin (``texture_portrait(mouth=True)``): :func:`~machlib.texture.lip_misfit`
    ``> 0.5`` of the pixels' texture coordinates ``pixel_uv`` (``(H, W, 2)``, where ``covered``).

    Lipness: within :data:`LIP_ZONE` of the photo's outer lip polygon, above the inner upper lip
    contour and off the nostrils, how much better a robust CIELAB model of the photo's lips (the
    landmarks' outer lip polygon less the inner one and what hides it, ``avoid``) explains a
    pixel's colour than the model of the face's skin (:func:`~machlib.texture.skin_confidence`
    with ``other=``, its likelihood ratio only). On a wide laugh (t1_face3) the landmarks put
    the thin, stretched upper lip's border 3-5 px low and the fit follows them, so the head's
    skin 3-10 mm above its lips was read from the photo's red lip (mean CIELAB a* 32 there
    against 19 on the cheeks): a moustache on the neutral head. Only for an open mouth
    (:data:`MOUTH_OPEN`, as :func:`_mouth_interior`) and only above it: a closed mouth's lip
    line, and the shadow under the lower lip (as lip-red as the lips: t1_face2), are the
    portrait's own. Zeros otherwise, where the lips are too few to model, or for landmarks or a
    template without the FaceMesh lips."""
    from .texture._regions import RIGHT_NOSTRIL, mirrored

    height, width = oval.shape
    empty = np.zeros((height, width), np.float32)
    pts = np.asarray(landmarks.points)[:, :2]
    lm_uv = getattr(template, "landmark_uv", None)
    if pts.shape[0] < 468 or lm_uv is None or np.shape(lm_uv)[0] < 478:
        return empty

    if not _mouth_open(pts):
        return empty  # a closed mouth: its lip line is the portrait's own
    clear = avoid < 0.5
    lips = (_filled_polygons(pts, [LIPS_OUTER], (width, height))
            & ~_filled_polygons(pts, [LIPS_INNER], (width, height)) & clear)
    skin = (oval > 0.5) & clear & (_feature_pixels(landmarks, (width, height)) < 0.5)
    if lips.sum() < 30 or skin.sum() < 100:
        return empty
    # the likelihood ratio alone (the distance test is off): lip-red against skin, not "odd colour"
    conf = np.asarray(skin_confidence(image, skin.astype(np.float32), other=lips.astype(np.float32),
                                      low=1e3, high=1e3 + 1.0))
    nostrils = _grown_polygons(pts, [RIGHT_NOSTRIL, mirrored(RIGHT_NOSTRIL)], (width, height), 0.01)
    # above the open mouth only (the upper lip, stretched thin, is what the landmarks miss; the
    # lower lip's shadow below it is lip-red too, and the portrait's own)
    upper = pts[list(LIPS_INNER[:11])]
    order = np.argsort(upper[:, 0])
    line = np.interp(np.arange(width) + 0.5, upper[order, 0], upper[order, 1])
    above = (np.arange(height)[:, None] + 0.5) < line[None, :]
    zone = _grown_polygons(pts, [LIPS_OUTER], (width, height), LIP_ZONE) * (1.0 - nostrils) * above
    lipness = (1.0 - conf) * zone * covered * clear
    w = np.asarray(lip_misfit(lipness.astype(np.float32), np.asarray(pixel_uv, np.float32),
                              np.asarray(lm_uv, np.float32)))
    return (w > 0.5).astype(np.float32)


#: :func:`_mouth_map_wanted`: the head's yaw (degrees, either way) beyond which an open mouth's
#: lips keep the fitted head's texture coordinates. FaceMesh's lip contours on a three-quarter
#: profile (t1_face4, 49°) follow the far lip's foreshortened edge loosely: the map spread the
#: near lip's highlight and the far corner's shadow over the head's lips (paler and patchier).
MOUTH_MAP_YAW = 35.0

#: :func:`_mouth_map_wanted`: the fraction of the photo's lip band (:func:`_pale_lip_band`)
#: paler than its lips from which the band is read as mostly teeth (a smile).
MOUTH_MAP_PALE = 0.3

#: :func:`_mouth_map_wanted`: the median distance (UV units) between the template's inner lip
#: landmarks and the fitted head's texture coordinates at the photo's from which the head's lips
#: are misplaced (t1_face3's laugh: 0.042; t1_face5's smile, t1_face2, the astronaut: 0.019-0.021).
MOUTH_MAP_MISPLACED = 0.03


def _pale_band_pixels(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(band, pale)``: ``(H, W)`` bool masks of an open mouth's lip band in the photo ``image``
    (``(H, W, 3)`` sRGB in ``[0, 1]``; the band between the landmarks' ``points``' outer and
    inner lip polygons) and of its pixels much paler than its lips: CIELAB L* more than 12 above
    and a* more than 6 below the median of the band's redder 40 % (by a*, the lips). ``pale`` is
    empty where the band is under 30 pixels."""
    from skimage.color import rgb2lab

    height, width = image.shape[:2]
    band = (_filled_polygons(points, [LIPS_OUTER], (width, height))
            & ~_filled_polygons(points, [LIPS_INNER], (width, height)))
    pale = np.zeros_like(band)
    if band.sum() < 30:
        return band, pale
    lab = rgb2lab(np.clip(np.asarray(image, np.float64)[band], 0.0, 1.0)[None])[0]
    ref = np.median(lab[lab[:, 1] >= np.percentile(lab[:, 1], 60)], 0)
    pale[band] = (lab[:, 0] > ref[0] + 12.0) & (lab[:, 1] < ref[1] - 6.0)
    return band, pale


def _pale_lip_band(image: np.ndarray, points: np.ndarray) -> float:
    """The fraction of an open mouth's lip band in the photo that is much paler than its lips
    (:func:`_pale_band_pixels`). On a smile the band holds the teeth that FaceMesh's inner
    contour runs across and the lit, thin lip (t1_face5: 0.39; t1_face3's laugh 0.26, t1_face2
    0.13, the astronaut 0.08); 0 where the band is under 30 pixels."""
    band, pale = _pale_band_pixels(image, points)
    return float(pale.sum() / band.sum()) if pale.any() else 0.0


def _band_teeth(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 0/1 mask of the teeth in an open mouth's lip band in the photo: its
    pixels much paler than its lips (:func:`_pale_band_pixels`) in the regions that touch the
    inner lip polygon (a smile's lower teeth below FaceMesh's inner contour, which runs across
    them: t1_face5). A lit lip away from the opening is not among them."""
    from scipy import ndimage

    height, width = image.shape[:2]
    band, pale = _pale_band_pixels(image, points)
    if not pale.any():
        return np.zeros((height, width), np.float32)
    inner = _filled_polygons(points, [LIPS_INNER], (width, height))
    labels, _ = ndimage.label(pale | ndimage.binary_dilation(inner, iterations=1))
    touching = np.unique(labels[inner])
    return (np.isin(labels, touching[touching > 0]) & pale).astype(np.float32)


def _mouth_map_wanted(image: np.ndarray, landmarks: Landmarks, template: Template, camera,
                      pixel_uv: np.ndarray, covered: np.ndarray) -> bool:
    """Whether :func:`_mouth_uv` maps an open mouth's lips by their landmarks
    (``texture_portrait(mouth=True)``): not when the head turns more than :data:`MOUTH_MAP_YAW`
    from the camera, nor when the photo's lip band is mostly paler than its lips
    (:func:`_pale_lip_band` at least :data:`MOUTH_MAP_PALE`: a smile's teeth) while the fitted
    head's lips already land on the photo's (:data:`MOUTH_MAP_MISPLACED`). There the map only
    moves the band's teeth and lit lip onto the head's lips (t1_face5: a pale, undefined lower
    lip and half an upper lip, no lip line), where the head's own coordinates leave them hidden
    and the template's lips are painted in the photo's lip colour. A laugh whose fitted lips lie
    over the photo's teeth (t1_face3) is mapped whatever its band. Without the map
    ``texture_portrait`` hides the band's teeth (:func:`_band_teeth`)."""
    from ._camera import head_pose

    pts = np.asarray(landmarks.points)[:, :2]
    lm_uv = getattr(template, "landmark_uv", None)
    if pts.shape[0] < 468 or lm_uv is None or np.shape(lm_uv)[0] < 478 or not _mouth_open(pts):
        return False
    if abs(float(np.asarray(head_pose(camera))[0])) > MOUTH_MAP_YAW:
        return False
    if _pale_lip_band(image, pts) < MOUTH_MAP_PALE:
        return True
    height, width = covered.shape
    inner = pts[list(LIPS_INNER)]
    col = np.clip(np.floor(inner[:, 0]).astype(int), 0, width - 1)
    row = np.clip(np.floor(inner[:, 1]).astype(int), 0, height - 1)
    ok = covered[row, col]
    if ok.sum() < 3:
        return True
    off = np.linalg.norm(np.asarray(pixel_uv)[row[ok], col[ok]] - np.asarray(lm_uv)[list(LIPS_INNER)][ok], axis=1)
    return float(np.median(off)) >= MOUTH_MAP_MISPLACED


#: The band outside the photo's outer lip contour (this fraction of the face width) over which
#: :func:`_mouth_uv` fades its landmark-guided texture coordinates into the mesh's.
LIP_UV_RING = 0.08

#: The ring's pixels where :func:`_mouth_uv`'s map covers less than this fraction of the UV area
#: that the mesh's does (squeezed or folded) are left out of the texture fit.
LIP_UV_SQUEEZE = 0.3


def _mouth_triangles() -> np.ndarray:
    """``(60, 3)`` triangles over the lip landmarks: the band between the outer and inner lip
    contours (the first 40: two per pair of corresponding points of :data:`LIPS_OUTER` and
    :data:`LIPS_INNER`), then a fan over the opening. Indices into the stacked points
    ``[outer (20), inner (20), centre of the inner contour (1)]``."""
    n = len(LIPS_OUTER)
    tris = []
    for i in range(n):
        j = (i + 1) % n
        tris += [(i, j, n + j), (i, n + j, n + i)]
    return np.asarray(tris + [(n + i, n + (i + 1) % n, 2 * n) for i in range(n)], np.int64)


def _mouth_points(points: np.ndarray, visible: float = 0.0) -> np.ndarray:
    """``(41, 2)`` the lip contours' points and the opening's centre (:func:`_mouth_triangles`).

    ``visible`` > 0 (pixels): the inner contour's points move that far towards their outer
    points (at most 3/4 of the way), to the edge of the photo's lips that the mouth's hidden
    interior (:func:`_mouth_interior`, grown by as much) leaves: the lips' band seen in the
    photo then maps onto the whole of the head's, not only onto its outer part."""
    outer, inner = points[list(LIPS_OUTER)].astype(np.float64), points[list(LIPS_INNER)].astype(np.float64)
    if visible > 0:
        gap = np.linalg.norm(outer - inner, axis=1, keepdims=True)
        inner = inner + (outer - inner) * np.minimum(visible / np.maximum(gap, 1e-9), 0.75)
    return np.concatenate([outer, inner, inner.mean(0, keepdims=True)])


def _piecewise_affine(src: np.ndarray, dst: np.ndarray, tris: np.ndarray, box: tuple[int, int, int, int]) -> tuple:
    """Map the pixel centres of ``box`` (``(x0, y0, x1, y1)``, row by row) through the triangles
    ``tris`` from ``src`` to ``dst`` (``(N, 2)`` points each): ``(mapped (Q, 2), triangle (Q,))``,
    the index into ``tris`` of the triangle that holds each centre (the lowest where several do;
    ``-1`` in none, ``mapped`` 0 there). The triangles are rasterized over the box
    (:func:`~machlib._raster.rasterize_np`, degenerate ones skipped) and ``dst`` interpolated with
    the barycentric weights."""
    x0, y0, x1, y1 = box
    tri, bary = rasterize_np(np.asarray(src, np.float64) - [x0, y0], tris, (x1 - x0, y1 - y0))
    tri, bary = tri.reshape(-1), bary.reshape(-1, 3)
    hit = tri >= 0
    mapped = np.zeros((tri.size, 2), np.float64)
    mapped[hit] = np.einsum("qk,qkc->qc", bary[hit], np.asarray(dst, np.float64)[np.asarray(tris)[tri[hit]]])
    return mapped, tri


def _mouth_uv(landmarks: Landmarks, template: Template, pixel_uv: np.ndarray,
              covered: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(uv, squeezed)``: ``(H, W, 2)`` texture coordinates of the portrait's pixels with an
    open mouth's lips mapped by their landmarks (``texture_portrait(mouth=True)``) and the
    ``(H, W)`` float32 0/1 mask of the ring's pixels that it squeezes onto too few texels
    (:data:`LIP_UV_SQUEEZE`), to leave out; ``None`` for a closed mouth (:data:`MOUTH_OPEN`)
    or landmarks or a template without the FaceMesh lips.

    Inside the photo's outer lip contour a pixel's texture coordinate is the piecewise-affine
    map (:func:`_mouth_triangles`) from the detected lip landmarks to the template's
    ``landmark_uv``: the photo's lips land on the head's lips, its opening in the head's. The
    fitted head's expressions do not follow a laugh's lips: on t1_face3 its upper lip is drawn
    thick and low over the photo's upper teeth (the pixels at the photo's inner upper lip show
    the head's lip 25-40 texels above its inner contour), so the teeth mapped onto the head's
    upper lip (hidden, it took the template's painted lip) and the photo's thin upper lip onto
    the skin above it. Outside the contour, within :data:`LIP_UV_RING` of the face width, the
    mesh's coordinates take the landmarks' offset at the outer contour (inverse-distance
    weighted over its points), fading out smoothly, so the map stays continuous."""
    from scipy import ndimage

    pts = np.asarray(landmarks.points)[:, :2]
    lm_uv = getattr(template, "landmark_uv", None)
    if pts.shape[0] < 468 or lm_uv is None or np.shape(lm_uv)[0] < 478 or not _mouth_open(pts):
        return None
    lm_uv = np.asarray(lm_uv, np.float64)
    height, width = covered.shape
    fw = max(float(np.ptp(pts[face_oval()][:, 0])), 1.0)
    ring = max(1.0, LIP_UV_RING * fw)
    src, dst = _mouth_points(pts, visible=0.01 * fw), _mouth_points(lm_uv)
    lo = np.floor(src.min(0) - ring - 2).astype(int)
    hi = np.ceil(src.max(0) + ring + 2).astype(int)
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], width), min(hi[1], height)
    if x1 <= x0 or y1 <= y0:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1]
    query = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], 1).astype(np.float64)
    mapped, tri = _piecewise_affine(src, dst, _mouth_triangles(), (int(x0), int(y0), int(x1), int(y1)))
    inside = (tri >= 0).reshape(yy.shape)
    out = np.array(pixel_uv, np.float32, copy=True)
    box = out[y0:y1, x0:x1]
    cov = covered[y0:y1, x0:x1]
    # the offset between the landmarks' and the mesh's coordinates at the outer contour's points
    outer = src[: len(LIPS_OUTER)]
    col = np.clip(np.floor(outer[:, 0]).astype(int), 0, width - 1)
    row = np.clip(np.floor(outer[:, 1]).astype(int), 0, height - 1)
    ok = covered[row, col]
    if ok.sum() >= 3:
        delta = dst[: len(LIPS_OUTER)][ok] - pixel_uv[row[ok], col[ok]]
        dist = ndimage.distance_transform_edt(~inside)
        t = np.clip(1.0 - dist / ring, 0.0, 1.0)
        fade = t * t * (3.0 - 2.0 * t)
        near = (fade > 0) & ~inside & cov
        q = query.reshape(yy.shape + (2,))[near]
        w = 1.0 / (np.sum((q[:, None, :] - outer[ok][None]) ** 2, -1) + 1.0)
        box[near] += (fade[near][:, None] * (w @ delta) / w.sum(1, keepdims=True)).astype(np.float32)
    put = inside & cov
    box[put] = mapped.reshape(yy.shape + (2,))[put].astype(np.float32)
    # where the ring squeezes the mesh's map (an offset that changes faster than the ring fades
    # it: t1_face3's far mouth corner, hidden behind the fitted smile's cheek, is 60 texels off)
    # its pixels pile up on a few texels: they are left out (a speckle of the corner's shadow)
    def jacobian(m):
        d_row, d_col = np.gradient(m.astype(np.float64), axis=(0, 1))
        return d_col[..., 0] * d_row[..., 1] - d_col[..., 1] * d_row[..., 0]

    ratio = jacobian(box) / np.where(np.abs(jacobian(pixel_uv[y0:y1, x0:x1])) > 1e-12,
                                     jacobian(pixel_uv[y0:y1, x0:x1]), np.inf)
    folded = np.zeros((height, width), np.float32)
    folded[y0:y1, x0:x1] = (~inside & cov & (box != pixel_uv[y0:y1, x0:x1]).any(-1)
                            & (ratio < LIP_UV_SQUEEZE)).astype(np.float32)
    return out, folded


def _mouth_seen(seen: np.ndarray, landmarks: Landmarks, template: Template, pixel_mask: np.ndarray) -> np.ndarray:
    """``(R, R)`` texel weights ``seen`` (:func:`~machlib.texture.texel_visibility`) with the
    head's lips as :func:`_mouth_uv` maps the photo's onto them: a texel inside the template's
    outer lip contour is seen as much as the photo's pixel that maps onto it (``pixel_mask``,
    ``(H, W)``, nearest pixel, its maximum within the inner points' move), instead of the
    mesh's surface point there."""
    from scipy import ndimage

    pts = np.asarray(landmarks.points)[:, :2]
    lm_uv = np.asarray(template.landmark_uv, np.float64)
    R = seen.shape[0]
    height, width = pixel_mask.shape
    fw = max(float(np.ptp(pts[face_oval()][:, 0])), 1.0)
    src, dst = _mouth_points(lm_uv) * R, _mouth_points(pts, visible=0.01 * fw)
    lo, hi = np.floor(src.min(0)).astype(int), np.ceil(src.max(0)).astype(int)
    x0, y0, x1, y1 = max(lo[0], 0), max(lo[1], 0), min(hi[0] + 1, R), min(hi[1] + 1, R)
    out = np.array(seen, np.float32, copy=True)
    if x1 <= x0 or y1 <= y0:
        return out
    shape = (y1 - y0, x1 - x0)
    mapped, tri = _piecewise_affine(src, dst, _mouth_triangles(), (int(x0), int(y0), int(x1), int(y1)))
    inside = tri >= 0
    col = np.clip(np.floor(mapped[:, 0]).astype(int), 0, width - 1)
    row = np.clip(np.floor(mapped[:, 1]).astype(int), 0, height - 1)
    # within the moved distance of a seen pixel counts: the inner points stand where the hidden
    # interior's edge is on average, and its staircase would comb the thin upper lip's texels
    near = ndimage.maximum_filter(np.asarray(pixel_mask, np.float32), size=2 * int(np.ceil(0.01 * fw)) + 1)
    # (the opening's texels, the fan after the band's 40 triangles, keep the photo's hidden interior)
    band = inside & (tri < 2 * len(LIPS_OUTER))
    mask = np.asarray(pixel_mask, np.float32)
    value = np.where(band, near[row, col], np.where(inside, mask[row, col], 0.0)).reshape(shape)
    box = out[y0:y1, x0:x1]
    box[inside.reshape(shape)] = value[inside.reshape(shape)]
    return out


def _lips_stretchable(fit: FitOutput) -> bool:
    """Whether :func:`_lip_stretch` applies: an open mouth (:data:`MOUTH_OPEN`) in FaceMesh
    landmarks, on a template with the 478 landmarks in UV."""
    pts = np.asarray(fit.landmarks.points)[:, :2]
    lm_uv = getattr(fit.template, "landmark_uv", None)
    return pts.shape[0] >= 468 and lm_uv is not None and np.shape(lm_uv)[0] >= 478 and _mouth_open(pts)


#: The lip stretch (:func:`_lip_stretch`) from which :func:`~machlib.texture.lip_confidence`
#: starts to distrust a lip, and at which it drops it (a laugh's upper lip: t1_face3 4.8, t1_face2
#: 4.3; a lip seen normally, or foreshortened in profile: 1.0-2.4, t1_face4 1.8). A lip past the
#: first takes its own texels' colour in the completion (``complete_texture(own_lips=)``).
LIP_STRETCH = (2.5, 3.5)


def _lip_stretch(landmarks: Landmarks, template: Template) -> np.ndarray:
    """``(2,)`` how much :func:`_mouth_uv`'s map magnifies the photo's upper and lower lip
    (:func:`_mouth_points` with the same ``visible``) beyond the face as a whole: each lip's area
    in UV over its area in the photo, divided by the squared ratio of the face oval's widths
    (UV over pixels). About 1 where the photo's lip is as thick as the template's for its face;
    a laugh's upper lip, a thin strip over the teeth, is stretched several times over its
    height (t1_face3: 4.8 upper, 1.3 lower; t1_face2 4.3, 1.0; t1_face5 1.5, 1.0)."""
    pts = np.asarray(landmarks.points)[:, :2].astype(np.float64)
    lm_uv = np.asarray(template.landmark_uv, np.float64)
    oval = face_oval()
    fw = max(float(np.ptp(pts[oval][:, 0])), 1.0)
    fw_uv = max(float(np.ptp(lm_uv[oval][:, 0])), 1e-9)
    src, dst = _mouth_points(pts, visible=0.01 * fw), _mouth_points(lm_uv)
    tris = _mouth_triangles()[: 2 * len(LIPS_OUTER)]
    half = len(LIPS_OUTER) // 2  # pairs 0..9: the upper lip (61 → 291 along the top), the rest the lower

    def area(p, t):
        a, b, c = p[t[:, 0]], p[t[:, 1]], p[t[:, 2]]
        return np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])) / 2

    out = []
    for part in (tris[: 2 * half], tris[2 * half:]):
        ratio = area(dst, part).sum() / max(area(src, part).sum(), 1e-9)
        out.append(ratio / (fw_uv / fw) ** 2)
    return np.asarray(out, np.float32)


#: :func:`_paint_mouth_opening`'s shade: the opening's colour over the mean of the lips around it.
MOUTH_OPENING_SHADE = 0.6


def _paint_mouth_opening(albedo: np.ndarray, landmark_uv: np.ndarray) -> np.ndarray:
    """``(R, R, 3)`` albedo with the head's mouth opening (inside the template's inner lip
    contour, an edge of one texel) in the mean colour of the lips' texels within 1 % of the
    image around it times :data:`MOUTH_OPENING_SHADE` (``texture_portrait(mouth=True)``, for
    an open mouth whose lips :func:`_mouth_uv` mapped).

    The photo never shows the neutral head's opening (its interior is hidden), and with the
    lips seen around it the completion continued their colour into it: a pale slit between
    the closed lips that read as teeth (t1_face3), where the template's lips had a dark one."""
    from scipy import ndimage

    R = albedo.shape[0]
    poly = np.asarray(landmark_uv, np.float64)[list(LIPS_INNER)] * R
    lo = np.maximum(np.floor(poly.min(0)).astype(int) - 16, 0)
    hi = np.minimum(np.ceil(poly.max(0)).astype(int) + 16, R)
    yy, xx = np.mgrid[lo[1]:hi[1], lo[0]:hi[0]]
    inside = _filled_polygons(poly - lo, [tuple(range(len(LIPS_INNER)))], (int(hi[0] - lo[0]), int(hi[1] - lo[1])))
    if not inside.any():
        return albedo
    ring = ndimage.binary_dilation(inside, iterations=max(1, int(round(0.01 * R)))) & ~inside
    box = albedo[lo[1]:hi[1], lo[0]:hi[0]]
    colour = box[ring].mean(0) * MOUTH_OPENING_SHADE
    w = np.clip(ndimage.gaussian_filter(inside.astype(np.float32), 1.0) * inside, 0.0, 1.0)[..., None]
    out = np.array(albedo, np.float32, copy=True)
    out[lo[1]:hi[1], lo[0]:hi[0]] = box + w * (colour - box)
    return out


def _eye_agreement(fit: FitOutput) -> dict | None:
    """The photo's and the fitted head's :func:`~machlib.texture.eye_openness` (right, left), the
    head's landmarks as the fit projected them (detected + residuals); ``None`` for templates
    other than the human's or landmarks without the FaceMesh eyes."""
    points = np.asarray(fit.landmarks.points)
    if getattr(fit.template, "human", None) is None or points.shape[0] < 468:
        return None
    projected = points[:, :2] + np.asarray(fit.result.residuals)
    return {"photo": np.asarray(eye_openness(points[:, :2]), np.float32),
            "geometry": np.asarray(eye_openness(projected), np.float32)}


def _balanced_ita(srgb: np.ndarray, weights: np.ndarray, light: np.ndarray) -> float:
    """ITA (degrees) of the weighted robust mean CIELAB colour of an sRGB albedo lit by
    ``light`` (mean-1 linear RGB), once the light's colour is divided out."""
    from skimage.color import rgb2lab

    w = np.asarray(weights, np.float64)
    sel = w > 0  # only the weighted texels, the seen skin: a fifth to a third of the albedo
    w = w[sel]
    s = np.clip(np.asarray(srgb, np.float64)[sel], 0.0, 1.0)
    lin = np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4) / (np.asarray(light) / np.mean(light))
    lin = np.clip(lin, 0.0, 1.0)
    lab = rgb2lab(np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055))
    mean = (lab * w[:, None]).sum(0) / max(w.sum(), 1e-12)
    for _ in range(2):  # down-weight outliers (stubble, specular spots), like complete_texture
        sd = np.sqrt((((lab - mean) ** 2) * w[:, None]).sum(0) / max(w.sum(), 1e-12)) + 1e-6
        ww = w * np.exp(-0.5 * (((lab - mean) / (1.5 * sd)) ** 2).sum(-1))
        mean = (lab * ww[:, None]).sum(0) / max(ww.sum(), 1e-12)
    return float(np.degrees(np.arctan2(mean[0] - 50.0, mean[2])))


def relit_image(fit: FitOutput, tex: TextureOutput, *, size: int = 384) -> np.ndarray:
    """Two views (front, three-quarter) × the three :data:`RELIGHT_PRESETS`, as one uint8 image."""
    import jax.numpy as jnp


    mesh = fit.result.mesh
    rows = []
    for yaw in (0.0, 40.0):
        cam = orbit_camera(yaw, image_size=(size, size), distance=0.95)
        row = []
        for direction, color, ambient in RELIGHT_PRESETS.values():
            coeffs = sh_directional(jnp.asarray(direction, jnp.float32), jnp.asarray(color, jnp.float32), ambient=ambient)
            rgba = np.asarray(render_textured(mesh.vertices, mesh.faces, mesh.uv, mesh.faces_uv,
                                              jnp.asarray(tex.albedo), cam, lighting=coeffs))
            bg = np.full(rgba.shape[:2] + (3,), 0.16, np.float32)
            row.append(rgba[..., :3] * rgba[..., 3:] + bg * (1.0 - rgba[..., 3:]))
        rows.append(np.concatenate(row, 1))
    return (np.clip(np.concatenate(rows, 0), 0, 1) * 255 + 0.5).astype(np.uint8)


def _masks_image(masks: dict) -> np.ndarray:
    """Colour-coded masks: red = error-prone regions, green = seen texels, blue = face region."""
    first = next(iter(masks.values()))
    zero = np.zeros(np.shape(first), np.float32)
    rgb = np.stack([masks.get("error", zero), masks.get("seen", zero), 0.6 * np.asarray(masks.get("face", zero))], -1)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(x, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def texture_report(fit: FitOutput, tex: TextureOutput, *, extra_timings: dict | None = None) -> dict:
    """The ``report.json`` of the texture stage: the fit's report plus texture timings and quality."""
    report = fit_report(fit, extra_timings=extra_timings)
    report["stage"] = "texture"
    report["texture"] = {
        "resolution": int(tex.albedo.shape[0]),
        "delighter": tex.delighter,
        "timings": {k: round(float(v), 4) for k, v in tex.timings.items()},
        "total_seconds": round(float(sum(v for k, v in tex.timings.items())), 4),
        "quality": tex.metrics,
        "lighting_sh": np.asarray(tex.lighting).round(5).tolist(),
    }
    if tex.glasses is not None:
        report["texture"]["glasses"] = glasses_report(tex.glasses)
    return report


def glasses_report(found) -> dict:
    """A :class:`~machlib.texture.GlassesDetection` as JSON-ready numbers (mask area, not the mask)."""
    return {"present": bool(found.present), "score": round(float(found.score), 4), "style": found.style,
            "color_srgb": None if found.color is None else [round(float(c), 4) for c in found.color],
            "footprint_fraction": round(float((np.asarray(found.mask) > 0.5).mean()), 5),
            "source": found.source, "evidence": found.evidence}


def write_texture_outputs(out: str | os.PathLike, fit: FitOutput, tex: TextureOutput, *,
                          extra_timings: dict | None = None) -> dict:
    """Write the texture stage's files into ``out`` atomically: ``albedo.png`` (the completed
    albedo), ``texture_raw.png`` (RGBA, alpha = seen), ``shading.png``, ``masks.png``,
    ``head.glb`` (textured with the albedo), ``render_input_view.png`` (RGBA, the albedo under
    the estimated lighting in the fitted camera), ``relit.png`` and ``report.json``.

    Returns:
        The report dict.
    """
    t = time.perf_counter()
    albedo = _u8(tex.albedo)
    with atomic_output_dir(out) as tmp:
        save_png(tmp / "albedo.png", albedo)
        save_png(tmp / "texture_raw.png", np.concatenate([_u8(tex.raw), _u8(tex.seen[..., None])], -1))
        save_png(tmp / "shading.png", _u8(np.asarray(linear_to_srgb(0.5 * tex.shading))))
        save_png(tmp / "masks.png", _masks_image(tex.masks))
        (tmp / "head.glb").write_bytes(glb_bytes(fit.result.mesh, texture=albedo))
        save_png(tmp / "render_input_view.png", _u8(tex.render))
        save_png(tmp / "relit.png", relit_image(fit, tex))
        (tmp / "camera.json").write_text(json.dumps(camera_dict(fit.result.camera), indent=2) + "\n")
        report = texture_report(fit, tex, extra_timings={**(extra_timings or {}), "export": time.perf_counter() - t})
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


# --------------------------------------------------------------------------------------------
# hair stage (paper §2.5): 2D analysis → style (retrieved, or tried on) → 3D field → strands


class HairOutput(NamedTuple):
    """Everything :func:`hair_portrait` computed.

    Attributes:
        strands: the final :class:`~machlib.hair.Strands` on the fitted head (head space, metres).
        mode: ``"image"`` (retrieved from the portrait and fitted to it), ``"style"`` (a library
            style tried on) or ``"file"`` (strands read from a file and moved onto the head).
        style: the style's name (or the file's path).
        matches: the retrieval ranking (:class:`~machlib.hair.StyleMatch` items; empty unless
            ``mode == "image"``).
        mask: the portrait's :class:`~machlib.hair.HairMask`.
        orientation: the portrait's :class:`~machlib.hair.OrientationMap` (numpy arrays).
        color: the strands' linear RGB colour and where it came from.
        cleanup: the :class:`~machlib.hair.CleanupResult` of the grown strands (its strands are
            :attr:`strands`, in their final colour).
        sdf: the fitted head's :class:`~machlib.hair.HeadSDF`.
        timings: seconds per step.
        reading: what the photo's hair looks like, JSON-ready: the attribute words
            ``hair_length`` (``"short"``, ``"medium"``, ``"long"``), ``hair_color``, ``hairstyle``
            (the chosen style, from the portrait only), ``bangs``, ``hair_texture`` (words of
            :data:`machlib.text.VOCABULARY`, ``None`` where not read) and ``details`` (the
            :class:`~machlib.hair.HairReading` as a dict: the measurements and reasons).
        choice: how the style was chosen (``mode == "image"``): per library style the silhouette
            score, the agreement with the reading (:func:`~machlib.hair.style_agreement`), the
            total and the reasons, best first; ``None`` otherwise.
    """

    strands: object
    mode: str
    style: str
    matches: list
    mask: object
    orientation: object
    color: dict
    cleanup: object
    sdf: object
    timings: dict
    reading: dict | None = None
    choice: dict | None = None


#: Weight of the reading's agreement (:func:`~machlib.hair.style_agreement`, ``[−6, 3]``) against
#: the silhouette score (``f1 + 0.5 · orientation``, about ``[0, 1.5]``) in the style choice: a
#: length two steps off (``−1`` against ``2`` on the read length) costs ``0.75`` of silhouette
#: score, more than the silhouette of a bob gains over long hair that falls behind the shoulders.
_READING_WEIGHT = 0.25

# tied-back hair is long enough to gather: at least medium (its length is hidden)
_LENGTH_WORDS = {"short": "short", "chin": "short", "shoulder": "medium", "long": "long", "tied back": "medium"}


def hair_allowed(mask, landmarks: Landmarks) -> np.ndarray:
    """``(H, W)`` float32 mask of where a portrait may show hair or hide it: the hair mask, the
    face (hair behind the head projects onto it), and above the chin the person and a band a
    quarter of the face's width around the face (a hat may cover hair; hair framing the face is
    often missed by the person segmentation). Background and the body below the chin are not allowed: hair seen there would be
    in the photo. Used for silhouette clean-up and style retrieval.

    Args:
        mask: the :class:`~machlib.hair.HairMask` of the portrait.
        landmarks: its :class:`~machlib.geometry.Landmarks`.
    """
    from scipy import ndimage


    h, w = mask.mask.shape
    oval = np.asarray(landmarks.points)[face_oval()]
    chin = float(oval[:, 1].max())
    above = (np.arange(h)[:, None] + 0.5 < chin) & np.ones((1, w), bool)
    # a band a quarter of the face's width around the face: hair framing the face, even where
    # the person segmentation misses it
    band = ndimage.binary_dilation(mask.face > 0.5, iterations=max(1, int(0.25 * np.ptp(oval[:, 0]))))
    ok = (mask.mask > 0.5) | (mask.face > 0.5) | (((mask.person > 0.5) | band) & above)
    return ndimage.binary_dilation(ok, iterations=2).astype(np.float32)


#: the upper contours of both brows (FaceMesh indices, the right brow's then its mirror's): a
#: fringe that the photo shows over the forehead ends above their line (fit_strand_tips)
_BROW_TOPS = (70, 63, 105, 66, 107, 300, 293, 334, 296, 336)
# the longest extension of the grown strands by the read length (metres): the photo's length
# bounds how far a short style may grow down the sides where the hair mask continues
_EXTENSION = {"none": 0.0, "short": 0.03, "chin": 0.1, "shoulder": 0.2, "long": 0.3, "tied back": 0.03}
# the arc length (metres, root to tip) that hair running off the image's bottom grows to unseen:
# the read length is then a lower bound, and the frame is not where the hair ends
_FRAME_LENGTH = {"chin": 0.2, "shoulder": 0.3, "long": 0.45}


# the unseen arc lengths vary per strand, 1 - _RAGGED·u² of the frame length (u uniform): most
# strands end near it, a few up to a quarter shorter, so hair hidden by the frame or the head
# does not end in one straight cut
_RAGGED = 0.25
#: read lengths whose ends :func:`~machlib.hair.tuck_tips` turns under (straight, loose styles)
_TUCKED = ("short", "chin")
#: read lengths whose loose hair falls over the ears where the photo shows it there (cover_ears)
_OVER_EARS = ("shoulder", "long")


def _frame_lengths(key, n: int, reading) -> np.ndarray:
    """``(n,)`` the arc lengths (metres) to which strands grow where the photo cannot see them
    end (:func:`~machlib.hair.fit_strand_tips`' ``frame_length``): ``_FRAME_LENGTH`` of the
    read length when the hair runs off the image, else 0; ragged by ``_RAGGED``."""
    base = _FRAME_LENGTH.get(reading.length, 0.0) if reading.reaches_border else 0.0
    u = np.asarray(jax.random.uniform(key, (int(n),)), np.float64)
    return base * (1.0 - _RAGGED * u * u)


def _body_below_chin(mask, landmarks: Landmarks) -> np.ndarray:
    """``(H, W)`` float32 0/1: the person below the chin that the hair mask does not cover (neck,
    shoulders, torso). Hair fitting treats it as hiding strands behind the head's centre (long
    hair falling down the back), not as a place where the photo shows no hair."""
    h, w = mask.mask.shape
    chin = float(np.asarray(landmarks.points)[face_oval()][:, 1].max())
    below = (np.arange(h)[:, None] + 0.5 > chin) & np.ones((1, w), bool)
    return (below & (mask.person > 0.5) & ~(mask.mask > 0.5)).astype(np.float32)


def _bare_forehead(image: np.ndarray, mask) -> np.ndarray:
    """``(H, W)`` bool: skin-coloured pixels above the face oval (whose top is mid-forehead) that
    the hair mask does not cover; the face's colour is the oval's median and spread. Hair fitting
    treats them as bare skin (a hat's pixels are not skin-coloured and stay allowed)."""
    from scipy import ndimage

    face = mask.face > 0.5
    rows, cols = np.nonzero(face)
    out = np.zeros(face.shape, bool)
    if rows.size < 50:
        return out
    top, height = int(rows.min()), int(np.ptp(rows)) + 1
    x0, x1 = np.percentile(cols, [5, 95])
    core = ndimage.binary_erosion(face, iterations=max(1, height // 20))
    px = image.reshape(-1, 3)[core.reshape(-1)].astype(np.float64) if core.any() else image[face].astype(np.float64)
    med = np.median(px, 0)
    mad = 1.4826 * np.median(np.abs(px - med), 0)
    like = (np.abs(image.astype(np.float64) - med) < 2.5 * mad + 6.0).all(-1)
    yy = np.arange(face.shape[0])[:, None]
    xx = np.arange(face.shape[1])[None, :]
    band = (yy >= top - 0.35 * height) & (yy < top + 0.25 * height) & (xx >= x0) & (xx <= x1)
    return band & like & ~face & ~(mask.mask > 0.5)


def _hair_erode(image: np.ndarray) -> int:
    """Pixels by which the hair mask is eroded for the colour: 1 % of the image's larger side."""
    return max(1, round(0.01 * max(image.shape[:2])))


def _hair_color_choice(image: np.ndarray, mask: np.ndarray, color, face: np.ndarray | None = None,
                       points: np.ndarray | None = None, lighting: np.ndarray | None = None,
                       erode: bool = True) -> dict:
    if color is not None:
        if color not in HAIR_COLORS:
            raise InputError(f"unknown hair colour {color!r}; known: {', '.join(sorted(HAIR_COLORS))}")
        return {"source": "named", "name": color, "rgb": [float(c) for c in HAIR_COLORS[color]]}
    if lighting is not None:  # the texture stage's light: white balance and exposure at once
        shading = hair_shading_from_sh(lighting)
        try:
            est = estimate_hair_color(image, mask, shading=shading, statistic="median",
                                      erode=_hair_erode(image) if erode else 0, keep_hue=True)
        except ValueError:
            return {"source": "default", "name": "brown", "rgb": [float(c) for c in HAIR_COLORS["brown"]]}
        return {"source": "portrait", **_estimate_fields(est, shading), "pixels": est.pixels,
                "light_source": "texture SH", **({} if erode else {"pixels_from": "beside the face under a hat"})}
    light = None
    if face is not None:
        try:  # white balance: the light's colour from the face's skin
            light = light_from_skin(image, face)
        except ValueError:
            light = None
    eyes = None
    if points is not None:  # ... and from the eye whites and teeth, where they show
        eyes = light_from_eyes(image, points, prior=light)
        light = eyes.rgb
    try:
        est = estimate_hair_color(image, mask, light=light)
    except ValueError:  # (almost) no hair pixels
        return {"source": "default", "name": "brown", "rgb": [float(c) for c in HAIR_COLORS["brown"]]}
    out = {"source": "portrait", "name": est.name, "rgb": [round(float(c), 4) for c in est.rgb],
           "melanin": round(est.melanin, 4), "pheomelanin": round(est.pheomelanin, 4),
           "fit_error": round(est.error, 4), "pixels": est.pixels}
    if light is not None:
        out["light"] = [round(float(c), 4) for c in light]
    if eyes is not None:
        out["light_reference"] = {"sclera_pixels": eyes.sclera_pixels, "teeth_pixels": eyes.teeth_pixels,
                                  "weight": round(eyes.weight, 3)}
    return out


def _reading_words(reading, color_info: dict, style: str | None) -> dict:
    """The photo's hair in attribute words (:data:`machlib.text.VOCABULARY`) plus the details."""
    return {
        "hair_length": _LENGTH_WORDS.get(reading.length),
        "hair_color": color_info.get("name") if color_info.get("source") == "portrait" else None,
        "hairstyle": style,
        "bangs": reading.fringe,
        "hair_texture": reading.curl,
        "details": reading.to_dict(),
    }


def _style_for_reading(style, reading):
    """The retrieved style with the photo's fringe and parting (the library gives the prior, the
    photo says where the fringe and the parting are): no fringe where the photo shows none, a
    5 cm fringe where it shows a straight one and the style has none, a style's fringe swept to
    the side the photo's falls toward where it is side-swept (a style without a fringe is left to
    the parting and the 2D orientation) and falling straight where it is straight, and the read
    parting (the image's left is the subject's right). Returns the style and what was changed."""
    import dataclasses

    changes = {}
    if style.bald:
        return style, changes
    if reading.fringe == "none" and style.bangs > 0:
        changes["bangs"] = 0.0
    elif reading.fringe == "straight" and style.bangs == 0:
        changes["bangs"] = 0.05
    if reading.fringe == "straight" and style.sweep != "none":
        changes["sweep"] = "none"
    side = {"left": "right", "right": "left"}.get(reading.fringe_side)
    if reading.fringe == "side-swept" and style.bangs > 0 and side is not None and side != style.sweep:
        changes["sweep"] = side
    part = {"left": "right", "right": "left", "centre": "center"}.get(reading.parting)
    if part is not None and part != style.parting and style.gather == "none":
        changes["parting"] = part
    if not changes:
        return style, changes
    return dataclasses.replace(style, **changes), changes


def _choose_style(matches: list, reading) -> tuple[str, dict]:
    """The style with the best silhouette score plus ``_READING_WEIGHT`` × agreement with the
    reading, and the explanation (every style's terms and reasons, best first)."""
    rows = []
    for m in matches:
        agree, why = style_agreement(reading, HAIR_STYLES[m.name])
        rows.append({"style": m.name, "silhouette": round(float(m.score), 4), "agreement": round(agree, 3),
                     "total": round(float(m.score) + _READING_WEIGHT * agree, 4), "reasons": list(why)})
    rows.sort(key=lambda r: -r["total"])
    best = rows[0]
    by_shape = matches[0].name
    why = (f"{best['style']}: the best silhouette and agreement with the photo's reading"
           if best["style"] == by_shape else
           f"{best['style']} over {by_shape} (the best silhouette alone): it agrees better with the photo's "
           f"reading ({best['agreement']:+.2f} vs "
           f"{next(r['agreement'] for r in rows if r['style'] == by_shape):+.2f})")
    return best["style"], {"weight": _READING_WEIGHT, "summary": why, "ranking": rows}


#: Strands grown for the image mode's prior volume (:func:`~machlib.hair.style_volume`). With
#: the retrieval's 800, the prior left holes about 2 cm wide in the scalp shell: 8 % of the
#: pixie's roots (bob 11 %, crop 7 %) saw no hair 3 mm out and grew nothing, a bald patch on the
#: back of the bundled portrait's head; with 2000, 2 % (bob 7 %, crop 3 %), 0.06 s more warm.
_PRIOR_STRANDS = 2000


def hair_portrait(
    fit: FitOutput,
    *,
    style: str | None = None,
    color: str | None = None,
    n_strands: int = 10000,
    n_points: int = 64,
    guides: int | None = None,
    seed: int = 0,
    mask: HairMask | None = None,
    fit_tips: bool = True,
    clump: bool = True,
    lighting: np.ndarray | Callable[[], np.ndarray | None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> HairOutput:
    """Strand hair for a fitted portrait (Make-A-Character §2.5).

    1. 2D analysis: the hair mask (:func:`~machlib.hair.hair_mask`) and the Gabor orientation
       map (:func:`~machlib.hair.orientation_map`) of the portrait.
    2. Reading (:func:`~machlib.hair.read_hairstyle`): length, fringe, parting, curl and volume
       of the photo's hair, reported as :attr:`HairOutput.reading`.
    3. Style: with ``style=None`` the library's styles are ranked against the mask and the
       orientation map (:func:`~machlib.hair.match_styles`) and the reading
       (:func:`~machlib.hair.style_agreement`, weighted by 0.25; the ranking
       and its reasons are :attr:`HairOutput.choice`); the best one, given the photo's fringe
       (none where the photo shows none, 5 cm where it shows a straight one) and parting
       (``choice["adjusted"]``), is the prior: its occupancy and orientation volume
       (:func:`~machlib.hair.style_volume`) is carved and filled to the portrait's silhouette and its visible orientation bent to the 2D orientation
       (:func:`~machlib.hair.lift_hair`; the person below the chin hides the volume behind the
       head's centre, so hair down the back is not carved where the photo shows the shoulders),
       and strands are grown through it on the fitted head, each to at most 1.2 × the length the
       style gives its root (:func:`~machlib.hair.grow_from_volume`); with ``fit_tips`` the grown strands are then
       widened towards the photo's hair outline, trimmed where their visible part leaves it and
       extended along the orientation map to where it ends, or, where the hair runs off the
       image's bottom, on to the read length's typical arc (0.45 m for long hair) unseen; the
       person below the chin hides strands behind the head's centre (hair down the back)
       (:func:`~machlib.hair.fit_strand_tips`; counts in ``choice["tips"]``). With a style name (try-on), the style is grown
       on the template and moved onto the fitted head (:func:`~machlib.hair.transfer_strands`);
       with a ``.data``/``.hair`` file path, the file's strands (template head space) are moved.
    4. Clumps (styles grown here, not files): strands gather into clumps with layered tips and a
       few flyaways (:func:`~machlib.hair.clump_strands`); then, from the portrait, the fit of
       step 3, the ends of a short or chin-length straight cut that is not tied turned under
       towards the head, as a bob's are (:func:`~machlib.hair.tuck_tips`; under a hat only the
       ends the photo does not see, its visible wisps being pushed out by the hat);
       with the tips fitted, loose shoulder-length or long hair that the photo shows over an
       ear passes in front of it (:func:`~machlib.hair.cover_ears`, not under a hat),
       and clean-up (:func:`~machlib.hair.cleanup_strands`): short (under 1 cm, or under half the
       median strand length when that is less), penetrating and outlier strands go (and, from
       the portrait, strands outside its silhouette); the rest are smoothed and resampled to
       ``n_points``.
    5. Colour: ``color`` (a :data:`~machlib.hair.HAIR_COLORS` name), else the melanin fit of the
       hair pixels (:func:`~machlib.hair.estimate_hair_color`), white-balanced by the light's
       colour read from the eye whites and teeth (:func:`~machlib.hair.light_from_eyes`), which
       falls back on the face's skin (:func:`~machlib.hair.light_from_skin`) where they show
       little. With ``lighting`` (the texture stage's SH estimate of the photo's light) the
       hair pixels' median (the mask eroded by 1 % of the image, past the background mixed into
       its edge) is divided by the strands' shading under that light instead
       (:func:`~machlib.hair.hair_shading_from_sh`: white balance and exposure), and once the
       strands are grown (``mode == "image"``) the colour is checked by rendering them in the
       fitted camera under that light at half resolution: the photo's median hair colour over
       the rendered hair pixels divided by the render's corrects the shading, and the melanin
       fit is redone with it (``color["calibration"]``), so the input view shows the photo's
       hair colour. Under a hat (the mask covers almost nothing above the face) the mask holds
       mostly shaded skin: the colour is read instead from the pixels beside the face that
       neither the skin's hue and chroma nor the hat's colour explain
       (``color["pixels_from"]``), without that check. A colour read from the photo (in image
       mode, not beside a hat) then varies per strand as the photo does around it
       (:func:`~machlib.hair.strand_colors_from_photo`: a lit crown paler, shaded lengths and
       roots darker); ``color["rgb"]`` stays the one colour.

    Args:
        fit: the :class:`FitOutput` of :func:`fit_portrait`.
        style: ``None`` (from the portrait), a :data:`~machlib.hair.HAIR_STYLES` name, or the path
            of a ``.data``/``.hair`` strand file in template head space.
        color: a hair colour name, or ``None`` to take it from the portrait.
        n_strands: strands to grow, ``≥ 1``.
        n_points: points per strand, ``≥ 2``.
        guides: guide strands integrated (the rest interpolated); ``None``: every strand.
        seed: PRNG seed; the same inputs and seed give the same strands.
        mask: the portrait's :class:`~machlib.hair.HairMask` when already computed (e.g.
            :attr:`TextureOutput.hair`, the mask the texture stage treated as hidden); ``None``:
            computed here.
        fit_tips: fit the grown strands to the photo's hair silhouette (step 3, from the portrait
            only); ``False`` leaves the prior's strands as grown through the carved volume.
        clump: gather grown strands into clumps with layered tips and flyaways (step 4);
            ``False`` keeps them as grown.
        lighting: optional ``(9, 3)`` SH radiance coefficients of the portrait's light
            (:attr:`TextureOutput.lighting`) for the colour (step 5), or a callable without
            arguments that returns them (or ``None``), called once, when the strands are grown:
            :func:`~machlib.character.make_character` runs the texture stage beside this one
            and waits for its light only there; ``None``: the light's colour from the eyes or
            skin and a constant shading.
        progress: optional callback called with each step's name.

    Returns:
        A :class:`HairOutput`.

    Raises:
        InputError: an unknown style or colour, a missing or malformed strand file, bad counts,
            or strands that are not finite (no NaN leaves the stage).
    """
    say = progress or (lambda _: None)
    for name, v, lo in (("n_strands", n_strands, 1), ("n_points", n_points, 2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise InputError(f"{name} must be an integer >= {lo}, got {v!r}")
    mode, source = "image", None
    if style is not None:
        if style in HAIR_STYLES:
            mode = "style"
        elif Path(style).suffix.lower() in (".data", ".hair"):
            if not Path(style).is_file():
                raise InputError(f"--style: no such strand file {style}")
            mode, source = "file", Path(style)
        else:
            raise InputError(f"unknown hairstyle {style!r}; known: {', '.join(HAIR_STYLES)} "
                             f"(or a .data/.hair file)")
    timings: dict[str, float] = {}
    key = jax.random.key(int(seed))
    k_match, k_prior, k_grow = jax.random.split(key, 3)
    mesh, camera, template = fit.result.mesh, fit.result.camera, fit.template

    def timed(name, fn):
        say(name)
        t = time.perf_counter()
        out = fn()
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t  # a second round adds up
        return out

    sdf = timed("head sdf", lambda: head_sdf_grid(mesh))
    if mask is None:
        mask = timed("hair mask", lambda: hair_mask(fit.image, fit.landmarks))
    elif not (hasattr(mask, "mask") and np.shape(mask.mask) == fit.image.shape[:2]):
        raise InputError(f"hair_portrait: mask must be the portrait's HairMask (hair_mask(fit.image, fit.landmarks)), "
                         f"got {type(mask).__name__}")
    gray = fit.image.astype(np.float32).mean(-1) / 255.0
    omap = timed("orientation", lambda: jax.tree_util.tree_map(
        np.asarray, jax.block_until_ready(orientation_map(gray, mask=mask.mask))))
    allowed = hair_allowed(mask, fit.landmarks)
    if not callable(lighting):  # checked before the work (a callable's result once it is called)
        lighting = _checked_lighting(lighting)
    if color is not None and color not in HAIR_COLORS:
        raise InputError(f"unknown hair colour {color!r}; known: {', '.join(sorted(HAIR_COLORS))}")
    # under a hat the mask holds mostly shaded skin: the colour is read where the hair shows
    beside_hat = _hair_beside_hat(fit.image, mask, fit.landmarks.points) if color is None else None
    # the colour (step 5) is read once the strands are grown: nothing before it depends on it,
    # and a ``lighting`` callable (the texture stage running beside this one) is waited for last
    reading = timed("reading", lambda: read_hairstyle(mask.mask, omap, fit.landmarks))
    choice = None
    rgb = np.asarray(HAIR_COLORS[color or "brown"], np.float32)  # the growth's; step 5 colours the strands
    matches: list = []
    grow = None  # count -> Strands, for the modes that grow as many strands as asked
    if mode == "image":
        matches = timed("match", lambda: match_styles(k_match, mask.mask, omap.theta, omap.confidence, camera,
                                                      mesh, sdf=sdf, template=template, allowed=allowed))
        best, choice = _choose_style(matches, reading)
        chosen, adjusted = _style_for_reading(HAIR_STYLES[best], reading)
        choice["adjusted"] = adjusted
        style = chosen.name
        if chosen.bald:
            grown = Strands(np.zeros((0, n_points, 3), np.float32), np.zeros((0, 3), np.float32),
                            np.zeros(0, np.float32))
        else:
            # carving keeps hair that a hat may hide, but not hair in front of the visible face
            # (occlusion by the head is handled by lift_hair itself)
            carve = allowed * (1.0 - (mask.face > 0.5)) + (mask.mask > 0.5)
            prior = timed("volume", lambda: style_volume(k_prior, chosen, mesh, n_strands=_PRIOR_STRANDS,
                                                         n_points=24, template=template))
            # the body below the chin hides the prior's hair behind the head's centre (down the
            # back): carving it there cut long hair off where the photo shows the shoulders
            lifted = timed("lift", lambda: lift_hair(prior, camera, mask.mask, omap.theta, omap.confidence,
                                                     head_sdf=sdf, carve_mask=carve,
                                                     occluder=_body_below_chin(mask, fit.landmarks)))
            # each strand at most 1.2 × the style's length at its root (a pixie's nape and sides
            # shorter than its top, every end its own length): one length for all, the volume's
            # lower edge stopping them, cut short hair straight round the head at the ears
            lengths = lambda roots: 1.2 * _style_lengths(  # noqa: E731
                jax.random.fold_in(k_grow, 3), chosen, roots, mesh, template=template)
            grow = lambda count: timed("grow", lambda: grow_from_volume(  # noqa: E731
                k_grow, lifted, mesh, n_strands=count, n_points=int(n_points), sdf=sdf,
                length=lengths, color=rgb, template=template, curl=chosen.curl,
                gravity=0.3 * chosen.gravity, guides=guides))
    elif mode == "style":
        chosen = HAIR_STYLES[style]

        def grow(count):
            on_template = timed("grow", lambda: grow_style(k_grow, chosen, template, n_strands=count,
                                                           n_points=int(n_points), color=rgb, guides=guides))
            return timed("transfer", lambda: transfer_strands(on_template, template.mesh, mesh, target_sdf=sdf))

        if chosen.bald:
            grow, grown = None, Strands(np.zeros((0, n_points, 3), np.float32), np.zeros((0, 3), np.float32),
                                        np.zeros(0, np.float32))
    else:
        def load():
            try:
                return (read_hair_data if source.suffix.lower() == ".data" else read_cem_hair)(source)
            except ValueError as e:
                raise InputError(str(e)) from None

        ragged = timed("load strands", load)
        style = str(source)
        hairy = np.flatnonzero(np.asarray(ragged.counts) >= 2)  # one-point strands mark bare roots
        if hairy.size == 0:
            raise InputError(f"--style: {source} holds no strand with two or more points")
        fixed = ragged.select(hairy).to_strands(n_points=int(n_points))
        on_template = Strands(np.asarray(fixed.points, np.float32), np.broadcast_to(rgb, (hairy.size, 3)).copy(),
                              np.full(hairy.size, DEFAULT_HAIR_WIDTH, np.float32))
        grown = timed("transfer", lambda: transfer_strands(on_template, template.mesh, mesh, target_sdf=sdf))
    # the body below the chin hides hair behind the head's centre (fit_strand_tips judges what
    # is in front of it), so clean-up does not take such strands for hair outside the silhouette
    body = _body_below_chin(mask, fit.landmarks) if mode == "image" and fit_tips else None
    silhouette = {"silhouette": allowed if body is None else np.maximum(allowed, body), "camera": camera} \
        if mode == "image" else {}

    tip_fits: list = []
    # a short straight cut's ends turn under; under a hat only those the photo does not see: what
    # shows is wisps that the hat pushes out (Hopper: hair_fit IoU 0.194 -> 0.172 with her wisps
    # tucked under the cap), while the unseen back follows the style
    under_hat = mode == "image" and (beside_hat if color is None else
                                     _hair_beside_hat(fit.image, mask, fit.landmarks.points)) is not None
    tuck = (mode == "image" and clump and reading.length in _TUCKED and chosen.curl == "straight"
            and chosen.gather == "none")
    bare = _bare_forehead(fit.image, mask) if mode == "image" and fit_tips else None
    # long loose hair that the photo shows over an ear falls in front of it, not down behind it
    ears = (_ears_under_hair(mesh, template, camera, mask.mask)
            if mode == "image" and fit_tips and reading.length in _OVER_EARS and chosen.gather == "none"
            and not under_hat
            else np.zeros((0, 6)))

    def clean_up(grown):
        if mode != "file" and clump and grown.num_strands:
            # clumps, layered tips and flyaways: a grown style is otherwise one smooth shell
            grown = timed("clump", lambda: clump_strands(jax.random.fold_in(key, 7), grown))
        if mode == "image" and fit_tips and grown.num_strands:
            # the prior's strands end where the style's do: trim and extend them to the photo's hair
            tips = timed("tips", lambda: fit_strand_tips(
                grown, camera, mask.mask, mesh=mesh, sdf=sdf, keep_mask=carve * ~bare, theta=omap.theta,
                confidence=omap.confidence, max_extension=_EXTENSION.get(reading.length, 0.3),
                frame_length=_frame_lengths(jax.random.fold_in(key, 11), grown.num_strands, reading),
                occluder=body, brows=np.asarray(fit.landmarks.points)[list(_BROW_TOPS)]))
            tip_fits.append(tips.summary())
            grown = tips.strands
        if len(ears) and grown.num_strands:
            grown = Strands(np.asarray(timed("ears", lambda: cover_ears(grown.points, ears, sdf=sdf)), np.float32),
                            grown.color, grown.thickness)
        if tuck and grown.num_strands:  # a short straight cut's ends turn under instead of splaying like a brush
            pts = np.array(grown.points, np.float32)
            # under a hat, the ends the photo shows are wisps that the hat pushes out: only those
            # it does not see (the back, the far side of the head) turn under
            sel = ~_seen(pts[:, -1], camera, mesh) if under_hat else np.ones(len(pts), bool)
            if sel.any():
                pts[sel] = np.asarray(timed("tuck", lambda: tuck_tips(pts[sel], sdf)), np.float32)
            grown = Strands(pts, grown.color, grown.thickness)
        # "too short" is relative to the style (a buzz cut's strands are 8 mm long)
        arcs = np.linalg.norm(np.diff(np.asarray(grown.points, np.float64), axis=1), axis=2).sum(1)
        min_length = min(0.01, 0.5 * float(np.median(arcs))) if arcs.size else 0.01
        return timed("cleanup", lambda: cleanup_strands(grown, sdf=sdf, n_points=int(n_points),
                                                        min_length=min_length, **silhouette))

    if grow is not None:  # grown styles yield n_strands after clean-up (a file gives what it holds)
        # the tip fit drops strands rooted on bare skin: a margin that one growth round covers
        clean = cleanup_to_count(grow, clean_up, int(n_strands), margin=0.12 if mode == "image" and fit_tips else 0.04)
    else:
        clean = clean_up(grown)
    strands = clean.strands
    if choice is not None and tip_fits:
        choice["tips"] = tip_fits[-1]
    check_finite("hair", strand_points=strands.points)
    if callable(lighting):
        lighting = _checked_lighting(lighting())
    color_info = _hair_color_choice(fit.image, mask.mask if beside_hat is None else beside_hat.astype(np.float32),
                                    color, mask.face, np.asarray(fit.landmarks.points), lighting=lighting,
                                    erode=beside_hat is None)
    rgb = np.asarray(color_info["rgb"], np.float32)
    reading = dataclasses.replace(reading, color=color_info["name"])
    if (lighting is not None and mode == "image" and color_info.get("source") == "portrait"
            and strands.num_strands):
        color_info = timed("colour", lambda: _calibrate_hair_color(fit, mask, strands, lighting, color_info,
                                                                   region=beside_hat))
        rgb = np.asarray(color_info["rgb"], np.float32)
        reading = dataclasses.replace(reading, color=color_info["name"])
    colors = np.broadcast_to(rgb, (strands.num_strands, 3)).copy()
    if mode == "image" and color_info.get("source") == "portrait" and beside_hat is None and strands.num_strands:
        # the photo's variation around the colour (a blond crown's pale highlight, darker lengths)
        colors = timed("strand colours", lambda: strand_colors_from_photo(
            strands.points, camera, fit.image[..., :3], mask.mask, rgb, mesh=mesh))
    strands = Strands(np.asarray(strands.points, np.float32), colors, np.asarray(strands.thickness, np.float32))
    words = _reading_words(reading, color_info, style if mode == "image" else None)
    clean = clean._replace(strands=strands)  # the kept strands, in their colour
    return HairOutput(strands, mode, style, matches, mask, omap, color_info, clean, sdf, timings, words, choice)


def _checked_lighting(lighting) -> np.ndarray | None:
    """``hair_portrait``'s ``lighting`` as float64 ``(9, 3)`` SH coefficients (or ``None``)."""
    if lighting is None:
        return None
    lighting = np.asarray(lighting, np.float64)
    if lighting.shape != (9, 3) or not np.isfinite(lighting).all():
        raise InputError(f"hair_portrait: lighting must be finite (9, 3) SH coefficients, got shape {lighting.shape}")
    return lighting


def _calibrate_hair_color(fit, mask, strands, lighting: np.ndarray, info: dict,
                          region: np.ndarray | None = None) -> dict:
    """The colour estimate of :func:`_hair_color_choice` corrected by rendering the grown strands
    in the fitted camera under the portrait's light (half resolution) and comparing the median
    hair colour with the photo's over the same pixels (see :func:`hair_portrait`, step 5): the
    eroded hair mask. With ``region`` (the pixels the colour was read from under a hat) it is not
    applied: the strands grown there cover the hat's edge and the skin, and the few pixels where
    both show hair (36 at half resolution on Hopper) turned her grey hair orange."""
    if region is not None:  # a few wisps beside a hat, where the strands grown show the hat's edge
        return {**info, "calibration": {"applied": False, "why": "the hair shows only in wisps beside a hat"}}
    from ._scene import ScenePart, _srgb_to_linear, render_scene
    from .hair._match import _scaled_camera

    cam = _scaled_camera(fit.result.camera, 2)
    rgb = np.asarray(info["rgb"], np.float32)
    thick = None if strands.thickness is None else np.asarray(strands.thickness, np.float32)
    colored = Strands(np.asarray(strands.points, np.float32), np.broadcast_to(rgb, (strands.num_strands, 3)).copy(),
                      thick)
    parts = [ScenePart(fit.result.mesh, color=(0.3, 0.3, 0.3), two_sided=False)]
    with_hair = render_scene(parts, cam, strands=colored, sh=lighting, supersample=1)
    bare = render_scene(parts, cam, sh=lighting, supersample=1)
    h, w = with_hair.shape[:2]
    image = fit.image[..., :3]
    H, W = image.shape[:2]
    rows = np.minimum(((np.arange(h) + 0.5) * H / h).astype(int), H - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * W / w).astype(int), W - 1)
    from scipy import ndimage

    region = ndimage.binary_erosion(mask.mask > 0.5, iterations=_hair_erode(image))[rows][:, cols]
    hair_px = region & (np.abs(with_hair[..., :3].astype(np.int32) - bare[..., :3].astype(np.int32)).max(-1) > 2)
    out = dict(info)
    if hair_px.sum() < 20:
        out["calibration"] = {"pixels": int(hair_px.sum()), "applied": False}
        return out
    photo = np.median(_srgb_to_linear(image[rows][:, cols][hair_px].astype(np.float64) / 255.0), 0)
    render = np.median(_srgb_to_linear(with_hair[..., :3][hair_px].astype(np.float64) / 255.0), 0)
    ratio = np.clip(photo / np.maximum(render, 1e-4), 0.25, 4.0)
    shading = np.asarray(info["shading"], np.float64) / ratio
    est = estimate_hair_color(image, mask.mask, shading=shading, statistic="median", erode=_hair_erode(image),
                              keep_hue=True)
    out.update({**_estimate_fields(est, shading),
                "calibration": {"pixels": int(hair_px.sum()), "applied": True,
                                "ratio": [round(float(c), 4) for c in ratio]}})
    return out


def _estimate_fields(est, shading: np.ndarray) -> dict:
    """The report's fields of a light-corrected :class:`~machlib.hair.HairColorEstimate`."""
    return {"name": est.name, "rgb": [round(float(c), 4) for c in est.rgb], "melanin": round(est.melanin, 4),
            "pheomelanin": round(est.pheomelanin, 4), "fit_error": round(est.error, 4),
            "shading": [round(float(c), 4) for c in shading]}


def hair_report(fit: FitOutput, hair: HairOutput, *, extra_timings: dict | None = None) -> dict:
    """The hair stage's ``report.json``: strand counts, clean-up, style choice, colour, timings."""
    report = fit_report(fit, extra_timings=extra_timings)
    report["stage"] = "hair"
    timings = {k: round(float(v), 4) for k, v in hair.timings.items()}
    s = hair.strands
    report["hair"] = {
        "mode": hair.mode,
        "style": hair.style,
        "strands": int(s.num_strands),
        "grown": int(np.size(hair.cleanup.keep)),  # before clean-up (with a margin for it)
        "points_per_strand": int(np.shape(s.points)[1]),
        "removed_fraction": round(float(hair.cleanup.removed_fraction), 4),
        "removed": {k: int(v) for k, v in hair.cleanup.reasons.items()},
        "color": hair.color,
        "mask_fraction": round(float((hair.mask.mask > 0.5).mean()), 4),
        "matches": [{"style": m.name, "score": round(m.score, 4), "f1": round(m.f1, 4),
                     "orientation": round(m.orientation, 4)} for m in hair.matches],
        "choice": hair.choice,
        "timings": timings,
        "total_seconds": round(float(sum(hair.timings.values())), 3),
    }
    report["hair_reading"] = hair.reading
    return report


def hair_images(fit: FitOutput, hair: HairOutput, *, size: int = 384) -> dict[str, np.ndarray]:
    """Preview images of the hair stage: ``hair_preview`` (front, side and back on the fitted
    head), ``hair_input_view`` (the strands over the portrait in the fitted camera) and
    ``hair_mask`` (the portrait with its hair mask, and the orientation map)."""
    albedo = template_albedo(512) if fit.template.name == "procedural" else None
    preview = hair_preview(hair.strands, fit.result.mesh, texture=albedo, size=size)
    input_view = render_strands(hair.strands, fit.result.camera, mesh=fit.result.mesh, texture=albedo,
                                background=fit.image)
    m = hair.mask.mask[..., None]
    tint = (fit.image * (1 - 0.55 * m) + 0.55 * m * np.array([255.0, 40.0, 160.0])).astype(np.uint8)
    orient = orientation_image(hair.orientation, mask=hair.mask.mask)
    return {"hair_preview": preview, "hair_input_view": input_view[..., :3],
            "hair_mask": np.concatenate([tint, orient[..., :3]], 1)}


def write_hair_outputs(out: str | os.PathLike, fit: FitOutput, hair: HairOutput, *,
                       extra_timings: dict | None = None) -> dict:
    """Write the hair stage's files into ``out`` atomically: ``hair.data`` (USC-HairSalon),
    ``hair.usda`` (USD BasisCurves), ``hair_preview.png``, ``hair_input_view.png``,
    ``hair_mask.png``, ``head.glb`` (the fitted head), ``camera.json`` and ``report.json``.

    Returns:
        The report dict.
    """
    t = time.perf_counter()
    with atomic_output_dir(out) as tmp:
        write_hair_data(tmp / "hair.data", hair.strands)
        write_usd_curves(tmp / "hair.usda", hair.strands)
        for name, img in hair_images(fit, hair).items():
            save_png(tmp / f"{name}.png", img)
        albedo = template_albedo(1024) if fit.template.name == "procedural" else None
        (tmp / "head.glb").write_bytes(glb_bytes(fit.result.mesh, texture=albedo))
        (tmp / "camera.json").write_text(json.dumps(camera_dict(fit.result.camera), indent=2) + "\n")
        report = hair_report(fit, hair, extra_timings={**(extra_timings or {}), "export": time.perf_counter() - t})
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
