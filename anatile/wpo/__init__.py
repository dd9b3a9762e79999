"""Weight Programming Optimizer: find the conductance programming strategy that keeps
weights faithful under PCM programming noise, drift and read noise (Mackin et al. 2022).

Public names follow aihwkit's ``aihwkit.inference.converter.wpo``. The optimizer has
scipy's solver shape: :class:`WPOProblem` (checked inputs), :class:`WPOObjective`
(``evaluate(x, *, common_noise, generator)``), the solver and polish steps
(:mod:`anatile.wpo.solver`, :mod:`anatile.wpo.polish`) and :class:`WPOResult`.
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
from anatile.wpo.loss import (
    BatchedObjective,
    LossContext,
    loss_fxn,
    loss_rpu_config,
    loss_weights,
    relative_loss,
    tnmse_from_loss,
)
from anatile.wpo.objective import WPOObjective
from anatile.wpo.optimizer import WeightProgrammingOptimizer
from anatile.wpo.options import WPOOptions, stop_criterion
from anatile.wpo.problem import WPOProblem
from anatile.wpo.progress import TqdmProgress
from anatile.wpo.result import GenerationRecord, WPOResult
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
    "WPOObjective",
    "WPOOptions",
    "WPOProblem",
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
    "relative_loss",
    "shuffle_weights",
    "span_of_remaining_pairs",
    "stop_criterion",
    "tnmse_from_loss",
]
