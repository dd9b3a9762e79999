"""Weight Programming Optimizer: find the conductance programming strategy that keeps
weights faithful under PCM programming noise, drift and read noise (Mackin et al. 2022).

Public names follow aihwkit's ``aihwkit.inference.converter.wpo``.
"""

from anatile.wpo.encoding import (
    SearchSpace,
    decode_batch,
    denormalize,
    encode,
    partition_parameters,
    reformat_x_g,
    span_of_remaining_pairs,
)
from anatile.wpo.events import (
    BaselineMeasured,
    GenerationFinished,
    OptimizerFinished,
    OptimizerStarted,
)
from anatile.wpo.loss import BatchedObjective, LossContext, loss_fxn, loss_rpu_config, loss_weights
from anatile.wpo.optimizer import GenerationRecord, WeightProgrammingOptimizer, WPOResult
from anatile.wpo.options import WPOOptions, stop_criterion
from anatile.wpo.progress import TqdmProgress
from anatile.wpo.sampling import downsample_weight_distribution, shuffle_weights

__all__ = [
    "BaselineMeasured",
    "BatchedObjective",
    "GenerationFinished",
    "GenerationRecord",
    "LossContext",
    "OptimizerFinished",
    "OptimizerStarted",
    "SearchSpace",
    "TqdmProgress",
    "WPOOptions",
    "WPOResult",
    "WeightProgrammingOptimizer",
    "decode_batch",
    "denormalize",
    "downsample_weight_distribution",
    "encode",
    "loss_fxn",
    "loss_rpu_config",
    "loss_weights",
    "partition_parameters",
    "reformat_x_g",
    "shuffle_weights",
    "span_of_remaining_pairs",
    "stop_criterion",
]
