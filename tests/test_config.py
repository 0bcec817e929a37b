"""What each report parameter accepts, and the one line that refuses anything else."""

import pytest

from assignment1 import validate
from assignment1.config import RunConfig
from assignment1.report import params

REFUSED = [  # (name, value, the whole message: it names the parameter, or the item, what it accepts, what it got)
    ("search_lam", [0, -1], "search_lam[0] must be > 0, got 0.0"),  # the first bad item is named, in order
    ("search_lam", [1, 0.1], "search_lam must be a range with low <= high, got [1, 0.1]"),
    ("seeds", [1, 1], "seeds must not repeat a seed, got [1, 1]"),
    ("seeds", [0, -1], "seeds[1] must be at least 0, got -1"),
    ("settings", [[0.1, 0]], "settings[0] eta must be > 0, got 0.0"),
    ("settings", [[0.1]], "settings[0] must be a [lam, eta] pair, got [0.1]"),
    ("reference_table5", [["x", 0.1, 0.001, 0.3]], "reference_table5[0] loss must be one of 'ce', 'mbce', got 'x'"),
    ("reference_table1", [[0.1, 0.001, 2, 2, -0.3]], "reference_table1[0][4] must be >= 0, got -0.3"),
    ("reference_table1", [[0.1, 0.001, 2]],
     "reference_table1[0] must be [lam, eta, then 3 numbers], got [0.1, 0.001, 2]"),
    ("n_jobs", 0, "n_jobs must be -1 (one per core) or a positive count, got 0"),
    ("search_schedules", ["step", "x"], "search_schedules[1] must be one of 'constant', 'step', 'cosine', got 'x'"),
    ("search_batches", [], "search_batches must be a non-empty list, got []"),
    ("decay_milestones", [3, 2], "decay_milestones must be strictly increasing, got [3, 2]"),
    ("shift", -1, "shift must be an integer from 0 to 8, got -1"),
    ("data_dir", 3, "data_dir must be a string, got 3"),
    ("seeds", "[0, 0]", "seeds must be a non-empty list of integers, got '[0, 0]'; -p passes text: give a list as "
                        "YAML, -y 'seeds: [0, 0]'"),
]


@pytest.mark.parametrize("name, value, message", REFUSED)
def test_a_bad_value_is_refused_in_one_line_naming_it(name, value, message):
    with pytest.raises(validate.ParameterError) as e:
        params.check(name, value)
    assert str(e.value) == message


def test_an_unknown_name_is_refused_with_the_nearest_known_one():
    with pytest.raises(validate.UnknownParameter) as e:
        params.check("decay_eta", 0.1)
    assert str(e.value).startswith("unknown parameter decay_eta (did you mean decay_eta0?): no report parameter "
                                   "has that name; known: average, big_val_size, ")


def test_a_name_that_plays_a_setting_is_checked_and_typed_as_that_setting():
    # accepted values come back in the setting's own type, so 1 and 1.0 give the same run
    for name, setting in [("decay_eta0", "eta"), ("big_val_size", "val_size"), ("decay_milestones", "milestones")]:
        value = params.check(name, getattr(RunConfig(), setting))
        assert value == getattr(RunConfig(), setting) and type(value) is type(getattr(RunConfig(), setting))
    assert params.check("decay_eta0", 1) == 1.0 and type(params.check("decay_eta0", 1)) is float
    assert params.check("search_eta", [1, 2]) == [1.0, 2.0]
