"""Packages whose public names load on first access (:pep:`562`), so importing them is cheap."""

from __future__ import annotations

import importlib


def lazy_names(package: str, namespace: dict, names: dict, modules: tuple = ()):
    """The module-level ``__getattr__`` and ``__dir__`` of a package whose names load lazily.

    Args:
        package: the package's ``__name__``.
        namespace: its ``globals()``: a loaded name is kept there, so it loads once.
        names: public name → the module that defines it (relative, e.g. ``"._data"``).
        modules: submodules loaded as ``package.NAME`` on first access.

    Returns:
        ``(__getattr__, __dir__)``, to assign at the package's top level.
    """

    def __getattr__(name: str):
        """Import a public name or submodule on first access and keep it (:pep:`562`)."""
        if name in names:
            value = getattr(importlib.import_module(names[name], package), name)
        elif name in modules:
            value = importlib.import_module(f".{name}", package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
