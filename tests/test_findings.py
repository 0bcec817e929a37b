"""The facts the report's sentences state, on results built by hand."""

from types import SimpleNamespace

import numpy as np
import pytest

from assignment1.experiments import findings, stats
from assignment1.report import section


def run(lam, eta, val_loss=(1.0, 1.0), train_acc=(0.5,), val_acc=(0.5,), acc=0.4, W=None, diverged=False):
    return SimpleNamespace(config=SimpleNamespace(lam=float(lam), eta=float(eta)), test={"acc": acc}, W=W,
                           history={"val_loss": list(val_loss), "train_acc": list(train_acc), "val_acc": list(val_acc)},
                           diverged=diverged)


def test_final_and_roughness_by_hand():
    runs = [run(0, 0.1, val_loss=[9, 9, 1, 3, 2], val_acc=[0.2, 0.3]), run(0, 0.1, val_loss=[9, 9, 1, 1, 1],
                                                                             val_acc=[0.2, 0.5])]
    assert findings.final(runs, "val_acc") == pytest.approx(0.4)
    # second halves (1, 3, 2) and (1, 1, 1): mean steps (2 + 1) / 2 = 1.5 and 0, averaged over runs
    assert findings.roughness(runs, "val_loss") == pytest.approx(0.75)


def test_a_jumpy_large_learning_rate_is_called_overshooting():
    jumpy = [run(0, 0.1, val_loss=[5, 2, 4, 1, 5, 2], acc=0.27)]
    calm = [run(0, 0.001, val_loss=[5, 3, 2.0, 1.9, 1.8, 1.7], acc=0.32)]
    other = [run(1, 0.001, val_loss=[5, 5, 5, 5], acc=0.37)]
    f = findings.learning_rate_effect([jumpy, calm, other])
    # the high rate is compared with the low rate at the same lambda (0), not with lambda 1
    assert (f.eta_high, f.eta_low, f.lam) == (0.1, 0.001, 0.0)
    assert f.roughness_high == pytest.approx(3.5) and f.roughness_low == pytest.approx(0.1)
    assert f.overshoots and (f.acc_high, f.acc_low) == (0.27, 0.32)
    # as calm as the low rate: no overshooting
    steady = [run(0, 0.1, val_loss=[5, 3, 2.0, 1.9, 1.8, 1.7])]
    assert not findings.learning_rate_effect([steady, calm]).overshoots
    # one learning rate: nothing to compare
    assert findings.learning_rate_effect([calm, other]) is None


def test_no_finding_speaks_of_a_setting_that_diverged():
    # a diverged run keeps only its epochs before the overflow: here, one calm one, as if it had settled
    diverged = [run(0, 0.1, val_loss=[2.3], acc=0.1, diverged=True), run(0, 0.1, val_loss=[2, 1.9, 1.8], acc=0.3)]
    calm = [run(0, 0.001, val_loss=[5, 3, 2.0, 1.9, 1.8, 1.7], acc=0.32)]
    middle = [run(0, 0.01, val_loss=[5, 2, 4, 1, 5, 2], acc=0.3)]
    # two learning rates, one of them diverged: there is nothing to compare, so nothing says both settle
    assert findings.learning_rate_effect([diverged, calm]) is None
    # three: the largest that trained throughout is compared with the smallest
    f = findings.learning_rate_effect([diverged, calm, middle])
    assert (f.eta_high, f.eta_low) == (0.01, 0.001) and f.overshoots
    # nor is a diverged lambda the best, the strongest or a gap
    strong = [run(100, 0.001, train_acc=[0.1], val_acc=[0.1], acc=0.9, diverged=True)]
    weak = [run(0.1, 0.001, train_acc=[0.5], val_acc=[0.45], acc=0.35)]
    none = [run(0, 0.001, train_acc=[0.6], val_acc=[0.4], acc=0.33)]
    sweep = findings.lambda_sweep([none, weak, strong])
    assert (sweep.best, sweep.strongest, sweep.accuracies) == (0.1, 0.1, {0.0: 0.33, 0.1: 0.35})
    assert findings.regularization_gap([none, weak, strong]).gaps == {0.1: pytest.approx(0.05)}
    assert findings.lambda_sweep([strong]) is None and findings.regularization_gap([strong]) is None


def test_regularization_gap():
    groups = [[run(0, 0.1, train_acc=[0.9], val_acc=[0.1])],  # another rate: left out
              [run(0, 0.001, train_acc=[0.45], val_acc=[0.35])],
              [run(0.1, 0.001, train_acc=[0.42], val_acc=[0.39])],
              [run(1, 0.001, train_acc=[0.38], val_acc=[0.37])]]
    g = findings.regularization_gap(groups)
    assert g.eta == 0.001 and g.gap_without == pytest.approx(0.10)
    assert list(g.gaps) == [0.1, 1.0] and g.gaps[0.1] == pytest.approx(0.03) and g.narrows
    groups[3] = [run(1, 0.001, train_acc=[0.6], val_acc=[0.3])]
    assert not findings.regularization_gap(groups).narrows
    assert findings.regularization_gap(groups[2:]) is None  # no lambda = 0 to compare with


def test_lambda_sweep_finds_the_best_and_whether_the_strongest_falls_back():
    groups = [[run(0, 0.001, acc=0.34)], [run(1, 0.001, acc=0.37), run(1, 0.001, acc=0.39)],
              [run(0.1, 0.001, acc=0.41)], [run(0, 0.1, acc=0.9)]]
    s = findings.lambda_sweep(groups)
    assert s.eta == 0.001 and list(s.accuracies) == [0.0, 0.1, 1.0]
    assert s.accuracies[1.0] == pytest.approx(0.38)
    assert (s.best, s.strongest, s.strongest_falls_back) == (0.1, 1.0, True)
    assert not findings.lambda_sweep(groups[:2]).strongest_falls_back
    assert findings.lambda_sweep(groups[3:]) is None


def test_gradient_check_verdict():
    def stats(rel_norm, max_rel, grad_there, abs_max=1e-9):
        return {"rel_err_norm": rel_norm, "max_rel_err": max_rel, "grad_at_max_rel_err": grad_there,
                "abs_diff_max": abs_max}

    good = findings.gradient_check({"W": stats(1e-9, 1e-3, 1e-8), "b": stats(2e-9, 1e-7, 0.1, abs_max=3e-9)})
    assert good.correct and good.rel_err == 2e-9 and good.abs_diff_max == 3e-9
    assert good.tiny_gradient_peaks == {"W": (1e-3, 1e-8)}  # only W's peak needs explaining
    assert not findings.gradient_check({"W": stats(1e-3, 0.5, 1.0), "b": stats(1e-9, 1e-7, 0.1)}).correct


def test_template_smoothness():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(10, 3072))
    smooth = np.tile(np.linspace(0, 1, 3072), (10, 1)) + 0.01 * noise  # a gentle ramp
    runs = [run(1, 0.001, W=smooth), run(0, 0.001, W=noise), run(0, 0.1, W=smooth)]
    t = findings.template_smoothness(runs)
    assert t.eta == 0.001 and list(t.roughness) == [0.0, 1.0] and t.smoother_with_lambda
    runs[0].W, runs[1].W = noise, smooth
    assert not findings.template_smoothness(runs).smoother_with_lambda


def test_per_class_accuracy_and_confusions():
    y = np.array([0, 0, 1, 1, 2, 2])
    runs = [SimpleNamespace(test_pred=np.array([0, 0, 2, 1, 2, 1])), SimpleNamespace(test_pred=np.array([0, 1, 2, 2,
                                                                                                          2, 2]))]
    acc = stats.per_class_accuracy(runs, y, 3)
    np.testing.assert_allclose(acc, [[1, 0.5, 0.5], [0.5, 0, 1]])
    # rows are true classes: the first run takes one 0 as 0 and one 2 as 1, ...
    np.testing.assert_array_equal(stats.confusion_matrix(y, runs[0].test_pred, 3), [[2, 0, 0], [0, 1, 1], [0, 1, 1]])
    C = np.array([[5, 1, 0], [4, 2, 0], [0, 1, 9]])
    c = findings.confusions(C, np.array([0.6, 0.2, 0.9]))
    assert (c.true_class, c.predicted_class, c.count) == (1, 0, 4)
    assert (c.best_class, c.worst_class) == (2, 1)
    assert findings.confusions(np.diag([5, 2, 9]), np.ones(3)) is None  # nothing confused: no most frequent confusion


def test_search_reach_compares_the_best_trials_lead_with_the_seeds_spread():
    finals = [SimpleNamespace(history={"val_acc": [0.30, v]}) for v in (0.410, 0.412, 0.414)]  # std 0.002
    # the best two trials 0.001 apart: less than a change of seed, so the search has settled
    r = findings.search_reach([0.400, 0.421, 0.420], finals)
    assert r.lead == pytest.approx(0.001) and r.seed_std == pytest.approx(0.002) and r.settled
    # 0.005 apart: more than the seeds' spread
    assert not findings.search_reach([0.421, 0.416], finals).settled
    # one trial or one seed: nothing to compare
    assert findings.search_reach([0.421], finals) is None
    assert findings.search_reach([0.421, 0.420], finals[:1]) is None


def test_names_injected_by_papermill_are_found_in_the_input_history():
    injected = "# Parameters\nn_epochs = 5\nseeds = [0]\n"
    namespace = {"In": ["", "data_dir: str = ''  # x", injected, "from x import y"]}
    assert section.injected_names(namespace) == ["n_epochs", "seeds"]
    assert section.injected_names({"In": ["n_epochs = 3"]}) == []  # a user's own cell is not papermill's
    assert section.injected_names({}) == []
