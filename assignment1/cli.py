"""Command line: ``python -m assignment1 fetch|train ...``.

Every failure ends with one line on stderr saying why, and a non-zero exit
status: 2 for a bad argument (refused before any work), 1 for anything else.
Arguments are checked by the same functions that check the Python API; only
the names differ (``--epochs`` here is ``n_epochs`` there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import data, fetch, model, train, validate
from .progress import bar as progress_bar
from .train_fast import ENGINES

#: The Python API's name of each ``train`` option, for error messages.
OPTIONS = {"lam": "--lam", "eta": "--eta", "n_epochs": "--epochs", "n_batch": "--batch", "seed": "--seed",
           "val_size": "--val-size", "init_std": "--init-std", "workers": "--workers", "json": "--json"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the whole usage text
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")

    def refuse_unknown(self, extra: list[str]) -> None:
        """Name the arguments this parser does not know, with the closest option for each misspelling."""
        known = [s for a in self._actions for s in a.option_strings]
        hints = [validate.with_guess(x.split("=")[0], known, typed=x) for x in extra]
        self.error(f"unrecognized arguments: {' '.join(hints)}")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="archive source: http(s)://, file:// or a local path (env CIFAR10_URL)")
    p.add_argument("--md5", help="expected md5 of the archive (env CIFAR10_MD5)")
    p.add_argument("--data-dir", help="data directory (env A1_DATA_DIR; default data/ under the project)")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser and its subcommand parsers by name."""
    parser = _Parser(prog="python -m assignment1", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands = {}

    p = commands["fetch"] = sub.add_parser("fetch", help="download, verify and extract CIFAR-10; print its provenance")
    _add_data_args(p)

    p = commands["train"] = sub.add_parser(
        "train", help="train one model and print its test loss, cost and accuracy",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--lam", type=float, default=0.1, help="L2 regularization strength (>= 0)")
    p.add_argument("--eta", type=float, default=0.001, help="learning rate (> 0)")
    p.add_argument("--epochs", type=int, default=40, help="number of epochs (>= 1)")
    p.add_argument("--batch", type=int, default=100, help="mini-batch size (1 to the training set's size)")
    p.add_argument("--seed", type=int, default=0, help="random seed (>= 0)")
    p.add_argument("--val-size", type=int, default=5000, help="validation samples held out of training")
    p.add_argument("--flip", action="store_true", help="mirror each batch sample with probability 0.5")
    p.add_argument("--loss", default="ce", choices=model.LOSSES, help="softmax cross-entropy or sigmoid M-BCE")
    p.add_argument("--normalize", default="per_feature", choices=data.NORMALIZATIONS,
                   help="standardize per feature, or by one global mean and std")
    p.add_argument("--dtype", default="float32", choices=data.DTYPES, help="training precision")
    p.add_argument("--init-std", type=float, default=0.1, help="std of the N(0, std^2) initialization")
    p.add_argument("--engine", default="fast", choices=ENGINES,
                   help="training loop: fast (train_fast.py) or plain (train.py, the textbook loop; same "
                        "results to rounding, slower)")
    p.add_argument("--workers", type=int, default=2 if (os.cpu_count() or 1) > 1 else 1,
                   help="fast engine: 1, or 2 to gather and evaluate in a second process (same results)")
    p.add_argument("--json", type=Path, help="write results and per-epoch history to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_args(p)
    return parser, commands


def _fetch(a: argparse.Namespace) -> int:
    provenance = fetch.prepare(url=a.url, md5=a.md5, data_dir=a.data_dir)
    print(fetch.describe(provenance))
    print(json.dumps(provenance, indent=2))
    return 0


def _train(a: argparse.Namespace) -> int:
    # everything but the batch size's upper bound is checked before the data is loaded
    train.check_params(lam=a.lam, eta=a.eta, n_epochs=a.epochs, n_batch=a.batch, seed=a.seed, loss=a.loss,
                       init_std=a.init_std, dtype=a.dtype)
    validate.integer("val_size", a.val_size, low=1)
    validate.integer("workers", a.workers, low=1, high=2)
    if a.json is not None and not a.json.parent.is_dir():
        raise validate.ParameterError("json", f"name a file in an existing directory ({a.json.parent} is not one)")
    ds = data.load_cifar10(a.data_dir, val_size=a.val_size, normalize=a.normalize, dtype=a.dtype,
                           url=a.url, md5=a.md5, progress=not a.quiet)
    validate.integer("n_batch", a.batch, low=1, high=ds.train.n)
    extra = {"workers": a.workers} if a.engine == "fast" else {}
    t0 = time.perf_counter()
    with progress_bar(show=not a.quiet, total=a.epochs, unit="epoch", desc=f"lam={a.lam:g} eta={a.eta:g}") as bar:
        result = ENGINES[a.engine](
            ds.train.X, ds.train.Y, ds.val.X, ds.val.Y, lam=a.lam, eta=a.eta, n_epochs=a.epochs, n_batch=a.batch,
            seed=a.seed, loss=a.loss, flip=a.flip, init_std=a.init_std, dtype=a.dtype,
            on_epoch=lambda history: bar.update(len(history["epoch"]) - bar.n), **extra)  # only progress
    seconds = time.perf_counter() - t0
    test = model.evaluate(result.W, result.b, ds.test.X, ds.test.Y, a.lam, a.loss)
    epochs = len(result.history["epoch"])
    status = f"DIVERGED after epoch {epochs}; " if result.diverged else ""
    print(f"{status}test loss {test['loss']:.4f}  cost {test['cost']:.4f}  accuracy {test['acc']:.4f}"
          f"  ({epochs} epochs in {seconds:.1f} s)")
    if a.json is not None:
        settings = {k: getattr(a, k) for k in ("lam", "eta", "epochs", "batch", "seed", "val_size", "flip",
                                              "loss", "normalize", "dtype", "init_std", "engine")}
        out = {"settings": settings, "test": test, "diverged": result.diverged, "seconds": seconds,
               "history": result.history, "provenance": ds.provenance}
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser, commands = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the subcommand, whose --help lists its options
        commands[args.command].refuse_unknown(extra)
    try:
        return _train(args) if args.command == "train" else _fetch(args)
    except validate.ParameterError as e:
        print(f"error: {e.message(OPTIONS.get(e.name))}", file=sys.stderr)
        return 2
    except (fetch.DataError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
