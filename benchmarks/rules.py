"""Rules of the shared tables: found, kept by tabgen, kept by TabularARGN, and what keeping them costs
or buys in Trend and the tree C2ST (issue 33).

For each table, in one run on one machine: tabgen with its rules (the default), tabgen with
``find_rules=False`` (today's behaviour before the rules stage), and TabularARGN, each given the same
time budget, each sampling as many rows as the training table has, written to CSV and read back.
Each is scored on all rows against the training table (Shape, Trend, XGBoost C2ST) and by
``evaluate``'s rules section: the rules found in the training table, and the share of training,
held-out and synthetic rows keeping each.

    python -m benchmarks.rules --budget 120 --results-dir benchmarks/results/epyc   # writes rules/ there
    python -m benchmarks.rules --budget 0 --seeds 0,1 --no-peers --out defaults      # default fits, two seeds
    python -m benchmarks.rules --budget 0 --tables default --no-peers --without tie      # what one kind buys

``--budget 0`` fits with the defaults a user gets (no time budget: the step limits end the fit), so
the rule columns cost fit time rather than training steps. The held-out rows are scored as a model
too: they are the floor each figure is measured against.

Datetime columns (``"datetime"`` in info.json) are parsed before fitting, for every model: TabularARGN
treats text dates as text (tabgen reads superstore's 03/01/19 as day-first dates by itself).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from .harness import (
    BENCHMARKS_DIR,
    DATASETS_DIR,
    RESULTS_DIR,
    Dataset,
    canonical,
    fit_tabgen,
    git_state,
    headline,
    load_dataset,
    machine,
    parsed_dates,
    read_back,
    rules_kept_table,
    sample,
    write_results,
)

TABLES = ("adult", "default", "shoppers", "magic", "beijing", "superstore")
FLOOR = "held-out rows (floor)"


def fit_models(ds: Dataset, budget: float | None, seeds: list[int], peers: bool = True, without: str | None = None):
    """Each model fitted in turn (``budget=None``: the defaults), yielded with its name as soon as it is.
    With ``without`` (a kind of rule, such as ``tie``), the second tabgen fit of each seed leaves out
    only the rules of that kind instead of every rule."""
    from tabgen import Synthesizer

    # The first fit in a process pays one-time costs (a budget's first seconds, a default fit's time):
    # a short fit first, so that the two fits compared pay alike.
    Synthesizer(seed=0, categorical=ds.categorical, numerical=ds.numerical, time_budget=5, find_rules=False,
                progress=False).fit(ds.train.head(2000))
    for seed in seeds:
        suffix = "" if seed == seeds[0] else f" (seed {seed})"
        syn, seconds = fit_tabgen(ds, seed, time_budget=budget)
        yield "tabgen" + suffix, {"model": syn, "seed": seed, "fit_seconds": seconds, **_steps(syn)}
        left_out = [r.name for r in syn.rules_ if r.kind == without]
        plain = Synthesizer(seed=seed, categorical=ds.categorical, numerical=ds.numerical, time_budget=budget,
                            find_rules=without is not None, drop_rules=left_out, progress=False)
        began = time.perf_counter()
        plain.fit(ds.train)
        name = "tabgen, no rules" if without is None else f"tabgen, no {without} rules"
        yield name + suffix, {"model": plain, "seed": seed, "fit_seconds": time.perf_counter() - began, **_steps(plain)}
    if not peers:
        return
    try:
        from benchmarks.peers import make_tabular_argn

        argn = make_tabular_argn(ds, seeds[0], quick=False, max_minutes=None if budget is None else budget / 60)
        began = time.perf_counter()
        argn.fit(ds.train)
        yield "TabularARGN", {"model": argn, "seed": seeds[0], "fit_seconds": time.perf_counter() - began}
    except ImportError as e:
        print(f"TabularARGN skipped: {e}")


def _steps(syn: Any) -> dict[str, int]:
    """Training steps in the budget: their ratio between the two tabgen fits is the cost of the rule columns."""
    return {"vae_steps": syn.vae_result_.steps, "diffusion_steps": syn.diffusion_result_.steps,
            "vae_seconds": syn.vae_result_.seconds, "diffusion_seconds": syn.diffusion_result_.seconds}


def score_table(ds: Dataset, budget: float | None, seeds: list[int], folder: Path, peers: bool = True,
                without: str | None = None) -> dict[str, Any]:
    """Each model's rows scored on all rows against the training table and against the held-out rows
    (``c2st_holdout``), beside the held-out rows themselves scored against the training table (the floor)."""
    from tabgen.evaluation import evaluate

    real = canonical(ds.train, ds.categorical)
    holdout = canonical(ds.test, ds.categorical)
    schema = ds.schema()

    def scores(rows: pd.DataFrame, seed: int, against_holdout: bool = True) -> dict[str, Any]:
        result = evaluate(real, rows, holdout=holdout if against_holdout else None, schema=schema, seed=seed,
                          max_rows=None, metrics=["fidelity", "detection", "rules"], floor=False, progress=False)
        out = {**headline(result), "rules_kept": result.rules}
        if result.against_holdout:
            out["trend_holdout"] = result.against_holdout["trend_error"]
            out["c2st_holdout"] = result.against_holdout["c2st_xgboost"]
        return out

    out: dict[str, Any] = {"rows": len(ds.train), "budget_s": budget, "models": {}}
    out["models"][FLOOR] = scores(holdout, seeds[0], against_holdout=False)
    for name, run in fit_models(ds, budget, seeds, peers, without):
        rows = read_back(sample(run.pop("model"), len(ds.train), run["seed"]), ds, folder, name)
        out["models"][name] = {**run, **scores(rows, run["seed"])}
        print(f"{ds.name} {name}: {headline_of(out['models'][name])} in {run['fit_seconds']:.0f} s", flush=True)
    return out


def headline_of(scores: dict[str, Any]) -> str:
    return ", ".join(f"{k} {scores[k]:.3f}" for k in ("shape", "trend", "c2st_tree", "trend_holdout", "c2st_holdout")
                     if scores.get(k) is not None)


#: The figures of each model, in the order the tables show them: (key, label, decimals).
ROWS = (("fit_seconds", "fit s", 0), ("vae_seconds", "VAE s", 0), ("vae_steps", "VAE steps", 0),
        ("diffusion_seconds", "denoiser s", 0), ("diffusion_steps", "denoiser steps", 0), ("shape", "Shape %", 2),
        ("trend", "Trend %", 2), ("c2st_tree", "tree C2ST", 3), ("trend_holdout", "Trend % vs held-out", 2),
        ("c2st_holdout", "tree C2ST vs held-out", 3))


def markdown(results: dict[str, Any]) -> str:
    budget = results["budget_s"]
    fitted = ("with the defaults (no time budget)" if budget is None
              else f"with a {budget:g} s budget (TabularARGN: max_training_time)")
    lines = [f"# Rules of the shared tables, kept ({results['machine']['cpu']}, commit {results['git'].get('commit', '?')[:7]})",
             "", f"`{results['command']}`: every model fitted {fitted}, sampled as many rows as the training "
             "table, written to CSV and read back; all rows scored against the training table (tree C2ST also "
             "against the held-out rows). The held-out rows, scored against the training table, are the floor.", ""]
    for table, r in results["tables"].items():
        columns = list(r["models"])
        models = [m for m in columns if m != FLOOR]
        lines += [f"## {table} ({r['rows']:,} training rows)", "",
                  "| | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        for key, label, digits in ROWS:
            lines.append(f"| {label} | " + " | ".join(_cell(r["models"][m].get(key), digits) for m in columns) + " |")
        rules = r["models"][models[0]]["rules_kept"]
        if rules:
            lines += ["", *rules_kept_table({m: r["models"][m]["rules_kept"] for m in models})]
        else:
            lines += ["", "No rule found."]
        lines.append("")
    return "\n".join(lines)


def _cell(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def main() -> None:
    from tabgen.rules.kinds import KINDS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.rules", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--budget", type=float, default=120.0,
                        help="seconds of fitting per model and table; 0: the defaults, no time budget")
    parser.add_argument("--seeds", default="0", help="tabgen's seeds, comma-separated: each fits with and without rules")
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-peers", action="store_true", help="tabgen with and without rules only")
    parser.add_argument("--without", metavar="KIND", choices=sorted(KINDS),
                        help="the second fit of each seed leaves out only the rules of this kind (e.g. tie)")
    parser.add_argument("--out", default="latest", help="writes rules/OUT.json and rules/OUT.md in the results folder")
    args = parser.parse_args()
    folder = args.results_dir / "rules"
    budget = args.budget or None
    results = {"machine": machine(), "git": git_state(), "budget_s": budget, "tables": {},
               "command": "python -m benchmarks.rules " + " ".join(sys.argv[1:])}
    for table in args.tables.split(","):
        ds = parsed_dates(load_dataset(args.datasets_dir / table))
        results["tables"][table] = score_table(ds, budget, [int(s) for s in args.seeds.split(",")],
                                               BENCHMARKS_DIR / "synthetic" / "rules", not args.no_peers, args.without)
        write_results(folder, args.out, results, markdown(results))
    print(json.dumps({t: {m: v["c2st_tree"] for m, v in r["models"].items()} for t, r in results["tables"].items()}))


if __name__ == "__main__":
    main()
