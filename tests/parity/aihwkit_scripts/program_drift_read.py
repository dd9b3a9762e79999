"""Hardware-aware training of an inference layer with weight clipping, then programming,
drift and read-back, in aihwkit 1.2.0's API (valid aihwkit code:
``tests/parity/test_aihwkit_scripts.py`` runs it with only the imports changed)."""

# --- imports (aihwkit) ---
from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
from aihwkit.inference.utils import drift_analog_weights, program_analog_weights
from aihwkit.nn import AnalogLinear
from aihwkit.optim import AnalogSGD
from aihwkit.simulator.configs import InferenceRPUConfig, WeightClipType
from torch import Tensor, manual_seed
from torch.nn.functional import mse_loss

# --- end of imports ---

manual_seed(0)
x = Tensor([[0.1, 0.2, 0.4, 0.3], [0.2, 0.1, 0.1, 0.3]])
y = Tensor([[1.0, 0.5], [0.7, 0.3]])

rpu_config = InferenceRPUConfig()
rpu_config.forward.out_res = -1.0  # Turn off (output) ADC discretization.
rpu_config.clip.type = WeightClipType.FIXED_VALUE
rpu_config.clip.fixed_value = 1.0
rpu_config.noise_model = PCMLikeNoiseModel(g_max=25.0)
rpu_config.drift_compensation = GlobalDriftCompensation()

model = AnalogLinear(4, 2, bias=True, rpu_config=rpu_config)

opt = AnalogSGD(model.parameters(), lr=0.1)
opt.regroup_param_groups(model)

losses = []
for _epoch in range(100):
    opt.zero_grad()
    pred = model(x)
    loss = mse_loss(pred, y)
    loss.backward()
    opt.step()
    losses.append(loss.item())

model.eval()
pred_before = model(x)
weights_trained = model.analog_module.get_weights()[0]

program_analog_weights(model, None)
results = []
for t_inference in [0.0, 1.0, 20.0, 1000.0, 1e5]:
    drift_analog_weights(model, t_inference)
    pred_drift = model(x)
    weights_read, bias_read = model.analog_module.read_weights()
    results.append(
        (t_inference, float(model.analog_module.alpha.mean()),
         mse_loss(pred_drift, y).item(), (weights_read - weights_trained).abs().max().item())
    )
    print("t = {:g} s: alpha {:.3f}, loss {:.4f}, max |read - trained| {:.3f}".format(*results[-1]))
