"""The pipeline as plain functions: each stage takes explicit inputs and returns a typed result.

Today: portrait → dense landmarks → geometry fit (camera + triplane) → exports. Writing files is
separate from computing (:func:`write_fit_outputs`) and is atomic: everything goes to a
temporary folder beside ``OUT`` and is moved into place only at the end.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from . import __version__
from ._camera import project, rotation_matrix
from ._errors import InputError
from ._image import save_png
from ._mesh import Mesh, glb_bytes, save_obj
from ._preview import draw_lines, draw_points, orbit_camera, render_mesh
from .geometry import (
    GeometryFitConfig,
    GeometryResult,
    Landmarks,
    Template,
    default_template,
    detect_landmarks,
    fit_landmarks,
    template_albedo,
)

__all__ = ["FitOutput", "fit_portrait", "write_fit_outputs", "fit_report", "overlay_image", "atomic_output_dir"]


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
    config: GeometryFitConfig = GeometryFitConfig(),
    fov_degrees: float = 25.0,
    strict: bool = False,
    progress: Callable[[str], None] | None = None,
) -> FitOutput:
    """Detect landmarks on a portrait and fit the template head and camera to them.

    Args:
        image: ``(H, W, 3)`` uint8 RGB portrait (see :func:`machlib.load_image`).
        template: the template head; :func:`~machlib.geometry.default_template` by default.
        config: the :class:`~machlib.geometry.GeometryFitConfig`.
        fov_degrees: vertical field of view assumed for the portrait.
        strict: fail if the image has more than one face (default: use the largest).
        progress: optional callback called with each stage's name as it starts.

    Returns:
        A :class:`FitOutput`.

    Raises:
        NoFaceError: no face (or several, with ``strict``).
    """
    say = progress or (lambda _: None)
    timings = {}
    t = time.perf_counter()
    say("landmarks")
    landmarks = detect_landmarks(image, strict=strict)
    timings["landmarks"] = time.perf_counter() - t
    t = time.perf_counter()
    say("template")
    template = template or default_template()
    template.position_map(config.resolution)
    timings["template"] = time.perf_counter() - t
    say("fit")
    h, w = image.shape[:2]
    result = fit_landmarks(landmarks, template, (w, h), config=config, fov_degrees=fov_degrees)
    timings["compile"] = result.compile_seconds
    timings["fit"] = result.fit_seconds
    return FitOutput(image, landmarks, template, result, timings)


def overlay_image(fit: FitOutput) -> np.ndarray:
    """The portrait with the fitted mesh's wireframe (front-facing edges, translucent white),
    the detected landmarks (green) and the fitted mesh's projected landmarks (red).

    Portraits under 1024 px are drawn at twice their size so the wireframe stays readable.
    """
    res = fit.result
    verts = np.asarray(res.mesh.vertices)
    faces = np.asarray(res.mesh.faces)
    px = np.asarray(project(verts, res.camera))
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
    }


def camera_dict(camera) -> dict:
    """A camera as JSON-ready numbers, with the conventions spelled out."""
    return {
        "convention": "OpenCV: x right, y down, z forward; X_cam = R X_world + t; pixels from top-left",
        "rotation_vector": [float(v) for v in np.asarray(camera.rotation)],
        "rotation_matrix": np.asarray(rotation_matrix(camera.rotation)).tolist(),
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
    otherwise, so unrelated files already in ``out`` are left alone). On an exception nothing in
    ``out`` is touched, ``out`` is not created and the temporary folder is removed.

    Raises:
        InputError: ``out`` exists and is not a folder.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder")
    parent = out.resolve().parent
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
            for f in tmp.iterdir():
                os.replace(f, out / f.name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_fit_outputs(out: str | os.PathLike, fit: FitOutput, *, extra_timings: dict | None = None) -> dict:
    """Write ``head.glb``, ``head.obj`` (+ ``head.mtl``, ``head_albedo.png``), ``camera.json``,
    ``overlay.png``, ``preview.png`` and ``report.json`` into ``out`` atomically.

    Returns:
        The report dict.
    """
    t = time.perf_counter()
    mesh: Mesh = fit.result.mesh
    albedo = template_albedo(1024) if fit.template.name == "procedural" else None
    with atomic_output_dir(out) as tmp:
        (tmp / "head.glb").write_bytes(glb_bytes(mesh, texture=albedo))
        if albedo is not None:
            save_png(tmp / "head_albedo.png", albedo)
        save_obj(tmp / "head.obj", mesh, texture="head_albedo.png" if albedo is not None else None)
        (tmp / "camera.json").write_text(json.dumps(camera_dict(fit.result.camera), indent=2) + "\n")
        save_png(tmp / "overlay.png", overlay_image(fit))
        views = [render_mesh(mesh, orbit_camera(yaw, image_size=(384, 384), distance=0.95), texture=albedo,
                             background=np.full((384, 384, 3), 235, np.uint8)) for yaw in (0, 35, 90)]
        save_png(tmp / "preview.png", np.concatenate(views, 1))
        report = fit_report(fit, extra_timings={**(extra_timings or {}), "export": time.perf_counter() - t})
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
