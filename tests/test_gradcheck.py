import numpy as np
import pytest

from assignment1 import gradcheck, model


def test_numerical_gradient_of_a_known_function():
    # c(W, b) = sum(A * W**2) + sum(b**3) has gradient (2 A W, 3 b**2)
    rng = np.random.default_rng(0)
    A, W, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)

    def cost(W_, b_):
        return float(np.sum(A * W_**2) + np.sum(b_**3))

    W_before, b_before = W.copy(), b.copy()
    dW, db = gradcheck.numerical_gradients(cost, W, b, h=1e-5, method="centred")
    # the centred difference of a quadratic is exact up to rounding; of a cubic off by h^2
    np.testing.assert_allclose(dW, 2 * A * W, atol=1e-9)
    np.testing.assert_allclose(db, 3 * b**2, atol=1e-9)
    # forward differences are off by about h * c''/2
    dW_f, _ = gradcheck.numerical_gradients(cost, W, b, h=1e-5, method="forward")
    np.testing.assert_allclose(dW_f, 2 * A * W + 1e-5 * A, atol=1e-9)
    # the inputs are left untouched, bit for bit, though every entry was perturbed and restored
    assert np.array_equal(W, W_before) and np.array_equal(b, b_before)
    assert dW.dtype == db.dtype == np.float64


@pytest.mark.parametrize("method", gradcheck.METHODS)
@pytest.mark.parametrize("loss", ["ce", "mbce"])
@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_the_gradient_of_scores_is_the_plain_one(loss, lam, method):
    # a random problem in float64, scores of order one
    rng = np.random.default_rng(3)
    n, d, K, h = 7, 11, 4, 1e-5
    X, Y = rng.normal(size=(n, d)), np.eye(K)[rng.integers(0, K, size=n)]
    W, b = rng.normal(0, 0.5, size=(K, d)), rng.normal(0, 0.5, size=K)
    W_before, b_before, X_before = W.copy(), b.copy(), X.copy()

    def cost(W_, b_):
        return model.LOSSES[loss](W_, b_, X, Y, lam, grad=False).cost

    dW, db = gradcheck.numerical_gradients(cost, W, b, h=h, method=method)
    fast_dW, fast_db = gradcheck.numerical_gradients_of_scores(model.LOSSES_OF_SCORES[loss], W, b, X, Y, lam,
                                                               h=h, method=method)
    # the two compute each perturbed cost with other roundings: a few ulps of the cost and scores, over h
    S = model.scores(W, b, X)
    tol = 64 * np.finfo(np.float64).eps * (abs(cost(W, b)) + np.abs(S).max()) / h
    np.testing.assert_allclose(fast_dW, dW, rtol=0, atol=tol)
    np.testing.assert_allclose(fast_db, db, rtol=0, atol=tol)
    assert np.abs(dW).max() > 1000 * tol  # far larger than what the two may differ by
    # nothing it was given is changed
    assert all(np.array_equal(a, a0) for a, a0 in ((W, W_before), (b, b_before), (X, X_before)))


def test_compare_statistics_by_hand():
    a = np.array([1.0, -2.0, 0.0, 3.0])
    n = np.array([1.5, -2.0, 0.0, 2.0])
    s = gradcheck.compare(a, n)
    # |a - n| = (0.5, 0, 0, 1)
    assert s["abs_diff_mean"] == pytest.approx(0.375)
    assert s["abs_diff_max"] == pytest.approx(1.0)
    assert s["abs_diff_std"] == pytest.approx(np.std([0.5, 0, 0, 1]))
    assert (s["grad_min"], s["grad_max"]) == (-2.0, 2.0)
    # elementwise relative errors (0.2, 0, 0 (both zero), 0.2): max 0.2
    assert s["max_rel_err"] == pytest.approx(0.2)
    assert s["rel_err_norm"] == pytest.approx(np.sqrt(1.25) / (np.linalg.norm(a) + np.linalg.norm(n)))


def test_an_unknown_method_is_refused():
    with pytest.raises(KeyError, match="backward"):
        gradcheck.numerical_gradients(lambda W, b: 0.0, np.zeros((1, 1)), np.zeros(1), method="backward")


def test_the_check_calls_blas_on_one_thread(monkeypatch):
    # the L2 term's dot product runs tens of thousands of times: with BLAS threads, on a machine busy
    # training (as during a report), each call waited for a core and the check took 2.5 times longer
    from threadpoolctl import threadpool_info, threadpool_limits

    threads, l2 = [], model.l2

    def counted(W, lam):
        threads.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        return l2(W, lam)

    monkeypatch.setattr(model, "l2", counted)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(3, 4)), np.eye(2)[[0, 1, 1]]
    with threadpool_limits(limits=2):  # two threads around it, as on any machine of two cores or more
        gradcheck.check_gradients(rng.normal(size=(2, 4)), np.zeros(2), X, Y, lam=0.1)
    assert threads and set(threads) == {1}
