"""The denoiser's float type, table by table, on this CPU profile: the default fit with float32 and with
bfloat16 products, scored against the training table and against the held-out rows.

    python -m benchmarks.precision --tables adult,default --out epyc-avx512        # about 40 minutes on 2 cores
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        python -m benchmarks.precision --tables adult --precisions float32 --out epyc-as-avx2   # an older laptop
    python -m benchmarks.precision --tables adult --max-steps 200 --results-dir /tmp/p --out smoke

Each fit takes the defaults a user gets on this CPU (``SynthesizerConfig.for_device("cpu")``) with
only the products' float type set, seed 0, one after the other. Each model samples as many rows as
the training table (seed 1); they are written to CSV, read back and scored on all rows. The held-out
rows, scored against the training table, are the floor.

Results: ``<results-dir>/precision/<out>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from benchmarks.harness import (
    Dataset,
    add_dataset_arguments,
    commit_label,
    cpu_defaults,
    fit_tabgen,
    floor_scores,
    git_state,
    load_dataset,
    machine,
    scored_against_both,
    write_results,
)

PRECISIONS = ("float32", "bfloat16")
#: The environment that emulates another CPU profile (docs/speed.md): recorded with the results.
PROFILE_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def run_fit(ds: Dataset, precision: str, seed: int, max_steps: int | None) -> dict[str, Any]:
    config = cpu_defaults(max_steps)
    config.diffusion.precision = precision
    syn, fit_s = fit_tabgen(ds, seed, config=config)
    d = syn.diffusion_result_
    return {"precision": precision, "fit_seconds": fit_s, "vae_seconds": syn.vae_result_.seconds,
            "diffusion_seconds": d.seconds, "diffusion_steps": d.steps, "stopped_by": d.stopped_by,
            "max_steps": config.diffusion.max_steps,
            **scored_against_both(ds, syn.sample(len(ds.train), seed=seed + 1), seed=seed, schema=syn.schema_)}


COLUMNS = (("fit_seconds", "fit s", 0), ("diffusion_steps", "denoiser steps", 0), ("shape", "Shape %", 2),
           ("trend", "Trend %", 2), ("c2st_tree", "tree C2ST", 3), ("trend_holdout", "Trend % vs held-out", 2),
           ("c2st_holdout", "tree C2ST vs held-out", 3))


def render(r: dict[str, Any]) -> str:
    env = ", ".join(f"{k}={v}" for k, v in r["profile"]["environment"].items()) or "none"
    lines = [f"# The denoiser's float type ({r['machine']['cpu']}, torch kernels: {r['profile']['torch_kernels']})", "",
             f"`{r['command']}` at commit {commit_label(r['git'])}, {r['machine']['usable_cores']} cores; "
             f"profile variables: {env}. The defaults of this CPU with the products' float type set; seed 0, "
             "rows sampled with seed 1, written to CSV and read back, all rows scored. The floor is the held-out "
             "rows scored against the training table.", "",
             "| table | products | " + " | ".join(label for _, label, _ in COLUMNS) + " |",
             "|---|---|" + "---:|" * len(COLUMNS)]
    for table, t in r["tables"].items():
        f = t["floor"]
        lines.append(f"| {table} | floor (held-out rows) | | | {f['shape']:.2f} | {f['trend']:.2f} | {f['c2st_tree']:.3f} | | |")
        for fit in t["fits"]:
            lines.append(f"| {table} | {fit['precision']} | " + " | ".join(
                f"{fit[key]:,.{digits}f}" for key, _, digits in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision", description=__doc__.splitlines()[0])
    add_dataset_arguments(parser)
    parser.add_argument("--tables", default="adult,default", help="comma-separated shared tables")
    parser.add_argument("--precisions", default=",".join(PRECISIONS), help="comma-separated: float32, bfloat16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="name of the results files (say which CPU profile)")
    parser.add_argument("--max-steps", type=int, default=None, help="cap both networks' steps (smoke tests only)")
    args = parser.parse_args()
    import torch

    results: dict[str, Any] = {
        "command": "python -m benchmarks.precision " + " ".join(sys.argv[1:]), "machine": machine(), "git": git_state(),
        "profile": {"torch_kernels": torch.backends.cpu.get_cpu_capability(),
                    "environment": {k: os.environ[k] for k in PROFILE_VARIABLES if k in os.environ}},
        "tables": {}}
    for table in args.tables.split(","):
        ds = load_dataset(args.datasets_dir / table)
        t = results["tables"][table] = {"floor": floor_scores(ds, args.seed), "fits": []}
        for precision in args.precisions.split(","):
            t["fits"].append(run_fit(ds, precision, args.seed, args.max_steps))
            print(table, t["fits"][-1], flush=True)
    write_results(args.results_dir / "precision", args.out, results, render(results))
    print(f"wrote {args.results_dir}/precision/{args.out}.md")


if __name__ == "__main__":
    main()
