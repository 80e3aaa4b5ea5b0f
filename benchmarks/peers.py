"""The models tabgen is compared with, each behind one signature, and the same-time duel.

Every runner takes ``(dataset, rows to sample, Options)`` and returns an :class:`Outcome`. SDV and
mostlyai-engine are imported only when their runner is called: they live in the benchmark venv
(``.venv-bench``, see ``benchmarks/README.md``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.harness import Dataset, fit_tabgen, headline, mean_scores, score, timed

#: Smoke-test settings (--quick): enough to prove each model runs end to end, not to rank them.
QUICK_TABGEN_BUDGET_S = 30.0
QUICK_SDV_EPOCHS = 5
QUICK_ARGN = {"max_epochs": 3, "max_training_time": 0.5}  # minutes, as TabularARGN counts

SDV_TABLE = "table"


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


def run_tabgen(ds: Dataset, n: int, opts: Options) -> Outcome:
    budget = opts.tabgen_budget if opts.tabgen_budget is not None else (QUICK_TABGEN_BUDGET_S if opts.quick else None)
    syn, fit_s = fit_tabgen(ds, opts.seed, time_budget=budget)
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


def sdv_runner(class_name: str, epochs: bool) -> Callable[[Dataset, int, Options], Outcome]:
    """The runner of one of SDV's single-table synthesizers; ``epochs``: whether it trains for epochs."""
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

    # Parsed datetimes as datetimes: as numbers, TabularARGN wrote the year alone ("2024").
    encodings = {c: "TABULAR_CATEGORICAL" if c in ds.categorical else
                 "TABULAR_DATETIME" if pd.api.types.is_datetime64_any_dtype(ds.train[c]) else "TABULAR_NUMERIC_AUTO"
                 for c in ds.train.columns}
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
    params["tgt_encoding_types"] = "from info.json: TABULAR_CATEGORICAL / TABULAR_DATETIME / TABULAR_NUMERIC_AUTO"
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
    "tvae": sdv_runner("TVAESynthesizer", epochs=True),
    "ctgan": sdv_runner("CTGANSynthesizer", epochs=True),
    "gaussian_copula": sdv_runner("GaussianCopulaSynthesizer", epochs=False),
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


def duel(ds: Dataset, seeds: list[int]) -> dict[str, Any]:
    """Per seed, TabularARGN with its defaults (its fit seconds S), then tabgen with ``time_budget=S``;
    each model's rows (as many as the training table) scored against it. ``{"runs", "mean"}``."""
    schema = ds.schema()
    runs = []
    for seed in seeds:
        outcome = run_tabular_argn(ds, len(ds.train), Options(seed=seed, quick=False))
        argn = {"fit_seconds": outcome.fit_seconds, **headline(score(ds, outcome.frame, seed=seed, schema=schema))}
        syn, fit_s = fit_tabgen(ds, seed, time_budget=outcome.fit_seconds)
        tabgen = {"fit_seconds": fit_s, **headline(score(ds, syn.sample(len(ds.train)), seed=seed, schema=schema))}
        runs.append({"seed": seed, "tabular_argn": argn, "tabgen": tabgen})
        print(f"  duel seed {seed}: TabularARGN {argn}  tabgen {tabgen}", flush=True)
    return {
        "runs": runs,
        "mean": {who: mean_scores([r[who] for r in runs]) for who in ("tabular_argn", "tabgen")},
    }
