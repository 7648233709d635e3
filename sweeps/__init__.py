"""Everything Optuna: search spaces as data, studies, pruning, storages and the CLI.

The only layer that wires ``mnist_models`` (training) and ``tracking`` (MLflow) together.
"""

from sweeps.space import CategoricalParam, FloatParam, IntParam, ParamSpec, SearchSpace
from sweeps.study import SweepSettings, run_sweep
from sweeps.sweep_config import SweepConfig

__all__ = [
    "CategoricalParam",
    "FloatParam",
    "IntParam",
    "ParamSpec",
    "SearchSpace",
    "SweepConfig",
    "SweepSettings",
    "run_sweep",
]
