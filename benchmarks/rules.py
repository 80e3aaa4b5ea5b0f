"""Rules of the shared tables: found, kept by tabgen, kept by TabularARGN, and what keeping them costs
or buys in Trend and the tree C2ST (issue 33).

For each table, in one run on one machine: tabgen with its rules (the default), tabgen with
``find_rules=False`` (today's behaviour before the rules stage), and TabularARGN, each given the same
time budget, each sampling as many rows as the training table has, written to CSV and read back.
Each is scored on all rows against the training table (Shape, Trend, XGBoost C2ST) and by
``evaluate``'s rules section: the rules found in the training table, and the share of training,
held-out and synthetic rows keeping each.

    python -m benchmarks.rules --budget 120 --results-dir benchmarks/results/epyc   # writes rules/ there

Datetime columns (``"datetime"`` in info.json) are parsed before fitting, for every model: TabularARGN
treats text dates as text, and superstore's day-first dates (03/01/19) are not read as dates otherwise.
"""

from __future__ import annotations

import argparse
import json
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
    read_table,
    write_json,
)

TABLES = ("adult", "default", "shoppers", "magic", "beijing", "superstore")
#: Formats of the shared tables' datetime columns (superstore's are day first, two-digit years).
DATE_FORMATS = {"superstore": "%d/%m/%y"}


def parsed_dates(ds: Dataset) -> Dataset:
    dates = [c["name"] for c in ds.info["columns"] if c["type"] == "datetime"]
    fmt = DATE_FORMATS.get(ds.name)
    for frame in (ds.train, ds.test):
        if frame is not None:
            for name in dates:
                frame[name] = pd.to_datetime(frame[name], format=fmt)
    return ds


def read_back(frame: pd.DataFrame, ds: Dataset, folder: Path, model: str) -> pd.DataFrame:
    """The rows as a user gets them: written to CSV, read back, dates parsed as the real ones were."""
    path = folder / ds.name / f"{model}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[list(ds.train.columns)].to_csv(path, index=False)
    back = read_table(path)
    for name in ds.train.columns:
        if pd.api.types.is_datetime64_any_dtype(ds.train[name]):
            back[name] = pd.to_datetime(back[name])
    return back


def fit_models(ds: Dataset, budget: float, seed: int, peers: bool = True) -> dict[str, dict[str, Any]]:
    from tabgen import Synthesizer

    runs: dict[str, dict[str, Any]] = {}
    syn, seconds = fit_tabgen(ds, seed, time_budget=budget)
    runs["tabgen"] = {"model": syn, "fit_seconds": seconds, "rules": [r.name for r in syn.rules_], **_steps(syn)}
    plain = Synthesizer(seed=seed, categorical=ds.categorical, numerical=ds.numerical, time_budget=budget,
                        find_rules=False, progress=False)
    began = time.perf_counter()
    plain.fit(ds.train)
    runs["tabgen, no rules"] = {"model": plain, "fit_seconds": time.perf_counter() - began, **_steps(plain)}
    if not peers:
        return runs
    try:
        from benchmarks.peers import make_tabular_argn

        argn = make_tabular_argn(ds, seed, quick=False, max_minutes=budget / 60)
        began = time.perf_counter()
        argn.fit(ds.train)
        runs["TabularARGN"] = {"model": argn, "fit_seconds": time.perf_counter() - began}
    except ImportError as e:
        print(f"TabularARGN skipped: {e}")
    return runs


def _steps(syn: Any) -> dict[str, int]:
    """Training steps in the budget: their ratio between the two tabgen fits is the cost of the rule columns."""
    return {"vae_steps": syn.vae_result_.steps, "diffusion_steps": syn.diffusion_result_.steps}


def sample(model: Any, n: int, seed: int) -> pd.DataFrame:
    if hasattr(model, "rules_"):
        return model.sample(n, seed=seed)
    try:
        return model.sample(n_samples=n)
    finally:
        model.close()


def score_table(ds: Dataset, budget: float, seed: int, folder: Path, peers: bool = True) -> dict[str, Any]:
    from tabgen.evaluation import evaluate

    real = canonical(ds.train, ds.categorical)
    holdout = None if ds.test is None else canonical(ds.test, ds.categorical)
    schema = ds.schema()
    out: dict[str, Any] = {"rows": len(ds.train), "budget_s": budget, "models": {}}
    for name, run in fit_models(ds, budget, seed, peers).items():
        rows = canonical(read_back(sample(run.pop("model"), len(ds.train), seed), ds, folder, name), ds.categorical)
        result = evaluate(real, rows, holdout=holdout, schema=schema, seed=seed, max_rows=None,
                          metrics=["fidelity", "detection", "rules"], progress=False)
        out["models"][name] = {**run, **headline(result), "rules_kept": result.rules}
        print(f"{ds.name} {name}: {headline(result)} in {run['fit_seconds']:.0f} s", flush=True)
    return out


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# Rules of the shared tables, kept ({results['machine']['cpu']}, commit {results['git'].get('commit', '?')[:7]})",
             "", f"`python -m benchmarks.rules --budget {results['budget_s']:g}`: every model fitted with a "
             f"{results['budget_s']:g} s budget (TabularARGN: max_training_time), sampled as many rows as the training "
             "table, written to CSV and read back; all rows scored against the training table.", ""]
    for table, r in results["tables"].items():
        models = list(r["models"])
        lines += [f"## {table} ({r['rows']:,} training rows)", "",
                  "| | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
        for key, label, digits in (("fit_seconds", "fit s", 0), ("vae_steps", "VAE steps", 0),
                                   ("diffusion_steps", "denoiser steps", 0), ("shape", "Shape %", 2), ("trend", "Trend %", 2),
                                   ("c2st_tree", "tree C2ST", 3)):
            lines.append(f"| {label} | " + " | ".join(_cell(r["models"][m].get(key), digits) for m in models) + " |")
        rules = r["models"][models[0]]["rules_kept"]
        if rules:
            lines += ["", "| rule found in the training table | training rows | held-out rows | "
                      + " | ".join(models) + " |", "|---|---|---|" + "---|" * len(models)]
            for i, rule in enumerate(rules):
                shares = [r["models"][m]["rules_kept"][i]["synthetic"] for m in models]
                partial = " (share)" if rule["partial"] else ""
                lines.append(f"| {rule['kind']}: `{rule['rule']}`{partial} | {_pct(rule['real'])} | {_pct(rule['holdout'])} | "
                             + " | ".join(_pct(s) for s in shares) + " |")
        else:
            lines += ["", "No rule found."]
        lines.append("")
    return "\n".join(lines)


def _cell(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rules", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of fitting per model and table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-peers", action="store_true", help="tabgen with and without rules only")
    args = parser.parse_args()
    folder = args.results_dir / "rules"
    results = {"machine": machine(), "git": git_state(), "budget_s": args.budget, "tables": {}}
    for table in args.tables.split(","):
        ds = parsed_dates(load_dataset(args.datasets_dir / table))
        results["tables"][table] = score_table(ds, args.budget, args.seed, BENCHMARKS_DIR / "synthetic" / "rules",
                                               not args.no_peers)
        write_json(folder / "rules.json", results)
        (folder / "README.md").write_text(markdown(results))
    print(json.dumps({t: {m: v["c2st_tree"] for m, v in r["models"].items()} for t, r in results["tables"].items()}))


if __name__ == "__main__":
    main()
