"""A tile with its digital periphery: scales, bias, input range, programming and read-out.

:class:`TileWithPeriphery` is a concrete ``torch.nn.Module`` that *owns* its crossbar
(:class:`~anatile.tiles.analog_core.AnalogCore`) and adds everything digital around it.
Design decisions where the specification is silent are written down in ``docs/tile.md``.

The tile holds the state (its tensors keep aihwkit's flat state-dict keys) and the public
aihwkit-compatible surface; each concern is a part it composes:

==========================  ==================================================
``tiles/shapes.py``         transposed batches to rows and back
``tiles/scaling.py``        checks of mapping scales and omega (math: functional)
``tiles/indexing.py``       convolution indexing (``tile.indexing``)
``tiles/programming.py``    programming strategies (``tile.programming``)
``tiles/reading.py``        least-squares read-out
``tiles/persistence.py``    generator state, optional state-dict slots
``tiles/autograd.py``       the autograd functions and the context parameter
==========================  ==================================================

Why this file is over 400 lines: it is the public surface of aihwkit's ``TileWithPeriphery``
(some 40 methods, each with its documented arguments); the logic behind them lives in the
parts above.
"""

from __future__ import annotations

import copy
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from anatile.checks import check_finite, check_float, check_int, check_tensor
from anatile.config.parameters import BoundManagementType
from anatile.config.rpu_config import RPUConfig
from anatile.events import EventHub
from anatile.exceptions import ConfigError, TileError
from anatile.functional.input_range import clip_input, input_range_data_init
from anatile.functional.weight_scaling import learning_rate_scale, mapping_scales
from anatile.tiles.analog_core import AnalogCore
from anatile.tiles.autograd import AnalogContext, AnalogFunction, InputRangeFunction
from anatile.tiles.events import ProgrammingReport, TileEvent
from anatile.tiles.indexing import ConvolutionIndexing
from anatile.tiles.maintenance import post_update_step
from anatile.tiles.persistence import generator_state, match_optional_slots, restore_generator
from anatile.tiles.programming import (
    ClosedLoopProgramming,
    ProgrammingContext,
    ProgrammingStrategy,
    ProgressCallback,
)
from anatile.tiles.reading import read_weights_lstsq
from anatile.tiles.scaling import checked_omega, checked_scales
from anatile.tiles.shapes import along, from_rows, out_view, to_rows
from anatile.tiles.state import Entry, check_state_dict, check_tile_extra_state, tile_entries

__all__ = ["TileWithPeriphery"]

_log = logging.getLogger(__name__)


class TileWithPeriphery(nn.Module):
    """Analog tile with digital periphery (aihwkit's ``TileWithPeriphery`` API, composed).

    Args:
        out_size: number of outputs (rows of the weight matrix).
        in_size: number of inputs (columns).
        rpu_config: tile configuration (default ``RPUConfig()``); validated and deep-copied.
        bias: whether the tile has a bias: digital (``rpu_config.mapping.digital_bias``,
            default) or an analog bias column driven by 1.
        in_trans: inputs are given transposed, ``[in_size, N]``.
        out_trans: outputs are returned transposed, ``[out_size, N]``.
        seed: seed of the tile's generator (default: drawn once from torch's default
            generator).

    Attributes:
        analog_core: the crossbar (:class:`AnalogCore`).
        generator: the ``torch.Generator`` of every random draw of this tile.
        events: :class:`~anatile.events.EventHub` of :class:`TileEvent`.
        reference_weight: normalized weights last written by :meth:`set_weights` or None.
        bias: digital bias ``Parameter`` ``[out_size]`` or None.
        learned_out_scales: trainable out scales or None.
        input_range: trainable input range ``[1]`` or None.
        last_programming: :class:`ProgrammingReport` of the last :meth:`program_weights`.
        programming: the :class:`~anatile.tiles.programming.ProgrammingStrategy` of
            :meth:`program_weights` (default :class:`ClosedLoopProgramming`).
        indexing: the :class:`~anatile.tiles.indexing.ConvolutionIndexing` of the indexed
            passes.

    Shape:
        forward: ``[..., in_size]`` → ``[..., out_size]`` (indexed: ``[N, C, *spatial]`` →
        ``[N, out_size, *out_spatial]``).

    Example:
        >>> tile = TileWithPeriphery(3, 4, seed=0)
        >>> tile.set_weights(torch.ones(3, 4) * 0.1)
        >>> tile(torch.ones(2, 4)).shape
        torch.Size([2, 3])
    """

    supports_indexed: bool = True

    mapping_scales: Tensor
    bias: nn.Parameter | None
    learned_out_scales: nn.Parameter | None
    input_range: nn.Parameter | None
    reference_weight: Tensor | None
    indices: Tensor | None
    input_range_update_idx: Tensor

    def __init__(
        self,
        out_size: int,
        in_size: int,
        rpu_config: RPUConfig | None = None,
        bias: bool = False,
        in_trans: bool = False,
        out_trans: bool = False,
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        out_size = check_int("out_size", out_size, 1)
        in_size = check_int("in_size", in_size, 1)
        for name, flag in (("bias", bias), ("in_trans", in_trans), ("out_trans", out_trans)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name}: expected a bool, got {type(flag).__name__}")
        if rpu_config is None:
            rpu_config = RPUConfig()
        if not isinstance(rpu_config, RPUConfig):
            raise TypeError(f"rpu_config: expected an RPUConfig, got {type(rpu_config).__name__}")
        rpu_config.validate()
        self.rpu_config = copy.deepcopy(rpu_config)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.seed = check_int("seed", seed, 0)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.out_size = out_size
        self.in_size = in_size
        self.in_trans = in_trans
        self.out_trans = out_trans
        self.digital_bias = bias and self.rpu_config.mapping.digital_bias
        self.analog_bias = bias and not self.rpu_config.mapping.digital_bias
        self.events = EventHub()
        self.analog_core = AnalogCore(out_size, in_size + int(self.analog_bias), self.rpu_config,
                                      self.generator)
        self.register_buffer("reference_weight", None)
        self.register_parameter(
            "bias", nn.Parameter(torch.zeros(out_size)) if self.digital_bias else None)
        self.analog_ctx = AnalogContext(torch.zeros(()))
        self.analog_ctx.analog_tile = self
        self.register_buffer("indices", None)
        self.indexing = ConvolutionIndexing(in_size, out_size)
        self.programming: ProgrammingStrategy = self.default_programming()
        self.last_programming: ProgrammingReport | None = None
        self.last_unclipped_output_fraction: float | None = None
        self._pending: list[tuple[Tensor, Tensor, bool]] = []
        self._learning_rate = 0.01
        self.init_mapping_scales()
        self.init_learned_out_scales()
        self.init_input_processing()
        self.set_learning_rate(0.01)

    # ------------------------------------------------------------------ randomness
    def manual_seed(self, seed: int) -> TileWithPeriphery:
        """Reseed the tile's generator (future draws only; device variations stay).

        Args:
            seed: non-negative int.

        Returns:
            self.
        """
        self.seed = check_int("seed", seed, 0)
        self.generator.manual_seed(self.seed)
        return self

    def _new_generator(self, device: torch.device) -> None:
        generator = torch.Generator(device=device)
        generator.manual_seed(self.seed)
        self.generator = generator

    @property
    def image_sizes(self) -> list[int] | None:
        """Image sizes of the indexed passes (see :meth:`set_indexed`), or None."""
        return self.indexing.image_sizes

    @property
    def device(self) -> torch.device:
        """Device of the tile's buffers."""
        return self.analog_core.weight.device

    # ------------------------------------------------------------------ init helpers
    def init_mapping_scales(self) -> None:
        """Initialize the mapping scales to ones (``[out_size]`` column-wise, else ``[1]``)."""
        size = self.out_size if self.rpu_config.mapping.weight_scaling_columnwise else 1
        self.register_buffer("mapping_scales", torch.ones(size, device=self._device_or_cpu()))

    def init_learned_out_scales(self) -> None:
        """Create the trainable learned out scales (ones) when ``learn_out_scaling`` is set."""
        mapping = self.rpu_config.mapping
        if mapping.learn_out_scaling:
            size = self.out_size if mapping.out_scaling_columnwise else 1
            self.learned_out_scales = nn.Parameter(torch.ones(size,
                                                              device=self._device_or_cpu()))
        else:
            self.register_parameter("learned_out_scales", None)

    def init_input_processing(self) -> bool:
        """Create the input range parameter when enabled.

        Returns:
            Whether input processing (the input range) is enabled.

        Raises:
            ConfigError: if ``manage_output_clipping`` is set while the forward pass uses
                iterative bound management (outputs then never clip, so it is unsupported).
        """
        cfg = self.rpu_config.pre_post.input_range
        self.register_buffer("input_range_update_idx", torch.zeros((), dtype=torch.int64))
        if not cfg.enable:
            self.register_parameter("input_range", None)
            return False
        if cfg.manage_output_clipping and (
            self.rpu_config.forward.bound_management != BoundManagementType.NONE
        ):
            raise ConfigError("InputRangeParameter.manage_output_clipping: not supported with "
                              "forward.bound_management ITERATIVE; set it to NONE")
        self.input_range = nn.Parameter(
            torch.full((1,), float(cfg.init_value), device=self._device_or_cpu()),
            requires_grad=cfg.learn_input_range)
        return True

    def _device_or_cpu(self) -> torch.device:
        core = self._modules.get("analog_core")
        return core.weight.device if isinstance(core, AnalogCore) else torch.device("cpu")

    def _emit(self, kind: str, **data: Any) -> bool:
        return self.events.emit(TileEvent(source=self, kind=kind, data=data))

    # ------------------------------------------------------------------ scales
    def get_mapping_scales(self) -> Tensor:
        """Get the scales used for the weight mapping.

        Returns:
            Copy of the mapping scales, ``[1]`` or ``[out_size]`` (always present; ones when
            no weight scaling is used).
        """
        return self.mapping_scales.detach().clone()

    def set_mapping_scales(self, mapping_scales: Tensor | float | None) -> None:
        """Set the scales used for the weight mapping.

        Args:
            mapping_scales: ``[1]`` or ``[out_size]`` tensor, a float, or None (ones).

        Raises:
            TypeError, ValueError: on a wrong type, size, non-finite or zero value.
        """
        scales = checked_scales("mapping_scales", mapping_scales, self.out_size,
                                self.mapping_scales)
        lr = self.get_learning_rate()
        self.mapping_scales = scales
        self._learning_rate = lr * self._lr_scale()
        self._emit("scales_changed")

    def get_learned_out_scales(self) -> Tensor | None:
        """Get the learned out scales.

        Returns:
            The trainable ``Parameter`` (``[1]`` or ``[out_size]``), or None if not learned.
        """
        return self.learned_out_scales

    def set_learned_out_scales(self, alpha: Tensor | float) -> None:
        """Set the learned out scales (no-op when out scaling is not learned).

        Args:
            alpha: float or tensor with 1 or ``out_size`` elements.

        Raises:
            TypeError, ValueError: on a wrong type, size or non-finite value.
        """
        if self.learned_out_scales is None:
            return
        if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
            alpha = torch.tensor([float(alpha)])
        value = check_tensor("alpha", alpha).detach().reshape(-1)
        target = self.learned_out_scales
        if value.numel() == 1:
            value = value.expand(target.numel())
        if value.numel() != target.numel():
            raise ValueError(f"alpha: expected 1 or {target.numel()} elements, "
                             f"got {value.numel()}")
        with torch.no_grad():
            target.copy_(value)
        self._emit("scales_changed")

    def get_scales(self) -> Tensor | None:
        """Get all scales: the mapping scales times the learned out scales (if any).

        Returns:
            A new tensor ``[1]`` or ``[out_size]`` (never None here, as mapping scales
            always exist).
        """
        scales = self.mapping_scales.detach().clone()
        if self.learned_out_scales is not None:
            scales = scales * self.learned_out_scales.detach()
        return scales

    def set_scales(self, scales: Tensor | float) -> None:
        """Set the mapping scales to ``scales`` and every other scale to 1.

        Args:
            scales: ``[1]`` or ``[out_size]`` tensor or float.

        Raises:
            TypeError, ValueError: on bad scales (nothing is changed then).
        """
        value = checked_scales("scales", scales, self.out_size, self.mapping_scales)
        lr = self.get_learning_rate()
        self.mapping_scales = value
        if self.learned_out_scales is not None:
            with torch.no_grad():
                self.learned_out_scales.fill_(1.0)
        self._learning_rate = lr * self._lr_scale()
        self._emit("scales_changed")

    def apply_out_scaling(self, values: Tensor, tensor_view: tuple[int, ...] | None = None
                          ) -> Tensor:
        """Multiply the learned out scales onto ``values``.

        Args:
            values: output tensor.
            tensor_view: view of the scales before multiplication (default: along the last
                dimension, or the first when ``out_trans``).

        Returns:
            The scaled tensor (``values`` itself when no out scales are learned).
        """
        if self.learned_out_scales is None:
            return values
        if tensor_view is None:
            tensor_view = out_view(values.ndim, self.out_trans)
        return values * self.learned_out_scales.view(tensor_view)

    def apply_weight_scaling(self, combined_weights: Tensor,
                             weight_scaling_omega: float | None = None) -> Tensor:
        """Compute and set the mapping scales of ``combined_weights``; return them scaled.

        Layer-wise ``alpha = max|W| / omega`` or column-wise per output; zeros become 1;
        ``omega == 0`` means no scaling. Sets the mapping scales (other scales to 1).

        Args:
            combined_weights: ``[out_size, in_size (+1 analog bias)]`` logical weights.
            weight_scaling_omega: omega (default ``rpu_config.mapping.weight_scaling_omega``).

        Returns:
            ``combined_weights / alpha`` (normalized conductance units).

        Raises:
            TypeError, ValueError: on bad weights or omega.
        """
        weights = check_tensor("combined_weights", combined_weights)
        omega = self._omega(weight_scaling_omega)
        alpha = mapping_scales(weights.detach().to(self.mapping_scales.dtype), omega,
                               self.rpu_config.mapping.weight_scaling_columnwise)
        self.set_scales(alpha)
        return weights / alpha.reshape(-1, 1).to(weights.device)

    def _omega(self, weight_scaling_omega: float | None) -> float:
        return checked_omega(weight_scaling_omega, self.rpu_config.mapping.weight_scaling_omega)

    # ------------------------------------------------------------------ learning rate
    def _lr_scale(self) -> float:
        return learning_rate_scale(self.mapping_scales,
                                   self.rpu_config.mapping.weight_scaling_lr_compensation)

    def set_learning_rate(self, learning_rate: float | None) -> None:
        """Set the tile learning rate (stored as ``lr · mapping_lr_scale``).

        Args:
            learning_rate: non-negative learning rate (descent direction); None: no change.

        Raises:
            TypeError, ValueError: on a non-number or a negative value.
        """
        if learning_rate is None:
            return
        lr = check_float("learning_rate", learning_rate)
        self._learning_rate = lr * self._lr_scale()

    def get_learning_rate(self) -> float:
        """Return the tile learning rate (the stored one divided by the mapping lr scale)."""
        return self._learning_rate / self._lr_scale()

    # ------------------------------------------------------------------ input range
    def set_input_range(self, value: Tensor | float) -> None:
        """Set the input range (and stop its initialization from data).

        Args:
            value: positive float or 1-element tensor.

        Raises:
            ConfigError: if the input range is not enabled.
            TypeError, ValueError: on a non-positive or non-finite value.
        """
        if self.input_range is None:
            raise ConfigError("input_range: not enabled (rpu_config.pre_post.input_range."
                              "enable is False)")
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise ValueError(f"value: expected one element, got {value.numel()}")
            value = float(value.detach().reshape(()).item())
        number = check_float("value", value, lo=0.0, lo_open=True)
        with torch.no_grad():
            self.input_range.fill_(number)
        self.input_range_update_idx.fill_(self.rpu_config.pre_post.input_range.init_from_data)
        self._emit("input_range_changed", value=number)

    def apply_input_range(self, values: Tensor, update_from_data: bool = False) -> Tensor:
        """Clip the inputs at ``±r`` (straight-through gradient for ``r``).

        Args:
            values: the inputs.
            update_from_data: update ``r`` as the running mean of ``init_std_alpha·std(x)``
                while fewer than ``init_from_data`` batches were seen.

        Returns:
            The clipped inputs (``values`` itself when the input range is off).
        """
        if self.input_range is None:
            return values
        cfg = self.rpu_config.pre_post.input_range
        count = int(self.input_range_update_idx.item())
        # the std of one element is undefined (NaN): such a batch does not count
        if update_from_data and count < cfg.init_from_data and values.numel() > 1:
            new = input_range_data_init(self.input_range.detach(), values, count,
                                        cfg.init_std_alpha)
            with torch.no_grad():
                self.input_range.copy_(new.clamp(min=1e-8))
            self.input_range_update_idx.add_(1)
            self._emit("input_range_changed", value=float(new.item()))
        return InputRangeFunction.apply(values, self.input_range, self)

    # ------------------------------------------------------------------ pre/post hooks
    def pre_forward(self, x_input: Tensor, dim: int, is_test: bool = False,
                    ctx: Any = None) -> Tensor:
        """Clip the inputs at ``±r`` and divide them by the input range ``r`` (as aihwkit).

        No-op without an input range. (The autograd path clips first, with the
        straight-through gradient; clipping again here changes nothing there.)

        Args:
            x_input: inputs of the analog MVM.
            dim: the ``x_size`` dimension.
            is_test: eval mode.
            ctx: autograd context (unused).

        Returns:
            Tensor of the same shape.
        """
        if self.input_range is None:
            return x_input
        r = self.input_range.detach()
        return clip_input(x_input, r) / r

    def post_forward(self, x_output: Tensor, dim: int, is_test: bool = False,
                     ctx: Any = None) -> Tensor:
        """Multiply the analog output by the input range and the mapping scales.

        Args:
            x_output: output of the analog MVM.
            dim: the ``d_size`` (output) dimension.
            is_test: eval mode.
            ctx: autograd context (unused).

        Returns:
            Tensor of the same shape.
        """
        for scales in self.output_scales(is_test):
            x_output = x_output * along(scales, dim, x_output.ndim)
        return x_output

    def output_scales(self, is_test: bool = False) -> list[Tensor]:
        """The digital factors :meth:`post_forward` multiplies onto the analog MVM output.

        Here the mapping scales (times the input range, when enabled); a subclass appends
        its own (an :class:`~anatile.tiles.InferenceTile` its drift compensation ``alpha``
        in eval mode). A tile array's fused eval forward multiplies the same factors.

        Args:
            is_test: eval mode.

        Returns:
            ``[1]`` or ``[out_size]`` tensors, in the order they are applied.
        """
        scales = self.mapping_scales
        if self.input_range is not None:
            scales = scales * self.input_range.detach()
        return [scales]

    def pre_backward(self, d_input: Tensor, dim: int, ctx: Any = None) -> Tensor:
        """Multiply the output gradient by the mapping scales (along ``dim``).

        The mapping scales act per output, so they are applied before the transposed MVM
        (the seed places this in :meth:`post_backward`; for layer-wise scales both agree).

        Args:
            d_input: gradient w.r.t. the tile output.
            dim: the ``d_size`` dimension.
            ctx: autograd context (unused).

        Returns:
            Tensor of the same shape.
        """
        return d_input * along(self.mapping_scales, dim, d_input.ndim)

    def post_backward(self, d_output: Tensor, dim: int, ctx: Any = None) -> Tensor:
        """Hook after the transposed MVM (identity; scales are applied in pre_backward).

        Args:
            d_output: output of the transposed MVM.
            dim: the ``x_size`` dimension.
            ctx: autograd context (unused).

        Returns:
            ``d_output``.
        """
        return d_output

    def pre_update(self, x_input: Tensor, x_dim: int, d_input: Tensor, d_dim: int
                   ) -> tuple[Tensor, Tensor]:
        """Map ``(x, d)`` to array units: ``x / r`` and ``d · r / mapping_scales``.

        With this, an update with learning rate ``lr`` changes the logical weights by
        ``−lr · dᵀx`` (as floating-point SGD would).

        Args:
            x_input: forward inputs (clipped by the input range).
            x_dim: the ``x_size`` dimension of ``x_input``.
            d_input: gradients w.r.t. the tile output.
            d_dim: the ``d_size`` dimension of ``d_input``.

        Returns:
            The preprocessed ``(x, d)``.
        """
        scales = self.mapping_scales.reciprocal()
        if self.input_range is not None:
            r = self.input_range.detach()
            x_input = x_input / r
            scales = scales * r
        return x_input, d_input * along(scales, d_dim, d_input.ndim)

    def _with_bias_column(self, x: Tensor) -> Tensor:
        if not self.analog_bias:
            return x
        return torch.cat([x, torch.ones_like(x[:, :1])], dim=1)

    # ------------------------------------------------------------------ passes
    def joint_forward(self, x_input: Tensor, is_test: bool = False, ctx: Any = None) -> Tensor:
        """Forward pass: :meth:`pre_forward`, the analog MVM, :meth:`post_forward`.

        Applies the mapping scales, not the learned out scales nor the digital bias (those
        are applied by :meth:`forward`).

        Args:
            x_input: ``[N, in_size]`` (``[in_size, N]`` when ``in_trans``).
            is_test: eval mode.
            ctx: autograd context (unused).

        Returns:
            ``[N, out_size]`` (``[out_size, N]`` when ``out_trans``).

        Raises:
            TypeError, ValueError: on a wrong dtype or shape.
        """
        x, lead = to_rows(x_input, self.in_size, self.in_trans, "x_input")
        return from_rows(self._forward_rows(x, is_test, ctx), lead, self.out_trans)

    def _forward_rows(self, x: Tensor, is_test: bool, ctx: Any = None) -> Tensor:
        """pre_forward → analog MVM → post_forward on ``[M, in_size]`` rows."""
        x = self.pre_forward(x.to(self.analog_core.weight.dtype), -1, is_test, ctx)
        x = self._with_bias_column(x)
        cfg = self.rpu_config.pre_post.input_range
        if self.input_range is not None and cfg.manage_output_clipping:
            result = self.analog_core.forward_with_stats(x, self.generator)
            self.last_unclipped_output_fraction = 1.0 - float(result.clipped_fraction)
            y = result.out
        else:
            y = self.analog_core.forward(x, self.generator)
        return self.post_forward(y, -1, is_test, ctx)

    def backward(self, d_input: Tensor, ctx: Any = None) -> Tensor:
        """Backward pass through the transposed array (backward IO model).

        Args:
            d_input: ``[N, out_size]`` (``[out_size, N]`` when ``out_trans``).
            ctx: autograd context (unused).

        Returns:
            ``[N, in_size]`` (``[in_size, N]`` when ``in_trans``).

        Raises:
            TypeError, ValueError: on a wrong dtype or shape.
        """
        d, lead = to_rows(d_input, self.out_size, self.out_trans, "d_input")
        d = self.pre_backward(d.to(self.analog_core.weight.dtype), -1, ctx)
        dx = self.analog_core.backward(d, self.generator)
        if self.analog_bias:
            dx = dx[:, :-1]
        dx = self.post_backward(dx, -1, ctx)
        return from_rows(dx, lead, self.in_trans)

    def update(self, x_input: Tensor, d_input: Tensor) -> None:
        """Update the array weights ``≈ −lr · dᵀx`` (pulsed or exact per the config).

        Args:
            x_input: ``[..., in_size]`` (``[in_size, N]`` when ``in_trans``).
            d_input: ``[..., out_size]`` (``[out_size, N]`` when ``out_trans``).

        Raises:
            TypeError, ValueError: on wrong dtypes or shapes, mismatched batch sizes or
                NaN/inf values (the weights are then untouched).
        """
        x, _ = to_rows(x_input, self.in_size, self.in_trans, "x_input")
        d, _ = to_rows(d_input, self.out_size, self.out_trans, "d_input")
        if x.shape[0] != d.shape[0]:
            raise ValueError(f"x_input, d_input: batch sizes differ ({x.shape[0]} vs "
                             f"{d.shape[0]})")
        check_finite("x_input", x)
        check_finite("d_input", d)
        x, d = self.pre_update(x, -1, d, -1)
        self.analog_core.update(self._with_bias_column(x), d, self._learning_rate,
                                self.generator)

    def forward(self, x_input: Tensor) -> Tensor:
        """Full forward pass with autograd: input range, analog MVM, out scales, bias.

        The backward pass uses the tile's analog backward; the pair ``(x, d)`` is recorded
        for the analog optimizer, which calls :meth:`update`. When the tile is indexed
        (:meth:`set_indexed`), the input is an image batch.

        Args:
            x_input: ``[..., in_size]`` (``[in_size, N]`` with ``in_trans``), or
                ``[N, C, *spatial]`` when indexed.

        Returns:
            ``[..., out_size]`` (``[out_size, N]`` with ``out_trans``), or
            ``[N, out_size, *out_spatial]`` when indexed; in the dtype of ``x_input``
            (computed in the tile's float32).

        Raises:
            TypeError: ``x_input`` is not a floating-point tensor.
            ValueError: a meta tensor, a wrong shape, or (training mode only) NaN/inf
                values. In eval mode the DAC clips ``±inf`` at ``±inp_bound`` and a NaN
                makes the outputs of its row NaN (docs/robustness.md).
        """
        check_tensor("x_input", x_input, finite=self.training)
        self.analog_ctx.analog_tile = self
        indexed = self.is_indexed()
        x = self.apply_input_range(x_input, update_from_data=self.training)
        needs_graph = torch.is_grad_enabled() and (x.requires_grad
                                                   or self.analog_ctx.requires_grad)
        if needs_graph:
            y = AnalogFunction.apply(self.analog_ctx, x, self, indexed)
        elif indexed:
            y = self.joint_forward_indexed(x, is_test=not self.training)
        else:
            y = self.joint_forward(x, is_test=not self.training)
        view = out_view(y.ndim, self.out_trans, indexed)
        y = self.apply_out_scaling(y, view)
        if self.bias is not None:
            y = y + self.bias.view(view)
        return y if y.dtype == x_input.dtype else y.to(x_input.dtype)

    # ------------------------------------------------------------------ optimizer glue
    def record_update(self, x: Tensor, d: Tensor, indexed: bool) -> None:
        """Remember one ``(x, d)`` pair for :meth:`apply_pending_updates`."""
        self._pending.append((x, d, indexed))

    def clear_pending_updates(self) -> None:
        """Forget recorded ``(x, d)`` pairs."""
        self._pending = []

    def apply_pending_updates(self) -> None:
        """Apply and clear the updates recorded by backward passes (called by the optimizer)."""
        pending, self._pending = self._pending, []
        for x, d, _ in pending:  # all or nothing: one NaN gradient rejects the whole step
            check_finite("d_input", d)
            check_finite("x_input", x)
        for x, d, indexed in pending:
            if indexed:
                self.update_indexed(x, d)
            else:
                self.update(x, d)

    # ------------------------------------------------------------------ weights
    def set_weights(
        self,
        weight: Tensor,
        bias: Tensor | None = None,
        apply_weight_scaling: bool = True,
        realistic: bool = False,
        weight_scaling_omega: float | None = None,
    ) -> None:
        """Set the tile weights (and bias).

        With ``apply_weight_scaling`` the mapping scales are computed from the weights
        (see :meth:`apply_weight_scaling`) and the array holds ``W / alpha``; otherwise the
        weights are written as they are (normalized units) and the scales stay.

        Args:
            weight: ``[out_size, in_size]`` logical weights.
            bias: ``[out_size]`` bias (digital or analog column); None keeps the current
                bias; ignored when the tile has no bias.
            apply_weight_scaling: compute and set the mapping scales.
            realistic: program the weights with :meth:`program_weights` afterwards.
            weight_scaling_omega: omega (default from the mapping parameters).

        Raises:
            TypeError, ValueError: on bad arguments; the tile is then left unchanged.
        """
        weight = check_tensor("weight", weight, (self.out_size, self.in_size))
        has_bias = self.digital_bias or self.analog_bias
        if bias is not None and has_bias:
            bias = check_tensor("bias", bias, (self.out_size,))
        omega = self._omega(weight_scaling_omega)
        dtype, device = self.analog_core.weight.dtype, self.device
        combined = weight.detach().to(dtype=dtype, device=device)
        if self.analog_bias:
            col = (bias.detach().to(dtype=dtype, device=device) if bias is not None
                   else self._logical_analog_bias())
            combined = torch.cat([combined, col.reshape(-1, 1)], dim=1)
        if apply_weight_scaling:
            columnwise = self.rpu_config.mapping.weight_scaling_columnwise
            alpha = mapping_scales(combined, omega, columnwise)
            array = combined / alpha.reshape(-1, 1)
            self.set_scales(alpha)
        else:
            array = combined
        self.analog_core.set_weights(array)
        self.reference_weight = array.clone()
        if self.digital_bias and bias is not None and self.bias is not None:
            with torch.no_grad():
                self.bias.copy_(bias.detach().to(self.bias.dtype))
        self._emit("weights_set")
        if realistic:
            self.program_weights()

    def _logical_analog_bias(self) -> Tensor:
        scales = self.get_scales()
        assert scales is not None
        return self.analog_core.weight[:, -1] * scales.to(self.device)

    def get_weights(self, apply_weight_scaling: bool = True, realistic: bool = False
                    ) -> tuple[Tensor, Tensor | None]:
        """Get the tile weights (and bias) as CPU detached copies.

        Args:
            apply_weight_scaling: return logical weights (all scales applied); False: the
                normalized conductance-unit weights on the array.
            realistic: read the weights with :meth:`read_weights` instead of copying them.

        Returns:
            ``(weight [out_size, in_size], bias [out_size] or None)``. A digital bias is
            returned as it is; an analog bias column is scaled like the weights.
        """
        if realistic:
            return self.read_weights(apply_weight_scaling=apply_weight_scaling)
        array = self.analog_core.weight.detach()
        if apply_weight_scaling:
            scales = self.get_scales()
            assert scales is not None
            array = array * scales.reshape(-1, 1)
        return self._split(array)

    def _split(self, combined: Tensor) -> tuple[Tensor, Tensor | None]:
        combined = combined.detach().to("cpu", copy=True)
        if self.analog_bias:
            return combined[:, :-1].contiguous(), combined[:, -1].contiguous()
        bias = self.bias.detach().to("cpu", copy=True) if self.bias is not None else None
        return combined, bias

    def remap_weights(self, weight_scaling_omega: float | None = 1.0) -> None:
        """Get the logical weights and set them again with weight scaling ``omega``.

        Args:
            weight_scaling_omega: omega (None: the mapping parameters' value).
        """
        weight, bias = self.get_weights(apply_weight_scaling=True)
        self.set_weights(weight, bias, apply_weight_scaling=True,
                         weight_scaling_omega=weight_scaling_omega)

    def post_update_step(self) -> None:
        """Once-per-step maintenance, called by :class:`~anatile.nn.AnalogSGD` after each step.

        With a config that has aihwkit's ``clip`` and ``remap`` settings
        (:class:`~anatile.config.InferenceRPUConfig`), the array weights are clipped, then
        remapped into the scales, as aihwkit's inference tile does; otherwise nothing.
        """
        post_update_step(self)

    def get_hidden_parameters(self) -> OrderedDict[str, Tensor]:
        """The per-device parameters under aihwkit's names (see
        :meth:`AnalogCore.get_hidden_parameters`); empty without a pulsed device."""
        return self.analog_core.get_hidden_parameters()

    def set_hidden_parameters(self, ordered_parameters: Mapping[str, Tensor]) -> None:
        """Set the per-device parameters (names and shapes of :meth:`get_hidden_parameters`).

        Raises:
            TileError: on other names; ValueError, TypeError: on bad tensors.
        """
        self.analog_core.set_hidden_parameters(ordered_parameters)

    def _logical_eval_forward(self, x: Tensor) -> Tensor:
        """Eval-mode forward of ``[N, in_size]`` rows (never transposed), without the bias.

        Input range clipping, the hooks (so subclasses' eval periphery, e.g. drift
        compensation, is included) and the learned out scales.
        """
        with torch.no_grad():
            if self.input_range is not None:
                x = torch.minimum(torch.maximum(x, -self.input_range), self.input_range)
            y = self._forward_rows(x, is_test=True)
            if self.learned_out_scales is not None:
                y = y * self.learned_out_scales.reshape(1, -1)
            return y

    def read_weights(
        self,
        apply_weight_scaling: bool = False,
        x_values: Tensor | None = None,
        over_sampling: int = 10,
    ) -> tuple[Tensor, Tensor | None]:
        """Estimate the weights from eval forward passes by least squares.

        Drives ``over_sampling · in_size`` standard-normal inputs (or ``x_values``) through
        the eval forward pass with all IO non-idealities, subtracts the digital bias and
        solves ``torch.linalg.lstsq``.

        Args:
            apply_weight_scaling: return the logical weights (scales applied); False
                divides the scales out (normalized conductance units).
            x_values: ``[N, in_size]`` inputs (not transposed); default random normal.
            over_sampling: number of random inputs per input dimension.

        Returns:
            ``(weight [out_size, in_size], bias or None)`` on CPU.

        Raises:
            TypeError, ValueError: on bad ``x_values`` / ``over_sampling``.
        """
        core = self.analog_core
        weight, bias = read_weights_lstsq(
            self._logical_eval_forward, self.in_size, x_values, over_sampling, self.generator,
            core.weight.dtype, self.device, with_bias=self.analog_bias)
        if not apply_weight_scaling:
            scales = self.get_scales()
            assert scales is not None
            weight = weight / scales.reshape(-1, 1)
            if bias is not None:
                bias = bias / scales.reshape(-1)
        weight = weight.to("cpu")
        if bias is not None:
            bias = bias.to("cpu")
        elif self.bias is not None:
            bias = self.bias.detach().to("cpu", copy=True)
        self._emit("weights_read", weight=weight, bias=bias)
        return weight, bias

    def default_programming(self) -> ProgrammingStrategy:
        """The programming strategy of a new tile (closed loop for this class)."""
        return ClosedLoopProgramming()

    def program_weights(
        self,
        from_reference: bool = True,
        x_values: Tensor | None = None,
        learning_rate: float = 0.1,
        max_iter: int = 10000,
        tolerance: float | None = 0.01,
        w_init: float | Tensor = 0.01,
        *,
        callback: ProgressCallback | None = None,
        **options: Any,
    ) -> None:
        """Program the target weights onto the devices with the tile's :attr:`programming`.

        Target: the reference weights (last :meth:`set_weights`) when ``from_reference``
        and one exists, else the current weights. A :class:`TileWithPeriphery` programs in
        closed loop (:class:`~anatile.tiles.programming.ClosedLoopProgramming`: starting
        from ``w_init``, repeat eval MVM of ``x_values``, error against the target outputs,
        pulsed update with ``learning_rate``, until ``mean|error| / max|target output|`` is
        below ``tolerance`` or ``max_iter`` updates were done); an
        :class:`~anatile.tiles.InferenceTile` through its noise model
        (:class:`~anatile.tiles.programming.NoiseModelProgramming`). The closed loop's
        outcome is stored in ``last_programming`` and emitted as a ``"programmed"``
        event; each iteration emits ``"programming_progress"`` and calls
        ``callback(iteration, max_iter, error)`` (a callback or subscriber returning True,
        or raising StopIteration, stops early).

        Args:
            from_reference: program the reference weights (else the current weights).
            x_values: closed loop: ``[N, in_size]`` inputs (or ``[N, in_size + 1]``
                including the analog bias input); default the identity.
            learning_rate: closed loop: update learning rate (> 0), divided by the largest
                eigenvalue of ``xᵀx`` (1 for the identity) so that it is independent of
                ``x_values``.
            max_iter: closed loop: maximal number of updates (>= 1).
            tolerance: closed loop: relative error to reach; None runs all ``max_iter``
                updates.
            w_init: closed loop: start weights: uniform in ``[−w_init, w_init]`` or a
                tensor ``[out_size, in_size (+1)]`` in normalized conductance units.
            callback: progress callback.
            **options: further options of the strategy, e.g. ``noise_model`` and
                ``generator`` of an inference tile's noise-model programming.

        Raises:
            TypeError, ValueError: on bad arguments, or an argument the strategy does not
                take (nothing is changed then; every argument is checked before the first
                random draw).
            BaseException: whatever a callback or subscriber raises (KeyboardInterrupt
                included) propagates after the array and the generator were restored to
                their state before the call (a note on the exception and a log warning say
                so); :attr:`last_programming` then still describes the previous run.
        """
        strategy = self.programming.for_call(
            x_values=x_values, learning_rate=learning_rate, max_iter=max_iter,
            tolerance=tolerance, w_init=w_init, **options)
        strategy.check(self.in_size, self.analog_core)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable, got {type(callback).__name__}")
        core = self.analog_core
        if from_reference and self.reference_weight is not None:
            target = self.reference_weight.detach().clone()
        else:
            target = core.weight.detach().clone()

        def progress(iteration: int, max_iter: int, error: float) -> bool:
            stop = self._emit("programming_progress", iteration=iteration, max_iter=max_iter,
                              error=error)
            if callback is not None:
                try:
                    stop = (callback(iteration, max_iter, error) is True) or stop
                except StopIteration:
                    stop = True
            return stop

        generator = strategy.random_source(self.generator)
        context = ProgrammingContext(target, self.in_size, core, generator, self.rpu_config,
                                     progress)
        array, random_state = core.weight.detach().clone(), generator.get_state()
        try:
            outcome = strategy.program(context)
        except BaseException as err:
            # a callback or subscriber raised (KeyboardInterrupt from a notebook included):
            # put the array and the generator back as they were before this call, so that
            # they and last_programming (which still describes the previous run) stay
            # consistent, and a rerun draws the same numbers
            core.set_weights(array)
            generator.set_state(random_state)
            note = ("program_weights interrupted: the array (and the generator) were restored "
                    "to their state before the call; last_programming is unchanged")
            _log.warning(note)
            if hasattr(err, "add_note"):
                err.add_note(note)
            raise
        self._record_programming(strategy, context, outcome)

    def _record_programming(
        self, strategy: ProgrammingStrategy, context: ProgrammingContext, outcome: Any
    ) -> None:
        """Keep the outcome of ``strategy`` (here: the closed loop's report)."""
        self.last_programming = outcome
        self._emit("programmed", report=outcome)

    # ------------------------------------------------------------------ indexed
    def is_indexed(self) -> bool:
        """Whether an index matrix for convolutions has been set."""
        return self.indices is not None

    def set_indexed(self, indices: Tensor, image_sizes: Sequence[int]) -> None:
        """Set the index matrix for convolutions and switch to the indexed passes.

        Args:
            indices: ``[in_size, L]`` integer im2col index matrix: 1-based positions in the
                flattened image ``[C·spatial]``, 0 for padding.
            image_sizes: ``[C, L_in, L_out]`` (1D), ``[C, H, W, H_out, W_out]`` (2D) or
                ``[C, D, H, W, D_out, H_out, W_out]`` (3D).

        Raises:
            ValueError: on image sizes of another length or inconsistent indices.
            TypeError: on non-integer indices or sizes.
            TileError: if the tile uses transposed inputs or outputs.
        """
        if self.in_trans or self.out_trans:
            raise TileError("set_indexed: not supported for tiles with in_trans/out_trans")
        indices, sizes = self.indexing.check(indices, image_sizes)
        self.indices = indices.to(self.device).clone()
        self.indexing.image_sizes = sizes

    def joint_forward_indexed(self, x_input: Tensor, is_test: bool = False,
                              ctx: Any = None) -> Tensor:
        """Forward pass of a convolution (im2col gather, :meth:`joint_forward`, reshape).

        Args:
            x_input: ``[N, C, *spatial_in]`` images.
            is_test: eval mode.
            ctx: autograd context (unused).

        Returns:
            ``[N, out_size, *spatial_out]``.

        Raises:
            TileError: if :meth:`set_indexed` was not called.
            TypeError, ValueError: on a wrong input.
        """
        return self.indexing.forward(x_input, self.indices, self.analog_core.weight.dtype,
                                     lambda rows: self.joint_forward(rows, is_test, ctx))

    def backward_indexed(self, d_input: Tensor, ctx: Any = None) -> Tensor:
        """Backward pass of a convolution (transposed MVM, col2im scatter-add).

        Args:
            d_input: ``[N, out_size, *spatial_out]``.
            ctx: autograd context (unused).

        Returns:
            ``[N, C, *spatial_in]``.

        Raises:
            TileError: if :meth:`set_indexed` was not called.
            TypeError, ValueError: on a wrong input.
        """
        return self.indexing.backward(d_input, self.indices,
                                      lambda rows: self.backward(rows, ctx))

    def update_indexed(self, x_input: Tensor, d_input: Tensor) -> None:
        """Update pass of a convolution (all patches of the batch in one update).

        Args:
            x_input: ``[N, C, *spatial_in]``.
            d_input: ``[N, out_size, *spatial_out]``.

        Raises:
            TileError: if :meth:`set_indexed` was not called.
            TypeError, ValueError: on wrong inputs.
        """
        rows = self.indexing.input_rows(x_input, self.indices, self.analog_core.weight.dtype)
        self.update(rows, self.indexing.grad_rows(d_input, self.indices))

    # ------------------------------------------------------------------ devices
    def cpu(self) -> TileWithPeriphery:
        """Move all buffers (and the generator, re-seeded with ``seed``) to the CPU.

        Returns:
            self.
        """
        return super().cpu()

    def cuda(self, device: torch.device | str | int | None = None) -> TileWithPeriphery:
        """Move all buffers (and the generator, re-seeded with ``seed``) to CUDA.

        Args:
            device: CUDA device.

        Returns:
            self.
        """
        return super().cuda(torch.device("cuda", device) if isinstance(device, int)
                            else None if device is None else torch.device(device))

    def _apply(self, fn: Any, recurse: bool = True) -> TileWithPeriphery:
        super()._apply(fn, recurse)
        if self.generator.device != self.device:
            self._new_generator(self.device)
        if self.indices is not None:
            self.indices = self.indices.to(torch.int64)
        return self

    # ------------------------------------------------------------------ persistence
    def get_extra_state(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "generator_state": self.generator.get_state(),
            "generator_device": str(self.generator.device),
            "learning_rate": self._learning_rate,
            "image_sizes": self.image_sizes,
        }

    def _state_entries(self) -> dict[str, Entry]:
        """Every tensor this tile's state dict may hold (see :mod:`anatile.tiles.state`)."""
        return tile_entries(self)

    def _check_extra_state(self, state: Any) -> None:
        check_tile_extra_state(self, state)

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._check_extra_state(state)  # all of it (a subclass's part too) before any change
        self.seed = int(state["seed"])
        self._learning_rate = float(state["learning_rate"])
        sizes = state.get("image_sizes")
        self.indexing.image_sizes = None if sizes is None else [int(v) for v in sizes]
        if state.get("generator_device") == str(self.generator.device):
            self.generator.set_state(state["generator_state"])
        else:
            self._new_generator(self.device)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        # all checks first (own tensors, the core's, the extra state): a failed load
        # raises here and leaves the tile bit-identical
        strict = bool(args[1]) if len(args) > 1 else bool(kwargs.get("strict", True))
        check_state_dict(self, state_dict, prefix, strict)
        self._match_slots(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _match_slots(self, state_dict: dict[str, Any], prefix: str) -> None:
        """Make optional and size-adaptive tensors match the (already checked) state."""
        match_optional_slots(self, state_dict, prefix, self.device,
                             optional=("reference_weight", "indices"),
                             resizable=("mapping_scales", "learned_out_scales"))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_generator_state"] = generator_state(state.pop("generator"))
        state["_pending"] = []
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        device, gen_state = state.pop("_generator_state")
        super().__setstate__(state)
        self.generator = restore_generator(device, gen_state)
        self.analog_ctx.analog_tile = self

    def extra_repr(self) -> str:
        return (f"out_size={self.out_size}, in_size={self.in_size}, "
                f"digital_bias={self.digital_bias}, analog_bias={self.analog_bias}, "
                f"seed={self.seed}")

