import json
import subprocess
import sys

import pytest

from conftest import run_env


def cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "assignment1", *args], capture_output=True, text=True,
                          env=run_env(**env), timeout=300)


TINY = ["--lam", "0.01", "--eta", "0.01", "--epochs", "3", "--batch", "10", "--val-size", "20", "--seed", "2",
        "--quiet"]


def test_train_end_to_end_with_json(tiny_env, tmp_path):
    out = tmp_path / "run.json"
    r = cli("train", *TINY, "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "test loss" in r.stdout and "accuracy" in r.stdout
    result = json.loads(out.read_text())
    assert result["settings"]["seed"] == 2 and result["diverged"] is False
    assert len(result["history"]["val_acc"]) == 3
    assert 0 <= result["test"]["acc"] <= 1
    assert result["provenance"]["official"] is False
    assert f"{result['test']['acc']:.4f}" in r.stdout
    assert "warning" not in r.stderr and "error" not in r.stderr  # a run that learns is not warned about


def untrained(data_dir, split: str, lam: float, seed: int) -> dict:
    """Loss, cost and accuracy of the initial weights of seed ``seed`` on ``split`` (validation: 20 images)."""
    from assignment1 import data, model, train

    ds = data.load_cifar10(data_dir, 20, "per_feature", "float32", progress=False)
    part = getattr(ds, split)
    W, b = train.init_params(part.Y.shape[1], part.X.shape[1], train.random_streams(seed)[0])
    return model.evaluate(W, b, part.X, part.Y, lam)


def test_a_diverged_run_fails_and_says_its_numbers_are_the_untrained_weights(tiny_env, tmp_path):
    out = tmp_path / "run.json"
    r = cli("train", *TINY, "--eta", "1e6", "--json", str(out))
    # a failure: non-zero, one line on stderr naming the epoch and whose numbers were printed
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: the run diverged in epoch 1")
    assert "the numbers above are those of the untrained weights" in r.stderr
    # the numbers printed are those of the initial weights, computed here afresh; the record is kept
    reference = untrained(tiny_env["A1_DATA_DIR"], "test", lam=0.01, seed=2)
    assert f"test loss {reference['loss']:.4f}  cost {reference['cost']:.4f}  accuracy {reference['acc']:.4f}" \
        in r.stdout and "(the untrained weights: 0 of 3 epochs in" in r.stdout
    assert json.loads(out.read_text())["diverged"] is True


def test_a_run_that_ends_worse_than_untrained_says_so(tiny_env, tmp_path):
    # eta 30 on the tiny data: the cost grows a thousandfold but stays finite, so the run does not diverge
    out = tmp_path / "run.json"
    r = cli("train", *TINY, "--eta", "30", "--json", str(out))
    assert r.returncode == 0, r.stderr
    start = untrained(tiny_env["A1_DATA_DIR"], "val", lam=0.01, seed=2)["cost"]
    end = json.loads(out.read_text())["history"]["val_cost"][-1]
    assert end > start
    assert r.stderr == (f"warning: training raised the validation cost from {start:.4g} (untrained) to {end:.4g}, "
                        "so the model is worse than its untrained weights: try a smaller --eta\n")


def test_the_help_is_plain_text_and_shows_only_defaults_there_are():
    for args in (["--help"], ["train", "--help"], ["fetch", "--help"]):
        r = cli(*args)
        assert r.returncode == 0 and "usage: python -m assignment1" in r.stdout
        assert "``" not in r.stdout and "(default: None)" not in r.stdout
    train_help = " ".join(cli("train", "--help").stdout.split())  # argparse wraps lines
    assert train_help.endswith("default data/ under the project)") and "--quiet no progress bar --" in train_help
    assert "epochs (default: 40)" in train_help and "--flip, --no-flip mirror" in train_help


def test_a_run_without_training_metrics_writes_them_as_null(tiny_env, tmp_path):
    # --no-evaluate-train: the same run, its training metrics null in strict JSON (no NaN token)
    histories = []
    for flag in ("--evaluate-train", "--no-evaluate-train"):
        out = tmp_path / f"{flag}.json"
        assert cli("train", *TINY, flag, "--json", str(out)).returncode == 0
        histories.append(json.loads(out.read_text(), parse_constant=lambda token: pytest.fail(token))["history"])
    both, val_only = histories
    assert val_only["val_acc"] == both["val_acc"] and val_only["train_acc"] == [None] * 3
    assert all(v is not None for v in both["train_acc"])


@pytest.mark.parametrize("engine", [["--engine", "plain"], ["--engine", "fast"]], ids=["plain", "fast"])
def test_the_command_trains_every_epoch_while_its_progress_bar_redraws(tiny_env, tmp_path, engine):
    # as the README shows it, progress bar on; with TQDM_MININTERVAL=0 the bar redraws after every epoch,
    # as it does on real data, where an epoch takes longer than tqdm's 0.1 s between redraws
    out = tmp_path / "run.json"
    r = cli("train", "--lam", "0.1", "--eta", "0.001", "--epochs", "5", "--batch", "10", "--val-size", "20",
            "--json", str(out), *engine, TQDM_MININTERVAL="0")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(out.read_text())["history"]["epoch"]) == 5
    assert "(5 epochs in" in r.stdout and "5/5" in r.stderr


def test_the_command_trains_every_epoch_on_real_data(stand_in, tmp_path):
    # full-size data, where each epoch takes long enough for the progress bar to redraw by itself
    path, md5 = stand_in
    out = tmp_path / "run.json"
    r = cli("train", "--epochs", "3", "--json", str(out), CIFAR10_URL=path, CIFAR10_MD5=md5,
            A1_DATA_DIR=tmp_path / "data")
    assert r.returncode == 0, r.stderr
    history = json.loads(out.read_text())["history"]
    assert history["epoch"] == [1, 2, 3] and "(3 epochs in" in r.stdout
    assert history["val_acc"][-1] > history["val_acc"][0] > 0.15  # it learns, from well above chance


def test_the_plain_engine_is_one_argument_away(tiny_env, tmp_path):
    # the textbook loop gives the fast loop's result, to float32 rounding
    runs = {}
    for engine in ("fast", "plain"):
        out = tmp_path / f"{engine}.json"
        r = cli("train", *TINY, "--engine", engine, "--json", str(out))
        assert r.returncode == 0, r.stderr
        runs[engine] = json.loads(out.read_text())
    assert runs["plain"]["settings"]["engine"] == "plain"
    assert runs["plain"]["test"]["acc"] == runs["fast"]["test"]["acc"]
    assert runs["plain"]["test"]["loss"] == pytest.approx(runs["fast"]["test"]["loss"], rel=1e-5)


@pytest.mark.parametrize(
    "args, message",
    [(["--eta", "0"], "eta must be > 0, got 0"), (["--lam", "-1"], "lam must be >= 0, got -1.0"),
     (["--batch", "0"], "n_batch must be at least 1, got 0"),
     (["--epochs", "0"], "n_epochs must be at least 1, got 0"),
     (["--loss", "svm"], "loss must be one of 'ce', 'mbce', got 'svm'"),
     (["--val-size", "0"], "val_size must be at least 1"),
     (["--epochs", "x"], "n_epochs must be an integer, got 'x'"),
     (["--milestones", "5", "2"], "milestones must be strictly increasing, got [5, 2]"),
     (["--batch", "100000", "--val-size", "20"], "n_batch must be an integer from 1 to 180, got 100000"),
     (["--val-size", "100000"], "val_size must be an integer from 1 to 199, got 100000")],
)
def test_bad_arguments_are_refused_in_one_line(tiny_env, args, message):
    r = cli("train", "--quiet", *args)
    assert r.returncode == 2
    assert r.stderr.startswith("error:") and r.stderr.count("\n") == 1
    assert message in r.stderr
    assert "test loss" not in r.stdout


def test_a_misspelled_option_is_named_with_its_likely_meaning(tiny_env):
    r = cli("train", "--epocs", "3")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "unrecognized arguments: --epocs (did you mean --epochs?)" in r.stderr
    assert "see python -m assignment1 train --help" in r.stderr


def test_a_bad_value_is_the_same_sentence_from_every_entry_point(tiny_env, tmp_path):
    # the command line, the Python API and a section notebook's first cell all say it with RunConfig's words
    from assignment1.config import RunConfig
    from assignment1.report import params
    from assignment1.validate import ParameterError

    with pytest.raises(ParameterError) as api:
        RunConfig(n_epochs=0)
    with pytest.raises(ParameterError) as notebook:
        params.resolve({"n_epochs": 0})
    r = cli("train", "--quiet", "--n-epochs", "0")
    assert str(api.value) == str(notebook.value) == "n_epochs must be at least 1, got 0"
    assert r.stderr == f"error: {api.value}\n"


def test_every_setting_is_an_option_that_reaches_the_run(tiny_env, tmp_path):
    # every setting given on the command line as a user types it, each away from its default
    from assignment1.config import SETTINGS, RunConfig

    args = ["--lam", "0.5", "--eta", "0.02", "--epochs", "4", "--batch", "20", "--seed", "3", "--loss", "mbce",
            "--flip", "--shift", "2", "--milestones", "1", "3", "--decay-factor", "0.5", "--schedule", "cosine",
            "--average", "0.5", "--val-size", "30", "--normalize", "global", "--dtype", "float64",
            "--init-std", "0.01", "--no-evaluate-train", "--engine", "plain"]
    expected = RunConfig(lam=0.5, eta=0.02, n_epochs=4, n_batch=20, seed=3, loss="mbce", flip=True, shift=2,
                         milestones=(1, 3), decay_factor=0.5, schedule="cosine", average=0.5, val_size=30,
                         normalize="global", dtype="float64", init_std=0.01, evaluate_train=False, engine="plain")
    # a setting added to RunConfig but not here fails this first check
    assert [name for name, f in SETTINGS.items() if getattr(expected, name) == f.default] == []
    out = tmp_path / "run.json"
    r = cli("train", *args, "--quiet", "--json", str(out))
    assert r.returncode == 0, r.stderr
    # the run trained with each of them
    assert json.loads(out.read_text())["settings"] == expected.to_dict()


def test_values_are_typed_as_papermill_types_its_p_values():
    # papermill's own rule is the reference (private there, so the command line and the runner share one copy)
    from papermill.cli import _resolve_type

    from assignment1.experiments.cli import typed

    for text in ["True", "False", "None", "true", "7", "-3", " 5 ", "1_000", "1e-3", "0.5", "nan", "-inf", "ce",
                 "[1, 2]", "0x10", ""]:
        assert (type(typed(text)), repr(typed(text))) == (type(_resolve_type(text)), repr(_resolve_type(text))), text
