"""Sampling speed against fidelity: each ODE solver at several step counts, on one fitted model per table (issue 34).

    python -m benchmarks.solvers --machine epyc-zen4 --tables adult,default
    python -m benchmarks.solvers --machine smoke --tables adult --max-rows 2000 --max-steps 200

For each table, at ``--seed`` (0): tabgen fitted once with the defaults a user gets (or read from
``--models DIR/<table>.tabgen``, written there after a fit). Then for each solver and step count, the
calibration is learned again from that sampler's own rows (as a fit would learn it), and the model
samples as many rows as the training table, timed in process (rows per second, rules written); a model
fitted before the latents' widest directions (:mod:`tabgen.latent_axes`) gets them from the table's
latents, as a fit now measures them. The rows are written to CSV and read back, and all of them scored
against the training table and against the held-out rows. Results:
``<results-dir>/<machine>/solvers/<out>.json`` and ``.md``, rewritten after every setting. ``heun:20:80``
takes 20 levels from σ = 80 (EDM's), ``heun:14`` 14 from the model's own σ_max. ``distilled:K`` samples
with K Euler steps of a student denoiser distilled from the model's Heun sampler,
``distilled:80/8/2.5/1.2/0.6/0.25/0.06`` between those noise levels (:mod:`benchmarks.distillation`; its
seconds are ``distillation_seconds``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
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
    scored_against_both,
    timed,
    write_results,
)

TABLES = ("adult", "shoppers", "magic", "default", "beijing", "superstore")
#: (solver, noise levels): Heun's 2·N − 1 denoiser calls against DPM-Solver++(2M)'s N.
SETTINGS = ("heun:20", "heun:10", "heun:5", "dpm2m:20", "dpm2m:12", "dpm2m:10", "dpm2m:8", "dpm2m:6")


def fitted(ds: Dataset, args: argparse.Namespace) -> Any:
    """The table's model at the defaults: read from ``--models`` if it holds one, else fitted (and kept there)."""
    from tabgen import Synthesizer

    path = None if args.models is None else args.models / f"{ds.name}.tabgen"
    if path is not None and path.exists():
        return Synthesizer.load(path, progress=False)
    config = None if args.max_steps is None else cpu_defaults(args.max_steps)
    syn, _ = fit_tabgen(ds, args.seed, config=config)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        syn.save(path)
    return syn


def recalibrated(syn: Any, ds: Dataset, solver: str, steps: int, sigma_max: float | None) -> float:
    """Set the model's sampler to ``solver`` at ``steps`` levels (from ``sigma_max``, or the config's) and
    learn its calibration from those rows; returns the seconds that took."""
    from tabgen.fitting import calibrate
    from tabgen.latent_axes import principal_axes
    from tabgen.protection import ValueProtection
    from tabgen.schema import validate_frame

    model = syn.model_
    model.sampler.config = replace(model.sampler.config, solver=solver, num_steps=steps,
                                   sigma_max=sigma_max or model.config.sampler.sigma_max)
    table = validate_frame(ds.train)  # with its rare values grouped, as the fit learned it
    table = ValueProtection.fit(table, model.schema, model.config.rare_value_rows).apply(table)
    df, _ = model.rules.model_table(table, model.schema)
    tensors = model.codec.transform.transform(df).to_tensors(model.device)
    scaling = model.codec.scaling
    if scaling.axes is None and model.config.privacy.epsilon is None:  # fitted before them: as a fit measures them now
        z = scaling.standardise(model.codec.encode_means(tensors[0], tensors[2]))
        scaling.axes, scaling.axis_variances, scaling.rest_variance = principal_axes(z)
    _, seconds = timed(lambda: setattr(model.codec, "calibration",
                                       calibrate(model.sampler, tensors, model.sampler.config.calibration_rows)))
    return seconds


def run(syn: Any, ds: Dataset, setting: str, args: argparse.Namespace) -> dict[str, Any]:
    solver, steps, *sigma_max = setting.split(":")
    if solver != "distilled":
        return scored(syn, ds, solver, int(steps), float(sigma_max[0]) if sigma_max else None, setting, args)
    from .distillation import distil, sampling_with

    (student, levels), seconds = timed(lambda: distil(syn.model_, steps))
    with sampling_with(syn.model_, student, levels):
        r = scored(syn, ds, "heun", len(levels) - 1, None, setting.replace("/", "_"), args)
    return {**r, "solver": solver, "levels": levels[:-1], "denoiser_calls": len(levels) - 1, "distillation_seconds": seconds}


def scored(syn: Any, ds: Dataset, solver: str, steps: int, sigma_max: float | None, setting: str,
           args: argparse.Namespace) -> dict[str, Any]:
    calibration_s = recalibrated(syn, ds, solver, steps, sigma_max)
    rows, sample_s = timed(lambda: syn.sample(len(ds.train), seed=args.seed))
    back = read_back(rows, ds, BENCHMARKS_DIR / "synthetic" / "solvers", setting.replace(":", "-"))
    calls = 2 * steps - 1 if solver == "heun" else steps
    return {"solver": solver, "steps": steps, "sigma_max": syn.model_.sampler.config.sigma_max, "denoiser_calls": calls,
            "calibration_seconds": calibration_s,
            "sample_seconds": sample_s, "rows_per_second": len(rows) / sample_s,
            "scores": scored_against_both(ds, back, seed=args.seed, schema=ds.schema(), round_tripped=True)}


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# ODE solvers and step counts ({results['machine']['cpu']}, commit {commit_label(results['git'])})", "",
             f"`{results['command']}`: seed {results.get('seed', 0)}, one default fit per table, the calibration "
             "learned again for each setting; all rows scored against the training table and against the held-out rows.", "",
             "| table | solver | levels | σ_max | denoiser calls | rows/s | Trend % | C2ST | vs held-out: Trend % | C2ST |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, r in results["runs"].items():
        s = r["scores"]
        table, setting = key.split("/", 1)
        lines.append(f"| {table} | {r['solver']} | {setting.split(':')[1]} | {r.get('sigma_max', '')} | {r['denoiser_calls']} | "
                     f"{r['rows_per_second']:,.0f} | {s['trend']:.2f} | {s['c2st_tree']:.3f} | "
                     f"{s['trend_holdout']:.2f} | {s['c2st_holdout']:.3f} |")
    for table, f in results["floors"].items():
        lines.append(f"| {table} | floor (held-out rows) | | | | | {f['trend']:.2f} | {f['c2st_tree']:.3f} | | |")
    distilled = [f"{key}: {r['distillation_seconds']:.0f} s" for key, r in results["runs"].items() if "distillation_seconds" in r]
    if distilled:
        lines += ["", "`distilled`: Euler steps of a student denoiser distilled from the model's Heun sampler "
                  "(benchmarks/distillation.py); seconds to distil: " + ", ".join(distilled) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.solvers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--machine", required=True, help="a label for this machine: the results folder's name")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--settings", default=",".join(SETTINGS), help="solver:levels, comma separated")
    parser.add_argument("--models", type=Path, default=None, help="a folder of fitted models to read and keep")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=None, help="cap each table's rows (smoke tests only)")
    parser.add_argument("--max-steps", type=int, default=None, help="cap tabgen's steps (smoke tests only)")
    parser.add_argument("--out", default="latest")
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    results = {"machine": machine(), "git": git_state(), "seed": args.seed, "runs": {}, "floors": {},
               "command": "python -m benchmarks.solvers " + " ".join(sys.argv[1:] if argv is None else argv)}
    for table in args.tables.split(","):
        ds = parsed_dates(load_dataset(args.datasets_dir / table, max_rows=args.max_rows))
        results["floors"][table] = floor_scores(ds, args.seed)
        syn = fitted(ds, args)
        for setting in args.settings.split(","):
            results["runs"][f"{table}/{setting}"] = run(syn, ds, setting, args)
            write_results(args.results_dir / args.machine / "solvers", args.out, results, markdown(results))
            print(f"{table} {setting}: {results['runs'][f'{table}/{setting}']['scores']}", flush=True)


if __name__ == "__main__":
    main()
