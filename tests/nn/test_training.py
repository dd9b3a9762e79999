"""End-to-end: a small analog MLP with stochastic pulsed updates learns sklearn's digits."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from anatile.nn import AnalogLinear, AnalogSGD

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture
def one_thread() -> Iterator[None]:
    # Tiny matrices: one thread avoids OpenMP contention on a busy 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_pulsed_mlp_learns_digits(one_thread: None) -> None:
    x_np, y_np = sklearn_datasets.load_digits(return_X_y=True)
    x, y = torch.tensor(x_np, dtype=torch.float32), torch.tensor(y_np)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    train, test = perm[:1300], perm[1300:]
    mean, std = x[train].mean(0), x[train].std(0).clamp(min=1.0)
    x = (x - mean) / std
    # default RPUConfig: constant-step devices, stochastic pulse trains, noisy IO
    model = torch.nn.Sequential(AnalogLinear(64, 32, seed=1), torch.nn.Tanh(),
                                AnalogLinear(32, 10, seed=2))
    opt = AnalogSGD(model.parameters(), lr=0.05)
    start = time.process_time()
    for _ in range(10):
        model.train()
        order = train[torch.randperm(len(train), generator=g)]
        for i in range(0, len(order), 16):
            idx = order[i:i + 16]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    elapsed = time.process_time() - start
    model.eval()
    with torch.no_grad():
        accuracy = float((model(x[test]).argmax(1) == y[test]).float().mean())
    assert accuracy >= 0.85, accuracy
    assert elapsed < 30.0, elapsed
