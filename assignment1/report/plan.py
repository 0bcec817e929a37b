"""The runs sections 2, 4, 5 and 6 ask for, as functions of a section's parameters ``p``.

A notebook asks for its runs here, and the report runner, which knows every
section's parameters before any starts, announces all of them to the sections'
processes (:func:`assignment1.experiments.progress.announce`). Whichever section
trains first then takes into its sweeps the announced runs that read the same
batches: a seed's M-BCE run of section 5 trains in the sweep of its Table 1 and
decay runs, started by section 4, not in a sweep of its own (docs/speed.md).
The search's trials and the runs of its choice are not known before it ends.
"""

from __future__ import annotations

from ..config import RunConfig
from ..experiments.runs import grid as settings_grid


def grid(p, settings, seeds=None, **changes) -> list[RunConfig]:
    """Runs of each ``(lam, eta)`` in ``settings`` for each seed (default: ``p.seeds``), with ``p``'s epochs, batch
    size, validation size, dtype, initialization and engine unless ``changes`` says otherwise."""
    common = dict(n_epochs=p.n_epochs, n_batch=p.n_batch, val_size=p.val_size, dtype=p.dtype, init_std=p.init_std,
                  engine=p.engine)
    return settings_grid(settings, p.seeds if seeds is None else seeds, **{**common, **changes})


def table1(p) -> list[RunConfig]:
    """Table 1 (section 2; sections 4 and 6 compare with it): each of ``p.settings`` with each seed."""
    return grid(p, p.settings)


def improvements(p) -> tuple[list[RunConfig], ...]:
    """Section 4: Table 1's runs, (a) with a bigger training set, (b) with flips, (c) with a step decay of eta,
    and (c)'s baseline at a constant rate over as many epochs. (a) and (b) are read for their test results only:
    ``evaluate_train=False`` skips their training-data metrics."""
    return (table1(p),
            grid(p, p.settings, val_size=p.big_val_size, evaluate_train=False),
            grid(p, p.settings, flip=True, evaluate_train=False),
            grid(p, [[p.decay_lam, p.decay_eta0]], n_epochs=p.decay_epochs, milestones=p.decay_milestones,
                 decay_factor=p.decay_factor),
            grid(p, [[p.decay_lam, p.decay_baseline_eta]], n_epochs=p.decay_epochs))


def mbce(p) -> tuple[list[RunConfig], list[RunConfig]]:
    """Section 5: softmax and cross-entropy, then sigmoid and M-BCE, each at its own learning rate."""
    return grid(p, [[p.mbce_lam, p.ce_eta]]), grid(p, [[p.mbce_lam, p.mbce_eta]], loss="mbce")


#: What each section asks for, known before it starts (the search's runs are not).
PLANS = {"02_training": lambda p: (table1(p),), "04_bonus_improvements": improvements, "05_bonus_mbce": mbce,
         "06_search": lambda p: (table1(p),)}


def planned(sections: dict[str, object]) -> list[RunConfig]:
    """Every run the ``sections`` (name: its parameters ``p``) will ask for that is known before they start."""
    return list(dict.fromkeys(c for name, p in sections.items() if name in PLANS
                              for group in PLANS[name](p) for c in group))
