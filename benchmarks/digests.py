"""Digests of what a fixed seed produces, so that a change meant to keep behaviour can show it did.

    python -m benchmarks.digests                 # the small generated table and adult
    python -m benchmarks.digests --tables small  # seconds

Each table is fitted with a short step-limited configuration and float32 products (no time budget,
no timing probe, so the result depends only on the code, torch and the CPU's kind). It prints a
SHA-256 prefix of the denoiser's weights and of the CSV text of rows sampled unconditionally, with
given cells, rebalanced, imputed, and after a save and load. Run it on two commits and compare the
lines (docs/architecture.md has the redesign's).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.harness import DATASETS_DIR
from tabgen import Synthesizer, SynthesizerConfig


def digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()[:16]


def weights_digest(module: torch.nn.Module) -> str:
    d = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        d.update(name.encode())
        d.update(tensor.detach().float().cpu().numpy().tobytes())
    return d.hexdigest()[:16]


def short_config() -> SynthesizerConfig:
    config = SynthesizerConfig.for_device("cpu")
    config.vae.max_steps, config.diffusion.max_steps = 150, 300
    config.diffusion.precision = "float32"
    config.sampler.calibration_rows = 4096
    return config


def small_table(n: int = 600, seed: int = 3) -> pd.DataFrame:
    """Dates, an identifier, a code paired with its label, gaps, booleans, a number with few values."""
    r = np.random.default_rng(seed)
    g = r.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    x = r.normal(size=n) + (g == "b") * 2
    y = np.where(r.random(n) < 0.1, np.nan, x * 3 + r.normal(size=n))
    return pd.DataFrame({
        "id": [f"ID{i:05d}" for i in range(n)], "g": g, "gcode": [{"a": 1, "b": 2, "c": 3}[v] for v in g],
        "x": x.round(3), "y": y.round(2), "k": r.integers(0, 5, n),
        "when": pd.to_datetime("2020-01-01") + pd.to_timedelta(r.integers(0, 900, n), unit="D"),
        "flag": r.random(n) < 0.3,
    })


def table_digests(name: str, df: pd.DataFrame) -> dict[str, str]:
    syn = Synthesizer(config=short_config(), seed=0, progress=False).fit(df)
    out = {"denoiser": weights_digest(syn.denoiser_), "sample": digest(syn.sample(3000))}
    if name == "adult":
        holes = df.head(300).copy()
        out["given"] = digest(syn.sample(400, given={"workclass": "Private"}))
        out["rebalance"] = digest(syn.sample(400, rebalance={"income": {">50K": 0.5}}))
        holes.loc[::3, "age"] = np.nan
        holes.loc[1::4, "occupation"] = np.nan
        out["impute"] = digest(syn.impute(holes, draws=2))
        out["given_rows"] = digest(syn.sample(given=df.head(200)[["sex", "age"]]))
    else:
        out["given"] = digest(syn.sample(300, given={"g": "b"}))
        holes = df.head(100).copy()
        holes.loc[::3, "x"] = np.nan
        out["impute"] = digest(syn.impute(holes))
    with tempfile.TemporaryDirectory() as folder:
        syn.save(f"{folder}/m.tabgen")
        out["loaded"] = digest(Synthesizer.load(f"{folder}/m.tabgen", progress=False).sample(2000, seed=5))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.digests", description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="small,adult", help="small, adult, or both (comma-separated)")
    parser.add_argument("--datasets-dir", type=Path, default=DATASETS_DIR)
    args = parser.parse_args()
    torch.set_num_threads(2)
    for name in args.tables.split(","):
        df = small_table() if name == "small" else pd.read_csv(args.datasets_dir / "adult" / "adult_train.csv")
        print(name, json.dumps(table_digests(name, df)), flush=True)


if __name__ == "__main__":
    main()
