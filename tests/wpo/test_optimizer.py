"""The optimizer as a solver: events, stopping, reproducibility, and that it beats the baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anatile.inference import CustomPairConductanceConverter, SinglePairConductanceConverter
from anatile.wpo import (
    BaselineMeasured,
    GenerationFinished,
    OptimizerFinished,
    OptimizerStarted,
    TqdmProgress,
    WPOResult,
)


def test_events_arrive_in_order_with_content(make_wpo):
    wpo = make_wpo(maxiter=3, callback=None)
    seen = []
    wpo.events.subscribe(seen.append)
    also = []
    wpo.events.subscribe(lambda e: also.append(type(e)))  # any number of subscribers
    converter, success = wpo.run_optimizer()
    kinds = [type(e) for e in seen]
    assert kinds == also
    assert kinds[0] is OptimizerStarted and kinds[1] is BaselineMeasured
    assert kinds[-1] is OptimizerFinished
    gens = [e for e in seen if isinstance(e, GenerationFinished)]
    assert [e.generation for e in gens] == list(range(1, len(gens) + 1))
    assert 1 <= len(gens) <= 3
    start = seen[0]
    assert start.n_dims == 21 and start.n_candidates == 4 * 21 and start.vectorized
    base = seen[1]
    assert base.baseline_tnmse > 0
    assert base.target_tnmse == pytest.approx(base.baseline_tnmse * (1 - 0.125))
    last = gens[-1]
    assert last.population_losses.shape == (4 * 21,)
    assert last.best_loss == pytest.approx(last.population_losses.min())
    assert len(last.best_f_lst) == 2 and np.array(last.best_g_lst).shape == (4, 11)
    assert last.best_tnmse == pytest.approx(
        (last.best_loss - 0.125) * base.baseline_tnmse + base.baseline_tnmse)
    assert all(b.elapsed_s >= a.elapsed_s for a, b in zip(gens, gens[1:], strict=False))
    assert last.eta_s >= 0
    # best loss never gets worse from one generation to the next
    losses = [e.best_loss for e in gens]
    assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:], strict=False))
    result = seen[-1].result
    assert isinstance(result, WPOResult) and result is wpo.result
    assert result.converter is converter and result.success is success
    assert isinstance(converter, CustomPairConductanceConverter)
    assert len(result.history) == len(gens)
    assert result.baseline_tnmse == base.baseline_tnmse


@pytest.mark.parametrize("how", ["return_true", "raise_stop", "request_stop"])
def test_a_subscriber_stops_the_run_within_one_generation(make_wpo, how):
    wpo = make_wpo(maxiter=50, callback=None, polish=True)

    def stopper(event):
        if isinstance(event, GenerationFinished) and event.generation == 2:
            if how == "return_true":
                return True
            if how == "raise_stop":
                raise StopIteration
            wpo.request_stop()
        return None

    wpo.events.subscribe(stopper)
    converter, _ = wpo.run_optimizer()
    result = wpo.result
    assert result.stopped_by_user
    assert result.n_generations == 2 and len(result.history) == 2
    assert not result.polished  # a stop request skips the polish
    assert result.best_loss == pytest.approx(result.history[-1].best_loss)
    assert isinstance(converter, CustomPairConductanceConverter)


def test_same_seed_same_converter_and_other_seed_differs(make_wpo):
    runs = []
    for seed in (11, 11, 12):
        wpo = make_wpo(seed=seed, maxiter=2, callback=None, seed_with_baseline=False)
        converter, _ = wpo.run_optimizer()
        runs.append((converter.f_lst, converter.g_lst, wpo.result.baseline_tnmse))
    assert runs[0] == runs[1]
    assert runs[0][:2] != runs[2][:2]


@pytest.mark.parametrize("vectorized", [True, False])
def test_a_second_run_on_the_same_optimizer_reproduces_the_first(make_wpo, vectorized):
    # what the monitor's Start after Stop does: every run restarts the streams from the seed
    wpo = make_wpo(maxiter=2, callback=None, polish=vectorized, polish_maxiter=2,
                   vectorized=vectorized, popsize=3 if vectorized else 2,
                   baseline_iterations=8 if vectorized else 2)
    runs = []
    for _ in range(2):
        converter, _ = wpo.run_optimizer()
        result = wpo.result
        runs.append((converter.f_lst, converter.g_lst, result.baseline_tnmse, result.best_loss,
                     result.validated_tnmse, [h.best_loss for h in result.history]))
    assert runs[0] == runs[1]


def test_a_stop_requested_before_the_run_is_honoured_and_then_cleared(make_wpo):
    wpo = make_wpo(maxiter=20, callback=None, polish=True)
    wpo.request_stop()
    wpo.run_optimizer()
    assert wpo.result.stopped_by_user and wpo.result.n_generations == 1
    assert not wpo.result.polished
    wpo.run_optimizer()  # the request was used up by the run it stopped
    assert not wpo.result.stopped_by_user and wpo.result.n_generations == 20


def test_beats_the_baseline_by_the_margin_on_gaussian_weights(make_wpo):
    # two pairs with free f factors against a single-pair baseline, default stop criterion
    wpo = make_wpo(popsize=6, maxiter=25, baseline_iterations=16,
                   baseline=SinglePairConductanceConverter())
    converter, success = wpo.run_optimizer()
    result = wpo.result
    assert success is True
    assert result.best_loss < 0
    assert result.best_tnmse <= result.baseline_tnmse * (1 - 0.125)
    # the default callback (stop_criterion) ends the run as soon as the margin is reached
    assert result.stopped_by_callback and not result.stopped_by_user
    assert result.history[-1].best_loss < 0
    assert all(h.best_loss >= 0 for h in result.history[:-1])
    # re-measured on fresh noise (no selection bias) it still clearly beats the baseline
    assert result.validated_tnmse is not None
    assert result.validated_tnmse < 0.95 * result.baseline_tnmse
    assert _fresh_tnmse(wpo, result.x) < 0.95 * result.baseline_tnmse


def test_search_seeded_with_the_baseline_never_ends_worse(make_wpo):
    wpo = make_wpo(popsize=4, maxiter=8, baseline_iterations=16, callback=None)
    x_base = wpo.baseline_point()
    assert x_base is not None
    wpo.run_optimizer()
    result = wpo.result
    assert result.history[0].best_loss < 0.125 + 0.05  # starts at the baseline, not random
    assert _fresh_tnmse(wpo, result.x) < 1.03 * result.baseline_tnmse


def _fresh_tnmse(wpo, x) -> float:
    from anatile.wpo import decode_batch

    engine = wpo.batched_engine()
    engine.common_random_numbers = False
    f, g = decode_batch(np.repeat(x[None], 24, 0), wpo.space)
    return float(engine(f, g, torch.Generator().manual_seed(99)).mean())


def test_tqdm_progress_subscriber(make_wpo):
    import io

    buf = io.StringIO()
    progress = TqdmProgress(stop_after=2, file=buf)
    wpo = make_wpo(maxiter=10, callback=None)
    wpo.events.subscribe(progress)
    wpo.run_optimizer()
    assert wpo.result.n_generations == 2 and wpo.result.stopped_by_user
    assert "WPO" in buf.getvalue()
    assert progress.bar is None


def test_baseline_point_decodes_to_the_baseline_strategy(make_wpo):
    from anatile.wpo import denormalize

    wpo = make_wpo()
    x = wpo.baseline_point()
    f, g = denormalize(x, wpo.space)
    grid = wpo.weights_discretized_unitless
    expected, _ = wpo.g_converter_baseline.convert_to_conductances(grid)
    assert f == pytest.approx([1.0, 1.0])
    np.testing.assert_allclose(np.array(g), torch.stack(expected).numpy(), atol=1e-6)


def test_polish_keeps_the_result_valid(make_wpo):
    wpo = make_wpo(maxiter=2, callback=None, polish=True, polish_maxiter=3)
    converter, _ = wpo.run_optimizer()
    result = wpo.result
    assert isinstance(result.polished, bool)
    assert ("polished" in result.message) == result.polished
    assert np.all((result.x >= 0) & (result.x <= 1))
    assert converter.f_lst == pytest.approx(result.f_lst)


def test_batched_search_is_not_worse_than_per_candidate_search(make_wpo):
    """SPEC §6: at equal seed and budget the batched search ends no worse than the
    per-candidate reference search. Both results of each seed are re-measured by one
    evaluator on independent draws; over four seeds the batched results may be worse on
    average by at most three standard errors of that measurement. (Without paired
    selection the batched search drifted away from the baseline in lucky generations and
    failed this: 0.0868 vs 0.0822 mean TNMSE.)"""
    from anatile.wpo import decode_batch

    n = 48
    means, variances = {True: [], False: []}, {True: [], False: []}
    for seed in (1, 2, 3, 5):
        for vectorized in (True, False):
            wpo = make_wpo(popsize=4, maxiter=6, baseline_iterations=8, callback=None,
                           seed=seed, vectorized=vectorized)
            wpo.run_optimizer()
            engine = wpo.batched_engine()
            engine.common_random_numbers = False
            f, g = decode_batch(np.repeat(wpo.result.x[None], n, 0), wpo.space)
            fresh = engine(f, g, torch.Generator().manual_seed(11)).numpy()
            means[vectorized].append(fresh.mean())
            variances[vectorized].append(fresh.var(ddof=1))
    batched, reference = np.mean(means[True]), np.mean(means[False])
    se = np.sqrt(np.sum(variances[True]) + np.sum(variances[False])) / np.sqrt(n) / 4
    assert batched <= reference + 3 * se, (means, se)
