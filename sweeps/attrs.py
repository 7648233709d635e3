"""Names of what a study stores about itself (Optuna study user attributes).

A joining ``worker`` and the ``report`` command read these, so they need no config file.
"""

CONFIG_ATTR = "sweep_config"  # the SweepConfig the study searches (fixed + space)
TARGET_ATTR = "trials_target"  # finished trials the study should hold in total
TRACKING_ATTR = "mlflow"  # {"experiment", "tracking_uri"} (no URI when it holds a password)
SAMPLER_ATTR = "sampler"  # the sampler the study searches with now (tpe, grid, ...)
