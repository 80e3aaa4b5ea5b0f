"""The forward and backward pass of a training step, replayed as one CUDA graph on a GPU.

On an H100 at TabSyn's width and batch, a denoiser step holds 0.26 ms of bfloat16 matrix work, but
eager PyTorch took about 4 ms over it, launching a few hundred small kernels one by one from Python,
and a VAE step took 26 ms: the GPU sat idle most of the time. Replayed as a graph, the denoiser step
took 1 ms and the VAE step 4-5 ms (docs/speed.md). On a CPU the step runs eagerly.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .gradient_clip import GradientClip

#: Eager passes run before capture, on a side stream, so that lazily made state (cuBLAS handles,
#: autograd's buffers) exists before the graph records the memory it uses.
WARMUP_PASSES = 3


class GradientStep:
    """``step(*batch)`` sets each parameter's ``.grad`` to the gradient of ``loss_fn(*batch)`` and
    returns the loss; the caller then steps its optimizer.

    With ``graphed``, the first call records the pass as a CUDA graph and every call replays it on
    the batch copied into fixed input buffers, so batches must keep their shapes. The gradients are
    written into the graph's own tensors, which each call sets as ``.grad`` again. Random numbers
    drawn inside ``loss_fn`` are fresh at every replay. Then ``clip``, if any, scales them down.
    """

    def __init__(self, loss_fn: Callable[..., Tensor], params: list[Tensor], graphed: bool,
                 clip: GradientClip | None = None):
        self.loss_fn = loss_fn
        self.params = params
        self.graphed = graphed
        self.clip = clip
        self._graph: torch.cuda.CUDAGraph | None = None

    def __call__(self, *batch: Tensor) -> Tensor:
        if not self.graphed:
            for p in self.params:
                p.grad = None
            loss = self.loss_fn(*batch)
            loss.backward()
        else:
            with torch.cuda.device(batch[0].device):  # the tensors' GPU, which need not be the current one
                if self._graph is None:
                    self._capture(batch)
                for buffer, x in zip(self._inputs, batch):
                    buffer.copy_(x)
                self._graph.replay()
            for p, grad in zip(self.params, self._grads):
                p.grad = grad
            loss = self._loss
        if self.clip is not None:
            self.clip(self.params)
        return loss

    def _capture(self, batch: tuple[Tensor, ...]) -> None:
        self._inputs = [x.clone() for x in batch]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_PASSES):
                for p in self.params:
                    p.grad = None
                self.loss_fn(*self._inputs).backward()
        torch.cuda.current_stream().wait_stream(side)
        for p in self.params:
            p.grad = None  # so that the recorded backward writes the gradients instead of adding to them
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._loss = self.loss_fn(*self._inputs)
            self._loss.backward()
        self._grads = [p.grad for p in self.params]
