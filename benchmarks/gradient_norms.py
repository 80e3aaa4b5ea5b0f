"""The denoiser's gradient norm at every step, before any bound scales it: where training spikes.

    python -m benchmarks.gradient_norms --dataset default --variants unclipped,defaults --results-dir benchmarks/results/xeon-amx

Each variant trains the denoiser on the dataset's cached VAE as ``benchmarks.ablation`` does (the
variant's changes, ``--steps`` steps, seed ``--seed``), one after the other, and records the norm of
every step's gradient before :class:`tabgen.gradient_clip.GradientClip` and the norm it left. The
table gives, per window of steps, the norms' median, 90th percentile and largest value, the steps the
bounds scaled down, and the variant's scores. Results go to ``results/gradient-norms/<dataset>.json``
and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.ablation import VARIANTS, run_variant, variant_names
from benchmarks.harness import MODEL_CACHE, add_dataset_arguments, commit_label, git_state, usable_cores, write_json

WINDOW = 2_000


def recorded_run(dataset_dir: Path, name: str, steps: int, seed: int, cache: Path) -> dict[str, Any]:
    """``run_variant``'s record, with the norms of each step's gradient before and after the bounds."""
    import torch

    from tabgen import gradient_clip

    before: list[float] = []
    after: list[float] = []
    clip = gradient_clip.GradientClip.__call__

    def recording(self: Any, params: list[torch.Tensor]) -> None:
        norm = torch.nn.utils.get_total_norm
        before.append(float(norm([p.grad for p in params if p.grad is not None])))
        clip(self, params)
        after.append(float(norm([p.grad for p in params if p.grad is not None])))

    gradient_clip.GradientClip.__call__ = recording
    try:
        record = run_variant(str(dataset_dir), name, steps, seed, usable_cores(), str(cache))
    finally:
        gradient_clip.GradientClip.__call__ = clip
    norms, kept = np.array(before), np.array(after)
    scaled = np.flatnonzero(kept < norms * (1 - 1e-4))
    record["windows"] = [{"from": lo, "median": float(np.median(w)), "p90": float(np.percentile(w, 90)), "max": float(w.max())}
                         for lo in range(0, len(norms), WINDOW) for w in [norms[lo:lo + WINDOW]]]
    record["scaled_steps"] = scaled.tolist()
    return record


def render(results: dict[str, Any]) -> str:
    variants = results["variants"]
    lines = [f"# Gradient norms of the denoiser on {results['dataset']}, seed {results['seed']}", "",
             f"Each variant trained {results['steps']} steps on the same cached VAE, one after the other, with the CPU "
             f"defaults of {commit_label(results.get('git')) or 'the commit that ran it'} changed as its row says. "
             f"Per {WINDOW:,} steps: the median · 90th percentile · largest norm of a step's gradient before any bound.", "",
             "| variant | changes | steps scaled down | Trend % | tree C2ST | vs held-out: C2ST | best epoch of |",
             "|---|---|---|---|---|---|---|"]
    for r in variants.values():
        shown = ", ".join(map(str, r["scaled_steps"][:8])) + (" …" if len(r["scaled_steps"]) > 8 else "")
        lines.append(f"| {r['variant']} | {r['changes'] or '—'} | {len(r['scaled_steps'])} ({shown}) | {r['trend']:.2f} | "
                     f"{r['c2st_tree']:.3f} | {r.get('c2st_holdout', float('nan')):.3f} | {r['best_epoch']} of {r['epochs']} |")
    lines += ["", "| steps from | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for i, window in enumerate(next(iter(variants.values()))["windows"]):
        cells = [" · ".join(f"{w[k]:.3g}" for k in ("median", "p90", "max"))
                 for w in (r["windows"][i] if i < len(r["windows"]) else None for r in variants.values()) if w]
        lines.append(f"| {window['from']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gradient_norms", description=__doc__.splitlines()[0])
    add_dataset_arguments(parser)
    parser.add_argument("--variants", default="unclipped,defaults", help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=24_000, help="denoiser steps per variant (the CPU defaults' limit)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=MODEL_CACHE)
    args = parser.parse_args(argv)
    names = variant_names(parser, args.variants)
    results = {"dataset": args.dataset, "seed": args.seed, "steps": args.steps, "git": git_state(), "variants": {}}
    out = args.results_dir / "gradient-norms" / args.dataset
    for name in names:
        results["variants"][name] = recorded_run(args.datasets_dir / args.dataset, name, args.steps, args.seed, args.cache)
        write_json(out.with_suffix(".json"), results)
        out.with_suffix(".md").write_text(render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
