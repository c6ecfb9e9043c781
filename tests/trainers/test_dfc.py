"""The divide-fuse-conquer driver: progressive fusion arithmetic, the order of stages, grouping by
the measured base win rate, the bundled 18-game config, config errors, and one real run of the
tiny model end to end (one training step per stage)."""

from __future__ import annotations

import json
import logging
import re
import shutil
from importlib import resources
from pathlib import Path

import pytest
import torch

from arenagym.cli import main
from arenagym.trainers.config import ConfigError, TaskConfig
from arenagym.trainers.dfc import (
    DFCConfig,
    DFCOpponent,
    Scores,
    dfc_config_names,
    episode_kwargs,
    fuse_models,
    render_report,
    run_dfc,
    task_label,
)

CHARS = "TrainerTest-Chars-v0"
KEY = "model.layers.0.mlp.down_proj.weight"


def _weights(model: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(model / "model.safetensors"))


class FakeTrainer:
    """Records each call and "trains" by copying the start model and adding a per-call shift."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, list[str], int]] = []

    def __call__(self, start: Path, tasks: list[TaskConfig], steps: int, output: Path) -> Path:
        from safetensors.torch import save_file

        self.calls.append((Path(start), [task_label(t) for t in tasks], steps))
        model = output / "model"
        shutil.copytree(start, model, dirs_exist_ok=True)
        shift = 0.01 * len(self.calls)
        weights = {
            k: (v + shift if v.is_floating_point() else v) for k, v in _weights(model).items()
        }
        save_file(weights, str(model / "model.safetensors"), metadata={"format": "pt"})
        return model


class FakeEvaluator:
    """Known base win rates (by task label); every other model wins half its games."""

    def __init__(self, base_rates: dict[str, float] | None = None) -> None:
        self.base_rates = base_rates or {}
        self.calls: list[str] = []

    def __call__(self, name: str, model: Path, tasks: list[TaskConfig]) -> Scores:
        self.calls.append(name)
        rates = {task_label(t): self.base_rates.get(task_label(t), 0.5) for t in tasks}
        if name != "base":
            rates = dict.fromkeys(rates, 0.5)
        return {label: {"reward": rate, "win_rate": rate} for label, rate in rates.items()}


def _chars(chars: str) -> dict[str, object]:
    return {"env_id": CHARS, "kwargs": {"chars": chars}}


def _label(chars: str) -> str:
    return task_label(TaskConfig(CHARS, {"chars": chars}))


# --------------------------------------------------------------------------- fuse


@pytest.mark.parametrize("weights", [(0.5, 0.5), (1.0, 3.0), (0.0, 1.0)])
def test_fuse_is_the_weighted_average_of_previous_and_specialist(
    tiny_model_dir: Path, tiny_model_dir_b: Path, tmp_path: Path, weights: tuple[float, float]
) -> None:
    fused = fuse_models(tiny_model_dir, tiny_model_dir_b, tmp_path / "fused", weights=weights)
    a, b = weights
    previous, specialist, out = (
        _weights(tiny_model_dir),
        _weights(tiny_model_dir_b),
        _weights(fused),
    )
    assert set(out) == set(previous)
    for name, tensor in out.items():
        expected = (a * previous[name].float() + b * specialist[name].float()) / (a + b)
        assert torch.allclose(tensor.float(), expected, atol=1e-6), name
    assert (fused / "config.json").is_file()


# --------------------------------------------------------------------------- the order of stages


def _three_groups(tmp_path: Path, base: Path, **extra: object) -> DFCConfig:
    return DFCConfig.from_dict(
        {
            "base_model": str(base),
            "output_dir": str(tmp_path / "dfc"),
            "specialist_steps": 2,
            "conquer_steps": 1,
            "groups": [
                {"name": "g1", "tasks": [_chars("a")]},
                {"name": "g2", "tasks": [_chars("b")]},
                {"name": "g3", "tasks": [_chars("c")]},
            ],
            **extra,
        }
    )


def test_stages_fuse_progressively_in_order(tiny_model_dir: Path, tmp_path: Path) -> None:
    trainer, evaluator = FakeTrainer(), FakeEvaluator()
    config = _three_groups(tmp_path, tiny_model_dir, fuse_weights=[0.25, 0.75])
    report = run_dfc(config, evaluate=evaluator, train=trainer)

    stages = report["stages"]
    s1, s2, s3 = (Path(s["specialist"]["model"]) for s in stages)
    f2, f3 = Path(stages[1]["fused"]["model"]), Path(stages[2]["fused"]["model"])
    c2, c3 = Path(stages[1]["conquer"]["model"]), Path(stages[2]["conquer"]["model"])
    a, b, c = _label("a"), _label("b"), _label("c")
    # stage 1: nothing to fuse (the paper's pi^(1) = pi_1), so no conquer either
    assert stages[0]["fused"] is None and stages[0]["conquer"] is None
    assert trainer.calls == [
        (tiny_model_dir, [a], 2),  # specialist 1 from theta_0 = the base
        (s1, [b], 2),  # specialist 2 from theta_1 = specialist 1
        (f2, [a, b], 1),  # conquer 2 from the fused theta, on groups 1..2
        (c2, [c], 2),  # specialist 3 from theta_2 = conquer 2
        (f3, [a, b, c], 1),  # conquer 3 on groups 1..3
    ]
    assert stages[1]["fused"]["models"] == [str(s1), str(s2)]
    assert stages[2]["fused"]["models"] == [str(c2), str(s3)]
    for fused, previous, specialist in ((f2, s1, s2), (f3, c2, s3)):
        expected = 0.25 * _weights(previous)[KEY] + 0.75 * _weights(specialist)[KEY]
        assert torch.allclose(_weights(fused)[KEY], expected, atol=1e-6)
    assert report["final"] == "conquer 3" and report["final_model"] == str(c3)
    assert evaluator.calls == [
        "base",
        "specialist 1",
        "specialist 2",
        "fused 2",
        "conquer 2",
        "specialist 3",
        "fused 3",
        "conquer 3",
    ]
    saved = json.loads((tmp_path / "dfc" / "report.json").read_text())
    assert saved["stages"] == json.loads(json.dumps(stages))


def test_stage_options_fuse_base_and_specialists_from_base(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    trainer = FakeTrainer()
    config = _three_groups(
        tmp_path,
        tiny_model_dir,
        fuse_base=True,
        specialist_start="base",
        eval_models=["conquer"],
    )
    evaluator = FakeEvaluator()
    report = run_dfc(config, evaluate=evaluator, train=trainer)
    stages = report["stages"]
    f1, c1 = Path(stages[0]["fused"]["model"]), Path(stages[0]["conquer"]["model"])
    a, b = _label("a"), _label("b")
    assert [(start, tasks) for start, tasks, _ in trainer.calls[:4]] == [
        (tiny_model_dir, [a]),  # every specialist from the base
        (f1, [a]),  # fuse_base: theta_1 = 1/2 base + 1/2 s_1, then conquer group 1
        (tiny_model_dir, [b]),
        (Path(stages[1]["fused"]["model"]), [a, b]),
    ]
    s1 = Path(stages[0]["specialist"]["model"])
    expected = (_weights(tiny_model_dir)[KEY] + _weights(s1)[KEY]) / 2
    assert torch.allclose(_weights(f1)[KEY], expected, atol=1e-6)
    assert stages[1]["fused"]["models"][0] == str(c1)
    assert evaluator.calls == ["base", "conquer 1", "conquer 2", "conquer 3"]


# --------------------------------------------------------------------------- divide


def test_games_are_grouped_by_the_measured_base_win_rate(
    tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    games = [
        {**_chars("a"), "start": "random"},  # base wins 0.5 -> random/winnable
        {**_chars("b"), "start": "fixed"},  # 0.0 -> fixed/unwinnable
        {**_chars("c"), "start": "random"},  # 0.0 -> random/unwinnable
        {**_chars("d"), "start": "random"},  # 0.25 -> random/winnable
    ]
    rates = {_label("a"): 0.5, _label("b"): 0.0, _label("c"): 0.0, _label("d"): 0.25}
    config = DFCConfig.from_dict(
        {
            "base_model": str(tiny_model_dir),
            "output_dir": str(tmp_path / "dfc"),
            "specialist_steps": 1,
            "conquer_steps": 1,
            "games": games,
        }
    )
    trainer, evaluator = FakeTrainer(), FakeEvaluator(rates)
    with caplog.at_level(logging.WARNING, logger="arenagym.trainers.dfc"):
        report = run_dfc(config, evaluate=evaluator, train=trainer)

    assert report["grouping"] == "base win rate"
    assert [(g["name"], g["tasks"]) for g in report["groups"]] == [
        ("random/winnable", [_label("a"), _label("d")]),
        ("fixed/unwinnable", [_label("b")]),
        ("random/unwinnable", [_label("c")]),
    ]
    assert report["groups"][0]["base_win_rate"] == {_label("a"): 0.5, _label("d"): 0.25}
    assert report["notes"] == [
        "group fixed/winnable is empty (no fixed-start game where the base model's win rate "
        "is above zero): skipped"
    ]
    assert "fixed/winnable is empty" in caplog.text
    # the specialists follow the measured groups; conquer k trains on groups 1..k
    assert [tasks for _, tasks, _ in trainer.calls] == [
        [_label("a"), _label("d")],
        [_label("b")],
        [_label("a"), _label("d"), _label("b")],
        [_label("c")],
        [_label("a"), _label("d"), _label("b"), _label("c")],
    ]
    markdown = (tmp_path / "dfc" / "report.md").read_text()
    assert markdown == render_report(report)
    assert f"| 1 | random/winnable | {_label('d')} | random | 0.250 |" in markdown
    assert f"| 2 | fixed/unwinnable | {_label('b')} | fixed | 0.000 |" in markdown
    assert "| stage | model | random/winnable | fixed/unwinnable | random/unwinnable | all |" in (
        markdown
    )
    assert "| 0 | base | 0.375 | 0.000 | 0.000 | 0.188 |" in markdown
    assert "| 3 | conquer 3 (final) | 0.500 | 0.500 | 0.500 | 0.500 |" in markdown


def test_two_player_games_are_evaluated_against_every_opponent() -> None:
    opponents = [DFCOpponent("pkg:A"), DFCOpponent("pkg:B", {"seed": 1})]
    nim = TaskConfig("TextArena/Nim-v0")
    assert episode_kwargs(nim, opponents) == [
        {"opponent": "pkg:A", "opponent_kwargs": {}},
        {"opponent": "pkg:B", "opponent_kwargs": {"seed": 1}},
    ]
    assert episode_kwargs(TaskConfig("TextArena/Sudoku-v0"), opponents) == [{}]  # solo
    own = TaskConfig("TextArena/Nim-v0", {"opponent": "pkg:C"})
    assert episode_kwargs(own, opponents) == [{"opponent": "pkg:C"}]
    assert episode_kwargs(nim, []) == [{}]


def test_evaluate_model_plays_textarena_games_against_each_opponent(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("textarena")
    import arenagym.envs  # noqa: F401  (registers the TextArena ids)
    from arenagym.trainers import dfc

    outcomes: list[tuple[str, tuple[str, float]]] = []
    real = dfc.score_episodes

    def spy(labels: list[str], results: list[tuple[str, float]]) -> Scores:
        outcomes.extend(zip(labels, results, strict=True))
        return real(labels, results)

    monkeypatch.setattr(dfc, "score_episodes", spy)
    opponents = [
        DFCOpponent("arenagym.envs.textarena.opponents:RandomLegalOpponent", {"seed": 0}),
        DFCOpponent("arenagym.envs.textarena.opponents:FirstLegalOpponent"),
    ]
    tasks = [TaskConfig("TextArena/Nim-v0"), TaskConfig("TextArena/GuessTheNumber-v0")]
    scores = dfc.evaluate_model(
        tiny_model_dir,
        tasks,
        episodes=1,
        seed=0,
        max_tokens=8,
        max_total_tokens=32,
        opponents=opponents,
    )
    labels = [label for label, _ in outcomes]
    assert labels == ["TextArena/Nim-v0"] * 2 + ["TextArena/GuessTheNumber-v0"]
    assert all(reason != "env_error" for _, (reason, _) in outcomes), outcomes
    assert set(scores) == set(labels)
    assert all(0.0 <= s["win_rate"] <= 1.0 for s in scores.values())


# --------------------------------------------------------------------------- the shipped config


def test_shipped_dfc18_config_covers_each_of_the_18_games_once() -> None:
    from arenagym.envs.textarena.games import GAMES, gym_id

    assert "dfc18" in dfc_config_names()
    config = DFCConfig.load("dfc18")
    env_ids = [game.task.env_id for game in config.games]
    assert sorted(env_ids) == sorted(gym_id(name) for name in GAMES)
    assert len(set(env_ids)) == 18 and not config.groups
    # the initial-state axis matches the dfc18 suite's comments (and GAMES)
    suite = resources.files("arenagym.benchmarks").joinpath("suites", "dfc18.toml")
    starts = dict(
        (name, start)
        for start, name in re.findall(
            r"DFC: start=(\w+),[^\n]*\n\[\[matches\]\]\nname = \"(\w+)\"",
            suite.read_text(encoding="utf-8"),
        )
    )
    assert len(starts) == 18
    for game in config.games:
        name = game.task.env_id.removeprefix("TextArena/").removesuffix("-v0")
        assert game.start == starts[name] == GAMES[name].start
    assert config.fuse == "linear" and config.fuse_weights == [0.5, 0.5]
    assert len(config.eval_opponents) == 3
    path = resources.files("arenagym.trainers").joinpath("presets", "dfc", "dfc18.toml")
    assert DFCConfig.load(str(path)).games == config.games


# --------------------------------------------------------------------------- errors


GAME = '[[games]]\nenv_id = "Math-v0"\nstart = "fixed"\n'
GROUP = '[[groups]]\nname = "a"\ntasks = [{ env_id = "Math-v0" }]\n'


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('[[games]]\nenv_id = "Math-v0"\nstart = "shuffled"\n', r"games\[0\]\.start"),
        ("fuse_weights = [0.5]\n" + GAME, "fuse_weights"),
        ("fuse_weights = [-1, 2]\n" + GAME, "fuse_weights"),
        ('specialist_steps = "ten"\n' + GROUP, "specialist_steps"),
        ("final_steps = 3\n" + GROUP, "final_steps is now conquer_steps"),
        ('fuse = "progressive"\n' + GROUP, "fuse must be one of"),
        ('specialist_start = "scratch"\n' + GAME, "specialist_start"),
        ('group_order = ["fixed/winnable"]\n' + GAME, "group_order"),
        ("[[eval_opponents]]\nkwargs = {}\n" + GAME, r"eval_opponents\[0\]\.agent"),
        (GAME + GAME.replace("fixed", "random"), r"games\[1\] \(Math-v0\) is listed twice"),
        (GROUP + GAME, "not both"),
        (GROUP.replace("}", ", colour = 1 }"), r"groups\[0\].*colour"),
        ('eval_models = ["final"]\n' + GAME, "eval_models"),
        (GAME + "fuse = 1\n", r"games\[0\]"),
    ],
)
def test_bad_config_errors_name_the_file_and_field(tmp_path: Path, body: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('base_model = "m"\n' + body)
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ".*" + field):
        DFCConfig.load(path)


def test_missing_or_empty_configs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="groups"):
        DFCConfig.from_dict({"base_model": "m", "groups": []})
    with pytest.raises(ConfigError, match=r"either \[\[groups\]\]"):
        DFCConfig.from_dict({"base_model": "m"})
    with pytest.raises(ConfigError, match="unique"):
        DFCConfig.from_dict(
            {
                "base_model": "m",
                "groups": [
                    {"name": "a", "tasks": [{"env_id": "Math-v0"}]},
                    {"name": "a", "tasks": [{"env_id": "Math-v0", "kwargs": {"difficulty": 2}}]},
                ],
            }
        )
    assert main(["dfc", str(tmp_path / "missing.toml")]) == 2
    assert "no such DFC config file" in capsys.readouterr().err
    assert main(["dfc", "no-such-bundled-config"]) == 2
    assert "bundled configs: dfc18" in capsys.readouterr().err


# --------------------------------------------------------------------------- end to end

TRAIN = """
imports = ["arenagym_trainers_testkit"]
[model]
device = "cpu"
[rollout]
prompts_per_step = 1
group_size = 4
max_tokens = 4
[optim]
lr = 0.003
micro_batch_size = 8
[run]
checkpoint_every = 0
"""

DFC = """
base_model = "{base}"
train = "{train}"
output_dir = "{out}"
specialist_steps = 1
conquer_steps = 1
eval_episodes = 2
eval_max_tokens = 4

[[groups]]
name = "vowels"
tasks = [{{ env_id = "TrainerTest-Chars-v0", kwargs = {{ chars = "aeiou" }} }}]

[[groups]]
name = "consonants"
tasks = [{{ env_id = "TrainerTest-Chars-v0", kwargs = {{ chars = "bcdfghklmnprst" }} }}]
"""


def test_dfc_cli_runs_the_tiny_model_end_to_end(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = tmp_path / "train.toml"
    train.write_text(TRAIN)
    config = tmp_path / "dfc.toml"
    out = tmp_path / "dfc"
    config.write_text(DFC.format(base=tiny_model_dir, train=train, out=out))
    assert main(["dfc", str(config)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("## Groups")
    assert "| 0 | base |" in table and "| 2 | conquer 2 (final) |" in table

    report = json.loads((out / "report.json").read_text())
    assert (out / "report.md").read_text() == table
    assert report["grouping"] == "given"
    assert list(report["scores"]) == [
        "base",
        "specialist 1",
        "specialist 2",
        "fused 2",
        "conquer 2",
    ]
    for scores in report["scores"].values():
        assert len(scores) == 2
        assert all(0.0 <= s["reward"] <= 1.0 and s["win_rate"] == 1.0 for s in scores.values())

    s1, s2 = (Path(s["specialist"]["model"]) for s in report["stages"])
    fused = Path(report["stages"][1]["fused"]["model"])
    final = Path(report["final_model"])
    base = _weights(tiny_model_dir)[KEY]
    a, b, f = _weights(s1)[KEY], _weights(s2)[KEY], _weights(fused)[KEY]
    assert not torch.equal(a, base) and not torch.equal(a, b)
    assert torch.allclose(f, (a + b) / 2, atol=1e-7)
    assert not torch.equal(_weights(final)[KEY], f)


def test_a_second_run_into_the_same_output_needs_overwrite(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = _three_groups(tmp_path, tiny_model_dir)
    run_dfc(config, evaluate=FakeEvaluator(), train=FakeTrainer())
    out = tmp_path / "dfc"
    keep = out / "notes.txt"
    keep.write_text("mine")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=r"already holds a DFC run .*--overwrite"):
        run_dfc(config, evaluate=FakeEvaluator(), train=FakeTrainer())
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before

    trainer = FakeTrainer()
    run_dfc(config, evaluate=FakeEvaluator(), train=trainer, overwrite=True)
    assert len(trainer.calls) == 5 and keep.read_text() == "mine"
    assert (out / "report.json").is_file()
