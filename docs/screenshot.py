"""Make docs/explore.png: the explorer in JupyterLab, after two runs (lambda 0.1, then lambda 0).

    python docs/screenshot.py [docs/explore.png]

Needs the data (make data), JupyterLab (make lab installs it), the `browser` extra and
Debian's chromium, as tests/test_lab.py does; it drives JupyterLab the same way.
"""

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("lab_helper", ROOT / "tests" / "jupyterlab.py")
lab = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lab)


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="a1-screenshot-") as tmp, \
            lab.lab_server(ROOT / "notebooks" / "00_explore.ipynb", Path(tmp), dict(os.environ)) as url, \
            lab.browser_page(width=1280, height=1700) as page:
        page.goto(url)
        lab.run_all_cells(page, timeout=600)
        page.locator(".widget-checkbox", has_text="L2 term").locator("input").uncheck()
        page.locator(".widget-button", has_text="Train").click()
        page.wait_for_function("document.querySelector('table.a1-runs').rows.length === 3", timeout=600_000)
        output = page.locator(".jp-OutputArea-output").filter(has=page.locator(".widget-button")).first
        output.scroll_into_view_if_needed()
        output.screenshot(path=str(out))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "explore.png")
