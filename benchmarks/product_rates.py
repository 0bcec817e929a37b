"""How fast this machine multiplies what an epoch multiplies, on one thread.

    .venv/bin/python benchmarks/product_rates.py
    OPENBLAS_CORETYPE=Haswell .venv/bin/python benchmarks/product_rates.py   # as on an AVX2 processor

A run's products have one column per class (``X_rows @ W.T`` with ``W: (10, 3072)``); some BLAS kernels run
such thin products far below their peak. Prints the matrix-product rate that ``make bench`` measures (a large
square product); GFLOP/s for the products of 1, 2, 4 and 8 runs' weights stacked (10 to 80 columns), in blocks
of 32, 100 and 256 rows streamed from the benchmark's 45,000 x 3,072 float32 data; and GFLOP/s of
:mod:`assignment1.sweep`'s forward product and step on one batch of 100 rows held in cache, in each of its two
layouts (blocks of at most 32 rows and scipy's gemm; the batch in one piece and numpy's product).
"""

import time

import numpy as np
from bench import D, K, N, machine_rates
from threadpoolctl import threadpool_info, threadpool_limits

from assignment1 import sweep

ROWS = (32, 100, 256)
LAYOUTS = {"small-matrix kernels' layout": True, "general kernels' layout": False}


def best_rate(flops: float, work, repeats: int = 300) -> float:
    """GFLOP/s of ``work()``, the best of seven timings of ``repeats`` calls."""
    best = float("inf")
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(repeats):
            work()
        best = min(best, time.perf_counter() - t0)
    return flops * repeats / best / 1e9


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((N, D), dtype=np.float32)
    print("BLAS:", ", ".join(f"{i['internal_api']} {i['version']} ({i['architecture']})" for i in threadpool_info()))
    print(f"square 2,048 x 2,048: {machine_rates()['sgemm_flops_per_s'] / 1e9:.1f} GFLOP/s")
    with threadpool_limits(limits=1):
        for runs in (1, 2, 4, 8):
            W = rng.random((K * runs, D), dtype=np.float32)
            rates = []
            for rows in ROWS:
                t0 = time.perf_counter()
                for start in range(0, N, rows):
                    X[start:start + rows] @ W.T
                rates.append(2 * X.size * W.shape[0] / (time.perf_counter() - t0) / 1e9)
            print(f"{runs} run(s), {W.shape[0]} columns, streamed: "
                  + ", ".join(f"{r} rows {g:.1f}" for r, g in zip(ROWS, rates)) + " GFLOP/s")
        Xb, flops = X[:100].copy(), 2 * 100 * D * K
        W, b, S = rng.random((K, D), dtype=np.float32) * 1e-3, np.zeros(K, np.float32), np.empty((100, K), np.float32)
        G = rng.random((100, K), dtype=np.float32)
        for name, small_kernels in LAYOUTS.items():  # as the sweep lays a run out on either kind of machine
            sweep.SMALL_KERNELS, sweep.MAX_BLOCK_ROWS = small_kernels, sweep.BLOCK_ROWS[small_kernels]
            forward = best_rate(flops, lambda: sweep.scores(Xb, W, b, S))
            step = best_rate(flops, lambda: sweep.step(W, b, Xb, G, 1e-9, 0.1))
            print(f"one run, a batch of 100 in cache, {name}: forward {forward:.1f}, step {step:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
