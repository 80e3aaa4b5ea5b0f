"""The forward processes side by side (issue 36): EDM's, VP, VE, DDPM and the graph-coupled one, at one time budget.

    python -m benchmarks.processes --machine epyc-zen4 --budget 120            # six tables, five processes
    python -m benchmarks.processes --machine smoke --tables adult --budget 20 --max-rows 2000
    python -m benchmarks.processes --machine epyc-zen4 --processes graph:heun,graph:dpm2m --out graph-solvers
    python -m benchmarks.processes --machine epyc-zen4 --tables adult --processes graph:dpm2m+smoothness --out graph-regularisers

For each table and process, seed 0, one fit after the other: tabgen with the defaults a user gets and
``DiffusionConfig.process`` set (``process:solver`` also sets ``SamplerConfig.solver``, and ``+name``
turns on a graph regulariser at the issue's weight), under
``--budget`` seconds (equal time, so a process that trains slower pays for it), sampling as many rows as
the training table (timed). The rows are written to CSV and read back, and all of them scored against
the training table and against the held-out rows. ``--models DIR`` keeps each model as
``DIR/<process>/<table>.tabgen``, which ``benchmarks.solvers --models DIR/<process>`` reads.
Results: ``<results-dir>/<machine>/processes/<out>.json`` and ``.md``, rewritten after every fit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .harness import (
    BENCHMARKS_DIR,
    DATASETS_DIR,
    RESULTS_DIR,
    Dataset,
    commit_label,
    cpu_defaults,
    fit_tabgen,
    floor_scores,
    git_state,
    load_dataset,
    machine,
    parsed_dates,
    read_back,
    rules_kept_table,
    scored_against_both,
    timed,
    write_results,
)

TABLES = ("adult", "shoppers", "magic", "default", "beijing", "superstore")
#: The graph process with DPM-Solver: DDIM's first-order steps lose its fast modes (docs/processes.md).
PROCESSES = ("edm", "vp", "ve", "ddpm", "graph:dpm2m")
#: The graph process's penalties on Ŝ₀ at the issue's weights, named as ``graph:dpm2m+smoothness``.
GRAPH_REGULARISERS = {"smoothness": 0.1, "energy": 0.1, "alignment": 0.01}


def run(ds: Dataset, spec: str, args: argparse.Namespace) -> dict[str, Any]:
    config = cpu_defaults()
    setting, *regularisers = spec.split("+")
    config.diffusion.process, _, solver = setting.partition(":")
    config.sampler.solver = solver or config.sampler.solver
    for name in regularisers:
        setattr(config.diffusion, f"graph_{name}", GRAPH_REGULARISERS[name])
    syn, fit_s = fit_tabgen(ds, args.seed, time_budget=args.budget, config=config)
    if args.models is not None:
        (args.models / spec).mkdir(parents=True, exist_ok=True)
        syn.save(args.models / spec / f"{ds.name}.tabgen")
    rows, sample_s = timed(lambda: syn.sample(len(ds.train), seed=args.seed))
    back = read_back(rows, ds, BENCHMARKS_DIR / "synthetic" / "processes", spec.replace(":", "-"))
    return {"fit_seconds": fit_s, "sample_seconds": sample_s, "diffusion_steps": syn.diffusion_result_.steps,
            "scores": scored_against_both(ds, back, seed=args.seed, schema=ds.schema(), round_tripped=True, rules=True)}


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# Forward processes at a {results['budget']:g} s budget ({results['machine']['cpu']}, "
             f"commit {commit_label(results['git'])})", "", f"`{results['command']}`: seed 0, all rows scored against "
             "the training table and against the held-out rows (Shape %, Trend %, tree C2ST).", "",
             "| table | process | fit s | denoiser steps | sample s | Shape | Trend | C2ST | vs held-out: Shape | Trend | C2ST |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, r in results["runs"].items():
        table, process = key.split("/")
        s, f = r["scores"], results["floors"][table]
        lines.append(f"| {table} | {process} | {r['fit_seconds']:.0f} | {r['diffusion_steps']:,} | {r['sample_seconds']:.1f} | "
                     f"{s['shape']:.2f} | {s['trend']:.2f} | {s['c2st_tree']:.3f} | {s['shape_holdout']:.2f} | "
                     f"{s['trend_holdout']:.2f} | {s['c2st_holdout']:.3f} |")
        if process == results["processes"][-1]:
            lines.append(f"| {table} | floor (held-out rows) | | | | {f['shape']:.2f} | {f['trend']:.2f} | "
                         f"{f['c2st_tree']:.3f} | | | |")
    return "\n".join(lines + rules_tables(results)) + "\n"


def rules_tables(results: dict[str, Any]) -> list[str]:
    """Per table, the rules found in it that some process's rows do not all keep (an exact rule is kept by
    construction, so those are the partial ones: ties and granularities, a share to match)."""
    lines = []
    for table in dict.fromkeys(key.split("/")[0] for key in results["runs"]):
        runs = {p: results["runs"][f"{table}/{p}"]["scores"].get("rules_kept") for p in results["processes"]
                if f"{table}/{p}" in results["runs"]}
        if not all(runs.values()):
            continue  # a run from before the rules were recorded
        first = next(iter(runs.values()))
        shown = [i for i in range(len(first)) if any(r[i]["synthetic"] != 1.0 for r in runs.values())]
        if shown:
            lines += ["", f"**{table}**: the rules found in the training table that not every process keeps in all "
                      "rows, and the share of rows keeping each", "", *rules_kept_table(runs, shown)]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.processes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--machine", required=True, help="a label for this machine: the results folder's name")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--processes", default=",".join(PROCESSES))
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of fitting per table and process")
    parser.add_argument("--models", type=Path, default=None, help="a folder to keep the fitted models in")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=None, help="cap each table's rows (smoke tests only)")
    parser.add_argument("--out", default="latest")
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    processes = args.processes.split(",")
    results = {"machine": machine(), "git": git_state(), "budget": args.budget, "processes": processes, "runs": {}, "floors": {},
               "command": "python -m benchmarks.processes " + " ".join(sys.argv[1:] if argv is None else argv)}
    for table in args.tables.split(","):
        ds = parsed_dates(load_dataset(args.datasets_dir / table, max_rows=args.max_rows))
        results["floors"][table] = floor_scores(ds, args.seed)
        for process in processes:
            results["runs"][f"{table}/{process}"] = run(ds, process, args)
            write_results(args.results_dir / args.machine / "processes", args.out, results, markdown(results))
            print(f"{table} {process}: {results['runs'][f'{table}/{process}']['scores']}", flush=True)


if __name__ == "__main__":
    main()
