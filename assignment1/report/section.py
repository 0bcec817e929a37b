"""The first line of every report notebook, and what a section records for the report.

``p, section = start("02_training", globals())`` reads the names the notebook
declares in its ``parameters`` cell, takes their values from the notebook,
refuses names papermill injected that the notebook does not declare and values
a parameter does not accept, applies quick mode, and returns the parameters
with a :class:`Section` that trains and records what the notebook asks for.

A section's records travel in its executed notebook, as metadata of its
outputs under :data:`RECORD`: each table it shows carries its rows
(:meth:`Section.table`), and each call of :meth:`Section.run` leaves an
invisible output with the compute of the runs used so far. The report runner
reads them from there (:func:`records`); nothing else is written.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from IPython.display import Markdown, display

from .. import data, validate
from ..config import RunConfig
from ..experiments import search
from ..experiments.runs import Experiments, RunResult
from . import params

#: The first line of the cell papermill injects with the parameters it was given.
PAPERMILL_MARKER = "# Parameters"
#: The key of a section's records in its outputs' metadata.
RECORD = "assignment1"


def injected_names(namespace: dict) -> list[str]:
    """Names assigned in the cell papermill injected into this kernel (none outside papermill).

    Papermill warns about a name the notebook does not declare, then runs it
    anyway; the kernel's input history (``In``) still holds the injected cell.
    """
    cells = [c for c in namespace.get("In", []) if c.lstrip().startswith(PAPERMILL_MARKER)]
    if not cells:
        return []
    return [t.id for node in ast.parse(cells[-1]).body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)]


@dataclass
class Section:
    """One report section: its name, parameters and runs (with the data they train on)."""

    name: str
    params: SimpleNamespace
    experiments: Experiments
    used: dict = field(default_factory=dict)  # every run the section used, by store key
    trained: int = 0  # of which this process trained
    trials: int = 0  # search trials this process trained

    def run(self, configs: list[RunConfig], test: bool = True) -> list[RunResult]:
        """Results of ``configs``: stored ones reused, the others trained (see :meth:`Experiments.run`)."""
        before = self.experiments.n_trained
        results = self.experiments.run(configs, test=test)
        self.used.update((self.experiments.key(r.config), r) for r in results)
        self.trained += self.experiments.n_trained - before
        runs = self.used.values()
        # what the runs took, from the runs themselves (the same on a first run and a rerun), and what this
        # process trained: an output that shows nothing
        compute = {"runs": len(runs), "epochs": sum(len(r.history["epoch"]) for r in runs),
                   "seconds": sum(r.seconds for r in runs), "trained": self.trained,
                   "reused": len(runs) - self.trained, "trials": self.trials, "along": self.experiments.n_along}
        display(Markdown("", metadata={RECORD: {"compute": compute}}))
        return results

    @property
    def search_common(self) -> dict:
        """What every trial of the section's search shares: its first seed, its data, dtype and engine, and
        validation data alone measured after each epoch (the choice looks at nothing else)."""
        p = self.params
        return dict(seed=p.seeds[0], val_size=p.val_size, dtype=p.dtype, init_std=p.init_std, engine=p.engine,
                    evaluate_train=False)

    def search(self, space, n_trials: int, seed: int, pruner: str, trials_per_round: int):
        """The section's hyperparameter search (:func:`assignment1.experiments.search.search`) on its data."""
        before = self.experiments.n_trained
        study = search.search(self.experiments, space, n_trials, seed, pruner, self.search_common,
                              getattr(self.params, "reports_dir", None), trials_per_round=trials_per_round)
        self.trials += self.experiments.n_trained - before
        return study

    def run_groups(self, *groups: list[RunConfig], test: bool = True) -> list[list[RunResult]]:
        """Results of several lists of runs, trained together so that they share the parallel processes."""
        results = iter(self.run([c for g in groups for c in g], test))
        return [[next(results) for _ in g] for g in groups]

    def dataset(self, dtype: str | None = None, val_size: int | None = None) -> data.Dataset:
        """The section's data set (its ``val_size`` and ``dtype`` unless given)."""
        p = self.params
        return self.experiments.dataset(val_size or p.val_size, dtype=dtype or getattr(p, "dtype", RunConfig.dtype))

    @property
    def label_names(self) -> list[str]:
        return self.experiments.label_names

    def table(self, name: str, rows: list[dict] | dict, markdown: str) -> Markdown:
        """``markdown`` to show, carrying ``rows`` as the section's table ``name`` for ``summary.json``.

        Tables of one name shown in several places are one table, in the order shown.
        """
        return Markdown(markdown, metadata={RECORD: {"table": name, "rows": rows}})


def records(executed: Path) -> tuple[dict, dict | None]:
    """``(tables, compute)`` that the executed notebook of a section carries (see :class:`Section`)."""
    import nbformat  # only the runner reads notebooks; in every kernel its schema checks cost up to 1 s of imports

    tables: dict = {}
    compute = None
    for cell in nbformat.read(executed, as_version=4).cells:
        for out in cell.get("outputs", []):
            record = out.get("metadata", {}).get("text/markdown", {}).get(RECORD, {})
            if "compute" in record:
                compute = record["compute"]
            elif isinstance(record.get("rows"), list):
                tables[record["table"]] = tables.get(record["table"], []) + record["rows"]
            elif "rows" in record:
                tables[record["table"]] = record["rows"]
    return tables, compute


def start(name: str, namespace: dict) -> tuple[SimpleNamespace, Section]:
    """Check the parameters notebook ``name`` declares, with their values in ``namespace`` (its ``globals()``).

    Returns ``(p, section)``: the checked parameters (quick mode applied) and the
    :class:`Section`. Raises :class:`~assignment1.validate.ParameterError` before
    any work for an undeclared injected name or a value a parameter does not accept.
    """
    declared = params.declared(name)
    unknown = set(injected_names(namespace)) - set(declared)
    if unknown:
        raise validate.UnknownParameter(unknown, f"the parameters cell of {name} declares no such name", declared)
    missing = [k for k in declared if k not in namespace]
    if missing:
        raise validate.ParameterError(missing[0], "have a value: run the parameters cell first")
    p = params.resolve({k: namespace[k] for k in declared})
    experiments = Experiments(p.data_dir, p.data_url, p.data_md5, getattr(p, "reports_dir", None),
                              n_jobs=getattr(p, "n_jobs", 1))
    params.check_data_size(p, experiments.n_images)
    return p, Section(name, p, experiments)
