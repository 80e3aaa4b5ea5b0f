"""Ablation: which settings buy fidelity per step, or per second of a whole fit.

    python -m benchmarks.ablation --dataset adult --variants defaults,constant_lr --steps 10000 --jobs 2
    python -m benchmarks.ablation --dataset adult --variants defaults,vae_layers_1 --end-to-end --budget 170

By default one VAE is fitted (and cached) per VAE setting; every variant then trains only the denoiser
on that VAE's latents for the same number of steps, samples as many rows as the training table, and is
scored on Shape, Trend and tree C2ST. Equal steps, not equal seconds, make variants comparable when
``--jobs`` runs them side by side (one torch thread each); the seconds are recorded but only mean
something with ``--jobs 1``.

``--end-to-end`` fits each variant whole instead (VAE and denoiser, the CPU defaults' step limits, or
``--budget`` seconds shared as a user's ``time_budget`` would share them), for changes that move time
between the two phases. Results go to ``results/ablation/<dataset>[-<label>].json`` and a Markdown
table beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor
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
    parsed_dates,
    score,
    scored_against_both,
    usable_cores,
    write_json,
)

#: Named changes to the CPU defaults, as ``section__field: value``.
VARIANTS: dict[str, dict[str, Any]] = {
    "constant_lr": {"diffusion__lr_decay": False},
    # the denoiser's gradients unclipped (default's training died so), or bounded at 5x their running mean norm
    # instead of norm 1 (the default in 758b045-fab2d60, where the variant norm 1 was named "clipped_1")
    "unclipped": {"diffusion__max_grad_norm": None, "diffusion__grad_spike_factor": None},
    "spike_5": {"diffusion__max_grad_norm": None, "diffusion__grad_spike_factor": 5.0},
    "defaults": {},
    "uncalibrated": {"sampler__calibration_rows": 0},
    "unwhitened": {"diffusion__whiten_correlation": None},
    "whitened_0.85": {"diffusion__whiten_correlation": 0.85},
    "whitened_0.85_patience_off": {"diffusion__whiten_correlation": 0.85, "diffusion__patience": 10**9},
    "width_512_lr_2e-3_12k_whitened_0.85": {"diffusion__width": 512, "diffusion__lr": 2e-3, "diffusion__max_steps": 12_000,
                                            "diffusion__whiten_correlation": 0.85},
    "float32": {"diffusion__precision": "float32"},
    "heun_50": {"sampler__num_steps": 50},
    "heun_12": {"sampler__num_steps": 12},
    "width_128": {"diffusion__width": 128},
    "width_256": {"diffusion__width": 256},
    "width_512": {"diffusion__width": 512},
    "width_768": {"diffusion__width": 768},
    "lr_2e-3": {"diffusion__lr": 2e-3},
    # default's seed-1 fit: C2ST 0.398 → 0.483 at 1.3 times the fit time (docs/rules.md)
    "width_512_lr_2e-3_12k": {"diffusion__width": 512, "diffusion__lr": 2e-3, "diffusion__max_steps": 12_000},
    # twice the defaults' steps at their width: what the wider denoiser's time buys without the width
    "steps_48k": {"diffusion__max_steps": 48_000},
    # the defaults' denoiser products (a width-512 step holds four times a width-256 one's)
    "width_512_lr_2e-3_6k": {"diffusion__width": 512, "diffusion__lr": 2e-3, "diffusion__max_steps": 6_000},
    "lr_4e-3": {"diffusion__lr": 4e-3},
    "lr_6e-3": {"diffusion__lr": 6e-3},
    "lr_8e-3": {"diffusion__lr": 8e-3},
    "lr_1e-3": {"diffusion__lr": 1e-3},
    "lr_2e-3_constant": {"diffusion__lr": 2e-3, "diffusion__lr_decay": False},
    "lr_4e-3_constant": {"diffusion__lr": 4e-3, "diffusion__lr_decay": False},
    "sigma_data_1": {"diffusion__sigma_data": 1.0},
    "P_mean_-0.5": {"diffusion__P_mean": -0.5},
    "P_std_1.6": {"diffusion__P_std": 1.6},
    "P_std_0.8": {"diffusion__P_std": 0.8},
    "P_mean_-0.8": {"diffusion__P_mean": -0.8},
    "P_mean_-1.6": {"diffusion__P_mean": -1.6},
    "batch_512": {"diffusion__batch_size": 512},
    "batch_1024": {"diffusion__batch_size": 1024},
    "batch_2048": {"diffusion__batch_size": 2048},
    "batch_512_lr_3e-3": {"diffusion__batch_size": 512, "diffusion__lr": 3e-3},
    "batch_512_lr_4e-3": {"diffusion__batch_size": 512, "diffusion__lr": 4e-3},
    "width_256_batch_1024": {"diffusion__width": 256, "diffusion__batch_size": 1024},
    "ema_0.9995": {"diffusion__ema_decay": 0.9995},
    "vae_factor_32": {"vae__factor": 32},
    "vae_factor_8": {"vae__factor": 8},
    "vae_layers_1": {"vae__n_layers": 1},
    "ema_0.995": {"diffusion__ema_decay": 0.995},
    "sigma_data_0.35": {"diffusion__sigma_data": 0.35},
    "sigma_data_0.7": {"diffusion__sigma_data": 0.7},
    "sigma_data_0.25": {"diffusion__sigma_data": 0.25},
    "sigma_data_0.18": {"diffusion__sigma_data": 0.18},
    "beta_max_0.03": {"vae__beta_max": 0.03},
    "beta_max_0.1": {"vae__beta_max": 0.1},
    "d_token_4": {"vae__d_token": 4, "vae__factor": 8},
    "d_token_4_uncalibrated": {"vae__d_token": 4, "vae__factor": 8, "sampler__calibration_rows": 0},
    "d_token_2": {"vae__d_token": 2, "vae__factor": 8},
    "d_token_3": {"vae__d_token": 3, "vae__factor": 8},
    "d_token_6": {"vae__d_token": 6, "vae__factor": 8},
    "d_token_8": {"vae__d_token": 8, "vae__factor": 8},
    "d_token_12": {"vae__d_token": 12, "vae__factor": 8},
    "d_token_12_factor_4": {"vae__d_token": 12, "vae__factor": 4},
    "d_token_16_factor_4": {"vae__d_token": 16, "vae__factor": 4},
}


def variant_names(parser: argparse.ArgumentParser, listed: str) -> list[str]:
    """The comma-separated variants of ``--variants``; an unknown one ends the program with a usage error."""
    names = [v.strip() for v in listed.split(",") if v.strip()]
    if unknown := sorted(set(names) - set(VARIANTS)):
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    return names


def variant_config(changes: dict[str, Any]):
    """The CPU defaults with the variant's changes."""
    from tabgen import SynthesizerConfig

    config = SynthesizerConfig.for_device("cpu")
    for dotted, value in changes.items():
        section, name = dotted.split("__")
        setattr(getattr(config, section), name, value)
    return config


def make_config(changes: dict[str, Any], steps: int):
    config = variant_config(changes)
    config.diffusion.max_steps = steps
    config.diffusion.max_epochs = 10**9
    config.diffusion.patience = 10**9  # a fixed number of steps for every variant
    return config


def fitted_vae(ds: Dataset, changes: dict[str, Any], cache: Path, seed: int):
    """A Synthesizer whose VAE has the variant's VAE settings, fitted once and cached on disk."""
    from tabgen import Synthesizer

    vae_changes = {k: v for k, v in sorted(changes.items()) if k.startswith("vae__")}
    # Keyed by the whole VAE config, so a change of the defaults never reuses a stale VAE.
    settings = json.dumps(variant_config(vae_changes).vae.__dict__, sort_keys=True)
    path = cache / f"{ds.name}-seed{seed}-vae-{hashlib.sha1(settings.encode()).hexdigest()[:10]}.tabgen"
    if not path.exists():
        syn, _ = fit_tabgen(ds, seed, config=make_config(vae_changes, steps=20))
        cache.mkdir(parents=True, exist_ok=True)
        syn.save(path)
    return Synthesizer.load(path, device="cpu", progress=False)


def model_tensors(cached: Any, ds: Dataset):
    """The training table as ``cached``'s codec reads it: rare values protected and rule columns added,
    as a fit does, then encoded."""
    from tabgen.protection import ValueProtection

    model = cached.model_
    train = ValueProtection.fit(ds.train, model.schema, model.config.rare_value_rows).apply(ds.train)
    return model.codec.transform.transform(model.rules.model_frame(train, model.schema)).to_tensors(model.device)


def run_variant(dataset_dir: str, name: str, steps: int, seed: int, threads: int, cache: str,
                last_weights: bool = False) -> dict[str, Any]:
    import torch

    from tabgen import Synthesizer
    from tabgen.diffusion.denoiser import edm_denoiser
    from tabgen.fitting import FittedModel, calibrate, validation_split
    from tabgen.train import train_diffusion

    torch.set_num_threads(threads)
    ds = parsed_dates(load_dataset(Path(dataset_dir)))
    changes = VARIANTS[name]
    cached = fitted_vae(ds, changes, Path(cache), seed)
    codec, device = cached.codec_, torch.device("cpu")
    config = make_config(changes, steps)
    c = config.diffusion
    torch.manual_seed(seed)
    tensors = model_tensors(cached, ds)
    latents = codec.encode_means(tensors[0], tensors[2])
    codec.fit_scaling(latents, tensors[0], c.latent_std, c.whiten_correlation)
    z = codec.scaling.standardise(latents)
    train_idx, val_idx = validation_split(torch.randperm(len(z)), config)
    denoiser = edm_denoiser(z.shape[1], c, codec.vae.d_token)
    if last_weights:
        _keep_last_weights()
    start = time.perf_counter()
    result = train_diffusion(denoiser, z[train_idx], z[val_idx], c, progress=False)
    fit_seconds = time.perf_counter() - start
    model = FittedModel(codec, denoiser.eval(), config, device, cached.model_.vae_result, result, n_rows=len(ds.train),
                        rules=cached.model_.rules, schema=cached.model_.schema)
    # The cached model's calibration was learned with its own denoiser.
    codec.calibration = calibrate(model.sampler, tensors, config.sampler.calibration_rows)
    syn = Synthesizer.from_model(model, seed=seed, progress=False)
    return sampled_and_scored(syn, ds, seed, {
        "variant": name, "changes": changes, "steps": result.steps, "best_epoch": result.best_epoch,
        "epochs": result.epochs, "best_val_loss": result.best_loss, "diffusion_seconds": fit_seconds, "threads": threads})


def _keep_last_weights() -> None:
    """Make this worker's trainings keep their last weights rather than their best epoch's: variants
    that draw σ differently are validated differently, so the epoch each keeps confounds their scores."""
    from tabgen import train

    finish = train._Loop.finish

    def finish_last(self, module):
        self.best_state = None
        return finish(self, module)

    train._Loop.finish = finish_last


def run_end_to_end(dataset_dir: str, name: str, budget: float | None, seed: int, threads: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    ds = parsed_dates(load_dataset(Path(dataset_dir)))
    changes = VARIANTS[name]
    syn, fit_seconds = fit_tabgen(ds, seed, budget, variant_config(changes))
    vae, diffusion = syn.vae_result_, syn.diffusion_result_
    return sampled_and_scored(syn, ds, seed, {
        "variant": name, "changes": changes, "budget": budget, "fit_seconds": fit_seconds,
        "vae_steps": vae.steps, "vae_seconds": vae.seconds, "steps": diffusion.steps,
        "diffusion_seconds": diffusion.seconds, "best_epoch": diffusion.best_epoch, "epochs": diffusion.epochs,
        "best_val_loss": diffusion.best_loss, "threads": threads})


def sampled_and_scored(syn: Any, ds: Dataset, seed: int, record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with the seconds to sample as many rows as the training table and their scores, against
    the held-out rows too where the dataset has them; printed."""
    start = time.perf_counter()
    fake = syn.sample(len(ds.train), seed=seed)
    seconds = time.perf_counter() - start
    scores = (scored_against_both(ds, fake, seed=seed, schema=syn.schema_) if ds.test is not None
              else headline(score(ds, fake, seed=seed, schema=syn.schema_)))
    out = {**record, "sample_seconds": seconds, **scores}
    shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}
    print(f"  {out['variant']}: {json.dumps(shown)}", flush=True)
    return out


def render(results: dict[str, Any]) -> str:
    scores = [("Shape %", "{shape:.2f}"), ("Trend %", "{trend:.2f}"), ("tree C2ST", "{c2st_tree:.3f}")]
    if any("c2st_holdout" in r for r in results["variants"].values()):
        scores += [("vs held-out: Trend %", "{trend_holdout:.2f}"), ("C2ST", "{c2st_holdout:.3f}")]
    one_seed = "Errors in %, C2ST 1 = indistinguishable. One seed: differences of a few tenths of a percent are noise."
    commit = commit_label(results.get("git"))
    ran = f"the commit that ran it{f' ({commit})' if commit else ''}"
    if results.get("end_to_end"):
        budget = results.get("budget")
        lines = [f"# Whole fits on {results['dataset']}, seed {results['seed']}", "",
                 f"Each variant is a full `Synthesizer.fit` with the CPU defaults of {ran}, changed "
                 "as its row says, " + (f"under a time budget of {budget:.0f} s" if budget else "to the default step limits")
                 + f"; {results['jobs']} variant(s) at a time. {one_seed}", ""]
        columns = scores + [("fit s", "{fit_seconds:.0f}"), ("VAE steps", "{vae_steps}"), ("VAE s", "{vae_seconds:.0f}"),
                            ("denoiser steps", "{steps}"), ("sample s", "{sample_seconds:.1f}")]
    else:
        base = results["base_config"]["diffusion"]
        lines = [f"# Ablation on {results['dataset']}", "",
                 (f"Base: the defaults of {ran} (denoiser width {base['width']}, lr {base['lr']}, "
                 f"lr decay {base['lr_decay']}); each variant changes what its row says."), "",
                 (f"Diffusion trained for {results['steps']} steps per variant on the same VAE"
                  + ("; each keeps its last weights" if results.get("last_weights") else "; each keeps its best epoch's weights")
                  + f"; {results['jobs']} "
                 f"variant(s) at a time. {one_seed} Validation losses compare only between variants that draw σ "
                 "alike (not across σ_data or P_mean changes)."), ""]
        columns = scores + [("best val loss", "{best_val_loss:.4f}"), ("diffusion s", "{diffusion_seconds:.0f}"),
                            ("sample s", "{sample_seconds:.1f}")]
    lines += ["| variant | changes | " + " | ".join(name for name, _ in columns) + " |",
              "|---|---|" + "---|" * len(columns)]
    for r in results["variants"].values():
        if "error" in r:
            lines.append(f"| {r['variant']} | error: {r['error']} |" + "|" * len(columns))
            continue
        cells = " | ".join(cell.format(**r) for _, cell in columns)
        lines.append(f"| {r['variant']} | {r['changes'] or '—'} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ablation", description=__doc__.splitlines()[0])
    add_dataset_arguments(parser)
    parser.add_argument("--variants", default="defaults", help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=10_000, help="denoiser steps per variant (not with --end-to-end)")
    parser.add_argument("--end-to-end", action="store_true", help="fit each variant whole, VAE included")
    parser.add_argument("--budget", type=float, default=None, help="with --end-to-end: time_budget in seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="variants trained side by side, one thread each")
    parser.add_argument("--cache", type=Path, default=MODEL_CACHE)
    parser.add_argument("--last-weights", action="store_true",
                        help="keep each denoiser's last weights, not its best epoch's (not with --end-to-end)")
    parser.add_argument("--label", default="", help="suffix of the result files, to keep rounds on other defaults apart")
    args = parser.parse_args(argv)
    names = variant_names(parser, args.variants)
    if args.last_weights and args.end_to_end:
        parser.error("--last-weights applies to the cached-VAE variants, not --end-to-end")
    if args.budget is not None and not (args.end_to_end and args.budget > 0):
        parser.error("--budget needs --end-to-end and a positive number of seconds")
    threads = 1 if args.jobs > 1 else usable_cores()
    if not args.end_to_end:
        # VAEs first, one at a time, so that parallel variants never fit the same VAE twice.
        ds = parsed_dates(load_dataset(args.datasets_dir / args.dataset))
        for name in names:
            fitted_vae(ds, VARIANTS[name], args.cache, args.seed)

    out_dir = args.results_dir / "ablation"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{args.dataset}-{args.label}" if args.label else args.dataset
    json_path = out_dir / f"{stem}.json"
    settings = {"seed": args.seed, "end_to_end": args.end_to_end}
    settings |= {"budget": args.budget} if args.end_to_end else {"steps": args.steps, "last_weights": args.last_weights}
    results = json.loads(json_path.read_text()) if json_path.exists() else {"variants": {}}
    if any(results.get(k, v) != v for k, v in settings.items()):
        results = {"variants": {}}  # other settings: start a fresh table
    base = variant_config({}) if args.end_to_end else make_config({}, args.steps)
    results.update(dataset=args.dataset, jobs=args.jobs, base_config=base.to_dict(), git=git_state(), **settings)
    # spawn, not fork: this process has already started torch's thread pools.
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
        dataset_dir = str(args.datasets_dir / args.dataset)
        futures = {name: pool.submit(run_end_to_end, dataset_dir, name, args.budget, args.seed, threads)
                   if args.end_to_end else
                   pool.submit(run_variant, dataset_dir, name, args.steps, args.seed, threads, str(args.cache), args.last_weights)
                   for name in names}
        for name, future in futures.items():
            try:
                results["variants"][name] = future.result()
            except Exception as error:  # noqa: BLE001  (one broken variant must not lose the others)
                results["variants"][name] = {"variant": name, "error": f"{type(error).__name__}: {error}"}
            write_json(json_path, results)
            (out_dir / f"{stem}.md").write_text(render(results))
    print((out_dir / f"{stem}.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
