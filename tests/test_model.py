import math

import numpy as np
import pytest

from assignment1 import gradcheck, model

LN2 = math.log(2.0)


def hand_problem():
    # two samples, d = 2, K = 3; the scores are (0, ln 2, 0) for both, so P = (1/4, 1/2, 1/4)
    X = np.array([[1.0, 0.0], [1.0, 0.0]])
    W = np.array([[0.0, 0.0], [LN2, 0.0], [0.0, 0.0]])
    b = np.zeros(3)
    Y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    return W, b, X, Y


def test_cross_entropy_by_hand():
    W, b, X, Y = hand_problem()
    # the losses are -ln(1/2) and -ln(1/4); their mean is 1.5 ln 2
    r = model.cross_entropy(W, b, X, Y, lam=0.5)
    assert r.loss == pytest.approx(1.5 * LN2, rel=1e-15)
    assert r.cost == pytest.approx(1.5 * LN2 + 0.5 * LN2**2, rel=1e-15)
    # dS = (P - Y) / n; rows (1/4, -1/2, 1/4) and (-3/4, 1/2, 1/4), halved; db is their sum
    np.testing.assert_allclose(r.db, [-0.25, 0.0, 0.25], atol=1e-15)
    # dW = dS^T X + 2 lam W: the first column is db, the second only the L2 term (zero here)
    np.testing.assert_allclose(r.dW, [[-0.25, 0.0], [LN2, 0.0], [0.25, 0.0]], atol=1e-15)


def test_mbce_by_hand():
    # scores (ln 3, 0) give p = (3/4, 1/2); with y = (1, 0) the loss is (ln 4/3 + ln 2) / 2
    W = np.array([[math.log(3.0)], [0.0]])
    b = np.zeros(2)
    X = np.array([[1.0]])
    Y = np.array([[1.0, 0.0]])
    r = model.mbce(W, b, X, Y, lam=0.0)
    assert r.loss == pytest.approx(0.5 * (math.log(4 / 3) + LN2), rel=1e-15)
    # dS = (p - y) / (n K) = (-1/4, 1/2) / 2
    np.testing.assert_allclose(r.db, [-0.125, 0.25], atol=1e-15)
    np.testing.assert_allclose(r.dW, [[-0.125], [0.25]], atol=1e-15)


def test_mbce_matches_its_definition():
    rng = np.random.default_rng(3)
    W, b, X = rng.normal(size=(4, 6)), rng.normal(size=4), rng.normal(size=(5, 6))
    Y = np.eye(4)[rng.integers(0, 4, size=5)]
    p = 1 / (1 + np.exp(-(X @ W.T + b)))
    expected = -np.mean(np.sum((1 - Y) * np.log(1 - p) + Y * np.log(p), axis=1) / 4)
    assert model.mbce(W, b, X, Y, lam=0.2).loss == pytest.approx(expected, rel=1e-13)
    assert model.mbce(W, b, X, Y, lam=0.2).cost == pytest.approx(expected + 0.2 * np.sum(W**2), rel=1e-13)


def test_activations_on_huge_scores():
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        P = model.softmax(np.array([[1000.0, 0.0, -1000.0], [1e300, 1e300, -1e300]]))
        np.testing.assert_allclose(P, [[1, 0, 0], [0.5, 0.5, 0]])
        np.testing.assert_allclose(model.sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0, 0.5, 1])
        # a confident wrong answer costs its margin, exactly, and the gradient stays finite
        W, b, X = np.array([[1000.0], [0.0]]), np.zeros(2), np.array([[1.0]])
        r = model.cross_entropy(W, b, X, np.array([[0.0, 1.0]]))
        assert r.loss == pytest.approx(1000.0)
        np.testing.assert_allclose(r.db, [1.0, -1.0])
        r = model.mbce(W, b, X, np.array([[0.0, 1.0]]))
        assert r.loss == pytest.approx((1000.0 + LN2) / 2)


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(10, 8)).astype(np.float32), np.zeros(10, np.float32)
    X, Y = rng.normal(size=(4, 8)).astype(np.float32), np.eye(10, dtype=np.float32)[[1, 2, 3, 4]]
    for loss in model.LOSSES.values():
        r = loss(W, b, X, Y, lam=0.1)
        assert r.dW.dtype == np.float32 and r.db.dtype == np.float32


@pytest.mark.parametrize("loss", ["ce", "mbce"])
@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_analytic_gradients_match_numerical(loss, lam):
    # a small random problem in float64 whose gradients are all well away from zero
    rng = np.random.default_rng(1)
    n, d, K = 6, 9, 5
    X = rng.normal(size=(n, d))
    Y = np.eye(K)[rng.integers(0, K, size=n)]
    W, b = rng.normal(0, 0.5, size=(K, d)), rng.normal(0, 0.5, size=K)
    # centred differences: relative error within 1e-6 everywhere
    stats = gradcheck.check_gradients(W, b, X, Y, lam=lam, loss=loss, h=1e-5, method="centred")
    for name in ("W", "b"):
        assert stats[name]["max_rel_err"] < 1e-6, (name, stats[name])
        assert stats[name]["grad_std"] > 1e-3  # the check compared something non-trivial
    # forward differences are first order: close, but visibly less so
    fwd = gradcheck.check_gradients(W, b, X, Y, lam=lam, loss=loss, h=1e-5, method="forward")
    assert 1e-9 < fwd["W"]["abs_diff_max"] < 1e-4


def test_accuracy_and_evaluate():
    W = np.array([[1.0, 0.0], [0.0, 1.0]])
    X = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, 4.0]])  # scores X W^T: the highest of (2, 1), (0, 3), (5, 4)
    assert model.accuracy(np.array([0, 1, 1]), np.array([0, 1, 0])) == pytest.approx(2 / 3)
    ev = model.evaluate(W, np.zeros(2), X, np.eye(2)[[0, 1, 1]], lam=0.5)
    assert ev["acc"] == pytest.approx(2 / 3)
    assert ev["cost"] == pytest.approx(ev["loss"] + 0.5 * 2)


def test_forward_probabilities():
    rng = np.random.default_rng(2)
    W, b, X = rng.normal(size=(10, 6)), rng.normal(size=10), rng.normal(size=(4, 6))
    S = model.scores(W, b, X)
    np.testing.assert_allclose(S, X @ W.T + b)
    P = model.ACTIVATIONS["ce"](S)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_allclose(P, np.exp(S) / np.exp(S).sum(axis=1, keepdims=True))
    Q = model.ACTIVATIONS["mbce"](S)  # independent sigmoids: each in (0, 1), no constraint on the sum
    np.testing.assert_allclose(Q, 1 / (1 + np.exp(-S)))
