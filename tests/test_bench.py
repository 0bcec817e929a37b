"""The benchmark's count of what a finished report trained (``benchmarks/bench.py``)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from assignment1.config import RunConfig
from assignment1.experiments.store import RunResult, RunStore


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).parents[1] / "benchmarks" / "bench.py"
    spec = importlib.util.spec_from_file_location("bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stored(cfg: RunConfig, epochs: int, seconds: float) -> RunResult:
    history = {"epoch": list(range(1, epochs + 1)), "seconds": [seconds / epochs] * epochs}
    return RunResult(cfg, np.zeros((10, 3072), np.float32), np.zeros(10, np.float32), history, False, None, None,
                     None, seconds)


def test_the_report_block_counts_the_stored_runs_and_the_trials_that_left_none(bench, tmp_path):
    # a report's store: two runs that could share a sweep, one alone without training-set evaluation, its data set
    store = RunStore(tmp_path / "runs")
    runs = [stored(RunConfig(lam=0.0, n_epochs=4), 4, 2.0), stored(RunConfig(lam=0.1, n_epochs=3), 3, 1.5),
            stored(RunConfig(n_batch=200, flip=True, n_epochs=5, evaluate_train=False), 5, 4.0)]
    for i, r in enumerate(runs):
        store.save(f"run{i}", r)
    (tmp_path / "runs" / "data-5000-x.json").write_text(json.dumps({"n_train": 45_000, "n_val": 5_000}))
    # and a search whose pruned trial reported two epochs before leaving (no run stored)
    (tmp_path / "search").mkdir()
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'search' / 'search.db'}", direction="maximize")
    trial = study.ask()
    trial.report(0.2, 50)
    trial.report(0.3, 100)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    block = bench.trained(tmp_path, flops_per_s=1e9, wall_seconds=60.0)
    # epochs by kind, seconds summed, and the FLOPs counted by hand: 2 d K per sample and product
    assert block["run_epochs"] == {"sweep member, training set evaluated": 7, "sweep member, validation only": 0,
                                   "alone, training set evaluated": 0, "alone, validation only": 5}
    assert block["runs"] == 3 and block["training_core_seconds"] == pytest.approx(7.5, rel=1e-12)
    per_sample = 2 * 3072 * 10
    flops = 7 * per_sample * (3 * 45_000 + 5_000) + 5 * per_sample * (2 * 45_000 + 5_000)
    assert block["floor_core_seconds"] == pytest.approx(flops / 1e9, rel=1e-12)
    assert block["core_seconds_over_floor"] == pytest.approx(7.5 / (flops / 1e9), rel=1e-12)
    assert block["unstored_trial_epochs"] == 2
    assert block["unstored_trial_floor_seconds"] == pytest.approx(2 * per_sample * (2 * 45_000 + 5_000) / 1e9,
                                                                 rel=1e-12)
    assert block["wall_seconds"] == 60.0
