"""Periphery parameters: weight mapping, input range, forward/backward IO model, update."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from anatile.config.base import ConfigBase, check_number
from anatile.exceptions import ConfigError

__all__ = [
    "MAX_WEIGHT_SCALING_OMEGA",
    "BoundManagementType",
    "IOParameters",
    "InputRangeParameter",
    "MappingParameter",
    "NoiseManagementType",
    "PrePostProcessingParameter",
    "PulseType",
    "UpdateParameters",
    "WeightClipParameter",
    "WeightClipType",
    "WeightRemapParameter",
    "WeightRemapType",
]


class NoiseManagementType(str, enum.Enum):
    """How each input row is scaled before the DAC (and the scale undone after the ADC).

    Example:
        >>> from anatile.config import IOParameters, NoiseManagementType
        >>> IOParameters(noise_management=NoiseManagementType.NONE).noise_management.value
        'none'
    """

    NONE = "none"
    ABS_MAX = "abs_max"  # divide each row by its abs-max
    MAX = "max"  # divide each row by its (signed) max


class BoundManagementType(str, enum.Enum):
    """What happens when the ADC output saturates.

    Example:
        >>> from anatile.config import BoundManagementType, IOParameters
        >>> IOParameters(bound_management=BoundManagementType.NONE).bound_management.value
        'none'
    """

    NONE = "none"
    ITERATIVE = "iterative"  # halve the input scale and repeat while outputs clip


class PulseType(str, enum.Enum):
    """Kind of weight update the analog core applies.

    Example:
        >>> from anatile.config import PulseType, UpdateParameters
        >>> UpdateParameters(pulse_type=PulseType.NONE).pulse_type.value  # a float update
        'none'
    """

    NONE = "none"  # exact floating-point update (``W -= lr * d^T x``), no device model
    STOCHASTIC_COMPRESSED = "stochastic_compressed"  # coincidences of stochastic pulse trains


#: Largest accepted ``weight_scaling_omega``: ω is where ``max|W|`` lands on the array in
#: normalized conductance units (a device spans about ±1), so ω = 1000 already asks for a
#: thousand times the device range; larger values only saturate every output (1e30) or
#: overflow the scales back to 1 (1e40 in float32), without an error.
MAX_WEIGHT_SCALING_OMEGA = 1000.0


class WeightClipType(str, enum.Enum):
    """How :class:`WeightClipParameter` clips the array weights after each update step.

    Example:
        >>> WeightClipType("layer_gaussian") is WeightClipType.LAYER_GAUSSIAN
        True
        >>> WeightClipParameter(type=WeightClipType.LAYER_GAUSSIAN, sigma=2.0).type.value
        'layer_gaussian'
    """

    NONE = "none"
    FIXED_VALUE = "fixed_value"  # clip at ±fixed_value
    LAYER_GAUSSIAN = "layer_gaussian"  # clip at ±sigma·std(W)
    AVERAGE_CHANNEL_MAX = "average_channel_max"  # clip at ±mean over outputs of max_j |W_ij|


class WeightRemapType(str, enum.Enum):
    """How :class:`WeightRemapParameter` remaps the weights into the scales after a step.

    Example:
        >>> [t.value for t in WeightRemapType]
        ['none', 'layerwise_symmetric', 'channelwise_symmetric']
    """

    NONE = "none"
    LAYERWISE_SYMMETRIC = "layerwise_symmetric"  # max|W| → remapped_wmax, one scale
    CHANNELWISE_SYMMETRIC = "channelwise_symmetric"  # per output row


@dataclass
class MappingParameter(ConfigBase):
    """How logical weights are mapped onto the array and its digital periphery.

    Attributes:
        digital_bias: keep the bias in digital, added after all scales (otherwise an analog
            bias column driven by 1 is used when the tile has a bias).
        weight_scaling_omega: if > 0, weights are divided by ``max|W| / omega`` (layer- or
            column-wise) before they are written; the divisor becomes the mapping scale.
            At most ``MAX_WEIGHT_SCALING_OMEGA`` (1000).
        weight_scaling_columnwise: one mapping scale per output instead of one per tile.
        weight_scaling_lr_compensation: divide the learning rate by the mean mapping scale.
        learn_out_scaling: add trainable output scales (initialized to 1).
        out_scaling_columnwise: one learned out scale per output instead of one per tile.
        max_input_size: largest input size of one tile (used by layers and the WPO test layer).
        max_output_size: largest output size of one tile.

    Example:
        >>> from anatile.config import MappingParameter, RPUConfig
        >>> cfg = RPUConfig(mapping=MappingParameter(weight_scaling_columnwise=True))
        >>> cfg.mapping.weight_scaling_columnwise
        True
    """

    digital_bias: bool = True
    weight_scaling_omega: float = 0.0
    weight_scaling_columnwise: bool = False
    weight_scaling_lr_compensation: bool = False
    learn_out_scaling: bool = False
    out_scaling_columnwise: bool = False
    max_input_size: int = 512
    max_output_size: int = 512

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        check_number(owner, "weight_scaling_omega", self.weight_scaling_omega, lo=0.0,
                     hi=MAX_WEIGHT_SCALING_OMEGA)
        check_number(owner, "max_input_size", self.max_input_size, lo=0, integer=True)
        check_number(owner, "max_output_size", self.max_output_size, lo=0, integer=True)
        _check_bools(self, "digital_bias", "weight_scaling_columnwise",
                     "weight_scaling_lr_compensation", "learn_out_scaling",
                     "out_scaling_columnwise")


@dataclass
class InputRangeParameter(ConfigBase):
    """Learned input range ``r``: inputs are clipped to ``[-r, r]`` and divided by ``r``.

    Attributes:
        enable: switch the input range on.
        learn_input_range: make ``r`` trainable (straight-through gradient).
        init_value: initial ``r``.
        init_from_data: number of training batches over which ``r`` is initialized as the
            running mean of ``init_std_alpha * std(x)`` (0 disables).
        init_std_alpha: multiple of the input standard deviation used for initialization.
        decay: pull ``r`` down by ``decay * r`` when more than ``input_min_percentage`` of
            the inputs are not clipped.
        input_min_percentage: fraction of unclipped inputs above which the decay applies.
        manage_output_clipping: also grow ``r`` when too many outputs clip.
        output_min_percentage: fraction of unclipped outputs below which ``r`` grows.
        gradient_scale: scale of the gradient of ``r``.
        gradient_relative: multiply the gradient of ``r`` by ``r``.

    Example:
        >>> from anatile.config import RPUConfig
        >>> cfg = RPUConfig()
        >>> cfg.pre_post.input_range.enable = True  # learn a clipping bound of the inputs
        >>> cfg.pre_post.input_range.init_from_data
        100
    """

    enable: bool = False
    learn_input_range: bool = True
    init_value: float = 3.0
    init_from_data: int = 100
    init_std_alpha: float = 3.0
    decay: float = 0.001
    input_min_percentage: float = 0.95
    manage_output_clipping: bool = False
    output_min_percentage: float = 0.95
    gradient_scale: float = 1.0
    gradient_relative: bool = True

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        check_number(owner, "init_value", self.init_value, lo=0.0, lo_open=True)
        check_number(owner, "init_from_data", self.init_from_data, lo=0, integer=True)
        check_number(owner, "init_std_alpha", self.init_std_alpha, lo=0.0, lo_open=True)
        check_number(owner, "decay", self.decay, lo=0.0)
        check_number(owner, "input_min_percentage", self.input_min_percentage, lo=0.0, hi=1.0)
        check_number(owner, "output_min_percentage", self.output_min_percentage, lo=0.0, hi=1.0)
        check_number(owner, "gradient_scale", self.gradient_scale)
        _check_bools(self, "enable", "learn_input_range", "manage_output_clipping",
                     "gradient_relative")


@dataclass
class PrePostProcessingParameter(ConfigBase):
    """Digital pre/post processing around the tile (aihwkit's ``rpu_config.pre_post``).

    Example:
        >>> from anatile.config import InputRangeParameter, PrePostProcessingParameter
        >>> pre_post = PrePostProcessingParameter(input_range=InputRangeParameter(enable=True))
        >>> pre_post.input_range.enable
        True
    """

    input_range: InputRangeParameter = field(default_factory=InputRangeParameter)


@dataclass
class IOParameters(ConfigBase):
    """Analog matrix-vector product model (DAC → array → ADC), used forward and backward.

    Attributes:
        is_perfect: exact MVM, no quantization, noise or bounds.
        inp_bound: DAC input bound (inputs are clipped to ``[-inp_bound, inp_bound]``).
        inp_res: DAC resolution as a fraction of the full input range ``2 · inp_bound``
            (1/126: 126 steps, a 7-bit DAC); above 1, the number of steps over the range;
            ≤ 0, no quantization (aihwkit's convention, also its default).
        inp_sto_round: stochastic rounding of the input quantization.
        inp_noise: Gaussian noise added to the quantized input (in input-range units).
        w_noise: Gaussian weight noise per MVM (normalized conductance units).
        out_noise: Gaussian output noise (in output units, before the ADC).
        out_bound: ADC bound (outputs clip at ``±out_bound``).
        out_res: ADC resolution as a fraction of the full output range ``2 · out_bound``
            (1/510: 510 steps, a 9-bit ADC); above 1, the number of steps over the range;
            ≤ 0, no quantization.
        out_sto_round: stochastic rounding of the output quantization.
        noise_management: input scaling per row before the DAC.
        bound_management: handling of saturated outputs.
        max_bm_factor: iterative bound management stops after the round whose input
            reduction exceeds this factor.
        max_bm_res: it also stops after the round whose reduction exceeds
            ``max_bm_res / inp_step`` (``inp_step`` the DAC step; with the defaults 16), so
            an input is never reduced to a handful of DAC levels (aihwkit's rule).

    Example:
        >>> from anatile.config import IOParameters, RPUConfig
        >>> cfg = RPUConfig(forward=IOParameters(out_noise=0.02))
        >>> cfg.forward.out_noise, cfg.backward.out_noise
        (0.02, 0.06)
        >>> IOParameters(is_perfect=True).is_perfect  # an exact matrix product
        True
    """

    is_perfect: bool = False
    inp_bound: float = 1.0
    inp_res: float = 1.0 / 126.0
    inp_sto_round: bool = False
    inp_noise: float = 0.0
    w_noise: float = 0.0
    out_noise: float = 0.06
    out_bound: float = 12.0
    out_res: float = 1.0 / 510.0
    out_sto_round: bool = False
    noise_management: NoiseManagementType = NoiseManagementType.ABS_MAX
    bound_management: BoundManagementType = BoundManagementType.ITERATIVE
    max_bm_factor: float = 1000.0
    max_bm_res: float = 0.25

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        check_number(owner, "inp_bound", self.inp_bound, lo=0.0, lo_open=True)
        check_number(owner, "inp_res", self.inp_res)
        check_number(owner, "inp_noise", self.inp_noise, lo=0.0)
        check_number(owner, "w_noise", self.w_noise, lo=0.0)
        check_number(owner, "out_noise", self.out_noise, lo=0.0)
        check_number(owner, "out_bound", self.out_bound, lo=0.0, lo_open=True)
        check_number(owner, "out_res", self.out_res)
        check_number(owner, "max_bm_factor", self.max_bm_factor, lo=1.0)
        check_number(owner, "max_bm_res", self.max_bm_res, lo=0.0, lo_open=True)
        _check_bools(self, "is_perfect", "inp_sto_round", "out_sto_round")


@dataclass
class WeightClipParameter(ConfigBase):
    """Clipping of the array weights once per update step (aihwkit's ``rpu_config.clip``).

    Applied by ``post_update_step()`` (called by :class:`~anatile.nn.AnalogSGD` after each
    step) to the normalized weights on the array; nothing happens unless ``type`` is set.

    Attributes:
        type: the clipping rule (``NONE`` by default).
        fixed_value: clip value of ``FIXED_VALUE``; when > 0 it also caps the clip value
            of the other types (≤ 0: no cap).
        sigma: multiple of the weights' standard deviation for ``LAYER_GAUSSIAN``.

    Example:
        >>> cfg = RPUConfig()
        >>> cfg.clip = WeightClipParameter(type=WeightClipType.FIXED_VALUE, fixed_value=0.5)
        >>> cfg.clip.fixed_value
        0.5
    """

    fixed_value: float = -1.0
    sigma: float = 2.5
    type: WeightClipType = WeightClipType.NONE

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        check_number(owner, "fixed_value", self.fixed_value)
        check_number(owner, "sigma", self.sigma, lo=0.0, lo_open=True)


@dataclass
class WeightRemapParameter(ConfigBase):
    """Remapping of the weights into the mapping scales after each update step
    (aihwkit's ``rpu_config.remap``).

    Applied by ``post_update_step()``: the largest array weight (per tile or per output
    row) is brought to ``remapped_wmax`` and the scales absorb the factor, so the logical
    weights do not change; nothing happens unless ``type`` is set.

    Attributes:
        type: the remapping rule (``NONE`` by default).
        remapped_wmax: the array weight the largest weight is mapped to.
        max_scale_range: ``CHANNELWISE_SYMMETRIC`` only: if > 0, no scale may exceed this
            multiple of the smallest scale (then ``remapped_wmax`` must be 1).
        max_scale_ref: with ``max_scale_range``, a lower limit of the reference scale.

    Example:
        >>> cfg = RPUConfig()
        >>> cfg.remap = WeightRemapParameter(type=WeightRemapType.CHANNELWISE_SYMMETRIC)
        >>> cfg.remap.remapped_wmax
        1.0
    """

    remapped_wmax: float = 1.0
    max_scale_range: float = 0.0
    max_scale_ref: float = 0.0
    type: WeightRemapType = WeightRemapType.NONE

    def validate(self) -> None:
        super().validate()
        owner = type(self).__name__
        check_number(owner, "remapped_wmax", self.remapped_wmax, lo=0.0, lo_open=True)
        check_number(owner, "max_scale_range", self.max_scale_range, lo=0.0)
        check_number(owner, "max_scale_ref", self.max_scale_ref, lo=0.0)
        if self.max_scale_range > 0 and self.remapped_wmax != 1.0:
            raise ConfigError(f"{owner}.remapped_wmax: expected 1.0 when max_scale_range is "
                              f"set, got {self.remapped_wmax}")


@dataclass
class UpdateParameters(ConfigBase):
    """Pulsed update of the analog core.

    Attributes:
        pulse_type: ``STOCHASTIC_COMPRESSED`` (device model) or ``NONE`` (exact float update).
        desired_bl: pulse train length BL.
        update_management: balance the pulse probabilities of x and d by their abs-max
            (``A·max|x| = B·max|d|``) instead of ``A = B``.
        update_bl_management: shorten BL per batch row to what the update needs.

    Example:
        >>> from anatile.config import RPUConfig, UpdateParameters
        >>> cfg = RPUConfig(update=UpdateParameters(desired_bl=15))
        >>> cfg.update.desired_bl
        15
    """

    pulse_type: PulseType = PulseType.STOCHASTIC_COMPRESSED
    desired_bl: int = 31
    update_management: bool = True
    update_bl_management: bool = True

    def validate(self) -> None:
        super().validate()
        check_number(type(self).__name__, "desired_bl", self.desired_bl, lo=1, integer=True)
        _check_bools(self, "update_management", "update_bl_management")


def _check_bools(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, bool):
            raise ConfigError(f"{type(obj).__name__}.{name}: expected a bool, got {value!r}")
