"""The tags the product sets on MLflow runs: one name each, read and written through these.

``ROLE_TAG`` says what a run is; the roles written by more than one module, or read back to find
a run, are named here too. Optuna's names (``optuna.study`` ...) belong to ``sweeps.store.keys``.
"""

ROLE_TAG = "mnist_sweeps.role"  # what a run is: study, trial, repeat, train, compare, variant, ...
FAILURE_TAG = "failure_reason"  # why a run ended early (diverged, interrupted, killed worker)
TRACKING_FAILURE_TAG = "tracking_failure"  # what MLflow failed to log while the run trained

STUDY_ROLE = "study"  # a sweep's parent run (found again by its study's name)
TRIAL_ROLE = "trial"  # one trial of a sweep
REPEAT_ROLE = "repeat"  # one seed of a configuration trained more than once
