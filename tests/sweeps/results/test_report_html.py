"""``mnist-sweep report --output DIR``: one self-contained HTML page of a study."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from scipy import stats

from sweeps.cli import main
from sweeps.engine.session import SweepSettings, load_or_create_study
from sweeps.results.page import render_study_page, write_study_page
from sweeps.spec.sweep_file import SweepConfig
from sweeps.store.keys import REPEAT_SEEDS_ATTR, TEST_REPEATS_ATTR, TRACKING_ATTR, VAL_REPEATS_ATTR

PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """What a browser would fetch or show: every src/href, image data, table rows."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[bytes] = []
        self.rows: list[list[str]] = []
        self.best_rows = 0
        self._cells: list[str] | None = None
        self._in_cell = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for key in ("src", "href"):
            if found.get(key):
                self.links.append(found[key] or "")
        if tag == "img":
            prefix = "data:image/png;base64,"
            source = found.get("src") or ""
            self.images.append(base64.b64decode(source.removeprefix(prefix)))
        elif tag == "tr":
            self._cells = []
            self.best_rows += found.get("class") == "best"
        elif tag in ("td", "th") and self._cells is not None:
            self._cells.append("")
            self._in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._cells is not None:
            self.rows.append(self._cells)
            self._cells = None
        elif tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell and self._cells:
            self._cells[-1] += data


Repeats = dict[int, tuple[list[float], list[float]]]  # trial -> (val, test) accuracy per repeat


def _study(values: list[float], repeats: Repeats | None = None) -> optuna.Study:
    """Trials of ``values`` and a failed one; trial i in ``repeats`` was trained K > 1 times
    (its value is then the mean of its validation accuracies)."""
    study = optuna.create_study(study_name="page <&> test", direction="maximize")
    space = {
        "lr": FloatDistribution(1e-4, 1e-2, log=True),
        "augment": CategoricalDistribution([True, False]),
    }
    for i, value in enumerate(values):
        attrs = {"test_accuracy": value - 0.01, "mlflow_run_id": f"run{i}"}
        if repeats and i in repeats:
            val, test = repeats[i]
            value = float(np.mean(val))
            attrs |= {
                "test_accuracy": float(np.mean(test)),
                REPEAT_SEEDS_ATTR: list(range(len(val))),
                VAL_REPEATS_ATTR: val,
                TEST_REPEATS_ATTR: test,
            }
        study.add_trial(
            create_trial(
                value=value,
                params={"lr": 1e-3 * (i + 1), "augment": i % 2 == 0},
                distributions=space,
                intermediate_values={1: value - 0.05, 2: value},
                user_attrs=attrs,
            )
        )
    study.add_trial(
        create_trial(
            state=TrialState.FAIL, params={"lr": 2e-3, "augment": True}, distributions=space
        )
    )
    study.set_user_attr(
        TRACKING_ATTR, {"experiment": "mnist-mlp", "tracking_uri": "http://u:hunter2@h:5000"}
    )
    return study


def test_the_page_is_self_contained_and_shows_every_trial(tmp_path: Path) -> None:
    study = _study([0.91, 0.95, 0.93])
    path = write_study_page(study, tmp_path / "out", "postgresql://me:s3cret@db:5432/optuna")
    assert path == tmp_path / "out" / "page_test.html"
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert page.links and all(link.startswith("data:image/png;base64,") for link in page.links)
    assert "<script" not in text and "<link" not in text and "url(" not in text
    assert len(page.images) == 4  # history, importances, parallel coordinate, intermediate values
    assert all(image.startswith(PNG) and len(image) > 5000 for image in page.images)
    header, *rows = page.rows
    assert header[:3] == ["number", "state", "value"] and "lr" in header
    assert [row[1] for row in rows] == ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL"]
    assert [row[2] for row in rows[:3]] == ["0.91", "0.95", "0.93"]
    assert page.best_rows == 1
    assert "0.9500 (trial 1)" in text and "run1" in text
    assert "page &lt;&amp;&gt; test" in text  # escaped, not markup
    assert "s3cret" not in text and "hunter2" not in text
    assert "postgresql://me:***@db:5432/optuna" in text
    assert not list((tmp_path / "out").glob(".*partial"))


def test_a_study_without_finished_trials_still_gets_a_page() -> None:
    study = optuna.create_study(direction="maximize")
    text = render_study_page(study, "sqlite:///optuna.db", {})
    assert "No trials yet." in text and "<img" not in text
    assert re.search(r"<dt>best value</dt><dd>-</dd>", text)


@pytest.fixture
def stored_study(tmp_path: Path) -> str:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = _study([0.8, 0.85])
    copy = optuna.create_study(study_name="stored", storage=storage, direction="maximize")
    for trial in study.trials:
        copy.add_trial(trial)
    copy.set_user_attr(
        TRACKING_ATTR, {"experiment": "stored", "tracking_uri": f"sqlite:///{tmp_path / 'none.db'}"}
    )
    return storage


def test_report_output_needs_no_mlflow_store(
    stored_study: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "report",
        "--study",
        "stored",
        "--storage",
        stored_study,
        "--output",
        str(tmp_path / "html"),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().err
    assert "wrote " in out and "stored.html" in out
    assert "not logged to MLflow: --tracking-uri" in out
    assert Page((tmp_path / "html" / "stored.html").read_text()).best_rows == 1
    assert not (tmp_path / "none.db").exists()


def test_report_output_still_fails_on_a_named_missing_store_or_a_file(
    stored_study: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["report", "--study", "stored", "--storage", stored_study]
    named = [
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'other.db'}",
        "--output",
        str(tmp_path / "h"),
    ]
    assert main([*base, *named]) == 2
    assert "no such MLflow store" in capsys.readouterr().err
    assert not (tmp_path / "h").exists()  # refused before anything was written
    (tmp_path / "file").write_text("x")
    assert main([*base, "--output", str(tmp_path / "file")]) == 2
    assert "--output" in capsys.readouterr().err and (tmp_path / "file").read_text() == "x"


def _space_rows(text: str) -> list[list[str]]:
    """The rows of the page's search-space table, header first (nothing if it has none)."""
    section = re.search(r"<h2>Search space</h2>(.*?)<h2>", text, re.S)
    return Page(section.group(1)).rows if section else []


def test_the_page_shows_the_search_space_the_study_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    sweep = SweepConfig.for_model("mlp").with_overrides({"data.train_size": 500})
    load_or_create_study(sweep, SweepSettings(study="spaced", storage=storage))  # as `sweep` does
    argv = ["report", "--study", "spaced", "--storage", storage, "--output", str(tmp_path / "h")]
    assert main(argv) == 0, capsys.readouterr().err
    header, *rows = _space_rows((tmp_path / "h" / "spaced.html").read_text())
    assert header == ["parameter", "type", "range or choices", "log"]
    assert {row[0]: row[1:] for row in rows} == {
        "lr": ["float", "0.001 to 0.005", "true"],
        "batch_size": ["categorical", "64, 100, 128", ""],
        "dropout": ["float", "0.0 to 0.5", "false"],
        "augment": ["categorical", "false, true", ""],
    }


def test_a_grid_study_shows_its_grid_values(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    sweep = SweepConfig.from_file(Path(__file__).resolve().parents[3] / "sweeps" / "grid.toml")
    study = load_or_create_study(sweep, SweepSettings(study="grid", storage=storage))
    header, *rows = _space_rows(render_study_page(study, storage, {}))
    assert header == ["parameter", "type", "range or choices", "log", "grid"]
    assert rows == [
        ["lr", "float", "0.001 to 0.005", "true", "0.001, 0.005"],
        ["batch_size", "categorical", "64, 100, 128", "", ""],  # its choices are its grid
    ]
    assert "<dt>sampler</dt><dd>grid</dd>" in render_study_page(study, storage, {})


VAL, TEST = [0.97, 0.98, 0.975], [0.968, 0.972, 0.971]  # trial 1's repeats


def _half_width(values: list[float]) -> tuple[float, float, float]:
    """Mean, and low and high end of the 95% Student-t interval, from scipy."""
    low, high = stats.t.interval(0.95, len(values) - 1, np.mean(values), stats.sem(values))
    return float(np.mean(values)), float(low), float(high)


def _trials_table(text: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The trials table's header, and each row by trial number as {header: cell}."""
    header, *rows = Page(text.split("<h2>Trials</h2>")[1]).rows
    return header, {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def test_repeated_trials_show_mean_plus_minus_their_interval() -> None:
    text = render_study_page(_study([0.91, 0.0, 0.93], {1: (VAL, TEST)}), "sqlite:///o.db", {})
    header, rows = _trials_table(text)
    assert header[:5] == ["number", "state", "value", "value 95% CI", "repeats"]
    assert header[header.index("test_accuracy") + 1] == "test_accuracy 95% CI"
    mean, low, high = _half_width(VAL)
    assert rows["1"]["value"] == f"{mean:.4f} ± {(high - low) / 2:.4f}" == "0.9750 ± 0.0124"
    assert rows["1"]["value 95% CI"] == f"{low:.4f} to {high:.4f}" == "0.9626 to 0.9874"
    assert rows["1"]["repeats"] == "3"
    mean, low, high = _half_width(TEST)
    assert rows["1"]["test_accuracy"] == f"{mean:.4f} ± {(high - low) / 2:.4f}"
    assert rows["1"]["test_accuracy 95% CI"] == f"{low:.4f} to {high:.4f}"
    for number in ("0", "2", "3"):  # trained once, and the failed trial: nothing added
        row = rows[number]
        assert "±" not in "".join(row.values())
        assert row["value 95% CI"] == row["repeats"] == row["test_accuracy 95% CI"] == ""
    assert rows["0"]["value"] == "0.91" and rows["0"]["test_accuracy"] == "0.9"
    # The best trial is the repeated one: summary and details give its interval too.
    assert "<dt>best value</dt><dd>0.9750 ± 0.0124 (trial 1)</dd>" in text
    assert "<dt>val_accuracy 95% CI</dt><dd>0.9626 to 0.9874</dd>" in text
    assert "<dt>repeats</dt><dd>3</dd>" in text


def test_a_study_without_repeats_shows_no_interval_anywhere() -> None:
    text = render_study_page(_study([0.91, 0.95, 0.93]), "sqlite:///o.db", {})
    header, rows = _trials_table(text)
    assert not [h for h in header if "CI" in h or "repeat" in h or "std" in h]
    assert "±" not in text and " CI" not in text
    assert rows["1"]["value"] == "0.95" and "<dd>0.9500 (trial 1)</dd>" in text


def test_the_page_embeds_top_trials_only_with_repeats(tmp_path: Path) -> None:
    plain = write_study_page(_study([0.91, 0.95]), tmp_path / "a", "x").read_text()
    page = write_study_page(_study([0.91, 0.95], {0: (VAL, TEST)}), tmp_path / "b", "x")
    text = page.read_text(encoding="utf-8")
    single, repeated = Page(plain), Page(text)
    assert 'alt="top trials"' in text and 'alt="top trials"' not in plain
    assert len(repeated.images) == len(single.images) + 1
    assert all(image.startswith(PNG) and len(image) > 5000 for image in repeated.images)
    assert all(link.startswith("data:image/png;base64,") for link in repeated.links)
    assert "<script" not in text and "<link" not in text  # still self-contained
