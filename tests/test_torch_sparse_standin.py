"""The torch_sparse stand-in that lets the original DIFFormer code run in the scaling benchmark: its
two calls against dense algebra, and the benchmark refusing the original mode without that code."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from torch_sparse_standin import SparseTensor, matmul  # noqa: E402


def test_matmul_equals_the_dense_product_with_duplicates_summed_and_its_gradient():
    row = torch.tensor([0, 2, 2, 1, 0, 2])
    col = torch.tensor([1, 0, 0, 2, 1, 3])  # (2, 0) and (0, 1) appear twice: summed, as torch_sparse's spmm does
    value = torch.tensor([1.0, 2.0, 3.0, -1.0, 0.5, 4.0])
    dense = torch.zeros(3, 4)
    dense.index_put_((row, col), value, accumulate=True)
    assert dense[2, 0] == 5.0 and dense[0, 1] == 1.5
    adj = SparseTensor(row=row, col=col, value=value, sparse_sizes=(3, 4))
    assert adj.sizes() == [3, 4]
    torch.testing.assert_close(adj.to_dense(), dense)

    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = matmul(adj, x)
    torch.testing.assert_close(out, dense @ x)
    weights = torch.arange(15.0).reshape(3, 5)
    (out * weights).sum().backward()
    torch.testing.assert_close(x.grad, dense.t() @ weights)
    # a vector: the original code multiplies one head's [N, D] slice, but 1-D works too
    torch.testing.assert_close(matmul(adj, x.detach()[:, 0]), dense @ x.detach()[:, 0])


def test_other_reductions_are_refused():
    adj = SparseTensor(row=torch.tensor([0]), col=torch.tensor([0]), sparse_sizes=(1, 1))
    with pytest.raises(NotImplementedError, match="only 'sum'"):
        matmul(adj, torch.ones(1, 1), reduce="max")


@pytest.mark.parametrize("extra,message", [
    ([], "needs --original-code DIR"),
    (["--original-code", "."], "no difformer.py in ."),
])
def test_the_original_mode_without_the_original_code_is_refused(extra, message):
    proc = subprocess.run([sys.executable, "benchmarks/bench_difformer_scaling.py", "--modes", "full,original",
                           "--no-write", *extra], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
