"""SIGTERM and SIGHUP (schedulers, containers, systemd, a closed terminal) end every command the
way Ctrl-C does, and nothing the product started outlives it, not even a SIGKILL."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import termios
import threading
import time
from pathlib import Path

import optuna
import pytest
from helpers.checks import finish, runs_of, wait_for_a_trial_midway
from helpers.cli import cli_command, cli_env, start_cli, wait_for_ui
from mlflow import MlflowClient
from optuna.trial import TrialState

from sweeps.store.keys import WORKER_ATTR
from tracking.server import free_port

pytestmark = pytest.mark.fault

EPOCHS = 60  # a few seconds a trial: long enough to be stopped in the middle


def _sweep_args(work: Path, study: str, trials: int) -> list[str]:
    return [
        *("sweep", "--model", "mlp", "--study", study, "--trials", str(trials)),
        *("--storage", f"sqlite:///{work / 'optuna.db'}"),
        *("--tracking-uri", f"sqlite:///{work / 'mlflow.db'}"),
        *("--pruner", "none", "--train-size", "3000", "--epochs", str(EPOCHS)),
        *("--set", "data.test_size=500", "--set", "mlp.hidden_sizes=[64]"),
    ]


def _last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_until(check, what: str, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def _assert_stopped_cleanly(work: Path, study: str, reason: str) -> optuna.trial.FrozenTrial:
    """The stopped trial is FAIL with its params queued again; no run is left RUNNING; the trial's
    run is KILLED with ``reason``; the parent run is ended. Returns the stopped trial."""
    trials = optuna.load_study(study_name=study, storage=f"sqlite:///{work / 'optuna.db'}").trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    (stopped,) = [t for t in trials if t.state == TrialState.FAIL]
    (queued,) = [t for t in trials if t.state == TrialState.WAITING]
    assert queued.system_attrs["fixed_params"] == stopped.params
    runs = {r.info.run_id: r for r in runs_of(work, study)}
    assert all(r.info.status != "RUNNING" for r in runs.values())
    cut = runs[stopped.user_attrs["mlflow_run_id"]]
    assert (cut.info.status, cut.data.tags["failure_reason"]) == ("KILLED", reason)
    assert cut.data.tags["optuna.state"] == "FAIL"
    return stopped


@pytest.mark.slow  # minutes on two cores: CI runs it in its `pytest -m slow` pass
def test_sigterm_stops_a_sweep_cleanly_and_the_resumed_sweep_matches_an_uninterrupted_one(
    tmp_path: Path, mnist_dir: Path
) -> None:
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    straight.mkdir()
    stopped.mkdir()
    finish(start_cli(_sweep_args(straight, "s", trials=3), straight, mnist_dir))

    process = start_cli(_sweep_args(stopped, "s", trials=3), stopped, mnist_dir)
    storage = f"sqlite:///{stopped / 'optuna.db'}"
    wait_for_a_trial_midway(storage, "s", process, after_complete=1, epochs=EPOCHS)
    process.send_signal(signal.SIGTERM)  # what a scheduler, docker stop or systemd sends
    output = finish(process, code=128 + signal.SIGTERM)
    assert "Traceback" not in output
    assert _last_line(output) == "stopped by SIGTERM; re-run the same command to resume"
    _assert_stopped_cleanly(stopped, "s", "interrupted by SIGTERM")
    parent = next(r for r in runs_of(stopped, "s") if r.data.tags["mnist_sweeps.role"] == "study")
    assert parent.info.status == "KILLED"

    finish(start_cli(_sweep_args(stopped, "s", trials=3), stopped, mnist_dir))  # resume

    def finished(work: Path) -> list[tuple[dict, float | None]]:
        study = optuna.load_study(study_name="s", storage=f"sqlite:///{work / 'optuna.db'}")
        done = study.get_trials(states=(TrialState.COMPLETE,))
        return [(t.params, t.value) for t in sorted(done, key=lambda t: t.number)]

    reference = finished(straight)
    assert len(reference) == 3
    assert finished(stopped) == reference, "the same params, in order, and the same results"
    params = [tuple(sorted(p.items())) for p, _ in reference]
    assert len(set(params)) == 3, "no configuration was proposed twice"


def _take_terminal() -> None:
    """In the child: make the pty on stdin its controlling terminal (it leads a new session)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.mark.slow  # minutes on two cores: CI runs it in its `pytest -m slow` pass
def test_closing_the_terminal_stops_a_sweep_cleanly(tmp_path: Path, mnist_dir: Path) -> None:
    """A real hang-up: the sweep runs on a pseudo-terminal that is then closed."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        cli_command(_sweep_args(tmp_path, "hup", trials=3)),
        cwd=tmp_path,
        env=cli_env(mnist_dir),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=_take_terminal,
    )
    os.close(slave)
    shown: list[bytes] = []
    closing = threading.Event()

    def drain() -> None:  # a terminal that nobody reads stops its writer when it fills up
        while not closing.is_set():
            if select.select([master], [], [], 0.1)[0]:
                try:
                    shown.append(os.read(master, 65536))
                except OSError:
                    return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        storage = f"sqlite:///{tmp_path / 'optuna.db'}"
        wait_for_a_trial_midway(storage, "hup", process, after_complete=1, epochs=EPOCHS)
    finally:
        closing.set()
        reader.join()
        os.close(master)  # the terminal window closes: the kernel sends SIGHUP
    try:
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 128 + signal.SIGHUP, b"".join(shown).decode(errors="replace")[-3000:]
    _assert_stopped_cleanly(tmp_path, "hup", "interrupted by SIGHUP")


def _two_workers_midway(
    work: Path, mnist_dir: Path, study: str
) -> tuple[subprocess.Popen[str], str, set[int]]:
    """A `--workers 2` sweep with a trial midway: (its process, its storage, worker pids)."""
    process = start_cli([*_sweep_args(work, study, trials=4), "--workers", "2"], work, mnist_dir)
    storage = f"sqlite:///{work / 'optuna.db'}"
    wait_for_a_trial_midway(storage, study, process, after_complete=1, epochs=EPOCHS)
    workers: set[int] = set()

    def both_workers_seen() -> bool:
        # A worker asks for its trial and then tags it: a trial just asked for has no tag yet.
        trials = optuna.load_study(study_name=study, storage=storage).trials
        tagged = [t.user_attrs[WORKER_ATTR] for t in trials if WORKER_ATTR in t.user_attrs]
        workers.update(int(str(tag).rsplit(":", 1)[1]) for tag in tagged)
        return len(workers) >= 2

    _wait_until(both_workers_seen, "two workers ran trials")
    assert len(workers) == 2 and process.pid not in workers
    return process, storage, workers


def test_sigterm_stops_every_worker_process_and_each_closes_its_trial(
    tmp_path: Path, mnist_dir: Path
) -> None:
    process, storage, workers = _two_workers_midway(tmp_path, mnist_dir, "wterm")
    process.send_signal(signal.SIGTERM)
    output = finish(process, code=128 + signal.SIGTERM)
    assert _last_line(output) == "stopped by SIGTERM; re-run the same command to resume"
    assert not [pid for pid in workers if _alive(pid)], "a worker outlived the sweep"
    trials = optuna.load_study(study_name="wterm", storage=storage).trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    stopped = [t for t in trials if t.state == TrialState.FAIL]
    assert 1 <= len(stopped) <= 2
    assert len([t for t in trials if t.state == TrialState.WAITING]) == len(stopped)
    runs = {r.info.run_id: r for r in runs_of(tmp_path, "wterm")}
    assert all(r.info.status != "RUNNING" for r in runs.values())
    for trial in stopped:
        run = runs[trial.user_attrs["mlflow_run_id"]]
        assert run.data.tags["failure_reason"] == "interrupted by SIGTERM"


def test_workers_stop_themselves_cleanly_when_the_sweep_is_killed(
    tmp_path: Path, mnist_dir: Path
) -> None:
    process, storage, workers = _two_workers_midway(tmp_path, mnist_dir, "wkill9")
    process.kill()  # SIGKILL: the sweep itself can clean nothing up
    process.communicate(timeout=60)
    _wait_until(lambda: not [pid for pid in workers if _alive(pid)], "workers outlived the sweep")
    trials = optuna.load_study(study_name="wkill9", storage=storage).trials
    assert not [t for t in trials if t.state == TrialState.RUNNING], "each closed its trial"
    trial_runs = [
        r for r in runs_of(tmp_path, "wkill9") if r.data.tags["mnist_sweeps.role"] == "trial"
    ]
    assert all(r.info.status != "RUNNING" for r in trial_runs)


@pytest.mark.slow  # minutes on two cores: CI runs it in its `pytest -m slow` pass
def test_sighup_stops_a_worker_cleanly(tmp_path: Path, mnist_dir: Path) -> None:
    finish(start_cli(_sweep_args(tmp_path, "join", trials=1), tmp_path, mnist_dir))
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = ["worker", "--study", "join", "--storage", storage, "--trials", "3"]
    process = start_cli(args, tmp_path, mnist_dir)
    wait_for_a_trial_midway(storage, "join", process, after_complete=1, epochs=EPOCHS)
    process.send_signal(signal.SIGHUP)
    output = finish(process, code=128 + signal.SIGHUP)
    assert _last_line(output) == "stopped by SIGHUP; re-run the same command to resume"
    _assert_stopped_cleanly(tmp_path, "join", "interrupted by SIGHUP")


def _running_run(client: MlflowClient, experiment: str) -> str | None:
    """The id of a RUNNING run of ``experiment`` that has logged two epochs, if any."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    for run in client.search_runs([found.experiment_id], "attributes.status = 'RUNNING'"):
        if len(client.get_metric_history(run.info.run_id, "val_accuracy")) >= 2:
            return str(run.info.run_id)
    return None


def _stop_midway(
    args: list[str], work: Path, mnist_dir: Path, experiment: str, signum: int
) -> tuple[str, str]:
    """Starts a command, signals it once its run has trained two epochs; (run id, output)."""
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    process = start_cli(args, work, mnist_dir)
    found: list[str] = []

    def started() -> bool:
        assert process.poll() is None, process.communicate()[0]
        run_id = _running_run(client, experiment)
        found.extend([run_id] if run_id else [])
        return bool(found)

    _wait_until(started, "no run trained two epochs", seconds=240)
    process.send_signal(signum)
    return found[0], finish(process, code=128 + signum)


def test_train_and_reproduce_end_their_run_killed_on_sigterm_and_sighup(
    tmp_path: Path, mnist_dir: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    train = [
        *("train", "--model", "mlp", "--epochs", "400", "--train-size", "3000"),
        *("--set", "data.test_size=500", "--set", "mlp.hidden_sizes=[64]"),
        *("--tracking-uri", store, "--experiment", "t"),
    ]
    run_id, output = _stop_midway(train, tmp_path, mnist_dir, "t", signal.SIGTERM)
    assert _last_line(output) == "stopped by SIGTERM; its MLflow run is marked KILLED"
    client = MlflowClient(store)
    run = client.get_run(run_id)
    assert (run.info.status, run.data.tags["failure_reason"]) == (
        "KILLED",
        "interrupted by SIGTERM",
    )

    again = ["reproduce", run_id, "--tracking-uri", store, "--experiment", "r"]
    copy_id, output = _stop_midway(again, tmp_path, mnist_dir, "r", signal.SIGHUP)
    assert _last_line(output) == "stopped by SIGHUP; its MLflow run is marked KILLED"
    copy = client.get_run(copy_id)
    assert copy.data.tags["reproduces"] == run_id
    assert (copy.info.status, copy.data.tags["failure_reason"]) == (
        "KILLED",
        "interrupted by SIGHUP",
    )


def _listening(port: int) -> bool:
    result = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True)
    return bool(result.stdout.strip())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_ui_stops_its_whole_server_on_sigterm_and_even_when_killed(
    tmp_path: Path, mnist_dir: Path, signum: int
) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(store).search_experiments()  # a store that exists, as `ui` requires
    port = free_port()
    process = start_cli(["ui", "--tracking-uri", store, "--port", str(port)], tmp_path, mnist_dir)
    shown = wait_for_ui(process)
    assert _listening(port), shown
    pattern = f"mlflow server .*--port {port}"
    started = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    assert started.stdout.split(), "the server runs"
    process.send_signal(signum)
    output, _ = process.communicate(timeout=60)
    if signum == signal.SIGTERM:
        assert process.returncode == 128 + signal.SIGTERM, output
        assert _last_line(output) == "stopped by SIGTERM; the MLflow UI is stopped"
    left = lambda: subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 1  # noqa: E731
    _wait_until(left, "a process of the UI outlived it", seconds=30)
    _wait_until(lambda: not _listening(port), "the port is still held", seconds=30)
