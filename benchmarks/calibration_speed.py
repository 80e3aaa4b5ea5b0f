"""How long the calibration's class biases take (``tabgen.calibration.argmax_bias``), against the way
they were computed before: each class's logits read as a column of the rows × classes table (at a
stride), the biased logits kept in a copy, and the two order statistics taken by two selections.

    python -m benchmarks.calibration_speed --machine xeon-amx     # about a minute on 2 cores

Random logits (normal, spread 6) of ``--rows`` rows and each of ``--classes`` classes, shares drawn
from a Dirichlet(0.5); the same inputs for both, one thread, best of ``--repeats``. Both reach the same
biases (to float rounding), which the results show as the gap of the classes' shares.
Results: ``<results-dir>/<machine>/calibration-speed/argmax-bias.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from benchmarks.harness import RESULTS_DIR, git_state, machine, write_results
from tabgen.calibration import ARGMAX_SWEEPS, BIAS_TOLERANCE, _gap, argmax_bias


def strided_argmax_bias(logits: torch.Tensor, shares: torch.Tensor) -> torch.Tensor:
    """``argmax_bias`` as it was before commit 6153c17: the baseline."""
    n, k = logits.shape
    bias = torch.zeros(k, dtype=logits.dtype)
    wins = (shares * n).round().long().tolist()
    shifted = logits.clone()
    top = shifted.topk(2, -1)
    values, indices = top.values, top.indices
    for _ in range(ARGMAX_SWEEPS):
        for c in range(k):
            rival = torch.where(indices[:, 0] == c, values[:, 1], values[:, 0])
            gap = rival - logits[:, c]
            if wins[c] == 0:
                new = gap.min() - 1
            elif wins[c] == n:
                new = gap.max() + 1
            else:
                new = 0.5 * (gap.kthvalue(wins[c]).values + gap.kthvalue(wins[c] + 1).values)
            shifted[:, c] += new - bias[c]
            bias[c] = new
            stale = (indices == c).any(-1) | (shifted[:, c] > values[:, 1])
            if stale.any():
                top = shifted[stale].topk(2, -1)
                values[stale], indices[stale] = top.values, top.indices
        if _gap(torch.bincount(shifted.argmax(-1), minlength=k) / n, shares) < BIAS_TOLERANCE:
            break
    return bias


def timed(fit, logits: torch.Tensor, shares: torch.Tensor, repeats: int) -> dict[str, float]:
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        bias = fit(logits, shares)
        best = min(best, time.perf_counter() - began)
    won = torch.bincount((logits + bias).argmax(-1), minlength=logits.shape[1]) / len(logits)
    return {"seconds": best, "share_gap": float((won - shares).abs().sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--machine", required=True, help="names the results folder (say which CPU)")
    parser.add_argument("--rows", type=int, default=16_384)
    parser.add_argument("--classes", default="100,1000")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, Any] = {"machine": machine(), "git": git_state(), "rows": args.rows, "classes": {}}
    lines = [f"# argmax_bias, {args.rows:,} rows, one thread ({results['machine'].get('cpu', args.machine)})", "",
             "`python -m benchmarks.calibration_speed --machine " + args.machine + "`", "",
             "| classes | before: s · share gap | now: s · share gap | ratio |", "|---:|---:|---:|---:|"]
    for k in map(int, args.classes.split(",")):
        torch.manual_seed(k)
        logits = torch.randn(args.rows, k) * 6
        shares = torch.distributions.Dirichlet(torch.full((k,), 0.5)).sample()
        before = timed(strided_argmax_bias, logits, shares, args.repeats)
        now = timed(argmax_bias, logits, shares, args.repeats)
        results["classes"][k] = {"before": before, "now": now}
        lines.append(f"| {k:,} | {before['seconds']:.2f} · {before['share_gap']:.4f} | {now['seconds']:.2f} · "
                     f"{now['share_gap']:.4f} | {before['seconds'] / now['seconds']:.2f} |")
    write_results(RESULTS_DIR / args.machine / "calibration-speed", "argmax-bias", results, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
