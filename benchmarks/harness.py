"""What every benchmark shares: the shared tables, fitting tabgen, the CSV round trip, scoring, the
machine, and the records (versions, commit, JSON).

The scripts beside this module import only from here and from :mod:`benchmarks.peers`; none imports
another script. Run them from the repository root as ``python -m benchmarks.<script>``. Heavy imports
(torch, the evaluation's sdmetrics and xgboost) happen inside the functions that need them, so that
``gpu.py`` runs where only torch, pandas and tabgen are installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import os
import platform
import random
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from tabgen import Schema, Synthesizer, SynthesizerConfig
    from tabgen.evaluation import EvaluationResult

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_DIR = REPO_ROOT / "benchmarks"
#: The shared UCI tables, one folder each with an ``info.json``.
DATASETS_DIR = REPO_ROOT.parent / "shared" / "datasets"
RESULTS_DIR = BENCHMARKS_DIR / "results"
#: Fitted models kept between runs (git ignores it): ``speed.py``'s default fits, ``ablation.py``'s VAEs.
MODEL_CACHE = BENCHMARKS_DIR / "cache"

#: A dataset shipped as one CSV is split once, the same way for every model and every run.
SPLIT_SEED = 0
TEST_FRACTION = 0.2

#: Package distributions whose versions every result records.
VERSIONED_PACKAGES = [
    "tabgen", "torch", "numpy", "pandas", "scikit-learn", "scipy", "sdmetrics", "xgboost-cpu", "xgboost",
    "sdv", "ctgan", "rdt", "copulas", "mostlyai-engine", "opacus", "transformers", "datasets",
]

#: The metric groups of the single-table studies: Shape, Trend and the detectors (tree C2ST among them).
FIDELITY = ("fidelity", "detection")


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

    def schema(self) -> Schema:
        """The column kinds of the training table, as ``info.json`` gives them."""
        from tabgen.schema import infer_schema

        return infer_schema(self.train, self.categorical, self.numerical)


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
    """The options of the single-dataset studies: ``--dataset``, ``--datasets-dir``, ``--results-dir``."""
    parser.add_argument("--dataset", default="adult")
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)


def load_dataset(directory: Path, max_rows: int | None = None) -> Dataset:
    """The dataset in ``directory``: its ``*_train.csv`` and ``*_test.csv``, or its one CSV split 80/20
    once (:data:`SPLIT_SEED`); column kinds from ``info.json``. ``max_rows`` caps both parts (smoke tests)."""
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
        n_test = round(TEST_FRACTION * len(full))
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


# ------------------------------------------------------------------------------------------ fitting
def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def user_environment(changes: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, with ``changes``, as an installed tabgen's user has it: where
    ``PYTHONDONTWRITEBYTECODE`` is set (as on the project's machines) an editable install compiled
    tabgen's modules again in every process, 0.1-0.15 s that pip's install (which compiles them) saves."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | (changes or {})


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and its wall-clock seconds."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def fit_tabgen(ds: Dataset, seed: int, time_budget: float | None = None, config: SynthesizerConfig | None = None,
               device: str = "auto") -> tuple[Synthesizer, float]:
    """tabgen fitted on ``ds.train`` with the dataset's column kinds, and the fit's wall-clock seconds.

    ``config=None`` takes the defaults a user gets on ``device`` (:meth:`SynthesizerConfig.for_device`).
    """
    from tabgen import Synthesizer

    syn = Synthesizer(seed=seed, categorical=ds.categorical, numerical=ds.numerical, time_budget=time_budget,
                      config=config, device=device, progress=False)
    _, seconds = timed(lambda: syn.fit(ds.train))
    return syn, seconds


def cpu_defaults(max_steps: int | None = None) -> SynthesizerConfig:
    """The defaults a user gets on this CPU; ``max_steps`` caps both networks' steps (smoke tests only)."""
    from tabgen import SynthesizerConfig

    config = SynthesizerConfig.for_device("cpu")
    if max_steps is not None:
        config.diffusion.max_steps = config.vae.max_steps = max_steps
    return config


def sample(model: Any, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows of a fitted tabgen model (at ``seed``) or TabularARGN (which is then closed)."""
    if hasattr(model, "rules_"):
        return model.sample(n, seed=seed)
    try:
        return model.sample(n_samples=n)
    finally:
        model.close()


# ---------------------------------------------------------------------------------------- scoring
def round_trip(frame: pd.DataFrame, ds: Dataset, keep_dir: Path | None = None, model: str = "tabgen") -> pd.DataFrame:
    """Write the rows as CSV and read them back like the real files, then bring them to canonical form.

    Peers return pandas extension dtypes (``Float64``, ``string``) that sdmetrics scores differently;
    the round trip gives every model's rows the dtypes the real table has. With ``keep_dir`` the CSV
    is kept as ``keep_dir/<dataset>/<model>.csv``.
    """
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


#: Formats of the shared tables' datetime columns (superstore's are day first, two-digit years).
DATE_FORMATS = {"superstore": "%d/%m/%y", "houses": "%Y%m%dT%H%M%S"}


def parsed_dates(ds: Dataset) -> Dataset:
    """``ds`` with its datetime columns (``"datetime"`` in info.json) parsed, for every model alike:
    TabularARGN treats text dates as text."""
    dates = [c["name"] for c in ds.info["columns"] if c["type"] == "datetime"]
    fmt = DATE_FORMATS.get(ds.name)
    for frame in (ds.train, ds.test):
        if frame is not None:
            for name in dates:
                frame[name] = pd.to_datetime(frame[name], format=fmt)
    return ds


def read_back(frame: pd.DataFrame, ds: Dataset, folder: Path, model: str) -> pd.DataFrame:
    """The rows as a user gets them: written to ``folder/<dataset>/<model>.csv``, read back, dates parsed
    as the real ones were, in canonical form."""
    path = folder / ds.name / f"{model}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[list(ds.train.columns)].to_csv(path, index=False)
    back = read_table(path)
    for name in ds.train.columns:
        if pd.api.types.is_datetime64_any_dtype(ds.train[name]):
            back[name] = pd.to_datetime(back[name])
    return canonical(back, ds.categorical)


def score(ds: Dataset, synthetic: pd.DataFrame, *, seed: int, schema: Schema | None = None,
          real: pd.DataFrame | None = None, holdout: pd.DataFrame | None = None, target: str | None = None,
          metrics: Sequence[str] | None = FIDELITY, floor: bool = False, round_tripped: bool = False) -> EvaluationResult:
    """``tabgen.evaluation.evaluate`` of ``synthetic`` against the real rows, without a progress bar.

    ``synthetic`` is taken as a model returned it and goes through :func:`round_trip` first, unless
    ``round_tripped`` says it is canonical already (rows read back, or real rows). ``real`` defaults to
    the canonical training table; ``holdout`` must be canonical. ``schema=None`` lets ``evaluate``
    infer the kinds from ``real``. ``metrics`` are ``evaluate``'s groups (None: every one; default
    :data:`FIDELITY`); ``floor`` also scores the holdout in place of the synthetic rows. Every other
    setting is ``evaluate``'s default (:func:`evaluate_defaults`). :func:`headline` picks the three
    numbers most studies report.
    """
    from tabgen.evaluation import evaluate

    if not round_tripped:
        synthetic = round_trip(synthetic, ds)
    if real is None:
        real = canonical(ds.train, ds.categorical)
    metrics = None if metrics is None else list(metrics)
    return evaluate(real, synthetic, holdout=holdout, target=target, schema=schema, seed=seed, metrics=metrics,
                    floor=floor, progress=False)


def headline(result: EvaluationResult) -> dict[str, float | None]:
    """Shape and Trend error (%) and the tree C2ST of a :func:`score`."""
    return {"shape": result.shape_error, "trend": result.trend_error,
            "c2st_tree": result.c2st_xgboost.score if result.c2st_xgboost else None}


def scored_against_both(ds: Dataset, synthetic: pd.DataFrame, *, seed: int, schema: Schema | None = None,
                        round_tripped: bool = False, rules: bool = False) -> dict[str, Any]:
    """:func:`headline` of ``synthetic`` against the training table, and its Shape, Trend and tree C2ST
    against the held-out rows (``*_holdout``), all rows of each; with ``rules``, also ``rules_kept``:
    the training table's rules and the share of training, held-out and synthetic rows keeping each."""
    metrics = [*FIDELITY, "rules"] if rules else FIDELITY
    result = score(ds, synthetic, seed=seed, schema=schema, holdout=canonical(ds.test, ds.categorical),
                   metrics=metrics, round_tripped=round_tripped)
    theirs = result.against_holdout
    out = {**headline(result), "shape_holdout": theirs["shape_error"], "trend_holdout": theirs["trend_error"],
           "c2st_holdout": theirs["c2st_xgboost"]}
    return {**out, "rules_kept": result.rules} if rules else out


#: :func:`fidelity_and_privacy`'s metric groups.
PRIVACY_METRICS = ("fidelity", "detection", "privacy")


def fidelity_and_privacy(ds: Dataset, synthetic: pd.DataFrame, *, seed: int, holdout: pd.DataFrame,
                         floor: bool = False) -> dict[str, Any]:
    """:func:`headline` of ``synthetic`` against the training table, its Trend and tree C2ST against
    ``holdout`` (``*_holdout``), and the privacy scores against ``holdout``: DCR share, exact copies and
    the membership AUC. With ``floor``, also ``floor``: the :func:`headline` of the held-out rows."""
    result = score(ds, synthetic, seed=seed, holdout=canonical(holdout, ds.categorical), metrics=PRIVACY_METRICS,
                   floor=floor)
    theirs = result.against_holdout
    out = {**headline(result), "trend_holdout": theirs["trend_error"], "c2st_holdout": theirs["c2st_xgboost"],
           "dcr_share": result.dcr_share, "exact_copy_rate": result.exact_copy_rate,
           "membership_auc": result.membership_auc}
    if floor:
        out["floor"] = {k: result.floor.get(k) for k in ("shape_error", "trend_error", "c2st_xgboost")}
    return out


def subsample(ds: Dataset, rows: int, seed: int) -> tuple[Dataset, pd.DataFrame]:
    """``ds`` with ``rows`` rows of its training table (and no test rows), and as many other training
    rows held out."""
    order = np.random.default_rng(seed).permutation(len(ds.train))
    if 2 * rows > len(order):
        raise SystemExit(f"{ds.name} has {len(order)} training rows; {rows} and as many held out do not fit")
    train, holdout = ds.train.iloc[order[:rows]], ds.train.iloc[order[rows:2 * rows]]
    return dataclasses.replace(ds, train=train.reset_index(drop=True), test=None), holdout.reset_index(drop=True)


def unseen(ds: Dataset, rows: int, seed: int, n: int = 5000) -> pd.DataFrame:
    """Up to ``n`` training-table rows that :func:`subsample` of ``rows`` and ``seed`` neither trains on
    nor holds out: fresh real rows, whose DCR share and membership AUC are the privacy floor of that
    split (at a few hundred rows the split alone moves them by ±0.03)."""
    order = np.random.default_rng(seed).permutation(len(ds.train))[2 * rows:]
    rest = ds.train.iloc[order[:n]]
    return rest.reset_index(drop=True)


def floor_scores(ds: Dataset, seed: int) -> dict[str, float | None]:
    """:func:`headline` of the held-out rows against the training table: the floor."""
    return headline(score(ds, canonical(ds.test, ds.categorical), seed=seed, round_tripped=True))


def mean_scores(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The mean over runs of each of the headline scores, fit seconds and peak RSS that every run has."""
    keys = [k for k in ("shape", "trend", "c2st_tree", "fit_seconds", "peak_rss_mib") if all(k in r for r in runs)]
    return {k: float(np.mean([r[k] for r in runs])) for k in keys}


def evaluate_defaults() -> dict[str, Any]:
    """The settings of ``evaluate`` that :func:`score` leaves at their defaults (e.g. its row cap)."""
    from tabgen.evaluation import evaluate

    try:
        parameters = inspect.signature(evaluate).parameters
    except (TypeError, ValueError):
        return {}
    return {name: p.default for name, p in parameters.items()
            if p.default is not inspect.Parameter.empty and name not in ("holdout", "target", "schema", "seed", "progress")}


# ------------------------------------------------------------------------------------------ machine
def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine() -> dict[str, Any]:
    """What the seconds depend on: the CPU model, whether it has bfloat16 matrix units (AMX; the key's
    name is older than AMD's bfloat16 products), and whether ``precision="auto"`` takes bfloat16 products."""
    import torch

    from tabgen.precision import native_bfloat16

    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    cpu = torch.device("cpu")
    amx = bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    return {"cpu": model, "native_bfloat16": amx, "bfloat16_products": native_bfloat16(cpu),
            "cpu_count": os.cpu_count(), "usable_cores": usable_cores()}


def sync(device: Any) -> None:
    """Wait for the device's queued work, so that host clocks time it."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype: Any, device: Any = None, n: int = 2048, seconds: float = 3.0) -> float:
    """The machine's own matrix-product throughput in FLOP/s: ``n``-square products in ``dtype``,
    repeated for ``seconds``."""
    import torch

    device = device or torch.device("cpu")
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    start, reps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
        sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start)


# ------------------------------------------------------------------------------------------ records
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
    """The commit that runs, and whether its code (not results or docs) has uncommitted changes."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True)
            return done.stdout.strip()
        except Exception:  # noqa: BLE001  (no git, or not a checkout: the record says so with None)
            return None

    # Results and docs change while a benchmark runs; only changes to the code make a run "dirty".
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "tabgen", "benchmarks/*.py", "pyproject.toml")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(dirty)}


def commit_label(state: dict[str, Any] | None) -> str:
    """A :func:`git_state` as result tables print it: the short commit, and whether code had changed."""
    if not state or not state.get("commit"):
        return ""
    return state["commit"][:7] + (" (uncommitted changes)" if state.get("dirty") else "")


def _percent(value: float | None) -> str:
    """A share as ``12.3 %``; empty for ``None``."""
    return "" if value is None else f"{100 * value:.1f} %"


def rules_kept_table(kept: dict[str, list[dict[str, Any]]], shown: Sequence[int] | None = None) -> list[str]:
    """Markdown lines: each rule found in the training table (the ``rules_kept`` of
    :func:`scored_against_both`, one list per model, in the same order), the share of training and held-out
    rows keeping it, and each model's share; ``shown`` picks the rules (default: all)."""
    first = next(iter(kept.values()))
    lines = ["| rule found in the training table | training rows | held-out rows | " + " | ".join(kept) + " |",
             "|---|---:|---:|" + "---:|" * len(kept)]
    for i in range(len(first)) if shown is None else shown:
        rule = first[i]
        partial = " (share)" if rule["partial"] else ""
        lines.append(f"| {rule['kind']}: `{rule['rule']}`{partial} | {_percent(rule['real'])} | {_percent(rule['holdout'])} | "
                     + " | ".join(_percent(rules[i]["synthetic"]) for rules in kept.values()) + " |")
    return lines


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


def write_results(folder: Path, name: str, results: dict[str, Any], markdown: str) -> None:
    """``results`` as ``folder/name.json`` and their rendering as ``folder/name.md``."""
    write_json(folder / f"{name}.json", results)
    (folder / f"{name}.md").write_text(markdown)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """``payload`` as indented plain JSON (:func:`json_safe`), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(json_safe(payload), indent=2) + "\n")
    os.replace(tmp, path)
