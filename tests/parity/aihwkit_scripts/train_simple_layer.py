"""aihwkit example 1 (simple layer trained with AnalogSGD), plus the optimizer's learning
rate and the tile's hidden parameters as aihwkit scripts use them. Valid aihwkit 1.2.0
code: ``tests/parity/test_aihwkit_scripts.py`` runs it with only the imports changed."""

# --- imports (aihwkit) ---
from aihwkit.nn import AnalogLinear
from aihwkit.optim import AnalogSGD
from aihwkit.simulator.configs import ConstantStepDevice, SingleRPUConfig
from aihwkit.simulator.rpu_base import cuda
from torch import Tensor
from torch.nn.functional import mse_loss

# --- end of imports ---

x = Tensor([[0.1, 0.2, 0.4, 0.3], [0.2, 0.1, 0.1, 0.3]])
y = Tensor([[1.0, 0.5], [0.7, 0.3]])

rpu_config = SingleRPUConfig(device=ConstantStepDevice())

model = AnalogLinear(4, 2, bias=True, rpu_config=rpu_config)

if cuda.is_compiled():
    x = x.cuda()
    y = y.cuda()
    model = model.cuda()

opt = AnalogSGD(model.parameters(), lr=0.1)
opt.regroup_param_groups(model)

losses = []
for epoch in range(100):
    # Delete old gradient
    opt.zero_grad()
    # Add the training Tensor to the model (input).
    pred = model(x)
    # Add the expected output Tensor.
    loss = mse_loss(pred, y)
    # Run training (backward propagation).
    loss.backward()

    opt.step()
    losses.append(loss.item())
    if epoch == 49:
        opt.set_learning_rate(0.05)

print(f"Loss error: {losses[-1]:.16f}")

hidden = model.analog_module.get_hidden_parameters()
print(list(hidden.keys()))
model.analog_module.set_hidden_parameters(hidden)
