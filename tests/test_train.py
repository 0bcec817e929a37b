import numpy as np
import pytest

from assignment1 import data, model, train
from assignment1.validate import ParameterError


@pytest.fixture
def tiny(tiny_env):
    return data.load_cifar10(val_size=40, progress=False)


def fit(ds, **kw):
    args = dict(lam=0.01, eta=0.01, n_epochs=4, n_batch=16, seed=0)
    args.update(kw)
    return train.train(ds.train.X, ds.train.Y, ds.val.X, ds.val.Y, **args)


def test_same_seed_gives_bit_identical_weights(tiny):
    a, b = fit(tiny, flip=True), fit(tiny, flip=True)
    assert np.array_equal(a.W, b.W) and np.array_equal(a.b, b.b)
    assert a.history["val_cost"] == b.history["val_cost"]
    c = fit(tiny, flip=True, seed=1)
    assert not np.array_equal(a.W, c.W)


def test_training_learns_and_records_history(tiny):
    r = fit(tiny, n_epochs=8, eta=0.005)
    h = r.history
    assert h["epoch"] == list(range(1, 9))
    assert all(len(h[k]) == 8 for k in train.HISTORY_KEYS)
    # the classes are separable templates plus noise: the cost falls and accuracy rises well above chance
    assert h["train_cost"][-1] < h["train_cost"][0]
    assert h["val_acc"][-1] > 0.5
    # the history is what evaluate() says of the final weights
    ev = model.evaluate(r.W, r.b, tiny.val.X, tiny.val.Y, 0.01)
    assert ev["cost"] == pytest.approx(h["val_cost"][-1], rel=1e-6)
    assert r.W.dtype == np.float32 and not r.diverged


def test_runs_differing_only_in_lam_start_from_the_same_weights(tiny):
    # one epoch with eta tiny barely moves W, so both stay next to the shared initialization
    a = fit(tiny, lam=0.0, eta=1e-9, n_epochs=1)
    b = fit(tiny, lam=1.0, eta=1e-9, n_epochs=1)
    np.testing.assert_allclose(a.W, b.W, atol=1e-6)
    W0, _ = train.init_params(10, 3072, np.random.SeedSequence(0).spawn(3)[0], 0.1)
    np.testing.assert_allclose(a.W, W0, atol=1e-6)


def test_divergence_is_detected_and_the_last_finite_state_kept(tiny):
    r = fit(tiny, eta=1e6, lam=10.0, n_epochs=30)
    assert r.diverged
    assert len(r.history["epoch"]) < 30
    assert np.isfinite(r.W).all() and np.isfinite(r.b).all()
    assert all(np.isfinite(v) for k in train.HISTORY_KEYS for v in r.history[k])


def test_schedule_sets_eta_per_epoch(tiny):
    sched = train.StepSchedule(0.01, (2, 3), 0.1)
    assert [sched(e) for e in range(4)] == pytest.approx([0.01, 0.01, 0.001, 0.0001])
    r = fit(tiny, eta=0.01, eta_schedule=sched)
    assert r.history["eta"] == pytest.approx([0.01, 0.01, 0.001, 0.0001])
    with pytest.raises(ParameterError, match="milestones"):
        train.StepSchedule(0.01, (5, 2))


def test_flip_changes_the_run_and_mbce_trains(tiny):
    assert not np.array_equal(fit(tiny).W, fit(tiny, flip=True).W)
    r = fit(tiny, loss="mbce", eta=0.05)
    assert r.history["train_loss"][-1] < r.history["train_loss"][0]


def test_float64_training(tiny):
    r = fit(tiny, dtype="float64")
    assert r.W.dtype == np.float64
    # float32 and float64 follow the same path closely over a few epochs
    np.testing.assert_allclose(r.W, fit(tiny).W, atol=1e-4)


@pytest.mark.parametrize(
    "kw, name",
    [({"eta": 0}, "eta"), ({"eta": -1.0}, "eta"), ({"lam": -0.1}, "lam"), ({"n_batch": 0}, "n_batch"),
     ({"n_batch": 10**6}, "n_batch"), ({"loss": "hinge"}, "loss"), ({"eta": "0.1"}, "eta"),
     ({"n_epochs": 1.5}, "n_epochs"), ({"seed": -1}, "seed"), ({"dtype": "float16"}, "dtype")],
)
def test_bad_parameters_are_refused(tiny, kw, name):
    with pytest.raises(ParameterError, match=name):
        fit(tiny, **kw)


@pytest.mark.parametrize("loss", ["ce", "mbce"])
def test_one_full_batch_epoch_is_one_gradient_step(tiny, loss):
    # with the whole training set as one batch, an epoch is exactly W <- W - eta * dJ/dW
    X, Y = tiny.train.X.astype(np.float64), tiny.train.Y.astype(np.float64)
    r = train.train(X, Y, tiny.val.X, tiny.val.Y, lam=0.3, eta=0.05, n_epochs=1, n_batch=X.shape[0], seed=4,
                    loss=loss, dtype="float64")
    W0, b0 = train.init_params(10, X.shape[1], np.random.SeedSequence(4).spawn(3)[0], 0.1, "float64")
    step = model.LOSSES[loss](W0, b0, X, Y, lam=0.3)
    # the row order differs (the batch is shuffled), so only rounding may differ
    np.testing.assert_allclose(r.W, W0 - 0.05 * step.dW, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.b, b0 - 0.05 * step.db, rtol=0, atol=1e-12)


@pytest.mark.parametrize("flip", [False, True])
def test_history_is_the_evaluation_of_each_epochs_weights(tiny, flip):
    # epoch 1 of a 3-epoch run is bit-identical to a 1-epoch run, so its logged values
    # must be what evaluate() says of the 1-epoch run's weights
    long = fit(tiny, n_epochs=3, flip=flip)
    short = fit(tiny, n_epochs=1, flip=flip)
    for split, (X, Y) in (("train", (tiny.train.X, tiny.train.Y)), ("val", (tiny.val.X, tiny.val.Y))):
        ev = model.evaluate(short.W, short.b, X, Y, 0.01)
        # float32 scores from differently blocked products round differently: about 1e-7 relative
        assert long.history[f"{split}_loss"][0] == pytest.approx(ev["loss"], rel=1e-5)
        assert long.history[f"{split}_cost"][0] == pytest.approx(ev["cost"], rel=1e-5)
        assert long.history[f"{split}_acc"][0] == pytest.approx(ev["acc"], abs=1.5 / X.shape[0])


def test_row_blocks_cover_the_batch_in_small_blocks():
    for m in (1, 31, 32, 33, 100, 257):
        blocks = train.row_blocks(m)
        assert blocks[0].start == 0 and blocks[-1].stop == m
        assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:]))
        assert max(s.stop - s.start for s in blocks) <= train.MAX_BLOCK_ROWS
    assert [s.stop - s.start for s in train.row_blocks(100)] == [25, 25, 25, 25]


def reference_train(X, Y, *, lam, eta, n_epochs, n_batch, seed, loss="ce", flip=False, dtype="float64"):
    """The plain loop the optimized trainer must agree with: gather, loss gradients, step."""
    X, Y = X.astype(dtype), Y.astype(dtype)
    n, d = X.shape
    init_seq, shuffle_seq, flip_seq = np.random.SeedSequence(seed).spawn(3)
    W, b = train.init_params(Y.shape[1], d, init_seq, 0.1, dtype)
    shuffle_rng, flip_rng = np.random.default_rng(shuffle_seq), np.random.default_rng(flip_seq)
    for _ in range(n_epochs):
        perm = shuffle_rng.permutation(n)
        flips = flip_rng.random(n) < 0.5 if flip else None
        for start in range(0, n, n_batch):
            idx = perm[start:start + n_batch]
            Xb = X[idx]
            if flip:
                mirror = flips[start:start + n_batch]
                Xb[mirror] = data.flip(Xb[mirror])
            step = model.LOSSES[loss](W, b, Xb, Y[idx], lam)
            W, b = W - eta * step.dW, b - eta * step.db
    return W, b


@pytest.mark.parametrize("loss, flip", [("ce", False), ("ce", True), ("mbce", False)])
def test_optimized_loop_matches_a_plain_reference(tiny, loss, flip):
    kw = dict(lam=0.05, eta=0.02, n_epochs=3, n_batch=33, seed=5, loss=loss, flip=flip)
    W_ref, b_ref = reference_train(tiny.train.X, tiny.train.Y, **kw)
    # float64: only the order of additions differs (blocks, in-place accumulation), so the
    # weights agree to rounding, about 1e-16 relative per operation over ~20 steps
    r = train.train(tiny.train.X, tiny.train.Y, tiny.val.X, tiny.val.Y, dtype="float64", **kw)
    np.testing.assert_allclose(r.W, W_ref, rtol=0, atol=1e-12 * np.abs(W_ref).max())
    np.testing.assert_allclose(r.b, b_ref, rtol=0, atol=1e-12 * np.abs(b_ref).max())
    # float32: the same, at float32's 6e-8 per operation; predictions on the test set agree
    r32 = train.train(tiny.train.X, tiny.train.Y, tiny.val.X, tiny.val.Y, dtype="float32", **kw)
    np.testing.assert_allclose(r32.W, W_ref, rtol=0, atol=1e-5 * np.abs(W_ref).max())
    np.testing.assert_array_equal(model.predict(r32.W, r32.b, tiny.test.X), model.predict(W_ref, b_ref, tiny.test.X))


@pytest.mark.parametrize("kw", [{}, {"flip": True}, {"loss": "mbce", "n_batch": 7}],
                         ids=["ce", "flip", "mbce-odd-batches"])
def test_two_workers_give_bit_identical_results(tiny, kw):
    one = fit(tiny, workers=1, n_epochs=3, **kw)
    two = fit(tiny, workers=2, n_epochs=3, **kw)
    assert np.array_equal(one.W, two.W) and np.array_equal(one.b, two.b)
    assert {k: v for k, v in one.history.items() if k != "seconds"} == \
        {k: v for k, v in two.history.items() if k != "seconds"}


def test_a_failing_helper_process_is_an_error_not_a_hang(tiny, monkeypatch):
    def broken(self, *args):
        raise ValueError("simulated failure in the helper")

    monkeypatch.setattr(train._Partner, "_serve", broken)
    with pytest.raises(RuntimeError, match="helper process failed"):
        fit(tiny, workers=2)
