"""The hyperparameter search chooses on validation data only."""

import numpy as np
import pytest

from assignment1.experiments import search
from assignment1.experiments.runs import Experiments

from cifar_format import make_batches, write_archive


def space():
    return search.Space(n_batch=(10, 20))


def test_sampling_is_seeded_and_inside_the_space():
    a = search.sample(6, 3, space(), n_epochs=10, val_size=50)
    assert a == search.sample(6, 3, space(), n_epochs=10, val_size=50)
    assert a != search.sample(6, 4, space(), n_epochs=10, val_size=50)
    for c in a:
        assert 1e-3 <= c.lam <= 0.3 and 3e-4 <= c.eta <= 3e-2 and c.n_batch in (10, 20)
        assert c.milestones in ((), (5, 8))  # x0.1 after half and four fifths of the 10 epochs, or never
    # both sides of each choice were drawn, so the checks above saw decaying candidates too
    assert {c.milestones for c in a} == {(), (5, 8)} and {c.flip for c in a} == {True, False}


def run_search(tmp_path, name, poison):
    files = make_batches(n_per_batch=60)
    if poison:  # the same data, but every test label changed
        import pickle

        test = pickle.loads(files["test_batch"], encoding="bytes")
        test[b"labels"] = [(v + 1) % 10 for v in test[b"labels"]]
        files["test_batch"] = pickle.dumps(test, protocol=2)
    archive = tmp_path / f"{name}.tar.gz"
    md5 = write_archive(archive, files)
    ex = Experiments(data_dir=tmp_path / f"data-{name}", url=str(archive), md5=md5,
                     reports_dir=tmp_path / f"reports-{name}", progress=False)
    found = ex.run(search.sample(5, 0, space(), n_epochs=3, val_size=50), test=False)
    return search.table(found), found[search.select(found)].config, ex


def test_poisoned_test_labels_do_not_change_the_selection(tmp_path):
    clean_table, clean_choice, ex_clean = run_search(tmp_path, "clean", poison=False)
    bad_table, bad_choice, ex_bad = run_search(tmp_path, "poisoned", poison=True)
    assert ex_clean.provenance["files"]["test_batch"] != ex_bad.provenance["files"]["test_batch"]
    assert clean_table == bad_table and clean_choice == bad_choice
    # the table holds validation results only
    assert all(set(r) >= {"val_acc", "val_loss"} and "test" not in r for r in clean_table)
    # the test set, used once for the choice, does see the poison
    clean = ex_clean.run([clean_choice])[0]
    bad = ex_bad.run([bad_choice])[0]
    assert np.array_equal(clean.W, bad.W) and clean.test["acc"] != bad.test["acc"]


def test_select_ranks_by_validation_and_skips_diverged():
    from types import SimpleNamespace

    def r(acc, loss, diverged=False):
        return SimpleNamespace(diverged=diverged, history={"val_acc": [acc], "val_loss": [loss]})

    assert search.select([r(0.3, 1.0), r(0.5, 2.0), r(0.5, 1.5), r(0.9, 0.1, diverged=True)]) == 2


def test_a_bad_space_is_refused_by_the_report_parameters():
    from assignment1.report import params

    with pytest.raises(ValueError, match="search_eta must be a range with low <= high"):
        params.check("search_eta", [0.1, 0.01])
    with pytest.raises(ValueError, match="search_batches must be a non-empty list"):
        params.check("search_batches", [])
    with pytest.raises(ValueError, match=r"search_batches\[1\] must be at least 1"):
        params.check("search_batches", [10, 0])
