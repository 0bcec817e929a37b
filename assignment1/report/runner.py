"""The report runner: ``python -m assignment1.report`` (what ``make report`` calls).

It checks every parameter override against the parameters the section
notebooks declare and against what each accepts, prepares the data, runs the
sections with papermill, two at a time, and assembles ``report.html``, ``report.pdf``
and ``summary.json``. Each kind of run writes to its own place, so a quick or
partial run never replaces the full report: the full report (every section,
default parameters) goes to ``reports/``; a run that is partial (some
sections), quick, or custom (other parameters) goes to ``reports/<kinds>/``,
the kinds it is joined by ``-`` (``reports/partial-quick/``); ``--out``
chooses another place. One report at a time writes to a place. A failing
section names its cell, keeps its executed notebook and leaves the previous
report in place.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import yaml
from papermill.iorw import NoDatesSafeLoader
from tqdm import tqdm

from .. import data, fetch, files, validate
from ..experiments import paths
from ..experiments.cli import typed
from ..experiments.progress import PROGRESS_ENV, RunBars, announce
from . import assemble, params, plan
from .clean import KINDS, LOCK
from .notebooks import failure, run_section, stop_kernels, warnings_in
from .render import PAPERS
from .section import records
from .tables import text

#: Parameters that say where things are or how fast they run, not what the results are.
NEUTRAL = frozenset({"data_dir", "data_url", "data_md5", "reports_dir", "n_jobs"})
#: The order sections start in; the report shows them in their own. The search trains its rounds one after
#: another on one core: started first, it overlaps the other sections instead of ending alone with a core idle.
#: Section 4 trains the most runs, and with them the announced runs of sections 2 and 5 that read the same
#: batches (:mod:`.plan`); started next, it keeps the other core busy (docs/speed.md). Sections not named here
#: start after these. A quick run starts them in their own order: its search is short, and started first it
#: made the quick report slower (docs/speed.md).
START_ORDER = ("06_search", "04_bonus_improvements", "05_bonus_mbce", "01_gradient_check", "02_training", "03_weights")


def selected(prefixes: list[str] | None = None) -> list[str]:
    """The sections to run, in order: all, or those whose name starts with one of ``prefixes``.

    Raises :class:`~assignment1.validate.ParameterError` for a prefix that selects no section.
    """
    names = params.sections()
    if prefixes is None:
        return names
    for prefix in prefixes:
        if not prefix.strip() or not any(n.startswith(prefix) for n in names):
            raise validate.ParameterError("sections", f"name sections, like {' '.join(n[:2] for n in names)}",
                                          prefix)
    return [n for n in names if any(n.startswith(s) for s in prefixes)]


def effective(defaults: dict, overrides: dict) -> dict:
    """A section's parameter values: its defaults, with the overrides it declares."""
    return {**defaults, **{k: v for k, v in overrides.items() if k in defaults}}


def check_overrides(overrides: dict, declared: dict[str, dict]) -> dict[str, dict]:
    """Refuse names no section declares and values outside what a name accepts.

    Returns what each section will run with: its checked parameters, quick mode applied.
    """
    known = set().union(*declared.values())
    unknown = set(overrides) - known
    if unknown:
        raise validate.UnknownParameter(unknown, "no section declares such a name", known)
    return {name: vars(params.resolve(effective(defaults, overrides))) for name, defaults in declared.items()}


def changed(overrides: dict, declared: dict[str, dict]) -> dict:
    """The overrides that change results: a value other than a section's default, where it is not neutral."""
    return {k: v for k, v in overrides.items()
            if k not in NEUTRAL and k != "quick" and any(k in d and d[k] != v for d in declared.values())}


def kinds_of(names: list[str], overrides: dict, declared: dict[str, dict]) -> list[str]:
    """What makes a run not the full report: ``partial`` (some sections), ``quick``, ``custom`` (parameters that
    change results); none for the full report."""
    which = (names != params.sections(), bool(overrides.get("quick")), bool(changed(overrides, declared)))
    return [kind for kind, yes in zip(KINDS, which, strict=True) if yes]


def banner(kinds: list[str], names: list[str], overrides: dict, declared: dict[str, dict],
           used: dict[str, dict]) -> str:
    """The report's first line, as Markdown: what kind of run made it, with everything that makes it not the full
    report (the values given shown as text)."""
    if not kinds:
        return "**Full report:** every section, with the default parameters."
    said = []
    if "partial" in kinds:
        said.append(f"sections {', '.join(n[:2] for n in names)} only")
    training = [u for u in used.values() if "n_epochs" in u]
    if "quick" in kinds and training:
        said.append(f"{len(training[0]['seeds'])} seed and at most {training[0]['n_epochs']} epochs per run, so "
                    "the numbers are far from those of the full report")
    if "custom" in kinds:
        said.append("overrides " + ", ".join(f"{text(k)} = {text(json.dumps(v, ensure_ascii=False))}"
                                             for k, v in sorted(changed(overrides, declared).items())))
    title = " ".join(kinds).capitalize()
    return f"**{title} run, not the full report:** {'; '.join(said) or 'quick mode'}."


def report_dir(kinds: list[str], reports_dir: Path, out: str | None = None) -> Path:
    """Where a run of these kinds writes: ``out`` if given, else its own directory under ``reports_dir``."""
    return Path(out).expanduser().resolve() if out else reports_dir / "-".join(kinds)


def section_line(name: str, seconds: float, compute: dict | None, store_dir: Path) -> str:
    """What a section did, for the terminal: its runs, how many were trained now and how many reused."""
    if compute is None:
        return f"{name}: {seconds:.0f} s"
    store = store_dir.relative_to(paths.ROOT) if store_dir.is_relative_to(paths.ROOT) else store_dir
    trials = f"; {compute['trials']} search trials trained now" if compute.get("trials") else ""
    along = f"; {compute['along']} runs of other sections trained with them" if compute.get("along") else ""
    return (f"{name}: {seconds:.0f} s; {compute['runs']} runs ({compute['trained']} trained now, "
            f"{compute['reused']} reused from {store}){trials}{along}")


def run(overrides: dict, *, sections: list[str] | None = None, show_code: bool = False, pdf: bool = True,
        out: str | None = None, paper: str = "a4", log=print) -> int:
    """Run the report; return the exit status (0 ok, 1 a section or the data failed, 2 bad parameters or places)."""
    # Names are checked against every section, so one set of overrides serves any subset.
    declared = {name: params.declared(name) for name in params.sections()}
    try:
        names = selected(sections)
        used = {name: values for name, values in check_overrides(overrides, declared).items() if name in names}
        kinds = kinds_of(names, overrides, declared)
        reports = paths.usable_dir(paths.reports_dir(overrides.get("reports_dir")), "the reports directory",
                                   "name another with A1_REPORTS_DIR or -p reports_dir")
        out_dir = paths.usable_dir(report_dir(kinds, reports, out), "the report's directory",
                                   "name another with --out (make report OUT=...)")
    except (validate.ParameterError, paths.PlaceError) as e:
        log(f"error: {e}")
        return 2
    try:
        url, md5 = paths.data_source(overrides.get("data_url"), overrides.get("data_md5"))
        provenance = fetch.prepare(paths.data_dir(overrides.get("data_dir")), url, md5)
        n_images = data.n_training_images(provenance["batch_dir"])
        for name in names:  # sizes the data at hand cannot serve are refused before anything runs, too
            params.check_data_size(SimpleNamespace(**used[name]), n_images)
    except fetch.DataError as e:
        log(f"error: {e}")
        return 1
    except validate.ParameterError as e:
        log(f"error: {e}")
        return 2

    lock = out_dir / LOCK
    try:
        claimed = files.claim(lock)
    except OSError as e:
        log(f"error: {cannot_write(out_dir, e)}")
        return 1
    if not claimed:
        log(f"error: another report (process {files.holder(lock)}) is writing to {out_dir}: wait for it to end, "
            "or write elsewhere with --out")
        return 1
    try:
        files.remove_orphans(out_dir)  # what a killed report left half written
        found: dict[str, tuple[dict, dict | None]] = {}
        runs = plan.planned({name: SimpleNamespace(**used[name]) for name in names})
        status = _execute(names, {**overrides, "reports_dir": str(reports)}, declared, runs, out_dir, reports, found,
                          log)
        if status:
            return status
        executed = [out_dir / "executed" / f"{n}.ipynb" for n in names]
        tables = {name: found[name][0] for name in names}
        # in the sections' order, not the order they ended in; sections without runs are left out
        compute = {name: found[name][1] for name in names if found[name][1] is not None}
        closing = assemble.provenance_markdown(provenance, used, compute, assemble.software())
        summary = assemble.summary(provenance, used, tables)
        try:
            written = assemble.write_report(executed, out_dir, closing, summary,
                                            banner=banner(kinds, names, overrides, declared, used),
                                            show_code=show_code, pdf=pdf, paper=paper,
                                            opening_markdown=assemble.opening_markdown(provenance, used, tables))
        except OSError as e:
            log(f"error: {cannot_write(out_dir, e)}")
            return 1
    finally:
        files.release(lock)
    for note in written.pop("notes", []):
        log(note)
    for path in written.values():
        log(f"wrote {path}")
    return 0


def cannot_write(out_dir: Path, e: OSError) -> str:
    """One line for a report that could not be written into ``out_dir``: why, and what to do."""
    place = Path(e.filename).parent if e.filename else out_dir  # a write names no file, an open does
    if files.disk_full(e):
        why = f"the disk holding {place} is full ({e.strerror}): free some space there"
    else:
        why = f"cannot write in {place} ({e.strerror or e}): make it writable"
    return f"{why}, or write the report elsewhere with --out; the previous report in {out_dir} is left as it was"


def _execute(names: list[str], overrides: dict, declared: dict, runs: list, out_dir: Path, reports: Path,
             found: dict, log) -> int:
    """Run the sections into ``out_dir/executed``, two at a time (one with ``n_jobs`` 1), each started in
    :data:`START_ORDER` (a quick run: in order) as another ends, putting each one's :func:`records` in
    ``found``; return 0, or the exit status of a failure. The sections' ``runs`` are announced to them first
    (:mod:`.plan`).

    Two at once keep the cores busy while a section starts its kernel, draws its figures or waits
    for its last run. Sections share the run store, where a run that one of them trains is waited
    for by the others, not trained twice; which one trains it changes nothing that is computed.
    """
    progress_dir = out_dir / ".progress"
    (out_dir / "executed").mkdir(parents=True, exist_ok=True)
    executed = {name: out_dir / "executed" / f"{name}.ipynb" for name in names}
    waiting = list(names) if overrides.get("quick") else \
        sorted(names, key=lambda n: START_ORDER.index(n) if n in START_ORDER else len(START_ORDER))
    running, t0 = {}, time.perf_counter()

    def timed(name: str, sockets: str) -> float:
        start = time.perf_counter()
        run_section(name, executed[name], {k: v for k, v in overrides.items() if k in declared[name]}, Path(sockets))
        return time.perf_counter() - start

    at_once = 1 if overrides.get("n_jobs") == 1 else 2
    pool = ThreadPoolExecutor(at_once, thread_name_prefix="section")
    try:
        # the kernels inherit the environment: there they find where to write their progress
        with (mock.patch.dict(os.environ, {PROGRESS_ENV: str(progress_dir)}),
              tempfile.TemporaryDirectory(prefix="a1-kernel-", ignore_cleanup_errors=True) as sockets,
              RunBars(progress_dir) as bars,
              tqdm(total=len(names), desc="report sections", unit="section", position=0,
                   disable=not bars.live) as bar):
            announce(progress_dir, runs)  # into the directory RunBars has just emptied
            while waiting or running:
                while waiting and len(running) < at_once:
                    name = waiting.pop(0)
                    running[pool.submit(timed, name, sockets)] = name
                bar.set_postfix_str(" ".join(running.values()))
                for future in wait(running, return_when=FIRST_COMPLETED).done:
                    name = running.pop(future)
                    try:
                        seconds = future.result()
                    except Exception as e:  # papermill's error or a dead kernel: report it, keep the notebook
                        quiet()
                        stop_kernels()
                        bar.close()
                        log(f"error: {failure(name, e, executed[name])}")
                        return 1
                    found[name] = records(executed[name])
                    bar.update()
                    bar.write(section_line(name, seconds, found[name][1], paths.runs_dir(reports)), file=sys.stdout)
                    for line in warnings_in(executed[name]):
                        log(f"warning in {name}: {line}")
    except KeyboardInterrupt:
        quiet()
        stop_kernels()  # the cells under way end with their kernels, the kernels' workers with them
        log("interrupted: finished runs are stored; rerun to resume from them")
        return 130
    finally:
        pool.shutdown(cancel_futures=True)
    log(f"all sections: {time.perf_counter() - t0:.0f} s")
    return 0


def quiet() -> None:
    """Silence what papermill and asyncio would print of the sections about to be stopped."""
    for name in ("papermill", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict]:
    """The options, and the parameter overrides merged as papermill merges its own: ``-f`` files, then ``-y``,
    then ``-p`` (typed), then ``-r`` (text)."""
    parser = argparse.ArgumentParser(prog="python -m assignment1.report", description=__doc__.splitlines()[0])
    parser.add_argument("-p", "--parameters", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a parameter (typed as papermill does: int, float, True/False, else text)")
    parser.add_argument("-r", "--parameters-raw", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a parameter with a string value, untyped")
    parser.add_argument("-y", "--parameters-yaml", action="append", default=[], metavar="YAML",
                        help="overrides as a YAML mapping, e.g. -y 'seeds: [0, 1]'")
    parser.add_argument("-f", "--parameters-file", action="append", default=[], metavar="FILE",
                        help="overrides from a YAML file")
    parser.add_argument("--quick", action="store_true", help="quick mode: one seed, few epochs (into reports/quick/)")
    parser.add_argument("--sections", nargs="+", metavar="PREFIX",
                        help="run only these sections, e.g. 01 02 (into reports/partial/)")
    parser.add_argument("--out", metavar="DIR", help="write the report here instead of the kind of run's own place")
    parser.add_argument("--show-code", action="store_true", help="keep the code cells in the report")
    parser.add_argument("--no-pdf", action="store_true", help="write the HTML only")
    parser.add_argument("--paper", choices=PAPERS, default="a4", help="the PDF's paper size")
    args = parser.parse_args(argv)
    overrides: dict = {}
    try:
        for where, text in [*((f, _read(f)) for f in args.parameters_file), *(("-y", y) for y in args.parameters_yaml)]:
            overrides.update(_yaml_mapping(text, where))
    except ValueError as e:
        parser.exit(2, f"error: {e}\n")
    overrides |= {name: typed(value) for name, value in args.parameters} | dict(args.parameters_raw)
    return args, overrides | ({"quick": True} if args.quick else {})


def _yaml_mapping(text: str, where: str) -> dict:
    """Overrides given as YAML (``where`` names them): read as papermill's ``-y`` and ``-f`` read them, dates as text.

    Raises ValueError with one line if ``text`` is not a YAML mapping.
    """
    try:
        value = yaml.load(text, Loader=NoDatesSafeLoader)
    except yaml.YAMLError as e:
        raise ValueError(f"{where} is not valid YAML: {e}".replace("\n", " ")) from None
    if not isinstance(value, dict | None):
        raise ValueError(f"{where} must be a YAML mapping of parameter names to values")
    return value or {}


def _read(source: str) -> str:
    try:
        return Path(source).read_text()
    except OSError as e:
        raise ValueError(f"cannot read parameters file {source}: {e.strerror}") from None


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # a polite kill (timeout, kill) ends the report as Ctrl-C does: kernels stopped


def main(argv: list[str] | None = None) -> int:
    args, overrides = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)

    def log(message: str) -> None:
        print(message, file=sys.stderr if message.startswith(("error", "interrupted")) else sys.stdout)

    return run(overrides, sections=args.sections, show_code=args.show_code, pdf=not args.no_pdf, out=args.out,
               paper=args.paper, log=log)


if __name__ == "__main__":
    sys.exit(main())
