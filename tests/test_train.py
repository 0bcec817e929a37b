"""Mini-batch gradient descent: the textbook loop, and the fast loop that must agree with it."""

import dataclasses
import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from assignment1 import data, model, sweep, train
from assignment1.config import RunConfig
from assignment1.validate import ParameterError

ENGINES = pytest.mark.parametrize("engine", ["plain", "fast"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from cifar_format import write_archive

    tmp = tmp_path_factory.mktemp("tiny")
    md5 = write_archive(tmp / "a.tar.gz")
    return data.load_cifar10(tmp / "data", val_size=40, url=str(tmp / "a.tar.gz"), md5=md5, progress=False)


def fit(ds, engine="fast", on_epoch=None, stop=None, **kw):
    cfg = RunConfig(**{"lam": 0.01, "eta": 0.01, "n_epochs": 4, "n_batch": 16, "seed": 0, **kw})
    if engine == "plain":
        return train.train(ds.train.X, ds.train.Y, ds.val.X, ds.val.Y, cfg, on_epoch=on_epoch, stop=stop)
    # the fast loop, a sweep of one run
    show = None if on_epoch is None else (lambda _, history: on_epoch(history))
    return sweep.train(ds.train.X, ds.train.Y, ds.val.X, ds.val.Y, [cfg], on_epoch=show, stop=stop)[0]


@ENGINES
def test_same_seed_gives_bit_identical_weights(tiny, engine):
    a, b = fit(tiny, engine, flip=True), fit(tiny, engine, flip=True)
    assert np.array_equal(a.W, b.W) and np.array_equal(a.b, b.b)
    assert a.history["val_cost"] == b.history["val_cost"]
    c = fit(tiny, engine, flip=True, seed=1)
    assert not np.array_equal(a.W, c.W)


@ENGINES
def test_training_learns_and_records_history(tiny, engine):
    r = fit(tiny, engine, n_epochs=8, eta=0.005)
    h = r.history
    assert h["epoch"] == list(range(1, 9)) and h["eta"] == [0.005] * 8
    assert all(len(h[k]) == 8 for k in train.HISTORY_KEYS)
    # the classes are separable templates plus noise: the cost falls and accuracy rises well above chance
    assert h["train_cost"][-1] < h["train_cost"][0]
    assert h["val_acc"][-1] > 0.5
    # the history is what evaluate() says of the final weights
    ev = model.evaluate(r.W, r.b, tiny.val.X, tiny.val.Y, 0.01)
    assert ev["cost"] == pytest.approx(h["val_cost"][-1], rel=1e-6)
    assert r.W.dtype == np.float32 and not r.diverged and not r.stopped


@ENGINES
def test_runs_differing_only_in_lam_start_from_the_same_weights(tiny, engine):
    # one epoch with eta tiny barely moves W, so both stay next to the shared initialization
    a = fit(tiny, engine, lam=0.0, eta=1e-9, n_epochs=1)
    b = fit(tiny, engine, lam=1.0, eta=1e-9, n_epochs=1)
    W0, _ = train.init_params(10, 3072, np.random.SeedSequence(0).spawn(3)[0], 0.1)
    np.testing.assert_allclose(a.W, W0, atol=1e-6)
    np.testing.assert_allclose(b.W, W0, atol=1e-6)


@ENGINES
def test_divergence_is_detected_and_the_last_finite_state_kept(tiny, engine):
    # each step multiplies W by 1 - 2 eta lam = -3: it overflows float32 after a few epochs
    r = fit(tiny, engine, eta=2.0, lam=1.0, n_epochs=30)
    assert r.diverged
    kept = len(r.history["epoch"])
    assert 1 <= kept < 30
    assert np.isfinite(r.W).all() and np.isfinite(r.b).all()
    assert all(np.isfinite(v) for k in train.HISTORY_KEYS for v in r.history[k])
    # the weights kept are those of the last recorded epoch: a run of that many epochs ends there too
    short = fit(tiny, engine, eta=2.0, lam=1.0, n_epochs=kept)
    assert not short.diverged and np.array_equal(short.W, r.W)


@ENGINES
def test_a_run_measured_on_validation_data_alone_is_the_same_run(tiny, engine):
    # without the training data's metrics (NaN): the same weights and validation curve
    both, val_only = fit(tiny, engine, flip=True), fit(tiny, engine, flip=True, evaluate_train=False)
    assert np.array_equal(both.W, val_only.W) and np.array_equal(both.b, val_only.b)
    for k in ("loss", "cost", "acc"):
        assert val_only.history[f"val_{k}"] == both.history[f"val_{k}"]
        assert np.isnan(val_only.history[f"train_{k}"]).all() and np.isfinite(both.history[f"train_{k}"]).all()
    # a diverging run is still caught, by its validation cost, at the same epoch
    diverging = [fit(tiny, engine, eta=2.0, lam=1.0, n_epochs=30, evaluate_train=e) for e in (True, False)]
    assert all(r.diverged for r in diverging) and np.array_equal(diverging[0].W, diverging[1].W)


@ENGINES
def test_milestones_set_eta_per_epoch(tiny, engine):
    cfg = RunConfig(eta=0.01, milestones=(2, 3), decay_factor=0.1)
    assert [cfg.eta_at(e) for e in range(4)] == pytest.approx([0.01, 0.01, 0.001, 0.0001])
    r = fit(tiny, engine, eta=0.01, milestones=(2, 3))
    assert r.history["eta"] == pytest.approx([0.01, 0.01, 0.001, 0.0001])
    with pytest.raises(ParameterError, match="milestones must be strictly increasing"):
        RunConfig(milestones=(5, 2))
    # cosine: from eta down along half a cosine, by the epoch
    cosine = RunConfig(eta=0.02, schedule="cosine", n_epochs=4)
    assert [cosine.eta_at(e) for e in range(4)] == pytest.approx([0.02, 0.02 * (1 + 0.5**0.5) / 2, 0.01,
                                                                   0.02 * (1 - 0.5**0.5) / 2])
    assert fit(tiny, engine, eta=0.02, schedule="cosine").history["eta"] == pytest.approx(
        [cosine.eta_at(e) for e in range(4)])


@ENGINES
def test_averaged_weights_are_the_mean_of_the_last_epochs(tiny, engine):
    # the run's weights average the end-of-epoch weights of its last half: those of runs of 2, 3 and 4 epochs
    runs = [fit(tiny, engine, n_epochs=n, dtype="float64") for n in (2, 3, 4)]
    averaged = fit(tiny, engine, n_epochs=4, average=0.75, dtype="float64")
    np.testing.assert_allclose(averaged.W, np.mean([r.W for r in runs], axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(averaged.b, np.mean([r.b for r in runs], axis=0), rtol=0, atol=1e-12)
    # and the last epoch's record is what those weights score
    assert averaged.history["val_cost"][-1] == pytest.approx(
        model.evaluate(averaged.W, averaged.b, tiny.val.X, tiny.val.Y, 0.01)["cost"], rel=1e-12)
    with pytest.raises(ParameterError, match="average must be a fraction from 0 up to"):
        RunConfig(average=1.0)


@ENGINES
def test_what_on_epoch_returns_never_stops_a_run(tiny, engine):
    # a progress bar's update() returns True whenever it redraws (tqdm does, on real data): that is no stop request
    seen = []

    def progress(history):
        seen.append(list(history["epoch"]))
        return True

    r = fit(tiny, engine, n_epochs=4, on_epoch=progress)
    assert seen == [[1], [1, 2], [1, 2, 3], [1, 2, 3, 4]]
    assert r.history["epoch"] == [1, 2, 3, 4] and not r.stopped


@ENGINES
def test_a_stop_request_ends_the_run_after_the_epoch_under_way(tiny, engine):
    stop = threading.Event()

    def press_stop_at_two(history):
        if len(history["epoch"]) == 2:
            stop.set()

    r = fit(tiny, engine, n_epochs=6, on_epoch=press_stop_at_two, stop=stop)
    kept = r.history["epoch"]
    assert r.stopped and kept == [1, 2]
    # what it kept is exactly a run of that many epochs
    assert np.array_equal(r.W, fit(tiny, engine, n_epochs=len(kept)).W)
    # set before the run, it ends after the first epoch
    r = fit(tiny, engine, n_epochs=6, stop=stop)
    assert r.stopped and r.history["epoch"] == [1]


@pytest.mark.parametrize(
    "kw, message",
    [({"eta": 0}, "eta must be > 0, got 0.0"), ({"eta": -1.0}, "eta must be > 0"), ({"lam": -0.1}, "lam must be >= 0"),
     ({"n_batch": 0}, "n_batch must be at least 1, got 0"), ({"loss": "hinge"}, "loss must be one of 'ce', 'mbce'"),
     ({"eta": "0.1"}, "eta must be a number, got '0.1'"), ({"n_epochs": 1.5}, "n_epochs must be an integer"),
     ({"seed": -1}, "seed must be at least 0"), ({"dtype": "float16"}, "dtype must be one of 'float32', 'float64'"),
     ({"flip": 1}, "flip must be True or False, got 1"), ({"engine": "slow"}, "engine must be one of 'fast', 'plain'")],
)
def test_bad_settings_are_refused_by_the_configuration(kw, message):
    with pytest.raises(ParameterError, match=f"^{message}"):
        RunConfig(**kw)


def test_sizes_the_data_cannot_serve_are_refused():
    RunConfig(val_size=49_999, n_batch=1).check_data_size(50_000)
    with pytest.raises(ParameterError, match=r"^n_batch must be an integer from 1 to 45000, got 45001"):
        RunConfig(n_batch=45_001).check_data_size(50_000)
    with pytest.raises(ParameterError, match=r"^val_size must be an integer from 1 to 49999, got 50000"):
        RunConfig(val_size=50_000).check_data_size(50_000)


def full_batch_step(tiny, loss, flip=False, seed=4, shift=0):
    """One epoch of the plain loop with the whole training set as one batch (float64), and what it starts from."""
    X, Y = tiny.train.X.astype(np.float64), tiny.train.Y.astype(np.float64)
    cfg = RunConfig(lam=0.3, eta=0.05, n_epochs=1, n_batch=X.shape[0], seed=seed, loss=loss, flip=flip,
                    shift=shift, dtype="float64")
    r = train.train(X, Y, tiny.val.X, tiny.val.Y, cfg)
    W0, b0 = train.init_params(10, X.shape[1], np.random.SeedSequence(seed).spawn(3)[0], 0.1, "float64")
    return r, X, Y, W0, b0


@pytest.mark.parametrize("loss", ["ce", "mbce"])
def test_one_full_batch_epoch_is_one_gradient_step(tiny, loss):
    # with the whole training set as one batch, an epoch of the plain loop is exactly W <- W - eta * dJ/dW
    r, X, Y, W0, b0 = full_batch_step(tiny, loss)
    step = model.LOSSES[loss](W0, b0, X, Y, lam=0.3)
    # the row order differs (the batch is shuffled), so only rounding may differ
    np.testing.assert_allclose(r.W, W0 - 0.05 * step.dW, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.b, b0 - 0.05 * step.db, rtol=0, atol=1e-12)


def test_flips_mirror_the_samples_the_flip_stream_chooses(tiny):
    # the same full-batch step, on the training images mirrored left to right where the flip stream says so
    r, X, Y, W0, b0 = full_batch_step(tiny, "ce", flip=True)
    _, shuffle_rng, flip_rng, _ = train.random_streams(4)
    order, chosen = shuffle_rng.permutation(X.shape[0]), flip_rng.random(X.shape[0]) < 0.5
    images = X.reshape(-1, 3, 32, 32).copy()
    images[order[chosen]] = images[order[chosen]][..., ::-1]  # sample order[i] is the batch's row i
    step = model.LOSSES["ce"](W0, b0, images.reshape(X.shape), Y, lam=0.3)
    assert 0.3 < chosen.mean() < 0.7
    np.testing.assert_allclose(r.W, W0 - 0.05 * step.dW, rtol=0, atol=1e-12)
    # and it is not the step without flips
    assert np.abs(r.W - full_batch_step(tiny, "ce")[0].W).max() > 1e-6


def test_translations_move_the_samples_the_shift_stream_chooses(tiny):
    # the same full-batch step, on the training images moved by the shift stream's draws, each way by at most 2
    r, X, Y, W0, b0 = full_batch_step(tiny, "ce", shift=2)
    _, shuffle_rng, _, shift_rng = train.random_streams(4)
    order, moves = shuffle_rng.permutation(X.shape[0]), shift_rng.integers(-2, 3, size=(X.shape[0], 2))
    images = np.zeros((X.shape[0], 3, 36, 36))  # each image in a frame of zeros two pixels wide, cut out moved
    images[:, :, 2:34, 2:34] = X[order].reshape(-1, 3, 32, 32)
    moved = np.stack([im[:, 2 - dy:34 - dy, 2 - dx:34 - dx] for im, (dy, dx) in zip(images, moves)])
    step = model.LOSSES["ce"](W0, b0, moved.reshape(X.shape), Y[order], lam=0.3)
    assert len(np.unique(moves, axis=0)) == 25
    np.testing.assert_allclose(r.W, W0 - 0.05 * step.dW, rtol=0, atol=1e-12)
    # and it is not the step without translations
    assert np.abs(r.W - full_batch_step(tiny, "ce")[0].W).max() > 1e-6


CASES = {"ce": {}, "ce-flip": {"flip": True}, "mbce": {"loss": "mbce"}, "ce-flip-shift": {"flip": True, "shift": 1},
         "ce-and-mbce": {}}  # the last: the runs' losses alternate
# runs of one sweep: each its own lambda, learning rate, schedule, initialization and length
MEMBERS = [{"lam": 0.05, "eta": 0.02, "n_epochs": 3}, {"lam": 0.0, "eta": 0.05, "milestones": (2,), "n_epochs": 4},
           {"lam": 0.3, "eta": 0.01, "n_epochs": 2, "init_std": 0.2, "evaluate_train": False},
           {"lam": 0.01, "eta": 0.03, "schedule": "cosine", "n_epochs": 5, "average": 0.6}]


def sweep_of(tiny, case, dtype, n_batch=33, **kw):
    losses = [{"loss": ("ce", "mbce")[i % 2]} if case == "ce-and-mbce" else {} for i in range(len(MEMBERS))]
    cfgs = [RunConfig(n_batch=n_batch, seed=5, dtype=dtype, **m, **loss, **CASES[case], **kw)
            for m, loss in zip(MEMBERS, losses)]
    return cfgs, sweep.train(tiny.train.X, tiny.train.Y, tiny.val.X, tiny.val.Y, cfgs)


def without_times(history):
    return {k: v for k, v in history.items() if k != "seconds"}


def columns_or_skip(*shape, exact=sweep.columns_exact):
    """``sweep.columns_exact``, skipping the test where this BLAS computes the columns layout inexactly."""
    return exact(*shape) or pytest.skip(f"this BLAS computes the columns layout inexactly for {shape}")


@pytest.fixture(params=["columns", "rows", "rows-slot-by-slot"])
def layout(request, monkeypatch):
    """The sweep's products in each layout: as columns (where this BLAS computes them exactly; elsewhere the test
    is skipped), as rows in one product where that is exact, and as rows one slot at a time (as any BLAS would)."""
    monkeypatch.setattr(sweep, "columns_exact", columns_or_skip if request.param == "columns" else lambda *a: False)
    if request.param == "rows-slot-by-slot":
        monkeypatch.setattr(sweep, "stacks_exactly", lambda *shape: False)
    return request.param


@pytest.mark.parametrize("case", CASES)
def test_every_run_of_a_sweep_equals_its_textbook_run(tiny, case, layout, monkeypatch):
    if layout == "columns":  # taken even where this BLAS computes it inexactly: only rounding differs here
        monkeypatch.setattr(sweep, "columns_exact", lambda *shape: True)
    # float64: only the order of additions differs (softmax taken directly, not through its logarithm)
    cfgs, swept = sweep_of(tiny, case, "float64")
    for cfg, fast in zip(cfgs, swept):
        plain = train.train(tiny.train.X, tiny.train.Y, tiny.val.X, tiny.val.Y, cfg)
        assert fast.W.dtype == plain.W.dtype == np.float64 and len(fast.history["epoch"]) == cfg.n_epochs
        for a, b in ((fast.W, plain.W), (fast.b, plain.b)):
            assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max()
        for key in train.HISTORY_KEYS:
            np.testing.assert_allclose(fast.history[key], plain.history[key], rtol=1e-10)
        assert fast.history["eta"] == plain.history["eta"]
    # float32, as the report trains: test accuracy within 0.001 (on 40 test images: the same predictions)
    cfgs, swept = sweep_of(tiny, case, "float32")
    for cfg, fast in zip(cfgs, swept):
        plain = train.train(tiny.train.X, tiny.train.Y, tiny.val.X, tiny.val.Y, cfg)
        accuracy = [model.evaluate(r.W, r.b, tiny.test.X, tiny.test.Y)["acc"] for r in (fast, plain)]
        assert abs(accuracy[0] - accuracy[1]) < 0.001


@pytest.mark.parametrize("n_batch", [10, 40], ids=["one-block-batches", "two-block-batches"])
@pytest.mark.parametrize("case", CASES)
def test_a_run_in_a_sweep_is_bit_for_bit_the_run_alone(tiny, case, n_batch, layout):
    cfgs, swept = sweep_of(tiny, case, "float32", n_batch=n_batch)
    for cfg, together in zip(cfgs, swept):
        alone = sweep.train(tiny.train.X, tiny.train.Y, tiny.val.X, tiny.val.Y, [cfg])[0]
        assert np.array_equal(together.W, alone.W) and np.array_equal(together.b, alone.b)
        np.testing.assert_equal(without_times(together.history), without_times(alone.history))  # NaN equals NaN
    # and in another order, and beside other company
    again = sweep.train(tiny.train.X, tiny.train.Y, tiny.val.X, tiny.val.Y, [cfgs[2], cfgs[0]])
    assert np.array_equal(again[0].W, swept[2].W) and np.array_equal(again[1].W, swept[0].W)


def test_a_sweep_refuses_runs_that_cannot_share_their_batches(tiny):
    with pytest.raises(ValueError, match="must share seed"):
        sweep.train(tiny.train.X, tiny.train.Y, tiny.val.X, tiny.val.Y, [RunConfig(seed=0), RunConfig(seed=1)])


@pytest.mark.parametrize("loss", ["ce", "mbce"])
def test_in_place_score_gradients_equal_the_model(loss):
    rng = np.random.default_rng(0)
    S, y = rng.normal(0, 3, size=(7, 10)), rng.integers(0, 10, 7)
    _, G = model.LOSSES_OF_SCORES[loss](S, np.eye(10)[y])
    # the model's G is the mean over the batch; the sweep scales by 1/m later
    np.testing.assert_allclose(sweep.score_gradients(S.copy(), y, loss) / 7, G, rtol=1e-14, atol=1e-16)
    # three runs' scores (7, 3, 10) in one pass: each run's, bit for bit, as alone
    S3 = rng.normal(0, 3, size=(7, 3, 10)).astype(np.float32)
    together = sweep.score_gradients(S3.copy(), y, loss)
    assert all(np.array_equal(together[:, i], sweep.score_gradients(S3[:, i].copy(), y, loss)) for i in range(3))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_this_blas_multiplies_the_reports_stacks_in_one_product(dtype):
    # scores of a batch of 100 (a view of the batch, transposed), the step, and a block of evaluation
    rng = np.random.default_rng(1)
    W, G = rng.standard_normal((4 * sweep.SLOT, 3072)).astype(dtype), rng.standard_normal((4 * sweep.SLOT, 100))
    Xb, G = rng.standard_normal((100, 3072)).astype(dtype), G.astype(dtype)
    for A, B in ((W, Xb.T), (G, Xb)):
        assert sweep.stacks_exactly(dtype, *B.shape, not B.flags.c_contiguous)
        # and what the stack gives is, slot by slot, what each slot gives alone
        with threadpool_limits(limits=1):
            stacked = sweep.times(A, B)
            assert all(np.array_equal(stacked[sweep.SLOT * i:sweep.SLOT * (i + 1)],
                                      A[sweep.SLOT * i:sweep.SLOT * (i + 1)] @ B) for i in range(4))
    assert sweep.stacks_exactly(dtype, 3072, sweep.EVAL_ROWS, True)


LAYOUT_PROBE = """
import json
import numpy as np
from threadpoolctl import threadpool_info
from assignment1 import sweep
from assignment1.config import RunConfig
arch = [i["architecture"] for i in threadpool_info() if i["user_api"] == "blas"]
# the report's shapes: batches of 100 from 45,000 images, evaluation of 45,000 and 5,000
rows = sweep.slot_rows("float32", 10, 3072, {100}), sweep.slot_rows("float32", 10, 3072, {512, 456, 392}, False)
# a run in a sweep of three against the run alone (a few batches of 100, CIFAR-sized images)
rng = np.random.default_rng(0)
X, Xv = rng.standard_normal((300, 3072), np.float32), rng.standard_normal((100, 3072), np.float32)
Y, Yv = (np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)] for n in (300, 100))
cfgs = [RunConfig(lam=lam, eta=0.01, n_epochs=2, n_batch=100) for lam in (0.0, 0.1, 1.0)]
swept = sweep.train(X, Y, Xv, Yv, cfgs)
same = all(np.array_equal(r.W, sweep.train(X, Y, Xv, Yv, [c])[0].W) for c, r in zip(cfgs, swept))
print(json.dumps([arch, rows, same]))
"""


@pytest.mark.parametrize("coretype, layout_taken", [("Haswell", "rows"), ("SkylakeX", "columns")])
def test_each_openblas_kernel_takes_the_layout_it_computes_exactly(coretype, layout_taken):
    import json
    import os
    import subprocess
    import sys

    # OpenBLAS as on another processor: Haswell kernels compute the columns layout inexactly, SkylakeX exactly
    env = {**os.environ, "OPENBLAS_CORETYPE": coretype}
    out = subprocess.run([sys.executable, "-c", LAYOUT_PROBE], env=env, capture_output=True, text=True, check=True)
    arch, rows, same = json.loads(out.stdout)
    if arch != [coretype]:
        pytest.skip(f"OpenBLAS's {coretype} kernels are not available here ({arch})")
    # the layout the check chooses for training and for evaluation, and a run's weights independent of its sweep
    assert rows == ([10, 10] if layout_taken == "columns" else [sweep.SLOT, sweep.SLOT])
    assert same
    if layout_taken == "rows":
        # the check is needed: the columns forced on these kernels make a run depend on its company
        forced = LAYOUT_PROBE.replace("rng = ", "sweep.columns_exact = lambda *shape: True\nrng = ")
        out = subprocess.run([sys.executable, "-c", forced], env=env, capture_output=True, text=True, check=True)
        assert json.loads(out.stdout)[2] is False


def test_the_stack_holds_each_run_in_its_slot():
    rng = np.random.default_rng(2)
    params = [(rng.standard_normal((10, 5)), rng.standard_normal(10)) for _ in range(3)]
    for rows in (sweep.SLOT, 10):  # the rows layout's slots, with zeros below each run, and the columns layout's
        W, b = sweep.stack(params, rows)
        assert W.shape == (3, rows, 5) and b.shape == (3, rows)
        for i, (W_i, b_i) in enumerate(params):
            assert np.array_equal(sweep.slot(W, i, 10), W_i) and np.array_equal(sweep.slot(b, i, 10), b_i)
            assert not W[i, 10:].any() and not b[i, 10:].any()
    with pytest.raises(ValueError, match="at most 12 classes"):
        sweep.stack([(np.zeros((13, 5)), np.zeros(13))])


def test_runs_are_scheduled_in_sweeps_largest_first_and_split_to_keep_both_processes_busy():
    from assignment1.experiments.runs import cost, schedule

    table1 = [RunConfig(lam=lam, eta=eta, seed=s) for s in range(5) for lam, eta in ((0, 0.1), (0, 1e-3), (0.1, 1e-3))]
    longer = [RunConfig(lam=0.1, eta=0.01, n_epochs=100, seed=s) for s in range(2)]
    cfgs = table1 + longer + [RunConfig(engine="plain", seed=0)]
    sweeps, processes = schedule(cfgs, workers=2)
    # every run once; runs of one seed together, whatever their length; the plain run alone; the costliest first
    assert sorted(i for s in sweeps for i in s) == list(range(18))
    assert sorted(sorted(s) for s in sweeps) == [[0, 1, 2, 15], [3, 4, 5, 16], [6, 7, 8], [9, 10, 11],
                                                 [12, 13, 14], [17]]
    costs = [cost([cfgs[i] for i in s]) for s in sweeps]
    assert costs == sorted(costs, reverse=True) and processes == 2
    # one sweep for two processes: halved, so that the second has work too
    sweeps, processes = schedule(table1[:3], workers=2)
    assert sorted(map(len, sweeps)) == [1, 2] and processes == 2
    assert schedule(table1[:3], workers=1) == ([[0, 1, 2]], 1)
    # too little work to be worth starting a process for: trained here, in one sweep
    short = [RunConfig(lam=lam, n_epochs=3, seed=0) for lam in (0.0, 0.1, 1.0)] + [RunConfig(n_epochs=3, seed=1)]
    assert schedule(short, workers=2) == ([[0, 1, 2], [3]], 1)


def test_the_epoch_profiler_times_the_sweeps_own_loop(tiny, layout, monkeypatch):
    if layout == "columns":  # taken even where inexact: the profiled loop and the sweep take the same products
        monkeypatch.setattr(sweep, "columns_exact", lambda *shape: True)
    # load benchmarks/profile_epoch.py, which re-enacts sweep.train phase by phase with a clock around each
    path = Path(__file__).parents[1] / "benchmarks" / "profile_epoch.py"
    spec = importlib.util.spec_from_file_location("profile_epoch", path)
    profiler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(profiler)
    # profile a sweep of three runs on tiny data, then train the same sweep
    cfgs = [RunConfig(lam=lam, eta=0.01, n_epochs=3, n_batch=16) for lam in (0.0, 0.1, 1.0)]
    args = (tiny.train.X, tiny.train.Y, tiny.val.X, tiny.val.Y)
    with threadpool_limits(limits=1):  # as its main() and the sweep run
        times, weights = profiler.profile(*args, cfgs)
    swept = sweep.train(*args, cfgs)
    # every phase timed every epoch, and the profiled loop ends where the sweep does, bit for bit
    assert set(times) == set(profiler.PHASES) and all(len(t) == 3 for t in times.values())
    assert all(np.array_equal(W, r.W) for W, r in zip(weights, swept))


def test_a_run_that_leaves_a_sweep_is_its_textbook_run_stopped_there_and_the_others_go_on(tiny, layout):
    # runs 1 and 3 of the sweep ask to leave after epochs 2 and 3; every run is asked after each of its epochs
    leaving, asked = {1: 2, 3: 3}, []

    def leave(i, history):
        asked.append((i, len(history["epoch"])))
        return leaving.get(i) == len(history["epoch"])

    cfgs = [RunConfig(n_batch=33, seed=5, dtype="float64", **m, flip=True) for m in MEMBERS]
    swept = sweep.train(tiny.train.X, tiny.train.Y, tiny.val.X, tiny.val.Y, cfgs, leave=leave)
    assert sorted(asked) == sorted((i, e) for i, c in enumerate(cfgs) for e in range(1, leaving.get(i, c.n_epochs) + 1))
    # each run against the textbook loop, stopped after the same epoch by its stop request (float64: 1e-10)
    for i, (cfg, fast) in enumerate(zip(cfgs, swept)):
        stop, at = threading.Event(), leaving.get(i)
        plain = train.train(tiny.train.X, tiny.train.Y, tiny.val.X, tiny.val.Y, cfg, stop=stop,
                            on_epoch=lambda h, stop=stop, at=at: stop.set() if len(h["epoch"]) == at else None)
        assert fast.stopped == plain.stopped == (i in leaving) and fast.history["epoch"] == plain.history["epoch"]
        for a, b in ((fast.W, plain.W), (fast.b, plain.b)):
            assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max()
        for key in train.HISTORY_KEYS:
            np.testing.assert_allclose(fast.history[key], plain.history[key], rtol=1e-10)
    # float32: the runs that stay are bit for bit those of the sweep that nobody leaves
    cfgs = [dataclasses.replace(c, dtype="float32") for c in cfgs]
    stayed = sweep.train(tiny.train.X, tiny.train.Y, tiny.val.X, tiny.val.Y, cfgs, leave=leave)
    whole = sweep.train(tiny.train.X, tiny.train.Y, tiny.val.X, tiny.val.Y, cfgs)
    for i in (0, 2):
        assert np.array_equal(stayed[i].W, whole[i].W) and np.array_equal(stayed[i].b, whole[i].b)
