"""TabSyn's VAE: each column becomes a token, a small transformer encodes and decodes them.

The encoder's mean latents (one ``d_token`` vector per column) are what the diffusion model learns.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import VAEConfig
from .layout import TokenLayout


class Tokenizer(nn.Module):
    """Numerical column j -> x_j·w_j + b_j; categorical column -> its category's embedding + b_j."""

    def __init__(self, d_numerical: int, cardinalities: list[int], d_token: int):
        super().__init__()
        self.d_numerical = d_numerical
        self.weight = nn.Parameter(torch.empty(d_numerical, d_token))
        self.bias = nn.Parameter(torch.empty(d_numerical + len(cardinalities), d_token))
        # On the meta device (a model file's shape check), normal draws and cumsum run torch's Python
        # reference kernels, whose first use costs two seconds of every `tabgen sample`: a meta embedding
        # skips its draws. Elsewhere they stay, so that a seed gives the models it gave before.
        embedding = torch.empty(max(sum(cardinalities), 1), d_token)
        if not embedding.is_meta:
            nn.init.normal_(embedding)
        self.embeddings = nn.Embedding(*embedding.shape, _weight=embedding)
        offsets = list(itertools.accumulate(cardinalities, initial=0))[:-1]
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.long))
        for p in (self.weight, self.bias, self.embeddings.weight):
            if p.numel():
                nn.init.kaiming_uniform_(p, a=math.sqrt(5))

    def forward(self, x_num: Tensor, x_cat: Tensor) -> Tensor:
        tokens = [self.weight[None] * x_num[:, :, None]]
        if x_cat.shape[1]:
            tokens.append(self.embeddings(x_cat + self.offsets[None]))
        return torch.cat(tokens, dim=1) + self.bias[None]


class TokenNorm(nn.LayerNorm):
    """LayerNorm over a token's few features, written out: for 4-wide tokens the fused CPU kernel's
    backward took a fifth of a VAE step (1.2 ms a call on adult at batch 1,024), the plain ops a tenth
    of that. Same parameters, so model files are unchanged."""

    def forward(self, x: Tensor) -> Tensor:
        centred = x - x.mean(-1, keepdim=True)
        return centred * torch.rsqrt(centred.square().mean(-1, keepdim=True) + self.eps) * self.weight + self.bias


#: Beyond this many tokens (columns) torch's fused attention is the faster: it never holds the whole
#: batch's (tokens × tokens) weights. On a 2-core CPU at batch 1,024, forward and backward over 300
#: tokens took 0.38 s a layer against 1.8 s written out; the two are about even at 16 to 28 tokens.
FUSED_ATTENTION_MIN_TOKENS = 32


def attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """softmax(q·kᵀ/√d)·v, written out: over a dozen tokens of width 4 torch's fused CPU attention and
    softmax spend most of their time on blocking meant for long sequences (2.6 ms a layer on adult)."""
    if q.shape[-2] > FUSED_ATTENTION_MIN_TOKENS:
        return F.scaled_dot_product_attention(q, k, v)
    scores = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
    # The max only guards exp against overflow; it cancels in the ratio, so no gradient through it.
    weights = (scores - scores.detach().amax(-1, keepdim=True)).exp()
    return (weights / weights.sum(-1, keepdim=True)) @ v


class TransformerLayer(nn.Module):
    """Pre-norm self-attention and ReLU feed-forward, each with a residual (TabSyn's layout)."""

    def __init__(self, d_token: int, n_heads: int, factor: int, first: bool):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_token, 3 * d_token)
        self.out = nn.Linear(d_token, d_token) if n_heads > 1 else nn.Identity()
        self.ffn = nn.Sequential(nn.Linear(d_token, d_token * factor), nn.ReLU(), nn.Linear(d_token * factor, d_token))
        # As in TabSyn (after FT-Transformer), the first layer reads the raw tokens unnormalised.
        self.norm0 = nn.Identity() if first else TokenNorm(d_token)
        self.norm1 = TokenNorm(d_token)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm0(x)).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        x = x + self.out(attention(q, k, v).transpose(1, 2).reshape(b, t, d))
        return x + self.ffn(self.norm1(x))


class Transformer(nn.Module):
    def __init__(self, d_token: int, n_layers: int, n_heads: int, factor: int):
        super().__init__()
        self.layers = nn.Sequential(*[TransformerLayer(d_token, n_heads, factor, first=i == 0) for i in range(n_layers)])
        self.head = nn.Linear(d_token, d_token)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.layers(x))


#: The class of a missing cell of a discrete numerical column: no head is trained on it.
IGNORED = -100


class Reconstructor(nn.Module):
    """Decoded tokens -> numerical values (a per-column projection) and logits: one head per
    categorical column, then one per discrete numerical column (``value_counts[j]`` > 0) over its values."""

    def __init__(self, d_numerical: int, cardinalities: list[int], d_token: int, value_counts: list[int]):
        super().__init__()
        self.d_numerical = d_numerical
        self.weight = nn.Parameter(torch.empty(d_numerical, d_token))
        if d_numerical:
            nn.init.xavier_uniform_(self.weight)
        self.heads = nn.ModuleList(nn.Linear(d_token, k) for k in cardinalities)
        self.discrete = [j for j, k in enumerate(value_counts) if k]
        self.value_heads = nn.ModuleList(nn.Linear(d_token, value_counts[j]) for j in self.discrete)

    def forward(self, h: Tensor) -> tuple[Tensor, list[Tensor]]:
        x_num = (h[:, : self.d_numerical] * self.weight[None]).sum(-1)
        # One unbind, not a slice per head: each slice's backward writes a zero gradient the size of h,
        # so the heads' cost grew with the square of the columns (a step over 300: 2.84 -> 2.70 s).
        tokens = h.unbind(1)
        logits = [head(tokens[self.d_numerical + i]) for i, head in enumerate(self.heads)]
        return x_num, logits + [head(tokens[j]) for j, head in zip(self.discrete, self.value_heads)]


class VAE(nn.Module):
    """Tokenizer, mean and log-variance encoders, decoder, reconstructor.

    ``value_levels[j]`` lists the normal scores of numerical column j's values when it has few
    (empty otherwise): such a column is still read as a number, so its token keeps their order, but it
    is reconstructed by a classifier over those values, which is exact where a regressed score is not.
    """

    def __init__(self, d_numerical: int, cardinalities: list[int], config: VAEConfig,
                 value_levels: list[list[float]] | None = None):
        super().__init__()
        c = config
        self.d_numerical = d_numerical
        self.cardinalities = list(cardinalities)
        self.value_levels = [list(v) for v in value_levels] if value_levels else [[] for _ in range(d_numerical)]
        self.d_token = c.d_token
        self.tokenizer = Tokenizer(d_numerical, self.cardinalities, c.d_token)
        self.encoder_mu = Transformer(c.d_token, c.n_layers, c.n_heads, c.factor)
        self.encoder_logvar = Transformer(c.d_token, c.n_layers, c.n_heads, c.factor)
        self.decoder = Transformer(c.d_token, c.n_layers, c.n_heads, c.factor)
        self.reconstructor = Reconstructor(d_numerical, self.cardinalities, c.d_token, [len(v) for v in self.value_levels])
        for j in self.reconstructor.discrete:
            self.register_buffer(f"levels_{j}", torch.tensor(self.value_levels[j]), persistent=False)

    @classmethod
    def for_layout(cls, layout: TokenLayout, config: VAEConfig) -> "VAE":
        return cls(layout.n_numerical, layout.cardinalities, config, [list(v) for v in layout.value_levels])

    @property
    def n_tokens(self) -> int:
        return self.d_numerical + len(self.cardinalities)

    def _levels(self) -> list[Tensor]:
        return [getattr(self, f"levels_{j}") for j in self.reconstructor.discrete]

    def encode(self, x_num: Tensor, x_cat: Tensor) -> tuple[Tensor, Tensor]:
        tokens = self.tokenizer(x_num, x_cat)
        return self.encoder_mu(tokens), self.encoder_logvar(tokens)

    def reconstruct(self, z: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Raw outputs for the loss: regressed scores and every head's logits."""
        return self.reconstructor(self.decoder(z))

    def decode(self, z: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, list[Tensor]]:
        """Scores and the categorical logits of latents ``z`` (:meth:`reconstruct`, then :meth:`values`)."""
        return self.values(*self.reconstruct(z), generator)

    def values(self, x_num: Tensor, logits: list[Tensor], generator: torch.Generator | None = None
               ) -> tuple[Tensor, list[Tensor]]:
        """:meth:`reconstruct`'s outputs with each discrete column's score set to its value's, drawn from
        its head with ``generator`` (else the most likely), and the categorical heads' logits. Drawn,
        because the rarest values of a number sit at its ends, next to frequent ones, and the most likely
        value is then never the rare one: adult's education.num = 1 (0.16 % of rows) never came out, and
        sdmetrics' Trend, which bins a number on each table's own range, was 10.8 % against 4.0 % with
        drawn values, at equal C2ST."""
        n_cat = len(self.cardinalities)
        if self.reconstructor.discrete:
            x_num = x_num.clone()
            for j, levels, lg in zip(self.reconstructor.discrete, self._levels(), logits[n_cat:]):
                chosen = lg.argmax(-1) if generator is None else torch.multinomial(
                    torch.softmax(lg.float(), -1), 1, generator=generator)[:, 0]
                x_num[:, j] = levels[chosen]
        return x_num, logits[:n_cat]

    def targets(self, x_num: Tensor, num_observed: Tensor, x_cat: Tensor) -> tuple[Tensor, Tensor]:
        """What :func:`vae_loss` compares :meth:`reconstruct`'s outputs with: the numerical cells to
        regress (observed and not discrete), and the class of every head (``IGNORED`` where missing)."""
        regressed = num_observed.clone()
        codes = [x_cat]
        for j, levels in zip(self.reconstructor.discrete, self._levels()):
            regressed[:, j] = False
            nearest = (x_num[:, j, None] - levels).abs().argmin(-1)
            codes.append(torch.where(num_observed[:, j], nearest, IGNORED)[:, None])
        return regressed, torch.cat(codes, 1)

    def forward(self, x_num: Tensor, x_cat: Tensor) -> tuple[Tensor, list[Tensor], Tensor, Tensor]:
        mu, logvar = self.encode(x_num, x_cat)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        x_num_hat, logits = self.reconstruct(z)
        return x_num_hat, logits, mu, logvar


@dataclass
class VAELoss:
    mse: Tensor
    ce: Tensor
    kl: Tensor

    @property
    def reconstruction(self) -> Tensor:
        return self.mse + self.ce

    def total(self, beta: float | Tensor) -> Tensor:
        return self.reconstruction + beta * self.kl


def vae_loss(
    x_num: Tensor, num_observed: Tensor, x_cat: Tensor, x_num_hat: Tensor, logits: list[Tensor], mu: Tensor, logvar: Tensor
) -> VAELoss:
    """MSE on the observed numerical cells to regress, mean cross-entropy over the heads, KL to N(0, I).

    ``num_observed`` and ``x_cat`` are :meth:`VAE.targets`'s: a head's ``IGNORED`` cells do not count.
    """
    observed = num_observed.float()
    mse = ((x_num_hat - x_num) ** 2 * observed).sum() / observed.sum().clamp_min(1)
    ce = mse.new_zeros(())
    if logits:
        # Summed and divided by the cells that count, so a batch whose cells of a head are all missing adds 0.
        ce = torch.stack([F.cross_entropy(lg, x_cat[:, i], ignore_index=IGNORED, reduction="sum")
                          / (x_cat[:, i] != IGNORED).sum().clamp_min(1) for i, lg in enumerate(logits)]).mean()
    kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).mean()
    return VAELoss(mse, ce, kl)


class BetaSchedule:
    """β starts at ``beta_max`` and is multiplied by ``decay`` each time the validation
    reconstruction has not improved for ``patience`` epochs, down to ``beta_min`` (TabSyn)."""

    def __init__(self, beta_max: float, beta_min: float, decay: float, patience: int):
        self.beta = beta_max
        self.beta_min = beta_min
        self.decay = decay
        self.patience = patience
        self._best = math.inf
        self._stalled = 0

    def step(self, reconstruction: float) -> float:
        if reconstruction < self._best:
            self._best = reconstruction
            self._stalled = 0
        else:
            self._stalled += 1
            if self._stalled >= self.patience:
                self.beta = max(self.beta * self.decay, self.beta_min)
                self._stalled = 0
        return self.beta
