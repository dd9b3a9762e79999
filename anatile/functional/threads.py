"""Independent jobs of a tile array (a tile or a grid row each) on a few CPU threads.

A tile array's tiles draw their random numbers from their own generators, and torch's CPU
random kernels (``normal_``, ``randn``) run on one thread however many torch threads there
are, while the GEMMs and elementwise kernels around them use all of them. A 4×4 array draws
four times the output noise of one tile of the same size, serially, and runs 16 small
kernels where one tile runs one big one. The tiles are independent, so whole tiles (draws,
GEMM, ADC) can run on ``torch.get_num_threads()`` Python threads of one torch thread each:
torch releases the GIL inside its kernels, and the cores are then shared by whole jobs
instead of by each kernel. Each job only touches its own tile, its own generator and its
own slice of the output, so every number is the one the serial loop gives (each
generator is used by one thread, in the same order).

On CUDA the kernels are asynchronous and already parallel: everything stays serial there."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

import torch

__all__ = ["MIN_ELEMENTS_PER_JOB", "distinct_generators", "run_jobs", "worker_count"]

T = TypeVar("T")

MIN_ELEMENTS_PER_JOB = 1 << 15
"""The smallest job worth a thread, in elements drawn or computed. Below it the hand-off
(tens of µs) costs more than the job; torch's own intra-op grain size is the same 32768."""

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_in_job = threading.local()  # set on the pool's threads: a job's own jobs run serially


def worker_count(device: torch.device, n_jobs: int, elements_per_job: int) -> int:
    """How many threads independent jobs of this size should run on (1: serially).

    Args:
        device: where the tensors live (only CPU jobs use threads).
        n_jobs: number of independent jobs.
        elements_per_job: about how many tensor elements each job produces.

    Returns:
        ``min(torch.get_num_threads(), n_jobs)`` for CPU jobs of at least
        :data:`MIN_ELEMENTS_PER_JOB` elements, else 1.

    Example:
        >>> worker_count(torch.device("cpu"), 16, 10) # too small to be worth a thread
        1
    """
    if device.type != "cpu" or n_jobs < 2 or elements_per_job < MIN_ELEMENTS_PER_JOB:
        return 1
    return max(1, min(torch.get_num_threads(), n_jobs))


def distinct_generators(generators: Sequence[torch.Generator | None]) -> bool:
    """Whether every job has its own generator (so running them at once keeps each draw).

    Example:
        >>> g = torch.Generator()
        >>> distinct_generators([g, torch.Generator()]), distinct_generators([g, g, None])
        (True, False)
    """
    ids = {id(g) for g in generators if g is not None}
    return len(ids) == len(generators)


def run_jobs(jobs: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Run the jobs, on ``workers`` threads when above 1; results in the order of ``jobs``.

    Each thread runs torch's kernels on ``torch.get_num_threads() // workers`` threads
    (its own OpenMP setting), so the jobs share the cores instead of each spreading over
    all of them, with the caller's grad and inference modes (torch keeps them per thread).

    Every job runs to its end even when another raises; the first exception in job order is
    then raised (so a caller sees the error the serial loop would raise first). Jobs that a
    job itself starts run serially on its thread.

    Args:
        jobs: independent callables (no shared generator or tensor written by two jobs).
        workers: number of threads (≤ 1: serially, in order, on the calling thread).

    Returns:
        ``[job() for job in jobs]``.

    Example:
        >>> run_jobs([lambda: 1, lambda: 2, lambda: 3], workers=2)
        [1, 2, 3]
    """
    if workers <= 1 or len(jobs) < 2 or getattr(_in_job, "active", False):
        return [job() for job in jobs]
    threads = torch.get_num_threads()
    each = max(1, threads // workers)
    modes = (torch.is_grad_enabled(), torch.is_inference_mode_enabled())  # thread-local
    futures = [_executor(workers).submit(_in_worker, job, each, modes[0], modes[1])
               for job in jobs]
    try:
        errors = [f.exception() for f in futures]
    except BaseException:  # e.g. KeyboardInterrupt while waiting: start nothing new and
        for f in futures:  # let the running jobs end, as the serial loop stops between jobs
            f.cancel()
        wait(futures)
        raise
    finally:
        # torch.set_num_threads also sets the default that threads started later take up
        torch.set_num_threads(threads)
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]


def _in_worker(job: Callable[[], T], threads: int, grad: bool, inference: bool) -> T:
    _in_job.active = True
    if torch.get_num_threads() != threads:  # this thread's own OpenMP/MKL thread count
        torch.set_num_threads(threads)
    with torch.inference_mode(inference), torch.set_grad_enabled(grad):
        return job()


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared pool, grown to ``workers`` threads (threads start only when used)."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            old = _pool
            _pool, _pool_size = ThreadPoolExecutor(workers, "anatile-tiles"), workers
            if old is not None:
                old.shutdown(wait=False)
        return _pool
