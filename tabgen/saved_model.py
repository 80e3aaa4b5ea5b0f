"""A fitted model as one file: the header (schema, layout, config) and every stage's tensors, and
the reading of files written by earlier versions."""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from typing import Any

import torch

from .calibration import Calibration
from .codec import Codec, LatentScaling
from .config import SynthesizerConfig
from .diffusion.denoiser import edm_denoiser
from .dp_sgd import PrivacySpent
from .errors import TabgenError
from .fitting import FittedModel
from .io import load_model, save_model
from .layout import TokenLayout
from .rules.ruleset import RuleSet
from .schema import Schema
from .train import TrainResult
from .transform import TableTransform
from .vae import VAE
from .version import __version__

#: The most a model file's sampler settings may ask for. The modules cannot be larger than the file's
#: own tensors (:func:`check_tensors`), but these settings are not tensors, and each sizes an
#: allocation of its own when sampling: ``batch_size`` rows denoised at once (their noise, and each of
#: the denoiser's activations, is that many rows), noise-level schedules of ``num_steps`` and
#: ``inpaint_steps`` values, and the ``calibration_rows`` that a refit with the loaded config samples
#: and keeps with all their logits. Each limit is 60 to 500 times its default; a file beyond one is
#: refused on loading, and :func:`write_model` refuses to write one.
MAX_SAMPLER_SETTINGS = {"batch_size": 1_000_000, "num_steps": 10_000, "inpaint_steps": 10_000,
                        "calibration_rows": 1_000_000}
#: What a private fit's header records of the privacy it spent.
PRIVACY_FIELDS = [f.name for f in fields(PrivacySpent)]


def write_model(path: str | os.PathLike, model: FittedModel, extra: dict[str, Any]) -> None:
    """Write ``model`` atomically (safetensors + JSON, no pickle); ``extra`` joins the header. A model
    whose sampler settings :func:`read_model` would refuse is not written."""
    try:
        check_sampler_limits(model.config)
    except ValueError as e:
        raise TabgenError(f"cannot write {path}: {e}; set it lower in the Synthesizer's config_ and save again") from None
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
    if model.rules:  # the schema above is then the model table's; the user's table's is this one
        header |= {"rules": model.rules.to_list(), "table_schema": model.schema.to_dict()}
    if model.privacy is not None:
        header["privacy"] = asdict(model.privacy)
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
    latent bounds, or without calibration. Nothing is built before :func:`check_tensors` has found
    every tensor the header describes, in its shape, so a crafted header cannot make it allocate more
    than the file holds."""
    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    config = SynthesizerConfig.from_dict(header["config"])
    check_sampler_limits(config)
    schema = Schema.from_dict(header["schema"])
    levels = header["layout"]["value_levels"] if "layout" in header else header.get("value_levels")
    transform = TableTransform.from_state(schema, {k: v.numpy() for k, v in part("transform.").items()}, levels)
    if "layout" in header and TokenLayout.from_dict(header["layout"]) != transform.layout_:
        raise ValueError("the layout in the header does not match the schema")
    latent_dim = check_tensors(transform.layout_, config, tensors)
    if header.get("latent_dim", latent_dim) != latent_dim:
        raise ValueError(f"the header's latent_dim {header['latent_dim']!r} is not its layout's {latent_dim}")
    vae = VAE.for_layout(transform.layout_, config.vae)
    _load_state(vae, part("vae."), "vae")
    calibration = part("calibration.")
    codec = Codec(transform, vae.to(device).eval(), LatentScaling.from_state(part("latent."), device),
                  Calibration.from_state(calibration, transform.layout_) if calibration else None)
    denoiser = edm_denoiser(codec.latent_dim, config.diffusion, codec.vae.d_token)
    _load_state(denoiser, part("denoiser."), "denoiser")
    rules = RuleSet.from_list(header.get("rules", []))
    table_schema = Schema.from_dict(header["table_schema"]) if "table_schema" in header else None
    # counts_noise is None where the fit had no calibration, and absent from files written before it had one.
    privacy = PrivacySpent(**{k: float(v) for k, v in header["privacy"].items()
                              if k in PRIVACY_FIELDS and v is not None}) if "privacy" in header else None
    return FittedModel(codec, denoiser.to(device).eval(), config, device, TrainResult(), n_rows=header["n_rows"],
                       rules=rules, schema=table_schema, privacy=privacy)


def check_sampler_limits(config: SynthesizerConfig) -> None:
    """Refuse sampler settings beyond :data:`MAX_SAMPLER_SETTINGS` (a ValueError, which
    :func:`read_model` reports as a damaged file)."""
    for name, limit in MAX_SAMPLER_SETTINGS.items():
        value = getattr(config.sampler, name)
        if value > limit:
            raise ValueError(f"config.sampler.{name} is {value:,}, above the {limit:,} a model file may set "
                             "(tabgen.saved_model.MAX_SAMPLER_SETTINGS)")


def check_tensors(layout: TokenLayout, config: SynthesizerConfig, tensors: dict[str, torch.Tensor]) -> int:
    """The latent width, once the file's VAE, denoiser and latent scaling tensors are exactly those its
    header's layout and config describe, in name and shape (else a ValueError), and its calibration's
    shapes fit the layout.

    The modules are built on the meta device, which allocates no memory, and compared before any real
    one is: a header of width 20,000 on a file of width 64 used to build its denoiser (12.8 GB, 42 s)
    before ``load_state_dict`` refused it. Once shapes must match, the real modules are no larger than
    the file's own tensors, so the file's size bounds them; no limit on the width or the token width is
    needed. Even meta modules are Python objects, one set per VAE layer and per head: each puts at least
    one tensor in the file, so there may be no more of them than the file has tensors."""
    vae_config = config.vae
    if vae_config.d_token is None:
        raise ValueError("config.vae.d_token is not set")
    if vae_config.d_token % vae_config.n_heads:
        raise ValueError(f"config.vae.d_token {vae_config.d_token!r} is not a multiple of n_heads {vae_config.n_heads}")
    if config.diffusion.noise_channels % 2:
        raise ValueError(f"config.diffusion.noise_channels {config.diffusion.noise_channels} is odd")
    heads = len(layout.cardinalities) + len(layout.discrete)
    if max(vae_config.n_layers, heads) > len(tensors):
        raise ValueError(f"the header describes {vae_config.n_layers} VAE layers and {heads} heads, the file "
                         f"holds {len(tensors)} tensors")
    with torch.device("meta"):
        vae = VAE.for_layout(layout, vae_config)
        latent_dim = layout.n_tokens * vae_config.d_token
        denoiser = edm_denoiser(latent_dim, config.diffusion, vae_config.d_token)
    expected = {f"vae.{k}": tuple(v.shape) for k, v in vae.state_dict().items()}
    expected |= {f"denoiser.{k}": tuple(v.shape) for k, v in denoiser.state_dict().items()}
    expected |= {f"latent.{k}": (latent_dim,) for k in ("mean", "std", "low", "high")}
    if "latent.low" not in tensors and "latent.high" not in tensors:  # files from before the bounds
        del expected["latent.low"], expected["latent.high"]
    if "latent.mix" in tensors or "latent.unmix" in tensors:  # a table with correlated columns
        expected |= {f"latent.{k}": (latent_dim, latent_dim) for k in ("mix", "unmix")}
    if any(k in tensors for k in ("latent.axes", "latent.axis_variances", "latent.rest_variance")):  # since the shaped start
        variances = tensors.get("latent.axis_variances")
        k = min(variances.shape[0] if variances is not None and variances.ndim == 1 else 1, latent_dim)
        expected |= {"latent.axes": (latent_dim, k), "latent.axis_variances": (k,), "latent.rest_variance": ()}
    _compare_shapes(expected, {k: v for k, v in tensors.items() if k.startswith(("vae.", "denoiser.", "latent."))})
    _check_transform({k: v for k, v in tensors.items() if k.startswith("transform.")})
    _check_calibration(layout, {k[len("calibration."):]: v for k, v in tensors.items() if k.startswith("calibration.")})
    return latent_dim


def _compare_shapes(expected: dict[str, tuple[int, ...]], found: dict[str, torch.Tensor]) -> None:
    missing = sorted(expected.keys() - found.keys())
    extra = sorted(found.keys() - expected.keys())
    if missing or extra:
        raise ValueError(f"tensors missing: {_few(missing)}; unexpected: {_few(extra)}")
    for name, shape in expected.items():
        if tuple(found[name].shape) != shape:
            raise ValueError(f"tensor {name} has shape {tuple(found[name].shape)}, the header describes {shape}")


def _load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], prefix: str) -> None:
    """``load_state_dict``, once the file's integer buffers (the tokenizer's offsets into its embedding,
    which follow from the layout) are the ones ``module`` was built with: others would index out of range."""
    for name, built in module.state_dict().items():
        if not built.is_floating_point() and not torch.equal(built, state[name].to(built.dtype)):
            raise ValueError(f"tensor {prefix}.{name} does not match the layout")
    module.load_state_dict(state)


def _check_transform(tensors: dict[str, torch.Tensor]) -> None:
    """The transform's quantiles and grids are lists of numbers, each grid as long as its probabilities."""
    for name, t in tensors.items():
        if t.dim() != 1:
            raise ValueError(f"tensor {name} has shape {tuple(t.shape)}, not one dimension")
        if name.startswith("transform.grid/") and t.shape != tensors.get(name.replace("grid/", "grid_cdf/"), t).shape:
            raise ValueError(f"tensor {name} is not as long as its grid_cdf")


def _few(names: list[str]) -> str:
    return (", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")) or "none"


def _check_calibration(layout: TokenLayout, tensors: dict[str, torch.Tensor]) -> None:
    """The calibration's tensors have the shapes and indices :class:`Calibration` reads with ``layout``'s heads."""
    if not tensors:
        return
    classes = layout.cardinalities + [len(layout.value_levels[j]) for j in layout.discrete]

    def shape(name: str, want: tuple[int, ...] | int) -> torch.Tensor:
        if name not in tensors:
            raise ValueError(f"tensor calibration.{name} is missing")
        t = tensors[name]
        if (t.dim() != want) if isinstance(want, int) else (tuple(t.shape) != want):
            described = f"{want} dimension(s)" if isinstance(want, int) else want
            raise ValueError(f"tensor calibration.{name} has shape {tuple(t.shape)}, the header describes {described}")
        return t

    def indices(name: str, t: torch.Tensor, low: int, high: int) -> list[int]:
        if t.is_floating_point() or t.is_complex() or (t.numel() and not low <= int(t.min()) <= int(t.max()) < high):
            raise ValueError(f"tensor calibration.{name} holds values outside [{low}, {high})")
        return t.flatten().tolist()

    for h, k in enumerate(classes):
        shape(f"bias.{h}", (k,))
    for j in range(layout.n_numerical):
        shape(f"quantiles.{j}", 1)
        if f"given.{j}.parents" in tensors:
            parents = indices(f"given.{j}.parents", shape(f"given.{j}.parents", 1), 0, len(layout.cardinalities))
            sampled = shape(f"given.{j}.sampled", 2)
            shape(f"given.{j}.table", tuple(sampled.shape))
            indices(f"given.{j}.group", shape(f"given.{j}.group", tuple(layout.cardinalities[p] for p in parents)),
                    -1, len(sampled))
    if "pairs" in tensors:
        pairs = indices("pairs", shape("pairs", (len(tensors["pairs"]), 2)), 0, len(classes))
        for i, (child, parent) in enumerate(zip(pairs[::2], pairs[1::2])):
            shape(f"pair.{i}", (classes[parent], classes[child]))
