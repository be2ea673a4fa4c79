"""machlib.batch on a local Ray: inputs, one folder and one row per image, bad images as error
rows, a worker killed mid-item, and resume by content hash (issue 16)."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from PIL import Image

from machlib import InputError, default_portrait
from machlib.batch import RESULT_COLUMNS, content_hash, plan_items, read_inputs, run_batch

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
    try:
        summary = run_batch(images, out, stages=("fit",), workers=1, progress=lines.append)
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
