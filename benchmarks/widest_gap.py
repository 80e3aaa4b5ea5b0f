"""What an order's widest gap (``Order.widest_gap``) changes in a default fit's rows: one fit per table,
its rows sampled with each order's widest gap and without (the same model and seed), both scored on all
rows against the training table and the held-out rows.

    python -m benchmarks.widest_gap --machine xeon-amx --tables magic,beijing
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from .harness import (
    DATASETS_DIR,
    RESULTS_DIR,
    commit_label,
    fit_tabgen,
    git_state,
    load_dataset,
    machine,
    parsed_dates,
    round_trip,
    scored_against_both,
    write_results,
)


def compare(name: str, datasets: Path) -> dict:
    from tabgen.rules.kinds import Order

    ds = parsed_dates(load_dataset(datasets / name))
    syn, seconds = fit_tabgen(ds, 0)
    found = syn.rules_.rules
    variants = {"widest gap": found, "no widest gap": [replace(r, widest_gap=None) if isinstance(r, Order) else r for r in found]}
    rows, scores = {}, {}
    for label, rules in variants.items():
        syn.rules_.rules = rules
        rows[label] = round_trip(syn.sample(len(ds.train), seed=1), ds)
        scores[label] = scored_against_both(ds, rows[label], seed=0)
    changed = (rows["widest gap"].astype(str) != rows["no widest gap"].astype(str)).any(axis=1).mean()
    return {"fit_seconds": seconds, "orders": {r.name: r.widest_gap for r in found if isinstance(r, Order)},
            "rows_changed": float(changed), "scores": scores}


def markdown(results: dict) -> str:
    lines = [f"# An order's widest gap, on and off ({results['machine']['cpu']}, {commit_label(results['git'])})", "",
             f"`{results['command']}`: one default fit per table (seed 0), its rows sampled at seed 1 with and without each "
             "order's widest gap, all rows scored (Trend % · tree C2ST).", "",
             "| table | orders (widest gap) | rows changed | with: vs training | vs held-out | without: vs training "
             "| vs held-out |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for table, r in results["tables"].items():
        on, off = r["scores"]["widest gap"], r["scores"]["no widest gap"]
        orders = "; ".join(f"`{n}` ({g:.4g})" for n, g in r["orders"].items())
        lines.append(f"| {table} | {orders} | {100 * r['rows_changed']:.2f} % | {on['trend']:.2f} · {on['c2st_tree']:.3f} | "
                     f"{on['trend_holdout']:.2f} · {on['c2st_holdout']:.3f} | {off['trend']:.2f} · {off['c2st_tree']:.3f} | "
                     f"{off['trend_holdout']:.2f} · {off['c2st_holdout']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.widest_gap", description=__doc__.split("\n\n")[0])
    parser.add_argument("--machine", required=True, help="label of the results folder, e.g. xeon-amx")
    parser.add_argument("--tables", default="magic,beijing")
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    args = parser.parse_args()
    results = {"machine": machine(), "git": git_state(), "command": "python -m benchmarks.widest_gap " + " ".join(sys.argv[1:]),
               "tables": {t: compare(t, args.datasets_dir) for t in args.tables.split(",")}}
    write_results(RESULTS_DIR / args.machine / "rules", "widest-gap", results, markdown(results))


if __name__ == "__main__":
    main()
