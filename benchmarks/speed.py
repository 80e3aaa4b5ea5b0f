"""Speed benchmark: fidelity per CPU-second, sampling speed, hardware efficiency and memory.

    python -m benchmarks.speed --dataset adult                       # every part: about two hours on 2 cores
    python -m benchmarks.speed --dataset adult --parts hardware,sampling

Parts (each writes its section of ``results/speed/<dataset>.json`` as soon as it is done, so a run can
be continued part by part; the Markdown summary ``results/speed/README.md`` is rebuilt every time):

* ``hardware``: this machine's matmul throughput (the peak) in float32 and, where the denoiser's
  products run in bfloat16, in bfloat16; the FLOPs of one training step of the VAE and of the denoiser
  (counted by torch's FlopCounterMode), and the FLOP rate each reaches over a few dozen steps:
  achieved/peak, each against the peak of its own float type.
* ``default``: ``Synthesizer()`` with its defaults, one fit per seed: fit seconds, peak RSS, and
  Shape/Trend/tree C2ST of as many rows as the training table, averaged over the seeds.
* ``sampling``: seconds for 10,000 rows at the default number of Heun steps and at 50, with their
  Shape/Trend/tree C2ST, beside TabularARGN's sampling rows per second (the model of ``default``'s
  first seed, kept in ``benchmarks/cache/``, when there is one).
* ``duel``: TabularARGN fitted here (its own fit seconds S), then tabgen with ``time_budget=S``, per seed.
* ``curve``: tabgen at budgets of 1, 3, 5, 10 and 15 minutes; a PNG of Trend and tree C2ST against fit
  seconds with each peer of ``results/<dataset>/`` as a point (TabularARGN's from ``duel``, when it has
  run: same run, every seed) and the real-data floor as a line.
* ``memory``: peak RSS of fitting a 1,000,000-row table (adult's rows resampled) with a short budget, and
  of sampling 100,000 and 1,000,000 rows to CSV: memory must not grow with the rows sampled.

Figures are ratios measured in one run on one machine; the machine is named in the JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    MODEL_CACHE,
    Dataset,
    add_dataset_arguments,
    commit_label,
    fit_tabgen,
    git_state,
    headline,
    load_dataset,
    machine,
    matmul_peak,
    mean_scores,
    score,
    write_json,
)
from benchmarks.peers import MODEL_LABELS, duel

PARTS = ("hardware", "default", "sampling", "duel", "curve", "memory")
CURVE_BUDGETS = (60, 180, 300, 600, 900)
SAMPLE_ROWS = 10_000
STEPS_TIMED = 30


# ------------------------------------------------------------------------------------------ helpers
def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux: the high-water mark of this process.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(queue: mp.Queue, fn: Callable[..., dict[str, Any]], kwargs: dict[str, Any]) -> None:
    try:
        result = fn(**kwargs)
        result["peak_rss_mib"] = peak_rss_mib()
        queue.put(result)
    except BaseException as error:  # noqa: BLE001  (reported, not raised: the parent writes it down)
        queue.put({"error": f"{type(error).__name__}: {error}"})


def in_fresh_process(fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Run ``fn`` in a new process, so its peak memory is its own and not this process's history."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(queue, fn, kwargs))
    process.start()
    result = queue.get()
    process.join()
    return result


# -------------------------------------------------------------------------------------------- parts
def part_hardware(ds: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from tabgen import SynthesizerConfig
    from tabgen.diffusion.denoiser import edm_denoiser
    from tabgen.diffusion.edm import edm_loss, sample_sigma
    from tabgen.precision import autocast_dtype, mixed_precision
    from tabgen.schema import infer_schema
    from tabgen.transform import TableTransform
    from tabgen.vae import VAE, vae_loss

    schema = infer_schema(ds.train, ds.categorical, ds.numerical)
    transform = TableTransform(schema).fit(ds.train)
    cardinalities = transform.layout_.cardinalities
    config = SynthesizerConfig.for_device("cpu").for_table(len(schema.numerical), cardinalities)
    x_num, observed, x_cat = transform.transform(ds.train.iloc[: config.vae.batch_size]).to_tensors(torch.device("cpu"))
    # Every number regressed (no value levels), so that x_cat is the loss's target as it is.
    vae = VAE(x_num.shape[1], cardinalities, config.vae)
    vae_optimizer = torch.optim.Adam(vae.parameters())

    def vae_step() -> None:
        loss = vae_loss(x_num, observed, x_cat, *vae(x_num, x_cat)).total(1e-2)
        vae_optimizer.zero_grad()
        loss.backward()
        vae_optimizer.step()

    d = vae.n_tokens * config.vae.d_token
    c = config.diffusion
    D = edm_denoiser(d, c, config.vae.d_token)
    z = torch.randn(c.batch_size, d)
    d_optimizer = torch.optim.Adam(D.parameters())

    def denoiser_step() -> None:
        with mixed_precision(torch.device("cpu"), c.precision):
            loss = edm_loss(D, z, sample_sigma(len(z), c.P_mean, c.P_std), torch.randn_like(z), c.sigma_data)
        d_optimizer.zero_grad()
        loss.backward()
        d_optimizer.step()

    # Each step is held to the peak of the float type its matrix products run in.
    peak32 = matmul_peak(torch.float32)
    dtype = autocast_dtype(torch.device("cpu"), c.precision)
    peak_denoiser = peak32 if dtype is None else matmul_peak(dtype)
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "matmul_peak_gflops": peak32 / 1e9,
                           "denoiser_precision": str(dtype or torch.float32).removeprefix("torch."),
                           "denoiser_matmul_peak_gflops": peak_denoiser / 1e9}
    for name, step, batch, peak in (("vae", vae_step, len(x_num), peak32), ("denoiser", denoiser_step, len(z), peak_denoiser)):
        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops()
        for _ in range(3):
            step()
        start = time.perf_counter()
        for _ in range(STEPS_TIMED):
            step()
        seconds = (time.perf_counter() - start) / STEPS_TIMED
        out[name] = {"batch": batch, "gflop_per_step": flops / 1e9, "seconds_per_step": seconds,
                     "achieved_gflops": flops / seconds / 1e9, "achieved_over_peak": flops / seconds / peak}
    return out


def _default_fit(dataset_dir: str, seed: int) -> dict[str, Any]:
    ds = load_dataset(Path(dataset_dir))
    syn, fit_s = fit_tabgen(ds, seed)
    # Kept for the benchmarks that reuse a default model (conditional.py --model).
    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    syn.save(MODEL_CACHE / f"{ds.name}-default-seed{seed}.tabgen")
    fake = syn.sample(len(ds.train))
    return {"seed": seed, "fit_seconds": fit_s, "vae_epochs": syn.vae_result_.epochs,
            "vae_seconds": syn.vae_result_.seconds, "diffusion_epochs": syn.diffusion_result_.epochs,
            "diffusion_steps": syn.diffusion_result_.steps, **headline(score(ds, fake, seed=seed, schema=syn.schema_))}


def part_default(ds: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    runs = [in_fresh_process(_default_fit, dataset_dir=str(args.dataset_dir), seed=s) for s in args.seeds]
    return {"runs": runs, "mean": mean_scores([r for r in runs if "error" not in r])}


def part_sampling(ds: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    from tabgen import Synthesizer

    cached = MODEL_CACHE / f"{ds.name}-default-seed{args.seeds[0]}.tabgen"
    syn = Synthesizer.load(cached, progress=False) if cached.exists() else fit_tabgen(ds, args.seeds[0])[0]
    out: dict[str, Any] = {"rows": SAMPLE_ROWS, "tabgen": {}}
    default_steps = syn.config_.sampler.num_steps
    for steps in sorted({default_steps, 50}):
        syn.sample(100, steps=steps)  # warm-up
        start = time.perf_counter()
        fake = syn.sample(SAMPLE_ROWS, steps=steps)
        seconds = time.perf_counter() - start
        full = syn.sample(len(ds.train), steps=steps, seed=1)
        out["tabgen"][str(steps)] = {"seconds": seconds, "rows_per_second": SAMPLE_ROWS / seconds,
                                     "default": steps == default_steps,
                                     **headline(score(ds, full, seed=args.seeds[0], schema=syn.schema_))}
        del fake
    argn = _read_peer(args, "tabular_argn")
    if argn and argn.get("sample_seconds"):
        n = argn["data"]["n_train"]
        out["tabular_argn_rows_per_second"] = n / argn["sample_seconds"]
    return out


def part_duel(ds: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    return duel(ds, args.seeds)


def part_curve(ds: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    points = []
    for budget in args.budgets:
        syn, fit_s = fit_tabgen(ds, args.seeds[0], time_budget=budget)
        scores = headline(score(ds, syn.sample(len(ds.train)), seed=args.seeds[0], schema=syn.schema_))
        points.append({"budget": budget, "fit_seconds": fit_s, **scores})
        print(f"  curve {budget} s: {points[-1]}", flush=True)
    return {"points": points}


def _memory_fit(dataset_dir: str, rows: int, budget: float) -> dict[str, Any]:
    ds = load_dataset(Path(dataset_dir))
    big = ds.train.sample(n=rows, replace=True, random_state=0).reset_index(drop=True)
    del ds
    _syn, fit_s = fit_tabgen(Dataset("big", {}, big, None, "", [], []), 0, time_budget=budget)
    return {"rows": rows, "fit_seconds": fit_s}


def _memory_sample(model: str, rows: int) -> dict[str, Any]:
    from tabgen import Synthesizer
    from tabgen.io import atomic_write

    syn = Synthesizer.load(model, progress=False)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, atomic_write(Path(tmp) / "out.csv", "w") as f:
        for i, batch in enumerate(syn.sample_batches(rows)):
            batch.to_csv(f, index=False, header=i == 0)
    return {"rows": rows, "seconds": time.perf_counter() - start}


def part_memory(ds: Dataset, args: argparse.Namespace) -> dict[str, Any]:
    fit_1m = in_fresh_process(_memory_fit, dataset_dir=str(args.dataset_dir), rows=1_000_000, budget=120.0)
    out: dict[str, Any] = {"fit_1m": fit_1m}
    syn, _ = fit_tabgen(ds, args.seeds[0], time_budget=60)
    with tempfile.TemporaryDirectory() as tmp:
        model = str(Path(tmp) / "m.tabgen")
        syn.save(model)
        out["sample"] = [in_fresh_process(_memory_sample, model=model, rows=n) for n in (100_000, 1_000_000)]
    return out


PART_FUNCTIONS = {
    "hardware": part_hardware, "default": part_default, "sampling": part_sampling,
    "duel": part_duel, "curve": part_curve, "memory": part_memory,
}


# ------------------------------------------------------------------------------------------ reports
def _read_peer(args: argparse.Namespace, model: str) -> dict[str, Any] | None:
    path = args.results_dir / args.dataset / f"{model}.json"
    return json.loads(path.read_text()) if path.exists() else None


def plot_curve(results: dict[str, Any], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # A budget that early stopping cut short lands left of smaller ones: order by the seconds spent.
    points = sorted(results["curve"]["points"], key=lambda p: p["fit_seconds"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((axes[0], "trend", "Trend error (%)"), (axes[1], "c2st_tree", "tree C2ST (1 = indistinguishable)")):
        ax.plot([p["fit_seconds"] for p in points], [p[key] for p in points], "o-", color="C0", label="tabgen (time budget)")
        for p in points:
            ax.annotate(_budget_label(p), (p["fit_seconds"], p[key]), textcoords="offset points", xytext=(4, 5), fontsize=7)
        if "default" in results:
            m = results["default"]["mean"]
            ax.scatter([m["fit_seconds"]], [m[key]], marker="*", s=160, color="C0", zorder=3,
                       label=f"tabgen defaults (mean of {len(results['default']['runs'])} seeds)")
        peers = ("tvae", "ctgan", "gaussian_copula")
        if "duel" in results:
            # The duel's TabularARGN was fitted in this run, on every seed: it is the point to beat.
            m = results["duel"]["mean"]["tabular_argn"]
            ax.scatter([m["fit_seconds"]], [m[key]], marker="s", s=40, color="C3", zorder=3,
                       label=f"{MODEL_LABELS['tabular_argn']} (mean of {len(results['duel']['runs'])} seeds)")
        else:
            peers = ("tabular_argn", *peers)
        for model in peers:
            peer = _read_peer(args, model)
            if not peer or "metrics" not in peer or not peer.get("fit_seconds"):
                continue
            m = peer["metrics"]
            value = m["trend_error"] if key == "trend" else (m.get("c2st_xgboost") or {}).get("score")
            if value is not None:
                ax.scatter([peer["fit_seconds"]], [value], marker="s", s=40, label=MODEL_LABELS[model])
        floor = _read_peer(args, "real_holdout")
        if floor and "metrics" in floor:
            m = floor["metrics"]
            value = m["trend_error"] if key == "trend" else m["c2st_xgboost"]["score"]
            ax.axhline(value, color="grey", linestyle="--", label="real held-out rows (floor)")
        ax.set_xscale("log")
        ax.set_xlabel("fit seconds (log scale), this 2-core CPU")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle(f"{args.dataset}: fidelity against training time")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _budget_label(point: dict[str, Any]) -> str:
    stopped = point["fit_seconds"] < 0.9 * point["budget"]
    return f"{point['budget'] / 60:g} min" + (" (stopped early)" if stopped else "")


def _cells(m: dict[str, Any]) -> str:
    return f"{m['shape']:.2f} | {m['trend']:.2f} | {m['c2st_tree']:.3f}"


def summary_table(dataset: str, r: dict[str, Any], results_dir: Path) -> list[str]:
    """The issue's table: the floor, TabularARGN and each tabgen setting measured in this run."""
    rows = []
    floor_path = results_dir / dataset / "real_holdout.json"
    if floor_path.exists():
        m = json.loads(floor_path.read_text())["metrics"]
        rows.append(f"| real held-out rows (the floor) | — | — | {m['shape_error']:.2f} | {m['trend_error']:.2f} | "
                    f"{m['c2st_xgboost']['score']:.3f} | — | — |")
    sampling = r.get("sampling", {})
    if "duel" in r:
        m = r["duel"]["mean"]["tabular_argn"]
        rate = sampling.get("tabular_argn_rows_per_second")
        rows.append(f"| TabularARGN (defaults), mean of {len(r['duel']['runs'])} seed(s) | {m['fit_seconds']:.0f} | "
                    f"{f'{rate:,.0f}' if rate else '—'} | {_cells(m)} | — | — |")
    if "default" in r:
        m = r["default"]["mean"]
        rate = next((v["rows_per_second"] for v in sampling.get("tabgen", {}).values() if v["default"]), None)
        efficiency = r.get("hardware", {}).get("denoiser", {}).get("achieved_over_peak")
        rows.append(f"| **tabgen defaults**, mean of {len(r['default']['runs'])} seed(s) | {m['fit_seconds']:.0f} | "
                    f"{f'{rate:,.0f}' if rate else '—'} | {_cells(m)} | "
                    f"{f'{100 * efficiency:.0f} %' if efficiency else '—'} | {m.get('peak_rss_mib', float('nan')):,.0f} MiB |")
    if "duel" in r:
        m = r["duel"]["mean"]["tabgen"]
        rows.append(f"| tabgen, time budget = TabularARGN's fit seconds | {m['fit_seconds']:.0f} | | {_cells(m)} | | |")
    for p in r.get("curve", {}).get("points", []):
        rows.append(f"| tabgen, time budget {_budget_label(p)} | {p['fit_seconds']:.0f} | | {_cells(p)} | | |")
    if not rows:
        return []
    return ["| model | fit s | sample rows/s | Shape % | Trend % | tree C2ST | denoiser achieved/peak | peak RSS |",
            "|---|---:|---:|---:|---:|---:|---:|---:|", *rows, ""]


def render_markdown(all_results: dict[str, dict[str, Any]], results_dir: Path) -> str:
    lines = ["# Speed benchmark", "", "Generated by `benchmarks/speed.py`; see its docstring for what each part measures.", ""]
    for dataset, r in sorted(all_results.items()):
        lines += [f"## {dataset}", ""]
        machines = {json.dumps(r[part]["machine"], sort_keys=True) for part in PARTS if "machine" in r.get(part, {})}
        for m in map(json.loads, sorted(machines)):
            parts = ", ".join(part for part in PARTS if r.get(part, {}).get("machine") == m)
            lines += [f"Machine of {parts}: {m['cpu']}, {m['usable_cores']} cores, bfloat16 matrix units (AMX): "
                      f"{'yes' if m['native_bfloat16'] else 'no'}"
                      + (f", bfloat16 products: {'yes' if m['bfloat16_products'] else 'no'}" if "bfloat16_products" in m else "")
                      + ".", ""]
        commits = [f"{part} {commit_label(r[part]['git'])}" for part in PARTS
                   if commit_label(r.get(part, {}).get("git"))]
        if commits:
            lines += [f"Code of each part: {', '.join(commits)}; parts not named predate this record.", ""]
        lines += summary_table(dataset, r, results_dir)
        if "hardware" in r:
            h = r["hardware"]
            precision = h.get("denoiser_precision", "float32")
            lines += [f"Matmul peak ({h['threads']} threads): float32 {h['matmul_peak_gflops']:.0f} GFLOP/s"
                      + (f", {precision} {h['denoiser_matmul_peak_gflops']:.0f} GFLOP/s" if precision != "float32" else "")
                      + ". Each network is held to the peak of the float type its products run in.", "",
                      "| network | products in | batch | GFLOP/step | s/step | achieved GFLOP/s | achieved/peak |",
                      "|---|---|---:|---:|---:|---:|---:|"]
            for name, dtype in (("vae", "float32"), ("denoiser", precision)):
                s = h[name]
                lines.append(f"| {name} | {dtype} | {s['batch']} | {s['gflop_per_step']:.2f} | {s['seconds_per_step']:.4f} | "
                             f"{s['achieved_gflops']:.1f} | {100 * s['achieved_over_peak']:.0f} % |")
            lines.append("")
        if "sampling" in r:
            s = r["sampling"]
            lines += ["| sampler | 10k rows s | rows/s | Shape % | Trend % | tree C2ST |", "|---|---:|---:|---:|---:|---:|"]
            for steps, v in s["tabgen"].items():
                lines.append(f"| tabgen, {steps} Heun steps{' (default)' if v['default'] else ''} | {v['seconds']:.2f} | "
                             f"{v['rows_per_second']:.0f} | {v['shape']:.2f} | {v['trend']:.2f} | {v['c2st_tree']:.3f} |")
            if "tabular_argn_rows_per_second" in s:
                lines.append(f"| TabularARGN | — | {s['tabular_argn_rows_per_second']:.0f} | | | |")
            lines.append("")
        if "curve" in r:
            lines += [f"![fidelity against fit seconds]({dataset}_curve.png)", ""]
        if "memory" in r:
            mem = r["memory"]
            fit = mem["fit_1m"]
            lines.append(f"Fitting 1,000,000 rows (120 s budget): peak RSS {fit.get('peak_rss_mib', float('nan')):.0f} MiB. "
                         + " ".join(f"Sampling {s['rows']:,} rows to CSV: peak RSS {s.get('peak_rss_mib', float('nan')):.0f} MiB."
                                    for s in mem["sample"]))
            lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    add_dataset_arguments(parser)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}")
    parser.add_argument("--seeds", default="0,1,2", help="fits per measurement, averaged")
    parser.add_argument("--budgets", default=",".join(map(str, CURVE_BUDGETS)), help="seconds, for the curve")
    parser.add_argument("--force", action="store_true", help="re-run parts already in the JSON")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.budgets = [float(b) for b in args.budgets.split(",")]
    args.dataset_dir = args.datasets_dir / args.dataset
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {list(PARTS)}")

    out_dir = args.results_dir / "speed"
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{args.dataset}.json"
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    results.pop("machine", None)  # recorded per part: parts may be run on different machines
    ds = load_dataset(args.dataset_dir)
    for part in parts:
        if part in results and not args.force:
            print(f"[{args.dataset}] {part}: in {json_path} already (--force to re-run)", flush=True)
            continue
        print(f"[{args.dataset}] {part}: running...", flush=True)
        start, code = time.perf_counter(), git_state()
        results[part] = PART_FUNCTIONS[part](ds, args)
        results[part]["wall_seconds"] = time.perf_counter() - start
        results[part]["machine"] = machine()
        results[part]["git"] = code
        write_json(json_path, results)
        print(f"[{args.dataset}] {part}: {time.perf_counter() - start:.0f} s", flush=True)
    if "curve" in results:
        plot_curve(results, args, out_dir / f"{args.dataset}_curve.png")
    everything = {p.stem: json.loads(p.read_text()) for p in out_dir.glob("*.json")}
    (out_dir / "README.md").write_text(render_markdown(everything, args.results_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
