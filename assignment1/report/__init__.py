"""Building the report: section notebooks -> HTML, PDF and summary.json.

- :mod:`.runner`: ``python -m assignment1.report`` (what ``make report`` calls);
- :mod:`.params`: what each section declares and what each parameter accepts;
- :mod:`.section`: the first line of every section notebook, and its records;
- :mod:`.notebooks`: executing a section notebook with papermill;
- :mod:`.tables`: tables and sentences as markdown;
- :mod:`.assemble`, :mod:`.render`: one document from the executed sections.
- :mod:`.clean`: ``make clean``, which keeps the runs, the search's study and any report being written.
"""
