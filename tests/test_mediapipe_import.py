"""machlib._mediapipe: MediaPipe's solutions import without matplotlib's pyplot, which still works."""

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("mediapipe")

_SCRIPT = textwrap.dedent("""
    import sys
    from machlib._mediapipe import solution

    face_mesh = solution("face_mesh")
    assert hasattr(face_mesh, "FaceMesh")
    assert solution("face_mesh_connections").FACEMESH_FACE_OVAL
    assert "matplotlib.pyplot" not in sys.modules, "the stand-in stayed in sys.modules"
    assert "matplotlib.figure" not in sys.modules, "pyplot was imported"
    from mediapipe.python.solutions import drawing_utils

    # MediaPipe's plotting helper reaches the real pyplot through the stand-in it holds
    figure = drawing_utils.plt.figure
    import matplotlib.pyplot as plt

    assert type(plt).__name__ == "module" and plt.figure is figure
    assert sys.modules["matplotlib.pyplot"] is plt
    print("ok")
""")


def test_solutions_import_without_pyplot_and_pyplot_still_works():
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]
