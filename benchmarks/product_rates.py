"""How fast this machine multiplies what an epoch multiplies, on one thread.

    .venv/bin/python benchmarks/product_rates.py

A run's products have one column per class (``X_rows @ W.T`` with ``W: (10, 3072)``); some BLAS kernels run
such thin products far below their peak. Prints the matrix-product rate that ``make bench`` measures (a large
square product), then GFLOP/s for the products of 1, 2, 4 and 8 runs' weights stacked (10 to 80 columns), in
blocks of 32, 100 and 256 rows of the benchmark's 45,000 x 3,072 float32 data.
"""

import time

import numpy as np
from bench import D, K, N, machine_rates
from threadpoolctl import threadpool_info, threadpool_limits

ROWS = (32, 100, 256)


def main() -> None:
    X = np.random.default_rng(0).random((N, D), dtype=np.float32)
    print("BLAS:", ", ".join(f"{i['internal_api']} {i['version']} ({i['architecture']})" for i in threadpool_info()))
    print(f"square 2,048 x 2,048: {machine_rates()['sgemm_flops_per_s'] / 1e9:.1f} GFLOP/s")
    with threadpool_limits(limits=1):
        for runs in (1, 2, 4, 8):
            W = np.random.default_rng(1).random((K * runs, D), dtype=np.float32)
            rates = []
            for rows in ROWS:
                t0 = time.perf_counter()
                for start in range(0, N, rows):
                    X[start:start + rows] @ W.T
                rates.append(2 * X.size * W.shape[0] / (time.perf_counter() - t0) / 1e9)
            print(f"{runs} run(s), {W.shape[0]} columns: "
                  + ", ".join(f"{r} rows {g:.1f}" for r, g in zip(ROWS, rates)) + " GFLOP/s")


if __name__ == "__main__":
    main()
