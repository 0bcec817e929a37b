import json
import subprocess
import sys

import pytest

from conftest import run_env


def cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "assignment1", *args], capture_output=True, text=True,
                          env=run_env(**env), timeout=300)


def test_train_end_to_end_with_json(tiny_env, tmp_path):
    out = tmp_path / "run.json"
    r = cli("train", "--lam", "0.01", "--eta", "0.01", "--epochs", "3", "--batch", "10", "--val-size", "20",
            "--seed", "2", "--quiet", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "test loss" in r.stdout and "accuracy" in r.stdout
    result = json.loads(out.read_text())
    assert result["settings"]["seed"] == 2 and result["diverged"] is False
    assert len(result["history"]["val_acc"]) == 3
    assert 0 <= result["test"]["acc"] <= 1
    assert result["provenance"]["official"] is False
    assert f"{result['test']['acc']:.4f}" in r.stdout


@pytest.mark.parametrize(
    "args, name",
    [(["--eta", "0"], "--eta"), (["--lam", "-1"], "--lam"), (["--batch", "0"], "--batch"),
     (["--loss", "svm"], "--loss"), (["--val-size", "0"], "--val-size"), (["--epochs", "x"], "--epochs"),
     (["--batch", "100000", "--val-size", "20"], "--batch"), (["--val-size", "100000"], "--val-size")],
)
def test_bad_arguments_are_refused_in_one_line(tiny_env, args, name):
    r = cli("train", "--quiet", *args)
    assert r.returncode == 2
    assert r.stderr.startswith("error:") and r.stderr.count("\n") == 1
    assert name in r.stderr
    assert "test loss" not in r.stdout
