"""How fast this machine multiplies what an epoch multiplies, on one thread.

    .venv/bin/python benchmarks/product_rates.py

A run's products have one column per class (``X_rows @ W.T`` with ``W: (10, 3072)``); some BLAS kernels run
such thin products far below their peak. Prints GFLOP/s for a large square product, then for the products of
1, 2, 4 and 8 runs' weights stacked (10 to 80 columns), in blocks of 32, 100 and 256 rows of 45,000 x 3,072
float32 data.
"""

import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

ROWS = (32, 100, 256)


def gflops(work: float, seconds: float) -> float:
    return work / seconds / 1e9


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((45_000, 3_072), dtype=np.float32)
    print("BLAS:", ", ".join(f"{i['internal_api']} {i['version']} ({i['architecture']})" for i in threadpool_info()))
    with threadpool_limits(limits=1):
        A = rng.random((2_000, 2_000), dtype=np.float32)
        seconds = []
        for _ in range(3):
            t0 = time.perf_counter()
            A @ A
            seconds.append(time.perf_counter() - t0)
        print(f"square 2,000 x 2,000: {gflops(2 * 2_000**3, min(seconds)):.1f} GFLOP/s")
        for runs in (1, 2, 4, 8):
            W = rng.random((10 * runs, 3_072), dtype=np.float32)
            rates = []
            for rows in ROWS:
                t0 = time.perf_counter()
                for start in range(0, len(X), rows):
                    X[start:start + rows] @ W.T
                rates.append(gflops(2 * X.size * W.shape[0], time.perf_counter() - t0))
            print(f"{runs} run(s), {W.shape[0]} columns: "
                  + ", ".join(f"{r} rows {g:.1f}" for r, g in zip(ROWS, rates)) + " GFLOP/s")


if __name__ == "__main__":
    main()
