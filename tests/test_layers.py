"""machlib's packages import one another in one order, without cycles (issue 14).

Every ``import`` of a machlib module, at module level or inside a function, must go to a lower
layer of :data:`LAYERS` or stay in its own package. The one exception is :mod:`machlib.interop`,
the adapter that holds every torch model: a lower layer may reach it only inside a function, so
that the torch side loads when a model is asked for (an LLM parser, a sentence embedder).
"""

import ast
from pathlib import Path

import machlib

ROOT = Path(machlib.__file__).parent

#: Low to high. ``core`` is machlib's top-level private modules (cameras, meshes, images, the
#: numpy rasterizer); ``scene`` the multi-part preview renderer on top of the render primitives.
LAYERS = (
    ("core",),
    ("render", "export"),
    ("scene",),
    ("text",),
    ("human",),
    ("geometry",),
    ("texture", "hair", "animation"),
    ("interop",),
    ("assets",),
    ("pipeline",),
    ("character",),
    ("batch",),
    ("viewer",),
    ("cli",),
    ("machlib",),  # the package's __init__ re-exports every subpackage
)
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}
DEFERRED = {"interop"}  # reachable from below inside functions only


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "machlib"
    top = parts[1]
    if top == "_scene":
        return "scene"
    if top in ("pipeline", "batch", "cli") or (ROOT / top).is_dir():
        return top
    return "core"


def _imports():
    """(file, line, importer module, imported module, at module level?) for every machlib import."""
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(rel.parts)
        package = path.name == "__init__.py"
        if package:
            module = module[: -len(".__init__")]
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".") if package else module.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                    names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
                elif node.module and node.module.split(".")[0] == "machlib":
                    names = [node.module]
                else:
                    continue
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.split(".")[0] == "machlib"]
            else:
                continue
            for name in names:
                yield path.relative_to(ROOT.parent), node.lineno, module, name, id(node) in top


def test_every_import_goes_down_the_layers():
    assert set(RANK) >= {_layer(f"machlib.{p.name}") for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    wrong = []
    for path, line, importer, imported, module_level in _imports():
        a, b = _layer(importer), _layer(imported)
        if a == b or RANK[b] < RANK[a]:
            continue
        if b in DEFERRED and not module_level:
            continue
        wrong.append(f"{path}:{line}: {a} imports {b} ({imported}){'' if module_level else ' inside a function'}")
    assert not wrong, "imports against the layer order " + " → ".join("/".join(n) for n in LAYERS) + ":\n" + "\n".join(wrong)


def test_the_checker_sees_a_violation(tmp_path):
    """The parser resolves relative imports the way Python does (a test that can fail)."""
    assert _layer("machlib.geometry._fit") == "geometry" and _layer("machlib._camera") == "core"
    assert _layer("machlib._scene") == "scene" and _layer("machlib") == "machlib"
    found = {(str(p), imp) for p, _, _, imp, _ in _imports()}
    assert ("machlib/geometry/_fit.py", "machlib.human") in found or any(
        p == "machlib/geometry/_human_fit.py" and i.startswith("machlib.human") for p, i in found)
