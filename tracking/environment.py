"""MLflow's process-wide settings: set once when a command starts, never by each ``Tracker``.

They are environment variables because that is how MLflow reads them; processes the command
starts (workers, trial processes, the UI's server) inherit them.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

# MLflow's defaults (7 retries, backoff factor 2, 120 s timeout) stall a trial for over four
# minutes per call when the server is gone; 4 retries at factor 1 wait about 15 s in all.
# A value the user set in the environment wins.
HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# MLflow prints "View run <name> at: <URI>/#/..." when a run ends, a password in the URI
# included. Any URI may hold one (a worker reads its URI from the study), and the commands
# print their own redacted links, so MLflow's is always off.
QUIET = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def configure_mlflow(environ: MutableMapping[str, str] = os.environ) -> None:
    """Bounds MLflow's HTTP retries (unless the user set them) and silences its run URLs."""
    for name, value in HTTP_BOUNDS.items():
        environ.setdefault(name, value)
    environ.update(QUIET)
