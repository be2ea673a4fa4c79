"""Viewer: a local, static three.js page showing an assembled character (``machlib view OUT/``).

* :func:`build_viewer` writes ``OUT/viewer/``: an HTML page with orbit controls, a hair toggle,
  emotion and blendshape sliders and a download link for ``avatar.zip``, plus the three.js
  modules it needs (installed from npm once by :func:`install_three`, pinned to
  :data:`THREE_VERSION`, served locally: no CDN).
* :func:`serve_viewer` serves the output folder over HTTP from a background thread;
  :func:`run_viewer` builds, serves and blocks until Ctrl-C (the CLI's ``machlib view``).
* :class:`ViewerError` is raised when Node.js/npm are missing or the install fails.

The page reads URL parameters for scripting: ``?hair=0``,
``?expression=happiness=0.8,surprise=0.3``, ``?morph=jawOpen:1,eyeBlinkLeft:0.5``, ``?yaw=90``
and ``?panel=0``; once the avatar is drawn its title becomes ``machlib viewer: ready``.
"""

from ._build import (
    THREE_VERSION,
    ViewerError,
    build_viewer,
    install_three,
    module_imports,
    run_viewer,
    serve_viewer,
)

__all__ = [
    "THREE_VERSION", "ViewerError", "install_three", "build_viewer", "serve_viewer", "run_viewer",
    "module_imports",
]
