"""aihwkit scripts run on anatile with only their imports changed.

Each script in ``aihwkit_scripts/`` is valid aihwkit 1.2.0 code (the recorder checks that
with aihwkit installed). Here the block between ``# --- imports (aihwkit) ---`` and
``# --- end of imports ---`` is replaced by the anatile imports below, the rest runs as it
is, and the test checks what the script computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parent / "aihwkit_scripts"
BEGIN, END = "# --- imports (aihwkit) ---", "# --- end of imports ---"

ANATILE_IMPORTS = {
    "train_simple_layer.py": """
from types import SimpleNamespace
from anatile.nn import AnalogLinear
from anatile.nn import AnalogSGD
from anatile.config import SingleRPUConfig, ConstantStepDevice
cuda = SimpleNamespace(is_compiled=lambda: False)  # aihwkit.simulator.rpu_base.cuda
from torch import Tensor
from torch.nn.functional import mse_loss
""",
    "program_drift_read.py": """
from anatile.nn import AnalogLinear
from anatile.nn import AnalogSGD
from anatile.config import InferenceRPUConfig, WeightClipType
from anatile.inference import PCMLikeNoiseModel, GlobalDriftCompensation
from anatile.nn import program_analog_weights, drift_analog_weights
from torch import Tensor, manual_seed
from torch.nn.functional import mse_loss
""",
}


def with_imports(script: str, imports: str) -> str:
    """The script with its aihwkit import block replaced by ``imports``."""
    head, rest = script.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + imports + tail


def run_script(name: str, imports: dict[str, str] | None = None) -> dict[str, Any]:
    source = (SCRIPTS / name).read_text()
    code = with_imports(source, (imports or ANATILE_IMPORTS)[name])
    namespace: dict[str, Any] = {"__name__": "__aihwkit_script__"}
    # our own script files, executed with their imports replaced
    exec(compile(code, str(SCRIPTS / name), "exec"), namespace)
    return namespace


@pytest.mark.usefixtures("one_thread")
def test_training_script_runs_with_only_imports_changed() -> None:
    torch.manual_seed(0)
    ns = run_script("train_simple_layer.py")
    losses = ns["losses"]
    assert len(losses) == 100
    # the pulsed training learns: the loss falls by an order of magnitude
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])
    # the optimizer's learning rate reached every tile
    assert ns["model"].analog_module.get_learning_rate() == pytest.approx(0.05)
    hidden = ns["hidden"]
    assert list(hidden) == ["max_bound", "min_bound", "dwmin_up", "dwmin_down"]
    # one value per device (the bias is digital by default): the tile's own device draws
    tile = ns["model"].analog_module
    assert hidden["max_bound"].shape == (2, 4)
    assert torch.equal(hidden["max_bound"], tile.analog_core.w_max_device)
    assert bool((hidden["min_bound"] < 0).all()) and bool((hidden["dwmin_up"] > 0).all())


@pytest.mark.usefixtures("one_thread")
def test_inference_script_runs_with_only_imports_changed() -> None:
    ns = run_script("program_drift_read.py")
    losses = ns["losses"]
    assert losses[-1] < 0.2 * losses[0], (losses[0], losses[-1])
    # FIXED_VALUE clipping at 1.0 after every step (post_update_step through AnalogSGD)
    assert float(ns["weights_trained"].abs().max()) <= 1.0 + 1e-6
    results = ns["results"]
    alphas = [alpha for _, alpha, _, _ in results]
    # drift compensation grows with time (conductances decay), about 1 right after 20 s
    assert alphas[-1] > alphas[2] > 0.9, alphas
    # the weights read back stay close to the trained ones (drift is compensated)
    for t, _, loss, read_err in results:
        assert read_err < 0.5, (t, read_err)
        assert loss < 0.2, (t, loss)
