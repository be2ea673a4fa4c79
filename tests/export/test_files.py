"""write_bundle: the deterministic archive is byte for byte what zipfile writes (level 3, sorted,
dated 2020-01-01), members compressed ahead are used only where they match their file, and
unsafe or missing names raise."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from machlib._errors import InputError
from machlib.export import write_bundle
from machlib.export._files import _deflate, _Deflated


def zipfile_bundle(root, names) -> bytes:
    """The archive as zipfile writes it (write_bundle's implementation before it wrote the
    layout itself so that members can be compressed ahead on other threads)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n in sorted(set(names)):
            info = zipfile.ZipInfo(n, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, (root / n).read_bytes(), compresslevel=3)
    return buf.getvalue()


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    contents = {
        "b.json": b'{"a": 1}\n' * 300,
        "a.glb": rng.integers(0, 8, 200_000, dtype=np.uint8).tobytes(),  # compressible binary
        "noise.png": rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes(),  # incompressible
        "empty.txt": b"",
        "sub/dir/c.obj": b"v 0 0 0\n" * 1000,
    }
    for n, data in contents.items():
        (tmp_path / n).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / n).write_bytes(data)
    return tmp_path, list(contents)


def test_bundle_is_zipfiles_archive(files):
    root, names = files
    write_bundle(root / "out.zip", root, names + [names[0]])  # duplicates once
    data = (root / "out.zip").read_bytes()
    assert data == zipfile_bundle(root, names)
    z = zipfile.ZipFile(io.BytesIO(data))
    assert z.testzip() is None and z.namelist() == sorted(names)
    assert all(z.read(n) == (root / n).read_bytes() for n in names)


def test_members_compressed_ahead_are_used_only_where_they_match(files):
    root, names = files
    ahead = {n: _deflate((root / n).read_bytes()) for n in names}
    write_bundle(root / "ahead.zip", root, names, deflated=ahead)
    assert (root / "ahead.zip").read_bytes() == zipfile_bundle(root, names)
    # stale entries (another file's contents, a wrong size or CRC) are compressed again
    stale = dict(ahead, **{"b.json": ahead["a.glb"], "a.glb": _Deflated(1, ahead["a.glb"].crc, b"x"),
                           "empty.txt": _Deflated(0, 123, b"")})
    write_bundle(root / "stale.zip", root, names, deflated=stale)
    assert (root / "stale.zip").read_bytes() == zipfile_bundle(root, names)


@pytest.mark.parametrize("name", ["../x", "/abs", "a b", "", "missing.txt", "sub"])
def test_unsafe_or_missing_names_raise(files, name):
    root, names = files
    with pytest.raises(InputError, match="write_bundle"):
        write_bundle(root / "bad.zip", root, names + [name])
    assert not (root / "bad.zip").exists()
