"""The part of torch_sparse that the original DIFFormer code calls, on torch's own sparse tensors.

torch_sparse has no wheel for this torch, and the original code (`node classification/difformer.py`)
imports `SparseTensor` and `matmul` from it for its GCN branch. `bench_difformer_scaling.py --modes
original` registers this module under that name (only when torch_sparse itself is missing) so the
original model runs unmodified beside ours. Like torch_sparse, a SparseTensor is stored row-compressed
(CSR) and `matmul` is a summing sparse-dense product, forward and backward in compiled kernels.
"""
from __future__ import annotations

import torch


class SparseTensor:
    """A (rows x cols) sparse matrix from COO indices, kept as CSR (duplicates summed)."""

    def __init__(self, row: torch.Tensor, col: torch.Tensor, value: torch.Tensor | None = None,
                 sparse_sizes: tuple[int, int] | None = None) -> None:
        if sparse_sizes is None:
            sparse_sizes = (int(row.max()) + 1, int(col.max()) + 1)
        if value is None:
            value = torch.ones(row.numel(), dtype=torch.float)
        coo = torch.sparse_coo_tensor(torch.stack([row, col]), value, tuple(sparse_sizes))
        self.csr = coo.coalesce().to_sparse_csr()

    def sizes(self) -> list[int]:
        return list(self.csr.shape)

    def to_dense(self) -> torch.Tensor:
        return self.csr.to_dense()


def matmul(src: SparseTensor, other: torch.Tensor, reduce: str = "sum") -> torch.Tensor:
    """`src @ other` for a dense [cols, d] (or [cols]) tensor; only the sum reduction exists here."""
    if reduce not in ("sum", "add"):
        raise NotImplementedError(f"reduce={reduce!r}: only 'sum' is provided")
    if other.dim() == 1:
        return torch.sparse.mm(src.csr, other.unsqueeze(1)).squeeze(1)
    return torch.sparse.mm(src.csr, other)
