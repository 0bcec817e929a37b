"""Benchmark: one training epoch of this package against its peers, in the same run.

One epoch is defined as: 45,000 x 3,072 training samples in a fresh random order,
mini-batches of 100, softmax cross-entropy + L2 (lam 0.1, eta 0.001), then loss
and accuracy on the training and validation (5,000) data, as the report logs it
every epoch. Every peer trains on the same arrays. Each peer runs a warm-up
epoch and then at least 5 timed epochs; the median is reported.

Peers:
- ``assignment1``: this package's fast loop (``train_fast.train``, ``workers=2`` as the CLI runs it),
  epochs of one run;
- ``assignment1_1core``: the same with ``workers=1``, as each run of the report's parallel sweeps;
- ``assignment1_one_epoch``: ``train_fast.train(n_epochs=1, workers=1)`` called repeatedly (no fused evaluation);
- ``assignment1_plain``: this package's textbook loop (``train.train``), which the fast one must equal;
- ``torch_dataloader``: PyTorch as users write it (TensorDataset, DataLoader(shuffle=True),
  nn.Linear, autograd, optim.SGD with weight decay as the L2 term);
- ``torch_manual``: PyTorch tensors with hand-written gradients, no autograd;
- ``reference_style``: numpy in the reference report's style: one column per sample, float64,
  a full shuffled copy of the data each epoch, a full evaluation each epoch.

Also timed: the gradient check (all 30,730 parameters, 20 samples, centred
differences) and, when the data is reachable, the whole report in quick mode and
with its defaults (five seeds). Writes ``reports/bench.json`` and ``docs/benchmark.md``.

Run with ``make bench`` (``BENCH_ARGS='--skip-report'`` to leave the report out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from assignment1 import config, gradcheck, train, train_fast

N, N_VAL, D, K = 45_000, 5_000, 3_072, 10
LAM, ETA, N_BATCH = 0.1, 0.001, 100


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D), dtype=np.float32)
    Xv = rng.standard_normal((N_VAL, D), dtype=np.float32)
    y, yv = rng.integers(0, K, N), rng.integers(0, K, N_VAL)
    return X, y, Xv, yv


def one_hot(y):
    Y = np.zeros((y.size, K), np.float32)
    Y[np.arange(y.size), y] = 1
    return Y


def bench_assignment1(X, y, Xv, yv, epochs: int, workers: int = 2) -> list[float]:
    """Per-epoch wall times of one run, as ``python -m assignment1 train`` runs it (epoch 1, the warm-up, left out).

    Each epoch trains and evaluates the previous epoch's weights on the training and
    validation data (the last epoch's evaluation is a separate pass after the loop).
    """
    r = train_fast.train(X, one_hot(y), Xv, one_hot(yv), lam=LAM, eta=ETA, n_epochs=epochs + 1, n_batch=N_BATCH,
                         seed=0, workers=workers)
    return r.history["seconds"][1:]


def bench_assignment1_1core(X, y, Xv, yv, epochs: int) -> list[float]:
    """The same on one core (``workers=1``), as each run of the report's parallel sweeps."""
    return bench_assignment1(X, y, Xv, yv, epochs, workers=1)


def bench_assignment1_one_epoch(X, y, Xv, yv, epochs: int) -> list[float]:
    Y, Yv = one_hot(y), one_hot(yv)
    times = []
    for i in range(epochs + 1):
        t0 = time.perf_counter()
        train_fast.train(X, Y, Xv, Yv, lam=LAM, eta=ETA, n_epochs=1, n_batch=N_BATCH, seed=i, workers=1)
        times.append(time.perf_counter() - t0)
    return times[1:]


def bench_assignment1_plain(X, y, Xv, yv, epochs: int) -> list[float]:
    """Per-epoch wall times of the textbook loop, ``train.train`` (BLAS on one thread, as the report runs it)."""
    with threadpool_limits(1):
        r = train.train(X, one_hot(y), Xv, one_hot(yv), lam=LAM, eta=ETA, n_epochs=epochs + 1, n_batch=N_BATCH,
                        seed=0)
    return r.history["seconds"][1:]


def bench_torch_dataloader(X, y, Xv, yv, epochs: int) -> list[float]:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    Xt, yt, Xvt, yvt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(Xv), torch.from_numpy(yv)
    loader = DataLoader(TensorDataset(Xt, yt), batch_size=N_BATCH, shuffle=True)
    net = nn.Linear(D, K)
    # SGD's weight_decay w adds w * W to the gradient: 2 * lam for the L2 term lam * ||W||^2 (W only)
    opt = torch.optim.SGD([{"params": [net.weight], "weight_decay": 2 * LAM}, {"params": [net.bias]}], lr=ETA)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for _ in range(epochs + 1):
        t0 = time.perf_counter()
        net.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(net(xb), yb).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            for Xe, ye in ((Xt, yt), (Xvt, yvt)):
                scores = net(Xe)
                loss = loss_fn(scores, ye).item()
                _cost = loss + LAM * float((net.weight**2).sum())
                _acc = (scores.argmax(1) == ye).float().mean().item()
        times.append(time.perf_counter() - t0)
    return times[1:]


def bench_torch_manual(X, y, Xv, yv, epochs: int) -> list[float]:
    import torch

    g = torch.Generator().manual_seed(0)
    Xt, yt, Xvt, yvt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(Xv), torch.from_numpy(yv)
    W = torch.randn(K, D, generator=g) * 0.1
    b = torch.randn(K, generator=g) * 0.1
    times = []
    for _ in range(epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(N, generator=g)
        for s in range(0, N, N_BATCH):
            idx = perm[s:s + N_BATCH]
            xb, yb = Xt.index_select(0, idx), yt.index_select(0, idx)
            G = torch.softmax(torch.addmm(b, xb, W.t()), dim=1)
            G[torch.arange(idx.numel()), yb] -= 1
            G /= idx.numel()
            W -= ETA * (G.t() @ xb + 2 * LAM * W)
            b -= ETA * G.sum(0)
        for Xe, ye in ((Xt, yt), (Xvt, yvt)):
            scores = torch.addmm(b, Xe, W.t())
            loss = torch.nn.functional.cross_entropy(scores, ye).item()
            _cost = loss + LAM * float((W**2).sum())
            _acc = (scores.argmax(1) == ye).float().mean().item()
        times.append(time.perf_counter() - t0)
    return times[1:]


def bench_reference_style(X, y, Xv, yv, epochs: int) -> list[float]:
    """The reference report's implementation style: (d, n) float64 columns, copy-shuffle, full evaluation."""
    rng = np.random.default_rng(0)
    Xs, Xvs = X.T.astype(np.float64), Xv.T.astype(np.float64)  # one column per sample
    Ys, Yvs = one_hot(y).T.astype(np.float64), one_hot(yv).T.astype(np.float64)
    W = rng.normal(0, 0.1, (K, D))
    b = rng.normal(0, 0.1, (K, 1))

    def softmax(s):
        e = np.exp(s - s.max(axis=0))
        return e / e.sum(axis=0)

    def evaluate(Xe, Ye):
        P = softmax(W @ Xe + b)
        loss = -np.mean(np.log(np.sum(Ye * P, axis=0)))
        return loss, loss + LAM * np.sum(W**2), np.mean(P.argmax(0) == Ye.argmax(0))

    times = []
    for _ in range(epochs + 1):
        t0 = time.perf_counter()
        perm = rng.permutation(N)
        Xe, Ye = Xs[:, perm], Ys[:, perm]  # shuffle by copying everything
        for s in range(0, N, N_BATCH):
            xb, yb = Xe[:, s:s + N_BATCH], Ye[:, s:s + N_BATCH]
            P = softmax(W @ xb + b)
            G = P - yb
            W -= ETA * (G @ xb.T / xb.shape[1] + 2 * LAM * W)
            b -= ETA * G.mean(axis=1, keepdims=True)
        evaluate(Xs, Ys)
        evaluate(Xvs, Yvs)
        times.append(time.perf_counter() - t0)
    return times[1:]


def bench_gradcheck(repeats: int) -> list[float]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, D))
    Y = np.eye(K)[rng.integers(0, K, 20)]
    W, b = rng.normal(0, 2, (K, D)), rng.normal(0, 2, K)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        gradcheck.check_gradients(W, b, X, Y, lam=0.01, h=1e-5, method="centred")
        times.append(time.perf_counter() - t0)
    return times[1:]


def machine_rates() -> dict:
    """Measured memory read bandwidth and float32 matrix-product rate (1 thread and all cores)."""
    A = np.ones((N, D), np.float32)
    A.sum()
    reads = []
    for _ in range(5):
        t0 = time.perf_counter()
        A.sum()
        reads.append(time.perf_counter() - t0)
    M = np.ones((2048, 2048), np.float32)
    rates = {}
    for threads in (1, os.cpu_count() or 1):
        with threadpool_limits(threads):
            M @ M
            ts = []
            for _ in range(5):
                t0 = time.perf_counter()
                M @ M
                ts.append(time.perf_counter() - t0)
        rates[threads] = 2 * 2048**3 / statistics.median(ts)
    return {"read_bytes_per_s": A.nbytes / statistics.median(reads), "sgemm_flops_per_s": rates}


def floor_estimate(rates: dict) -> dict:
    """Lower bound on one epoch: its floating-point work at the measured matrix-product rate,
    or its compulsory memory reads at the measured bandwidth, whichever is larger."""
    flops = 2 * 2 * D * K * N + 2 * D * K * (N + N_VAL)  # forward + backward per sample, then evaluation
    bytes_read = 4 * D * (N + N_VAL)  # every float32 sample read once (training and evaluation share it)
    out = {"flops": flops, "bytes": bytes_read}
    for threads, rate in rates["sgemm_flops_per_s"].items():
        out[f"seconds_{threads}_cores"] = max(flops / rate, bytes_read / rates["read_bytes_per_s"])
    return out


def time_report(quick: bool, env: dict) -> float | None:
    with tempfile.TemporaryDirectory(prefix="a1-bench-") as tmp:
        cmd = [sys.executable, "-m", "assignment1.report", "--no-pdf"] + (["--quick"] if quick else [])
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env={**env, "A1_REPORTS_DIR": tmp}, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if r.returncode != 0:
        print(f"report ({'quick' if quick else 'default'}) failed: {r.stderr.strip().splitlines()[-1:]}")
        return None
    return seconds


def markdown(result: dict) -> str:
    e = result["epoch_seconds"]
    base = e["assignment1"]
    lines = ["# Benchmark", "", f"Generated by `make bench` on {result['machine']['cpu_count']} cores "
             f"({result['machine']['blas']}), numpy {result['machine']['numpy']}, "
             f"torch {result['machine'].get('torch', 'absent')}. Medians of {result['repeats']} timed epochs "
             "after a warm-up, all peers in the same run.", "",
             "| peer | seconds per epoch | relative to assignment1 |", "|---|---|---|"]
    for name, s in e.items():
        lines.append(f"| {name} | {s:.3f} | {s / base:.2f}x |" if s is not None else f"| {name} | n/a | |")
    r = result["ratios"]
    f = result["floor"]
    lines += ["", f"- assignment1 / torch_dataloader = {r.get('vs_torch_dataloader', float('nan')):.3f} "
              "(target <= 0.25)",
              f"- assignment1 / torch_manual = {r.get('vs_torch_manual', float('nan')):.3f} (target <= 0.6)",
              f"- assignment1 / reference_style = {r['vs_reference_style']:.3f}",
              f"- assignment1 / assignment1_plain = {r['vs_assignment1_plain']:.3f} (the fast loop against the "
              "textbook loop it must equal)",
              f"- gradient check, 30,730 parameters: {result['gradcheck_seconds']:.2f} s (target <= 5)",
              f"- floor: {f['flops'] / 1e9:.1f} GFLOP and {f['bytes'] / 1e6:.0f} MB read per epoch; "
              + ", ".join(f"{v:.3f} s on {k.split('_')[1]} core(s)" for k, v in f.items() if k.startswith("seconds"))
              + "; assignment1 runs at " + ", ".join(f"{v:.1f}x the {k.split('_', 2)[-1].replace('_', ' ')} floor"
                                                     for k, v in r.items() if "floor" in k and k.startswith("vs"))
              + f", assignment1_1core at {r['1core_vs_floor_1_core']:.1f}x the one-core floor",
              f"- full report: quick {_fmt(result['report_seconds']['quick'])}, "
              f"default {_fmt(result['report_seconds']['default'])}"]
    return "\n".join(lines) + "\n"


def _fmt(s):
    return "not run" if s is None else f"{s:.0f} s"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per peer (after one warm-up)")
    parser.add_argument("--skip-report", action="store_true", help="do not time the whole report")
    parser.add_argument("--skip-torch", action="store_true", help="leave the PyTorch peers out")
    parser.add_argument("--out", type=Path, default=None, help="bench.json path (default reports/bench.json)")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")

    X, y, Xv, yv = make_data()
    peers = {"assignment1": bench_assignment1, "assignment1_1core": bench_assignment1_1core,
             "assignment1_one_epoch": bench_assignment1_one_epoch, "assignment1_plain": bench_assignment1_plain,
             "reference_style": bench_reference_style}
    machine = {"cpu_count": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
               "blas": ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})"
                                 for i in threadpool_info() if i["user_api"] == "blas")}
    if not args.skip_torch:
        try:
            import torch

            machine["torch"] = torch.__version__
            machine["torch_threads"] = torch.get_num_threads()
            peers.update(torch_dataloader=bench_torch_dataloader, torch_manual=bench_torch_manual)
        except ImportError:
            print("torch is not installed (pip install -e '.[bench]'): its peers are left out")
    samples: dict[str, list[float]] = {}
    for name, fn in peers.items():
        print(f"timing {name} ...", flush=True)
        samples[name] = fn(X, y, Xv, yv, args.repeats)
    epoch = {name: statistics.median(ts) for name, ts in samples.items()}
    print("timing the gradient check ...", flush=True)
    gc = bench_gradcheck(args.repeats)
    rates = machine_rates()
    floor = floor_estimate(rates)
    ratios = {f"vs_{name}": epoch["assignment1"] / s for name, s in epoch.items() if name != "assignment1"}
    cores = max(int(k) for k in rates["sgemm_flops_per_s"])
    ratios[f"vs_floor_{cores}_cores"] = epoch["assignment1"] / floor[f"seconds_{cores}_cores"]
    ratios["1core_vs_floor_1_core"] = epoch["assignment1_1core"] / floor["seconds_1_cores"]
    report_seconds = {"quick": None, "default": None}
    if not args.skip_report:
        env = dict(os.environ)
        for mode, quick in (("quick", True), ("default", False)):
            print(f"timing the {mode} report ...", flush=True)
            report_seconds[mode] = time_report(quick, env)
    result = {"epoch_seconds": epoch, "epoch_samples": samples, "gradcheck_seconds": statistics.median(gc),
              "gradcheck_samples": gc, "report_seconds": report_seconds, "ratios": ratios, "floor": floor,
              "machine_rates": {"read_bytes_per_s": rates["read_bytes_per_s"],
                                "sgemm_flops_per_s": {str(k): v for k, v in rates["sgemm_flops_per_s"].items()}},
              "repeats": args.repeats, "machine": machine}
    out = args.out or config.reports_dir() / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    (config.ROOT / "docs").mkdir(exist_ok=True)
    (config.ROOT / "docs" / "benchmark.md").write_text(md)
    print(md)
    print(f"wrote {out} and docs/benchmark.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
