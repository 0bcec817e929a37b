"""Command line: ``python -m assignment1 fetch|train ...``.

Every failure ends with one line on stderr saying why, and a non-zero exit
status: 2 for a bad argument (refused before any work), 1 for anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import data, fetch, model, train, validate


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="archive source: http(s)://, file:// or a local path (env CIFAR10_URL)")
    p.add_argument("--md5", help="expected md5 of the archive (env CIFAR10_MD5)")
    p.add_argument("--data-dir", help="data directory (env A1_DATA_DIR; default data/ under the project)")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the whole usage text
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m assignment1", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("fetch", help="download, verify and extract CIFAR-10; print its provenance")
    _add_data_args(p)

    p = sub.add_parser("train", help="train one model and print its test loss, cost and accuracy")
    p.add_argument("--lam", type=float, default=0.1, help="L2 regularization strength (>= 0)")
    p.add_argument("--eta", type=float, default=0.001, help="learning rate (> 0)")
    p.add_argument("--epochs", type=int, default=40, help="number of epochs (>= 1)")
    p.add_argument("--batch", type=int, default=100, help="mini-batch size (1..training size)")
    p.add_argument("--seed", type=int, default=0, help="random seed (>= 0)")
    p.add_argument("--val-size", type=int, default=5000, help="validation samples held out of training")
    p.add_argument("--flip", action="store_true", help="mirror each batch sample with probability 0.5")
    p.add_argument("--loss", default="ce", help="ce (softmax cross-entropy) or mbce (sigmoid M-BCE)")
    p.add_argument("--normalize", default="per_feature", help="per_feature or global")
    p.add_argument("--dtype", default="float32", help="float32 or float64")
    p.add_argument("--init-std", type=float, default=0.1, help="std of the N(0, std^2) initialization")
    p.add_argument("--workers", type=int, default=2 if (os.cpu_count() or 1) > 1 else 1,
                   help="1, or 2 to gather and evaluate in a second process (same results; default: 2 on 2+ cores)")
    p.add_argument("--json", type=Path, help="write results and per-epoch history to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_args(p)
    return parser


def _check_train_args(a: argparse.Namespace) -> None:
    validate.non_negative("--lam", a.lam)
    validate.positive("--eta", a.eta)
    validate.integer("--epochs", a.epochs, low=1)
    validate.integer("--batch", a.batch, low=1)
    validate.integer("--seed", a.seed, low=0)
    validate.integer("--val-size", a.val_size, low=1)
    validate.choice("--loss", a.loss, model.LOSSES)
    validate.choice("--normalize", a.normalize, data.NORMALIZATIONS)
    validate.choice("--dtype", a.dtype, data.DTYPES)
    validate.positive("--init-std", a.init_std)
    validate.integer("--workers", a.workers, low=1, high=2)
    if a.json is not None and not a.json.parent.is_dir():
        raise validate.ParameterError(f"--json: directory {a.json.parent} does not exist")


def _fetch(a: argparse.Namespace) -> int:
    provenance = fetch.prepare(url=a.url, md5=a.md5, data_dir=a.data_dir)
    print(fetch.describe(provenance))
    print(json.dumps(provenance, indent=2))
    return 0


def _train(a: argparse.Namespace) -> int:
    try:
        ds = data.load_cifar10(a.data_dir, val_size=a.val_size, normalize=a.normalize, dtype=a.dtype,
                               url=a.url, md5=a.md5, progress=not a.quiet)
    except validate.ParameterError as e:  # only val_size's range is checked after the data is known
        raise validate.ParameterError(str(e).replace("val_size", "--val-size")) from None
    validate.integer("--batch", a.batch, low=1, high=ds.train.n)
    t0 = time.perf_counter()
    result = train.train(ds.train.X, ds.train.Y, ds.val.X, ds.val.Y, lam=a.lam, eta=a.eta,
                         n_epochs=a.epochs, n_batch=a.batch, seed=a.seed, loss=a.loss, flip=a.flip,
                         init_std=a.init_std, dtype=a.dtype, workers=a.workers, progress=not a.quiet)
    seconds = time.perf_counter() - t0
    test = model.evaluate(result.W, result.b, ds.test.X, ds.test.Y, a.lam, a.loss)
    status = f"DIVERGED after epoch {len(result.history['epoch'])}; " if result.diverged else ""
    print(f"{status}test loss {test['loss']:.4f}  cost {test['cost']:.4f}  accuracy {test['acc']:.4f}"
          f"  ({len(result.history['epoch'])} epochs in {seconds:.1f} s)")
    if a.json is not None:
        settings = {k: getattr(a, k) for k in ("lam", "eta", "epochs", "batch", "seed", "val_size", "flip",
                                              "loss", "normalize", "dtype", "init_std")}
        out = {"settings": settings, "test": test, "diverged": result.diverged, "seconds": seconds,
               "history": result.history, "provenance": ds.provenance}
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            _check_train_args(args)
            return _train(args)
        return _fetch(args)
    except validate.ParameterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (fetch.DataError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
