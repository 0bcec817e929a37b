"""Running many experiments on the assignment's model.

- :mod:`.paths`: where data, runs and reports live (the environment overrides);
- :mod:`.runs`, :mod:`.store`: training runs, stored and found again by a key
  of what computed them, many at once in parallel;
- :mod:`.progress`: the progress of runs in worker processes, for a terminal;
- :mod:`.search`: the hyperparameter search, chosen on validation data;
- :mod:`.stats`, :mod:`.findings`: statistics over seeds and significance
  tests, and the facts the report's sentences state;
- :mod:`.explore`: the live explorer of ``notebooks/00_explore.ipynb``;
- :mod:`.cli`: ``python -m assignment1 fetch|train``.
"""
