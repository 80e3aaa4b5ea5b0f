"""The denoiser on latents standardised per dimension (tabgen's default), whitened in groups of correlated
columns (``--whiten-correlated``, :mod:`tabgen.whitening`) and whitened whole, on one VAE.

    python -m benchmarks.whitening default 1 8000 plain
    python -m benchmarks.whitening default 1 8000 group 0.85
    python -m benchmarks.whitening default 1 8000 whiten

Arguments: table, seed, denoiser steps, ``plain``, ``group`` or ``whiten``, and for ``group`` the
|correlation| of numerical columns' normal scores that links them into a group (default 0.85). The
VAE is the ablation's, fitted once per table and seed and cached (``benchmarks.ablation.fitted_vae``).
Prints the smallest eigenvalues of the standardised latents' correlation, then one JSON line of scores
(all rows, against the training table and the held-out rows, with the groups whitened) and, on default,
the share of rows whose consecutive bills lie within 1,000 of each other, real and synthetic
(docs/rules.md).
"""
import json
import sys
import time

import numpy as np
import torch

from benchmarks.ablation import fitted_vae, model_tensors
from benchmarks.harness import DATASETS_DIR, MODEL_CACHE, load_dataset, parsed_dates, scored_against_both
from tabgen import Synthesizer
from tabgen.codec import LatentScaling
from tabgen.diffusion.denoiser import edm_denoiser
from tabgen.fitting import FittedModel, calibrate, validation_split
from tabgen.train import train_diffusion
from tabgen.whitening import correlated_groups


def near_share(df, cols, tol=1000):
    a = df[cols].to_numpy(float)
    return [round(float(np.mean(np.abs(a[:, i + 1] - a[:, i]) <= tol)), 3) for i in range(len(cols) - 1)]


def main() -> None:
    table, seed, steps, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    threshold = float(sys.argv[5]) if len(sys.argv) > 5 else 0.85
    ds = parsed_dates(load_dataset(DATASETS_DIR / table))
    cached = fitted_vae(ds, {}, MODEL_CACHE, seed)
    m, codec = cached.model_, cached.codec_
    config = m.config
    c = config.diffusion
    c.max_steps, c.max_epochs, c.patience = steps, 10**9, 10**9
    tensors = model_tensors(cached, ds)
    latents = codec.encode_means(tensors[0], tensors[2])
    s = LatentScaling.fit(latents, c.latent_std).standardise(latents)
    ev = torch.linalg.eigvalsh(torch.corrcoef(s.T.double()))
    print("corr eigenvalues (smallest 8):", [round(float(v), 5) for v in ev[:8]], "count<0.01:", int((ev < 0.01).sum()),
          "of", len(ev), flush=True)
    if mode == "whiten":
        codec.scaling = LatentScaling.fit(latents, c.latent_std, [list(range(latents.shape[1]))])
    else:
        codec.fit_scaling(latents, tensors[0], c.latent_std, threshold if mode == "group" else None)
    z = codec.scaling.standardise(latents)
    torch.manual_seed(seed)
    train_idx, val_idx = validation_split(torch.randperm(len(z)), config)
    denoiser = edm_denoiser(z.shape[1], c, codec.vae.d_token)
    denoiser.process.fit(z[train_idx])
    t0 = time.perf_counter()
    result = train_diffusion(denoiser, z[train_idx], z[val_idx], c, progress=False)
    secs = time.perf_counter() - t0
    model = FittedModel(codec, denoiser.eval(), config, torch.device("cpu"), m.vae_result, result, n_rows=len(ds.train),
                        rules=m.rules, schema=m.schema)
    codec.calibration = calibrate(model.sampler, tensors, config.sampler.calibration_rows)
    syn = Synthesizer.from_model(model, seed=seed, progress=False)
    fake = syn.sample(len(ds.train), seed=seed)
    out = scored_against_both(ds, fake, seed=seed, schema=syn.schema_)
    out.update(mode=mode, steps=result.steps, seconds=round(secs), table=table, seed=seed)
    if mode == "group":
        names = [spec.name for spec in m.codec.schema.numerical]
        out.update(threshold=threshold, groups=[[names[j] for j in g] for g in correlated_groups(tensors[0], threshold)])
    if table == "default":
        bills = [f"BILL_AMT{i}" for i in range(1, 7)]
        out["near_real"], out["near_fake"] = near_share(ds.train, bills), near_share(fake, bills)
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}), flush=True)


if __name__ == "__main__":
    main()
