"""What each of the calibration's maps buys, on fixed models: tabgen fitted once per seed with a time
budget, then the same model sampled with each variant of the calibration, two draws each.

    python -m benchmarks.calibration_maps --dataset adult --budget 125 --seeds 0,1

Variants, each adding to the one before: ``none`` (the model's own rows), ``marginal`` (per-head
biases and per-number quantile maps), ``pair`` (the Chow-Liu pair biases), ``given`` (each number's
maps given its categorical parents), ``grid`` (numbers of few values written on the table's grid:
the model's default). The models are kept in ``benchmarks/cache/`` so that a second run only scores.
Writes ``<results-dir>/<dataset>-<budget>s.json`` and prints the means.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from benchmarks.harness import (
    DATASETS_DIR,
    MODEL_CACHE,
    RESULTS_DIR,
    fit_tabgen,
    git_state,
    headline,
    load_dataset,
    machine,
    score,
)

VARIANTS = ("none", "marginal", "pair", "given", "grid")
DRAWS = (7, 8)


def variants(syn, tensors) -> dict:
    """Each variant as (calibration, transform) for ``syn``, whose transform has the grids."""
    from tabgen.fitting import calibrate
    from tabgen.transform import TableTransform

    codec = syn.codec_
    grid = calibrate(syn.sampler_, tensors, syn.config_.sampler.calibration_rows)
    arrays = {k: v for k, v in codec.transform.state_arrays().items() if not k.startswith("grid")}
    interpolating = TableTransform.from_state(codec.schema, arrays, [list(v) for v in codec.layout.value_levels])
    given = dataclasses.replace(grid)
    pair = dataclasses.replace(given, conditional_scores=[])
    marginal = dataclasses.replace(pair, pairs=[], pair_bias=[])
    return {"none": (None, interpolating), "marginal": (marginal, interpolating), "pair": (pair, interpolating),
            "given": (given, interpolating), "grid": (grid, codec.transform)}


def main(argv: list[str] | None = None) -> None:
    import torch

    from tabgen import Synthesizer

    parser = argparse.ArgumentParser(prog="python -m benchmarks.calibration_maps", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="adult")
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    parser.add_argument("--budget", type=float, default=125.0, help="fit seconds per model")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR / "calibration")
    args = parser.parse_args(argv)
    ds = load_dataset(args.datasets_dir / args.dataset)
    scores: dict[str, dict[str, float]] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        path = MODEL_CACHE / f"{ds.name}-{int(args.budget)}s-seed{seed}.tabgen"
        if path.exists():
            syn = Synthesizer.load(path, progress=False)
        else:
            syn, _ = fit_tabgen(ds, seed, time_budget=args.budget)
            path.parent.mkdir(parents=True, exist_ok=True)
            syn.save(path)
        tensors = syn.codec_.transform.transform(ds.train).to_tensors(syn.device_)
        torch.manual_seed(seed)
        for name, (calibration, transform) in variants(syn, tensors).items():
            syn.codec_.calibration, syn.codec_.transform = calibration, transform
            for draw in DRAWS:
                fake = syn.sample(len(ds.train), seed=draw)
                scores[f"{name}/seed{seed}/draw{draw}"] = headline(score(ds, fake, seed=seed, schema=syn.schema_))
                print(name, seed, draw, {k: round(v, 4) for k, v in scores[f"{name}/seed{seed}/draw{draw}"].items()}, flush=True)
    means = {name: {k: float(np.mean([v[k] for key, v in scores.items() if key.startswith(name + "/")]))
                    for k in ("shape", "trend", "c2st_tree")} for name in VARIANTS}
    for name, m in means.items():
        print(f"{name:9s} Shape {m['shape']:.2f} · Trend {m['trend']:.2f} · C2ST {m['c2st_tree']:.3f}")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"{ds.name}-{int(args.budget)}s.json"
    out.write_text(json.dumps({"budget": args.budget, "machine": machine(), "git": git_state(),
                               "means": means, "scores": scores}, indent=1))
    print("wrote", out)


if __name__ == "__main__":
    main()
