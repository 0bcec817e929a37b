"""Where an epoch's time goes: gather, forward product, softmax and gradient, backward product and update, evaluation.

    .venv/bin/python benchmarks/profile_epoch.py [--runs R] [--epochs E] [--batch B] [--layouts columns rows]

Runs the loop of :func:`assignment1.sweep.train` over ``R`` runs (Table 1's
settings, repeated) on data of CIFAR-10's size, on one thread, with a clock
around each phase, and checks that it ends with the weights the sweep itself
computes, so the time measured is the time of that work. Prints seconds per
run-epoch, each phase's median over the epochs after the first. With several
``--layouts`` (:mod:`assignment1.sweep`'s columns and rows, each forced), they
take turns, ``--rounds`` times, and the ratio of each to the first is given per
round. Start two at once to see what two processes sharing the memory bus do
to each other.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections import defaultdict
from unittest import mock

import numpy as np
from threadpoolctl import threadpool_limits

from assignment1 import sweep, train
from assignment1.config import RunConfig

PHASES = ("gather", "forward", "softmax and gradient", "backward and update", "evaluation")


def profile(X, Y, Xv, Yv, cfgs: list[RunConfig]) -> tuple[dict[str, list[float]], list[np.ndarray]]:
    """Seconds of each phase in each epoch, and each run's final weights (in the layout the sweep takes)."""
    (n, d), K, first = X.shape, Y.shape[1], cfgs[0]
    y = Y.argmax(axis=1)
    init_seq, shuffle_rng, *_ = train.random_streams(first.seed)
    params = [train.init_params(K, d, init_seq, c.init_std, first.dtype) for c in cfgs]
    W, b = sweep.stack(params, sweep.slot_rows(first.dtype, K, d, {min(first.n_batch, n), n % first.n_batch} - {0}))
    R, rows, _ = W.shape
    Xb_buf = np.empty((first.n_batch, d), X.dtype)
    times = defaultdict(list)
    for epoch in range(first.n_epochs):
        spent = dict.fromkeys(PHASES, 0.0)
        order = shuffle_rng.permutation(n)
        decay = np.array([1 - 2 * c.eta_at(epoch) * c.lam for c in cfgs], W.dtype)[:, None, None]
        for start in range(0, n, first.n_batch):  # sweep.step, a clock around each of its phases
            t0 = time.perf_counter()
            batch = order[start:start + first.n_batch]
            Xb = np.take(X, batch, axis=0, out=Xb_buf[:len(batch)], mode="clip")
            m = len(batch)
            t1 = time.perf_counter()
            if rows == sweep.SLOT:
                ST = sweep.times(W.reshape(R * rows, d), Xb.T).reshape(R, rows, m)
                ST += b[:, :, None]
                t2 = time.perf_counter()
                for i, cfg in enumerate(cfgs):
                    G = sweep.score_gradients(ST[i, :K].T, y[batch], first.loss)
                    G *= cfg.eta_at(epoch) / m
                t3 = time.perf_counter()
                W *= decay
                W -= sweep.times(ST.reshape(R * rows, m), Xb).reshape(W.shape)
                b -= ST.sum(axis=2)
            else:
                S = Xb @ W.reshape(R * K, d).T
                S += b.reshape(R * K)
                t2 = time.perf_counter()
                G = sweep.score_gradients(S.reshape(m, R, K), y[batch], first.loss)
                G *= np.array([c.eta_at(epoch) / m for c in cfgs], W.dtype)[:, None]
                t3 = time.perf_counter()
                W *= decay
                W -= (S.T @ Xb).reshape(W.shape)
                b -= S.sum(axis=0).reshape(b.shape)
            t4 = time.perf_counter()
            for phase, seconds in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                spent[phase] += seconds
        t0 = time.perf_counter()
        current = [(sweep.slot(W, i, K), sweep.slot(b, i, K)) for i in range(len(cfgs))]
        sweep.evaluate(current, X, Y, cfgs)
        sweep.evaluate(current, Xv, Yv, cfgs)
        spent["evaluation"] = time.perf_counter() - t0
        for phase, seconds in spent.items():
            times[phase].append(seconds / len(cfgs))
    return times, [sweep.slot(W, i, K).copy() for i in range(len(cfgs))]


def forced(layout: str):
    """A context in which :mod:`assignment1.sweep` takes ``layout`` ("columns" or "rows") wherever it would not be
    exact too; "as-is": the layout it takes by itself."""
    if layout == "as-is":
        return contextlib.nullcontext()
    return mock.patch.object(sweep, "columns_exact", lambda *shape: layout == "columns")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="runs in the sweep")
    parser.add_argument("--epochs", type=int, default=4, help="epochs (the first is left out)")
    parser.add_argument("--batch", type=int, default=100, help="mini-batch size")
    parser.add_argument("--layouts", nargs="+", default=["as-is"], choices=["as-is", "columns", "rows"],
                        help="the sweep's layouts to profile, taking turns")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the layouts taking turns")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    X, Xv = rng.standard_normal((45_000, 3072), dtype=np.float32), rng.standard_normal((5_000, 3072), dtype=np.float32)
    Y, Yv = (np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)] for n in (45_000, 5_000))
    settings = [(0.0, 0.1), (0.0, 0.001), (0.1, 0.001), (1.0, 0.001)]
    cfgs = [RunConfig(lam=lam, eta=eta, n_epochs=args.epochs, n_batch=args.batch)
            for lam, eta in (settings * args.runs)[:args.runs]]
    totals = defaultdict(list)
    for round_ in range(args.rounds):
        for layout in args.layouts:
            with forced(layout), threadpool_limits(1):
                times, W = profile(X, Y, Xv, Yv, cfgs)
                swept = sweep.train(X, Y, Xv, Yv, cfgs)
            assert all(np.array_equal(a, r.W) for a, r in zip(W, swept)), "the profiled loop is not the sweep's"
            medians = {phase: statistics.median(ts[1:]) for phase, ts in times.items()}
            totals[layout].append(sum(medians.values()))
            print(f"round {round_ + 1}, {layout}: {args.runs} run(s): {totals[layout][-1]:.3f} s per run-epoch: "
                  + ", ".join(f"{phase} {s:.3f}" for phase, s in medians.items()), flush=True)
    for layout in args.layouts[1:]:
        ratios = [a / b for a, b in zip(totals[layout], totals[args.layouts[0]])]
        print(f"{layout} / {args.layouts[0]}: median {statistics.median(ratios):.2f} "
              f"(range {min(ratios):.2f}-{max(ratios):.2f}) over {len(ratios)} round(s)")


if __name__ == "__main__":
    main()
