"""Independent jobs on a few threads: order, errors, nesting, thread counts, when to use."""

from __future__ import annotations

import threading

import pytest
import torch

from anatile.functional import threads
from anatile.functional.threads import distinct_generators, run_jobs, worker_count


def test_results_keep_the_order_of_the_jobs_and_use_other_threads() -> None:
    names: list[str] = []

    def job(k: int) -> int:
        names.append(threading.current_thread().name)
        return k * k

    assert run_jobs([lambda k=k: job(k) for k in range(8)], workers=2) == [k * k for k in range(8)]
    assert all(n.startswith("anatile-tiles") for n in names)
    names.clear()
    assert run_jobs([lambda k=k: job(k) for k in range(3)], workers=1) == [0, 1, 4]
    assert names == [threading.current_thread().name] * 3


def test_every_job_runs_and_the_first_error_in_job_order_is_raised() -> None:
    done: list[int] = []

    def job(k: int) -> int:
        done.append(k)
        if k in (2, 4):
            raise ValueError(f"job {k}")
        return k

    with pytest.raises(ValueError, match="job 2"):
        run_jobs([lambda k=k: job(k) for k in range(6)], workers=2)
    assert sorted(done) == list(range(6))


def test_jobs_started_by_a_job_run_on_its_thread() -> None:
    def inner() -> list[str]:
        return run_jobs([lambda: threading.current_thread().name] * 3, workers=2)

    for names in run_jobs([inner, inner], workers=2):
        assert len(set(names)) == 1  # no deadlock on a full pool, no hand-off


def test_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    big = threads.MIN_ELEMENTS_PER_JOB
    assert worker_count(cpu, 16, big) == 2
    assert worker_count(cpu, 1, big) == 1  # one job: nothing to share
    assert worker_count(cpu, 16, big - 1) == 1  # too small for a hand-off
    assert worker_count(torch.device("meta"), 16, big) == 1  # not the CPU: serial
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert worker_count(cpu, 16, big) == 1


def test_distinct_generators() -> None:
    a, b = torch.Generator(), torch.Generator()
    assert distinct_generators([a, b])
    assert not distinct_generators([a, b, a])
    assert not distinct_generators([a, None])  # torch's default generator is shared


def test_each_worker_runs_torch_on_its_share_of_the_threads() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        counts = run_jobs([torch.get_num_threads] * 4, workers=2)
        assert counts == [1] * 4
        assert torch.get_num_threads() == 2  # the calling thread keeps its own
    finally:
        torch.set_num_threads(before)


def test_jobs_run_in_the_callers_grad_and_inference_modes() -> None:
    def modes() -> tuple[bool, bool]:
        return torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    with torch.no_grad():
        assert run_jobs([modes] * 2, workers=2) == [(False, False)] * 2
    with torch.inference_mode():
        assert run_jobs([modes] * 2, workers=2) == [(False, True)] * 2
    assert run_jobs([modes] * 2, workers=2) == [(True, False)] * 2
