"""The mnist-sweep CLI: help for every flag, and bad input rejected before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sweeps.cli.main import build_parser, main


def _flags(parser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}


@pytest.mark.parametrize(
    "command", ["sweep", "train", "worker", "studies", "best", "reproduce", "report", "ui"]
)
def test_help_describes_every_flag(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    sub = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{command} {action.option_strings} has no help"
    for flag in _flags(sub):
        assert flag in text


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "mnist-sweep"
    if not script.exists():
        pytest.skip("project not installed as a package in this interpreter")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "sweep" in out.stdout and "train" in out.stdout


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "--set", "lr=0"], "lr=0.0: expected > 0"),
        (["train", "--set", "mlp.width=3"], "unknown key 'mlp.width'"),
        (["train", "--set", "lr"], "expected KEY=VALUE"),
        (["train", "--epochs", "0"], "epochs=0: expected >= 1"),
        (["train", "--train-size", "1"], "data.train_size=1: expected >= 2"),
        (["train", "--epochs", "2", "--set", "epochs=3"], "--epochs conflicts with --set epochs"),
        (["sweep", "--trials", "0"], "--trials 0: expected >= 1"),
        (["sweep", "--config", "does-not-exist.toml"], "does-not-exist.toml: file not found"),
        (["sweep", "--storage", "nosuch://u:pw@h/db"], "expected a database URL"),
    ],
)
def test_bad_input_exits_2_with_one_line_before_any_work(
    argv: list[str],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert expected in err, err
    assert len(err.splitlines()) == 1, err
    assert "pw" not in err
    assert list(tmp_path.iterdir()) == [], "nothing may be written on bad input"


def test_unknown_model_is_rejected_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["train", "--model", "resnet"])
    assert exited.value.code == 2
    assert "invalid choice: 'resnet'" in capsys.readouterr().err


def test_config_model_conflict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.toml"
    path.write_text('model = "cnn"\n')
    assert main(["train", "--model", "mlp", "--config", str(path)]) == 2
    assert "--model mlp conflicts with model = 'cnn'" in capsys.readouterr().err
    path.write_text('model = "resnet"\n')
    assert main(["train", "--config", str(path)]) == 2
    assert "model='resnet': expected one of" in capsys.readouterr().err


def test_too_large_a_slice_fails_before_any_record(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mnist_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["sweep", "--train-size", "70000", "--data-dir", str(mnist_dir)])
    assert code == 1
    assert "data.train_size=70000: mnist has only 60000" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
