"""Documentation coverage check: every public symbol of machlib carries a docstring.

In the spirit of optax's ``docs/ext/coverage_check.py``: the public surface of each package is its
``__all__``, and a symbol listed there without a docstring fails the build.

Used three ways:

* as a Sphinx extension (``extensions = ["coverage_check"]``): runs at ``builder-inited`` and
  raises :class:`sphinx.errors.ExtensionError`, so every build (``-b html``, ``-b doctest``) fails;
* from the tests: ``undocumented(PACKAGES)`` returns the offending names;
* as a script: ``python docs/_ext/coverage_check.py`` exits non-zero and lists them.

A symbol counts as documented when

* a class has its *own* non-empty ``__doc__`` (not one inherited from a base class, and not the
  ``Name(field: type, ...)`` signature that :mod:`dataclasses` / equinox invent when there is none);
* a function, method or other callable has a non-empty ``__doc__`` that is not merely its type's
  docstring (e.g. a bare :func:`functools.partial`);
* a module has a non-empty module docstring;
* a constant (any other object) has an attribute docstring (a string literal right after the
  assignment, or a ``#:`` comment) in the package's ``__init__.py`` or one of its modules.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
import types
from collections.abc import Iterable, Sequence

#: The public packages whose ``__all__`` is documented and checked.
PACKAGES: tuple[str, ...] = (
    "machlib", "machlib.geometry", "machlib.human", "machlib.render", "machlib.texture", "machlib.interop", "machlib.hair",
    "machlib.text", "machlib.assets", "machlib.animation",
    "machlib.export", "machlib.character", "machlib.pipeline", "machlib.batch", "machlib.viewer",
)


def _own_class_doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str) or not doc.strip():
        return None
    if dataclasses.is_dataclass(cls) or hasattr(cls, "__dataclass_fields__"):
        # dataclasses (and equinox Modules) set __doc__ to "Name(sig)" when the class has none.
        text = doc.strip()
        if "\n" not in text and text.startswith(f"{cls.__name__}(") and text.endswith(")"):
            return None
    return doc


def attribute_doc(package: types.ModuleType, name: str) -> str | None:
    """An attribute docstring for ``name`` in ``package``, any of its loaded submodules or a core
    module (``machlib._*``)."""
    from sphinx.pycode import ModuleAnalyzer, PycodeError

    prefix = package.__name__ + "."
    modules = [package.__name__] + sorted(m for m in list(sys.modules) if m.startswith(prefix))
    # machlib's private core modules (meshes, strands, cameras) define what packages re-export
    modules += sorted(m for m in list(sys.modules) if m.startswith("machlib._") and m.count(".") == 1)
    for modname in modules:
        try:
            analyzer = ModuleAnalyzer.for_module(modname)
            attr_docs = analyzer.find_attr_docs()
        except PycodeError:
            continue
        lines = attr_docs.get(("", name))
        if lines and "".join(lines).strip():
            return "\n".join(lines)
    return None


def _is_documented(package: types.ModuleType, name: str, obj: object) -> bool:
    if inspect.isclass(obj):
        return _own_class_doc(obj) is not None
    if inspect.ismodule(obj):
        return bool((obj.__doc__ or "").strip())
    doc = getattr(obj, "__doc__", None)
    if callable(obj):
        if not isinstance(doc, str) or not doc.strip():
            return False
        return doc is not type(obj).__doc__ or inspect.isroutine(obj)
    return attribute_doc(package, name) is not None


def undocumented(packages: Iterable[str] = PACKAGES) -> list[str]:
    """Fully qualified public names (``package.name``) that lack a docstring.

    Also reports names listed in ``__all__`` that the package does not define, and packages
    without ``__all__``. Import errors propagate: a package that cannot be imported is a failure.

    Args:
        packages: dotted package names, e.g. ``["machlib", "machlib.geometry"]``.

    Returns:
        Sorted list of problems, one string each; empty when everything is documented.
    """
    problems: list[str] = []
    for pkg_name in packages:
        package = importlib.import_module(pkg_name)
        public = getattr(package, "__all__", None)
        if public is None:
            problems.append(f"{pkg_name}: no __all__")
            continue
        if not (package.__doc__ or "").strip():
            problems.append(f"{pkg_name}: package has no module docstring")
        for name in public:
            if not hasattr(package, name):
                problems.append(f"{pkg_name}.{name}: listed in __all__ but not defined")
                continue
            if not _is_documented(package, name, getattr(package, name)):
                problems.append(f"{pkg_name}.{name}: missing or empty docstring")
    return sorted(problems)


def check(packages: Iterable[str] = PACKAGES) -> None:
    """Raise :class:`RuntimeError` listing every undocumented public symbol, if any."""
    problems = undocumented(packages)
    if problems:
        raise RuntimeError(
            f"{len(problems)} public symbol(s) are undocumented:\n  " + "\n  ".join(problems)
        )


def _builder_inited(app) -> None:
    from sphinx.errors import ExtensionError

    try:
        check(app.config.api_packages)
    except RuntimeError as e:
        raise ExtensionError(f"coverage_check: {e}") from None


def setup(app):
    """Sphinx entry point: check coverage when the builder starts."""
    if "api_packages" not in app.config:
        app.add_config_value("api_packages", list(PACKAGES), "env")
    app.connect("builder-inited", _builder_inited)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: check the packages named in ``argv`` (default :data:`PACKAGES`)."""
    names = list(argv if argv is not None else sys.argv[1:]) or list(PACKAGES)
    problems = undocumented(names)
    for p in problems:
        print(p)
    if problems:
        print(f"coverage_check: {len(problems)} undocumented public symbol(s)", file=sys.stderr)
        return 1
    print(f"coverage_check: all public symbols of {', '.join(names)} are documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
