"""Report parameters: which names each section declares, what each name accepts, and quick mode.

A section notebook declares its parameters once, in its cell tagged
``parameters`` (name, type, default and a comment each). This module reads
those declarations (:func:`declared`) and says what values each name accepts
(:func:`check`): a run setting by :meth:`RunConfig.check <assignment1.config.RunConfig.check>`,
a name that plays a setting's part (``decay_eta0`` is an ``eta``) by the same
check, the rest here. Both the report runner and a notebook's own first cell
(:func:`assignment1.report.section.start`) check through :func:`resolve`.
"""

from __future__ import annotations

import ast
import functools
from types import SimpleNamespace

from .. import gradcheck, validate
from ..config import SETTINGS, RunConfig
from ..experiments import paths, search

#: Section parameters that play a run setting's part, and the setting.
AS_SETTING = {"big_val_size": "val_size", "decay_eta0": "eta", "decay_milestones": "milestones",
              "decay_epochs": "n_epochs", "decay_lam": "lam", "decay_baseline_eta": "eta", "mbce_eta": "eta",
              "ce_eta": "eta", "mbce_lam": "lam", "grad_lam": "lam", "grad_init_std": "init_std",
              "final_val_size": "val_size"}


def _text(name, value):
    if not isinstance(value, str):
        raise validate.ParameterError(name, "be a string", value)
    return value


def _settings(name, value):
    out = []
    for i, pair in enumerate(validate.sequence(name, value, "a non-empty list of [lam, eta] pairs", nonempty=True)):
        lam, eta = validate.sequence(f"{name}[{i}]", pair, "a [lam, eta] pair", length=2)
        out.append([RunConfig.check(f"{name}[{i}] lam", lam, "lam"), RunConfig.check(f"{name}[{i}] eta", eta, "eta")])
    return out


def _seeds(name, value):
    seeds = [RunConfig.check(f"{name}[{i}]", s, "seed")
             for i, s in enumerate(validate.sequence(name, value, "a non-empty list of integers", nonempty=True))]
    if len(set(seeds)) != len(seeds):
        raise validate.ParameterError(name, "not repeat a seed", seeds)
    return seeds


def _each(setting, what="a non-empty list"):
    """A non-empty list, each item checked as ``setting`` (``search_batches`` are ``n_batch`` values)."""
    def check(name, value):
        return [RunConfig.check(f"{name}[{i}]", v, setting)
                for i, v in enumerate(validate.sequence(name, value, what, nonempty=True))]
    return check


def _schedules(name, value):
    return [validate.choice(f"{name}[{i}]", v, search.SCHEDULES)
            for i, v in enumerate(validate.sequence(name, value, "a non-empty list", nonempty=True))]


def _reference(keys, n_numbers):
    """Rows of the reference's numbers: the values of the settings ``keys`` then ``n_numbers`` numbers
    (``reference_table1``: ``[lam, eta, loss, cost, accuracy]`` rows)."""
    def check(name, value):
        row_what = f"[{', '.join(keys)}, then {n_numbers} number{'s' * (n_numbers != 1)}]"
        rows = []
        for i, row in enumerate(validate.sequence(name, value, f"a list of {row_what} rows")):
            row = validate.sequence(f"{name}[{i}]", row, row_what, length=len(keys) + n_numbers)
            rows.append([RunConfig.check(f"{name}[{i}] {k}", v, k) for k, v in zip(keys, row)]
                        + [validate.real(f"{name}[{i}][{j}]", v, low=0.0) for j, v in enumerate(row) if j >= len(keys)])
        return rows
    return check


def _n_jobs(name, value):
    value = validate.integer(name, value, low=-1)
    if value == 0:
        raise validate.ParameterError(name, "be -1 (one per core) or a positive count", 0)
    return value


def _int(low):
    return lambda name, value: validate.integer(name, value, low=low)


CHECKS = {
    "data_dir": _text, "data_url": _text, "data_md5": _text, "reports_dir": _text,
    "seeds": _seeds, "settings": _settings, "n_jobs": _n_jobs, "quick": validate.flag, "quick_epochs": _int(1),
    "n_samples": _int(1), "h": validate.positive, "method": lambda n, v: validate.choice(n, v, gradcheck.METHODS),
    "search_trials": _int(1), "search_trials_per_round": _int(1), "search_seed": _int(0),
    "search_lam": validate.positive_range, "search_eta": validate.positive_range, "search_batches": _each("n_batch"),
    "search_flip": validate.flag, "search_epochs": _each("n_epochs"), "search_schedules": _schedules,
    "search_average": _each("average"), "search_shifts": _each("shift"),
    "search_pruner": lambda n, v: validate.choice(n, v, search.PRUNERS),
    "reference_val_acc": lambda n, v: validate.real(n, v, low=0.0),
    **dict.fromkeys(("reference_table1", "reference_table2", "reference_table3"), _reference(("lam", "eta"), 3)),
    "reference_table5": _reference(("loss", "lam", "eta"), 1),
    "reference_decay_val_acc": lambda n, v: validate.real(n, v, low=0.0),
    "ceiling_acc": lambda n, v: validate.real(n, v, low=0.0), "n_misclassified": _int(0), "decay": validate.flag,
}


def check(name: str, value):
    """``value`` checked against what ``name`` accepts; unknown names are refused."""
    if name not in SETTINGS and name not in AS_SETTING and name not in CHECKS:
        raise validate.UnknownParameter([name], "no report parameter has that name", [*SETTINGS, *AS_SETTING, *CHECKS])
    try:
        if name in CHECKS:
            return CHECKS[name](name, value)
        return RunConfig.check(name, value, AS_SETTING.get(name))
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
    """``{name: default}`` from the ``parameters`` cell of ``notebooks/<section>.ipynb``, via papermill."""
    import papermill  # imported here: it is slow to import, and only notebooks and the runner need it

    path = paths.NOTEBOOKS_DIR / f"{section}.ipynb"
    return {name: ast.literal_eval(info["default"]) for name, info in papermill.inspect_notebook(str(path)).items()}


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
        if "seeds" in p:
            p["seeds"] = p["seeds"][:1]
        if "n_epochs" in p:
            p["n_epochs"] = min(p["n_epochs"], q)
        if "search_epochs" in p:
            p["search_epochs"] = sorted({min(e, q) for e in p["search_epochs"]})
        if "search_trials" in p:
            p["search_trials"] = min(p["search_trials"], 4)
        if "decay_epochs" in p:
            full = p["decay_epochs"]
            p["decay_epochs"] = min(full, 2 * q)
            if "decay_milestones" in p:
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
