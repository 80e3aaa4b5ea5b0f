"""Conditional generation on adult: segments, rebalancing and imputation, beside TabularARGN and baselines.

    python -m benchmarks.conditional                               # fits tabgen with its defaults, every part
    python -m benchmarks.conditional --model adult.tabgen          # a model fitted on adult_train.csv elsewhere
    python -m benchmarks.conditional --quick --results-dir /tmp/cond-smoke   # smoke test: 3,000 rows, seconds of training

Parts (``--parts``), each written to ``<results-dir>/conditional/adult.json`` as soon as it is done, with
``adult.md`` rebuilt from the JSON:

* ``segments``: for a common segment (workclass = Private), a rare one (race = Other, under 1 % of the
  rows), a numeric one (age = 30) and the positive class (income = >50K), as many conditioned rows as
  the training table has in the segment (at most 5,000), scored against the real rows of that segment
  (Shape, Trend, tree C2ST; the conditioned column left out). Beside tabgen's ``given``: TabularARGN's
  ``seed_data``, rejection sampling from tabgen's unconditional rows (as many as it finds in 200,000),
  tabgen's unconditional rows (how far the segment is from the whole table) and the test split's
  rows of the segment (the real-data floor).
* ``rebalance``: income at 50 % >50K. Shares achieved, and models trained on the rebalanced rows scored
  on the test split (ROC AUC, balanced accuracy, F1 of >50K) beside real rows, tabgen's unconditional
  rows and TabularARGN's rebalancing.
* ``impute``: 20 % of the observed cells of the test split hidden at random, and separately every
  income: accuracy on hidden categorical cells, RMSE in training standard deviations on hidden numeric
  cells, seconds; tabgen (1 and 5 draws), scikit-learn's SimpleImputer and IterativeImputer (fitted
  on the training table) and TabularARGN's ``impute``.

TabularARGN runs only where mostlyai-engine imports (the benchmark venv, ``.venv-bench``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.harness import (
    DATASETS_DIR,
    RESULTS_DIR,
    Dataset,
    canonical,
    fit_tabgen,
    git_state,
    headline,
    load_dataset,
    package_versions,
    round_trip,
    score,
    seed_everything,
    timed,
    usable_cores,
    write_json,
)
from benchmarks.peers import QUICK_ARGN, QUICK_TABGEN_BUDGET_S, make_tabular_argn

DATASET = "adult"
PARTS = ("segments", "rebalance", "impute")
#: (column, value) of each segment; race = Other is 0.8 % of adult's training rows.
SEGMENTS = (("workclass", "Private"), ("race", "Other"), ("age", 30), ("income", ">50K"))
SEGMENT_ROWS = 5000
REJECTION_MAX_ROWS = 200_000
QUICK_REJECTION_ROWS = 10_000
REBALANCE = {"income": {">50K": 0.5}}
HIDDEN_SHARE = 0.2
IMPUTE_DRAWS = (1, 5)
QUICK_ROWS = 3000


# ------------------------------------------------------------------------------------------ helpers
def fidelity(real: pd.DataFrame, synthetic: pd.DataFrame, ds: Dataset, dropped: str, seed: int) -> dict[str, Any]:
    """Shape, Trend and tree C2ST of ``synthetic`` against ``real`` (both canonical), without ``dropped``."""
    from tabgen.schema import infer_schema

    real, synthetic = real.drop(columns=dropped), synthetic.drop(columns=dropped)
    categorical = [c for c in ds.categorical if c != dropped]
    schema = infer_schema(real, categorical=categorical, numerical=[c for c in ds.numerical if c != dropped])
    result = score(ds, synthetic, real=real, schema=schema, seed=seed, round_tripped=True)
    return {"rows": len(synthetic), **headline(result)}


def in_segment(df: pd.DataFrame, column: str, value: Any) -> pd.Series:
    """Rows of ``df`` (canonical) in the segment; categorical values compare as canonical text."""
    if isinstance(value, str):
        return df[column] == value
    return pd.to_numeric(df[column], errors="coerce") == value


def fit_argn(ds: Dataset, args: argparse.Namespace):
    model = make_tabular_argn(ds, args.seed, args.quick)
    _, seconds = timed(lambda: model.fit(ds.train))
    return model, seconds


def load_or_fit_tabgen(ds: Dataset, args: argparse.Namespace):
    from tabgen import Synthesizer

    if args.model is not None:
        syn = Synthesizer.load(args.model, progress=False)
        if sorted(syn.schema_.names) != sorted(ds.train.columns):
            raise SystemExit(f"{args.model} was not fitted on {DATASET}: its columns are {syn.schema_.names}")
        return syn, {"model": str(args.model), "fit_seconds": None}
    budget = args.tabgen_budget if args.tabgen_budget is not None else (QUICK_TABGEN_BUDGET_S if args.quick else None)
    syn, seconds = fit_tabgen(ds, args.seed, time_budget=budget)
    return syn, {"model": f"fitted here, time_budget={budget}", "fit_seconds": seconds}


# -------------------------------------------------------------------------------------------- parts
def part_segments(ds: Dataset, syn: Any, argn: Any, args: argparse.Namespace) -> dict[str, Any]:
    real = canonical(ds.train, ds.categorical)
    test = canonical(ds.test, ds.categorical)
    pool = QUICK_REJECTION_ROWS if args.quick else REJECTION_MAX_ROWS
    unconditional, pool_seconds = timed(lambda: syn.sample(pool, seed=args.seed))
    unconditional = round_trip(unconditional, ds, None, "tabgen")
    out: dict[str, Any] = {"rejection_pool": {"rows": pool, "seconds": pool_seconds}}
    for column, value in SEGMENTS:
        segment = real[in_segment(real, column, value)]
        n = min(len(segment), SEGMENT_ROWS)
        label = f"{column}={value}"
        print(f"  segment {label}: {len(segment)} real rows ({100 * len(segment) / len(real):.2f} %)", flush=True)
        result: dict[str, Any] = {"real_rows": len(segment), "share": len(segment) / len(real), "methods": {}}
        methods = result["methods"]
        fake, seconds = timed(partial(syn.sample, n, given={column: value}, seed=args.seed))
        rows = round_trip(fake, ds, None, "tabgen")
        methods["tabgen given"] = {**fidelity(segment, rows, ds, column, args.seed), "seconds": seconds}
        if argn is not None:
            seed_data = pd.DataFrame({column: [value] * n})
            fake, seconds = timed(partial(argn.sample, seed_data=seed_data))
            rows = round_trip(fake, ds, None, "argn")
            methods["TabularARGN seed_data"] = {**fidelity(segment, rows, ds, column, args.seed), "seconds": seconds}
        matches = unconditional[in_segment(unconditional, column, value)]
        # Seconds to draw n matching rows, extrapolated from the pool's acceptance rate.
        rejection = {"rows": min(len(matches), n), "acceptance": len(matches) / pool,
                     "seconds": pool_seconds * n / len(matches) if len(matches) else None}
        if len(matches) >= 2:
            rejection |= fidelity(segment, matches.head(n), ds, column, args.seed)
        methods["tabgen rejection"] = rejection
        methods["tabgen unconditional"] = fidelity(segment, unconditional.head(n), ds, column, args.seed)
        floor = test[in_segment(test, column, value)]
        if len(floor) >= 2:
            methods["real test rows (floor)"] = fidelity(segment, floor, ds, column, args.seed)
        out[label] = result
    return out


def classifier_scores(train: pd.DataFrame, test: pd.DataFrame, ds: Dataset, seed: int) -> dict[str, float]:
    """XGBoost as tabgen's ML efficiency trains it: ROC AUC, balanced accuracy and F1 of the rarer real class."""
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from xgboost import XGBClassifier

    from tabgen.evaluation.encoding import tree_encoder
    from tabgen.evaluation.prepare import normalise
    from tabgen.schema import infer_schema

    target = ds.target
    schema = infer_schema(test, categorical=ds.categorical, numerical=ds.numerical)
    train, test = normalise(train, schema, "train"), normalise(test, schema, "test")
    positive = test[target].value_counts().idxmin()
    model = make_pipeline(tree_encoder(schema, exclude=(target,)),
                          XGBClassifier(n_estimators=200, max_depth=6, learning_rate=0.1, tree_method="hist",
                                        n_jobs=1, random_state=seed, verbosity=0))
    model.fit(train.drop(columns=[target]), (train[target] == positive).to_numpy())
    probability = model.predict_proba(test.drop(columns=[target]))[:, 1]
    truth = (test[target] == positive).to_numpy()
    return {"roc_auc": roc_auc_score(truth, probability), "balanced_accuracy": balanced_accuracy_score(truth, probability > 0.5),
            "f1_positive": f1_score(truth, probability > 0.5), "positive_class": positive,
            "train_positive_share": float((train[target] == positive).mean())}


def part_rebalance(ds: Dataset, syn: Any, argn: Any, args: argparse.Namespace) -> dict[str, Any]:
    (column, shares), = REBALANCE.items()
    n = len(ds.train)
    real, test = canonical(ds.train, ds.categorical), canonical(ds.test, ds.categorical)
    out: dict[str, Any] = {"asked": {column: shares}, "rows": n, "methods": {}}
    out["methods"]["real training rows"] = {"scores": classifier_scores(real, test, ds, args.seed)}
    fake, seconds = timed(lambda: syn.sample(n, seed=args.seed))
    fake = round_trip(fake, ds, None, "tabgen")
    out["methods"]["tabgen unconditional"] = {"seconds": seconds, "scores": classifier_scores(fake, test, ds, args.seed)}
    fake, seconds = timed(lambda: syn.sample(n, rebalance=REBALANCE, seed=args.seed))
    fake = round_trip(fake, ds, None, "tabgen")
    out["methods"]["tabgen rebalance"] = {"seconds": seconds, "achieved": fake[column].value_counts(normalize=True).to_dict(),
                                          "scores": classifier_scores(fake, test, ds, args.seed)}
    if argn is not None:
        fake, seconds = timed(lambda: argn.sample(n_samples=n, rebalancing={"column": column, "probabilities": shares}))
        fake = round_trip(fake, ds, None, "argn")
        out["methods"]["TabularARGN rebalancing"] = {"seconds": seconds,
                                                     "achieved": fake[column].value_counts(normalize=True).to_dict(),
                                                     "scores": classifier_scores(fake, test, ds, args.seed)}
    return out


def hide(test: pd.DataFrame, scenario: str, target: str, seed: int) -> pd.DataFrame:
    """The cells to hide: a random 20 % of the observed ones, or every target cell."""
    if scenario == "target":
        mask = pd.DataFrame(False, index=test.index, columns=test.columns)
        mask[target] = test[target].notna()
        return mask
    return test.notna() & pd.DataFrame(np.random.default_rng(seed).random(test.shape) < HIDDEN_SHARE,
                                      index=test.index, columns=test.columns)


def impute_scores(truth: pd.DataFrame, filled: pd.DataFrame, hidden: pd.DataFrame, ds: Dataset,
                  train_std: pd.Series) -> dict[str, Any]:
    """Accuracy on hidden categorical cells (as canonical text) and RMSE / training SD on hidden numeric ones."""
    truth, filled = canonical(truth, ds.categorical), canonical(filled.reset_index(drop=True), ds.categorical)
    per_column: dict[str, float] = {}
    hits, errors = [], []
    for c in ds.categorical:
        rows = hidden[c].to_numpy()
        if rows.any():
            right = (filled[c][rows].astype(str).to_numpy() == truth[c][rows].astype(str).to_numpy())
            per_column[c] = float(right.mean())
            hits.append(right)
    for c in ds.numerical:
        rows = hidden[c].to_numpy()
        if rows.any():
            scaled = (pd.to_numeric(filled[c][rows]).to_numpy() - pd.to_numeric(truth[c][rows]).to_numpy()) / train_std[c]
            per_column[c] = float(np.sqrt(np.mean(scaled**2)))
            errors.append(per_column[c])
    return {"categorical_accuracy": float(np.concatenate(hits).mean()) if hits else None,
            "numeric_rmse_sd": float(np.mean(errors)) if errors else None,
            "unfilled_cells": int(filled.isna().to_numpy()[hidden.to_numpy()].sum()), "per_column": per_column}


def sklearn_imputers(ds: Dataset, seed: int) -> dict[str, Callable[[pd.DataFrame], pd.DataFrame]]:
    """SimpleImputer (mean / most frequent) and IterativeImputer (categories as ordinal codes, rounded
    back), both fitted on the training table."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (makes IterativeImputer importable)
    from sklearn.impute import IterativeImputer, SimpleImputer
    from sklearn.preprocessing import OrdinalEncoder

    cats, nums = ds.categorical, ds.numerical
    train = canonical(ds.train, cats)
    mean = SimpleImputer(strategy="mean").fit(train[nums])
    frequent = SimpleImputer(strategy="most_frequent").fit(train[cats].astype(object))
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                           encoded_missing_value=np.nan).fit(train[cats])
    iterative = IterativeImputer(max_iter=10, random_state=seed).fit(
        np.hstack([train[nums].to_numpy(float), codes.transform(train[cats])]))

    def simple(df: pd.DataFrame) -> pd.DataFrame:
        df = canonical(df, cats)
        out = df.copy()
        out[nums] = mean.transform(df[nums])
        out[cats] = frequent.transform(df[cats].astype(object))
        return out

    def iterate(df: pd.DataFrame) -> pd.DataFrame:
        df = canonical(df, cats)
        out = df.copy()
        x = iterative.transform(np.hstack([df[nums].to_numpy(float), codes.transform(df[cats])]))
        out[nums] = x[:, : len(nums)]
        sizes = np.array([pd.notna(c).sum() for c in codes.categories_])  # a category list ends in NaN if gappy
        nearest = np.clip(np.round(x[:, len(nums):]), 0, sizes - 1)
        out[cats] = codes.inverse_transform(nearest)
        return out

    return {"SimpleImputer": simple, "IterativeImputer": iterate}


def part_impute(ds: Dataset, syn: Any, argn: Any, args: argparse.Namespace) -> dict[str, Any]:
    test = ds.test.reset_index(drop=True)
    train_std = ds.train[ds.numerical].std()
    imputers: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {}
    for draws in IMPUTE_DRAWS:
        imputers[f"tabgen, {draws} draw{'s' if draws > 1 else ''}"] = lambda df, d=draws: syn.impute(df, draws=d, seed=args.seed)
    fitted, fit_seconds = timed(lambda: sklearn_imputers(ds, args.seed))
    imputers |= fitted
    if argn is not None:
        imputers["TabularARGN impute"] = lambda df: argn.impute(df)
    out: dict[str, Any] = {"sklearn_fit_seconds": fit_seconds}
    for scenario in ("random", "target"):
        hidden = hide(test, scenario, ds.target, args.seed)
        holes = test.mask(hidden)
        result: dict[str, Any] = {"hidden_cells": int(hidden.to_numpy().sum()), "methods": {}}
        for name, impute in imputers.items():
            filled, seconds = timed(partial(impute, holes))
            result["methods"][name] = {"seconds": seconds, **impute_scores(test, filled, hidden, ds, train_std)}
            print(f"  impute {scenario}: {name} {seconds:.1f} s", flush=True)
        out["20 % of cells" if scenario == "random" else "target column"] = result
    return out


PART_FUNCTIONS = {"segments": part_segments, "rebalance": part_rebalance, "impute": part_impute}


# ------------------------------------------------------------------------------------------- report
def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_markdown(results: dict[str, Any]) -> str:
    lines = ["# Conditional generation on adult", "",
             "Generated by `benchmarks/conditional.py` from `adult.json`; the method is in `docs/conditional.md`.",
             f"Run {results.get('date')}, seed {results.get('seed')}, tabgen model: {results.get('tabgen', {}).get('model')}"
             + (" — **--quick smoke test, not a result**" if results.get("quick") else "") + ".", ""]
    if "segments" in results:
        lines += ["## Segments", "",
                  ("Conditioned rows against the real training rows of the segment (the conditioned column left out). "
                  "Shape/Trend: error in %, 0 ideal; tree C2ST: 1 means indistinguishable."), "",
                  "| segment | method | rows | seconds | Shape % | Trend % | tree C2ST | note |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]
        pool = results["segments"]["rejection_pool"]
        for label, seg in results["segments"].items():
            if not isinstance(seg, dict) or "methods" not in seg:
                continue
            for method, m in seg["methods"].items():
                note = ""
                if "acceptance" in m:
                    note = f"{100 * m['acceptance']:.3f} % of {pool['rows']:,} unconditional rows match; seconds extrapolated"
                lines.append(f"| {label} ({100 * seg['share']:.2f} % of rows) | {method} | {m['rows']} | "
                             f"{fmt(m.get('seconds'), 1)} | "
                             f"{fmt(m.get('shape'), 2)} | {fmt(m.get('trend'), 2)} | {fmt(m.get('c2st_tree'))} | {note} |")
        lines.append("")
    if "rebalance" in results:
        r = results["rebalance"]
        lines += ["## Rebalancing", "",
                  f"Asked: {r['asked']}; {r['rows']:,} rows. XGBoost trained on each table, scored on the test split.", "",
                  "| training rows | achieved shares | seconds | ROC AUC | balanced accuracy | F1 (positive) |",
                  "|---|---|---:|---:|---:|---:|"]
        for method, m in r["methods"].items():
            achieved = ", ".join(f"{k}: {v:.3f}" for k, v in (m.get("achieved") or {}).items())
            s = m["scores"]
            lines.append(f"| {method} | {achieved or '—'} | {fmt(m.get('seconds'), 1)} | {fmt(s['roc_auc'])} | "
                         f"{fmt(s['balanced_accuracy'])} | {fmt(s['f1_positive'])} |")
        lines.append("")
    if "impute" in results:
        lines += ["## Imputation", "", ("Hidden cells of the test split; accuracy on categorical cells, RMSE in training "
                  f"standard deviations on numeric cells. The scikit-learn imputers were fitted on the training table in "
                  f"{results['impute']['sklearn_fit_seconds']:.1f} s (not in their seconds below)."), ""]
        for scenario, r in results["impute"].items():
            if not isinstance(r, dict):
                continue
            lines += [f"### {scenario} ({r['hidden_cells']:,} hidden cells)", "",
                      "| method | categorical accuracy | numeric RMSE (SD) | seconds | cells left empty |",
                      "|---|---:|---:|---:|---:|"]
            for method, m in r["methods"].items():
                lines.append(f"| {method} | {fmt(m['categorical_accuracy'])} | {fmt(m['numeric_rmse_sd'])} | "
                             f"{fmt(m['seconds'], 1)} | {m['unfilled_cells']} |")
            lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conditional", description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="the JSON and Markdown go to RESULTS_DIR/conditional/ (default: benchmarks/results)")
    parser.add_argument("--model", type=Path, help="a tabgen model fitted on adult_train.csv (default: fit one here)")
    parser.add_argument("--tabgen-budget", type=float, help="time_budget in seconds when fitting here (default: none)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}")
    parser.add_argument("--no-argn", action="store_true", help="leave TabularARGN out even where it imports")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=usable_cores())
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK_ROWS} rows of each split, short fits (needs --results-dir)")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {list(PARTS)}")
    if args.quick and args.results_dir.resolve() == RESULTS_DIR.resolve():
        parser.error("--quick is a smoke test: give a scratch --results-dir (e.g. /tmp/cond-smoke)")
    import torch

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    ds = load_dataset(args.datasets_dir / DATASET, QUICK_ROWS if args.quick else None)
    out_dir = args.results_dir / "conditional"
    json_path = out_dir / f"{DATASET}.json"
    results: dict[str, Any] = {
        "dataset": DATASET, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "seed": args.seed,
        "quick": args.quick, "split": ds.split, "torch_threads": args.threads,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "usable_cores": usable_cores()},
        "versions": package_versions(), "repo": git_state(),
    }
    syn, results["tabgen"] = load_or_fit_tabgen(ds, args)
    results["tabgen"]["sampler"] = {k: v for k, v in vars(syn.config_.sampler).items() if k != "batch_size"}
    argn = None
    if not args.no_argn and importlib.util.find_spec("mostlyai") is not None:
        argn, seconds = fit_argn(ds, args)
        results["tabular_argn"] = {"fit_seconds": seconds, "settings": dict(QUICK_ARGN) if args.quick else "defaults"}
    else:
        results["tabular_argn"] = "not run (mostlyai-engine not importable, or --no-argn)"
    try:
        for part in parts:
            print(f"[{DATASET}] {part}: running...", flush=True)
            start = time.perf_counter()
            results[part] = PART_FUNCTIONS[part](ds, syn, argn, args)
            results[part]["wall_seconds"] = time.perf_counter() - start
            write_json(json_path, results)
            (out_dir / f"{DATASET}.md").write_text(render_markdown(json.loads(json_path.read_text())))
            print(f"[{DATASET}] {part}: {time.perf_counter() - start:.0f} s -> {json_path}", flush=True)
    finally:
        if argn is not None:
            argn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
