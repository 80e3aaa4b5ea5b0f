import pytest
import torch

from tabgen.config import VAEConfig
from tabgen.vae import IGNORED, VAE, BetaSchedule, TokenNorm, attention, vae_loss


@pytest.mark.parametrize("d_num, cards", [(3, [2, 5]), (0, [3, 4]), (4, [])])
def test_shapes_for_mixed_categorical_only_and_numerical_only(d_num, cards):
    torch.manual_seed(0)
    vae = VAE(d_num, cards, VAEConfig())
    x_num = torch.randn(7, d_num)
    x_cat = torch.stack([torch.randint(k, (7,)) for k in cards], 1) if cards else torch.zeros(7, 0, dtype=torch.long)
    x_hat, logits, mu, logvar = vae(x_num, x_cat)
    assert x_hat.shape == (7, d_num)
    assert [lg.shape for lg in logits] == [(7, k) for k in cards]
    assert mu.shape == logvar.shape == (7, d_num + len(cards), 4)
    loss = vae_loss(x_num, torch.ones_like(x_num, dtype=torch.bool), x_cat, x_hat, logits, mu, logvar)
    loss.total(1e-2).backward()
    assert torch.isfinite(loss.total(1e-2))


def test_missing_numerical_cells_do_not_count():
    x = torch.zeros(2, 1)
    x_hat = torch.tensor([[0.0], [100.0]])
    observed = torch.tensor([[True], [False]])
    mu = logvar = torch.zeros(2, 1, 4)
    loss = vae_loss(x, observed, torch.zeros(2, 0, dtype=torch.long), x_hat, [], mu, logvar)
    assert float(loss.mse) == 0 and float(loss.kl) == 0


def test_a_discrete_numerical_column_is_learned_and_decoded_as_a_choice_of_its_values():
    levels = [-1.5, 0.2, 0.25, 2.0]  # 0.2 and 0.25: a rare value beside a frequent one
    vae = VAE(2, [3], VAEConfig(), value_levels=[[], levels])
    x_num = torch.tensor([[0.3, 0.25], [-1.0, -1.5], [0.0, 0.0]])
    observed = torch.tensor([[True, True], [True, True], [True, False]])
    x_cat = torch.tensor([[0], [2], [1]])
    regressed, targets = vae.targets(x_num, observed, x_cat)
    assert regressed.tolist() == [[True, False], [True, False], [True, False]]
    assert targets.tolist() == [[0, 2], [2, 0], [1, IGNORED]]
    x_hat, logits, mu, logvar = vae(x_num, x_cat)
    assert [lg.shape[1] for lg in logits] == [3, 4]
    loss = vae_loss(x_num, regressed, targets, x_hat, logits, mu, logvar)
    assert torch.isfinite(loss.total(1e-2))

    as_float32 = {torch.tensor(v).item() for v in levels}
    decoded, cat_logits = vae.decode(mu)
    assert len(cat_logits) == 1
    assert set(decoded[:, 1].tolist()) <= as_float32
    z = torch.randn(2000, 3, 4)
    drawn = vae.decode(z, torch.Generator().manual_seed(0))[0][:, 1]
    assert set(drawn.tolist()) == as_float32  # drawn, every value comes out, the rare one too
    assert torch.equal(drawn, vae.decode(z, torch.Generator().manual_seed(0))[0][:, 1])


def test_a_head_whose_cells_are_all_missing_adds_nothing():
    mu = logvar = torch.zeros(2, 1, 4)
    targets = torch.full((2, 1), IGNORED)
    loss = vae_loss(torch.zeros(2, 0), torch.zeros(2, 0, dtype=torch.bool), targets, torch.zeros(2, 0),
                    [torch.randn(2, 3)], mu, logvar)
    assert float(loss.ce) == 0


def test_beta_decays_when_reconstruction_stalls_and_stops_at_the_floor():
    s = BetaSchedule(beta_max=1e-2, beta_min=1e-5, decay=0.7, patience=2)
    assert s.step(1.0) == 1e-2
    s.step(1.0)
    assert s.step(1.0) == pytest.approx(7e-3)
    assert s.step(0.5) == pytest.approx(7e-3)  # improvement resets the count
    for _ in range(200):
        s.step(1.0)
    assert s.beta == 1e-5


def test_written_out_attention_and_norm_match_torchs_fused_ones():
    torch.manual_seed(0)
    q, k, v = (torch.randn(64, 1, 9, 4, dtype=torch.float64, requires_grad=True) * 30 for _ in range(3))
    ours, theirs = attention(q, k, v), torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert torch.allclose(ours, theirs)
    grads = [torch.autograd.grad(out.square().sum(), (q, k, v)) for out in (ours, theirs)]
    assert all(torch.allclose(a, b) for a, b in zip(*grads))

    x = torch.randn(64, 9, 4, dtype=torch.float64) * 5 + 3
    norm, reference = TokenNorm(4).double(), torch.nn.LayerNorm(4).double()
    torch.nn.init.normal_(norm.weight), torch.nn.init.normal_(norm.bias)
    reference.load_state_dict(norm.state_dict())
    assert torch.allclose(norm(x), reference(x))
