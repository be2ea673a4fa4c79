"""machlib.batch on a local Ray: inputs, one folder and one row per image, bad images as error
rows, a worker killed mid-item, and resume by content hash (issue 16)."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from PIL import Image

from machlib import InputError, NoFaceError, default_portrait
from machlib.batch import (
    RESULT_COLUMNS,
    content_hash,
    identity_distance,
    plan_items,
    read_inputs,
    run_batch,
)

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch_in")
    Image.fromarray(np.asarray(default_portrait())).save(root / "portrait.png")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(root / "blank.png")  # no face
    (root / "junk.png").write_bytes(b"not an image at all")
    return root


@pytest.fixture(scope="module")
def first_run(images, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch_out")
    marker = out.parent / f"{out.name}.crashed"
    os.environ["MACHLIB_BATCH_CRASH_ONCE"] = str(marker)  # the first item kills its worker once
    lines = []
    try:  # batches of 2: the worker fits the faces of a batch together (process_batch)
        summary = run_batch(images, out, stages=("fit",), workers=1, batch_size=2, progress=lines.append)
    finally:
        del os.environ["MACHLIB_BATCH_CRASH_ONCE"]
    return out, summary, marker, lines


def test_inputs_folder_list_csv_parquet(images, tmp_path):
    folder = read_inputs(images)
    assert [p.name for p in folder] == ["blank.png", "junk.png", "portrait.png"]
    (tmp_path / "list.txt").write_text(f"# my photos\n{images / 'portrait.png'}\n\n{images / 'blank.png'}\n")
    assert [p.name for p in read_inputs(tmp_path / "list.txt")] == ["portrait.png", "blank.png"]
    (tmp_path / "t.csv").write_text(f"id,path\n1,{images / 'junk.png'}\n")
    assert [p.name for p in read_inputs(tmp_path / "t.csv")] == ["junk.png"]
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"path": [str(images / "portrait.png")]}), tmp_path / "t.parquet")
    assert [p.name for p in read_inputs(tmp_path / "t.parquet")] == ["portrait.png"]
    (tmp_path / "bad.csv").write_text("file\nx.png\n")
    with pytest.raises(InputError, match="path"):
        read_inputs(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="does not exist"):
        read_inputs(tmp_path / "missing")


def test_plan_dedupes_by_content_and_reports_unreadable(images, tmp_path):
    copy = tmp_path / "again.png"
    copy.write_bytes((images / "portrait.png").read_bytes())
    items, bad = plan_items([images / "portrait.png", copy, tmp_path / "gone.png"])
    assert len(items) == 1 and items[0].hash == content_hash(copy) and items[0].name.startswith("portrait-")
    assert len(bad) == 1 and bad[0]["status"] == "error" and "no such file" in bad[0]["error"]


def test_bad_arguments_are_input_errors(images, tmp_path):
    for kw in ({"stages": ("fit", "paint")}, {"stages": ()}, {"workers": 0}, {"batch_size": 0},
               {"max_retries": -1}):
        with pytest.raises(InputError):
            run_batch(images, tmp_path / "o", **kw)
    assert not (tmp_path / "o").exists()


def test_rows_folders_and_a_killed_worker(first_run):
    out, summary, marker, lines = first_run
    assert marker.exists()  # the worker really died once, mid-item, and the item was retried
    assert (summary.total, summary.done, summary.errors, summary.skipped) == (3, 1, 2, 0)
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in summary.rows}
    assert rows["portrait.png"]["status"] == "ok" and float(rows["portrait.png"]["reprojection_mean_px"]) < 5
    assert "no face" in rows["blank.png"]["error"] and "not an image" in rows["junk.png"]["error"]
    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["hash"] for r in table] == [r["hash"] for r in summary.rows]  # one row per image
    assert list(table[0]) == list(RESULT_COLUMNS)
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == [rows["portrait.png"]["name"]]  # only complete results, nothing partial
    assert (out / folders[0] / "fit" / "report.json").is_file() and (out / folders[0] / "fit" / "head.glb").is_file()
    assert lines and "[3/3]" in lines[-1]
    pq = pytest.importorskip("pyarrow.parquet")
    assert pq.read_table(out / "results.parquet").num_rows == 3


def test_resume_skips_what_is_done(first_run, images):
    out, summary, _, _ = first_run
    before = (out / summary.rows[0]["name"]).stat().st_mtime_ns if summary.rows[0]["status"] == "ok" else None
    ok_name = next(r["name"] for r in summary.rows if r["status"] == "ok")
    (out / ".partial" / "leftover").mkdir(parents=True)  # a killed run's work in progress
    again = run_batch([images / "portrait.png"], out, stages=("fit",), workers=1, progress=lambda s: None)
    assert (again.done, again.errors, again.skipped) == (0, 0, 1)
    assert not (out / ".partial").exists()
    assert (out / ok_name / "fit" / "report.json").is_file()
    with open(out / "results.csv", newline="") as f:
        hashes = [r["hash"] for r in csv.DictReader(f)]
    assert len(hashes) == len(set(hashes))
    del before


def test_cli_batch(first_run, images, capsys):
    from machlib.cli import main

    out, summary, _, _ = first_run
    assert main(["batch", str(images / "portrait.png"), "-o", str(out), "--workers", "1", "-q"]) == 0
    assert "0 done, 0 errors, 1 skipped" in capsys.readouterr().out
    with open(out / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 3  # the other images' rows are kept
    for bad in (["--stages", "fit,paint"], ["--workers", "0"], ["--batch-size", "x"]):
        assert main(["batch", str(images), "-o", str(out / "x"), *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("machlib: error:")
    assert not (out / "x").exists()


@pytest.fixture(scope="module")
def single_fits():
    """fit_portrait, one image at a time: the reference of the batched paths."""
    from skimage import data

    from machlib import pipeline

    photos = [np.asarray(default_portrait()), np.asarray(data.astronaut())]
    return photos, [pipeline.fit_portrait(p) for p in photos]


def test_fit_portraits_equals_fit_portrait(single_fits):
    from machlib import pipeline

    photos, singles = single_fits
    blank = np.full((200, 160, 3), 128, np.uint8)
    # padded to 4 faces (2 found), portraits of different sizes, a faceless image in between
    batched = pipeline.fit_portraits([photos[0], blank, photos[1]], pad_to=4)
    assert isinstance(batched[1], NoFaceError)
    for one, many in zip(singles, (batched[0], batched[2])):
        a, b = one.result, many.result
        assert a.camera.image_size == b.camera.image_size
        np.testing.assert_allclose(b.mesh.vertices, a.mesh.vertices, atol=1e-5)
        np.testing.assert_allclose(b.human.neutral_points, a.human.neutral_points, atol=1e-5)
        np.testing.assert_allclose(b.residuals, a.residuals, atol=1e-3)
        for k in ("rotation", "translation", "focal", "principal"):
            np.testing.assert_allclose(np.asarray(getattr(b.camera, k)), np.asarray(getattr(a.camera, k)),
                                       rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.history["loss"], a.history["loss"], rtol=1e-4, atol=1e-6)
    with pytest.raises(InputError, match="pad_to"):
        pipeline.fit_portraits([photos[0], photos[1]], pad_to=1)
    with pytest.raises(InputError, match="empty"):
        pipeline.fit_portraits([])


def test_batched_folder_equals_the_single_image_run(first_run, single_fits, tmp_path):
    import json

    from machlib import pipeline

    out, summary, _, _ = first_run
    name = next(r["name"] for r in summary.rows if r["status"] == "ok")
    pipeline.write_fit_outputs(tmp_path / "single", single_fits[1][0])
    batch, single = out / name / "fit", tmp_path / "single"
    assert sorted(p.name for p in batch.iterdir()) == sorted(p.name for p in single.iterdir())

    def obj_vertices(path):
        return np.array([[float(v) for v in ln.split()[1:4]] for ln in path.read_text().splitlines()
                         if ln.startswith("v ")])

    np.testing.assert_allclose(obj_vertices(batch / "head.obj"), obj_vertices(single / "head.obj"), atol=2e-5)
    cam_b, cam_s = (json.loads((d / "camera.json").read_text()) for d in (batch, single))
    for k in ("rotation_vector", "translation", "focal", "principal", "image_size"):
        np.testing.assert_allclose(cam_b[k], cam_s[k], rtol=1e-5, atol=1e-6)
    rep_b, rep_s = (json.loads((d / "report.json").read_text()) for d in (batch, single))
    for k in ("mean", "max"):
        assert rep_b["landmarks"]["reprojection_px"][k] == pytest.approx(rep_s["landmarks"]["reprojection_px"][k],
                                                                         abs=1e-3)
    assert rep_b["fit"]["final_loss"] == pytest.approx(rep_s["fit"]["final_loss"], rel=1e-4)


def test_identity_distance():
    pytest.importorskip("dlib")
    photo = np.asarray(default_portrait())
    if identity_distance(photo, np.zeros(photo.shape[:2] + (4,), np.float32)) is None:
        pytest.skip("face-recognition-models is not installed")
    # a render with no coverage leaves the photo itself: distance 0
    assert identity_distance(photo, np.zeros(photo.shape[:2] + (4,), np.float32)) == 0.0
    # a grey head over the whole frame: no face to compare
    grey = np.dstack([np.full(photo.shape[:2] + (3,), 0.5, np.float32), np.ones(photo.shape[:2], np.float32)])
    assert identity_distance(photo, grey) is None
    with pytest.raises(InputError, match="render"):
        identity_distance(photo, np.zeros((10, 10, 4), np.float32))
