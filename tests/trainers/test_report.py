"""``arenagym report``: every metric of a run as a chart in a self-contained HTML page and as a
PNG, a DFC run's stages (scores per stage and group, each stage's training curves), and clear
errors (file, line, field) for folders that are not runs and malformed metrics lines."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from arenagym.cli import main
from arenagym.trainers.config import TaskConfig
from arenagym.trainers.dfc import DFCConfig, Scores, run_dfc, task_label
from arenagym.trainers.report import KNOWN_METRICS, ReportError, read_curves, write_report

pytest.importorskip("matplotlib", reason="the plots extra (matplotlib) is not installed")
Image = pytest.importorskip("PIL.Image", reason="Pillow (matplotlib's dependency) is not installed")

CHARS = "TrainerTest-Chars-v0"

#: A run's metrics as the trainer writes them, plus an eval accuracy and a step with no update.
STEPS: list[dict[str, Any]] = [
    {
        "step": step,
        "reward_mean": 0.1 * step,
        "clean_reward_mean": 0.1 * step - 0.05,
        "eval_accuracy": 0.2 + 0.1 * step,
        "entropy": None if step == 2 else 6.0 - step,
        "entropy_coef": 0.0,
        "kl": None,
        "clip_fraction": 0.01 * step,
        "response_length": 10 + step,
        "filtered_groups": step % 2,
        "groups": 2,
        "context_stage": 0,
        "stop_reasons": {"solved": step, "max_tokens": 4 - step} if step != 3 else {"solved": 4},
        "skipped_update": step == 2,
        "tokens_per_s": 100.0 + step,
        "rollout_s": 0.5,
        "update_s": 0.25,
        "step_s": 0.75,
        "lr": 1e-3,
        "note": "text fields are not curves",
    }
    for step in (1, 2, 3)
]
PLOTTED = [k for k in STEPS[0] if k not in ("step", "skipped_update", "note")]


def _write_metrics(folder: Path, records: list[dict[str, Any]] = STEPS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _embedded_images(page: str) -> dict[str, bytes]:
    """The PNGs embedded in the page, by the id of their figure."""
    found = re.findall(
        r'<figure id="([^"]+)"[^>]*><img alt="[^"]*" src="data:image/png;base64,([^"]+)"', page
    )
    return {anchor: base64.b64decode(data) for anchor, data in found}


def _assert_valid_png(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100


# --------------------------------------------------------------------------- a training run


def test_every_metric_gets_a_chart_in_the_page_and_a_png(tmp_path: Path) -> None:
    _write_metrics(tmp_path)
    index = write_report(tmp_path)
    assert index == tmp_path / "report" / "index.html"
    page = index.read_text(encoding="utf-8")
    images = _embedded_images(page)
    assert sorted(images) == sorted(f"metric-{name}" for name in PLOTTED)
    for name in PLOTTED:
        png = (tmp_path / "report" / f"{name}.png").read_bytes()
        _assert_valid_png(png)
        assert images[f"metric-{name}"] == png  # the page holds the same chart
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(
        ["index.html", *(f"{name}.png" for name in PLOTTED)]
    )
    # self-contained: nothing is fetched when the page is viewed
    assert not re.search(r"(src|href)=\"(https?:|//)", page)
    assert "<script" not in page
    for name in ("reward_mean", "kl", "step_s", "eval_accuracy"):
        assert KNOWN_METRICS[name] in page


def test_curves_keep_gaps_order_known_metrics_first_and_split_objects(tmp_path: Path) -> None:
    curves = {c.name: c for c in read_curves(_write_metrics(tmp_path))}
    names = list(curves)
    assert names[:3] == ["reward_mean", "clean_reward_mean", "eval_accuracy"]
    assert names[-3:] == ["groups", "context_stage", "stop_reasons"]  # unknown: file order
    assert curves["entropy"].values == [5.0, None, 3.0]
    assert curves["kl"].values == [None, None, None] and curves["kl"].points == 0
    assert curves["stop_reasons"].series == {"max_tokens": [3.0, 2.0, 0.0], "solved": [1, 2, 4]}
    assert curves["reward_mean"].steps == [1, 2, 3]


def test_a_real_run_of_the_trainer_is_reported(tiny_model_dir: Path, tmp_path: Path) -> None:
    from arenagym.trainers.config import load_config
    from arenagym.trainers.metrics import STEP_FIELDS
    from arenagym.trainers.trainer import Trainer

    config = load_config(
        "grpo",
        [
            f'model.path="{tiny_model_dir}"',
            'model.device="cpu"',
            f'run.output_dir="{tmp_path}"',
            "run.steps=2",
            "run.checkpoint_every=0",
            "rollout.prompts_per_step=2",
            "rollout.group_size=2",
            "rollout.max_tokens=4",
            "rollout.context_stages=[]",
        ],
    )
    config.tasks = [TaskConfig(CHARS, {"chars": "aeiou"})]
    Trainer(config).train()
    assert main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    images = _embedded_images(page)
    for name in [*STEP_FIELDS[1:], "step_s", "stop_reasons"]:
        assert f"metric-{name}" in images, name
        _assert_valid_png((tmp_path / "report" / f"{name}.png").read_bytes())


def test_a_new_report_replaces_the_old_one(tmp_path: Path) -> None:
    _write_metrics(tmp_path)
    write_report(tmp_path)
    _write_metrics(tmp_path, [{"step": 1, "reward_mean": 0.5}])
    write_report(tmp_path)
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "index.html",
        "reward_mean.png",
    ]
    other = tmp_path / "elsewhere"
    assert main(["report", str(tmp_path), "-o", str(other)]) == 0
    assert (other / "reward_mean.png").is_file()


# --------------------------------------------------------------------------- a DFC run


class MetricsTrainer:
    """A stand-in for the trainer with the real layout: ``output/run/metrics.jsonl`` (two steps
    whose reward depends on the call) and ``output/model`` (a copy of the start model)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, start: Path, tasks: list[TaskConfig], steps: int, output: Path) -> Path:
        self.calls += 1
        records = [
            {"step": s, "reward_mean": 0.1 * self.calls + 0.01 * s, "kl": 0.001 * s, "step_s": 1.0}
            for s in range(1, steps + 1)
        ]
        _write_metrics(output / "run", records)
        shutil.copytree(start, output / "model", dirs_exist_ok=True)
        return output / "model"


def _evaluate(name: str, model: Path, tasks: list[TaskConfig]) -> Scores:
    rate = 0.0 if name == "base" else 0.25 * int(name.split()[-1])  # "conquer 2": 0.5
    return {task_label(t): {"win_rate": rate, "reward": rate - 0.5} for t in tasks}


@pytest.fixture
def dfc_run(tiny_model_dir: Path, tmp_path: Path) -> Path:
    config = DFCConfig.from_dict(
        {
            "base_model": str(tiny_model_dir),
            "output_dir": str(tmp_path / "dfc"),
            "specialist_steps": 2,
            "conquer_steps": 2,
            "groups": [
                {"name": "g1", "tasks": [{"env_id": CHARS, "kwargs": {"chars": "a"}}]},
                {"name": "g/2", "tasks": [{"env_id": CHARS, "kwargs": {"chars": "b"}}]},
            ],
        }
    )
    run_dfc(config, evaluate=_evaluate, train=MetricsTrainer())
    return tmp_path / "dfc"


def test_a_dfc_report_shows_each_stage_its_scores_and_training_curves(dfc_run: Path) -> None:
    assert main(["report", str(dfc_run)]) == 0
    out = dfc_run / "report"
    page = (out / "index.html").read_text(encoding="utf-8")
    images = _embedded_images(page)
    for data in images.values():
        _assert_valid_png(data)
    # stage 1: a specialist only; stage 2: specialist, fused, conquer
    assert '<h2 id="stage-1">Stage 1: g1</h2>' in page
    assert '<h2 id="stage-2">Stage 2: g/2</h2>' in page
    expected = {"dfc-win-rate"} | {
        f"stage-{k}-{kind}-metric-{metric}"
        for k, kinds in ((1, ["specialist"]), (2, ["specialist", "conquer"]))
        for kind in kinds
        for metric in ("reward_mean", "kl", "step_s")
    }
    assert set(images) == expected
    for kind in ("specialist", "conquer"):
        for metric in ("reward_mean", "kl", "step_s"):
            _assert_valid_png((out / "stages" / "2-g-2" / kind / f"{metric}.png").read_bytes())
    _assert_valid_png((out / "win_rate_by_stage.png").read_bytes())
    # the scores per stage (model) and group: conquer 2 wins 0.5 of g1 and of g/2
    row = re.search(r"<tr><td[^>]*>2</td><td>conquer 2 \(final\)</td>(.*?)</tr>", page)
    assert row is not None
    assert re.findall(r'<td class="n">([^<]*)</td>', row.group(1))[:3] == ["0.5", "0.5", "0.5"]
    for model in ("base", "specialist 1", "specialist 2", "fused 2", "conquer 2"):
        assert f"<td>{model}" in page


def test_a_dfc_stage_without_metrics_is_said_not_hidden(dfc_run: Path) -> None:
    shutil.rmtree(dfc_run / "stages" / "1-g1" / "specialist" / "run")
    write_report(dfc_run)
    page = (dfc_run / "report" / "index.html").read_text(encoding="utf-8")
    assert "no stages/1-g1/specialist/run/metrics.jsonl" in page


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"step": 1}', "{not json"], r"metrics.jsonl:2: not valid JSON"),
        (['{"step": 1}', "[1, 2]"], r"metrics.jsonl:2: expected a JSON object, got list"),
        (['{"reward_mean": 1}'], r"metrics.jsonl:1: field 'step' is missing"),
        (['{"step": 1.5}'], r"metrics.jsonl:1: field 'step': expected an integer >= 0, got 1.5"),
        (['{"step": 2}', '{"step": 1}'], r"metrics.jsonl:2: field 'step': step 1 comes after"),
        (
            ['{"step": 1, "kl": 0.1}', "", '{"step": 2, "kl": "high"}'],
            r"metrics.jsonl:3: field 'kl': expected a number as on line 1, got \"high\"",
        ),
        (
            ['{"step": 1, "stop_reasons": {"won": 1}}', '{"step": 2, "stop_reasons": 3}'],
            r"metrics.jsonl:2: field 'stop_reasons': expected an object of numbers",
        ),
        ([""], r"metrics.jsonl: holds no steps"),
        (['{"step": 1}', "[" * 100_000], r"metrics.jsonl:2: not valid JSON \(too deeply"),
        (['{"step": 1, "kl": ' + "9" * 5000 + "}"], r"metrics.jsonl:1: not valid JSON"),
    ],
)
def test_malformed_metrics_lines_name_the_file_line_and_field(
    tmp_path: Path, lines: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ReportError, match=message):
        write_report(tmp_path)
    assert not (tmp_path / "report").exists()
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"arenagym report: error: {tmp_path / 'metrics.jsonl'}")
    assert len(err.strip().splitlines()) == 1 and re.search(message, err)


def test_a_folder_that_is_not_a_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"arenagym report: error: {tmp_path}: not a run: no metrics.jsonl (a training run) "
        "and no report.json (a DFC run)\n"
    )
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "missing: no such directory" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_a_malformed_dfc_report_names_the_field(dfc_run: Path) -> None:
    report = json.loads((dfc_run / "report.json").read_text())
    del report["stages"][1]["group"]
    (dfc_run / "report.json").write_text(json.dumps(report))
    with pytest.raises(ReportError, match=r"report.json: stages\[1\]: field 'group' is missing"):
        write_report(dfc_run)
    report["stages"][1]["group"] = "g/2"
    report["scores"]["fused 2"][task_label(TaskConfig(CHARS, {"chars": "a"}))]["win_rate"] = "x"
    (dfc_run / "report.json").write_text(json.dumps(report))
    with pytest.raises(ReportError, match=r"scores\['fused 2'\].*field 'win_rate': expected"):
        write_report(dfc_run)


def test_without_matplotlib_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    _write_metrics(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import -> ImportError
    with pytest.raises(ReportError, match=r"matplotlib, which is not installed: .*\[plots\]"):
        write_report(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]
