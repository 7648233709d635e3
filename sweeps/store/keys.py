"""Names of what a study stores about itself (Optuna study user attributes).

A joining ``worker`` and the ``report`` command read these, so they need no config file.
"""

CONFIG_ATTR = "sweep_config"  # the SweepConfig the study searches (fixed + space)
TARGET_ATTR = "trials_target"  # finished trials the study should hold in total
TRACKING_ATTR = "mlflow"  # {"experiment", "tracking_uri"} (no URI when it holds a password)
SAMPLER_ATTR = "sampler"  # the sampler the study searches with now (tpe, grid, ...)

# Trial user attributes of a trial trained more than once (``sweep.repeats`` > 1); its value
# is the mean of VAL_REPEATS_ATTR. Repeat r of every trial used REPEAT_SEEDS_ATTR[r].
REPEAT_SEEDS_ATTR = "repeat_seeds"  # [seed of repeat 0, 1, ...]
VAL_REPEATS_ATTR = "val_accuracy_repeats"  # validation accuracy of each repeat trained
TEST_REPEATS_ATTR = "test_accuracy_repeats"  # test accuracy of each repeat trained
