"""The names the product stores under: Optuna study and trial attributes, and the tags that
tie an MLflow run to its study and trial. One name each; every reader and writer uses these.

A joining ``worker`` and the ``report`` command read the study's, so they need no config file.
"""

from tracking.tags import ROLE_TAG, STUDY_ROLE

CONFIG_ATTR = "sweep_config"  # the SweepConfig the study searches (fixed + space)
TARGET_ATTR = "trials_target"  # finished trials the study should hold in total
TRACKING_ATTR = "mlflow"  # {"experiment", "tracking_uri"} (no URI when it holds a password)
SAMPLER_ATTR = "sampler"  # the sampler the study searches with now (tpe, grid, ...)
OBJECTIVE_ATTR = "objective"  # the metric the study maximises (val_accuracy)

# Trial user attributes of a trial trained more than once (``sweep.repeats`` > 1); its value
# is the mean of VAL_REPEATS_ATTR. Repeat r of every trial used REPEAT_SEEDS_ATTR[r].
REPEAT_SEEDS_ATTR = "repeat_seeds"  # [seed of repeat 0, 1, ...]
VAL_REPEATS_ATTR = "val_accuracy_repeats"  # validation accuracy of each repeat trained
TEST_REPEATS_ATTR = "test_accuracy_repeats"  # test accuracy of each repeat trained

# Trial user attributes.
TRIAL_CONFIG_ATTR = "config"  # the trial's resolved TrainConfig, as a dict
TEST_ACCURACY_ATTR = "test_accuracy"  # its test accuracy (the value is validation accuracy)
EPOCHS_TRAINED_ATTR = "epochs_trained"  # epochs it trained before ending (or being stopped)
RUN_ID_ATTR = "mlflow_run_id"  # the trial's MLflow run
WORKER_ATTR = "worker"  # host:pid of the worker process that ran the trial
RETRY_OF_ATTR = "retry_of"  # a re-queued trial: the number of the trial it re-runs
RETRY_COUNT_ATTR = "retry_count"  # ... and how many times its params have been re-queued
SURPLUS_ATTR = "surplus"  # asked for after the budget was taken (a race): ended, not trained
MLFLOW_ERROR_ATTR = "mlflow_error"  # what MLflow failed to log for the trial (it still counts)

# MLflow tags of a sweep's runs.
STUDY_TAG = "optuna.study"
TRIAL_TAG = "optuna.trial"
STATE_TAG = "optuna.state"  # the trial's Optuna state: RUNNING, COMPLETE, PRUNED, FAIL
SAMPLER_TAG = "optuna.sampler"  # on the parent run: the sampler it searches with now
STORAGE_TAG = "optuna.storage"  # on the parent run: where the study is (never a password)
RETRY_OF_TAG = "optuna.retry_of"  # a re-run trial's run: the number of the trial it re-runs
REPRODUCES_TAG = "reproduces"  # a `reproduce` run: the run it re-trains


def parent_run_tags(study_name: str) -> dict[str, str]:
    """The tags that find a study's single parent run."""
    return {STUDY_TAG: study_name, ROLE_TAG: STUDY_ROLE}
