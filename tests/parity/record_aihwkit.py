"""Record the parity fixtures of ``tests/parity`` from IBM aihwkit (1.2.0).

Run with an environment where aihwkit is importable (it is not a dependency of anatile; see
``docs/aihwkit.md`` for building it from source)::

    python tests/parity/record_aihwkit.py            # all fixtures
    python tests/parity/record_aihwkit.py defaults   # one section
    python tests/parity/record_aihwkit.py --torch-tile   # aihwkit's Python simulator tile

``--torch-tile`` records with ``TorchInferenceRPUConfig`` (aihwkit's pure-PyTorch
``TorchInferenceTile``, the same IO model, quantization and bound-management rules as its
C++ tile, bound management per call) instead of the C++ ``InferenceTile``; each layer call
gets one input row, so bound management acts per row as in the C++ tile.
``--stub-rpu-base`` lets the pure-Python parts of an aihwkit source tree import without its
compiled extension (for ``--torch-tile`` recordings on a machine without the C++ build).

Each section writes ``tests/parity/fixtures/<section>.json`` with the aihwkit and torch
versions, the inputs (or the seed that makes them) and aihwkit's outputs. The tests in this
folder compare anatile with these files and never need aihwkit.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# the parity inputs, shared with the tests through the fixtures
T_STEPS = [1.0, 60.0, 3600.0, 86400.0, 2592000.0, 31536000.0]
NOISE_SAMPLES = 200_000
ALPHA_REPEATS = 40
ALPHA_T = [3600.0, 86400.0, 31536000.0]
WPO_REPEATS = 20
OPTIONS = {"torch_tile": False}


def _inference_config(**kwargs: Any) -> Any:
    """aihwkit's ``InferenceRPUConfig`` (C++ tile) or ``TorchInferenceRPUConfig``."""
    from aihwkit.simulator.configs import InferenceRPUConfig, TorchInferenceRPUConfig

    cls = TorchInferenceRPUConfig if OPTIONS["torch_tile"] else InferenceRPUConfig
    return cls(**kwargs)


def _simulator() -> str:
    return "TorchInferenceTile" if OPTIONS["torch_tile"] else "InferenceTile"


def _plain(value: Any) -> Any:
    """A config value as JSON: enums by member name (lower case), dataclasses recursively."""
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, type):
        return value.__name__
    public = {k: v for k, v in vars(value).items() if not k.startswith("_")}
    return {"__class__": type(value).__name__, **{k: _plain(v) for k, v in public.items()}}


def _write(name: str, data: dict[str, Any]) -> None:
    import aihwkit

    data = {"aihwkit": aihwkit.__version__, "torch": torch.__version__,
            "simulator": _simulator(), **data}
    FIXTURES.mkdir(parents=True, exist_ok=True)
    path = FIXTURES / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")


def _mean_se(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "se": float(arr.std(ddof=1) / math.sqrt(arr.size)),
            "n": int(arr.size)}


def _stats(x: torch.Tensor) -> dict[str, float]:
    x = x.double().flatten()
    return {"mean": float(x.mean()), "std": float(x.std()), "n": int(x.numel())}


# ------------------------------------------------------------------------------- defaults
def record_defaults() -> None:
    from aihwkit.inference import (
        GlobalDriftCompensation,
        PCMLikeNoiseModel,
        SingleDeviceConductanceConverter,
        SinglePairConductanceConverter,
    )
    from aihwkit.simulator.configs import (
        InferenceRPUConfig,
        InputRangeParameter,
        IOParameters,
        MappingParameter,
        SingleRPUConfig,
        UpdateParameters,
        WeightClipParameter,
        WeightRemapParameter,
    )
    from aihwkit.simulator.configs.devices import ConstantStepDevice

    classes = {
        "IOParameters": IOParameters(),
        "MappingParameter": MappingParameter(),
        "InputRangeParameter": InputRangeParameter(),
        "UpdateParameters": UpdateParameters(),
        "ConstantStepDevice": ConstantStepDevice(),
        "WeightClipParameter": WeightClipParameter(),
        "WeightRemapParameter": WeightRemapParameter(),
        # anatile's trainable RPUConfig is aihwkit's SingleRPUConfig
        "RPUConfig": SingleRPUConfig(),
        "InferenceRPUConfig": InferenceRPUConfig(),
        "PCMLikeNoiseModel": PCMLikeNoiseModel(),
        "GlobalDriftCompensation": GlobalDriftCompensation(),
        "SinglePairConductanceConverter": SinglePairConductanceConverter(),
        "SingleDeviceConductanceConverter": SingleDeviceConductanceConverter(),
    }
    _write("defaults", {"defaults": {name: _plain(obj) for name, obj in classes.items()}})


# ----------------------------------------------------------------------------- converters
def custom_pair_table() -> tuple[list[float], list[list[float]]]:
    """An invertible CustomPair table: f = [1, 3], 5 grid weights, both pairs linear."""
    plus, minus = [0.0, 0.0, 0.0, 5.0, 10.0], [10.0, 5.0, 0.0, 0.0, 0.0]
    return [1.0, 3.0], [plus, minus, plus, minus]


def converter_weights() -> torch.Tensor:
    w = torch.randn(8, 16, generator=torch.Generator().manual_seed(3)) * 0.05
    w[0, :4] = 0.0  # zeros fold offsets differently in some converters
    return w


def record_converters() -> None:
    from aihwkit.inference.converter.conductance import (
        CustomPairConductanceConverter,
        DualPairConductanceConverter,
        NPairConductanceConverter,
        SingleDeviceConductanceConverter,
        SinglePairConductanceConverter,
    )

    f_lst, g_lst = custom_pair_table()
    converters = {
        "SinglePair": SinglePairConductanceConverter(),
        "SinglePair_g_min_2": SinglePairConductanceConverter(g_max=20.0, g_min=2.0),
        "DualPair_1_1": DualPairConductanceConverter(f_lst=[1.0, 1.0]),
        "DualPair_1_3": DualPairConductanceConverter(f_lst=[1.0, 3.0]),
        "NPair_1_2_3": NPairConductanceConverter(f_lst=[1.0, 2.0, 3.0]),
        "CustomPair_1_3": CustomPairConductanceConverter(f_lst, g_lst),
        "SingleDevice": SingleDeviceConductanceConverter(),
    }
    w = converter_weights()
    out: dict[str, Any] = {"weights": w.tolist(), "custom_pair": {"f_lst": f_lst,
                                                                    "g_lst": g_lst}}
    for name, conv in converters.items():
        g_lst_out, params = conv.convert_to_conductances(w)
        back = conv.convert_back_to_weights(g_lst_out, params)
        devices = [g_lst_out] if isinstance(g_lst_out, torch.Tensor) else list(g_lst_out)
        out[name] = {
            "conductances_type": type(g_lst_out).__name__,
            "conductances": [g.tolist() for g in devices],
            "weights_back": back.tolist(),
        }
    zero_table = [[0.0] * 5 for _ in range(4)]
    try:
        CustomPairConductanceConverter([1.0, 1.0], zero_table)
        out["zero_table_exception"] = None
    except Exception as exc:  # any type: the type is what is recorded
        out["zero_table_exception"] = type(exc).__name__
    _write("converters", out)


# ---------------------------------------------------------------------------------- noise
def record_noise() -> None:
    from aihwkit.inference import PCMLikeNoiseModel

    model = PCMLikeNoiseModel()
    out: dict[str, Any] = {"samples": NOISE_SAMPLES, "prog": {}, "nu": {}, "drifted": {}}
    for g in (0.5, 2.0, 10.0, 20.0):
        torch.manual_seed(0)
        target = torch.full((NOISE_SAMPLES,), g)
        out["prog"][str(g)] = _stats(model.apply_programming_noise_to_conductance(target))
        out["nu"][str(g)] = _stats(model.generate_drift_coefficients(target))
    torch.manual_seed(1)
    target = torch.full((NOISE_SAMPLES,), 10.0)
    g_prog = model.apply_programming_noise_to_conductance(target)
    nu = model.generate_drift_coefficients(target)
    for t in (1.0, 3600.0, 86400.0, 31536000.0):
        out["drifted"][str(t)] = _stats(model.apply_drift_noise_to_conductance(g_prog, nu, t))
    _write("noise", out)


# --------------------------------------------------------------------------- quantization
QUANT_CASES = {
    # name: (IO settings, weight kind)
    "dac_default": ({"out_res": -1.0, "out_noise": 0.0, "bound_management": "none"}, "eye"),
    "dac_64_steps": ({"inp_res": 64.0, "out_res": -1.0, "out_noise": 0.0,
                      "bound_management": "none"}, "eye"),
    "adc_default": ({"inp_res": -1.0, "out_noise": 0.0, "bound_management": "none"},
                    "random"),
    "adc_256_steps": ({"out_res": 256.0, "inp_res": -1.0, "out_noise": 0.0,
                       "bound_management": "none"}, "random"),
    "both_default": ({"out_noise": 0.0}, "random"),
    "bound_management_default": ({"out_noise": 0.0}, "large"),
}


def quant_inputs(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``[N, 64]`` and weights ``[out, 64]`` of a quantization case."""
    gen = torch.Generator().manual_seed(11)
    x = torch.rand(32, 64, generator=gen) * 2.0 - 1.0
    if kind == "eye":
        return x, torch.eye(64)
    if kind == "random":
        return x, (torch.rand(48, 64, generator=gen) - 0.5) * 0.2
    # outputs far beyond out_bound; irregular weights (a constant weight puts exact
    # rounding ties on the ADC grid, where float32 summation order decides)
    return x.abs() + 0.2, 0.8 + 0.2 * torch.rand(4, 64, generator=gen)


def record_quantization() -> None:
    from aihwkit.nn import AnalogLinear
    from aihwkit.simulator.configs import IOParameters
    from aihwkit.simulator.parameters.enums import BoundManagementType

    out: dict[str, Any] = {}
    for name, (settings, kind) in QUANT_CASES.items():
        x, w = quant_inputs(kind)
        io_kwargs = dict(settings)
        if "bound_management" in io_kwargs:
            io_kwargs["bound_management"] = BoundManagementType[io_kwargs["bound_management"]
                                                                .upper()]
        cfg = _inference_config(forward=IOParameters(**io_kwargs))
        layer = AnalogLinear(w.shape[1], w.shape[0], bias=False, rpu_config=cfg)
        layer.set_weights(w)
        layer.eval()
        with torch.no_grad():
            y = torch.cat([layer(row.unsqueeze(0)) for row in x])
        out[name] = {"settings": settings, "kind": kind, "output": y.tolist()}
    _write("quantization", out)


# ---------------------------------------------------------------------- drift compensation
def alpha_weights() -> torch.Tensor:
    return torch.randn(64, 128, generator=torch.Generator().manual_seed(5)) * 0.05


def record_drift_alpha() -> None:
    from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
    from aihwkit.nn import AnalogLinear

    out: dict[str, Any] = {"t": ALPHA_T, "repeats": ALPHA_REPEATS, "cases": {}}
    w = alpha_weights()
    for omega in (0.0, 1.0):
        for noisy in (False, True):
            scale = 1.0 if noisy else 0.0
            cfg = _inference_config(
                noise_model=PCMLikeNoiseModel(prog_noise_scale=scale, read_noise_scale=scale),
                drift_compensation=GlobalDriftCompensation(),
            )
            cfg.mapping.weight_scaling_omega = omega
            alphas: dict[str, list[float]] = {str(t): [] for t in ALPHA_T}
            for rep in range(ALPHA_REPEATS):
                torch.manual_seed(1000 + rep)
                layer = AnalogLinear(w.shape[1], w.shape[0], bias=False, rpu_config=cfg)
                layer.set_weights(w)
                layer.eval()
                for t in ALPHA_T:
                    layer.program_analog_weights()
                    layer.drift_analog_weights(t)
                    tile = next(iter(layer.analog_tiles()))
                    alphas[str(t)].append(float(torch.as_tensor(tile.alpha).mean()))
            key = f"omega_{omega:g}_{'noisy' if noisy else 'noise_free'}"
            out["cases"][key] = {"omega": omega, "noisy": noisy,
                                 "alpha": {t: _mean_se(v) for t, v in alphas.items()}}
    _write("drift_alpha", out)


# ---------------------------------------------------------------------------------- WPO
WPO_STRATEGIES = {
    "DualPair_1_1": ("DualPair", [1.0, 1.0]),
    "SinglePair": ("SinglePair", None),
    "DualPair_1_3": ("DualPair", [1.0, 3.0]),
    "NPair_1_2_3": ("NPair", [1.0, 2.0, 3.0]),
}
WPO_MODES = {
    # aihwkit's own objective: the identity read through the noisy forward path at omega 0
    "aihwkit_objective": {},
    "noise_free_readout": {"is_perfect": True},
    "quantization_only": {"out_noise": 0.0},
}


def wpo_weights() -> torch.Tensor:
    return torch.randn(512, 512, generator=torch.Generator().manual_seed(0)) * 0.05


def record_wpo() -> None:
    from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
    from aihwkit.inference.converter.conductance import (
        DualPairConductanceConverter,
        NPairConductanceConverter,
        SinglePairConductanceConverter,
    )
    from aihwkit.inference.converter.wpo import WeightProgrammingOptimizer, loss_rpu_config

    def converter(kind: str, f_lst: list[float] | None) -> Any:
        if kind == "SinglePair":
            return SinglePairConductanceConverter(g_max=25.0, g_min=0.0)
        if kind == "DualPair":
            return DualPairConductanceConverter(f_lst=f_lst, g_max=25.0, g_min=0.0)
        return NPairConductanceConverter(f_lst=f_lst, g_max=25.0, g_min=0.0)

    out: dict[str, Any] = {"t_steps": T_STEPS, "repeats": WPO_REPEATS, "tnmse": {}}
    w = wpo_weights()
    for mode, io_settings in WPO_MODES.items():
        for name, (kind, f_lst) in WPO_STRATEGIES.items():
            baseline = converter(kind, f_lst)
            cfg = _inference_config(noise_model=PCMLikeNoiseModel(g_converter=baseline),
                                    drift_compensation=GlobalDriftCompensation())
            for key, value in io_settings.items():
                setattr(cfg.forward, key, value)
            np.random.seed(0)
            torch.manual_seed(0)
            wpo = WeightProgrammingOptimizer(w, f_lst or [1.0], cfg, T_STEPS, baseline,
                                             disp=False)
            params = dict(wpo.__dict__)
            params["rpu_config"] = cfg  # the baseline converter is in its noise model
            params["rpu_config"].mapping.weight_scaling_omega = 0.0
            params["get_baseline"] = True
            start = time.perf_counter()
            values = [float(loss_rpu_config(params)) for _ in range(WPO_REPEATS)]
            seconds = (time.perf_counter() - start) / WPO_REPEATS
            out["tnmse"].setdefault(mode, {})[name] = {**_mean_se(values),
                                                       "seconds_per_call": seconds}
            print(mode, name, out["tnmse"][mode][name])
    _write("wpo_tnmse", out)


# --------------------------------------------------------------------- closed-loop programming
PROGRAM_SHAPE = (8, 16)
PROGRAM_ITERS = 60
PROGRAM_REPEATS = 40


def program_weights_target() -> torch.Tensor:
    """The training tile's target weights of the programming parity (``randn·0.1``)."""
    return torch.randn(*PROGRAM_SHAPE, generator=torch.Generator().manual_seed(0)) * 0.1


def record_program() -> None:
    """aihwkit's ``program_weights`` on a default training tile (ConstantStepDevice, default
    IO): after ``PROGRAM_ITERS`` iterations (tolerance None), the criterion of one more
    identity read (mean |y − target| / max |target|) and the true weight error
    (mean |W − target| / max |target|), over ``PROGRAM_REPEATS`` seeds."""
    from aihwkit.simulator.configs import SingleRPUConfig
    from aihwkit.simulator.configs.devices import ConstantStepDevice
    from aihwkit.simulator.tiles import AnalogTile

    w = program_weights_target()
    x = torch.eye(PROGRAM_SHAPE[1])
    target = x @ w.T
    criterion, true_error = [], []
    for repeat in range(PROGRAM_REPEATS):
        torch.manual_seed(100 + repeat)
        tile = AnalogTile(*PROGRAM_SHAPE, rpu_config=SingleRPUConfig(device=ConstantStepDevice()),
                          bias=False)
        tile.set_weights(w)
        # from_reference=False: aihwkit 1.2.0 leaves its target unset otherwise
        tile.program_weights(from_reference=False, max_iter=PROGRAM_ITERS, tolerance=None)
        y = tile.tile.forward(x, False)
        criterion.append(float((y - target).abs().mean() / target.abs().max()))
        true_error.append(float((tile.tile.get_weights() - w).abs().mean() / w.abs().max()))
    _write("program", {"simulator": "AnalogTile (C++)", "shape": list(PROGRAM_SHAPE),
                       "iterations": PROGRAM_ITERS,
                       "weights": "randn(8, 16, seed 0) * 0.1", "criterion": _mean_se(criterion),
                       "true_error": _mean_se(true_error)})


SECTIONS = {
    "defaults": record_defaults,
    "converters": record_converters,
    "noise": record_noise,
    "quantization": record_quantization,
    "drift_alpha": record_drift_alpha,
    "wpo_tnmse": record_wpo,
    "program": record_program,
}


def _stub_rpu_base() -> None:
    """Inert placeholders for aihwkit's compiled ``rpu_base`` (see the module docstring)."""
    import types

    def make(name: str) -> type:
        return type(name, (), {"__init__": lambda self, *a, **k: None,
                               "__getattr__": lambda self, n: make(n)})

    class Module(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)
            return make(name)

    base = Module("aihwkit.simulator.rpu_base")
    base.tiles = Module("aihwkit.simulator.rpu_base.tiles")  # type: ignore[attr-defined]
    base.devices = Module("aihwkit.simulator.rpu_base.devices")  # type: ignore[attr-defined]
    base.cuda = types.SimpleNamespace(is_compiled=lambda: False)  # type: ignore[attr-defined]
    sys.modules["aihwkit.simulator.rpu_base"] = base
    sys.modules["aihwkit.simulator.rpu_base.tiles"] = base.tiles  # type: ignore[attr-defined]
    sys.modules["aihwkit.simulator.rpu_base.devices"] = base.devices  # type: ignore[attr-defined]
    import aihwkit.simulator

    aihwkit.simulator.rpu_base = base  # type: ignore[attr-defined]


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    if "--stub-rpu-base" in argv:
        _stub_rpu_base()
    OPTIONS["torch_tile"] = "--torch-tile" in argv
    names = [a for a in argv if not a.startswith("--")] or list(SECTIONS)
    for name in names:
        SECTIONS[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
