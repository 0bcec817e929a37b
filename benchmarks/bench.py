"""Benchmark: an epoch of the four Table 1 settings, this package against its peers, in interleaved rounds.

The work timed is what section 2 of the report does each epoch: the four
(lambda, eta) settings of Table 1, each trained for one epoch (45,000 x 3,072
float32 samples in a fresh random order, mini-batches of 100, softmax
cross-entropy + L2) and then evaluated (loss, cost and accuracy on the
training and validation data). Every peer does this work on the same arrays,
on one thread (as each process of the report runs), once per round; rounds
interleave the peers (A, B, C, A, B, C, ...), so that a slow spell of the
machine falls on all of them, and the ratios to ``assignment1`` are taken
within each round and reported as median and range.

Peers:

- ``assignment1``: :func:`assignment1.sweep.train`, the four settings in one sweep;
- ``assignment1_plain``: :func:`assignment1.train.train`, the textbook loop, the settings one after another;
- ``torch_dataloader``: PyTorch as users write it (TensorDataset, DataLoader(shuffle=True), nn.Linear,
  autograd, optim.SGD), the settings one after another;
- ``torch_manual``: PyTorch tensors with hand-written gradients, the settings one after another;
- ``torch_stacked``: the same, with the four settings' weights stacked, as this package does.

Also measured in the same run: the floor (the work's FLOPs at this machine's
matrix-product rate, or its bytes at its memory bandwidth, whichever takes
longer), the gradient check of all 30,730 parameters (against the plain
numerical gradient, which computes every perturbed cost anew), unless
``--skip-report`` the quick report from an empty run store, and with
``--full-report`` (``make bench REPORT=1``) the full one, with what it trained:
its stored runs' own seconds, their run-epochs by kind and their floor (the
FLOPs of their products at the rate measured here). ``--report-from DIR``
counts that for a report already finished, without running anything else.
Writes ``reports/bench.json``; ``--markdown`` also rewrites ``docs/benchmark.md``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from assignment1 import gradcheck, model, sweep, train
from assignment1.config import RunConfig
from assignment1.experiments import paths

N, N_VAL, D, K, N_BATCH = 45_000, 5_000, 3_072, 10, 100
SETTINGS = [(0.0, 0.1), (0.0, 0.001), (0.1, 0.001), (1.0, 0.001)]  # Table 1


def make_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X, Xv = rng.standard_normal((N, D), dtype=np.float32), rng.standard_normal((N_VAL, D), dtype=np.float32)
    y, yv = rng.integers(0, K, N), rng.integers(0, K, N_VAL)
    return X, y, Xv, yv


def one_hot(y):
    return np.eye(K, dtype=np.float32)[y]


def configs() -> list[RunConfig]:
    return [RunConfig(lam=lam, eta=eta, n_epochs=1, n_batch=N_BATCH) for lam, eta in SETTINGS]


def peer_assignment1(X, y, Xv, yv):
    sweep.train(X, one_hot(y), Xv, one_hot(yv), configs())


def peer_assignment1_plain(X, y, Xv, yv):
    for cfg in configs():
        train.train(X, one_hot(y), Xv, one_hot(yv), cfg)


def peer_torch_dataloader(X, y, Xv, yv):
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    Xt, yt, Xvt, yvt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(Xv), torch.from_numpy(yv)
    loss_fn = nn.CrossEntropyLoss()
    for lam, eta in SETTINGS:
        net = nn.Linear(D, K)
        # SGD's weight_decay w adds w * W to the gradient: 2 * lam for the L2 term lam * ||W||^2 (W only)
        opt = torch.optim.SGD([{"params": [net.weight], "weight_decay": 2 * lam}, {"params": [net.bias]}], lr=eta)
        for xb, yb in DataLoader(TensorDataset(Xt, yt), batch_size=N_BATCH, shuffle=True):
            opt.zero_grad()
            loss_fn(net(xb), yb).backward()
            opt.step()
        with torch.no_grad():
            for Xe, ye in ((Xt, yt), (Xvt, yvt)):
                scores = net(Xe)
                _ = loss_fn(scores, ye).item() + lam * float((net.weight**2).sum()), (scores.argmax(1) == ye).float()


def _torch_manual(X, y, Xv, yv, stacked: bool):
    import torch

    g = torch.Generator().manual_seed(0)
    Xt, yt, Xvt, yvt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(Xv), torch.from_numpy(yv)
    groups = [SETTINGS] if stacked else [[s] for s in SETTINGS]
    for group in groups:
        R = len(group)
        W, b = torch.randn(R * K, D, generator=g) * 0.1, torch.randn(R * K, generator=g) * 0.1
        eta = torch.tensor([e for _, e in group]).repeat_interleave(K)[:, None]
        lam = torch.tensor([lam for lam, _ in group]).repeat_interleave(K)[:, None]
        perm = torch.randperm(N, generator=g)
        for s in range(0, N, N_BATCH):
            idx = perm[s:s + N_BATCH]
            xb, yb = Xt.index_select(0, idx), yt.index_select(0, idx)
            G = torch.softmax(torch.addmm(b, xb, W.t()).view(-1, R, K), dim=2)
            G[torch.arange(idx.numel()), :, yb] -= 1
            G = G.view(-1, R * K) / idx.numel()
            W -= eta * (G.t() @ xb + 2 * lam * W)
            b -= eta[:, 0] * G.sum(0)
        for Xe, ye in ((Xt, yt), (Xvt, yvt)):
            scores = torch.addmm(b, Xe, W.t()).view(-1, R, K)
            _ = torch.nn.functional.cross_entropy(scores.transpose(1, 2), ye[:, None].expand(-1, R)).item()
            _ = (scores.argmax(2) == ye[:, None]).float().mean(0), (W**2).sum()


def peer_torch_manual(X, y, Xv, yv):
    _torch_manual(X, y, Xv, yv, stacked=False)


def peer_torch_stacked(X, y, Xv, yv):
    _torch_manual(X, y, Xv, yv, stacked=True)


def machine_rates() -> dict:
    """This machine's memory read bandwidth and float32 matrix-product rate, on one thread."""
    A = np.ones((N, D), np.float32)
    M = np.ones((2048, 2048), np.float32)
    with threadpool_limits(1):
        A.sum(), M @ M  # warm-up
        reads, products = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            A.sum()
            reads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            M @ M
            products.append(time.perf_counter() - t0)
    return {"read_bytes_per_s": A.nbytes / statistics.median(reads),
            "sgemm_flops_per_s": 2 * 2048**3 / statistics.median(products)}


def floor(rates: dict, runs: int = len(SETTINGS)) -> dict:
    """Seconds per run-epoch below which nothing can go: the work's FLOPs at the matrix-product rate, or the
    bytes it must read at the memory bandwidth (a sweep reads the data once for all its runs)."""
    flops = 2 * 2 * D * K * N + 2 * D * K * (N + N_VAL)  # forward and backward per sample, then evaluation
    bytes_read = 4 * D * (2 * N + N_VAL) / runs  # the samples of a batch, then of the evaluation, shared
    compute, memory = flops / rates["sgemm_flops_per_s"], bytes_read / rates["read_bytes_per_s"]
    return {"flops": flops, "bytes": bytes_read, "compute_seconds": compute, "memory_seconds": memory,
            "seconds": max(compute, memory), "bound": "compute" if compute >= memory else "memory"}


def time_gradcheck() -> dict[str, float]:
    """Seconds of the report's gradient check of all 30,730 parameters, and of the plain numerical gradient
    (every perturbed cost computed anew, one BLAS thread) that its numerical gradient speeds up."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((20, D)), np.eye(K)[rng.integers(0, K, 20)]
    W, b = rng.normal(0, 2, (K, D)), rng.normal(0, 2, K)

    def cost(W_, b_):
        return model.cross_entropy(W_, b_, X, Y, 0.01, grad=False).cost

    t0 = time.perf_counter()
    gradcheck.check_gradients(W, b, X, Y, lam=0.01, h=1e-5, method="centred")
    t1 = time.perf_counter()
    with threadpool_limits(1):
        gradcheck.numerical_gradients(cost, W, b, h=1e-5, method="centred")
    return {"check": t1 - t0, "plain": time.perf_counter() - t1}


def time_report(quick: bool, flops_per_s: float) -> tuple[float | None, dict | None]:
    """Wall time of ``python -m assignment1.report`` from an empty run store (the data already prepared), and
    what it trained (:func:`trained`; None for the quick report)."""
    with tempfile.TemporaryDirectory(prefix="a1-bench-") as tmp:
        cmd = [sys.executable, "-m", "assignment1.report", "--no-pdf"] + (["--quick"] if quick else [])
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env={**os.environ, "A1_REPORTS_DIR": tmp}, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if r.returncode != 0:
            print(f"report ({'quick' if quick else 'full'}) failed: {r.stderr.strip().splitlines()[-1:]}")
            return None, None
        return seconds, None if quick else trained(Path(tmp), flops_per_s, seconds)


def epoch_flops(n_train: int, n_val: int, evaluate_train: bool) -> int:
    """FLOPs of one run-epoch: the forward and the backward product of every training sample, then the
    evaluation's product of the validation data and, if ``evaluate_train``, of the training data."""
    return 2 * D * K * (2 * n_train + n_val + (n_train if evaluate_train else 0))


def trained(reports_dir: Path, flops_per_s: float, wall_seconds: float | None = None) -> dict:
    """The training a finished report in ``reports_dir`` did: its stored runs' own seconds, their run-epochs by
    kind, and the floor (their FLOPs at ``flops_per_s``). A run is a sweep member if another stored run could
    share its sweep (:func:`assignment1.sweep.shared`), else alone. The search's trials that were not stored
    (pruned, failed) are counted apart: their epochs and floor, not their seconds, which nothing records."""
    from assignment1.experiments import store

    sizes = {}  # val_size -> (n_train, n_val), from the data sets the report prepared
    for meta in (reports_dir / "runs").glob("data-*.json"):
        info = json.loads(meta.read_text())
        sizes[info["n_val"]] = info["n_train"], info["n_val"]
    runs = [store.read(path) for path in sorted((reports_dir / "runs").glob("*.npz"))]
    groups = collections.Counter((r.config.engine, sweep.shared(r.config)) for r in runs)
    epochs = {f"{kind}, {evaluated}": 0 for kind in ("sweep member", "alone")
              for evaluated in ("training set evaluated", "validation only")}
    flops, seconds = 0, 0.0
    for r in runs:
        cfg, n = r.config, len(r.history["epoch"])
        alone = cfg.engine == "plain" or groups[(cfg.engine, sweep.shared(cfg))] == 1
        epochs[f"{'alone' if alone else 'sweep member'}, "
               f"{'training set evaluated' if cfg.evaluate_train else 'validation only'}"] += n
        flops += n * epoch_flops(*sizes.get(cfg.val_size, (50_000 - cfg.val_size, cfg.val_size)), cfg.evaluate_train)
        seconds += r.seconds
    unstored = 0  # epochs of the search's trials that left no run: one intermediate value each
    db = reports_dir / "search" / "search.db"
    if db.exists():
        with contextlib.closing(sqlite3.connect(db)) as con:
            unstored = con.execute("SELECT COUNT(*) FROM trial_intermediate_values v JOIN trials t USING (trial_id) "
                                   "WHERE t.state IN ('PRUNED', 'FAIL')").fetchone()[0]
    trial = epoch_flops(*sizes.get(RunConfig.val_size, (50_000 - RunConfig.val_size, RunConfig.val_size)), False)
    return {"wall_seconds": wall_seconds, "runs": len(runs), "training_core_seconds": seconds,
            "run_epochs": epochs, "floor_core_seconds": flops / flops_per_s,
            "core_seconds_over_floor": seconds / (flops / flops_per_s) if flops else None,
            "unstored_trial_epochs": unstored, "unstored_trial_floor_seconds": unstored * trial / flops_per_s}


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def markdown(result: dict) -> str:
    e, r, f = result["per_run_epoch_seconds"], result["ratios"], result["floor"]
    g, p = result["gradcheck_seconds"], result["gradcheck_plain_seconds"]
    lines = ["# Benchmark", "", f"Generated by `make bench BENCH_ARGS=--markdown` on {result['machine']['cpu']} "
             f"({result['machine']['blas']}), numpy {result['machine']['numpy']}, torch "
             f"{result['machine'].get('torch', 'absent')}, one thread each. {result['rounds']} interleaved rounds "
             "after a warm-up; each round trains the four Table 1 settings for one epoch with every peer.", "",
             "| peer | seconds per run-epoch, median (range) | assignment1 / peer, median (range) |", "|---|---|---|"]
    for name, s in e.items():
        ratio = r.get(name)
        lines.append(f"| {name} | {s['median']:.3f} ({s['min']:.3f}-{s['max']:.3f}) | "
                     + (f"{ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f})" if ratio else "1") + " |")
    reports = result["report_seconds"]
    lines += ["", f"- floor per run-epoch: {f['seconds']:.3f} s, {f['bound']}-bound ({f['flops'] / 1e9:.1f} GFLOP at "
              f"{result['machine_rates']['sgemm_flops_per_s'] / 1e9:.0f} GFLOP/s = {f['compute_seconds']:.3f} s; "
              f"{f['bytes'] / 1e6:.0f} MB at {result['machine_rates']['read_bytes_per_s'] / 1e9:.1f} GB/s = "
              f"{f['memory_seconds']:.3f} s); assignment1 takes {e['assignment1']['median'] / f['seconds']:.2f}x it",
              f"- gradient check, all 30,730 parameters: {g['median']:.2f} s ({g['min']:.2f}-{g['max']:.2f}); "
              f"with the plain numerical gradient {p['median']:.2f} s ({p['min']:.2f}-{p['max']:.2f}), "
              f"ratio {result['gradcheck_ratio']['median']:.2f} ({result['gradcheck_ratio']['min']:.2f}-"
              f"{result['gradcheck_ratio']['max']:.2f})",
              "- report from an empty run store: " + ", ".join(
                  f"{k} {v:.0f} s" if v else f"{k} not run" for k, v in reports.items())]
    if result.get("report"):
        lines.append(report_line(result["report"]))
    return "\n".join(lines) + "\n"


def count_report(reports_dir: Path, wall_seconds: float | None) -> int:
    """Write what the finished report in ``reports_dir`` trained into bench.json's report block (a new file if
    there is none), at the product rate measured now."""
    if not (reports_dir / "runs").is_dir():
        print(f"{reports_dir} holds no run store (runs/): give the reports directory of a finished report")
        return 2
    block = trained(reports_dir, machine_rates()["sgemm_flops_per_s"], wall_seconds)
    out = paths.reports_dir() / "bench.json"
    result = json.loads(out.read_text()) if out.exists() else {}
    result["report"] = block
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(report_line(block))
    print(f"wrote the report block of {reports_dir} into {out}")
    return 0


def report_line(b: dict) -> str:
    """One line on what a full report trained, against its floor."""
    wall = f"{b['wall_seconds']:.0f} s wall, " if b["wall_seconds"] else ""
    epochs = ", ".join(f"{kind} {n:,}" for kind, n in b["run_epochs"].items())
    return (f"- full report from an empty run store: {wall}{b['runs']} stored runs trained in "
            f"{b['training_core_seconds']:.0f} core-seconds, {b['core_seconds_over_floor']:.2f}x their floor of "
            f"{b['floor_core_seconds']:.0f} (run-epochs: {epochs}; and {b['unstored_trial_epochs']:,} epochs of "
            f"search trials not stored, floor {b['unstored_trial_floor_seconds']:.0f} s, their seconds unrecorded)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (after one warm-up), at least 3")
    parser.add_argument("--skip-report", action="store_true", help="do not time the quick report")
    parser.add_argument("--full-report", action="store_true",
                        help="also time the full report from an empty run store (6-15 min) and count what it trained")
    parser.add_argument("--report-from", metavar="DIR", type=Path,
                        help="only count what the finished report in DIR trained, against this machine's product "
                             "rate, into bench.json's report block (no benchmark, no report run)")
    parser.add_argument("--report-wall", type=float, help="with --report-from: the wall seconds that report took")
    parser.add_argument("--skip-torch", action="store_true", help="leave the PyTorch peers out")
    parser.add_argument("--markdown", action="store_true", help="also rewrite docs/benchmark.md")
    args = parser.parse_args(argv)
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    if args.report_from is not None:
        return count_report(args.report_from, args.report_wall)

    peers = {"assignment1": peer_assignment1, "assignment1_plain": peer_assignment1_plain}
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "python": platform.python_version(), "numpy": np.__version__,
               "blas": ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})"
                                 for i in threadpool_info() if i["user_api"] == "blas")}
    if not args.skip_torch:
        try:
            import torch

            torch.set_num_threads(1)
            machine["torch"] = torch.__version__
            peers.update(torch_dataloader=peer_torch_dataloader, torch_manual=peer_torch_manual,
                         torch_stacked=peer_torch_stacked)
        except ImportError:
            print("torch is not installed (make bench installs it): its peers are left out")
    data = make_data()
    times: dict[str, list[float]] = {name: [] for name in peers}
    with threadpool_limits(1):
        for round_ in range(args.rounds + 1):
            for name, peer in peers.items():
                t0 = time.perf_counter()
                peer(*data)
                if round_:  # the first round warms up
                    times[name].append((time.perf_counter() - t0) / len(SETTINGS))
            print(f"round {round_}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in times.items() if round_), flush=True)
    ratios = {name: summary([a / b for a, b in zip(times["assignment1"], ts)])
              for name, ts in times.items() if name != "assignment1"}
    rates = machine_rates()
    gc = [time_gradcheck() for _ in range(3)]  # each round times both, one after the other
    report_seconds, report = {"quick": None, "full": None}, None
    for mode in [m for m, wanted in (("quick", not args.skip_report), ("full", args.full_report)) if wanted]:
        print(f"timing the {mode} report ...", flush=True)
        report_seconds[mode], block = time_report(mode == "quick", rates["sgemm_flops_per_s"])
        report = block or report
    result = {"per_run_epoch_seconds": {k: summary(v) for k, v in times.items()}, "samples": times,
              "ratios": ratios, "floor": floor(rates), "machine_rates": rates,
              "gradcheck_seconds": summary([t["check"] for t in gc]),
              "gradcheck_plain_seconds": summary([t["plain"] for t in gc]),
              "gradcheck_ratio": summary([t["check"] / t["plain"] for t in gc]),
              "report_seconds": report_seconds, "report": report, "rounds": args.rounds, "machine": machine}
    out = paths.reports_dir() / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"wrote {out}")
    if args.markdown:
        (paths.ROOT / "docs" / "benchmark.md").write_text(markdown(result))
        print("wrote docs/benchmark.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
