"""WPOMonitor: history per generation, Start/Stop, background runs, errors in the log."""

from __future__ import annotations

import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pytest
import torch

from anatile.config import InferenceRPUConfig
from anatile.inference import CustomPairConductanceConverter, DualPairConductanceConverter
from anatile.widgets import WPOMonitor
from anatile.widgets._base import HARD_MAX_DUTY
from anatile.widgets._plots import conductance_curves
from anatile.wpo import GenerationFinished, WeightProgrammingOptimizer, stop_criterion


def _optimizer(maxiter: int = 4, **kwargs: object) -> WeightProgrammingOptimizer:
    weights = torch.randn(2000, generator=torch.Generator().manual_seed(0)) * 0.1
    opts = dict(popsize=4, maxiter=maxiter, baseline_iterations=2, polish=False,
                test_in_features=64, test_out_features=4, callback=None, atol=0.0, seed=3,
                compile=False)
    opts.update(kwargs)
    return WeightProgrammingOptimizer(weights, [None, None], InferenceRPUConfig(),
                                      [1.0, 3600.0], DualPairConductanceConverter([1.0, 1.0]),
                                      **opts)


def test_history_grows_one_point_per_generation() -> None:
    opt = _optimizer(maxiter=4)
    sizes: list[int] = []
    monitor = WPOMonitor(opt)
    # a subscriber after the monitor's sees the history as it is after each generation
    opt.events.subscribe(
        lambda e: sizes.append(len(monitor.history)) if isinstance(e, GenerationFinished) else None
    )
    monitor.start(background=False)

    assert monitor.errors == []
    assert sizes == [1, 2, 3, 4]
    assert [e.generation for e in monitor.history] == [1, 2, 3, 4]
    assert opt.result is not None and len(opt.result.history) == 4
    assert isinstance(monitor.result, CustomPairConductanceConverter)
    assert monitor.result is opt.result.converter
    assert monitor.baseline is not None
    monitor.refresh()
    np.testing.assert_array_equal(monitor.loss_figure.best_line.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(monitor.loss_figure.best_line.get_ydata(),
                               [e.best_tnmse for e in monitor.history])
    # the g(w) panel shows the last generation's best strategy
    last = monitor.history[-1]
    conv = CustomPairConductanceConverter(last.best_f_lst, last.best_g_lst,
                                          invertibility_test=False)
    _, gs = conductance_curves(conv)
    for line, g in zip(monitor.g_figure.lines, gs, strict=True):
        np.testing.assert_allclose(line.get_ydata(), g)
    assert "4 / 4" in monitor.status.value and "finished" in monitor.status.value
    assert not monitor.start_button.disabled and monitor.stop_button.disabled


def test_stop_button_ends_the_run_within_one_generation() -> None:
    opt = _optimizer(maxiter=200)
    monitor = WPOMonitor(opt)
    monitor.start_button.click()  # runs in a background thread
    assert monitor.running and monitor.start_button.disabled
    deadline = time.monotonic() + 120
    while len(monitor.history) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(monitor.history) >= 2
    at_click = len(monitor.history)
    monitor.stop_button.click()
    assert monitor.wait(120)
    assert monitor.errors == []
    assert len(monitor.history) <= at_click + 1
    assert opt.result is not None and opt.result.stopped_by_user
    assert isinstance(monitor.result, CustomPairConductanceConverter)
    assert not monitor.running and not monitor.start_button.disabled


def test_start_while_running_is_refused_in_the_log() -> None:
    opt = _optimizer(maxiter=200)
    monitor = WPOMonitor(opt)
    monitor.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            monitor.start()
        monitor.start_button.click()  # the button path lands in the log instead
        assert any("already running" in e for e in monitor.errors)
    finally:
        monitor.stop()
        assert monitor.wait(120)


def test_optimizer_failure_is_shown_in_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    opt = _optimizer()

    def broken() -> None:
        raise ValueError("search space exploded")

    monkeypatch.setattr(opt, "run_optimizer", broken)
    monitor = WPOMonitor(opt)
    monitor.start_button.click()
    assert monitor.wait(30)
    assert len(monitor.errors) == 1 and "search space exploded" in monitor.errors[0]
    assert any("search space exploded" in o["text"] for o in monitor.log_area.outputs)
    assert not monitor.start_button.disabled


def test_a_broken_event_is_logged_and_does_not_stop_the_run() -> None:
    monitor = WPOMonitor(_optimizer())
    bad = GenerationFinished(source=None, generation=1, best_loss=0.5,
                             population_losses="not numbers",  # type: ignore[arg-type]
                             best_f_lst=[1.0], best_g_lst=[[0.0]], best_tnmse=1.0,
                             elapsed_s=0.0, eta_s=0.0)
    assert monitor._on_event(bad) is False
    assert len(monitor.errors) == 1


def test_tnmse_axis_baseline_target_settings_and_no_eta_after_the_end() -> None:
    opt = _optimizer(maxiter=3, seed=17)
    monitor = WPOMonitor(opt)
    monitor.start(background=False)
    monitor.refresh()
    base = monitor.baseline
    assert "TNMSE" in monitor.loss_figure.ax.get_ylabel()
    fig = monitor.loss_figure
    assert fig.baseline_line.get_ydata()[0] == pytest.approx(base.baseline_tnmse)
    assert fig.target_line.get_ydata()[0] == pytest.approx(base.target_tnmse)
    assert base.target_tnmse < base.baseline_tnmse
    # the population band is the events' losses, in TNMSE
    band = monitor.population_tnmse_band()
    losses = monitor.history[-1].population_losses
    lo = np.percentile(losses[np.isfinite(losses)], 10)
    margin = opt.options.loss_margin
    assert band[-1, 0] == pytest.approx((lo - margin) * base.baseline_tnmse
                                        + base.baseline_tnmse)
    assert "ETA" not in monitor.status.value and "finished" in monitor.status.value
    settings = monitor.settings.value
    assert "anatile-seed'>17<" in settings and "anatile-popsize'>4<" in settings
    assert "3.6e+03" in settings  # the time steps


def test_target_legend_says_whether_the_run_stops_there() -> None:
    # the target line stops a run only with the default callback (stop_criterion)
    opt = _optimizer(maxiter=2)
    monitor = WPOMonitor(opt)
    legend_texts = [t.get_text() for t in monitor.loss_figure.legend.get_texts()]
    assert "target (early stop off)" in legend_texts
    without = monitor.loss_panel.png()
    opt.options.callback = stop_criterion
    monitor.start(background=False)
    legend_texts = [t.get_text() for t in monitor.loss_figure.legend.get_texts()]
    assert "target (early stop)" in legend_texts
    assert "target (early stop off)" not in legend_texts
    # the kept frame was drawn again with the new legend (its text is in the frame key)
    assert monitor.loss_panel.png() != without
    assert WPOMonitor(_optimizer(callback=stop_criterion)).loss_figure.target_line \
        .get_label() == "target (early stop)"
    monitor.close()


def test_start_clears_the_previous_run_before_its_first_generation() -> None:
    from anatile.wpo import OptimizerStarted

    opt = _optimizer(maxiter=3)
    monitor = WPOMonitor(opt)
    monitor.start(background=False)
    monitor.refresh()
    assert [len(line.get_xdata()) for line in monitor.g_figure.lines] == [201] * 4
    assert not monitor.g_figure.waiting.get_visible()
    before = monitor.g_panel.image.value
    seen: list[tuple[int, list[int], bool, bool]] = []

    def at_start(event: object) -> None:
        if isinstance(event, OptimizerStarted):
            seen.append((len(monitor.loss_figure.best_line.get_xdata()),
                         [len(line.get_xdata()) for line in monitor.g_figure.lines],
                         monitor.g_figure.waiting.get_visible(),
                         monitor.g_panel.image.value != before))

    opt.events.subscribe(at_start)
    monitor.start(background=False)
    # no data in either panel, the g(w) panel says it waits, and a new image was pushed
    assert seen == [(0, [0, 0, 0, 0], True, True)]
    assert monitor.errors == []


def test_monitor_redraws_at_least_once_per_second_during_a_run() -> None:
    """A 3 s run (each generation held 50 ms by a slow subscriber) gets a frame a second.

    A frame starts within ``max_interval`` of the previous frame's start, unless that
    render itself took longer than ``max_interval − min_interval`` (a starved machine); the
    test measures each render and allows for that and for timer latency.
    """
    opt = _optimizer(maxiter=60)
    monitor = WPOMonitor(opt)
    frames: list[tuple[float, float]] = []
    shown: list[bool] = []  # per frame: whether it pushed a new loss image
    draw = monitor._draw

    def timed_draw() -> None:
        start = time.monotonic()
        image = monitor.loss_panel.image.value
        draw()
        frames.append((start, time.monotonic()))
        shown.append(monitor.loss_panel.image.value is not image)

    monitor._redraw._fn = timed_draw
    gens: list[float] = []

    def slow(event: object) -> None:
        if isinstance(event, GenerationFinished):
            gens.append(time.monotonic())
            time.sleep(0.05)

    opt.events.subscribe(slow)
    monitor.start(background=False)
    end = gens[-1]
    # the frames of the run, from the last one before its first generation (Start's clearing
    # frame) on: each next frame is checked against the one before
    before = [f for f in frames if f[0] < gens[0]]
    in_run = [k for k, (s, _e) in enumerate(frames) if gens[0] <= s <= end]
    during = before[-1:] + [frames[k] for k in in_run]
    # every frame of the run shows a new loss figure (not a redraw call that drew nothing)
    assert all(shown[k] for k in in_run)
    duration = end - gens[0]
    assert len(gens) == 60 and duration >= 3.0
    assert len(during) >= 2
    throttle = monitor._redraw
    slack = 0.3  # timer wake-up on a busy machine
    for (s0, e0), (s1, _e1) in zip(during, during[1:], strict=False):
        render = e0 - s0  # a slow render may stretch the gap up to the hard duty ceiling
        allowed = max(throttle.max_interval, render + throttle.min_interval,
                      render / HARD_MAX_DUTY) + slack
        assert s1 - s0 <= allowed, (s1 - s0, e0 - s0)
    assert monitor.errors == []


def test_a_run_keeps_the_figures_axes_and_the_numbers_go_to_the_status_line() -> None:
    """Axes limits that change redraw the axes' text (ten frames' work): during a run the
    g(w) axes never change and the loss axes at most when the first generation arrives
    and when the TNMSE leaves its rounded range; the g(w) title is static, its f factors
    are in the status line and in an exported figure's title."""
    opt = _optimizer(maxiter=30)
    monitor = WPOMonitor(opt)
    counts: list[tuple[int, ...]] = []

    def at(event: object) -> None:
        if isinstance(event, GenerationFinished):
            monitor.refresh()  # a frame per generation: more than the live view draws
            counts.append(tuple(p.frame_draws + p.axes_draws + p.frame_hits
                                for p in (monitor.loss_panel, monitor.g_panel)))

    opt.events.subscribe(at)
    monitor.start(background=False)
    loss_redraws = [c[0] for c in counts]
    g_redraws = [c[1] for c in counts]
    assert len(counts) == 30
    assert g_redraws[-1] == g_redraws[0]  # the g(w) frame of Start, all run long
    assert loss_redraws[-1] - loss_redraws[0] <= 2
    assert monitor.g_figure.ax.get_title() == "g(w) of the best strategy so far"
    last = monitor.history[-1]
    f_txt = ", ".join(f"{f:.3g}" for f in last.best_f_lst)
    assert f"anatile-best-f'>[{f_txt}]<" in monitor.status.value
    with TemporaryDirectory() as folder:
        monitor.export(folder, formats=("svg",))
        svg = (Path(folder) / "WPOMonitor_g.svg").read_text()
    assert f"generation {last.generation}" in svg and f_txt in svg
    assert monitor.g_figure.ax.get_title() == "g(w) of the best strategy so far"


def test_loss_limits_only_widen_during_a_run_and_fit_it_after() -> None:
    opt = _optimizer(maxiter=3)
    fig = WPOMonitor(opt).loss_figure
    base = (0.08, 0.07)
    gens = np.arange(1.0, 41.0)
    best = np.geomspace(0.085, 0.02, gens.size)  # the best TNMSE falls 4× in 40 generations
    seen = []
    for n in range(1, gens.size + 1):
        seen.append(fig.limits(gens[:n], best[:n], base, maxiter=200, pace=20.0,
                               running=True))
    x_tops = [x for x, _ in seen]
    los = [y[0] for _, y in seen]
    his = [y[1] for _, y in seen]
    # 30 s ahead at 20 generations/s is past the budget: the whole budget from the start
    assert set(x_tops) == {200.0}
    assert all(b <= a for a, b in zip(los, los[1:], strict=False))  # only widens
    assert all(b >= a for a, b in zip(his, his[1:], strict=False))
    assert len({y for _, y in seen}) <= 3  # few distinct frames (head room follows lo)
    for (_x, (lo, hi)), n in zip(seen, range(1, gens.size + 1), strict=True):
        shown = np.append(best[:n], base)
        assert lo * 1.15 <= shown.min() * (1 + 1e-12) and hi >= 1.15 * shown.max()
        # the data stay in the lower 60 % of the log axis: the legend has the top
        assert np.log(1.15 * shown.max() / lo) <= 0.6 * np.log(hi / lo) + 1e-12
        for end in (lo, hi):  # ends on 1, 2, 5 × 10^k: a labelled tick
            mantissa = end / 10.0 ** np.floor(np.log10(end) + 1e-12)
            assert min(abs(mantissa - m) for m in (1.0, 2.0, 5.0)) < 1e-9
    # a slow run: the axis reaches 30 s ahead, then widens when the run gets there
    fig.reset()
    slow = [fig.limits(gens[:n], best[:n], base, maxiter=5000, pace=0.5, running=True)[0]
            for n in range(1, gens.size + 1)]
    assert slow[0] == 20.0 and slow[-1] == 50.0 and all(x >= n for x, n in
                                                         zip(slow, range(1, 41), strict=True))
    # after the run the limits fit it (no memory of the run's widest range)
    x_top, (lo, hi) = fig.limits(gens[:10], best[:10], base, maxiter=5000, pace=0.5,
                                 running=False)
    assert x_top == 10.0 and (lo, hi) == (0.05, 0.2)


def test_population_band_is_the_finite_losses_percentiles_per_generation() -> None:
    from anatile.wpo import BaselineMeasured

    monitor = WPOMonitor(_optimizer())
    monitor._record(BaselineMeasured(source=None, baseline_tnmse=0.1, target_tnmse=0.09,
                                     converter="x", elapsed_s=0.0))
    rng = np.random.default_rng(0)
    pops = [rng.normal(size=8) for _ in range(5)]
    pops[3][[1, 4]] = np.inf  # a failed candidate: left out of that generation's band
    for k, pop in enumerate(pops):
        monitor._record(GenerationFinished(
            source=None, generation=k + 1, best_loss=float(pop.min()), population_losses=pop,
            best_f_lst=[1.0, 1.0], best_g_lst=[[0.0, 1.0]] * 4, best_tnmse=0.1,
            elapsed_s=float(k), eta_s=0.0))
        if k == 1:
            monitor.population_tnmse_band()  # computed in two batches, as frames do
    margin = monitor.optimizer.options.loss_margin
    expected = [(np.percentile(p[np.isfinite(p)], [10, 90]) - margin) * 0.1 + 0.1
                for p in pops]
    np.testing.assert_allclose(monitor.population_tnmse_band(), expected, rtol=1e-12)
    monitor.close()
