"""Hyperparameter search with Optuna, chosen on validation data only.

Each trial draws a configuration from Optuna's TPE sampler (:func:`suggest`): lambda
and eta on log scales, the mini-batch size, flips, the learning-rate schedule
(constant, steps, cosine to zero), the number of epochs and an average of the
last epochs' weights. It trains one run (the first seed) and reports its
validation accuracy after every epoch; the pruner stops a trial that falls
behind the median of the finished trials at the same share of their epochs.
Nothing here looks at the test set.

Trials run in rounds of a fixed number, whatever the number of cores: a
round's trials are asked for together, trained in parallel (as many at once as
there are worker processes), and told together, the sampler reseeded for each
trial by its number and the median pruner judging against finished trials only,
so a search is the same on any machine, whatever the timing, and the same when
it resumes. A search of ``n`` trials is the stored study's first ``n`` (by
number) that finished or were pruned, whatever else the study holds.

The study lives in an Optuna storage: by default a SQLite file under the
reports directory, which the processes of this machine share; or a database
named by ``$A1_SEARCH_STORAGE`` (``postgresql://user:password@host/db``),
which several machines share. A trial whose process is gone (killed) is marked
failed when a search starts again; a storage URL is only ever shown with its
password hidden.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
from joblib import Parallel, delayed, effective_n_jobs

from .. import files
from ..config import RunConfig
from . import paths
from .runs import Experiments, cached_dataset, exit_with_parent, train_run
from .store import code_hash

STORAGE_ENV = "A1_SEARCH_STORAGE"
SCHEDULES = ("constant", "step", "cosine")
PRUNERS = ("median", "halving", "hyperband", "none")
UNOWNED_SECONDS = 60  # a trial is given its owner right after it is asked for; far longer means it never will
COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)  # trials a search asks for
optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class Space:
    """Where trials come from: ranges drawn on log scales, and lists to choose from."""

    lam: tuple[float, float] = (1e-4, 0.3)
    eta: tuple[float, float] = (1e-3, 0.1)
    n_batch: tuple[int, ...] = (50, 100, 200, 500)
    flip: tuple[bool, ...] = (False, True)
    schedule: tuple[str, ...] = SCHEDULES
    n_epochs: tuple[int, ...] = (40, 60, 80, 100)
    average: tuple[float, ...] = (0.0, 0.25)
    shift: tuple[int, ...] = (0,)


def decay_milestones(n_epochs: int) -> tuple[int, ...]:
    """A step decay of eta: x0.1 after 1/2 and after 4/5 of the epochs (none if too short)."""
    return tuple(sorted({m for m in (round(n_epochs / 2), round(4 * n_epochs / 5)) if 0 < m < n_epochs}))


def suggest(trial: optuna.Trial, space: Space, **common) -> RunConfig:
    """The configuration ``trial`` draws from ``space``; ``common`` fills the rest (the seed, the data)."""
    schedule = trial.suggest_categorical("schedule", space.schedule)
    n_epochs = trial.suggest_categorical("n_epochs", space.n_epochs)
    return RunConfig(lam=float(f"{trial.suggest_float('lam', *space.lam, log=True):.3g}"),  # as tables show it
                     eta=float(f"{trial.suggest_float('eta', *space.eta, log=True):.3g}"),
                     n_batch=trial.suggest_categorical("n_batch", space.n_batch),
                     flip=trial.suggest_categorical("flip", space.flip), n_epochs=n_epochs,
                     schedule="cosine" if schedule == "cosine" else "step",
                     milestones=decay_milestones(n_epochs) if schedule == "step" else (),
                     average=trial.suggest_categorical("average", space.average),
                     # drawn only if there is a choice: a fixed value leaves every other draw as it was
                     shift=trial.suggest_categorical("shift", space.shift) if len(space.shift) > 1 else space.shift[0],
                     **common)


def hidden(url: str) -> str:
    """``url`` with its password, if any, hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy reads: show nothing of it that could be secret
        return url.split("://")[0] + "://***" if "://" in url else "***"


def storage_url(reports_dir=None) -> str:
    """Where studies live: ``$A1_SEARCH_STORAGE``, else ``search.db`` (SQLite) in the reports directory."""
    url = os.environ.get(STORAGE_ENV, "").strip()
    return url or f"sqlite:///{paths.reports_dir(reports_dir) / 'search' / 'search.db'}"


def storage(url: str) -> optuna.storages.RDBStorage:
    """An Optuna storage at ``url``; SQLite waits for its other writers instead of failing."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}}
                                          if url.startswith("sqlite") else {})
    except Exception as e:  # its message may repeat the URL, with the password
        raise RuntimeError(f"cannot open the search storage {hidden(url)} ({type(e).__name__})") from None


def study_name(space: Space, common: dict, seed: int, pruner: str, trials_per_round: int, data_files: dict) -> str:
    """The study of a search: named by all that decides its trials but their number, which may grow."""
    what = {"space": asdict(space), "common": common, "seed": seed, "pruner": pruner, "round": trials_per_round,
            "data": data_files, "code": code_hash()}
    return "a1-" + hashlib.sha256(json.dumps(what, sort_keys=True, default=list).encode()).hexdigest()[:16]


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """A pruner by name; steps are percents of a trial's epochs, and none is pruned before a fifth of them."""
    return {"median": optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=20),
            "halving": optuna.pruners.SuccessiveHalvingPruner(min_resource=20),
            "hyperband": optuna.pruners.HyperbandPruner(min_resource=20, max_resource=100),
            "none": optuna.pruners.NopPruner()}[name]


def open_study(url: str, name: str, seed: int, pruner: str) -> optuna.Study:
    """The study ``name`` at ``url``, created if missing (by this process or another at the same moment)."""
    for attempt in range(5):  # two processes creating a fresh database's tables at once: one may lose the race
        try:
            return optuna.create_study(storage=storage(url), study_name=name, direction="maximize",
                                       load_if_exists=True, pruner=make_pruner(pruner),
                                       sampler=optuna.samplers.TPESampler(seed=seed))
        except Exception as e:
            if attempt == 4:
                raise RuntimeError(f"cannot open study {name} in {hidden(url)} ({type(e).__name__})") from None
            time.sleep(0.5 + attempt)


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_abandoned(study: optuna.Study) -> list[int]:
    """Mark failed the trials left running by processes of this machine that are gone, and those a process
    died before naming itself the owner of; return their numbers."""
    host, failed = socket.gethostname(), []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        where, _, pid = t.user_attrs.get("owner", ":").rpartition(":")
        unowned = "owner" not in t.user_attrs and time.time() - t.datetime_start.timestamp() > UNOWNED_SECONDS
        if unowned or where == host and pid.isdigit() and not files.alive(int(pid)):
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            failed.append(t.number)
    return failed


def _trial(url: str, name: str, pruner: str, trial_id: int, cfg: RunConfig, source: tuple) -> tuple:
    """Train trial ``trial_id``'s run (in a worker), reporting validation accuracy after every epoch.

    Returns its state (``complete``, ``pruned`` or ``failed``), final validation accuracy, and the run if complete.
    """
    exit_with_parent()
    study = optuna.load_study(study_name=name, storage=storage(url), pruner=make_pruner(pruner))
    trial = optuna.Trial(study, trial_id)
    stop = threading.Event()

    def report(history: dict) -> None:
        # by the share of its epochs done, so that trials of different lengths are compared at the same stage
        trial.report(history["val_acc"][-1], round(100 * len(history["epoch"]) / cfg.n_epochs))
        if trial.should_prune():
            stop.set()

    r = train_run(cfg, cached_dataset(*source, cfg.val_size, cfg.normalize, cfg.dtype), on_epoch=report, stop=stop)
    if r.diverged or not r.history["val_acc"]:
        return "failed", None, None
    if stop.is_set() and len(r.history["epoch"]) < cfg.n_epochs:
        return "pruned", r.history["val_acc"][-1], None
    return "complete", r.history["val_acc"][-1], r


def first_trials(trials: list[optuna.trial.FrozenTrial], n_trials: int) -> list[optuna.trial.FrozenTrial]:
    """The trials, by number, up to the ``n_trials``-th complete or pruned one (all of them if there are fewer)."""
    first, counted = [], 0
    for t in sorted(trials, key=lambda t: t.number):
        if counted == n_trials:
            break
        first.append(t)
        counted += t.state in COUNTED
    return first


def search(experiments: Experiments, space: Space, n_trials: int, seed: int, pruner: str, common: dict,
           reports_dir=None, *, trials_per_round: int) -> optuna.Study:
    """This search's first ``n_trials`` complete or pruned trials (and the failed ones among them), as a study.

    The trials are those stored and rounds of ``trials_per_round`` new ones (a round's trials do not
    see each other, so the size of a round decides the search; the worker processes of ``experiments``
    only decide how many train at once), until there are that many; trials among them that another
    process is training are waited for. So the study returned is the same whatever
    else the stored study holds (more trials asked for earlier, or by a report
    running at the same time). A complete trial's run goes to the run store, where
    the retraining of the chosen configuration finds its first seed.
    """
    url = storage_url(reports_dir)
    study = open_study(url, study_name(space, common, seed, pruner, trials_per_round, experiments.provenance["files"]),
                       seed, pruner)
    workers = effective_n_jobs(experiments.n_jobs)
    while True:
        fail_abandoned(study)
        first = first_trials(study.get_trials(deepcopy=False), n_trials)
        running = sum(t.state == optuna.trial.TrialState.RUNNING for t in first)
        missing = n_trials - sum(t.state in COUNTED for t in first) - running
        if missing <= 0 and not running:
            break
        if missing <= 0:  # another process is training the last of them
            time.sleep(1)
            continue
        asked = []
        for _ in range(min(trials_per_round, missing)):
            # each trial's draws depend on its number and the finished trials only, not on when it was asked
            study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.get_trials(deepcopy=False)))
            trial = study.ask()
            trial.set_user_attr("owner", owner())
            asked.append((trial, suggest(trial, space, **common)))
        outcomes = Parallel(n_jobs=min(workers, len(asked)))(
            delayed(_trial)(url, study.study_name, pruner, t._trial_id, cfg, experiments.source) for t, cfg in asked)
        for (trial, cfg), (state, value, run) in zip(asked, outcomes):
            if run is not None:
                experiments.store.save(experiments.key(cfg), run)
            study.tell(trial.number, value if state == "complete" else None,
                       state={"complete": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED,
                              "failed": optuna.trial.TrialState.FAIL}[state])
    view = optuna.create_study(study_name=study.study_name, direction="maximize")  # in memory
    view.add_trials(first)
    return view


def config_of(trial: optuna.trial.FrozenTrial, space: Space, **common) -> RunConfig:
    """The configuration a finished trial trained."""
    return suggest(optuna.trial.FixedTrial(trial.params), space, **common)


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials of a :func:`search` by state (complete, pruned, failed), the epochs the finished ones trained
    and the epochs they would have trained unpruned."""
    S = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in COUNTED]
    return {**{name: sum(t.state == state for t in trials) for name, state in
               (("complete", S.COMPLETE), ("pruned", S.PRUNED), ("failed", S.FAIL))},
            "epochs": sum(len(t.intermediate_values) for t in finished),
            "epochs_asked": sum(t.params["n_epochs"] for t in finished)}


def finals(study: optuna.Study) -> list[tuple[int, str, float | None]]:
    """Each finished trial's last validation accuracy: ``(number, state, value)`` (None for a failed one)."""
    return [(t.number, t.state.name.lower(),
             t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
            for t in study.get_trials(deepcopy=False) if t.state.is_finished()]


def table(study: optuna.Study, space: Space, best: int = 10, **common) -> list[dict]:
    """The best complete trials, by final validation accuracy: their configuration and validation results."""
    complete = sorted(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)),
                      key=lambda t: (-t.value, t.number))
    rows = []
    for rank, t in enumerate(complete[:best], start=1):
        c = config_of(t, space, **common)
        rows.append({"section": "06_search", "table": "search", "rank": rank, "trial": t.number, "lam": c.lam,
                     "eta": c.eta, "n_batch": c.n_batch, "flip": c.flip, "eta_text": c.eta_text,
                     "n_epochs": c.n_epochs, "average": c.average, "val_acc": t.value})
    return rows


def curves(study: optuna.Study) -> list[tuple[int, str, list[tuple[int, float]]]]:
    """Each finished trial's validation accuracy as its epochs went: ``(number, state, [(percent done, value)])``."""
    return [(t.number, t.state.name.lower(), sorted(t.intermediate_values.items()))
            for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.intermediate_values]


def importances(study: optuna.Study) -> dict[str, float]:
    """How much of the validation accuracy's variation each parameter explains (Optuna's PED-ANOVA)."""
    if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) < 2:
        return {}
    return optuna.importance.get_param_importances(study)


def selected(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The complete trial with the best final validation accuracy (the first of equals). Never the test set."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise RuntimeError("no trial of the search finished: nothing to choose")
    return min(complete, key=lambda t: (-t.value, t.number))


