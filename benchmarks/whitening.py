"""The denoiser on per-dimension standardised latents (tabgen's) against whitened ones, on one VAE.

    python -m benchmarks.whitening default 1 8000 plain
    python -m benchmarks.whitening default 1 8000 whiten 1e-4

Arguments: table, seed, denoiser steps, ``plain`` or ``whiten``, and the eigenvalue floor (relative to the
largest) below which whitening stops amplifying a direction. The VAE is the ablation's, fitted once per
table and seed and cached (``benchmarks.ablation.fitted_vae``). Prints the smallest eigenvalues of the
standardised latents' correlation, then one JSON line of scores (all rows, against the training table and
the held-out rows) and, on default, the share of rows whose consecutive bills lie within 1,000 of each
other, real and synthetic (docs/rules.md). A prototype: conditional sampling is not supported on
whitened latents.
"""
import json
import sys
import time

import numpy as np
import torch

from benchmarks.ablation import fitted_vae, model_tensors
from benchmarks.harness import DATASETS_DIR, MODEL_CACHE, load_dataset, scored_against_both
from tabgen import Synthesizer
from tabgen.codec import LatentScaling
from tabgen.diffusion.denoiser import edm_denoiser
from tabgen.fitting import FittedModel, calibrate, validation_split
from tabgen.train import train_diffusion


class Whitened:
    def __init__(self, mean, W, Winv):
        self.mean, self.W, self.Winv = mean, W, Winv
        self.low = self.high = None

    @classmethod
    def fit(cls, latents, target_std, floor):
        mean = latents.mean(0)
        x = (latents - mean).double()
        cov = x.T @ x / (len(x) - 1)
        evals, U = torch.linalg.eigh(cov)
        evals = evals.clamp_min(evals.max() * floor)
        W = (U * (target_std / evals.sqrt())) @ U.T
        Winv = (U * (evals.sqrt() / target_std)) @ U.T
        s = cls(mean, W.float(), Winv.float())
        z = s.standardise(latents)
        s.low, s.high = z.min(0).values, z.max(0).values
        return s

    def standardise(self, latents):
        return (latents - self.mean) @ self.W

    def unstandardise(self, z):
        return z.float() @ self.Winv + self.mean


def near_share(df, cols, tol=1000):
    a = df[cols].to_numpy(float)
    return [round(float(np.mean(np.abs(a[:, i + 1] - a[:, i]) <= tol)), 3) for i in range(len(cols) - 1)]


def main() -> None:
    table, seed, steps, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    floor = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-4
    ds = load_dataset(DATASETS_DIR / table)
    cached = fitted_vae(ds, {}, MODEL_CACHE, seed)
    m, codec = cached.model_, cached.codec_
    config = m.config
    c = config.diffusion
    c.max_steps, c.max_epochs, c.patience = steps, 10**9, 10**9
    tensors = model_tensors(cached, ds)
    latents = codec.encode_means(tensors[0], tensors[2])
    plain = LatentScaling.fit(latents, c.latent_std)
    s = plain.standardise(latents)
    corr = torch.corrcoef(s.T.double())
    ev = torch.linalg.eigvalsh(corr)
    print("corr eigenvalues (smallest 8):", [round(float(v), 5) for v in ev[:8]], "count<0.01:", int((ev < 0.01).sum()),
          "of", len(ev), flush=True)
    codec.scaling = Whitened.fit(latents, c.latent_std, floor) if mode == "whiten" else plain
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
    out.update(mode=mode, floor=floor, steps=result.steps, seconds=round(secs), table=table, seed=seed)
    if table == "default":
        bills = [f"BILL_AMT{i}" for i in range(1, 7)]
        out["near_real"], out["near_fake"] = near_share(ds.train, bills), near_share(fake, bills)
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}), flush=True)


if __name__ == "__main__":
    main()
