"""GPU benchmark: training throughput against TabSyn's published loop, and fidelity in a fixed budget.

On the GPU machine (needs only torch, pandas and tabgen; writes JSON and sampled CSVs to --out):

    python -m benchmarks.gpu run --parts throughput,fit --budget 300 --seeds 0 --out DIR

Then here, where the evaluation's packages are installed, score the CSVs and write the results:

    python -m benchmarks.gpu score --out DIR [DIR ...]

Parts of ``run``:

* ``throughput``: denoiser training at TabSyn's width (1,024) and batch (4,096) on latents of the
  dataset's size and dimension, four ways: TabSyn's network in TabSyn's published loop (a DataLoader
  over CPU rows with 4 workers, a loss read back every step, float32, the model saved when the epoch
  loss improves); TabSyn's network in tabgen's loop (batches drawn on the device, EMA, validation
  every epoch), float32; tabgen's network in float32; tabgen's defaults (bfloat16 products). For each:
  steps/s, epochs/s (passes over the training rows), GFLOP per step and achieved/peak, with the peaks
  (bfloat16 and float32 matrix products) measured in the same run. Sampling: 10,000 rows with tabgen's
  default Heun steps, and TabSyn's network at its 50 steps, rows per second.
* ``fit``: ``Synthesizer(time_budget=S)`` with the GPU defaults (or, with ``--diffusion-steps``, no
  budget and that step limit), per seed; the sampled rows (as many as the training table) are written
  as CSV for ``score``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import (
    Dataset,
    add_dataset_arguments,
    fit_tabgen,
    git_state,
    headline,
    load_dataset,
    matmul_peak,
    read_table,
    score,
    sync,
    write_json,
)

RUN_PARTS = ("throughput", "fit")
TABSYN_WIDTH = 1024
TABSYN_BATCH = 4096
TIMED_SECONDS = 15.0
WARMUP_STEPS = 200


# ------------------------------------------------------------------------------- TabSyn as published
def tabsyn_network(d_in: int, width: int):
    """TabSyn's MLPDiffusion (tabsyn/model.py): the noise level embedded at the full width, cos/sin
    swapped, projected input plus embedding through a SiLU MLP of widths w, 2w, 2w, w."""
    import torch
    from torch import nn

    class PositionalEmbedding(nn.Module):
        def __init__(self, channels: int):
            super().__init__()
            self.channels = channels

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            freqs = torch.arange(self.channels // 2, dtype=torch.float32, device=x.device) / (self.channels // 2)
            x = x.ger((1 / 10_000) ** freqs)
            return torch.cat([x.cos(), x.sin()], dim=1)

    class MLPDiffusion(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(d_in, width)
            self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.SiLU(), nn.Linear(2 * width, 2 * width), nn.SiLU(),
                                     nn.Linear(2 * width, width), nn.SiLU(), nn.Linear(width, d_in))
            self.map_noise = PositionalEmbedding(width)
            self.time_embed = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

        def forward(self, x: torch.Tensor, noise_labels: torch.Tensor) -> torch.Tensor:
            emb = self.map_noise(noise_labels)
            emb = self.time_embed(emb.reshape(emb.shape[0], 2, -1).flip(1).reshape(*emb.shape))
            return self.mlp(self.proj(x) + emb)

    return MLPDiffusion()


def tabsyn_published_loop(D: Any, z: Any, seconds: float) -> dict[str, Any]:
    """TabSyn's training loop (tabsyn/main.py) for about ``seconds``: epochs over a DataLoader, Adam
    1e-3, ReduceLROnPlateau on the epoch loss, the state saved whenever that loss improves."""
    import torch
    from torch.utils.data import DataLoader

    from tabgen.diffusion.edm import edm_loss, sample_sigma

    device = z.device
    optimizer = torch.optim.Adam(D.parameters(), lr=1e-3, weight_decay=0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.9, patience=20)
    loader = DataLoader(z.cpu(), batch_size=TABSYN_BATCH, shuffle=True, num_workers=4)
    best, epochs, steps = math.inf, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        def epoch() -> int:
            nonlocal best
            total, rows = 0.0, 0
            for batch in loader:
                x = batch.float().to(device)
                loss = edm_loss(D, x, sample_sigma(len(x), -1.2, 1.2, device), torch.randn_like(x), 0.5)
                total += loss.item() * len(x)
                rows += len(x)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            scheduler.step(total / rows)
            if total / rows < best:
                best = total / rows
                torch.save(D.state_dict(), f"{tmp}/model.pt")
            return len(loader)

        epoch()  # warm-up: kernels chosen, workers' first start
        sync(device)
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            steps += epoch()
            epochs += 1
        sync(device)
        elapsed = time.perf_counter() - start
    return {"steps": steps, "seconds": elapsed, "rows": epochs * len(z)}


def tabgen_loop(D: Any, z: Any, precision: str, seconds: float, graphed: bool = True) -> dict[str, Any]:
    """tabgen's ``train_diffusion`` at TabSyn's width and batch, for about ``seconds`` after a warm-up;
    ``graphed=False`` runs each step's passes eagerly instead of replaying them as a CUDA graph."""
    from unittest import mock

    from tabgen.graphed_step import GradientStep

    class EagerStep(GradientStep):
        def __init__(self, loss_fn: Any, params: Any, graphed: bool):
            super().__init__(loss_fn, params, graphed=False)

    with mock.patch("tabgen.train.GradientStep", GradientStep if graphed else EagerStep):
        return _tabgen_loop(D, z, precision, seconds)


def _tabgen_loop(D: Any, z: Any, precision: str, seconds: float) -> dict[str, Any]:

    from tabgen.config import SynthesizerConfig
    from tabgen.fit_plan import PhaseLimits
    from tabgen.train import train_diffusion

    config = SynthesizerConfig.for_device("cuda").diffusion
    config.precision, config.patience, config.batch_size = precision, 10**9, TABSYN_BATCH
    n_val = min(len(z) // 10, 5000)
    z_train, z_val = z[n_val:], z[:n_val]
    train_diffusion(D, z_train, z_val, config, PhaseLimits(max_steps=WARMUP_STEPS), progress=False)  # warm-up
    sync(z.device)
    # Timed: no step limit, the deadline ends it.
    result = train_diffusion(D, z_train, z_val, config, PhaseLimits(deadline=time.monotonic() + seconds), progress=False)
    sync(z.device)
    return {"steps": result.steps, "seconds": result.seconds, "rows": result.steps * config.batch_size,
            "best_validation_loss": result.best_loss}


def step_gflop(D: Any, z: Any, precision: str) -> float:
    """FLOPs of one training step's forward and backward pass (the optimizer's are negligible)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from tabgen.diffusion.edm import edm_loss, sample_sigma
    from tabgen.precision import mixed_precision

    x = z[:TABSYN_BATCH]
    with FlopCounterMode(display=False) as counter, mixed_precision(x.device, precision):
        edm_loss(D, x, sample_sigma(len(x), -1.2, 1.2, x.device), torch.randn_like(x), 0.5).backward()
    D.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e9


def latent_dimension(ds: Dataset) -> int:
    """The width of the dataset's latent rows: one token of ``d_token`` per column (and the bias)."""
    from tabgen import SynthesizerConfig
    from tabgen.pairs import find_pairs
    from tabgen.schema import infer_schema
    from tabgen.transform import TableTransform

    schema = find_pairs(ds.train, infer_schema(ds.train, ds.categorical, ds.numerical))
    layout = TableTransform(schema).fit(ds.train).layout_
    config = SynthesizerConfig.for_device("cuda").for_table(len(schema.numerical), layout.cardinalities)
    return layout.n_tokens * config.vae.d_token


def part_throughput(ds: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from tabgen.config import SynthesizerConfig
    from tabgen.diffusion.denoiser import edm_denoiser
    from tabgen.diffusion.edm import EDMPrecond
    from tabgen.diffusion.sampler import heun_sample, sigma_schedule
    from tabgen.precision import mixed_precision

    device = torch.device(args.device)
    torch.manual_seed(0)
    d = latent_dimension(ds)
    z = torch.randn(len(ds.train), d, device=device)
    config = SynthesizerConfig.for_device("cuda")
    c, s = config.diffusion, config.sampler
    c.width = TABSYN_WIDTH
    n = 8192 if device.type == "cuda" else 1024
    peaks = {"bfloat16": matmul_peak(torch.bfloat16, device, n) / 1e12,
             "float32": matmul_peak(torch.float32, device, n) / 1e12}
    out: dict[str, Any] = {"gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                           "torch": torch.__version__, "rows": len(z), "latent_dim": d, "width": TABSYN_WIDTH,
                           "batch": TABSYN_BATCH, "matmul_peak_tflops": peaks, "loops": {}}

    def tabsyn_D() -> Any:
        return EDMPrecond(tabsyn_network(d, TABSYN_WIDTH), c.sigma_data).to(device)

    def tabgen_D() -> Any:
        return edm_denoiser(d, c, config.vae.d_token).to(device)

    variants: list[tuple[str, Callable[[], Any], str, Callable[..., dict[str, Any]]]] = [
        ("TabSyn's network, TabSyn's published loop", tabsyn_D, "float32",
         lambda D, p: tabsyn_published_loop(D, z, args.seconds)),
        ("TabSyn's network, tabgen's loop, eager", tabsyn_D, "float32",
         lambda D, p: tabgen_loop(D, z, p, args.seconds, graphed=False)),
        ("tabgen's network, tabgen's loop, eager", tabgen_D, "float32",
         lambda D, p: tabgen_loop(D, z, p, args.seconds, graphed=False)),
        ("tabgen's network, tabgen's loop, eager", tabgen_D, "bfloat16",
         lambda D, p: tabgen_loop(D, z, p, args.seconds, graphed=False)),
        ("tabgen's network, tabgen's loop, CUDA graph (default)", tabgen_D, "bfloat16",
         lambda D, p: tabgen_loop(D, z, p, args.seconds)),
    ]
    for name, make, precision, loop in variants:
        D = make()
        gflop = step_gflop(D, z, precision)
        timed = loop(D, precision)
        steps_per_second = timed["steps"] / timed["seconds"]
        key = f"{name}, {precision}"
        out["loops"][key] = {"loop": name, "precision": precision, "gflop_per_step": gflop,
                             "steps_per_second": steps_per_second,
                             "epochs_per_second": timed["rows"] / timed["seconds"] / len(z),
                             "achieved_tflops": gflop * steps_per_second / 1e3,
                             "achieved_over_peak": gflop * steps_per_second / 1e3 / peaks[precision]}
        print(f"  {key}: {out['loops'][key]}", flush=True)

    # Sampling cost alone (untrained networks: the time does not depend on the weights).
    out["sampling"] = {}
    for name, D, steps, precision in (("tabgen, default Heun steps, bfloat16", tabgen_D(), s.num_steps, "bfloat16"),
                                      ("TabSyn's network, 50 Heun steps, float32", tabsyn_D(), 50, "float32")):
        D.eval()
        sigmas = sigma_schedule(steps, s.sigma_min, s.sigma_max, s.rho, device)

        def draw(n: int, D: Any = D, sigmas: Any = sigmas, precision: str = precision) -> None:
            with torch.inference_mode(), mixed_precision(device, precision):
                heun_sample(D, torch.randn(n, d, device=device), sigmas)
            sync(device)

        draw(1000)
        start = time.perf_counter()
        draw(10_000)
        seconds = time.perf_counter() - start
        out["sampling"][name] = {"steps": steps, "seconds_10k": seconds, "rows_per_second": 10_000 / seconds}
        print(f"  sampling {name}: {out['sampling'][name]}", flush=True)
    return out


def part_fit(ds: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    from tabgen import SynthesizerConfig

    config = SynthesizerConfig.for_device(args.device)
    budget: float | None = args.budget or None
    setting = f"time budget {budget:g} s" if budget else "defaults"
    if args.diffusion_steps:
        config.diffusion.max_steps, budget = args.diffusion_steps, None
        setting = f"{args.diffusion_steps:,} diffusion steps"
    runs = []
    for seed in args.seeds:
        syn, fit_seconds = fit_tabgen(ds, seed, time_budget=budget, config=config, device=args.device)
        syn.sample(1000)  # warm-up
        start = time.perf_counter()
        fake = syn.sample(len(ds.train))
        sample_seconds = time.perf_counter() - start
        csv = f"{ds.name}-{setting.replace(' ', '_').replace(',', '')}-seed{seed}.csv"
        fake.to_csv(args.out / csv, index=False)
        v, f = syn.vae_result_, syn.diffusion_result_
        runs.append({"seed": seed, "setting": setting, "csv": csv, "fit_seconds": fit_seconds,
                     "sample_rows_per_second": len(fake) / sample_seconds, "vae_seconds": v.seconds,
                     "vae_steps": v.steps, "vae_stopped_by": v.stopped_by, "diffusion_seconds": f.seconds,
                     "diffusion_steps": f.steps, "diffusion_stopped_by": f.stopped_by,
                     "diffusion_best_epoch": f.best_epoch, "diffusion_epochs": f.epochs})
        print(f"  fit seed {seed}: {runs[-1]}", flush=True)
    return {"runs": runs}


# -------------------------------------------------------------------------------------------- score
def score_runs(out_dirs: list[Path], ds: Dataset, results_dir: Path) -> dict[str, Any]:
    schema = ds.schema()
    merged: dict[str, Any] = {"fit": {"runs": []}}
    for out in out_dirs:
        for path in sorted(out.glob("*.json")):
            result = json.loads(path.read_text())
            if "throughput" in result:
                merged["throughput"] = result["throughput"]
            for run in result.get("fit", {}).get("runs", []):
                frame = read_table(out / run["csv"])
                run.update(headline(score(ds, frame, seed=run["seed"], schema=schema)))
                merged["fit"]["runs"].append(run)
                print(f"  seed {run['seed']}: {run}", flush=True)
    keys = ("fit_seconds", "shape", "trend", "c2st_tree", "sample_rows_per_second", "diffusion_steps")
    for run in merged["fit"]["runs"]:  # files written before fits had other settings than a budget
        run.setdefault("setting", f"time budget {run.pop('budget', 0):g} s")
    settings = sorted({r["setting"] for r in merged["fit"]["runs"]})
    merged["fit"]["mean_by_setting"] = {
        s: {k: float(np.mean([r[k] for r in merged["fit"]["runs"] if r["setting"] == s])) for k in keys} for s in settings}
    merged["git"] = git_state()
    write_json(results_dir / f"{ds.name}.json", merged)
    (results_dir / "README.md").write_text(render_markdown(ds.name, merged))
    return merged


def render_markdown(dataset: str, r: dict[str, Any]) -> str:
    lines = ["# GPU benchmark", "", "Generated by `benchmarks/gpu.py`; see its docstring for what each part measures.", ""]
    t = r.get("throughput")
    if t:
        p = t["matmul_peak_tflops"]
        lines += [f"## {dataset}: denoiser training throughput", "",
                  (f"{t['gpu']}, torch {t['torch']}. Width {t['width']}, batch {t['batch']}, {t['rows']:,} latent rows of "
                  f"dimension {t['latent_dim']}. Measured matrix-product peaks: bfloat16 {p['bfloat16']:.0f} TFLOP/s, "
                  f"float32 {p['float32']:.0f} TFLOP/s."), "",
                  "| network and loop | products | steps/s | epochs/s | × TabSyn | GFLOP/step | achieved TFLOP/s "
                  "| achieved/peak |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        base = next(iter(t["loops"].values()))["epochs_per_second"]
        for v in t["loops"].values():
            lines.append(f"| {v['loop']} | {v['precision']} | {v['steps_per_second']:.0f} | {v['epochs_per_second']:.1f} | "
                         f"{v['epochs_per_second'] / base:.1f} | {v['gflop_per_step']:.0f} | {v['achieved_tflops']:.1f} | "
                         f"{100 * v['achieved_over_peak']:.1f} % |")
        lines += ["", "| sampler | 10k rows s | rows/s |", "|---|---:|---:|"]
        lines += [f"| {name} | {v['seconds_10k']:.2f} | {v['rows_per_second']:,.0f} |" for name, v in t["sampling"].items()]
        lines.append("")
    runs = sorted(r.get("fit", {}).get("runs", []), key=lambda run: run["seed"])
    if runs:
        lines += [f"## {dataset}: fidelity of fits on the GPU", "",
                  "| seed | setting | fit s | VAE s | diffusion steps | sample rows/s | Shape % | Trend % | tree C2ST |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for setting, m in r["fit"]["mean_by_setting"].items():
            group = [run for run in runs if run["setting"] == setting]
            for run in group:
                lines.append(f"| {run['seed']} | {setting} | {run['fit_seconds']:.0f} | {run['vae_seconds']:.0f} | "
                             f"{run['diffusion_steps']:,} | {run['sample_rows_per_second']:,.0f} | {run['shape']:.2f} | "
                             f"{run['trend']:.2f} | {run['c2st_tree']:.3f} |")
            if len(group) > 1:
                lines.append(f"| **mean of {len(group)}** | {setting} | {m['fit_seconds']:.0f} | | {m['diffusion_steps']:,.0f} | "
                             f"{m['sample_rows_per_second']:,.0f} | {m['shape']:.2f} | {m['trend']:.2f} | {m['c2st_tree']:.3f} |")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("run", "score"))
    add_dataset_arguments(parser)
    parser.add_argument("--dataset-dir", type=Path, help="the dataset's folder [default: DATASETS_DIR/DATASET]")
    parser.add_argument("--parts", default=",".join(RUN_PARTS), help=f"for run: comma-separated, from {', '.join(RUN_PARTS)}")
    parser.add_argument("--seeds", default="0", help="for run's fit part")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds, for run's fit part (0: none, the defaults)")
    parser.add_argument("--diffusion-steps", type=int, help="for run's fit part: no budget, this step limit")
    parser.add_argument("--device", default="cuda", help="for run (cpu only to try the script out)")
    parser.add_argument("--seconds", type=float, default=TIMED_SECONDS, help="for run's throughput: seconds timed per loop")
    parser.add_argument("--out", type=Path, nargs="+", required=True, help="run: where to write; score: folders to read")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    ds = load_dataset(args.dataset_dir or args.datasets_dir / args.dataset)
    if args.command == "score":
        score_runs(args.out, ds, args.results_dir / "gpu")
        return 0
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(RUN_PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {list(RUN_PARTS)}")
    args.out = args.out[0]
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    seeds = "-".join(map(str, args.seeds))
    path = args.out / f"{ds.name}-{'-'.join(parts)}-{args.diffusion_steps or args.budget:g}-seeds{seeds}.json"
    for part in parts:
        start = time.perf_counter()
        results[part] = {"throughput": part_throughput, "fit": part_fit}[part](ds, args)
        print(f"[{ds.name}] {part}: {time.perf_counter() - start:.0f} s", flush=True)
        write_json(path, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
