"""A fitted model as one file: the header (schema, layout, config) and every stage's tensors, and
the reading of files written by earlier versions."""

from __future__ import annotations

import os
from typing import Any

import torch

from .calibration import Calibration
from .codec import Codec, LatentScaling
from .config import SynthesizerConfig
from .diffusion.denoiser import edm_denoiser
from .errors import TabgenError
from .fitting import FittedModel
from .io import load_model, save_model
from .layout import TokenLayout
from .schema import Schema
from .train import TrainResult
from .transform import TableTransform
from .vae import VAE
from .version import __version__


def write_model(path: str | os.PathLike, model: FittedModel, extra: dict[str, Any]) -> None:
    """Write ``model`` atomically (safetensors + JSON, no pickle); ``extra`` joins the header."""
    codec = model.codec
    header = {
        "tabgen_version": __version__,
        "schema": codec.schema.to_dict(),
        "layout": codec.layout.to_dict(),
        "config": model.config.to_dict(),
        "n_rows": model.n_rows,
        "latent_dim": codec.latent_dim,
        **extra,
    }
    tensors = {f"vae.{k}": v for k, v in codec.vae.state_dict().items()}
    tensors |= {f"denoiser.{k}": v for k, v in model.denoiser.state_dict().items()}
    tensors |= {f"transform.{k}": torch.from_numpy(v) for k, v in codec.transform.state_arrays().items()}
    tensors |= {f"latent.{k}": v for k, v in codec.scaling.state_tensors().items()}
    if codec.calibration is not None:
        tensors |= {f"calibration.{k}": v for k, v in codec.calibration.state_tensors().items()}
    save_model(path, header, tensors)


def read_model(path: str | os.PathLike, device: torch.device) -> tuple[FittedModel, dict[str, Any]]:
    """The model in a file written by :func:`write_model`, and its header; it never executes code from the file."""
    header, tensors = load_model(path)
    try:
        return model_from_state(header, tensors, device), header
    except TabgenError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise TabgenError(f"{path} is damaged or incomplete ({type(e).__name__}: {e}); fit the model again") from None


def model_from_state(header: dict[str, Any], tensors: dict[str, torch.Tensor], device: torch.device) -> FittedModel:
    """The model from a file's header and tensors, including files of earlier versions: without a
    layout (its value levels were a header field, absent before discrete numerical columns), without
    latent bounds, or without calibration."""
    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    config = SynthesizerConfig.from_dict(header["config"])
    schema = Schema.from_dict(header["schema"])
    levels = header["layout"]["value_levels"] if "layout" in header else header.get("value_levels")
    transform = TableTransform.from_state(schema, {k: v.numpy() for k, v in part("transform.").items()}, levels)
    if "layout" in header and TokenLayout.from_dict(header["layout"]) != transform.layout_:
        raise ValueError("the layout in the header does not match the schema")
    vae = VAE.for_layout(transform.layout_, config.vae)
    vae.load_state_dict(part("vae."))
    calibration = part("calibration.")
    codec = Codec(transform, vae.to(device).eval(), LatentScaling.from_state(part("latent."), device),
                  Calibration.from_state(calibration, transform.layout_) if calibration else None)
    denoiser = edm_denoiser(codec.latent_dim, config.diffusion)
    denoiser.load_state_dict(part("denoiser."))
    return FittedModel(codec, denoiser.to(device).eval(), config, device, TrainResult(), n_rows=header["n_rows"])
