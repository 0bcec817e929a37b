import numpy as np
import pytest

from assignment1 import gradcheck


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
