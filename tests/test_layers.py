"""The package's three layers, read from its imports: the assignment, experiments on it, the report."""

import ast
from pathlib import Path

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


def test_the_check_sees_upward_imports_in_every_form():
    model, runs = PACKAGE / "model.py", PACKAGE / "experiments" / "runs.py"
    assert upward(model, "from .experiments import runs") == ["assignment1.experiments", "assignment1.experiments.runs"]
    assert upward(model, "import assignment1.report.runner") == ["assignment1.report.runner"]
    assert upward(runs, "from ..report.section import start") == ["assignment1.report.section",
                                                                  "assignment1.report.section.start"]
    assert upward(runs, "from .. import config, train") == [] and upward(runs) == []
