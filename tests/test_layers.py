"""The package's three layers, read from its imports: the assignment, experiments on it, the report."""

import ast
import json
import subprocess
import sys
from pathlib import Path

from conftest import run_env

PACKAGE = Path(__file__).resolve().parent.parent / "assignment1"
LAYERS = {"assignment1": 0, "assignment1.experiments": 1, "assignment1.report": 2}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    return max(level for prefix, level in LAYERS.items() if module == prefix or module.startswith(prefix + "."))


def imported(path: Path, source: str | None = None) -> set[str]:
    """What module ``path`` (its text, or ``source``) imports from the package, as absolute names."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(source if source is not None else path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = ".".join(p for p in (base, node.module) if p)
            out |= {target} | {f"{target}.{a.name}" for a in node.names}
    return {m for m in out if m == "assignment1" or m.startswith("assignment1.")}


def upward(path: Path, source: str | None = None) -> list[str]:
    return sorted(m for m in imported(path, source) if layer(m) > layer(module_name(path)))


def test_nothing_imports_upward():
    # python -m assignment1 is an entry point, above everything it starts
    modules = [p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py"]
    assert len(modules) > 20
    assert {module_name(p): upward(p) for p in modules if upward(p)} == {}


def test_no_two_modules_share_a_name():
    names = [p.stem for p in PACKAGE.rglob("*.py") if p.stem not in ("__init__", "__main__")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


#: Imports each layer's modules in turn in a fresh interpreter, printing the modules of the layers above it
#: that are loaded then, and at the end whether matplotlib's settings are still those of matplotlib alone.
IMPORT_EACH_LAYER = """
import importlib, json, sys
import matplotlib
settings = dict(matplotlib.rcParams)
layers = json.loads(sys.argv[1])
for i, modules in enumerate(layers):
    for m in modules:
        importlib.import_module(m)
    above = {m for later in layers[i + 1:] for m in later}
    print(json.dumps(sorted(above & set(sys.modules))))
print(json.dumps(sorted(k for k, v in matplotlib.rcParams.items() if settings[k] != v)))
"""


def test_importing_a_layer_loads_none_above_it_and_changes_no_setting():
    modules = [module_name(p) for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__main__.py"]
    layers = [[m for m in modules if layer(m) == level] for level in sorted(set(LAYERS.values()))]
    assert all(len(modules) > 3 for modules in layers)
    r = subprocess.run([sys.executable, "-c", IMPORT_EACH_LAYER, json.dumps(layers)], capture_output=True,
                       text=True, env=run_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    # Python's own view of the imports: no module of a higher layer loaded by a lower one
    *loaded_above, changed = map(json.loads, r.stdout.splitlines())
    assert loaded_above == [[]] * len(layers)
    # and matplotlib's global settings as they were: figures take their style only as they are drawn
    assert changed == []


def test_no_lower_layer_names_a_table_or_section_of_the_report():
    # every string the code of the assignment and experiments layers holds (docstrings aside)
    import re

    report_names = re.compile(r"^(Table|Figure) \d+$|^0\d_[a-z_]+$")  # "Table 7", "06_search"
    named = []
    for path in PACKAGE.rglob("*.py"):
        if layer(module_name(path)) == LAYERS["assignment1.report"]:
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(
            n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body and isinstance(n.body[0], ast.Expr)}
        named += [f"{path.name}: {n.value!r}" for n in ast.walk(tree) if isinstance(n, ast.Constant)
                  and isinstance(n.value, str) and id(n) not in docstrings and report_names.match(n.value)]
    # the report layer passes its names in; no lower layer knows them
    assert named == []
