"""The report runner: ``python -m assignment1.report`` (what ``make report`` calls).

It checks every parameter override against the parameters the section
notebooks declare (``papermill.inspect_notebook``) and against what each
accepts, prepares the data, runs the sections in order with papermill into
``reports/executed/``, and assembles ``reports/report.{html,pdf,ipynb}`` and
``reports/summary.json``. A failing section names its cell, keeps its executed
notebook for debugging and leaves the previous report in place.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import papermill
import yaml
from jupyter_client.manager import AsyncKernelManager
from tqdm import tqdm
from traitlets import CaselessStrEnum, Unicode, default
from traitlets.config import Config

from .. import config, data, fetch, validate
from . import assemble, params
from .experiments import PROGRESS_ENV


def selected(prefixes: list[str] | None = None) -> list[str]:
    """The sections to run, in order: all, or those whose name starts with one of ``prefixes``."""
    names = params.sections()
    return [n for n in names if any(n.startswith(s) for s in prefixes)] if prefixes else names


def resolve_value(text: str):
    """Type a ``-p`` value as papermill does: True/False/None, int, float, else the string."""
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def effective(defaults: dict, overrides: dict) -> dict:
    """A section's parameter values: its defaults, with the overrides it declares."""
    return {**defaults, **{k: v for k, v in overrides.items() if k in defaults}}


def check_overrides(overrides: dict, declared: dict[str, dict]) -> None:
    """Refuse names no section declares and values outside what a name accepts."""
    known = set().union(*declared.values())
    unknown = set(overrides) - known
    if unknown:
        raise validate.UnknownParameter(unknown, "no section declares such a name", known)
    for defaults in declared.values():  # the combination each section will see
        params.resolve(effective(defaults, overrides))


def warnings_in(executed: Path) -> list[str]:
    """Warning lines a section printed (on stderr) while it ran, e.g. a damaged cache entry recomputed."""
    nb = json.loads(executed.read_text())
    lines = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = "".join(out.get("text", ""))
                lines += [ln.strip() for ln in text.splitlines() if "Warning:" in ln]
    return lines


class RunBars:
    """Terminal progress bars, one per training run, fed by the files runs write to ``directory``."""

    def __init__(self, directory: Path, interval: float = 0.5):
        self.directory, self.interval = directory, interval
        self.bars: dict[str, tqdm] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _poll(self) -> None:
        seen = set()
        for path in self.directory.glob("*.txt"):
            try:
                done, total, label = path.read_text().split(" ", 2)
            except (OSError, ValueError):
                continue
            seen.add(path.stem)
            bar = self.bars.get(path.stem)
            if bar is None:
                bar = self.bars[path.stem] = tqdm(total=int(total), desc=f"  run {label}", unit="epoch",
                                                  leave=False, position=1 + len(self.bars))
            bar.update(int(done) - bar.n)
        for key in set(self.bars) - seen:
            self.bars.pop(key).close()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll()

    def __enter__(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob("*"):
            stale.unlink(missing_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        for bar in self.bars.values():
            bar.close()


class LocalKernelManager(AsyncKernelManager):
    """Section kernels that talk over Unix sockets in a private directory, not TCP.

    No port is opened to the machine (ipykernel 7 warns about unencrypted TCP on
    every start), and the sockets stay out of the notebooks' working directory.
    """

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)
    socket_dir = Unicode("", config=True, help="directory for the kernel's sockets (the temporary directory if empty)")

    @default("ip")
    def _ip_default(self):
        return os.path.join(self.socket_dir or tempfile.gettempdir(), "kernel")


def _failure(section: str, e: Exception, out: Path) -> str:
    if isinstance(e, papermill.PapermillExecutionError):
        first = next((ln.strip() for ln in e.source.splitlines() if ln.strip()), "")
        where = f"cell {e.cell_index} of the executed notebook (In [{e.exec_count}]: {first[:60]})"
        why = f"{e.ename}: {e.evalue}".strip()
    else:
        where, why = "before or between cells", f"{type(e).__name__}: {e}"
    return (f"section {section} failed in {where}: {why}\n"
            f"  the executed notebook is kept at {out}; the previous report is left in place")


def run(overrides: dict, *, sections: list[str] | None = None, show_code: bool = False, pdf: bool = True,
        log=print) -> int:
    """Run the report; return the exit status (0 ok, 1 a section or the data failed, 2 bad parameters)."""
    names = selected(sections)
    if not names:
        log(f"error: no section notebooks match {sections} in {config.NOTEBOOKS_DIR}")
        return 2
    # Names are checked against every section, so one set of overrides serves any subset.
    declared = {name: params.declared(name) for name in params.sections()}
    try:
        check_overrides(overrides, declared)
    except validate.ParameterError as e:
        log(f"error: {e}")
        return 2
    try:
        provenance = fetch.prepare(url=overrides.get("data_url") or None, md5=overrides.get("data_md5") or None,
                                   data_dir=overrides.get("data_dir") or None)
        _, per_batch = data.load_meta(Path(provenance["batch_dir"]) / fetch.META)
    except fetch.DataError as e:
        log(f"error: {e}")
        return 1
    try:  # sizes the data at hand cannot serve are refused before anything runs, too
        for name in names:
            params.check_data_size(params.resolve(effective(declared[name], overrides)),
                                   per_batch * len(fetch.TRAIN_BATCHES))
    except validate.ParameterError as e:
        log(f"error: {e}")
        return 2

    out_dir = config.reports_dir(overrides.get("reports_dir") or None)
    executed_dir, tables_dir = out_dir / "executed", out_dir / "tables"
    executed_dir.mkdir(parents=True, exist_ok=True)
    progress_dir = out_dir / ".progress"
    used = {name: effective(declared[name], overrides) for name in names}
    timings: dict[str, float] = {}
    environ = {PROGRESS_ENV: str(progress_dir)}
    saved = {k: os.environ.get(k) for k in environ}
    os.environ.update(environ)
    # Unix sockets where the platform has them; a short private path keeps under the socket-path limit.
    socket_dir = tempfile.mkdtemp(prefix="a1-kernel-") if os.name == "posix" else None
    kernel = ({"kernel_manager_class": LocalKernelManager,
               "config": Config({"LocalKernelManager": {"socket_dir": socket_dir}})} if socket_dir else {})
    try:
        with RunBars(progress_dir), tqdm(names, desc="report sections", unit="section", position=0) as bar:
            for name in bar:
                bar.set_postfix_str(name)
                out = executed_dir / f"{name}.ipynb"
                for stale in (tables_dir / name).glob("*.json"):
                    stale.unlink()
                t0 = time.perf_counter()
                try:
                    papermill.execute_notebook(
                        str(config.NOTEBOOKS_DIR / f"{name}.ipynb"), str(out),
                        parameters={k: v for k, v in overrides.items() if k in declared[name]},
                        cwd=str(config.NOTEBOOKS_DIR), progress_bar=False, **kernel)
                except Exception as e:  # papermill's error or a dead kernel: report it, keep the notebook
                    bar.close()
                    log(f"error: {_failure(name, e, out)}")
                    return 1
                timings[name] = time.perf_counter() - t0
                for line in warnings_in(out):
                    log(f"warning in {name}: {line}")
    except KeyboardInterrupt:
        log("interrupted: finished runs are stored; rerun to resume from them")
        return 130
    finally:
        if socket_dir:
            shutil.rmtree(socket_dir, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    sw = assemble.software()
    closing = assemble.provenance_markdown(provenance, used, timings, sw)
    summary = assemble.summary(provenance, used, tables_dir, names)
    written = assemble.write_report([executed_dir / f"{name}.ipynb" for name in names], out_dir, closing, summary,
                                    show_code=show_code, pdf=pdf)
    for key in ("html", "pdf", "summary"):
        if key in written:
            log(f"wrote {written[key]}")
    if "pdf_note" in written:
        log(written["pdf_note"])
    log("sections: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        + f"; total {sum(timings.values()):.0f} s")
    return 0


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict]:
    parser = argparse.ArgumentParser(prog="python -m assignment1.report", description=__doc__.splitlines()[0])
    parser.add_argument("-p", "--parameters", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a parameter (typed as papermill does: int, float, True/False, else text)")
    parser.add_argument("-r", "--parameters-raw", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a parameter with a string value, untyped")
    parser.add_argument("-y", "--parameters-yaml", action="append", default=[], metavar="YAML",
                        help="overrides as a YAML mapping, e.g. -y 'seeds: [0, 1]'")
    parser.add_argument("-f", "--parameters-file", action="append", default=[], metavar="FILE",
                        help="overrides from a YAML file")
    parser.add_argument("--quick", action="store_true", help="quick mode: one seed, few epochs")
    parser.add_argument("--sections", nargs="+", metavar="PREFIX", help="run only these sections (e.g. 01 02)")
    parser.add_argument("--show-code", action="store_true", help="keep the code cells in the report")
    parser.add_argument("--no-pdf", action="store_true", help="write the HTML only")
    args = parser.parse_args(argv)
    overrides: dict = {}
    try:
        for source in args.parameters_file:
            try:
                overrides.update(_yaml_mapping(Path(source).read_text(), source))
            except OSError as e:
                raise ValueError(f"cannot read parameters file {source}: {e.strerror}") from None
        for text in args.parameters_yaml:
            overrides.update(_yaml_mapping(text, "-y"))
    except ValueError as e:
        parser.exit(2, f"error: {e}\n")
    overrides.update({name: resolve_value(value) for name, value in args.parameters})
    overrides.update(dict(args.parameters_raw))
    if args.quick:
        overrides["quick"] = True
    return args, overrides


def _yaml_mapping(text: str, where: str) -> dict:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"{where} is not valid YAML: {e}".replace("\n", " ")) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a YAML mapping of parameter names to values")
    return value


def main(argv: list[str] | None = None) -> int:
    args, overrides = parse_args(argv)
    return run(overrides, sections=args.sections, show_code=args.show_code, pdf=not args.no_pdf,
               log=lambda m: print(m, file=sys.stderr if m.startswith(("error", "interrupted")) else sys.stdout))


if __name__ == "__main__":
    sys.exit(main())
