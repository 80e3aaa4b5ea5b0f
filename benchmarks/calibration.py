"""Does each calibration map earn its place against the held-out rows? (issue 34, item 3)

    python -m benchmarks.calibration --tables adult,shoppers --out epyc-zen4     # about 15 minutes a table on 2 cores
    python -m benchmarks.calibration --tables adult --max-steps 200 --results-dir /tmp/c --out smoke

One default fit per table (seed 0). The fitted model then samples as many rows as the training
table (seed 1) with its whole calibration, with none, and with each of its four maps left out in
turn: the marginal logit biases, the marginal quantile maps of the numbers, the Chow-Liu pair biases,
and the conditional quantile maps. Every sample is written to CSV, read back and scored on all rows
against the training table and against the held-out rows. A map that helps against the training
table but not against the held-out rows fits the table, not the distribution.
(``calibration_maps.py`` adds the maps one by one to models fitted with a time budget, against the
training table only.)

Results: ``<results-dir>/calibration/<out>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

import numpy as np
import torch

from benchmarks.harness import (
    add_dataset_arguments,
    commit_label,
    cpu_defaults,
    fit_tabgen,
    floor_scores,
    git_state,
    load_dataset,
    machine,
    scored_against_both,
    write_results,
)


def variants(calibration: Any) -> dict[str, Any]:
    """The fitted calibration, none, and the calibration with each map left out."""
    if calibration is None:
        return {"none": None}
    return {
        "whole": calibration,
        "none": None,
        "without marginal biases": dataclasses.replace(
            calibration, logit_bias=[torch.zeros_like(b) for b in calibration.logit_bias]),
        "without marginal quantile maps": dataclasses.replace(
            calibration, score_quantiles=[np.array([]) for _ in calibration.score_quantiles]),
        "without pair biases": dataclasses.replace(calibration, pairs=[], pair_bias=[]),
        "without conditional quantile maps": dataclasses.replace(
            calibration, conditional_scores=[None] * len(calibration.conditional_scores)),
    }


COLUMNS = (("shape", "Shape %", 2), ("trend", "Trend %", 2), ("c2st_tree", "tree C2ST", 3),
           ("shape_holdout", "Shape % vs held-out", 2), ("trend_holdout", "Trend % vs held-out", 2),
           ("c2st_holdout", "tree C2ST vs held-out", 3))


def render(r: dict[str, Any]) -> str:
    lines = [f"# Calibration maps, each left out ({r['machine']['cpu']}, commit {commit_label(r['git'])})", "",
             f"`{r['command']}`, {r['machine']['usable_cores']} cores. One default fit per table, seed 0; each "
             "variant samples as many rows as the training table (seed 1), written to CSV and read back, all rows "
             "scored against the training table and against the held-out rows. The floor is the held-out rows "
             "scored against the training table.", "",
             "| table | calibration | " + " | ".join(label for _, label, _ in COLUMNS) + " |",
             "|---|---|" + "---:|" * len(COLUMNS)]
    for table, t in r["tables"].items():
        f = t["floor"]
        lines.append(f"| {table} | floor (held-out rows) | {f['shape']:.2f} | {f['trend']:.2f} | {f['c2st_tree']:.3f} | | | |")
        for name, v in t["variants"].items():
            lines.append(f"| {table} | {name} | " + " | ".join(
                "" if v.get(key) is None else f"{v[key]:.{digits}f}" for key, _, digits in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calibration", description=__doc__.splitlines()[0])
    add_dataset_arguments(parser)
    parser.add_argument("--tables", default="adult,shoppers", help="comma-separated shared tables")
    parser.add_argument("--out", required=True, help="name of the results files (say which machine)")
    parser.add_argument("--max-steps", type=int, default=None, help="cap both networks' steps (smoke tests only)")
    args = parser.parse_args()
    results: dict[str, Any] = {"command": "python -m benchmarks.calibration " + " ".join(sys.argv[1:]),
                               "machine": machine(), "git": git_state(), "tables": {}}
    for table in args.tables.split(","):
        ds = load_dataset(args.datasets_dir / table)
        syn, fit_s = fit_tabgen(ds, 0, config=cpu_defaults(args.max_steps))
        t = results["tables"][table] = {"fit_seconds": fit_s, "floor": floor_scores(ds, 0), "variants": {}}
        for name, calibration in variants(syn.codec_.calibration).items():
            syn.codec_.calibration = calibration
            t["variants"][name] = scored_against_both(ds, syn.sample(len(ds.train), seed=1), seed=0, schema=syn.schema_)
            print(table, name, t["variants"][name], flush=True)
    write_results(args.results_dir / "calibration", args.out, results, render(results))
    print(f"wrote {args.results_dir}/calibration/{args.out}.md")


if __name__ == "__main__":
    main()
