"""Where an epoch's time goes: gather, forward product, softmax and gradient, backward product and update, evaluation.

    .venv/bin/python benchmarks/profile_epoch.py [--runs R] [--epochs E] [--batch B]

Runs the loop of :func:`assignment1.sweep.train` over ``R`` runs (Table 1's
settings, repeated) on data of CIFAR-10's size, on one thread, with a clock
around each phase, and checks that it ends with the weights the sweep itself
computes, so the time measured is the time of that work. Prints seconds per
run-epoch, each phase's median over the epochs after the first. Start two at
once to see what two processes sharing the memory bus do to each other.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import numpy as np
from threadpoolctl import threadpool_limits

from assignment1 import sweep, train
from assignment1.config import RunConfig

PHASES = ("gather", "forward", "softmax and gradient", "backward and update", "evaluation")


def profile(X, Y, Xv, Yv, cfgs: list[RunConfig]) -> tuple[dict[str, list[float]], list[np.ndarray]]:
    """Seconds of each phase in each epoch, and each run's final weights."""
    K, first = Y.shape[1], cfgs[0]
    y = Y.argmax(axis=1)
    init_seq, shuffle_rng, *_ = train.random_streams(first.seed)
    params = [train.init_params(K, X.shape[1], init_seq, c.init_std, first.dtype) for c in cfgs]
    W, b = sweep.stack(params)
    Xb_buf = np.empty((first.n_batch, X.shape[1]), X.dtype)
    times = defaultdict(list)
    for epoch in range(first.n_epochs):
        spent = dict.fromkeys(PHASES, 0.0)
        order = shuffle_rng.permutation(X.shape[0])
        for start in range(0, X.shape[0], first.n_batch):  # sweep.step, a clock around each of its phases
            t0 = time.perf_counter()
            batch = order[start:start + first.n_batch]
            Xb = np.take(X, batch, axis=0, out=Xb_buf[:len(batch)], mode="clip")
            t1 = time.perf_counter()
            ST = sweep.times(W, Xb.T)
            ST += b[:, None]
            t2 = time.perf_counter()
            decay = np.ones((W.shape[0], 1), W.dtype)
            for i, cfg in enumerate(cfgs):
                G = sweep.score_gradients(sweep.slot(ST, i, K).T, y[batch], first.loss)
                G *= cfg.eta_at(epoch) / len(batch)
                decay[sweep.SLOT * i:sweep.SLOT * (i + 1)] = 1 - 2 * cfg.eta_at(epoch) * cfg.lam
            t3 = time.perf_counter()
            W *= decay
            W -= sweep.times(ST, Xb)
            b -= ST.sum(axis=1)
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="runs in the sweep")
    parser.add_argument("--epochs", type=int, default=4, help="epochs (the first is left out)")
    parser.add_argument("--batch", type=int, default=100, help="mini-batch size")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    X, Xv = rng.standard_normal((45_000, 3072), dtype=np.float32), rng.standard_normal((5_000, 3072), dtype=np.float32)
    Y, Yv = (np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)] for n in (45_000, 5_000))
    settings = [(0.0, 0.1), (0.0, 0.001), (0.1, 0.001), (1.0, 0.001)]
    cfgs = [RunConfig(lam=lam, eta=eta, n_epochs=args.epochs, n_batch=args.batch)
            for lam, eta in (settings * args.runs)[:args.runs]]
    with threadpool_limits(1):
        times, W = profile(X, Y, Xv, Yv, cfgs)
        swept = sweep.train(X, Y, Xv, Yv, cfgs)
    assert all(np.array_equal(a, r.W) for a, r in zip(W, swept)), "the profiled loop is not the sweep's"
    medians = {phase: statistics.median(ts[1:]) for phase, ts in times.items()}
    print(f"{args.runs} run(s): {sum(medians.values()):.3f} s per run-epoch: "
          + ", ".join(f"{phase} {s:.3f}" for phase, s in medians.items()))


if __name__ == "__main__":
    main()
