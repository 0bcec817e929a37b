"""Report parameters: which names each section declares, what each name accepts, and quick mode.

A section notebook declares its parameters once, in its cell tagged
``parameters`` (name, type, default and a comment each). This module reads
those declarations (:func:`declared`) and says what values each name accepts
(:data:`CHECKS`). Both the report runner and a notebook's own first cell
(:func:`assignment1.report.section.start`) check through :func:`resolve`.
"""

from __future__ import annotations

import ast
import functools
from types import SimpleNamespace

from .. import config, data, gradcheck, model, validate
from ..train_fast import ENGINES


def _text(name, value):
    if not isinstance(value, str):
        raise validate.ParameterError(name, "be a string", value)
    return value


def _flag(name, value):
    return validate.choice(name, value, (True, False))


def _settings(name, value):
    out = []
    for i, pair in enumerate(validate.sequence(name, value, "a non-empty list of [lam, eta] pairs", nonempty=True)):
        lam, eta = validate.sequence(f"{name}[{i}]", pair, "a [lam, eta] pair", length=2)
        out.append([validate.non_negative(f"{name}[{i}] lam", lam), validate.positive(f"{name}[{i}] eta", eta)])
    return out


def _milestones(name, value):
    out = [validate.integer(f"{name}[{i}]", m, low=1)
           for i, m in enumerate(validate.sequence(name, value, "a list of epochs"))]
    if out != sorted(set(out)):
        raise validate.ParameterError(name, "be strictly increasing", out)
    return out


def _n_jobs(name, value):
    value = validate.integer(name, value, low=-1)
    if value == 0:
        raise validate.ParameterError(name, "be -1 (one per core) or a positive count", 0)
    return value


def _int(low):
    return lambda name, value: validate.integer(name, value, low=low)


def _one_of(allowed):
    return lambda name, value: validate.choice(name, value, allowed)


CHECKS = {
    # data and output
    "data_dir": _text, "data_url": _text, "data_md5": _text, "reports_dir": _text,
    # runs
    "seeds": validate.seeds, "n_epochs": _int(1), "n_batch": _int(1), "val_size": _int(1),
    "settings": _settings, "dtype": _one_of(data.DTYPES), "normalize": _one_of(data.NORMALIZATIONS),
    "init_std": validate.positive, "engine": _one_of(ENGINES), "n_jobs": _n_jobs,
    "quick": _flag, "quick_epochs": _int(1),
    # gradient check
    "n_samples": _int(1), "grad_init_std": validate.positive, "grad_lam": validate.non_negative,
    "h": validate.positive, "method": _one_of(gradcheck.METHODS), "seed": _int(0),
    # bonus
    "big_val_size": _int(1), "decay_eta0": validate.positive, "decay_milestones": _milestones,
    "decay_factor": validate.positive, "decay_epochs": _int(1), "decay_lam": validate.non_negative,
    "decay_baseline_eta": validate.positive, "mbce_eta": validate.positive, "ce_eta": validate.positive,
    "mbce_lam": validate.non_negative,
    # search
    "search_size": _int(1), "search_seed": _int(0), "search_epochs": _int(1),
    "search_lam": validate.positive_range, "search_eta": validate.positive_range,
    "search_batches": lambda n, v: validate.integers(n, v, low=1), "search_flip": _flag, "search_decay": _flag,
    "reference_best_acc": lambda n, v: validate.real(n, v, low=0.0), "n_misclassified": _int(0),
    # one run, in the explorer
    "lam": validate.non_negative, "eta": validate.positive, "flip": _flag, "loss": _one_of(model.LOSSES),
    "decay": _flag,
}


#: The notebook a student opens first, to train live; not a section of the report.
EXPLORE = "00_explore"


def sections() -> list[str]:
    """The report's sections in order: the names of ``notebooks/NN_*.ipynb`` but :data:`EXPLORE`."""
    return sorted(p.stem for p in config.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb") if p.stem != EXPLORE)


@functools.cache
def declared(section: str) -> dict:
    """``{name: default}`` from the ``parameters`` cell of ``notebooks/<section>.ipynb``, via papermill."""
    import papermill  # imported here: it is slow to import, and only notebooks and the runner need it

    path = config.NOTEBOOKS_DIR / f"{section}.ipynb"
    return {name: ast.literal_eval(info["default"]) for name, info in papermill.inspect_notebook(str(path)).items()}


def check(name: str, value):
    """``value`` checked against what ``name`` accepts; unknown names are refused."""
    if name not in CHECKS:
        raise validate.UnknownParameter([name], "no report parameter has that name", CHECKS)
    return CHECKS[name](name, value)


def scaled_milestones(milestones: list[int], n_epochs: int, full_epochs: int) -> list[int]:
    """Milestones moved proportionally from a ``full_epochs`` schedule to ``n_epochs``."""
    scaled = sorted({max(1, round(m * n_epochs / full_epochs)) for m in milestones})
    return [m for m in scaled if m < n_epochs] or [max(1, n_epochs // 2)]


def resolve(values: dict) -> SimpleNamespace:
    """``values`` checked, with quick mode applied: the parameters a section runs with.

    Quick mode keeps the first seed only and at most ``quick_epochs`` epochs
    (the decay schedule keeps its shape over at most twice that), and at most
    four search candidates.
    """
    p = {name: check(name, value) for name, value in values.items()}
    if p.get("quick"):
        q = p.get("quick_epochs", 3)
        if "seeds" in p:
            p["seeds"] = p["seeds"][:1]
        if "n_epochs" in p:
            p["n_epochs"] = min(p["n_epochs"], q)
        if "search_size" in p:
            p["search_size"] = min(p["search_size"], 4)
        if "search_epochs" in p:
            p["search_epochs"] = min(p["search_epochs"], q)
        if "decay_epochs" in p:
            full = p["decay_epochs"]
            p["decay_epochs"] = min(full, 2 * q)
            if "decay_milestones" in p:
                p["decay_milestones"] = scaled_milestones(p["decay_milestones"], p["decay_epochs"], full)
    return SimpleNamespace(**p)


def check_data_size(p: SimpleNamespace, n_total: int) -> None:
    """Refuse validation sizes and batch sizes that the data at hand cannot serve.

    ``p`` are one section's parameters; ``n_total`` is the number of images in
    the training batches (50,000 for CIFAR-10).
    """
    values = vars(p)
    val_sizes = [values[k] for k in ("val_size", "big_val_size") if k in values]
    for name in ("val_size", "big_val_size"):
        if name in values:
            validate.integer(name, values[name], low=1, high=n_total - 1)
    if not val_sizes:
        return
    n_train = n_total - max(val_sizes)  # the smallest training set any run of the section uses
    if "n_batch" in values:
        validate.integer("n_batch", values["n_batch"], low=1, high=n_train)
    for i, v in enumerate(values.get("search_batches", [])):
        validate.integer(f"search_batches[{i}]", v, low=1, high=n_train)
