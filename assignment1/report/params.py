"""Report parameters: which names each section declares, what each name accepts, and quick mode.

A section notebook declares its parameters once, in its cell tagged ``parameters`` (name, type, default and a
comment each). This module reads those declarations (:func:`declared`) and says what values each name accepts
(:data:`CHECKS`): a run setting, or a name that plays a setting's part (``decay_eta0`` is an ``eta``), by that
setting's check in :class:`~assignment1.config.RunConfig`, the rest here. Both the report runner and a notebook's
own first cell (:func:`assignment1.report.section.start`) check through :func:`resolve`.
"""

from __future__ import annotations

import ast
import functools
import json
from types import SimpleNamespace

from .. import gradcheck, validate
from ..config import SETTINGS, RunConfig
from ..experiments import paths, search


def _as(setting: str) -> validate.Check:
    """The check of the run setting ``setting``."""
    return SETTINGS[setting].metadata["check"]


def _settings(name, value):
    pairs = validate.sequence(name, value, "a non-empty list of [lam, eta] pairs", nonempty=True)
    return [[_as(k)(f"{name}[{i}] {k}", v) for k, v in zip(("lam", "eta"), validate.sequence(
        f"{name}[{i}]", pair, "a [lam, eta] pair", length=2))] for i, pair in enumerate(pairs)]


def _seeds(name, value):
    if len(set(seeds := validate.each(_as("seed"), "a non-empty list of integers")(name, value))) != len(seeds):
        raise validate.ParameterError(name, "not repeat a seed", seeds)
    return seeds


def _range(name, value):
    lo, hi = validate.sequence(name, value, "a [low, high] pair", length=2)
    if (lo := validate.positive(f"{name}[0]", lo)) > (hi := validate.positive(f"{name}[1]", hi)):
        raise validate.ParameterError(name, "be a range with low <= high", value)
    return [lo, hi]


def _reference(keys, n_numbers):
    """Rows of the reference's numbers: the values of the settings ``keys`` then ``n_numbers`` numbers
    (``reference_table1``: ``[lam, eta, loss, cost, accuracy]`` rows)."""
    row_what = f"[{', '.join(keys)}, then {n_numbers} number{'s' * (n_numbers != 1)}]"

    def row(name, value):
        row = validate.sequence(name, value, row_what, length=len(keys) + n_numbers)
        return ([_as(k)(f"{name} {k}", v) for k, v in zip(keys, row)]
                + [_NUMBER(f"{name}[{j}]", v) for j, v in enumerate(row) if j >= len(keys)])
    return validate.each(row, f"a list of {row_what} rows", nonempty=False)


def _n_jobs(name, value):
    if (value := validate.integer(low=-1)(name, value)) == 0:
        raise validate.ParameterError(name, "be -1 (one per core) or a positive count", 0)
    return value


_NUMBER = validate.real(low=0.0)
#: What each report parameter accepts: the run settings, the names that play a setting's part, and the rest.
CHECKS = {
    **{name: f.metadata["check"] for name, f in SETTINGS.items()},
    **{name: _as(setting) for name, setting in {
        "big_val_size": "val_size", "final_val_size": "val_size", "decay_eta0": "eta", "decay_baseline_eta": "eta",
        "mbce_eta": "eta", "ce_eta": "eta", "decay_milestones": "milestones", "decay_epochs": "n_epochs",
        "decay_lam": "lam", "mbce_lam": "lam", "grad_lam": "lam", "grad_init_std": "init_std"}.items()},
    "data_dir": validate.text, "data_url": validate.text, "data_md5": validate.text, "reports_dir": validate.text,
    "seeds": _seeds, "settings": _settings, "n_jobs": _n_jobs, "quick": validate.flag, "decay": validate.flag,
    "quick_epochs": validate.integer(low=1), "n_samples": validate.integer(low=1), "h": validate.positive,
    "method": validate.choice(gradcheck.METHODS), "search_trials": validate.integer(low=1),
    "search_trials_per_round": validate.integer(low=1), "search_seed": validate.integer(low=0),
    "search_lam": _range, "search_eta": _range, "search_batches": validate.each(_as("n_batch")),
    "search_flip": validate.flag, "search_epochs": validate.each(_as("n_epochs")),
    "search_schedules": validate.each(validate.choice(search.SCHEDULES)),
    "search_average": validate.each(_as("average")), "search_shifts": validate.each(_as("shift")),
    "search_pruner": validate.choice(search.PRUNERS), "reference_val_acc": _NUMBER,
    **dict.fromkeys(("reference_table1", "reference_table2", "reference_table3"), _reference(("lam", "eta"), 3)),
    "reference_table5": _reference(("loss", "lam", "eta"), 1), "reference_decay_val_acc": _NUMBER,
    "ceiling_acc": _NUMBER, "n_misclassified": validate.integer(low=0),
}


def check(name: str, value):
    """``value`` checked against what ``name`` accepts; unknown names are refused."""
    if name not in CHECKS:
        raise validate.UnknownParameter([name], "no report parameter has that name", CHECKS)
    try:
        return CHECKS[name](name, value)
    except validate.ParameterError as e:
        if not (isinstance(value, str) and value.lstrip().startswith("[")):
            raise
        # papermill's -p (and the runner's, typed alike) passes a list as its text
        raise validate.ParameterError(e.name, e.requirement, value, f"-p passes text: give a list as YAML, "
                                                                   f"-y '{name}: {value}'") from None


#: The notebook a student opens first, to train live; not a section of the report.
EXPLORE = "00_explore"


def sections() -> list[str]:
    """The report's sections in order: the names of ``notebooks/NN_*.ipynb`` but :data:`EXPLORE`."""
    return sorted(p.stem for p in paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb") if p.stem != EXPLORE)


@functools.cache
def declared(section: str) -> dict:
    """``{name: default}`` from the cell tagged ``parameters`` of ``notebooks/<section>.ipynb``: the names and
    defaults papermill finds there (a test checks it), read with :mod:`ast`. Every notebook's first cell asks,
    and importing papermill took it 0.2 s, 1.1 s with JupyterLab installed (whose ``jsonschema`` extras
    compile grammars on import)."""
    cells = json.loads((paths.NOTEBOOKS_DIR / f"{section}.ipynb").read_text(encoding="utf-8"))["cells"]
    source = "".join(next(c["source"] for c in cells if "parameters" in c["metadata"].get("tags", [])))
    return {(node.target if isinstance(node, ast.AnnAssign) else node.targets[0]).id: ast.literal_eval(node.value)
            for node in ast.parse(source).body}


def scaled_milestones(milestones: list[int], n_epochs: int, full_epochs: int) -> list[int]:
    """Milestones moved proportionally from a ``full_epochs`` schedule to ``n_epochs``."""
    scaled = sorted({max(1, round(m * n_epochs / full_epochs)) for m in milestones})
    return [m for m in scaled if m < n_epochs] or [max(1, n_epochs // 2)]


def resolve(values: dict) -> SimpleNamespace:
    """``values`` checked, with quick mode applied: the parameters a section runs with.

    Quick mode keeps the first seed only and at most ``quick_epochs`` epochs
    (the decay schedule keeps its shape over at most twice that), and at most
    four search trials.
    """
    p = {name: check(name, value) for name, value in values.items()}
    if p.get("quick"):
        q = p.get("quick_epochs", 3)
        shorter = {"seeds": lambda seeds: seeds[:1], "n_epochs": lambda n: min(n, q),
                   "search_epochs": lambda epochs: sorted({min(e, q) for e in epochs}),
                   "search_trials": lambda n: min(n, 4), "decay_epochs": lambda n: min(n, 2 * q)}
        full, p = p.get("decay_epochs"), {k: shorter[k](v) if k in shorter else v for k, v in p.items()}
        if "decay_milestones" in p and full is not None:  # the decay schedule keeps its shape
            p["decay_milestones"] = scaled_milestones(p["decay_milestones"], p["decay_epochs"], full)
    return SimpleNamespace(**p)


def check_data_size(p: SimpleNamespace, n_images: int) -> None:
    """Refuse validation sizes and batch sizes that ``n_images`` training images cannot serve.

    ``p`` are one section's parameters; each pair is checked by
    :meth:`RunConfig.check_data_size <assignment1.config.RunConfig.check_data_size>`.
    """
    values = vars(p)
    val_sizes = [name for name in ("val_size", "big_val_size", "final_val_size") if name in values]
    batches = [("n_batch", values["n_batch"])] if "n_batch" in values else []
    batches += [(f"search_batches[{i}]", v) for i, v in enumerate(values.get("search_batches", []))]
    for val_name in val_sizes:  # the largest validation set leaves the smallest training set
        for batch_name, n_batch in batches or [("n_batch", 1)]:
            RunConfig(val_size=values[val_name], n_batch=n_batch).check_data_size(n_images, (val_name, batch_name))
