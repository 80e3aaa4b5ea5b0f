"""What each of the calibration's maps buys, on fixed models: tabgen fitted once per seed with a time
budget, then the same model sampled with each variant of the calibration, two draws each.

    python benchmarks/calibration_maps.py --dataset adult --budget 125 --seeds 0,1

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
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402
import speed  # noqa: E402

VARIANTS = ("none", "marginal", "pair", "given", "grid")
DRAWS = (7, 8)


def variants(syn, tensors) -> dict:
    """Each variant as (calibration, transform) for ``syn``, whose transform has the grids."""
    from tabgen.transform import TableTransform

    grid = syn._calibrate(tensors, None)
    interpolating = TableTransform.from_state(syn.schema_, {k: v for k, v in syn.transform_.state_arrays().items()
                                                           if not k.startswith("grid")})
    given = dataclasses.replace(grid)
    pair = dataclasses.replace(given, conditional_scores=[])
    marginal = dataclasses.replace(pair, pairs=[], pair_bias=[])
    return {"none": (None, interpolating), "marginal": (marginal, interpolating), "pair": (pair, interpolating),
            "given": (given, interpolating), "grid": (grid, syn.transform_)}


def main(argv: list[str] | None = None) -> None:
    import torch

    import tabgen.synthesizer as S
    from tabgen import Synthesizer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="adult")
    parser.add_argument("--datasets-dir", type=Path, default=bench.DEFAULT_DATASETS_DIR)
    parser.add_argument("--budget", type=float, default=125.0, help="fit seconds per model")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--results-dir", type=Path, default=Path(__file__).resolve().parent / "results" / "calibration")
    args = parser.parse_args(argv)
    ds = bench.load_dataset(args.datasets_dir / args.dataset, None)
    scores: dict[str, dict[str, float]] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        path = speed.MODEL_CACHE / f"{ds.name}-{int(args.budget)}s-seed{seed}.tabgen"
        if path.exists():
            syn = Synthesizer.load(path, progress=False)
        else:
            syn, _ = speed.fit_tabgen(ds, seed, time_budget=args.budget)
            path.parent.mkdir(parents=True, exist_ok=True)
            syn.save(path)
        tensors = S._to_tensors(syn.transform_.transform(ds.train), syn.device_)
        torch.manual_seed(seed)
        for name, (calibration, transform) in variants(syn, tensors).items():
            syn.calibration_, syn.transform_ = calibration, transform
            for draw in DRAWS:
                scores[f"{name}/seed{seed}/draw{draw}"] = speed.score(ds, syn.schema_, syn.sample(len(ds.train), seed=draw), seed)
                print(name, seed, draw, {k: round(v, 4) for k, v in scores[f"{name}/seed{seed}/draw{draw}"].items()}, flush=True)
    means = {name: {k: float(np.mean([v[k] for key, v in scores.items() if key.startswith(name + "/")]))
                    for k in ("shape", "trend", "c2st_tree")} for name in VARIANTS}
    for name, m in means.items():
        print(f"{name:9s} Shape {m['shape']:.2f} · Trend {m['trend']:.2f} · C2ST {m['c2st_tree']:.3f}")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"{ds.name}-{int(args.budget)}s.json"
    out.write_text(json.dumps({"budget": args.budget, "machine": speed.machine(), "git": bench.git_state(),
                               "means": means, "scores": scores}, indent=1))
    print("wrote", out)


if __name__ == "__main__":
    main()
