"""Report parameters: what each name accepts, and quick mode.

The report runner checks every override with :func:`check` before running any
section; each notebook checks its own values again through :func:`resolve`, so
a notebook run by hand or by papermill refuses bad values before training.
"""

from __future__ import annotations

from types import SimpleNamespace

from . import data, gradcheck, validate


def _text(name, value):
    if not isinstance(value, str):
        raise validate.ParameterError(f"{name} must be a string, got {value!r}")
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
        raise validate.ParameterError(f"{name} must be strictly increasing, got {out}")
    return out


def _n_jobs(name, value):
    value = validate.integer(name, value, low=-1)
    if value == 0:
        raise validate.ParameterError(f"{name} must be -1 (all cores) or a positive count, got 0")
    return value


def _int(low):
    return lambda name, value: validate.integer(name, value, low=low)


CHECKS = {
    # data and output
    "data_dir": _text, "data_url": _text, "data_md5": _text, "reports_dir": _text,
    # runs
    "seeds": validate.seeds, "n_epochs": _int(1), "n_batch": _int(1), "val_size": _int(1),
    "settings": _settings, "dtype": lambda n, v: validate.choice(n, v, data.DTYPES),
    "normalize": lambda n, v: validate.choice(n, v, data.NORMALIZATIONS),
    "init_std": validate.positive, "n_jobs": _n_jobs, "quick": _flag, "quick_epochs": _int(1),
    # gradient check
    "n_samples": _int(1), "grad_init_std": validate.positive, "grad_lam": validate.non_negative,
    "h": validate.positive, "method": lambda n, v: validate.choice(n, v, gradcheck.METHODS), "seed": _int(0),
    # bonus
    "big_val_size": _int(1), "decay_eta0": validate.positive, "decay_milestones": _milestones,
    "decay_factor": validate.positive, "decay_epochs": _int(1), "decay_lam": validate.non_negative,
    "decay_baseline_eta": validate.positive, "mbce_eta": validate.positive, "ce_eta": validate.positive,
    "mbce_lam": validate.non_negative,
    # search
    "search_size": _int(1), "search_seed": _int(0), "search_epochs": _int(1),
    "search_lam": validate.positive_range, "search_eta": validate.positive_range,
    "search_batches": lambda n, v: validate.integers(n, v, low=1), "search_flip": _flag, "search_decay": _flag,
    "seed_best_acc": lambda n, v: validate.real(n, v, low=0.0), "n_misclassified": _int(0),
}


def check(name: str, value):
    """``value`` checked against what ``name`` accepts; unknown names are refused."""
    if name not in CHECKS:
        raise validate.ParameterError(f"unknown parameter {name!r}; known: {', '.join(sorted(CHECKS))}")
    return CHECKS[name](name, value)


def scaled_milestones(milestones: list[int], n_epochs: int, full_epochs: int) -> list[int]:
    """Milestones moved proportionally from a ``full_epochs`` schedule to ``n_epochs``."""
    scaled = sorted({max(1, round(m * n_epochs / full_epochs)) for m in milestones})
    return [m for m in scaled if m < n_epochs] or [max(1, n_epochs // 2)]


def resolve(**params) -> SimpleNamespace:
    """Checked parameters with quick mode applied.

    Quick mode keeps the first seed only and at most ``quick_epochs`` epochs
    (the decay schedule keeps its shape over at most twice that), and at most
    four search candidates.
    """
    p = {name: check(name, value) for name, value in params.items()}
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


def check_data_size(values: dict, n_total: int) -> None:
    """Refuse validation sizes and batch sizes that the data at hand cannot serve.

    ``values`` are one section's parameters; ``n_total`` is the number of images in
    the training batches (50,000 for CIFAR-10).
    """
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
