"""The report machinery: section notebooks -> HTML, PDF and summary.json.

- :mod:`.runner`: ``python -m assignment1.report`` (what ``make report`` calls);
- :mod:`.section`: the first line of every section notebook;
- :mod:`.params`: what each section declares and what each parameter accepts;
- :mod:`.runs`, :mod:`.store`, :mod:`.experiments`: training runs, stored and
  found again by a key of what computed them, run in parallel;
- :mod:`.search`: the hyperparameter search, chosen on validation data;
- :mod:`.stats`, :mod:`.findings`, :mod:`.tables`: statistics over seeds and
  significance tests, the facts the text states, and the tables;
- :mod:`.assemble`: one document from the executed sections.
"""
