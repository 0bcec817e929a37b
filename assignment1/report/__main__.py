import sys

# papermill imports jsonschema, which imports rfc3987_syntax where it is installed (JupyterLab's extra brings it) and
# builds some 35 Lark parsers: 2.6 to 3.7 s at every start of the runner on 2 cores, for the "iri" formats that no
# notebook schema uses. Marked absent here, in the runner's own process only, they go unchecked.
sys.modules.setdefault("rfc3987_syntax", None)

from .runner import main  # noqa: E402

sys.exit(main())
