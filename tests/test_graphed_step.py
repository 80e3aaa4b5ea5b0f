import copy

import pytest
import torch

from tabgen.graphed_step import GradientStep

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def network_and_loss(device: str):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.SiLU(), torch.nn.Linear(16, 1)).to(device)
    return net, lambda x, y: ((net(x) - y) ** 2).mean()


def batches(device: str, n: int = 4):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(32, 5, generator=g).to(device), torch.randn(32, 1, generator=g).to(device)) for _ in range(n)]


def gradients(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in net.parameters()]


def test_each_call_gives_the_gradient_of_its_own_batch_not_a_sum():
    net, loss_fn = network_and_loss("cpu")
    step = GradientStep(loss_fn, list(net.parameters()), graphed=False)
    for x, y in batches("cpu"):
        loss = step(x, y)
        expected = torch.autograd.grad(loss_fn(x, y), list(net.parameters()))
        assert torch.allclose(loss, loss_fn(x, y))
        assert all(torch.allclose(g, e) for g, e in zip(gradients(net), expected))


@cuda
def test_a_replayed_graph_gives_the_eager_gradients_of_each_new_batch():
    net, loss_fn = network_and_loss("cuda")
    twin = copy.deepcopy(net)
    eager = GradientStep(lambda x, y: ((twin(x) - y) ** 2).mean(), list(twin.parameters()), graphed=False)
    graphed = GradientStep(loss_fn, list(net.parameters()), graphed=True)
    for x, y in batches("cuda"):
        assert torch.allclose(graphed(x, y), eager(x, y))
        assert all(torch.allclose(g, e, atol=1e-6) for g, e in zip(gradients(net), gradients(twin)))


@cuda
def test_random_draws_inside_a_replayed_graph_are_fresh():
    weight = torch.ones(8, device="cuda", requires_grad=True)
    step = GradientStep(lambda: (weight * torch.randn(8, device="cuda")).sum(), [weight], graphed=True)
    step()
    first = weight.grad.clone()
    step()
    assert not torch.equal(first, weight.grad)
