"""Scale out: a table larger than memory, streamed; and a fit on two processes (issue 37, docs/scale.md).

    python -m benchmarks.scale --machine epyc-zen4 --part stream --rows 1000000,10000000,30000000
    python -m benchmarks.scale --machine epyc-zen4 --part ranks --steps 6000

``stream``: a generated Parquet table of 5 columns (two categorical, an integer and two decimals, with
dependencies between them; 1M-row row groups) of each size is fitted as a user would, ``tabgen fit
big.parquet --time-budget 180s``, in a process of its own whose peak resident memory is measured
(``wait4``); then 100,000 rows are sampled to a folder of Parquet parts, and scored against 100,000 of
the table's rows (Shape, Trend, tree C2ST).

``ranks``: adult fitted by one process (two threads) and by two gloo ranks under torchrun (one thread
each) at the same total batch and the same steps (early stopping off, so that both run them all),
each scored against the training table and the held-out rows.

One fit at a time. Results go to ``<results-dir>/<machine>/scale/<part>.json`` and ``.md`` beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.harness import (
    DATASETS_DIR,
    RESULTS_DIR,
    commit_label,
    floor_scores,
    git_state,
    load_dataset,
    machine,
    read_back,
    scored_against_both,
    write_results,
)

GENERATED_GROUP_ROWS = 1_000_000
SCORED_ROWS = 100_000


def generate(rows: int, path: Path, seed: int = 0) -> None:
    """A table of ``rows`` rows: the region and the age shift the amount, the age the channel, the age and
    the amount the score (each strongly enough for sdmetrics' Trend, which leaves out weak pairs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    regions = np.array([f"region-{i:02d}" for i in range(12)])
    channels = np.array(["web", "store", "phone", "partner", "mail"])
    writer = None
    for start in range(0, rows, GENERATED_GROUP_ROWS):
        n = min(GENERATED_GROUP_ROWS, rows - start)
        age = rng.integers(18, 91, n)
        region = rng.integers(0, 12, n)
        amount = np.round(np.exp(rng.normal(3 + 0.25 * region + 0.02 * age, 0.5)), 2)
        score = rng.normal(0.05 * age + 0.5 * np.log(amount), 0.5)
        channel = np.clip((age - 18) // 15 + rng.integers(0, 2, n), 0, 4)
        table = pa.table({"region": regions[region], "channel": channels[channel], "age": age, "amount": amount,
                          "score": score})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def _run(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """``command`` with its seconds and peak RSS, measured by a Popen that ``wait4`` reaps."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = process.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-3000:]}")
    return {"seconds": time.perf_counter() - start, "peak_rss_mib": usage.ru_maxrss / 1024,
            "said": stderr.strip().splitlines()[-1] if stderr.strip() else ""}


def stream_part(sizes: list[int], budget: str, workdir: Path) -> dict[str, Any]:
    from tabgen.io.stream import TableStream

    tabgen = str(Path(sys.executable).with_name("tabgen"))
    runs = []
    for rows in sizes:
        table = workdir / f"generated-{rows}.parquet"
        if not table.exists():
            generate(rows, table)
        model = workdir / f"generated-{rows}.tabgen"
        model.unlink(missing_ok=True)
        fit = _run([tabgen, "fit", str(table), "-o", str(model), "--time-budget", budget, "-q"])
        parts = workdir / f"sampled-{rows}"
        if parts.exists():
            for f in parts.iterdir():
                f.unlink()
            parts.rmdir()
        sampled = _run([tabgen, "sample", "-m", str(model), "-n", str(SCORED_ROWS), "-o", f"{parts}/", "-q"])
        synthetic = pd.read_parquet(parts)
        real, _ = TableStream(table).sample(SCORED_ROWS, seed=1)
        scores = _scores(real, synthetic)
        floor = _scores(real, TableStream(table).sample(2 * SCORED_ROWS, seed=1)[0].iloc[SCORED_ROWS:])
        print(f"{rows:,} rows: fit {fit['seconds']:.0f} s, {fit['peak_rss_mib']:.0f} MiB; sample {sampled['seconds']:.1f} s, "
              f"{sampled['peak_rss_mib']:.0f} MiB; {scores}; floor {floor}", file=sys.stderr)
        runs.append({"rows": rows, "file_mb": table.stat().st_size / 1e6, "fit": fit, "sample": sampled, **scores,
                     "floor": floor})
    return {"budget": budget, "runs": runs}


def _scores(real: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, Any]:
    from tabgen.evaluation import evaluate

    result = evaluate(real, synthetic[list(real.columns)].reset_index(drop=True), metrics=["fidelity", "detection"],
                      seed=0, progress=False)
    return {"shape": result.shape_error, "trend": result.trend_error,
            "c2st_tree": result.c2st_xgboost.score if result.c2st_xgboost else None}


# ---------------------------------------------------------------------------------------------- latents
def latents_part(rows: int, budget: str, workdir: Path) -> dict[str, Any]:
    """Where a streamed fit's time goes: the steps a budget buys, and what a row's latent costs to encode
    against what a denoiser step costs per row (so: encode per pool, or all rows once into a file)."""
    import torch

    from tabgen import Synthesizer
    from tabgen.fit_plan import PhaseLimits
    from tabgen.io.stream import TableStream
    from tabgen.train import train_diffusion

    table = workdir / f"generated-{rows}.parquet"
    if not table.exists():
        generate(rows, table)
    syn = Synthesizer(time_budget=float(budget.rstrip("s")), progress=False)
    start = time.perf_counter()
    syn.fit(table)
    fit = {"seconds": time.perf_counter() - start, "vae_steps": syn.vae_result_.steps,
           "diffusion_steps": syn.diffusion_result_.steps}
    codec, chunks = syn.codec_, TableStream(table).chunks(seed=0)
    frames = [next(chunks)[1] for _ in range(4)]
    start = time.perf_counter()
    for frame in frames:
        x_num, _, x_cat = codec.transform.transform(frame).to_tensors("cpu")
        codec.scaling.standardise(codec.encode_means(x_num, x_cat))
    encoded = sum(map(len, frames)) / (time.perf_counter() - start)
    z = torch.randn(100_000, codec.latent_dim)
    config, steps = syn.config_.diffusion, 300
    start = time.perf_counter()
    train_diffusion(syn.denoiser_, z, z[:5000], config, PhaseLimits(None, steps), progress=False)
    trained = steps * config.batch_size / (time.perf_counter() - start)
    return {"rows": rows, "budget": budget, "fit": fit, "encoded_rows_per_second": encoded,
            "trained_rows_per_second": trained, "whole_table_encoding_seconds": rows / encoded}


# ------------------------------------------------------------------------------------------------ ranks
def ranks_worker(dataset: Path, steps: int, out: Path, seed: int) -> None:
    """One rank's fit (or the single process's); rank 0 writes the sampled rows and the fit's record."""
    import torch

    from tabgen import Synthesizer, SynthesizerConfig

    ranks = int(os.environ.get("WORLD_SIZE", 1))
    torch.set_num_threads(max(1, 2 // ranks))
    ds = load_dataset(dataset)
    config = SynthesizerConfig.for_device("cpu")
    config.diffusion.max_steps = steps
    config.diffusion.patience = config.vae.patience = 10**6  # equal steps: no early stopping
    syn = Synthesizer(config=config, categorical=ds.categorical, numerical=ds.numerical, seed=seed, progress=False,
                      distributed=ranks > 1)
    start = time.perf_counter()
    syn.fit(ds.train)
    seconds = time.perf_counter() - start
    if int(os.environ.get("RANK", 0)) == 0:
        syn.sample(len(ds.train), seed=seed).to_csv(out / f"rows-{ranks}.csv", index=False)
        record = {"processes": ranks, "fit_seconds": seconds, "vae_steps": syn.vae_result_.steps,
                  "diffusion_steps": syn.diffusion_result_.steps, "vae_loss": syn.vae_result_.best_loss,
                  "diffusion_loss": syn.diffusion_result_.best_loss}
        (out / f"fit-{ranks}.json").write_text(json.dumps(record))


def ranks_part(dataset: Path, steps: int, workdir: Path, seed: int) -> dict[str, Any]:
    worker = [sys.executable, "-m", "benchmarks.scale", "--worker", str(workdir), "--dataset-dir", str(dataset),
              "--steps", str(steps), "--seed", str(seed)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    _run(worker, {**os.environ, "OMP_NUM_THREADS": "2"})
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *worker[1:]], env)
    ds = load_dataset(dataset)
    runs = []
    for processes in (1, 2):
        record = json.loads((workdir / f"fit-{processes}.json").read_text())
        rows = pd.read_csv(workdir / f"rows-{processes}.csv")
        scores = scored_against_both(ds, read_back(rows, ds, workdir, f"tabgen-{processes}"), seed=0,
                                     schema=ds.schema(), round_tripped=True)
        runs.append({**record, **scores})
        print(runs[-1], file=sys.stderr)
    return {"dataset": ds.name, "steps": steps, "seed": seed, "runs": runs, "floor": floor_scores(ds, seed=0)}


# --------------------------------------------------------------------------------------------- output
def markdown(part: str, results: dict[str, Any]) -> str:
    m = results["machine"]
    head = [f"# Scale out: {part}", "", f"`python -m benchmarks.scale --part {part}` on {m['cpu']} "
            f"({m['usable_cores']} cores), {commit_label(results['git'])}.", ""]
    if part == "latents":
        f = results["fit"]
        head += [f"A streamed fit of the generated {results['rows']:,}-row table, `time_budget={results['budget']}` "
                 f"(API): {f['seconds']:.0f} s, {f['vae_steps']:,} VAE steps, {f['diffusion_steps']:,} denoiser steps.", "",
                 f"- Encoding (transform and VAE encoder) of streamed chunks: {results['encoded_rows_per_second']:,.0f} rows/s.",
                 f"- The denoiser's training step: {results['trained_rows_per_second']:,.0f} rows/s.",
                 f"- Encoding the whole table once (into a file the denoiser would read): "
                 f"{results['whole_table_encoding_seconds']:,.0f} s."]
    elif part == "stream":
        head += [f"`tabgen fit generated.parquet --time-budget {results['budget']}`, then `tabgen sample -n 100000 -o out/`, "
                 "each a process of its own; the rows scored against 100,000 of the table's, and so are 100,000 others "
                 "of the table's (the floor: real rows score this).", "",
                 "| rows | Parquet | fit (s) | fit peak RSS | sample (s) | sample peak RSS | Shape % | Trend % | tree C2ST "
                 "| floor: Shape · Trend · C2ST |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in results["runs"]:
            fit, sampled, f = r["fit"], r["sample"], r["floor"]
            head.append(f"| {r['rows']:,} | {r['file_mb']:.0f} MB | {fit['seconds']:.0f} | {fit['peak_rss_mib'] / 1024:.2f} GiB "
                        f"| {sampled['seconds']:.1f} | {sampled['peak_rss_mib'] / 1024:.2f} GiB | {_n(r['shape'])} "
                        f"| {_n(r['trend'])} | {_n(r['c2st_tree'], 3)} | {_n(f['shape'])} · {_n(f['trend'])} · "
                        f"{_n(f['c2st_tree'], 3)} |")
    else:
        f = results["floor"]
        head += [f"{results['dataset']}, seed {results.get('seed', 0)}: {results['steps']:,} denoiser steps and the VAE's "
                 "default steps, no early "
                 "stopping, the same total batch; scored on all rows against the training table and the held-out rows.",
                 "", "| processes | fit (s) | Shape % | Trend % | tree C2ST | held-out Shape % | held-out Trend % "
                 "| held-out C2ST |", "|---|---|---|---|---|---|---|---|"]
        for r in results["runs"]:
            head.append(f"| {r['processes']} | {r['fit_seconds']:.0f} | {r['shape']:.2f} | {r['trend']:.2f} | "
                        f"{r['c2st_tree']:.3f} | {r['shape_holdout']:.2f} | {r['trend_holdout']:.2f} | {r['c2st_holdout']:.3f} |")
        head.append(f"| floor (held-out rows) | | {f['shape']:.2f} | {f['trend']:.2f} | {f['c2st_tree']:.3f} | | | |")
    return "\n".join(head) + "\n"


def _n(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machine", required=False)
    parser.add_argument("--part", choices=("stream", "latents", "ranks"))
    parser.add_argument("--rows", default="1000000,10000000,30000000")
    parser.add_argument("--budget", default="180s")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0, help="The fits' and samples' seed (ranks: results ranks-seedN).")
    parser.add_argument("--dataset-dir", type=Path, default=DATASETS_DIR / "adult")
    parser.add_argument("--workdir", type=Path, help="Where generated tables and rows go [default: a temporary folder].")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        ranks_worker(args.dataset_dir, args.steps, args.worker, args.seed)
        return
    if not args.machine or not args.part:
        parser.error("--machine and --part are required")
    with tempfile.TemporaryDirectory(prefix="tabgen-scale-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if args.part == "stream":
            results = stream_part([int(r) for r in args.rows.split(",")], args.budget, workdir)
        elif args.part == "latents":
            results = latents_part(int(args.rows.split(",")[-1]), args.budget, workdir)
        else:
            results = ranks_part(args.dataset_dir, args.steps, workdir, args.seed)
    results = {**results, "machine": machine(), "git": git_state()}
    name = args.part if args.part != "ranks" or args.seed == 0 else f"{args.part}-seed{args.seed}"
    write_results(args.results_dir / args.machine / "scale", name, results, markdown(args.part, results))


if __name__ == "__main__":
    main()
