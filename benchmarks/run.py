"""Benchmark tabgen against peer synthesizers on the shared datasets.

For every (dataset, model) cell: fit on the training table, sample as many rows as it has, write the
rows to CSV and read them back the same way the real files are read, score them with
``tabgen.evaluation.evaluate`` against the training table (the test part as holdout), and write
``<results-dir>/<dataset>/<model>.json``; then regenerate ``<results-dir>/README.md``.

    python -m benchmarks.run --datasets adult --models tabgen,tabular_argn
    python -m benchmarks.run --max-rows 2000 --quick --results-dir /tmp/bench-smoke   # smoke test
    python -m benchmarks.run --table-only                                             # just the README

A cell whose JSON exists is skipped unless --force (a long run can be stopped and continued); a cell
that failed is skipped too unless --retry-errors. See benchmarks/README.md for budgets and row meanings.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.harness import (
    DATASETS_DIR,
    RESULTS_DIR,
    Dataset,
    canonical,
    evaluate_defaults,
    git_state,
    load_dataset,
    package_versions,
    round_trip,
    score,
    seed_everything,
    timed,
    usable_cores,
    write_json,
)
from benchmarks.peers import MODEL_LABELS, MODELS, QUICK_ARGN, QUICK_SDV_EPOCHS, QUICK_TABGEN_BUDGET_S, Options

#: The table's metric columns: (header, path into EvaluationResult.to_dict()). Shape and Trend are error
#: rates in %; C2ST, α-precision, β-recall and DCR overfitting protection are in [0, 1] with 1 ideal;
#: DCR share's ideal is 0.5; exact copies is a fraction of the synthetic rows.
TABLE_COLUMNS = [
    ("Shape err %", "shape_error"),
    ("Trend err %", "trend_error"),
    ("C2ST logistic", "c2st_logistic.score"),
    ("C2ST XGBoost", "c2st_xgboost.score"),
    ("α-precision", "alpha_precision"),
    ("β-recall", "beta_recall"),
    ("ML eff. real", "ml_efficiency.real"),
    ("ML eff. synth.", "ml_efficiency.synthetic"),
    ("ML eff. gap", "ml_efficiency.gap"),
    ("DCR share", "dcr_share"),
    ("exact copies", "exact_copy_rate"),
    ("DCR overfit. prot.", "dcr_overfitting_protection"),
]

#: Published numbers, cited and not run, keyed by the paths above (same units: errors in %, C2ST a
#: detection score with 1 = indistinguishable, which the paper computes with XGBoost).
REFERENCE_SOURCE = (
    'arXiv 2603.23016, "A Sobering Look at Tabular Data Generation via Probabilistic Circuits": '
    "their re-run of TabSyn and TabDiff, and their own probabilistic circuit, on adult "
    "(Shape and Trend error in %, C2ST with XGBoost); their protocol, not this harness's"
)
PUBLISHED_REFERENCES: dict[str, list[tuple[str, dict[str, float]]]] = {
    "adult": [
        ("TabSyn (published [1])", {"shape_error": 0.79, "trend_error": 2.05, "c2st_xgboost.score": 0.794}),
        ("TabDiff (published [1])", {"shape_error": 0.68, "trend_error": 1.54, "c2st_xgboost.score": 0.841}),
        ("Probabilistic circuit (published [1])", {"shape_error": 0.58, "trend_error": 1.44, "c2st_xgboost.score": 0.855}),
    ],
}


# ---------------------------------------------------------------------------------------- one cell
def run_cell(ds: Dataset, model: str, args: argparse.Namespace, schema: Any, real_train: pd.DataFrame,
             real_test: pd.DataFrame | None) -> dict[str, Any]:
    """Fit and sample ``model`` on ``ds``, round-trip its rows through CSV and score them with every
    metric against ``real_train`` (canonical), with ``real_test`` as holdout where the model used it."""
    import torch

    opts = Options(seed=args.seed, quick=args.quick, tabgen_budget=args.tabgen_budget,
                   sdv_epochs=args.sdv_epochs, argn_max_minutes=args.argn_max_minutes)
    record: dict[str, Any] = {
        "dataset": ds.name,
        "model": model,
        "label": MODEL_LABELS[model],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seed": args.seed,
        "quick": args.quick,
        "max_rows": args.max_rows,
        "data": {
            "split": ds.split,
            "n_train": len(ds.train),
            "n_test": None if ds.test is None else len(ds.test),
            "target": ds.target,
            "task_type": ds.info.get("task_type"),
            "categorical": ds.categorical,
            "numerical": ds.numerical,
        },
        "torch_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine()},
        "versions": package_versions(),
        "repo": git_state(),
    }
    n = len(ds.train)
    try:
        seed_everything(args.seed)
        outcome = MODELS[model](ds, n, opts)
        record.update(
            fit_seconds=outcome.fit_seconds, sample_seconds=outcome.sample_seconds, budget=outcome.budget,
            settings=outcome.settings,
        )
        record["torch_threads_after_fit"] = torch.get_num_threads()
        synthetic = round_trip(outcome.frame, ds, args.synthetic_dir, model)
        holdout = real_test if outcome.holdout_used else None
        del outcome
        gc.collect()
        record["n_synthetic"] = len(synthetic)
        record["holdout"] = "test split" if holdout is not None else None
        result, eval_s = timed(lambda: score(
            ds, synthetic, real=real_train, holdout=holdout, target=ds.target, schema=schema, seed=args.seed,
            metrics=None, round_tripped=True,
        ))
        record["evaluate_seconds"] = eval_s
        record["evaluate_settings"] = evaluate_defaults()
        record["metrics"] = result.to_dict()
    except Exception as error:  # noqa: BLE001  (the table must say why a cell is empty)
        record["error"] = f"{type(error).__name__}: {error}".strip()
        record["traceback"] = traceback.format_exc()
    return record


# -------------------------------------------------------------------------------------- the README
def flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = value
    return flat


def fmt(value: Any, seconds: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if seconds:
        return f"{value:.1f}"
    if isinstance(value, int):
        return str(value)
    if value != 0 and abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"


def cell_text(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_readme(results_dir: Path) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Generated by `benchmarks/run.py` from the JSON files beside this page; do not edit by hand.",
        "How the numbers are made, the budgets and what each row means: `benchmarks/README.md`.",
        "",
        "Every model is fitted on the training table and samples as many rows; its rows are written to CSV,",
        "read back and scored by `tabgen.evaluation.evaluate` against the training table, with the test",
        "split as holdout. Times are wall-clock seconds on the machine named in each JSON.",
        "Shape/Trend: error in % (0 ideal). C2ST (detection score), α-precision, β-recall, DCR overfitting",
        "protection: 1 ideal. DCR share: share of synthetic rows closer to training than to holdout rows",
        "(0.5 ideal). Exact copies: fraction of synthetic rows that are training rows. ML efficiency: an",
        "XGBoost model trained on real vs synthetic rows, scored on the test split (gap > 0: synthetic worse).",
        "",
    ]
    datasets = sorted(p for p in results_dir.iterdir() if p.is_dir()) if results_dir.exists() else []
    for directory in datasets:
        records = {}
        for path in sorted(directory.glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(record, dict) and "model" in record:  # not the speed/ or conditional/ summaries
                records[path.stem] = record
        if not records:
            continue
        order = [m for m in MODELS if m in records] + sorted(m for m in records if m not in MODELS)
        data = next(iter(records.values())).get("data", {})
        ml_metric = next(
            (r["metrics"]["ml_efficiency"].get("metric") for r in records.values()
             if isinstance((r.get("metrics") or {}).get("ml_efficiency"), dict)),
            None,
        )
        lines += [
            f"## {directory.name}",
            "",
            f"Train {data.get('n_train')} rows, test {data.get('n_test')} rows ({data.get('split')}); "
            f"target `{data.get('target')}` ({data.get('task_type')})"
            + (f"; ML efficiency metric: {ml_metric}." if ml_metric else "."),
            "",
        ]
        header = ["model", "budget", "fit s", "sample s", *[h for h, _ in TABLE_COLUMNS], "note"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(header) - 3) + ["---"]) + "|")
        for model in order:
            rec = records[model]
            metrics = flatten(rec.get("metrics") or {})
            notes = []
            if rec.get("error"):
                notes.append("error: " + rec["error"][:200])
            if rec.get("note"):  # written by hand into the JSON, e.g. that the machine was busy
                notes.append(rec["note"])
            if rec.get("quick"):
                notes.append("--quick")
            if rec.get("max_rows"):
                notes.append(f"max_rows={rec['max_rows']}")
            if model == "real_holdout":
                notes.append("the test split is the table scored, so no holdout metrics")
            row = [
                rec.get("label", model),
                rec.get("budget") or "—",
                fmt(rec.get("fit_seconds"), seconds=True),
                fmt(rec.get("sample_seconds"), seconds=True),
                *[fmt(metrics.get(path)) for _, path in TABLE_COLUMNS],
                "; ".join(notes),
            ]
            lines.append("| " + " | ".join(cell_text(c) for c in row) + " |")
        references = PUBLISHED_REFERENCES.get(directory.name, [])
        for label, values in references:
            row = [label, "published", "—", "—", *[fmt(values.get(path)) for _, path in TABLE_COLUMNS], "cited, not run"]
            lines.append("| " + " | ".join(cell_text(c) for c in row) + " |")
        if references:
            lines += ["", f"[1] {REFERENCE_SOURCE}."]
        dates = sorted(r.get("date", "") for r in records.values())
        lines += ["", f"Cells run {dates[0]} … {dates[-1]}.", ""]
    return "\n".join(lines) + "\n"


def write_readme(results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "README.md"
    path.write_text(render_readme(results_dir))
    return path


# -------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR,
                        help="folder of dataset folders, each with info.json (default: ../shared/datasets from the repo root)")
    parser.add_argument("--datasets", help="comma-separated dataset names (default: all in --datasets-dir)")
    parser.add_argument("--models", help=f"comma-separated models (default: all): {','.join(MODELS)}")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the JSON files and README.md go")
    parser.add_argument("--force", action="store_true", help="re-run cells whose JSON exists")
    parser.add_argument("--retry-errors", action="store_true", help="re-run cells whose JSON records an error")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=usable_cores(),
                        help="torch threads (default: every core this process may use)")
    parser.add_argument("--tabgen-budget", type=float, default=None, help="tabgen's time_budget in seconds (default: none)")
    parser.add_argument("--sdv-epochs", type=int, default=None, help="TVAE/CTGAN epochs (default: SDV's, 300)")
    parser.add_argument("--argn-max-minutes", type=float, default=None,
                        help="TabularARGN's max_training_time in minutes (default: its own, 14400)")
    parser.add_argument("--max-rows", type=int, default=None,
                        help="smoke tests only: cap the training and test tables at this many rows (needs --results-dir)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke tests only: TVAE/CTGAN {QUICK_SDV_EPOCHS} epochs, TabularARGN {QUICK_ARGN}, "
                             f"tabgen time_budget {QUICK_TABGEN_BUDGET_S:g} s (needs --results-dir)")
    parser.add_argument("--synthetic-dir", type=Path, default=None,
                        help="keep each model's synthetic CSV as DIR/<dataset>/<model>.csv (default: a temporary file)")
    parser.add_argument("--table-only", action="store_true", help="only regenerate README.md from the JSON files")
    args = parser.parse_args(argv)
    if (args.max_rows is not None or args.quick) and args.results_dir.resolve() == RESULTS_DIR.resolve():
        parser.error("--max-rows and --quick are for smoke tests: give a scratch --results-dir (e.g. /tmp/bench-smoke)")
    if args.max_rows is not None and args.max_rows < 10:
        parser.error("--max-rows must be at least 10")
    args.model_list = _pick(parser, args.models, list(MODELS), "model")
    return args


def _pick(parser: argparse.ArgumentParser, given: str | None, known: list[str], what: str) -> list[str]:
    if not given:
        return known
    chosen = [x.strip() for x in given.split(",") if x.strip()]
    unknown = [x for x in chosen if x not in known]
    if unknown:
        parser.error(f"unknown {what}(s) {unknown}; choose from {known}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table_only:
        print(f"wrote {write_readme(args.results_dir)}")
        return 0

    import torch

    from tabgen.schema import infer_schema

    torch.set_num_threads(args.threads)
    available = sorted(p.name for p in args.datasets_dir.iterdir() if (p / "info.json").is_file())
    names = _pick(argparse.ArgumentParser(prog="python -m benchmarks.run"), args.datasets, available, "dataset")
    print(f"datasets {names}; models {args.model_list}; torch threads {args.threads}; results in {args.results_dir}", flush=True)

    failures = 0
    for name in names:
        todo = []
        for model in args.model_list:
            path = args.results_dir / name / f"{model}.json"
            if path.exists() and not args.force:
                try:
                    failed = "error" in json.loads(path.read_text())
                except (OSError, json.JSONDecodeError):
                    failed = True
                if not (failed and args.retry_errors):
                    print(f"[{name}] {model}: skipped, {path} exists (--force to re-run)", flush=True)
                    continue
            todo.append(model)
        if not todo:
            continue
        try:
            ds = load_dataset(args.datasets_dir / name, args.max_rows)
            real_train = canonical(ds.train, ds.categorical)
            real_test = None if ds.test is None else canonical(ds.test, ds.categorical)
            schema = infer_schema(real_train, categorical=ds.categorical, numerical=ds.numerical)
        except Exception as error:  # noqa: BLE001  (the other datasets still run)
            print(f"[{name}] FAILED to load: {type(error).__name__}: {error}", flush=True)
            failures += 1
            continue
        print(f"[{name}] train {len(ds.train)} rows, test {0 if ds.test is None else len(ds.test)} rows ({ds.split})", flush=True)
        for model in todo:
            print(f"[{name}] {model}: running...", flush=True)
            record = run_cell(ds, model, args, schema, real_train, real_test)
            path = args.results_dir / name / f"{model}.json"
            write_json(path, record)
            if "error" in record:
                failures += 1
                print(f"[{name}] {model}: FAILED {' '.join(record['error'].split())[:300]} -> {path}", flush=True)
            else:
                print(
                    f"[{name}] {model}: fit {fmt(record.get('fit_seconds'), True)} s, "
                    f"sample {fmt(record.get('sample_seconds'), True)} s, "
                    f"evaluate {fmt(record.get('evaluate_seconds'), True)} s -> {path}",
                    flush=True,
                )
            write_readme(args.results_dir)
            gc.collect()
    print(f"wrote {write_readme(args.results_dir)}", flush=True)
    if failures:
        print(f"{failures} cell(s) or dataset(s) failed; their JSON files say why", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
