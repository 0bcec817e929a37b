"""Hyperparameter search with Optuna, chosen on validation data only.

Each trial draws a configuration from Optuna's TPE sampler (:func:`suggest`): lambda
and eta on log scales, the mini-batch size, flips, the learning-rate schedule
(constant, steps, cosine to zero), the number of epochs and an average of the
last epochs' weights. It trains one run (the first seed) and reports its
validation accuracy after every epoch; the pruner stops a trial that falls
behind the median of the finished trials at the same share of their epochs.
Nothing here looks at the test set.

Trial ``slot`` (the ``slot``-th a search asks for) is a function of the seed, the slot and the finished
trials of the rounds before its own, rounds being blocks of a fixed number of slots: the sampler draws for
it from an in-memory study of those trials alone, seeded by the seed and the slot, and the pruner judges it
against them alone (a round's trials do not see each other). A round trains as one sweep
(:func:`assignment1.sweep.train`): its first slot draws what a sweep's runs share (:data:`SWEPT`: the
mini-batch size, flips, translations), its other slots take those and draw the rest, and a pruned trial
leaves the sweep while the others go on. So a search is the same on any machine, whatever the timing,
whatever else the stored study holds, and when it resumes: a trial whose process is gone (killed) is
marked failed and its slot trained again, with the same configuration. A search of ``n`` trials takes the
slots up to the ``n``-th that finished or was pruned, or the ``n``-th that failed (diverged): so it always
ends.

The study lives in an Optuna storage: by default a SQLite file under the
reports directory, which the processes of this machine share (moved aside and
started anew if damaged); or a database named by ``$A1_SEARCH_STORAGE``
(``postgresql://user:password@host/db``), which several machines share. A
storage URL is only ever shown with its passwords hidden, and one that fails
says why, in its driver's words.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import socket
import sqlite3
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import numpy as np
import optuna

from .. import files
from ..config import RunConfig
from . import paths
from .runs import Experiments, train_sweep
from .store import code_hash

STORAGE_ENV = "A1_SEARCH_STORAGE"
SCHEDULES = ("constant", "step", "cosine")
PRUNERS = ("median", "halving", "hyperband", "none")
SLOT, KILLED, DIVERGED = "slot", "killed", "diverged"  # a trial's user attributes: its place in the search; why
# it failed: its process died (it is trained again), or its cost became infinite or NaN
SWEPT = ("n_batch", "flip", "shift")  # drawn by a round's first slot for all of it: its runs share them in a sweep
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


def hidden(url: str, text: str | None = None) -> str:
    """``text`` (by default ``url`` itself) with the passwords of ``url`` shown as ``***``, however they are
    spelled (as written, quoted or unquoted): the one in its user info (up to its last @: a password may hold
    one) and those in its query. An unreadable ``url`` may hold one anywhere: then nothing of it is shown."""
    try:
        u = urlsplit(url)
        found = [u.netloc.rpartition("@")[0].partition(":")[2],
                 *(v for k, v in parse_qsl(u.query) if "pass" in k.lower())]
    except ValueError:
        return "***" if text is None else ("(its message is not shown: the URL cannot be read, and may hold a "
                                           "password)")
    if text is None and "://" not in url:
        return "***"
    text = url if text is None else text
    for password in filter(None, found):
        for shown in (password, quote(password, safe=""), unquote(password)):
            text = text.replace(shown, "***")
    return text


def failure(e: BaseException, url: str, what: str) -> RuntimeError:
    """``cannot open <what> <url>: <why>``, on one line: why in the driver's own words (wrong password, no server,
    no database; no driver, then what to install), with ``url``'s passwords hidden wherever they appear."""
    while (inner := getattr(e, "orig", None) or e.__cause__ or e.__context__) is not None:
        e = inner  # the innermost cause: sqlalchemy's and Optuna's wrappers only repeat it
    message = hidden(url, " ".join(f"{type(e).__name__}: {e}".replace(url, hidden(url)).split()))
    if isinstance(e, ModuleNotFoundError):  # the URL names a database whose driver is not installed
        message += "; install its driver (for PostgreSQL: pip install -e '.[postgres]')"
    return RuntimeError(f"cannot open {what} {hidden(url)}: {message}")


def storage_url(reports_dir=None) -> str:
    """Where studies live: ``$A1_SEARCH_STORAGE``, else ``search.db`` (SQLite) in the reports directory."""
    from sqlalchemy.engine import URL

    url = os.environ.get(STORAGE_ENV, "").strip()
    db = paths.reports_dir(reports_dir) / "search" / "search.db"
    return url or URL.create("sqlite", database=str(db)).render_as_string()  # quoted: a path may hold % or ?


def repair(url: str) -> None:
    """Move a damaged SQLite study file aside (to ``damaged/`` beside it), saying so, so the search starts anew."""
    from sqlalchemy.engine import make_url

    if not url.startswith("sqlite:///"):
        return
    path = Path(make_url(url).database)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        return
    try:
        why = sqlite3.connect(path, timeout=60).execute("PRAGMA quick_check").fetchone()[0]  # closed when collected
    except sqlite3.OperationalError:  # locked by a writer, or unreadable: Optuna's own error will say
        return
    except sqlite3.DatabaseError as e:  # not a database, or damaged
        why = str(e)
    if why != "ok":
        aside = path.parent / "damaged" / path.name
        aside.parent.mkdir(exist_ok=True)
        os.replace(path, aside)
        warnings.warn(f"study file {path} is damaged ({why}); moved to {aside}, and the search starts anew",
                      stacklevel=2)


def storage(url: str) -> optuna.storages.RDBStorage:
    """An Optuna storage at ``url``; SQLite waits for its other writers instead of failing."""
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}}
                                          if url.startswith("sqlite") else {})
    except Exception as e:  # its message may repeat the URL, with the password
        raise failure(e, url, "the search storage") from None


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


def open_study(url: str, name: str) -> optuna.Study:
    """The study ``name`` at ``url``, created if missing (by this process or another at the same moment).

    A damaged SQLite file is moved aside first; a storage that cannot be reached fails at once, saying why.
    """
    from sqlalchemy import create_engine

    repair(url)
    try:
        if urlsplit(url).netloc.count("@") > 1:  # the driver would take the rest of the password for the host
            raise ValueError("its user name or password holds an @: write it as %40")
        engine = create_engine(url)
        engine.connect().close()
        engine.dispose()
    except Exception as e:
        raise failure(e, url, "the search storage") from None
    for attempt in range(5):  # two processes creating a fresh database's tables at once: one may lose the race
        try:
            return optuna.create_study(storage=storage(url), study_name=name, direction="maximize",
                                       load_if_exists=True)
        except Exception as e:
            if attempt == 4:
                raise failure(e, url, f"study {name} in") from None
            time.sleep(0.5 + attempt)


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_abandoned(study: optuna.Study) -> list[int]:
    """Mark failed, and ``killed``, the trials left running by processes of this machine that are gone; return
    their numbers. Their slots are then missing, and drawn again: the same configurations."""
    host, failed = socket.gethostname(), []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        where, _, pid = t.user_attrs.get("owner", ":").rpartition(":")
        if where == host and pid.isdigit() and not files.alive(int(pid)):
            try:  # another process may be marking it too: only one tell succeeds
                study._storage.set_trial_user_attr(t._trial_id, KILLED, True)
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)
                failed.append(t.number)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass
    return failed


def in_memory(name: str, history: list[optuna.trial.FrozenTrial], **kwargs) -> optuna.Study:
    """A study in memory holding ``history``: all that a trial's draws and its pruning may depend on."""
    study = optuna.create_study(study_name=name, direction="maximize", **kwargs)
    study.add_trials(history)
    return study


def draw(name: str, space: Space, common: dict, seed: int, slot: int, history: list,
         trials_per_round: int) -> tuple[RunConfig, dict, dict]:
    """Slot ``slot``'s configuration, parameters and distributions: drawn by TPE from ``history`` alone (the
    finished trials of the earlier rounds, by slot), seeded by the search's seed and the slot; the settings of
    :data:`SWEPT` are those its round's first slot drew."""
    sampler = optuna.samplers.TPESampler(seed=int(np.random.SeedSequence([seed, slot]).generate_state(1)[0]))
    study = in_memory(name, history, sampler=sampler)
    if slot % trials_per_round:  # not the round's first slot: take what that one drew for the sweep
        first = draw(name, space, common, seed, slot - slot % trials_per_round, history, trials_per_round)[1]
        study.enqueue_trial({k: v for k, v in first.items() if k in SWEPT})
    trial = study.ask()
    return suggest(trial, space, **common), trial.params, trial.distributions


def train_round(experiments: Experiments, study: optuna.Study, asked: list[tuple[optuna.Trial, RunConfig]],
                history: list, pruner: str) -> None:
    """Train a round's trials (``asked``: each its stored trial and configuration) as one sweep, and tell
    ``study`` how each ended: complete (its run stored), pruned or failed (diverged).

    After each epoch a trial reports its validation accuracy to a judge of its own (a trial of an in-memory
    study of ``history`` alone) and leaves the sweep if that prunes it; the others go on.
    """
    cfgs = [cfg for _, cfg in asked]
    judges = [in_memory(study.study_name, history, pruner=make_pruner(pruner)).ask() for _ in asked]

    def leave(i: int, history: dict) -> bool:
        # by the share of its epochs done, so that trials of different lengths are compared at the same stage
        judges[i].report(history["val_acc"][-1], round(100 * len(history["epoch"]) / cfgs[i].n_epochs))
        return judges[i].should_prune()

    runs = train_sweep(cfgs, experiments.dataset(cfgs[0].val_size, cfgs[0].normalize, cfgs[0].dtype), leave=leave)
    for (trial, cfg), judge, r in zip(asked, judges, runs):
        values = judge.study.trials[-1].intermediate_values  # in percent of its epochs
        for step, value in values.items():
            trial.report(value, step)
        if r.diverged or not r.history["val_acc"]:
            trial.set_user_attr(DIVERGED, True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif len(r.history["epoch"]) < cfg.n_epochs:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            experiments.store.save(experiments.key(cfg), r)
            study.tell(trial, values[max(values)])
    experiments.n_trained += len(asked)


def first_trials(trials: list[optuna.trial.FrozenTrial], n_trials: int) -> tuple[list, int | None]:
    """The search's trials, by slot (for each, the first not killed), up to the ``n_trials``-th complete or
    pruned one, or the ``n_trials``-th failed one; and the first slot not yet finished (None if none is left)."""
    by_slot: dict[int, optuna.trial.FrozenTrial] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if SLOT in t.user_attrs and KILLED not in t.user_attrs:
            by_slot.setdefault(t.user_attrs[SLOT], t)
    first, counted, failed = [], 0, 0
    for slot in itertools.count():
        if n_trials in (counted, failed):
            return first, None
        t = by_slot.get(slot)
        if t is None or not t.state.is_finished():
            return first, slot
        first.append(t)
        counted += t.state in COUNTED
        failed += t.state == optuna.trial.TrialState.FAIL


def search(experiments: Experiments, space: Space, n_trials: int, seed: int, pruner: str, common: dict,
           reports_dir=None, *, trials_per_round: int) -> optuna.Study:
    """This search's trials (:func:`first_trials`), in slot order, as a study in memory.

    Rounds are the slots ``[k * trials_per_round, (k + 1) * trials_per_round)``, each trained here as one sweep
    (:func:`train_round`); slots that another process is training are waited for. A complete trial's run goes
    to the run store, where the retraining of the chosen configuration finds its first seed;
    ``experiments.n_trained`` counts the trials trained.
    """
    url = storage_url(reports_dir)
    study = open_study(url, study_name(space, common, seed, pruner, trials_per_round, experiments.provenance["files"]))
    while True:
        fail_abandoned(study)
        trials = study.get_trials(deepcopy=False)
        first, slot = first_trials(trials, n_trials)
        if slot is None:
            break
        start = slot - slot % trials_per_round
        history = first[:start]
        taken = {t.user_attrs.get(SLOT) for t in trials if KILLED not in t.user_attrs}
        counted = sum(t.state in COUNTED for t in first)
        todo = [s for s in range(slot, min(start + trials_per_round, slot + n_trials - counted)) if s not in taken]
        if not todo:  # other processes are training the rest of this round
            time.sleep(1)
            continue
        asked = []
        for s in todo:
            cfg, params, distributions = draw(study.study_name, space, common, seed, s, history, trials_per_round)
            asked.append((optuna.Trial(study, study._storage.create_new_trial(  # with its slot and owner at once
                study._study_id, optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, params=params,
                                                           distributions=distributions,
                                                           user_attrs={SLOT: s, "owner": owner()}))), cfg))
        train_round(experiments, study, asked, history, pruner)
    return in_memory(study.study_name, first)


def config_of(trial: optuna.trial.FrozenTrial, space: Space, **common) -> RunConfig:
    """The configuration a finished trial trained."""
    return suggest(optuna.trial.FixedTrial(trial.params), space, **common)


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials of a :func:`search` by state (complete, pruned, failed), the failed ones that diverged (all: a
    killed trial is trained again), the epochs the finished ones trained and the epochs they would have trained
    unpruned."""
    S = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in COUNTED]
    return {**{name: sum(t.state == state for t in trials) for name, state in
               (("complete", S.COMPLETE), ("pruned", S.PRUNED), ("failed", S.FAIL))},
            "diverged": sum(t.state == S.FAIL and DIVERGED in t.user_attrs for t in trials),
            "epochs": sum(len(t.intermediate_values) for t in finished),
            "epochs_asked": sum(t.params["n_epochs"] for t in finished)}


def finals(study: optuna.Study) -> list[tuple[int, str, float | None]]:
    """Each finished trial's last validation accuracy: ``(number, state, value)`` (None for a failed one)."""
    return [(t.number, t.state.name.lower(),
             t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None)
            for t in study.get_trials(deepcopy=False) if t.state.is_finished()]


def table(study: optuna.Study, space: Space, section: str, name: str, best: int = 10, **common) -> list[dict]:
    """The best complete trials, by final validation accuracy: their configuration and validation results, as
    rows of the table ``name`` of ``section``."""
    complete = sorted(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)),
                      key=lambda t: (-t.value, t.number))
    rows = []
    for rank, t in enumerate(complete[:best], start=1):
        c = config_of(t, space, **common)
        rows.append({"section": section, "table": name, "rank": rank, "trial": t.number, "lam": c.lam,
                     "eta": c.eta, "n_batch": c.n_batch, "flip": c.flip, "eta_text": c.eta_text,
                     "n_epochs": c.n_epochs, "average": c.average, "val_acc": t.value})
    return rows


def curves(study: optuna.Study) -> list[tuple[int, str, list[tuple[int, float]]]]:
    """Each finished trial's validation accuracy as its epochs went: ``(number, state, [(percent done, value)])``."""
    return [(t.number, t.state.name.lower(), sorted(t.intermediate_values.items()))
            for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.intermediate_values]


def importances(study: optuna.Study) -> dict[str, float]:
    """How much of the validation accuracy's variation each parameter explains (Optuna's PED-ANOVA), the largest
    first, equals in the order of their names (Optuna leaves them in a set's order, which changes from run to run)."""
    if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) < 2:
        return {}
    return dict(sorted(optuna.importance.get_param_importances(study).items(), key=lambda kv: (-kv[1], kv[0])))


def selected(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The complete trial with the best final validation accuracy (the first of equals). Never the test set."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise RuntimeError("no trial of the search finished: nothing to choose" if not counts(study)["diverged"] else
                           f"no trial of the search finished: all {counts(study)['diverged']} diverged (their cost "
                           "became infinite or NaN); lower the learning rates it draws (search_eta)")
    return min(complete, key=lambda t: (-t.value, t.number))
