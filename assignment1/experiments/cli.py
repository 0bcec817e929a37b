"""Command line: ``python -m assignment1 fetch|train ...``.

``train`` has an option for every setting of :class:`~assignment1.config.RunConfig`
(``--n-epochs`` for ``n_epochs``; ``--epochs`` and ``--batch`` are short for
``--n-epochs`` and ``--n-batch``), with its default and help, and a bad value is
refused by the same check, in the same words, as everywhere else. Every failure
ends with one line on stderr saying why, and a non-zero exit status: 2 for a bad
argument (refused before any work), 1 for anything else, a diverged run included.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from contextlib import suppress
from pathlib import Path

from tqdm import tqdm

from .. import data, fetch, model, train, validate
from ..config import SETTINGS, RunConfig
from . import paths
from .runs import train_run, with_test

SHORT = {"n_epochs": "--epochs", "n_batch": "--batch"}
DESCRIPTION = "Fetch CIFAR-10, or train one model on it and print its test loss, cost and accuracy."


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the whole usage text
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")

    def refuse_unknown(self, extra: list[str]) -> None:
        """Name the arguments this parser does not know, with the closest option for each misspelling."""
        known = [s for a in self._actions for s in a.option_strings]
        hints = [validate.with_guess(x.split("=")[0], known, typed=x) for x in extra]
        self.error(f"unrecognized arguments: {' '.join(hints)}")


class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default after its help, where it has one to show (not None, not an off switch's False)."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action, argparse._StoreTrueAction):
            return action.help
        return super()._get_help_string(action)


def typed(text: str):
    """A command-line value as papermill types ``-p`` values: True/False/None, int, float, else the text.

    Whether the value suits its setting is then :meth:`RunConfig.check`'s to say.
    """
    for kind in (int, float):
        with suppress(ValueError):
            return kind(text)
    return {"True": True, "False": False, "None": None}.get(text, text)


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="archive source: http(s)://, file:// or a local path (env CIFAR10_URL)")
    p.add_argument("--md5", help="expected md5 of the archive (env CIFAR10_MD5)")
    p.add_argument("--data-dir", help="data directory (env A1_DATA_DIR; default data/ under the project)")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser and its subcommand parsers by name."""
    parser = _Parser(prog="python -m assignment1", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands = {}

    p = commands["fetch"] = sub.add_parser("fetch", help="download, verify and extract CIFAR-10; print its provenance")
    _add_data_args(p)

    p = commands["train"] = sub.add_parser(
        "train", help="train one model and print its test loss, cost and accuracy",
        formatter_class=_DefaultsShown)
    for name, f in SETTINGS.items():
        flags = ["--" + name.replace("_", "-")] + ([SHORT[name]] if name in SHORT else [])
        if isinstance(f.default, bool):
            p.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=f.default,
                           help=f.metadata["help"])
        elif isinstance(f.default, tuple):
            p.add_argument(*flags, dest=name, nargs="*", type=typed, default=f.default, help=f.metadata["help"])
        else:
            p.add_argument(*flags, dest=name, type=typed, default=f.default, help=f.metadata["help"])
    p.add_argument("--json", type=Path, help="write results and per-epoch history to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_args(p)
    return parser, commands


def _fetch(a: argparse.Namespace) -> int:
    url, md5 = paths.data_source(a.url, a.md5)
    provenance = fetch.prepare(paths.data_dir(a.data_dir), url, md5)
    print(fetch.describe(provenance))
    print(json.dumps(provenance, indent=2))
    return 0


def _train(a: argparse.Namespace) -> int:
    cfg = RunConfig(**{name: getattr(a, name) for name in SETTINGS})
    if a.json is not None and (a.json.is_dir() or not a.json.parent.is_dir()):
        raise validate.ParameterError("json", "name a file in an existing directory", str(a.json))
    url, md5 = paths.data_source(a.url, a.md5)
    ds = data.load_cifar10(paths.data_dir(a.data_dir), cfg.val_size, cfg.normalize, cfg.dtype, url, md5,
                           progress=not a.quiet)
    cfg.check_data_size(ds.train.n + ds.val.n)
    t0 = time.perf_counter()
    with tqdm(total=cfg.n_epochs, unit="epoch", desc=cfg.label, disable=a.quiet) as bar:
        def show(history: dict) -> None:  # progress only: nothing it returns could stop the run
            bar.update(len(history["epoch"]) - bar.n)

        r = train_run(cfg, ds, on_epoch=show)  # the run the report would store for these settings
    seconds = time.perf_counter() - t0
    test = with_test(r, ds).test
    epochs = len(r.history["epoch"])
    weights = "the untrained weights" if epochs == 0 else f"the weights after epoch {epochs}"
    trained = f"{weights}: {epochs} of {cfg.n_epochs} epochs" if r.diverged else f"{epochs} epochs"
    print(f"test loss {test['loss']:.4f}  cost {test['cost']:.4f}  accuracy {test['acc']:.4f}"
          f"  ({trained} in {seconds:.1f} s)")
    if a.json is not None:
        out = {"settings": cfg.to_dict(), "test": test, "diverged": r.diverged, "seconds": seconds,
               "history": {k: [v if math.isfinite(v) else None for v in values] for k, values in r.history.items()},
               "provenance": ds.provenance}  # strict JSON: a metric not measured (NaN) is null
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    if r.diverged:
        print(f"error: the run diverged in epoch {epochs + 1} (its cost overflowed), so the numbers above are those "
              f"of {weights}: try a smaller --eta or --lam", file=sys.stderr)
        return 1
    start, end = untrained_val_cost(cfg, ds), r.history["val_cost"][-1]
    if end > start:
        print(f"warning: training raised the validation cost from {start:.4g} (untrained) to {end:.4g}, so the "
              "model is worse than its untrained weights: try a smaller --eta", file=sys.stderr)
    return 0


def untrained_val_cost(cfg: RunConfig, ds: data.Dataset) -> float:
    """The validation cost of ``cfg``'s initial weights, drawn as its training draws them."""
    init_seq = train.random_streams(cfg.seed)[0]
    W, b = train.init_params(ds.val.Y.shape[1], ds.val.X.shape[1], init_seq, cfg.init_std, cfg.dtype)
    return model.evaluate(W, b, ds.val.X, ds.val.Y, cfg.lam, cfg.loss)["cost"]


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the subcommand, whose --help lists its options
        commands[args.command].refuse_unknown(extra)
    try:
        return _train(args) if args.command == "train" else _fetch(args)
    except validate.ParameterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (fetch.DataError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
