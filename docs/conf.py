"""Sphinx configuration for machlib's documentation.

Build (no network needed)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
    python -m sphinx -W --keep-going -b doctest docs docs/_build/doctest

The API pages under ``api/`` are generated from each package's ``__all__`` by ``_ext/apigen.py``;
``_ext/coverage_check.py`` fails the build when a public symbol has no docstring.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

_DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(_DOCS / "_ext"))
sys.path.insert(0, str(_DOCS.parent))  # the repository root: document the source tree
os.environ.setdefault("JAX_PLATFORMS", "cpu")  # docs never need an accelerator

import machlib  # noqa: E402  (fail early and loudly if the package does not import)
from coverage_check import PACKAGES  # noqa: E402

project = "machlib"
author = "machlib contributors"
copyright = "machlib contributors"
release = getattr(machlib, "__version__", "0.1.0")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "coverage_check",
    "apigen",
]

# The public packages: one API page each, and each checked for docstrings. To add a package, edit
# PACKAGES in _ext/coverage_check.py (the tests read the same list).
api_packages = list(PACKAGES)

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
nitpicky = False
default_role = "code"

# -- autodoc / autosummary / napoleon ---------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": True}
autodoc_preserve_defaults = True

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as fields, so they do not clash with autodoc members
napoleon_use_rtype = False
napoleon_attr_annotations = False  # jaxtyping shapes ("*b H W") are not reST

# -- doctest ----------------------------------------------------------------------------------
doctest_global_setup = """
import numpy as np
import jax
import jax.numpy as jnp
jax.config.update("jax_enable_x64", False)  # every document starts from JAX's defaults
"""
doctest_test_doctest_blocks = "default"

# -- HTML -------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "machlib"
html_static_path: list[str] = []
html_theme_options = {
    "use_download_button": False,
    "use_fullscreen_button": True,
    "use_repository_button": False,
    "use_issues_button": False,
    "use_edit_page_button": False,
    "use_source_button": False,
    "launch_buttons": {},
    "show_toc_level": 2,
    # the sidebar lists the current page's branch, not all ~600 API pages on every page: the full
    # tree made the html build quadratic (writing the 613 pages: 245 s CPU, 75 s collapsed)
    "collapse_navbar": True,
    "navigation_with_keys": False,
}
html_show_sourcelink = False


# -- type hints -------------------------------------------------------------------------------
# autodoc spells jaxtyping annotations with private module paths, e.g.
# ``jaxtyping.Float[jaxlib._jax.Array, 'N 3']``; show them as written in the source,
# ``Float[Array, 'N 3']``.
_TYPE_SPELLINGS = [
    (re.compile(r"~?\bjaxlib\.[\w.]*\.(?:Array|ArrayImpl)\b"), "Array"),
    (re.compile(r"~?\bjax\.Array\b"), "Array"),
    (re.compile(r"~?\bjaxtyping\.(?=[A-Z])"), ""),
]


def _tidy_type_names(app, domain, objtype, contentnode):
    from docutils import nodes

    for node in list(contentnode.findall(nodes.Text)):
        text = new = str(node)
        for pattern, repl in _TYPE_SPELLINGS:
            new = pattern.sub(repl, new)
        if new != text:
            node.parent.replace(node, nodes.Text(new))


def setup(app):
    # After autodoc has added the type hints as ``:type:`` fields (default priority 500), before
    # the Python domain turns the fields into cross-references.
    app.connect("object-description-transform", _tidy_type_names, priority=900)
