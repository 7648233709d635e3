"""What a user sees first in the MLflow UI: a model-training experiment with a runs-table view.

MLflow 3's UI opens an experiment as a GenAI overview (traces, token usage) unless it is
told otherwise, and its runs table shows no params or metrics until columns are picked by
hand. Two of the UI's own mechanisms fix both without a server-side change:

* the experiment tag ``mlflow.experimentKind`` and the URL parameter ``workflowType``
  select the model-training pages;
* a *shared view* is a JSON runs-table state stored in the experiment tag
  ``mlflow.sharedViewState.<key>`` and opened by the URL parameter ``viewStateShareKey``
  (what the UI's own "share view" button writes). Ours selects the sweep's key params and
  metrics as columns. Each study's trials are grouped under its parent run, which the UI
  shows collapsed (a shared view cannot expand rows).

The view-state schema is the UI's, not a public API; the browser test in
``tests/sweeps/cli/test_ui_browser.py`` checks that it still renders the columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Experiment

KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
SHARE_KEY = "sweeps"
VIEW_TAG = f"mlflow.sharedViewState.{SHARE_KEY}"
RUN_METRICS = ("val_accuracy", "test_accuracy", "epochs_trained", "best_val_accuracy")


def mark_model_training(client: MlflowClient, experiment_id: str) -> None:
    """Tags the experiment so the UI opens it on its runs, not on a GenAI overview."""
    experiment = client.get_experiment(experiment_id)
    if experiment.tags.get(KIND_TAG) != MODEL_TRAINING:
        client.set_experiment_tag(experiment_id, KIND_TAG, MODEL_TRAINING)


def save_sweep_view(
    client: MlflowClient,
    experiment_id: str,
    params: Iterable[str],
    metrics: Iterable[str] = RUN_METRICS,
) -> None:
    """Adds a study's columns to the experiment's runs-table view.

    Several studies may share one experiment, so the stored view is merged, never replaced.

    Args:
        client: The tracking store's client.
        experiment_id: The experiment the study logs into.
        params: Run params to show as columns (the searched ones).
        metrics: Run metrics to show as columns.
    """
    mark_model_training(client, experiment_id)
    state = _stored_view(client.get_experiment(experiment_id))
    columns = [f"params.`{name}`" for name in params] + [f"metrics.`{name}`" for name in metrics]
    selected = list(dict.fromkeys([*state.get("selectedColumns", []), *columns]))
    state["selectedColumns"] = selected
    client.set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(state))


def experiment_url(base_url: str, experiment: Experiment) -> str:
    """The UI address of ``experiment``'s runs table, in our view when it has one."""
    url = f"{base_url.rstrip('/')}/#/experiments/{experiment.experiment_id}/runs"
    url += "?workflowType=machine_learning"
    if VIEW_TAG in experiment.tags:
        url += f"&viewStateShareKey={SHARE_KEY}"
    return url


def _stored_view(experiment: Experiment) -> dict[str, Any]:
    try:
        state = json.loads(experiment.tags.get(VIEW_TAG, "{}"))
    except json.JSONDecodeError:  # edited by hand or by a future UI: start again
        return {}
    return state if isinstance(state, dict) else {}
