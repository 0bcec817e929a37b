"""The reference's numbers beside ours: the verdict rule by hand, and a reference value changed through the runner."""

import json
import subprocess
import sys

import pytest

from assignment1.report import params, reproduction
from assignment1.report.reproduction import DIFFERS, NO_SPREAD, ONE_SEED, REPRODUCED, verdict

from conftest import TINY


@pytest.mark.parametrize("mean, std, reference, in_std, expected", [
    # the stand-in's lam 0, eta 0.001: 0.025 above, 6.25 std; 2 * 0.004 + 0.005 = 0.013 < 0.025
    (0.345, 0.004, 0.32, 6.25, DIFFERS),
    # lam 0.1: 0.004 below, -2 std, within 2 * 0.002 + 0.005 = 0.009
    (0.406, 0.002, 0.41, -2.0, REPRODUCED),
    # the reference's rounding decides: 0.010 is 2.5 std but within 2 * 0.004 + 0.005 = 0.013 ...
    (0.330, 0.004, 0.32, 2.5, REPRODUCED),
    # ... and 0.014 (3.5 std) is not
    (0.334, 0.004, 0.32, 3.5, DIFFERS),
    # losses are judged alike: 1.984 against 2.02 is -0.036, -3.27 std of 0.011; 0.022 + 0.005 < 0.036
    (1.984, 0.011, 2.02, -0.036 / 0.011, DIFFERS),
])
def test_verdict_against_hand_computed_cases(mean, std, reference, in_std, expected):
    got_in_std, got = verdict(mean, std, reference)
    assert got == expected
    assert got_in_std == pytest.approx(in_std, abs=1e-9)


def test_without_a_spread_there_is_no_verdict():
    assert verdict(0.30, None, 0.27) == (None, ONE_SEED)  # one seed
    assert verdict(0.27, 0.0, 0.27) == (None, NO_SPREAD)  # several seeds, all alike


def _row(lam, eta, acc, std, **extra):
    stat = {"mean": acc, "std": std, "n": 5}
    return {"section": "s", "table": "Table 1", "setting": f"lam={lam}, eta={eta}", "lam": lam, "eta": eta,
            "test": {"loss": stat, "cost": stat, "acc": stat}, **extra}


def test_attach_marks_the_matching_rows_only_and_numbers_lists_each_reference_number():
    rows = [_row(0.0, 0.001, 0.345, 0.004, val_size=1000), _row(0.0, 0.001, 0.3, 0.01, val_size=5000),
            _row(1.0, 0.001, 0.377, 0.003, val_size=1000)]
    reference = [[0, 0.001, 2.02, 2.02, 0.32], [0.1, 0.001, 1.74, 1.80, 0.41]]
    marked = reproduction.attach(rows, reference, ["lam", "eta"], ["loss", "cost", "acc"], val_size=1000)
    # the first row matches (lam, eta and val_size); the second has another val_size, the third another lam
    assert marked[0]["reference"] == {"loss": 2.02, "cost": 2.02, "acc": 0.32}
    assert marked[0]["verdict"]["acc"] == DIFFERS
    assert marked[0]["difference_in_std"]["acc"] == pytest.approx(6.25)
    assert marked[1:] == rows[1:]
    # one number per metric, in the tables' order, and the count says how many are reproduced
    numbers = reproduction.numbers(marked)
    assert [n["metric"] for n in numbers] == ["loss", "cost", "acc"]
    assert [n["verdict"] for n in numbers] == [DIFFERS, DIFFERS, DIFFERS]  # 0.345 against 2.02 and 0.32
    assert reproduction.count_text(numbers).startswith("0 of 3 reference numbers reproduced; 3 differ.")


def test_a_number_the_row_carries_is_judged_with_the_references_own_decimals():
    # the decayed run's final validation accuracy: 0.4105 ± 0.0004 against the reference's 0.412 (three decimals)
    row = {"section": "04", "table": "Table 4", "setting": "decay", "lam": 0.1, "eta": 0.01,
           "val_acc": {"mean": 0.4105, "std": 0.0004, "n": 5}}
    marked, = reproduction.attach([row], [[0.1, 0.01, 0.412]], ["lam", "eta"], ["val_acc"], decimals=3)
    # 0.0015 away: beyond 2 std + 0.0005 (it would be within 2 std + 0.005, two decimals' rounding)
    assert marked["verdict"] == {"val_acc": DIFFERS}
    assert marked["difference_in_std"]["val_acc"] == pytest.approx(-3.75)
    number, = reproduction.numbers([marked])
    assert (number["metric"], number["mean"], number["decimals"]) == ("val_acc", 0.4105, 3)
    # shown with the reference's three decimals and ours with four, named as what it is
    assert ("| final validation accuracy | 0.4105\u00a0±\u00a00.0004 | 0.412 | -0.0015 |"
            in reproduction.comparison_table([number]))


def test_why_names_each_differing_setting_once_with_its_metrics():
    def number(table, setting, metric, verdict):
        return {"table": table, "setting": setting, "metric": metric, "verdict": verdict}

    numbers = [number("Table 1", "lam=0, eta=0.001", "loss", DIFFERS), number("Table 1", "lam=0, eta=0.001", "acc",
               DIFFERS), number("Table 1", "lam=1, eta=0.001", "acc", REPRODUCED),
               number("Table 2", "lam=1, eta=0.001", "cost", DIFFERS)]
    why = reproduction.why_text(numbers, official=False, init_std=0.1)
    # grouped by table, then setting, in the order shown; the reproduced number is not named
    assert why.startswith("**Why numbers differ.** Differing: Table 1: lam\\=0\\, eta\\=0\\.001 (loss, accuracy); "
                          "Table 2: lam\\=1\\, eta\\=0\\.001 (cost). The data is not the official CIFAR-10")
    # nothing differs, nothing to explain
    assert reproduction.why_text(numbers[2:3], official=False, init_std=0.1) == ""


def test_a_reference_value_given_to_the_runner_changes_the_verdict_and_the_count(tiny_report, tmp_path):
    out, env, _ = tiny_report
    first = json.loads((out / "summary.json").read_text())["reproduction"]
    # a number of Table 1 that differs: its reference becomes our mean, to the reference's two decimals
    row = next(n for n in first["rows"] if n["table"] == "Table 1" and n["verdict"] == DIFFERS)
    reference = params.declared("02_training")["reference_table1"]
    column = 2 + ["loss", "cost", "acc"].index(row["metric"])
    changed = [r[:column] + [round(row["mean"], 2)] + r[column + 1:]
               if row["setting"] == f"lam={r[0]:g}, eta={r[1]:g}" else r for r in reference]
    assert changed != reference
    r = subprocess.run([sys.executable, "-m", "assignment1.report", *TINY, "--sections", "02", "--no-pdf",
                        "--out", str(tmp_path / "changed"), "-y", f"reference_table1: {json.dumps(changed)}"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    # that number is now reproduced, and the count of section 2's numbers has one more
    again = json.loads((tmp_path / "changed" / "summary.json").read_text())["reproduction"]
    now = next(n for n in again["rows"] if (n["setting"], n["metric"]) == (row["setting"], row["metric"]))
    assert now["verdict"] == REPRODUCED and now["reference"] == round(row["mean"], 2)
    before = sum(n["verdict"] == REPRODUCED for n in first["rows"] if n["section"] == "02_training")
    assert again["reproduced"] == before + 1 and again["numbers"] == 12
    # the report's glance says so
    assert f"{before + 1} of 12 reference numbers reproduced" in (tmp_path / "changed" / "report.html").read_text()
