import math
from types import SimpleNamespace

import numpy as np
import pytest

from assignment1 import plots
from assignment1.experiments import findings, stats
from assignment1.report import tables


def test_mean_std_by_hand():
    s = stats.mean_std([0.40, 0.42, 0.44])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.42)
    # sample std: sqrt(((-0.02)^2 + 0 + 0.02^2) / 2) = 0.02
    assert s["std"] == pytest.approx(0.02)
    assert stats.mean_std([0.5]) == {"mean": 0.5, "std": None, "n": 1}
    assert stats.mean_std([])["n"] == 0


def test_curves_and_tables_take_one_mean_and_std_over_the_runs():
    # three runs, one of which stopped after 4 of 6 epochs (diverged)
    rng = np.random.default_rng(0)
    values = rng.uniform(0.1, 2.0, size=(3, 6))
    values[2, 4:] = np.nan
    runs = [SimpleNamespace(history={"val_loss": list(v[~np.isnan(v)])}) for v in values]
    epochs, mean, std = plots.curve_stats(runs, "val_loss")
    # numpy's nan-aware mean and sample std (ddof 1) over the runs that reached each epoch
    assert list(epochs) == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(mean, np.nanmean(values, axis=0), rtol=1e-14)
    np.testing.assert_allclose(std, np.nanstd(values, axis=0, ddof=1), rtol=1e-14)
    # the tables' summary and the findings' final value are the same numbers
    last = stats.mean_std(values[:, 3])
    assert last["n"] == 3 and last["mean"] == mean[3] and last["std"] == std[3]
    assert findings.final(runs, "val_loss") == pytest.approx(np.mean([v[~np.isnan(v)][-1] for v in values]),
                                                             rel=1e-14)
    # one run: no spread in a table, a band of zero width in a figure
    assert plots.curve_stats(runs[:1], "val_loss")[2].tolist() == [0.0] * 6


def test_mcnemar_exact_is_the_two_sided_binomial_test():
    # every split of up to 60 discordant pairs, against the binomial sum written out
    for n in range(1, 61):
        for b in range(n + 1):
            a_right = np.array([True] * b + [False] * (n - b))
            exact = min(1.0, 2 * sum(math.comb(n, k) for k in range(min(b, n - b) + 1)) / 2**n)
            assert stats.mcnemar_exact(a_right, ~a_right)["p"] == pytest.approx(exact, rel=1e-12, abs=0)


def test_mcnemar_exact_on_a_known_table():
    # 10 both right, 1 only A right, 8 only B right, 3 both wrong: b = 1, c = 8
    a = np.array([1] * 10 + [1] + [0] * 8 + [0] * 3, bool)
    b = np.array([1] * 10 + [0] + [1] * 8 + [0] * 3, bool)
    r = stats.mcnemar_exact(a, b)
    assert (r["b"], r["c"]) == (1, 8)
    # two-sided exact p = 2 * P(X <= 1), X ~ Bin(9, 1/2) = 2 * (1 + 9) / 512
    assert r["p"] == pytest.approx(20 / 512, abs=1e-15)
    # symmetric, and no discordant pairs means no evidence at all
    assert stats.mcnemar_exact(b, a)["p"] == r["p"]
    assert stats.mcnemar_exact(a, a) == {"b": 0, "c": 0, "p": 1.0}
    # balanced discordance: p capped at 1
    assert stats.mcnemar_exact([1, 0], [0, 1])["p"] == 1.0


def test_paired_t_by_hand():
    # differences (1, 2, 2): mean 5/3, sample std 1/sqrt(3), t = (5/3) / (1/3) = 5, 2 degrees of freedom
    r = stats.paired_t([1, 2, 3], [2, 4, 5])
    assert r["mean_diff"] == pytest.approx(5 / 3)
    assert r["t"] == pytest.approx(5.0)
    # two-sided p for t = 5 with 2 dof: 1 - 5 / sqrt(27) (the t_2 distribution has a closed form)
    assert r["p"] == pytest.approx(1 - 5 / math.sqrt(27), rel=1e-12)
    assert stats.paired_t([0.4], [0.5])["p"] is None
    assert stats.paired_t([1, 2], [1, 2])["p"] == 1.0


def run(seed, acc, pred):
    return SimpleNamespace(config=SimpleNamespace(seed=seed), test={"acc": acc}, test_pred=np.array(pred))


def test_significance_row_pairs_by_seed_and_counts_significance():
    y = np.zeros(30, int)
    # B is right on 12 more examples than A for every seed: McNemar p = 2 / 4096 each
    a = [run(s, 0.5, [0] * 10 + [1] * 20) for s in (0, 1, 2)]
    b = [run(s, 0.9, [0] * 22 + [1] * 8) for s in (2, 0, 1)]  # another order: pairing is by seed
    row = stats.significance_row("s", "B vs A", "A", "B", a, b, y)
    assert [m["seed"] for m in row["mcnemar"]] == [2, 0, 1]
    assert all((m["b"], m["c"]) == (0, 12) and m["p"] == pytest.approx(2 / 4096) for m in row["mcnemar"])
    assert row["mcnemar_significant"] == 3
    assert row["diff"] == pytest.approx(0.4) and row["n_seeds"] == 3
    # the same gain for every seed: the t-test has (almost) no spread to doubt it
    assert row["paired_t"]["p"] < 1e-10 and row["significant"]
    text = tables.significance_text([row])
    assert text == "Judged by a paired t-test over seeds at the 5% level, significant: B vs A (+0.4000)."
    # beside a difference that is not significant, each verdict is a sentence of its own
    flat = {**row, "comparison": "C vs A", "acc_b": row["acc_a"], "diff": 0.0, "significant": False}
    assert tables.significance_text([flat, row]) == ("Judged by a paired t-test over seeds at the 5% level, "
                                                     "significant: B vs A (+0.4000). Not significant: C vs A (0.0000).")
    with pytest.raises(ValueError, match="no seed"):
        stats.significance_row("s", "B vs A", "A", "B", a, [run(9, 0.5, [0] * 30)], y)


def test_a_difference_never_shows_a_sign_before_zero():
    # three decimals, the sign always; a difference smaller than that keeps its first digit; none is plain zero
    differences = (0.0113, -0.0014, 0.0005001, -0.0003, 0.41 - 0.4099, 2e-5, -0.00049, 0.0)  # 0.41 - 0.4099 < 1e-4
    assert [tables.difference(d) for d in differences] == \
        ["+0.011", "-0.001", "+0.001", "-0.0003", "+0.0001", "+0.00002", "-0.0005", "0.000"]


def test_two_accuracies_and_their_difference_read_off_each_other():
    # section 6's case: rounded apart, 0.406 and 0.418 stood beside +0.011
    assert tables.compared(0.40621, 0.41766) == ("0.4062", "0.4177", "+0.0115")
    # the difference of the values shown, not the exact -0.00117
    assert tables.compared(0.37674, 0.37557) == ("0.3767", "0.3756", "-0.0011")
    # shown equal: the exact difference says which is higher
    assert tables.compared(0.40620, 0.40617) == ("0.4062", "0.4062", "-0.00003")
    # any two accuracies: what is shown adds up
    for a, b in np.random.default_rng(0).uniform(0.2, 0.5, size=(1000, 2)):
        a_text, b_text, d_text = tables.compared(a, b)
        assert a_text == b_text or float(d_text) == pytest.approx(float(b_text) - float(a_text), abs=1e-12)


def test_a_results_table_writes_values_as_a_reader_would():
    # floats as short as they are, counts with thousands separators, flags as yes and no
    test = {m: {"mean": 0.4, "std": 0.01, "n": 5} for m in stats.METRICS}
    rows = [{"lam": 0.1, "eta": 0.001, "flip": flip, "training_samples": 49000, "n_diverged": 0, "test": test}
            for flip in (False, True)]
    table = tables.results_table(rows, [("λ", "lam"), ("η", "eta"), ("flip", "flip"), ("samples", "training_samples")])
    assert [line.split(" | ")[:4] for line in table.splitlines()[2:]] == [["| 0.1", "0.001", "no", "49,000"],
                                                                          ["| 0.1", "0.001", "yes", "49,000"]]
