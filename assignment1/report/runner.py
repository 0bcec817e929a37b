"""The report runner: ``python -m assignment1.report`` (what ``make report`` calls).

It checks every parameter override against the parameters the section
notebooks declare and against what each accepts, prepares the data, runs the
sections in order with papermill, and assembles ``report.html``, ``report.pdf``
and ``summary.json``. Each kind of run writes to its own place, so a quick or
partial run never replaces the full report: the full report (every section,
default parameters) goes to ``reports/``, a quick run to ``reports/quick/``, a
run of some sections to ``reports/partial/``, a run with other parameters to
``reports/custom/``; ``--out`` chooses another place. A failing section names
its cell, keeps its executed notebook and leaves the previous report in place.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import yaml
from tqdm import tqdm

from .. import data, fetch, validate
from ..experiments import paths
from ..experiments.cli import typed
from ..experiments.progress import PROGRESS_ENV, RunBars
from . import assemble, params
from .notebooks import failure, kernel_options, run_section, warnings_in
from .render import PAPERS
from .section import records

#: Parameters that say where things are or how fast they run, not what the results are.
NEUTRAL = frozenset({"data_dir", "data_url", "data_md5", "reports_dir", "n_jobs"})
KIND_DIRS = {"full": "", "quick": "quick", "partial": "partial", "custom": "custom"}


def selected(prefixes: list[str] | None = None) -> list[str]:
    """The sections to run, in order: all, or those whose name starts with one of ``prefixes``."""
    names = params.sections()
    return [n for n in names if any(n.startswith(s) for s in prefixes)] if prefixes else names


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
            if k not in NEUTRAL and any(k in d and d[k] != v for d in declared.values())}


def kind_of(names: list[str], overrides: dict, declared: dict[str, dict]) -> str:
    """``partial`` (some sections), ``quick``, ``custom`` (parameters that change results) or ``full``."""
    if names != params.sections():
        return "partial"
    if overrides.get("quick"):
        return "quick"
    return "custom" if changed(overrides, declared) else "full"


def banner(kind: str, names: list[str], overrides: dict, declared: dict[str, dict], used: dict[str, dict]) -> str:
    """The report's first line: what kind of run made it."""
    changes = ", ".join(f"{k} = {json.dumps(v)}" for k, v in sorted(changed(overrides, declared).items())
                        if k != "quick")
    if kind == "full":
        return "**Full report:** every section, with the default parameters."
    if kind == "quick":
        some = next(u for u in used.values() if "n_epochs" in u)
        text = (f"**Quick run, not the full report:** {len(some['seeds'])} seed and at most {some['n_epochs']} "
                "epochs per run, so the numbers are far from those of the full report.")
    elif kind == "partial":
        text = f"**Partial run, not the full report:** sections {', '.join(n[:2] for n in names)} only."
    else:
        text = "**Custom run, not the full report:** parameters differ from the defaults."
    return text + (f" Overrides: {changes}." if changes else "")


def report_dir(kind: str, reports_dir: Path, out: str | None = None) -> Path:
    """Where a run of this kind writes: ``out`` if given, else its own directory under ``reports_dir``."""
    return Path(out).expanduser().resolve() if out else reports_dir / KIND_DIRS[kind]


def section_line(name: str, seconds: float, compute: dict | None, store_dir: Path) -> str:
    """What a section did, for the terminal: its runs, how many were trained now and how many reused."""
    if compute is None:
        return f"{name}: {seconds:.0f} s"
    store = store_dir.relative_to(paths.ROOT) if store_dir.is_relative_to(paths.ROOT) else store_dir
    return (f"{name}: {seconds:.0f} s; {compute['runs']} runs ({compute['trained']} trained now, "
            f"{compute['reused']} reused from {store})")


def run(overrides: dict, *, sections: list[str] | None = None, show_code: bool = False, pdf: bool = True,
        out: str | None = None, paper: str = "a4", log=print) -> int:
    """Run the report; return the exit status (0 ok, 1 a section or the data failed, 2 bad parameters)."""
    names = selected(sections)
    if not names:
        log(f"error: no section notebooks match {sections} in {paths.NOTEBOOKS_DIR}")
        return 2
    # Names are checked against every section, so one set of overrides serves any subset.
    declared = {name: params.declared(name) for name in params.sections()}
    try:
        used = {name: values for name, values in check_overrides(overrides, declared).items() if name in names}
    except validate.ParameterError as e:
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

    kind = kind_of(names, overrides, declared)
    reports = paths.reports_dir(overrides.get("reports_dir"))
    out_dir = report_dir(kind, reports, out)
    status = _execute(names, {**overrides, "reports_dir": str(reports)}, declared, out_dir, reports, log)
    if status:
        return status
    executed = [out_dir / "executed" / f"{n}.ipynb" for n in names]
    tables, compute = {}, {}
    for name, path in zip(names, executed):
        tables[name], section_compute = records(path)
        if section_compute is not None:  # sections without runs are left out
            compute[name] = section_compute
    closing = assemble.provenance_markdown(provenance, used, compute, assemble.software())
    summary = assemble.summary(provenance, used, tables)
    written = assemble.write_report(executed, out_dir, closing, summary,
                                    banner=banner(kind, names, overrides, declared, used), show_code=show_code,
                                    pdf=pdf, paper=paper)
    for note in written.pop("notes", []):
        log(note)
    for path in written.values():
        log(f"wrote {path}")
    return 0


def _execute(names: list[str], overrides: dict, declared: dict, out_dir: Path, reports: Path, log) -> int:
    """Run the sections in order into ``out_dir/executed``; return 0, or the exit status of a failure."""
    progress_dir = out_dir / ".progress"
    (out_dir / "executed").mkdir(parents=True, exist_ok=True)
    total = 0.0
    try:
        with kernel_options({PROGRESS_ENV: str(progress_dir)}) as kernel, RunBars(progress_dir) as bars, \
                tqdm(names, desc="report sections", unit="section", position=0, disable=not bars.live) as bar:
            for name in bar:
                bar.set_postfix_str(name)
                out = out_dir / "executed" / f"{name}.ipynb"
                t0 = time.perf_counter()
                try:
                    run_section(name, out, {k: v for k, v in overrides.items() if k in declared[name]}, kernel)
                except Exception as e:  # papermill's error or a dead kernel: report it, keep the notebook
                    bar.close()
                    log(f"error: {failure(name, e, out)}")
                    return 1
                seconds = time.perf_counter() - t0
                total += seconds
                bar.write(section_line(name, seconds, records(out)[1], paths.runs_dir(reports)), file=sys.stdout)
                for line in warnings_in(out):
                    log(f"warning in {name}: {line}")
    except KeyboardInterrupt:
        log("interrupted: finished runs are stored; rerun to resume from them")
        return 130
    log(f"all sections: {total:.0f} s")
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
        for source in args.parameters_file:
            try:
                overrides.update(_yaml_mapping(Path(source).read_text(), source))
            except OSError as e:
                raise ValueError(f"cannot read parameters file {source}: {e.strerror}") from None
        for text in args.parameters_yaml:
            overrides.update(_yaml_mapping(text, "-y"))
    except ValueError as e:
        parser.exit(2, f"error: {e}\n")
    overrides.update({name: typed(value) for name, value in args.parameters})
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

    def log(message: str) -> None:
        print(message, file=sys.stderr if message.startswith(("error", "interrupted")) else sys.stdout)

    return run(overrides, sections=args.sections, show_code=args.show_code, pdf=not args.no_pdf, out=args.out,
               paper=args.paper, log=log)


if __name__ == "__main__":
    sys.exit(main())
