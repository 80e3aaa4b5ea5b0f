"""Wide tables: what a VAE step, the calibration's searches and a time budget cost as columns grow.

    python -m benchmarks.wide_tables                          # about 6 minutes on 2 cores
    python -m benchmarks.wide_tables --columns 30,100,300 --budget 120
    python -m benchmarks.wide_tables --real [--duel]

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

``--real`` asks instead what the VAE's batch does on a wide table of real columns: the five shared
tables side by side, twice (different rows of each; 160 columns, 12,330 rows), so that relations
within each block are real and those between blocks are none. Two parts:

* ``vae_batch``: the VAE alone, trained for ``--vae-seconds`` at each of ``--vae-batches`` rows per
  batch: its steps and best validation reconstruction (the same held-out rows for each).
* ``fit``: a default fit under ``--real-budget`` seconds with each of ``--fit-batches`` rows per VAE
  batch, scored against the table: Shape, Trend, tree C2ST.

Results: ``<results-dir>/wide-tables/real.json`` and ``real.md``. With ``--duel`` as well, only the
duel of ``speed.py`` runs on that table instead (TabularARGN's defaults, then tabgen with a budget of
TabularARGN's fit seconds, seed 0): ``real-duel.json`` and ``real-duel.md``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.harness import DATASETS_DIR, RESULTS_DIR, Dataset, fit_tabgen, git_state, headline, load_dataset, machine, score
from benchmarks.peers import duel

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
    layout = transform.layout_
    config = SynthesizerConfig.for_device("cpu").for_table(layout.n_numerical, layout.cardinalities)
    torch.manual_seed(0)
    vae = VAE.for_layout(layout, config.vae)
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
    classes, cards = torch.tensor(table.x_cat), transform.layout_.cardinalities
    began = time.perf_counter()
    chow_liu_pairs(classes, cards)
    tree = time.perf_counter() - began
    began = time.perf_counter()
    for j in range(table.x_num.shape[1]):
        score_parents(torch.tensor(table.x_num[:, j]), classes, cards)
    return {"chow_liu_seconds": tree, "score_parents_seconds": time.perf_counter() - began}


def budget_fit(columns: int, budget: float) -> dict[str, Any]:
    df = wide_frame(5000, columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # No column kinds given: the Synthesizer infers them, as a user's fit of this frame would.
        syn, wall = fit_tabgen(Dataset("wide", {}, df, None, "", [], []), 0, time_budget=budget)
    return {"columns": columns, "rows": len(df), "budget": budget, "fit_seconds": wall,
            "vae_steps": syn.vae_result_.steps, "diffusion_steps": syn.diffusion_result_.steps}


def shared_side_by_side(datasets_dir: Path, copies: int = 2, rows: int = 12_330):
    """``copies`` draws of ``rows`` rows of each shared table, side by side (column names prefixed), as
    one benchmark dataset."""
    parts, categorical, numerical = [], [], []
    for copy in range(copies):
        for name in ("adult", "default", "shoppers", "magic", "beijing"):
            ds = load_dataset(datasets_dir / name)
            pick = np.random.default_rng(copy).permutation(len(ds.train))[:rows]
            parts.append(ds.train.iloc[pick].reset_index(drop=True).add_prefix(f"{name}{copy}."))
            categorical += [f"{name}{copy}.{c}" for c in ds.categorical]
            numerical += [f"{name}{copy}.{c}" for c in ds.numerical]
    return Dataset(f"shared-side-by-side-x{copies}", {}, pd.concat(parts, axis=1), None, "none", categorical, numerical)


def vae_alone(df: pd.DataFrame, batch: int, seconds: float) -> dict[str, Any]:
    import torch

    from tabgen.config import SynthesizerConfig
    from tabgen.fit_plan import PhaseLimits
    from tabgen.train import train_vae
    from tabgen.vae import VAE

    transform, table = encoded(df)
    tensors = table.to_tensors(torch.device("cpu"))
    held_out = torch.randperm(len(df), generator=torch.Generator().manual_seed(0))
    val, train = held_out[: len(df) // 10], held_out[len(df) // 10:]
    config = SynthesizerConfig.for_device("cpu").vae
    config.batch_size = batch
    torch.manual_seed(0)
    vae = VAE.for_layout(transform.layout_, config)
    # Trained for the seconds given, with no step limit (the epoch limit still holds).
    r = train_vae(vae, tuple(t[train] for t in tensors), tuple(t[val] for t in tensors), config,
                  PhaseLimits(deadline=time.monotonic() + seconds, max_steps=None), progress=False)
    return {"batch": batch, "seconds": r.seconds, "steps": r.steps, "best_reconstruction": r.best_loss}


def real_fit(ds, budget: float, batch: int) -> dict[str, Any]:
    """A default fit of ``ds`` with ``batch`` rows per VAE batch, scored as ``speed.py``'s duel scores."""
    from tabgen import SynthesizerConfig

    config = SynthesizerConfig.for_device("cpu")
    config.vae.batch_size = batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        syn, wall = fit_tabgen(ds, 0, time_budget=budget, config=config)
        scores = headline(score(ds, syn.sample(len(ds.train), seed=1), seed=0, schema=ds.schema()))
    return {"vae_batch": syn.config_.vae.batch_size, "fit_seconds": wall, "vae_steps": syn.vae_result_.steps,
            "vae_reconstruction": syn.vae_result_.best_loss, "diffusion_steps": syn.diffusion_result_.steps, **scores}


def render_real(results: dict[str, Any]) -> str:
    m, columns = results["machine"], results["columns"]
    lines = ["# A wide table of real columns", "",
             (f"Generated by `benchmarks/wide_tables.py --real` on {m['cpu']} ({m['cpu_count']} cores), commit "
             f"{results['git']['commit'][:7]}: the five shared tables side by side, twice ({columns} columns, "
             f"{results['rows']:,} rows). One seed."), "",
             f"The VAE alone, {results['vae_seconds']:.0f} s each:", "",
             "| rows per batch | steps | best validation reconstruction |", "|---:|---:|---:|"]
    lines += [f"| {r['batch']:,} | {r['steps']:,} | {r['best_reconstruction']:.4f} |" for r in results["vae_batch"]]
    lines += ["", f"Default fits with a {results['budget']:.0f} s budget, scored against the table:", "",
              "| VAE batch | fit s | VAE steps | VAE reconstruction | denoiser steps | Shape % | Trend % | tree C2ST |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["fit"]:
        lines.append(f"| {r['vae_batch']:,} rows | {r['fit_seconds']:.0f} | {r['vae_steps']:,} | {r['vae_reconstruction']:.4f} "
                     f"| {r['diffusion_steps']:,} | {r['shape']:.2f} | {r['trend']:.2f} | {r['c2st_tree']:.3f} |")
    return "\n".join(lines) + "\n"


def render_duel(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = ["# A wide table of real columns: the duel", "",
             (f"Generated by `benchmarks/wide_tables.py --real --duel` on {m['cpu']} ({m['cpu_count']} cores), commit "
             f"{results['git']['commit'][:7]}: the five shared tables side by side, twice ({results['columns']} columns, "
             f"{results['rows']:,} rows), scored against the table. Seed 0."), "",
             "| model | fit s | Shape % | Trend % | tree C2ST |", "|---|---:|---:|---:|---:|"]
    for who, label in (("tabular_argn", "TabularARGN (defaults)"), ("tabgen", "tabgen, time budget = TabularARGN's fit seconds")):
        r = results["mean"][who]
        lines.append(f"| {label} | {r['fit_seconds']:.0f} | {r['shape']:.2f} | {r['trend']:.2f} | {r['c2st_tree']:.3f} |")
    return "\n".join(lines) + "\n"


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = ["# Wide tables", "", (f"Generated by `benchmarks/wide_tables.py` on {m['cpu']} ({m['cpu_count']} cores), "
             f"commit {results['git']['commit'][:7]}. Generated tables: half categorical, half numerical."), "",
             (f"| columns | VAE step s, batch {STEP_BATCH:,} | written-out attention s | ratio | Chow-Liu tree s "
             f"| score parents s ({SEARCH_ROWS:,} rows) |"), "|---:|---:|---:|---:|---:|---:|"]
    for r in results["widths"]:
        lines.append(f"| {r['columns']} | {r['vae_step']:.3f} | {r['vae_step_written_out']:.3f} "
                     f"| {r['vae_step_written_out'] / r['vae_step']:.1f} | {r['chow_liu_seconds']:.2f} "
                     f"| {r['score_parents_seconds']:.2f} |")
    b = results["budget"]
    lines += ["", ("Up to `FUSED_ATTENTION_MIN_TOKENS` (32) columns both run the written-out attention: their "
              "difference there is the machine's noise."), "",
              (f"A default fit of {b['rows']:,} rows × {b['columns']} columns with a {b['budget']:.0f} s budget took "
              f"**{b['fit_seconds']:.0f} s** ({b['vae_steps']} VAE steps, {b['diffusion_steps']:,} denoiser steps)."), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.wide_tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("--columns", default="30,100,300", help="table widths, comma-separated")
    parser.add_argument("--budget", type=float, default=120.0, help="time budget of the widest table's fit, seconds")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--real", action="store_true", help="the shared tables side by side instead (see above)")
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    parser.add_argument("--vae-seconds", type=float, default=180.0)
    parser.add_argument("--vae-batches", default="1024,128")
    parser.add_argument("--real-budget", type=float, default=300.0)
    parser.add_argument("--fit-batches", default="178,1024")
    parser.add_argument("--duel", action="store_true", help="with --real: only the duel against TabularARGN")
    args = parser.parse_args()
    out = args.results_dir / "wide-tables"
    out.mkdir(parents=True, exist_ok=True)
    if args.real and args.duel:
        ds = shared_side_by_side(args.datasets_dir)
        results = {"machine": machine(), "git": git_state(), "columns": ds.train.shape[1], "rows": len(ds.train),
                   **duel(ds, [0])}
        (out / "real-duel.json").write_text(json.dumps(results, indent=1))
        (out / "real-duel.md").write_text(render_duel(results))
        print(f"wrote {out}/real-duel.md")
        return
    if args.real:
        ds = shared_side_by_side(args.datasets_dir)
        df = ds.train
        results = {"machine": machine(), "git": git_state(), "columns": df.shape[1], "rows": len(df),
                   "vae_seconds": args.vae_seconds, "budget": args.real_budget, "vae_batch": [], "fit": []}
        for batch in (int(b) for b in args.vae_batches.split(",")):
            results["vae_batch"].append(vae_alone(df, batch, args.vae_seconds))
            print(results["vae_batch"][-1], flush=True)
        for batch in (int(b) for b in args.fit_batches.split(",")):
            results["fit"].append(real_fit(ds, args.real_budget, batch))
            print(results["fit"][-1], flush=True)
        (out / "real.json").write_text(json.dumps(results, indent=1))
        (out / "real.md").write_text(render_real(results))
        print(f"wrote {out}/real.md")
        return
    widths = [int(c) for c in args.columns.split(",")]
    results: dict[str, Any] = {"machine": machine(), "git": git_state(), "widths": []}
    for columns in widths:
        row = {"columns": columns, "vae_step": vae_step_seconds(columns, False),
               "vae_step_written_out": vae_step_seconds(columns, True), **search_seconds(columns)}
        print(row, flush=True)
        results["widths"].append(row)
    results["budget"] = budget_fit(max(widths), args.budget)
    print(results["budget"], flush=True)
    (out / "wide.json").write_text(json.dumps(results, indent=1))
    (out / "README.md").write_text(render(results))
    print(f"wrote {out}/README.md")


if __name__ == "__main__":
    main()
