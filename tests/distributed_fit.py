"""One rank's part of the two-process fit of tests/test_distributed.py (run by torchrun, or alone):
fits a small table at a fixed step count and writes what the test compares to OUT{RANK}.json."""

import hashlib
import json
import os
import sys
import threading
from pathlib import Path

import torch

from tabgen import Synthesizer
from tabgen.distributed import restarted

from conftest import fast_config, make_mixed_frame

torch.set_num_threads(1)


def fitted(distributed: bool, model: str | None = None) -> Synthesizer:
    config = fast_config()
    config.vae.batch_size = config.diffusion.batch_size = 128  # the total over the ranks
    syn = Synthesizer(config=config, distributed=distributed, progress=False, seed=3)
    return syn.fit_and_save(make_mixed_frame(1000), model) if model else syn.fit(make_mixed_frame(1000))


def weights(syn: Synthesizer) -> str:
    digest = hashlib.sha256()
    for module in (syn.codec_.vae, syn.denoiser_):
        for _, tensor in sorted(module.state_dict().items()):
            digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def summary(syn: Synthesizer) -> dict:
    rows = syn.sample(2000, seed=1)
    return {"weights": weights(syn), "vae_loss": syn.vae_result_.best_loss,
            "diffusion_loss": syn.diffusion_result_.best_loss,
            "steps": [syn.vae_result_.steps, syn.diffusion_result_.steps],
            "x_mean": float(rows["x"].mean()), "a_share": float((rows["group"] == "a").mean())}


def fitted_through_a_death(model: str) -> Synthesizer:
    """Rank 1 dies a few seconds into the first attempt; torchrun restarts both, which resume."""
    if restarted():
        print(f"rank {os.environ['RANK']} resumed", file=sys.stderr)
    elif os.environ["RANK"] == "1":
        threading.Timer(float(os.environ["DIE_AFTER"]), os._exit, (1,)).start()
    config = fast_config()
    config.diffusion.max_steps = 1500
    checkpoint = Path(model + ".ckpt")
    syn = Synthesizer(config=config, distributed=True, progress=False, seed=3, checkpoint=checkpoint, checkpoint_every=0)
    return syn.fit_and_save(make_mixed_frame(1000), model, resume=restarted() and checkpoint.exists())


if __name__ == "__main__":
    out, model = sys.argv[1], sys.argv[2]
    syn = fitted_through_a_death(model) if "DIE_AFTER" in os.environ else fitted(True, model)
    result = summary(syn)
    # With the group open, a fit not asked to be distributed is one process's own.
    result["alone"] = weights(fitted(False))
    with open(f"{out}{os.environ['RANK']}.json", "w") as f:
        json.dump(result, f)
