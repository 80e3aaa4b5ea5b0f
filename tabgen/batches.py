"""Where the training loops' batches come from: the encoded table held in memory, or chunks of a table
streamed from disk (:mod:`tabgen.io.stream`), encoded as they arrive."""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .errors import TabgenError

Batch = tuple[Tensor, ...]
#: Chunks of a streamed table in a row of which no row can be encoded before the fit gives up.
MAX_EMPTY_CHUNKS = 1000


class TensorRows:
    """Rows held as tensors (the encoded table, or its latents), served in reshuffled passes."""

    def __init__(self, tensors: Batch):
        self.tensors = tensors
        self.n_rows = len(tensors[0])

    def epoch(self, batch_size: int) -> Iterator[Batch]:
        """Batches without end, each pass over the rows in a fresh order; a pass cut by the end of an
        epoch is not finished in the next one."""
        device = self.tensors[0].device
        order = torch.empty(0, dtype=torch.long, device=device)
        while True:
            if len(order) < batch_size:
                order = torch.cat([order, torch.randperm(self.n_rows, device=device)])
            idx = order[:batch_size]
            order = order[batch_size:]
            yield tuple(t[idx] for t in self.tensors)


#: A streamed chunk's encoded tensors, or ``None`` where none of its rows could be encoded.
Encoder = Callable[[pd.DataFrame], "Batch | None"]


class StreamedRows:
    """Rows of a table too large to hold, read chunk by chunk: the chunks of several parts of the
    table (as :meth:`~tabgen.io.stream.TableStream.chunks` gives them in turn) are encoded, pooled,
    and served in ``passes`` reshuffled passes before the next pool is read. The pool outlives an
    epoch, so every row read is trained on.

    Several passes spread the cost of encoding: the denoiser's rows are the VAE's latents of the
    chunk, encoded when the pool is made (docs/scale.md).
    """

    def __init__(self, chunks: Iterator[tuple[np.ndarray, pd.DataFrame]], encode: Encoder, n_rows: int,
                 pool_chunks: int, passes: int = 1):
        self.chunks, self.encode, self.n_rows, self.pool_chunks = chunks, encode, n_rows, pool_chunks
        self.passes = passes
        self.pool: Batch | None = None
        self.used = self.served = 0

    def _refill(self, batch_size: int) -> None:
        pieces, rows, empty = [], 0, 0
        while len(pieces) < self.pool_chunks or rows < batch_size:  # a batch keeps its size (a CUDA graph's)
            encoded = self.encode(next(self.chunks)[1])
            if encoded is not None:
                pieces.append(encoded)
                rows += len(encoded[0])
            elif (empty := empty + 1) >= MAX_EMPTY_CHUNKS:
                raise TabgenError(f"none of {empty:,} chunks of the table in a row holds a row the model can learn: "
                                  "their categories, or gaps, are not in the sample its columns were fitted on")
        self.pool, self.served = tuple(torch.cat(parts) for parts in zip(*pieces)), 0
        self._shuffle()

    def _shuffle(self) -> None:
        order = torch.randperm(len(self.pool[0]), device=self.pool[0].device)
        self.pool, self.used = tuple(t[order] for t in self.pool), 0

    def epoch(self, batch_size: int) -> Iterator[Batch]:
        while True:
            if self.pool is not None and self.used + batch_size > len(self.pool[0]):
                self.served += 1
                if self.served < self.passes:
                    self._shuffle()
            if self.pool is None or self.served >= self.passes:
                self._refill(batch_size)
            yield tuple(t[self.used:self.used + batch_size] for t in self.pool)
            self.used += batch_size
