"""Benchmark of the recommend scoring core (part a): ``top_n_blocked`` against the machine's matrix-product peak.

    nice -n 10 .venv/bin/python benchmarks/recommend.py [--customers 200000] [--articles 20000] [--dim 64] [--n 12]
        [--threads 2] [--block-rows 4096] [--max-per-product 2] [--exclusions 5] [--peak-repeats 5] [--seed 0]
        [--omp-wait-policy passive|active|inherit] [--device cpu|cuda]

Data (seeded, ``numpy.random.default_rng(--seed)``): customer and article vectors from a standard normal, float32;
product codes for articles in id order, in runs of 1 to 9 articles (about 5 per product); per customer 0 to
``--exclusions`` random excluded articles (CSR). In one process, with ``torch.set_num_threads(--threads)``:

``--device cuda`` runs the peak, the scoring core and the blocked product on the GPU (inputs start on the host,
as in the recommend job, and their copy to the GPU is inside the scoring core's time but not the blocked product's,
whose inputs are moved before its timer starts; results come back to the host, so each timed call ends
synchronised; TF32 stays off, PyTorch's default, so the products are full float32).

- **peak**: float32 ``torch.mm`` of two 4096 x 4096 matrices (on ``--device``), median of ``--peak-repeats`` timed repeats after one
  untimed one, measured before and after the scoring runs; the fraction uses the median of all of them.
- **scoring core**: one untimed warm-up call on the first block, then one timed ``top_n_blocked`` call over all
  customers without a cap and one with ``max_per_product``, both with the exclusions. pairs/s = C*A / s,
  GFLOP/s = 2*C*A*d / s (the matrix product only). The calls pass ``profile=``, which times each phase with
  ``perf_counter`` (matmul; mask = writing -inf at excluded pairs; topk = ``torch.topk`` of the pool; select =
  re-sort, cap and write-out of the pool; exact = full sorts of the rows that needed one) and counts the rows
  that needed a larger pool or a full sort.
- **blocked matmul alone** (the extra run): the same padded row blocks and ``torch.mm`` into one reused buffer,
  nothing else: the ceiling of the scoring core at this shape.

``--omp-wait-policy passive`` (default) sets ``OMP_WAIT_POLICY=PASSIVE`` before torch is imported: on a CPU shared
with other busy processes, spin-waiting OpenMP threads stall each parallel region for a scheduler time slice (see
benchmarks/train.py). Prints the conditions and a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--block-rows", type=int, default=4096)
    parser.add_argument("--max-per-product", type=int, default=2)
    parser.add_argument("--exclusions", type=int, default=5, help="at most this many excluded articles per customer")
    parser.add_argument("--peak-repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--omp-wait-policy", choices=("passive", "active", "inherit"), default="passive")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    if args.omp_wait_policy != "inherit":
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    run(args)


def run(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from fashion_meta.recommend import scoring
    from fashion_meta.recommend.scoring import top_n_blocked

    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is available")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    c, a, d, n = args.customers, args.articles, args.dim, args.n
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average {os.getloadavg()}, device {dev}"
          + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""))
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((c, d), dtype=np.float32)
    y = rng.standard_normal((a, d), dtype=np.float32)
    codes = np.repeat(np.arange(a), rng.integers(1, 10, size=a))[:a]
    lengths = rng.integers(0, args.exclusions + 1, size=c)
    exclude = (np.r_[0, np.cumsum(lengths)], rng.integers(0, a, size=int(lengths.sum())))
    print(f"{c} customers x {a} articles x {d}-d, n={n}, block_rows={args.block_rows}, {codes.max() + 1} products "
          f"(largest {np.bincount(codes).max()}), {lengths.sum()} exclusions")

    def peak() -> list[float]:
        p, q = torch.randn(4096, 4096, device=dev), torch.randn(4096, 4096, device=dev)
        torch.mm(p, q)
        sync()
        times = []
        for _ in range(args.peak_repeats):
            start = time.perf_counter()
            torch.mm(p, q)
            sync()
            times.append(time.perf_counter() - start)
        return [2 * 4096**3 / t / 1e9 for t in times]

    peaks = peak()
    print(f"peak before: median {statistics.median(peaks):.1f} GFLOP/s {[round(g, 1) for g in peaks]}")
    top_n_blocked(x[:args.block_rows], y, n, exclude=None, block_rows=args.block_rows, device=dev)  # warm-up

    rows = []
    for label, cap in (("no cap", None), (f"cap {args.max_per_product} per product", args.max_per_product)):
        profile: dict[str, float] = {}
        start = time.perf_counter()
        result = top_n_blocked(x, y, n, exclude=exclude, product_codes=codes, max_per_product=cap,
                               block_rows=args.block_rows, device=dev, profile=profile)
        seconds = time.perf_counter() - start
        check(result, exclude, codes, cap, n)
        rows.append((label, seconds, profile))
        print(f"{label}: {seconds:.1f} s, phases {({k: round(v, 1) for k, v in profile.items()})}")

    # The extra run: the blocked matrix product alone, with the same padding and buffer as the scoring core.
    xt, yt = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev).T
    block = -(-args.block_rows // scoring._ROW_ALIGN) * scoring._ROW_ALIGN
    buffer = torch.empty((min(block, -(-c // scoring._ROW_ALIGN) * scoring._ROW_ALIGN), a), device=dev)
    sync()
    start = time.perf_counter()
    for lo in range(0, c, block):
        part = xt[lo:lo + block]
        padded = -(-part.shape[0] // scoring._ROW_ALIGN) * scoring._ROW_ALIGN
        left = torch.zeros((padded, d), device=dev)
        left[:part.shape[0]] = part
        torch.mm(left, yt, out=buffer[:padded])
    sync()
    matmul_only = time.perf_counter() - start

    after = peak()
    print(f"peak after: median {statistics.median(after):.1f} GFLOP/s {[round(g, 1) for g in after]}")
    peak_gflops = statistics.median(peaks + after)
    pairs = c * a
    print(f"load average {os.getloadavg()}\n")
    print("| run | seconds | pairs/s | GFLOP/s | of peak | matmul s | mask s | topk s | select s | exact s "
          "| rows retried / sorted |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, seconds, profile in rows:
        gflops = 2 * pairs * d / seconds / 1e9
        phases = " | ".join(f"{profile.get(k, 0.0):.1f}" for k in ("matmul", "mask", "topk", "select", "exact"))
        print(f"| {label} | {seconds:.1f} | {pairs / seconds / 1e6:,.0f}M | {gflops:.1f} | "
              f"{gflops / peak_gflops:.0%} | {phases} | {profile.get('retried_rows', 0):,} / "
              f"{profile.get('sorted_rows', 0):,} |")
    gflops = 2 * pairs * d / matmul_only / 1e9
    print(f"| blocked matmul alone | {matmul_only:.1f} | {pairs / matmul_only / 1e6:,.0f}M | {gflops:.1f} | "
          f"{gflops / peak_gflops:.0%} | {matmul_only:.1f} | | | | | |")
    print(f"\npeak (torch.mm 4096^2, median of {len(peaks + after)}): {peak_gflops:.1f} GFLOP/s")


def check(result, exclude, codes, cap, n) -> None:
    """Every row full, no excluded article, the cap kept (on the first 1000 rows)."""
    import numpy as np

    assert (result.counts == n).all(), "some row has fewer than n articles"
    indptr, ind = exclude
    for row in range(min(1000, len(result.counts))):
        picked = result.indices[row]
        assert not np.isin(picked, ind[indptr[row]:indptr[row + 1]]).any()
        if cap is not None:
            assert np.bincount(codes[picked]).max() <= cap
        assert (np.diff(result.scores[row]) <= 0).all()


if __name__ == "__main__":
    main()
