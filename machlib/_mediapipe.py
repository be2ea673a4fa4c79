"""MediaPipe's legacy solutions, imported without the matplotlib plotting machlib never uses.

Importing any ``mediapipe.python.solutions`` module runs ``mediapipe/__init__.py``, which imports
every solution, among them ``drawing_utils``, whose only use of ``matplotlib.pyplot`` is a 3-D
plotting helper. Importing pyplot costs about 0.6 s of CPU (its figure, text and font machinery)
and, in a fresh cache folder, building matplotlib's font list too. :func:`solution` imports
MediaPipe with a stand-in for ``matplotlib.pyplot`` that imports the real module the first time
one of its attributes is read, and then takes the stand-in out of ``sys.modules``: MediaPipe works
as before (its plotting helper would import pyplot when called), and a later ``import
matplotlib.pyplot`` anywhere imports the real module.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types

__all__ = ["solution"]

_LOCK = threading.Lock()
_PYPLOT = "matplotlib.pyplot"


class _Deferred(types.ModuleType):
    """Stands for a module not imported yet: the first attribute read imports the real module
    and reads the attribute there."""

    def __getattr__(self, attr: str):
        if sys.modules.get(self.__name__) is self:
            sys.modules.pop(self.__name__, None)
        return getattr(importlib.import_module(self.__name__), attr)


def solution(name: str) -> types.ModuleType:
    """The module ``mediapipe.python.solutions.<name>`` (e.g. ``"face_mesh"``), MediaPipe imported
    without ``matplotlib.pyplot`` if this is its first import in the process.

    Raises:
        ImportError: MediaPipe or the solution is not installed.
    """
    with _LOCK:
        if "mediapipe" not in sys.modules and _PYPLOT not in sys.modules:
            stand_in = _Deferred(_PYPLOT)
            sys.modules[_PYPLOT] = stand_in
            try:
                importlib.import_module("mediapipe")
            finally:
                if sys.modules.get(_PYPLOT) is stand_in:
                    del sys.modules[_PYPLOT]
    return importlib.import_module(f"mediapipe.python.solutions.{name}")
