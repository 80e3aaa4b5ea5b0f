"""How well the VAE alone reconstructs the training rows, per VAE setting.

    python -m benchmarks.vae_reconstruction --dataset adult --variants '{}' '{"lr": 0.003}'

Each variant (changes to ``VAEConfig`` as JSON) fits only the VAE with the CPU defaults otherwise,
then decodes the encoder's mean latents of every training row. The share of categorical cells that
come back unchanged bounds what the diffusion model can reach: a category the decoder cannot produce
is lost to Shape and Trend however good the denoiser. Results go to
``results/ablation/<dataset>-vae[-<label>].json`` and a Markdown table beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from benchmarks.harness import (
    Dataset,
    add_dataset_arguments,
    canonical,
    commit_label,
    fit_tabgen,
    git_state,
    load_dataset,
    round_trip,
    write_json,
)


def reconstruct(ds: Dataset, changes: dict[str, Any], seed: int) -> dict[str, Any]:
    import torch

    from tabgen import SynthesizerConfig

    config = SynthesizerConfig.for_device("cpu")
    for name, value in changes.items():
        setattr(config.vae, name, value)
    config.diffusion.max_steps = 20  # only the VAE matters here
    syn, _ = fit_tabgen(ds, seed, config=config)
    codec = syn.codec_
    x_num, _, x_cat = codec.transform.transform(ds.train).to_tensors(syn.device_)
    with torch.no_grad():  # the mean latents decoded, calibrated as sampled rows are
        decoded = round_trip(codec.decode(codec.encode_means(x_num, x_cat)), ds)
    real = canonical(ds.train, ds.categorical)
    kept = {c: float((real[c].astype(str).values == decoded[c].astype(str).values).mean()) for c in ds.categorical}
    worst = min(kept, key=kept.get) if kept else None
    r = syn.vae_result_
    return {"changes": changes, "vae_seconds": r.seconds, "epochs": r.epochs, "best_epoch": r.best_epoch,
            "best_reconstruction": r.best_loss, "worst_column": worst, "worst_column_kept": kept.get(worst),
            "categorical_cells_kept": kept}


def render(results: dict[str, Any]) -> str:
    commit = commit_label(results.get("git"))
    lines = [f"# VAE reconstruction on {results['dataset']}", "",
             ("Training rows encoded (mean latents) and decoded by the VAE alone; 'kept' is the share of a "
             "categorical column's cells that come back unchanged. Other settings: the CPU defaults of the commit "
             f"that ran it{f' ({commit})' if commit else ''}. One seed."), "",
             "| VAE changes | epochs (best) | validation reconstruction | worst column | kept | seconds |",
             "|---|---:|---:|---|---:|---:|"]
    for r in results["variants"]:
        lines.append(f"| {json.dumps(r['changes']) if r['changes'] else 'defaults'} | {r['epochs']} ({r['best_epoch']}) | "
                     f"{r['best_reconstruction']:.4f} | {r['worst_column']} | {100 * r['worst_column_kept']:.2f} % | "
                     f"{r['vae_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vae_reconstruction", description=__doc__.splitlines()[0])
    add_dataset_arguments(parser)
    parser.add_argument("--variants", nargs="+", default=["{}"], help="VAEConfig changes, one JSON object each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", default="", help="suffix of the result files, to keep rounds on other code apart")
    args = parser.parse_args(argv)
    ds = load_dataset(args.datasets_dir / args.dataset)
    out_dir = args.results_dir / "ablation"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{args.dataset}-vae" + (f"-{args.label}" if args.label else "")
    results: dict[str, Any] = {"dataset": args.dataset, "seed": args.seed, "git": git_state(), "variants": []}
    for variant in args.variants:
        results["variants"].append(reconstruct(ds, json.loads(variant), args.seed))
        write_json(out_dir / f"{stem}.json", results)
        (out_dir / f"{stem}.md").write_text(render(results))
    print((out_dir / f"{stem}.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
