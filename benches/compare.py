"""Paired A/B of ``benches/hot_paths.py``: the same bench code against two checkouts, in
interleaved rounds (A, B, B, A, …) so that drift of the machine hits both alike.

    python benches/compare.py --base /path/to/old/checkout [--head .] [--rounds 7] [--jobs 10000]

Each checkout needs its Rust core built in place (``maturin develop``). Prints, per metric, the
median jobs/s of each side and the median of the per-round ratios head/base.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one(checkout: Path, jobs: int, backend: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(checkout / "python"))
    out = subprocess.run(
        [sys.executable, str(HERE / "hot_paths.py"), "--jobs", str(jobs), "--backend", backend],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--head", type=Path, default=HERE.parent)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--backend", choices=["postgres", "redis", "both"], default="both")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"base": [], "head": []}
    for r in range(args.rounds):
        order = ["base", "head"] if r % 2 == 0 else ["head", "base"]
        for side in order:
            runs[side].append(one(getattr(args, side), args.jobs, args.backend))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    print(f"{args.rounds} interleaved rounds of {args.jobs} jobs; jobs/s, medians")
    print(f"{'metric':<22}{'base':>10}{'head':>10}{'head/base':>11}{'range of ratios':>20}")
    for metric in runs["base"][0]:
        base = [r[metric] for r in runs["base"]]
        head = [r[metric] for r in runs["head"]]
        ratios = [h / b for h, b in zip(head, base, strict=True)]
        print(
            f"{metric:<22}{statistics.median(base):>10,.0f}{statistics.median(head):>10,.0f}"
            f"{statistics.median(ratios):>10.2f}x{min(ratios):>10.2f}-{max(ratios):.2f}x"
        )


if __name__ == "__main__":
    main()
