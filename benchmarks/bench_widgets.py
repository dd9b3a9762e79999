"""Widget benchmark: redraw latency on a 512×512 tile and the WPOMonitor's overhead.

Run:  .venv/bin/python -m benchmarks.bench_widgets  [--no-write] [--repeats 15] [--runs 8]
      [--monitor-only]

Bars (SPEC §6): a widget redraw after a change on a 512×512 tile < 150 ms median; the
WPOMonitor costs < 5 % of the optimizer's wall time. Results go to
``docs/_generated/perf_widgets.md``, which the performance page includes.

*Redraw* is what a view pays after the model changed: move the new state into the artists
(scatter subsample, histogram, ``|error|`` heatmap, readouts) and render the figure to the
PNG the notebook shows (the live data over the panel's kept frame of axes and labels; the
frame is drawn again when rounded limits change; see docs/widgets.md "Live frames"). The
model's own work (reading or drifting the tile) is timed separately, for scale. The click
row includes the clicked weight's ``weight_trace`` (its array-wide part kept per tile
state by a ``WeightTracer``) and the trace panel's redraw: each weight gets its own y
limits, whose ticks are live artists, so a click draws no new frame (the row counts the
frames and single axes laid out during the clicks). The monitor overhead runs the same
optimizer (same seed, same budget) with and without a ``WPOMonitor`` attached,
alternating, and compares medians and each pair's difference (mean ± standard error over
the pairs); its own work is its callbacks plus its redraws' CPU time.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import torch

from anatile.config import InferenceRPUConfig
from anatile.inference import DualPairConductanceConverter
from anatile.tiles import InferenceTile, TileWithPeriphery
from anatile.widgets import TileInspector, WPOMonitor
from anatile.wpo import WeightProgrammingOptimizer
from anatile.wpo.events import OptimizerFinished, OptimizerStarted
from benchmarks._report import times_ms, write_section

REDRAW_BAR_MS = 150.0
CLICK_BAR_MS = 100.0
OVERHEAD_BAR = 0.05
MONITOR_MAXITER = 300  # a run of a few seconds: long enough to see the frame rate



def bench_redraw(repeats: int) -> list[tuple[str, list[float], float | None]]:
    """Rows ``(what, times_ms, bar_ms)`` for the 512×512 inspector panels."""
    gen = torch.Generator().manual_seed(0)
    tile = TileWithPeriphery(512, 512, seed=0)
    tile.set_weights(torch.randn(512, 512, generator=gen) * 0.1)
    insp = TileInspector(tile)
    base = tile.get_weights(apply_weight_scaling=False)[0]
    reads = [base + 0.01 * torch.randn(512, 512, generator=gen) for _ in range(4)]
    k = iter(range(10**9))

    def new_read() -> None:  # a new read arrived: weights panel + readouts
        insp.show_weights(reads[next(k) % len(reads)])

    scales = [torch.rand(1, generator=gen) + 0.5 for _ in range(4)]

    def new_scales() -> None:
        tile.set_scales(scales[next(k) % len(scales)])
        insp.refresh("scales")

    itile = InferenceTile(512, 512, seed=1)
    itile.set_weights(torch.randn(512, 512, generator=gen) * 0.1)
    iinsp = TileInspector(itile)
    iinsp.program_button.click()
    times = [10.0, 1e3, 1e5, 1e7]

    def drift_and_redraw() -> None:  # slider moved: drift (model) + both panels (view)
        assert iinsp.extra is not None
        iinsp.extra.t_slider.value = times[next(k) % len(times)]
        iinsp.refresh("weights", "conductance")

    def drift_only() -> None:
        itile.drift_weights(times[next(k) % len(times)])

    def drift_redraw_only() -> None:
        iinsp.refresh("weights", "conductance")

    rows = [
        ("new read → weights panel (scatter, histogram, abs-error heatmap, readouts)",
         times_ms(new_read, repeats), REDRAW_BAR_MS),
        ("set_scales → scales panel", times_ms(new_scales, repeats), REDRAW_BAR_MS),
        ("InferenceTile drift → weights + conductance panels (view only)",
         times_ms(drift_redraw_only, repeats), REDRAW_BAR_MS),
        ("for scale: drift_weights(t) alone (model, no view)", times_ms(drift_only, repeats),
         None),
        ("for scale: slider move end to end (drift + both panels)",
         times_ms(drift_and_redraw, repeats), None),
    ]
    for w in (insp, iinsp):
        w.close()
    return rows


def bench_click(repeats: int) -> list[tuple[str, list[float], float | None]]:
    """Click on a heatmap cell of a 512×512 InferenceTile inspector → every view highlighted.

    The click is the two browser events ipyevents sends (press, release) handed to the
    inspector's event handler; timed until the highlighted images (weights panel, conductance
    histograms) and the trace panel are pushed to their widgets and the selected weight's
    readout (its stored conductances) is set. Cells differ between clicks (random cells
    of the whole tile, so the trace's y limits differ from click to click); the row says
    how many frames or single axes of the trace panel were laid out during the clicks.
    """
    from anatile.widgets._interact import pixel_of

    gen = torch.Generator().manual_seed(2)
    tile = InferenceTile(512, 512, seed=3)
    tile.set_weights(torch.randn(512, 512, generator=gen) * 0.1)
    tile.drift_weights(86400.0)
    insp = TileInspector(tile)
    ax = insp.weights_view.axes[2]
    rng = torch.Generator().manual_seed(5)
    cells = torch.randint(0, 512, (max(repeats, 1) * 4 + 8, 2), generator=rng).tolist()
    k = iter(range(10**9))
    has_trace = insp.extra is not None and insp.extra.trace_function is not None

    def click() -> None:
        row, col = cells[next(k) % len(cells)]
        x, y = pixel_of(ax, col, row)
        insp.events.handle({"type": "mousedown", "dataX": x, "dataY": y})
        insp.events.handle({"type": "mouseup", "dataX": x, "dataY": y})
        assert insp.selected == (row, col)

    what = ("click on a heatmap cell → weights + conductance views highlighted, "
            "selected weight's conductances shown"
            + (", its weight_trace computed and drawn" if has_trace else
               " (trace panel: no weight_trace available in this build)"))
    panel = insp.extra.trace_panel if insp.extra is not None else insp.weights_panel
    draws = panel.frame_draws + panel.axes_draws
    times = times_ms(click, repeats)
    draws = panel.frame_draws + panel.axes_draws - draws
    what += f" (trace frames laid out: {draws} in {repeats + 1} clicks)"
    rows: list[tuple[str, list[float], float | None]] = [(what, times, CLICK_BAR_MS)]
    insp.close()
    return rows


def _optimizer() -> WeightProgrammingOptimizer:
    weights = torch.randn(5000, generator=torch.Generator().manual_seed(0)) * 0.1
    return WeightProgrammingOptimizer(
        weights, [None, None], InferenceRPUConfig(), [1.0, 3600.0, 86400.0, 3e7],
        DualPairConductanceConverter([1.0, 1.0]), popsize=10, maxiter=MONITOR_MAXITER,
        baseline_iterations=10, polish=False, callback=None, atol=0.0, seed=5, compile=False,
        test_in_features=256, test_out_features=10,
    )


def bench_monitor(runs: int) -> dict[str, list[float]]:
    """Optimizer wall times (s) without / with a monitor and the monitor's own work.

    Pairs alternate their order (bare first, then monitored first) so neither side always
    runs on a warmer machine. The optimizer's wall time is ``result.elapsed_s`` (start to
    ``OptimizerFinished``), the same clock for both. The monitor's own work is measured
    directly too: time in its event callback (on the optimizer's thread) plus the CPU time
    of its redraws during the run (on the redraw thread: a redraw waiting for a core or
    for the GIL uses no CPU); its last redraw after the run is reported on its own. The
    callback's time is wall time, so it includes its own waits for the GIL while a redraw
    holds it (on a loaded machine most of it).
    """
    out: dict[str, list[float]] = {"bare": [], "monitored": [], "own": [], "final": [],
                                   "frames": [], "generations": [], "fps": [],
                                   "frame_cpu_ms": [], "frame_wall_ms": [], "callback_ms": []}
    _optimizer().run_optimizer()  # warm-up

    def bare() -> None:
        opt = _optimizer()
        opt.run_optimizer()
        assert opt.result is not None
        out["bare"].append(opt.result.elapsed_s)

    def monitored() -> None:
        opt = _optimizer()
        monitor = WPOMonitor(opt)
        callback_s = [0.0]
        record = monitor._record
        redraw = monitor._redraw
        at_start: list[tuple[float, float, int, int]] = []
        at_finish: list[tuple[float, float, int, int]] = []
        # a frame is a new loss-panel image (what the person sees move); a redraw call
        # with nothing new to show (the g(w) curves unchanged) is not counted as one
        loss_frames = [0]
        render_loss = monitor.loss_panel.render

        def counted_render(full: bool = True) -> None:
            render_loss(full)
            loss_frames[0] += 1

        monitor.loss_panel.render = counted_render  # type: ignore[method-assign]

        def timed_record(event: object) -> None:
            start = time.perf_counter()
            record(event)
            callback_s[0] += time.perf_counter() - start
            if isinstance(event, OptimizerStarted):  # after Start's clearing frame
                at_start.append((redraw.busy_cpu_s, redraw.busy_s, redraw.calls,
                                 loss_frames[0]))
            if isinstance(event, OptimizerFinished):  # redraws during the run end here
                at_finish.append((redraw.busy_cpu_s, redraw.busy_s, redraw.calls,
                                  loss_frames[0]))

        monitor._record = timed_record  # type: ignore[method-assign]
        start = time.perf_counter()
        monitor.start(background=False)  # its Start frame is drawn before the run
        total = time.perf_counter() - start
        assert opt.result is not None and at_start and at_finish
        cpu0, wall0, calls0, shown0 = at_start[0]
        cpu1, wall1, calls1, shown1 = at_finish[0]
        elapsed = opt.result.elapsed_s
        final = max(0.0, total - elapsed)
        own = callback_s[0] + (cpu1 - cpu0)
        frames = shown1 - shown0
        out["monitored"].append(elapsed)
        out["final"].append(final)
        out["own"].append(own / elapsed)
        out["frames"].append(frames)
        out["fps"].append(frames / elapsed)
        out["frame_cpu_ms"].append(1e3 * (cpu1 - cpu0) / max(calls1 - calls0, 1))
        out["frame_wall_ms"].append(1e3 * (wall1 - wall0) / max(calls1 - calls0, 1))
        out["callback_ms"].append(1e3 * callback_s[0])
        out["generations"].append(len(monitor.history))
        monitor.close()

    for k in range(runs):
        for fn in ((bare, monitored) if k % 2 == 0 else (monitored, bare)):
            fn()
    return out



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--monitor-only", action="store_true",
                        help="only the WPOMonitor part (implies --no-write)")
    args = parser.parse_args()

    rows = [] if args.monitor_only else bench_redraw(args.repeats) + bench_click(args.repeats)
    mon = bench_monitor(args.runs)
    bare, monitored = mon["bare"], mon["monitored"]
    med_bare, med_mon = statistics.median(bare), statistics.median(monitored)
    overhead = (med_mon - med_bare) / med_bare
    overhead_min = (min(monitored) - min(bare)) / min(bare)
    own = statistics.median(mon["own"])
    # each pair ran back to back (the order alternating): its relative difference cancels
    # the machine's slow drift; mean ± standard error over the pairs
    paired = [(m - b) / b for b, m in zip(bare, monitored, strict=True)]
    paired_mean = statistics.fmean(paired)
    paired_se = (statistics.stdev(paired) / math.sqrt(len(paired)) if len(paired) > 1
                 else float("nan"))

    lines = [
        "## Widgets",
        "",
        "Redraw after a change on 512×512 tiles (`TileInspector`, PNG render of the updated",
        "panels: the live data over each panel's kept axes, redrawn when rounded limits",
        "change; the scatter shows a fixed 4096-point subsample, the heatmap is max-pooled",
        "to its ~200 screen pixels; exports draw everything at their own dpi):",
        "",
        "| what | median | min | bar |",
        "|---|---:|---:|---:|",
    ]
    for what, ts, bar in rows:
        bar_txt = f"< {bar:.0f} ms" if bar is not None else ""
        lines.append(f"| {what} | {statistics.median(ts):.1f} ms | {min(ts):.1f} ms "
                     f"| {bar_txt} |")
    lines += [
        "",
        f"`WPOMonitor` overhead on the optimizer's wall time (`result.elapsed_s`): the same "
        f"run (popsize 10, maxiter {MONITOR_MAXITER}, 4 time steps, 256×10 test layer, "
        f"seed 5) without and with a monitor, {args.runs} pairs in alternating order; "
        f"{int(statistics.median(mon['generations']))} generations and "
        f"{int(statistics.median(mon['frames']))} new figures (loss-panel images) during a "
        f"monitored run, {statistics.median(mon['fps']):.2f} per second (frames on a timer "
        "thread, each after a 0.8 s rest or 32 times its CPU time if longer, never more "
        "than 1 s apart; the status line at most 4 times a second). A frame draws the new "
        "generations (and a changed best g(w)) over axes kept for the whole run, which are "
        "drawn again about once, at the first generation: "
        f"{statistics.median(mon['frame_cpu_ms']):.0f} ms of CPU per redraw (median, that "
        f"first one included), {statistics.median(mon['frame_wall_ms']):.0f} ms of wall "
        "time (it shares the cores with the kernel's threads and the GIL with the "
        "optimizer's Python code). "
        "The generation callback on the optimizer's thread took "
        f"{statistics.median(mon['callback_ms']):.0f} ms per run in all (wall time).",
        "",
        "| what | median | min | bar |",
        "|---|---:|---:|---:|",
        f"| optimizer alone | {med_bare:.2f} s | {min(bare):.2f} s | |",
        f"| optimizer + WPOMonitor | {med_mon:.2f} s | {min(monitored):.2f} s | |",
        f"| figure redraws per second during the run | {statistics.median(mon['fps']):.2f} | "
        f"{min(mon['fps']):.2f} | ≥ 1 |",
        f"| overhead (difference of the medians / of the minima) | {100 * overhead:+.1f} % | "
        f"{100 * overhead_min:+.1f} % | < {100 * OVERHEAD_BAR:.0f} % |",
        f"| overhead per pair (mean ± standard error of {len(paired)} pairs) | "
        f"{100 * paired_mean:+.1f} ± {100 * paired_se:.1f} % | | < {100 * OVERHEAD_BAR:.0f} % |",
        f"| monitor's own work during the run (callbacks + redraw CPU) / run time | "
        f"{100 * own:.1f} % | {100 * min(mon['own']):.1f} % | < {100 * OVERHEAD_BAR:.0f} % |",
        f"| monitor's final frame after the run (not in the optimizer's time) | "
        f"{1e3 * statistics.median(mon['final']):.0f} ms | {1e3 * min(mon['final']):.0f} ms "
        "| |",
        "",
        "The difference of two runs carries the machine's run-to-run noise (several % here: "
        f"the pairs' differences have a standard deviation of "
        f"{100 * statistics.stdev(paired) if len(paired) > 1 else float('nan'):.1f} %); "
        "the monitor's own work is the direct measurement.",
        "",
        f"Measured by `python -m benchmarks.bench_widgets` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, torch "
        f"{torch.__version__}; 1-min load average at the end {os.getloadavg()[0]:.1f} "
        "(shared machine: medians include interference, min is the undisturbed cost).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.monitor_only:
        print("per run: " + "; ".join(f"{k} " + " ".join(f"{v:.4g}" for v in vals)
                                      for k, vals in mon.items()))
    elif not args.no_write:
        write_section("widgets", text)


if __name__ == "__main__":
    main()
