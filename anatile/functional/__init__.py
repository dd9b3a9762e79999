"""Pure tensor math of the tile: IO model, pulsed update, weight scaling, input range,
read-out (no state; every random draw comes from an explicit ``torch.Generator``)."""

from anatile.functional.indexed import conv2d_indices, gather_patches, scatter_patches
from anatile.functional.input_range import (
    clip_input,
    input_range_data_init,
    input_range_gradient,
)
from anatile.functional.io_model import (
    MVMResult,
    analog_mvm,
    analog_mvm_grid,
    analog_mvm_with_stats,
    noise_management_scale,
    quantization_step,
)
from anatile.functional.post_update import clip_value, clip_weights, remap_weights
from anatile.functional.pulsed_update import (
    DeviceParameters,
    expected_pulses,
    float_update,
    pulse_coincidences,
    pulsed_update,
    sample_device_parameters,
)
from anatile.functional.readout import (
    adc_rounding_bias,
    lstsq_weights,
    read_noise_std,
    readout_inputs,
)
from anatile.functional.weight_scaling import learning_rate_scale, mapping_scales, scale_rows

__all__ = [
    "DeviceParameters",
    "MVMResult",
    "adc_rounding_bias",
    "analog_mvm",
    "analog_mvm_grid",
    "analog_mvm_with_stats",
    "clip_input",
    "clip_value",
    "clip_weights",
    "conv2d_indices",
    "expected_pulses",
    "float_update",
    "gather_patches",
    "input_range_data_init",
    "input_range_gradient",
    "learning_rate_scale",
    "lstsq_weights",
    "mapping_scales",
    "noise_management_scale",
    "pulse_coincidences",
    "pulsed_update",
    "quantization_step",
    "read_noise_std",
    "readout_inputs",
    "remap_weights",
    "sample_device_parameters",
    "scatter_patches",
    "scale_rows",
]
