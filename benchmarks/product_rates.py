"""How fast this machine multiplies what an epoch multiplies, on one thread.

    .venv/bin/python benchmarks/product_rates.py
    OPENBLAS_CORETYPE=Haswell .venv/bin/python benchmarks/product_rates.py   # as on an AVX2 processor

A run's products have one row of scores per class (``W Xb^T`` with ``W: (10, 3072)``); BLAS kernels run such
thin products far below their peak, and stacked ones nearer it. Prints the matrix-product rate that ``make bench``
measures (a large square product); GFLOP/s of the products of 1, 2, 4 and 8 runs' weights stacked as
:mod:`assignment1.sweep` stacks them (its rows layout, slots of 12 rows, and its columns layout), streamed from the
benchmark's 45,000 x 3,072 float32 data in blocks of 32, 100 and 512 rows, as each run alone would multiply it and
as the stack does; and GFLOP/s of a whole step of :func:`assignment1.sweep.step` (scores, gradients, update) in
each layout on one batch of 100 rows held in cache. Rates count the useful products only, not the zeros that fill
each slot.
"""

import time

import numpy as np
from bench import D, K, N, machine_rates
from threadpoolctl import threadpool_info, threadpool_limits

from assignment1 import sweep

ROWS = (32, 100, sweep.EVAL_ROWS)


def best_rate(flops: float, work, repeats: int = 300) -> float:
    """GFLOP/s of ``work()``, the best of seven timings of ``repeats`` calls."""
    best = float("inf")
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(repeats):
            work()
        best = min(best, time.perf_counter() - t0)
    return flops * repeats / best / 1e9


def report(X: np.ndarray, runs: int, rng: np.random.Generator) -> None:
    """Print the rates of ``runs`` runs' products, streamed each alone and stacked, and of their step in cache."""
    params = [(rng.random((K, D), dtype=np.float32) * 1e-3, np.zeros(K, np.float32)) for _ in range(runs)]
    as_rows, as_columns = sweep.stack(params)[0].reshape(-1, D), sweep.stack(params, K)[0].reshape(-1, D)
    for name, multiply in (("each alone", lambda Xr: [W_i @ Xr.T for W_i, _ in params]),
                           ("stacked as rows", lambda Xr: sweep.times(as_rows, Xr.T)),
                           ("stacked as columns", lambda Xr: Xr @ as_columns.T)):
        rates = []
        for rows in ROWS:
            t0 = time.perf_counter()
            for start in range(0, N, rows):
                multiply(X[start:start + rows])
            rates.append(2 * X.size * K * runs / (time.perf_counter() - t0) / 1e9)
        print(f"{runs} run(s), streamed, {name}: " + ", ".join(f"{r} rows {g:.1f}" for r, g in zip(ROWS, rates))
              + " GFLOP/s")
    Xb, y = X[:100].copy(), rng.integers(0, K, 100)
    for name, per_run in (("rows", sweep.SLOT), ("columns", K)):
        W, b = sweep.stack(params, per_run)
        step = best_rate(2 * 2 * Xb.size * K * runs,
                         lambda W=W, b=b: sweep.step(W, b, Xb, y, K, ["ce"] * runs, [(1e-9, 0.1)] * runs))
        print(f"{runs} run(s), a step on a batch of 100 in cache, as {name}: {step:.1f} GFLOP/s")


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((N, D), dtype=np.float32)
    print("BLAS:", ", ".join(f"{i['internal_api']} {i['version']} ({i['architecture']})" for i in threadpool_info()))
    print(f"square 2,048 x 2,048: {machine_rates()['sgemm_flops_per_s'] / 1e9:.1f} GFLOP/s")
    with threadpool_limits(limits=1):
        for runs in (1, 2, 4, 8):
            report(X, runs, rng)


if __name__ == "__main__":
    main()
