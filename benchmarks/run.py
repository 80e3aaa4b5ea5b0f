#!/usr/bin/env python
"""Benchmark tabgen against peer synthesizers on the shared datasets.

For every (dataset, model) cell: fit on the training table, sample as many rows as it has, write the
rows to CSV and read them back the same way the real files are read, score them with
``tabgen.evaluation.evaluate`` against the training table (the test part as holdout), and write
``<results-dir>/<dataset>/<model>.json``; then regenerate ``<results-dir>/README.md``.

    python benchmarks/run.py --datasets adult --models tabgen,tabular_argn
    python benchmarks/run.py --max-rows 2000 --quick --results-dir /tmp/bench-smoke   # smoke test
    python benchmarks/run.py --table-only                                             # just the README

A cell whose JSON exists is skipped unless --force (a long run can be stopped and continued); a cell
that failed is skipped too unless --retry-errors. See benchmarks/README.md for budgets and row meanings.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.util
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASETS_DIR = REPO_ROOT.parent / "shared" / "datasets"
DEFAULT_RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

#: A dataset shipped as one CSV is split once, the same way for every model and every run.
SPLIT_SEED = 0
TEST_FRACTION = 0.2

#: Smoke-test settings (--quick): enough to prove each model runs end to end, not to rank them.
QUICK_TABGEN_BUDGET_S = 30.0
QUICK_SDV_EPOCHS = 5
QUICK_ARGN = {"max_epochs": 3, "max_training_time": 0.5}  # minutes, as TabularARGN counts

SDV_TABLE = "table"

#: Package distributions whose versions every result records.
VERSIONED_PACKAGES = [
    "tabgen", "torch", "numpy", "pandas", "scikit-learn", "scipy", "sdmetrics", "xgboost-cpu", "xgboost",
    "sdv", "ctgan", "rdt", "copulas", "mostlyai-engine", "opacus", "transformers", "datasets",
]

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


# --------------------------------------------------------------------------------------------- data
@dataclasses.dataclass
class Dataset:
    """One benchmark table: what models fit (``train``) and what the scores compare against."""

    name: str
    info: dict[str, Any]
    train: pd.DataFrame
    test: pd.DataFrame | None
    split: str
    categorical: list[str]
    numerical: list[str]

    @property
    def target(self) -> str | None:
        return self.info.get("target")


def read_table(path: Path | str) -> pd.DataFrame:
    """Read a CSV the way a user would: pandas' defaults, empty fields as missing."""
    return pd.read_csv(path)


def canonical(df: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """The form every table takes before scoring, real and synthetic alike.

    Categorical columns become text with integral numbers written without a decimal part, so ``2``,
    ``2.0`` and ``"2.0"`` are one category whatever dtype a model returned (a column that mixes codes
    with text such as TabularARGN's ``_RARE_`` is read back from CSV as text). Numerical columns are
    left as read: ``evaluate`` turns them into floats and refuses text in them. Missing values stay
    missing.
    """
    out = df.copy()
    for name in categorical:
        out[name] = _canonical_categories(out[name])
    return out


def _canonical_categories(series: pd.Series) -> pd.Series:
    def text(value: Any) -> str:
        if isinstance(value, (bool, np.bool_)):
            return str(bool(value))
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value)
        if math.isfinite(number) and number.is_integer():
            return str(int(number))
        return str(value)

    values = series.astype(object)
    mapping = {v: text(v) for v in pd.unique(values.dropna())}
    return values.map(mapping).astype(object)


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the single-dataset studies (speed, ablation, VAE reconstruction)."""
    parser.add_argument("--dataset", default="adult")
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR)
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR)


def load_dataset(directory: Path, max_rows: int | None) -> Dataset:
    info = json.loads((directory / "info.json").read_text())
    name = info.get("name", directory.name)
    files = list(info["files"])
    train_files = [f for f in files if f.endswith("_train.csv")]
    if train_files:
        train_file = train_files[0]
        test_files = [f for f in files if f.endswith("_test.csv")]
        train = read_table(directory / train_file)
        test = read_table(directory / test_files[0]) if test_files else None
        split = f"own split: {train_file}" + (f" / {test_files[0]}" if test_files else " (no test file)")
    else:
        if len(files) != 1:
            raise ValueError(f"{directory}: expected one CSV or a *_train.csv, found {files}")
        full = read_table(directory / files[0])
        order = np.random.default_rng(SPLIT_SEED).permutation(len(full))
        n_test = int(round(TEST_FRACTION * len(full)))
        train = full.iloc[order[n_test:]].reset_index(drop=True)
        test = full.iloc[order[:n_test]].reset_index(drop=True)
        split = (
            f"random {100 - 100 * TEST_FRACTION:.0f}/{100 * TEST_FRACTION:.0f} split of {files[0]} "
            f"(numpy default_rng({SPLIT_SEED}).permutation; the first {100 * TEST_FRACTION:.0f} % of it is the test part)"
        )
    if max_rows is not None:
        train = _head_sample(train, max_rows)
        test = None if test is None else _head_sample(test, max_rows)
        split += f"; capped at {max_rows} rows each (--max-rows, smoke test)"
    types = {c["name"]: c["type"] for c in info["columns"]}
    missing = [c for c in types if c not in train.columns]
    if missing:
        raise ValueError(f"{directory}: info.json names columns the CSV lacks: {missing}")
    categorical = [c for c in train.columns if types.get(c) == "categorical"]
    numerical = [c for c in train.columns if types.get(c) == "numerical"]
    return Dataset(name, info, train, test, split, categorical, numerical)


def _head_sample(df: pd.DataFrame, n: int) -> pd.DataFrame:
    if len(df) <= n:
        return df
    return df.sample(n=n, random_state=SPLIT_SEED).reset_index(drop=True)


# ------------------------------------------------------------------------------------------- models
@dataclasses.dataclass
class Outcome:
    """What one model produced for one dataset."""

    frame: pd.DataFrame
    fit_seconds: float | None
    sample_seconds: float | None
    budget: str
    settings: dict[str, Any]
    holdout_used: bool = True


@dataclasses.dataclass
class Options:
    seed: int
    quick: bool
    tabgen_budget: float | None = None
    sdv_epochs: int | None = None
    argn_max_minutes: float | None = None


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def run_tabgen(ds: Dataset, n: int, opts: Options) -> Outcome:
    from tabgen import Synthesizer

    budget = opts.tabgen_budget if opts.tabgen_budget is not None else (QUICK_TABGEN_BUDGET_S if opts.quick else None)
    syn = Synthesizer(
        seed=opts.seed, categorical=ds.categorical, numerical=ds.numerical, time_budget=budget, progress=False
    )
    _, fit_s = timed(lambda: syn.fit(ds.train))
    fake, sample_s = timed(lambda: syn.sample(n))
    settings: dict[str, Any] = {"time_budget": budget, "seed": opts.seed, "device": str(getattr(syn, "device_", ""))}
    config = getattr(syn, "config_", None)
    if dataclasses.is_dataclass(config):
        settings["config"] = dataclasses.asdict(config)
    for attr in ("vae_result_", "diffusion_result_"):
        value = getattr(syn, attr, None)
        if dataclasses.is_dataclass(value):
            settings[attr.rstrip("_")] = dataclasses.asdict(value)
    return Outcome(fake, fit_s, sample_s, f"time_budget={budget} s" if budget else "defaults (no time budget)", settings)


def _sdv_runner(class_name: str, epochs: bool) -> Callable[[Dataset, int, Options], Outcome]:
    def run(ds: Dataset, n: int, opts: Options) -> Outcome:
        import sdv.single_table
        from sdv.metadata import Metadata

        columns = {c: {"sdtype": "categorical" if c in ds.categorical else "numerical"} for c in ds.train.columns}
        metadata = Metadata.load_from_dict({"tables": {SDV_TABLE: {"columns": columns}}})
        kwargs = {}
        if epochs and (opts.sdv_epochs is not None or opts.quick):
            kwargs["epochs"] = opts.sdv_epochs if opts.sdv_epochs is not None else QUICK_SDV_EPOCHS
        synthesizer = getattr(sdv.single_table, class_name)(metadata, **kwargs)
        # SDV 2.0: fit takes, and sample returns, {table name: frame}.
        _, fit_s = timed(lambda: synthesizer.fit({SDV_TABLE: ds.train}))
        sampled, sample_s = timed(lambda: synthesizer.sample(num_rows=n))
        params = synthesizer.get_parameters()
        budget = f"{params['epochs']} epochs" if "epochs" in params else "closed form (no training budget)"
        return Outcome(sampled[SDV_TABLE], fit_s, sample_s, budget, {"class": class_name, "parameters": params})

    return run


def make_tabular_argn(ds: Dataset, seed: int, quick: bool, max_minutes: float | None = None) -> Any:
    """An unfitted TabularARGN with its defaults and each column's kind from info.json."""
    from mostlyai.engine import TabularARGN

    encodings = {c: "TABULAR_CATEGORICAL" if c in ds.categorical else "TABULAR_NUMERIC_AUTO" for c in ds.train.columns}
    kwargs: dict[str, Any] = dict(QUICK_ARGN) if quick else {}
    if max_minutes is not None:
        kwargs["max_training_time"] = max_minutes
    return TabularARGN(tgt_encoding_types=encodings, random_state=seed, verbose=0, **kwargs)


def run_tabular_argn(ds: Dataset, n: int, opts: Options) -> Outcome:
    model = make_tabular_argn(ds, opts.seed, opts.quick, opts.argn_max_minutes)
    try:
        _, fit_s = timed(lambda: model.fit(ds.train))
        fake, sample_s = timed(lambda: model.sample(n_samples=n))
        params = {k: v for k, v in model.get_params().items() if k not in ("ctx_data", "workspace_dir", "tgt_encoding_types")}
    finally:
        model.close()
    params["tgt_encoding_types"] = "from info.json: TABULAR_CATEGORICAL / TABULAR_NUMERIC_AUTO"
    budget = f"≤{params['max_epochs']:g} epochs, ≤{params['max_training_time']:g} min, early stopping"
    return Outcome(fake, fit_s, sample_s, budget, params)


def run_independent_marginals(ds: Dataset, n: int, opts: Options) -> Outcome:
    rng = np.random.default_rng(opts.seed)

    def draw() -> pd.DataFrame:
        columns = {c: ds.train[c].iloc[rng.integers(0, len(ds.train), n)].reset_index(drop=True) for c in ds.train.columns}
        return pd.DataFrame(columns)

    fake, sample_s = timed(draw)
    return Outcome(fake, 0.0, sample_s, "none (resamples each column)", {"seed": opts.seed})


def run_real_holdout(ds: Dataset, n: int, opts: Options) -> Outcome:
    if ds.test is None:
        raise RuntimeError("no test split to score")
    # The test part stands in for the synthetic table; it cannot also be the holdout.
    return Outcome(ds.test, None, None, "real data", {"rows": len(ds.test)}, holdout_used=False)


MODELS: dict[str, Callable[[Dataset, int, Options], Outcome]] = {
    "real_holdout": run_real_holdout,
    "independent_marginals": run_independent_marginals,
    "tabgen": run_tabgen,
    "tabular_argn": run_tabular_argn,
    "tvae": _sdv_runner("TVAESynthesizer", epochs=True),
    "ctgan": _sdv_runner("CTGANSynthesizer", epochs=True),
    "gaussian_copula": _sdv_runner("GaussianCopulaSynthesizer", epochs=False),
}

MODEL_LABELS = {
    "real_holdout": "real data (test split) — floor",
    "independent_marginals": "independent marginals — floor",
    "tabgen": "tabgen",
    "tabular_argn": "TabularARGN (mostlyai-engine)",
    "tvae": "TVAE (SDV)",
    "ctgan": "CTGAN (SDV)",
    "gaussian_copula": "GaussianCopula (SDV)",
}


# ---------------------------------------------------------------------------------------- one cell
def package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in VERSIONED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    found["python"] = platform.python_version()
    return found


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except Exception:
            return None

    # Results and docs change while a benchmark runs; only changes to the code make a run "dirty".
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "tabgen", "benchmarks/*.py", "pyproject.toml")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(dirty)}


def commit_label(state: dict[str, Any] | None) -> str:
    """A :func:`git_state` as result tables print it: the short commit, and whether code had changed."""
    if not state or not state.get("commit"):
        return ""
    return state["commit"][:7] + (" (uncommitted changes)" if state.get("dirty") else "")


def evaluate_defaults(evaluate: Callable[..., Any]) -> dict[str, Any]:
    """The settings of ``evaluate`` this harness leaves at their defaults (e.g. its row cap)."""
    import inspect

    try:
        parameters = inspect.signature(evaluate).parameters
    except (TypeError, ValueError):
        return {}
    return {name: p.default for name, p in parameters.items()
            if p.default is not inspect.Parameter.empty and name not in ("holdout", "target", "schema", "seed", "progress")}


def json_safe(value: Any) -> Any:
    """Plain JSON: NaN and infinities become null, numpy scalars and other objects become numbers or text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(json_safe(payload), indent=2) + "\n")
    os.replace(tmp, path)


def run_cell(ds: Dataset, model: str, args: argparse.Namespace, evaluate: Callable[..., Any], schema: Any,
             real_train: pd.DataFrame, real_test: pd.DataFrame | None) -> dict[str, Any]:
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
        result, eval_s = timed(lambda: evaluate(
            real_train, synthetic, holdout=holdout, target=ds.target, schema=schema, seed=args.seed, progress=False
        ))
        record["evaluate_seconds"] = eval_s
        record["evaluate_settings"] = evaluate_defaults(evaluate)
        record["metrics"] = result.to_dict()
    except Exception as error:  # the table must say why a cell is empty
        record["error"] = f"{type(error).__name__}: {error}".strip()
        record["traceback"] = traceback.format_exc()
    return record


def round_trip(frame: pd.DataFrame, ds: Dataset, keep_dir: Path | None, model: str) -> pd.DataFrame:
    """Write the rows as CSV and read them back like the real files, then bring them to canonical form."""
    missing = [c for c in ds.train.columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the synthetic table lacks columns {missing}")
    frame = frame[list(ds.train.columns)]
    if keep_dir is not None:
        path = keep_dir / ds.name / f"{model}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        back = read_table(path)
    else:
        with tempfile.TemporaryDirectory(prefix="tabgen-bench-") as tmp:
            path = Path(tmp) / f"{model}.csv"
            frame.to_csv(path, index=False)
            back = read_table(path)
    return canonical(back, ds.categorical)


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets-dir", type=Path, default=DEFAULT_DATASETS_DIR,
                        help="folder of dataset folders, each with info.json (default: ../shared/datasets from the repo root)")
    parser.add_argument("--datasets", help="comma-separated dataset names (default: all in --datasets-dir)")
    parser.add_argument("--models", help=f"comma-separated models (default: all): {','.join(MODELS)}")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS_DIR, help="where the JSON files and README.md go")
    parser.add_argument("--force", action="store_true", help="re-run cells whose JSON exists")
    parser.add_argument("--retry-errors", action="store_true", help="re-run cells whose JSON records an error")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=usable_cores(), help="torch threads (default: every core this process may use)")
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
    if (args.max_rows is not None or args.quick) and args.results_dir.resolve() == DEFAULT_RESULTS_DIR.resolve():
        parser.error("--max-rows and --quick are for smoke tests: give a scratch --results-dir (e.g. /tmp/bench-smoke)")
    if args.max_rows is not None and args.max_rows < 10:
        parser.error("--max-rows must be at least 10")
    args.model_list = _pick(parser, args.models, list(MODELS), "model")
    return args


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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

    if importlib.util.find_spec("tabgen") is None:  # run from a checkout without `pip install -e .`
        sys.path.insert(0, str(REPO_ROOT))
    import torch
    from tabgen.evaluation import evaluate
    from tabgen.schema import infer_schema

    torch.set_num_threads(args.threads)
    available = sorted(p.name for p in args.datasets_dir.iterdir() if (p / "info.json").is_file())
    names = _pick(argparse.ArgumentParser(prog="run.py"), args.datasets, available, "dataset")
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
        except Exception as error:
            print(f"[{name}] FAILED to load: {type(error).__name__}: {error}", flush=True)
            failures += 1
            continue
        print(f"[{name}] train {len(ds.train)} rows, test {0 if ds.test is None else len(ds.test)} rows ({ds.split})", flush=True)
        for model in todo:
            print(f"[{name}] {model}: running...", flush=True)
            record = run_cell(ds, model, args, evaluate, schema, real_train, real_test)
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
