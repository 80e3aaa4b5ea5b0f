"""Wide tables: what a VAE step, the calibration's searches and a time budget cost as columns grow.

    python benchmarks/wide_tables.py                          # about 6 minutes on 2 cores
    python benchmarks/wide_tables.py --columns 30,100,300 --budget 120

No shared dataset has more than 24 columns, so the tables are generated: half categorical (2 to 11
classes), half numerical, every column tied to one hidden factor. Three parts:

* ``vae_step``: seconds of one VAE training step at batch 1,024 with tabgen's attention (torch's fused
  kernel beyond ``FUSED_ATTENTION_MIN_TOKENS`` columns) and with the attention written out at every
  width, as it was before; best of three.
* ``searches``: seconds of the calibration's Chow-Liu tree over the categorical columns and of every
  number's score parents, on 20,000 rows.
* ``budget``: a default fit of 5,000 rows of the widest table under ``--budget`` seconds: its wall
  seconds, and the VAE's and the denoiser's steps.

Results: ``<results-dir>/wide-tables/wide.json`` and ``README.md`` beside it. Times are one run on one
machine (named in the JSON); read them as ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import git_state  # noqa: E402
from speed import machine  # noqa: E402

SEARCH_ROWS = 20_000
STEP_BATCH = 1024


def wide_frame(rows: int, columns: int, seed: int = 0) -> pd.DataFrame:
    """``columns // 2`` categorical columns then as many numbers, each tied to one hidden factor."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=rows)
    data: dict[str, Any] = {}
    for i in range(columns // 2):
        k = int(rng.integers(2, 12))
        data[f"c{i}"] = [f"v{v}" for v in np.digitize(factor + rng.normal(0, 1.5, rows), np.linspace(-2, 2, k - 1))]
    for i in range(columns - columns // 2):
        data[f"x{i}"] = np.round(factor * rng.normal() + rng.gamma(2.0, size=rows), 3)
    return pd.DataFrame(data)


def encoded(df: pd.DataFrame):
    from tabgen.schema import infer_schema
    from tabgen.transform import TableTransform

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transform = TableTransform(infer_schema(df)).fit(df)
    return transform, transform.transform(df)


def vae_step_seconds(columns: int, written_out: bool) -> float:
    import torch

    import tabgen.vae
    from tabgen.config import SynthesizerConfig
    from tabgen.vae import VAE, vae_loss

    transform, table = encoded(wide_frame(STEP_BATCH, columns))
    config = SynthesizerConfig.for_device("cpu").for_table(table.x_num.shape[1], transform.cardinalities)
    torch.manual_seed(0)
    vae = VAE(table.x_num.shape[1], transform.cardinalities, config.vae, transform.value_levels_)
    x_num, x_cat = torch.tensor(table.x_num, dtype=torch.float32), torch.tensor(table.x_cat)
    observed, targets = vae.targets(x_num, torch.tensor(table.num_observed), x_cat)
    optimizer = torch.optim.Adam(vae.parameters(), 1e-3)
    kept = tabgen.vae.FUSED_ATTENTION_MIN_TOKENS
    tabgen.vae.FUSED_ATTENTION_MIN_TOKENS = 2**62 if written_out else kept
    try:
        best = float("inf")
        for _ in range(4):  # the first is a warm-up
            began = time.perf_counter()
            optimizer.zero_grad()
            vae_loss(x_num, observed, targets, *vae(x_num, x_cat)).total(1e-2).backward()
            optimizer.step()
            best = min(best, time.perf_counter() - began)
        return best
    finally:
        tabgen.vae.FUSED_ATTENTION_MIN_TOKENS = kept


def search_seconds(columns: int) -> dict[str, float]:
    import torch

    from tabgen.calibration import chow_liu_pairs, score_parents

    transform, table = encoded(wide_frame(SEARCH_ROWS, columns))
    classes, cards = torch.tensor(table.x_cat), transform.cardinalities
    began = time.perf_counter()
    chow_liu_pairs(classes, cards)
    tree = time.perf_counter() - began
    began = time.perf_counter()
    for j in range(table.x_num.shape[1]):
        score_parents(torch.tensor(table.x_num[:, j]), classes, cards)
    return {"chow_liu_seconds": tree, "score_parents_seconds": time.perf_counter() - began}


def budget_fit(columns: int, budget: float) -> dict[str, Any]:
    from tabgen import Synthesizer

    df = wide_frame(5000, columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        began = time.perf_counter()
        syn = Synthesizer(time_budget=budget, progress=False).fit(df)
        wall = time.perf_counter() - began
    return {"columns": columns, "rows": len(df), "budget": budget, "fit_seconds": wall,
            "vae_steps": syn.vae_result_.steps, "diffusion_steps": syn.diffusion_result_.steps}


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = ["# Wide tables", "", f"Generated by `benchmarks/wide_tables.py` on {m['cpu']} ({m['cpu_count']} cores), "
             f"commit {results['git']['commit'][:7]}. Generated tables: half categorical, half numerical.", "",
             f"| columns | VAE step s, batch {STEP_BATCH:,} | written-out attention s | ratio | Chow-Liu tree s "
             f"| score parents s ({SEARCH_ROWS:,} rows) |", "|---:|---:|---:|---:|---:|---:|"]
    for r in results["widths"]:
        lines.append(f"| {r['columns']} | {r['vae_step']:.3f} | {r['vae_step_written_out']:.3f} "
                     f"| {r['vae_step_written_out'] / r['vae_step']:.1f} | {r['chow_liu_seconds']:.2f} "
                     f"| {r['score_parents_seconds']:.2f} |")
    b = results["budget"]
    lines += ["", "Up to `FUSED_ATTENTION_MIN_TOKENS` (32) columns both run the written-out attention: their "
              "difference there is the machine's noise.", "", f"A default fit of {b['rows']:,} rows × {b['columns']} columns with a {b['budget']:.0f} s budget took "
              f"**{b['fit_seconds']:.0f} s** ({b['vae_steps']} VAE steps, {b['diffusion_steps']:,} denoiser steps).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--columns", default="30,100,300", help="table widths, comma-separated")
    parser.add_argument("--budget", type=float, default=120.0, help="time budget of the widest table's fit, seconds")
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    widths = [int(c) for c in args.columns.split(",")]
    results: dict[str, Any] = {"machine": machine(), "git": git_state(), "widths": []}
    for columns in widths:
        row = {"columns": columns, "vae_step": vae_step_seconds(columns, False),
               "vae_step_written_out": vae_step_seconds(columns, True), **search_seconds(columns)}
        print(row, flush=True)
        results["widths"].append(row)
    results["budget"] = budget_fit(max(widths), args.budget)
    print(results["budget"], flush=True)
    out = args.results_dir / "wide-tables"
    out.mkdir(parents=True, exist_ok=True)
    (out / "wide.json").write_text(json.dumps(results, indent=1))
    (out / "README.md").write_text(render(results))
    print(f"wrote {out}/README.md")


if __name__ == "__main__":
    main()
