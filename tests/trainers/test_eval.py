"""``[eval]``: accuracy on greedy eval episodes during training, on the tiny model.

Evaluation runs before the first step (a ``step`` 0 line), every ``eval.every`` steps and after
the last; its episodes have seeds disjoint from training's, are played greedily through the
rollout generator and never trained on; the default config writes no eval fields; bad
``[eval]`` values are errors naming the file and field; ``arenagym report`` draws the curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from arenagym.agents.rollout import EpisodeSpec, RolloutConfig, Trajectory
from arenagym.trainers.config import ConfigError, TaskConfig, TrainConfig, load_config
from arenagym.trainers.metrics import read_metrics
from arenagym.trainers.trainer import Trainer, plan_eval, plan_step

CHARS = TaskConfig("TrainerTest-Chars-v0", {"chars": "aeiou"})
EVAL_FIELDS = ("eval_accuracy", "eval_clean_reward", "eval_episodes")


def tiny_config(model: Path, output: Path, *overrides: str) -> TrainConfig:
    """A grpo run of the tiny model on the chars env: 2 prompts x 2 rollouts, 4 tokens."""
    config = load_config(
        "grpo",
        [
            f'model.path="{model}"',
            'model.device="cpu"',
            f'run.output_dir="{output}"',
            "run.steps=2",
            "run.checkpoint_every=0",
            "rollout.prompts_per_step=2",
            "rollout.group_size=2",
            "rollout.max_tokens=4",
            "rollout.context_stages=[]",
            "optim.lr=0.001",
            *overrides,
        ],
    )
    config.tasks = [CHARS]
    return config


class RecordingGenerator:
    """Wraps a generator; remembers each rollout call's seeds and temperature."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[list[int], float]] = []

    def rollout(self, episodes: Sequence[EpisodeSpec], config: RolloutConfig) -> list[Trajectory]:
        """Record, then delegate."""
        self.calls.append(([int(e.seed) for e in episodes], config.sampling.temperature))
        return self.inner.rollout(episodes, config)

    def sync_weights(self, model: Any) -> None:
        """Delegate."""
        self.inner.sync_weights(model)


def test_eval_fields_at_step_zero_and_every_step(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_model_dir, tmp_path, "run.steps=3", "eval.episodes=2", "eval.every=1")
    records = Trainer(config).train()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2, 3] == [r["step"] for r in records]
    for row in rows:
        assert 0.0 <= row["eval_accuracy"] <= 1.0, row
        assert 0.0 <= row["eval_clean_reward"] <= 1.0, row
        assert row["eval_episodes"] == 2
    # the chars env always ends "solved": every eval episode counts as a success
    assert all(row["eval_accuracy"] == 1.0 for row in rows)
    assert set(rows[0]) == {"step", *EVAL_FIELDS, "eval_s"}


def test_eval_every_n_steps_and_after_the_last(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_model_dir, tmp_path, "run.steps=3", "eval.episodes=1", "eval.every=2")
    Trainer(config).train()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert ["eval_accuracy" in r for r in rows] == [True, False, True, True]


def test_eval_seeds_are_disjoint_greedy_and_never_trained_on(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    overrides = ("eval.episodes=3", "eval.every=1", "run.seed=7", "eval.seed=7")
    trainer = Trainer(tiny_config(tiny_model_dir, tmp_path / "eval", *overrides))
    recorder = RecordingGenerator(trainer.generator)
    trainer.generator = recorder  # type: ignore[assignment]
    trainer.train()
    train_temperature = trainer.config.rollout.temperature
    eval_calls = [seeds for seeds, t in recorder.calls if t == 0.0]
    train_calls = [seeds for seeds, t in recorder.calls if t == train_temperature]
    assert len(eval_calls) == 3 and len(train_calls) == 2  # steps 0, 1, 2 / steps 1, 2
    eval_seeds = {s for seeds in eval_calls for s in seeds}
    train_seeds = {s for seeds in train_calls for s in seeds}
    assert len(eval_seeds) == 3 and all(seeds == eval_calls[0] for seeds in eval_calls)
    assert not eval_seeds & train_seeds
    # disjoint by construction: many steps of training seeds never reach the eval range
    config = trainer.config
    many = {e.seed for step in range(200) for e in plan_step(config, step).episodes}
    assert max(many) < 2**31 <= min(e.seed for e in plan_eval(config, 4).episodes)

    # evaluating changes nothing about training: same weights as a run without eval
    plain = Trainer(tiny_config(tiny_model_dir, tmp_path / "plain", "run.seed=7"))
    plain.train()
    for a, b in zip(trainer.model.parameters(), plain.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_default_config_writes_no_eval_fields(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_model_dir, tmp_path)
    assert config.eval.episodes == 0
    Trainer(config).train()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert not any(key.startswith("eval_") for row in rows for key in row)


@pytest.mark.parametrize("preset", ["grpo", "or1", "drgrpo", "rloo", "reinforce_pp", "ppo"])
def test_presets_leave_eval_off(preset: str) -> None:
    assert load_config(preset).eval.episodes == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("episodes = -1", "eval.episodes"),
        ("episodes = 2\nevery = 0", "eval.every"),
        ("episodes = 2\nmax_tokens = 0", "eval.max_tokens"),
        ('episodes = "two"', "episodes must be int"),
        ("episodes = 2\nseed = -3", "eval.seed"),
        ("episodes = 2\nepisode = 3", "unknown key(s) ['episode']"),
        ("episodes = 2\n[[eval.tasks]]\nenvid = 'Math-v0'", "tasks[0]: unknown key(s) ['envid']"),
    ],
)
def test_a_bad_eval_field_names_the_file_and_field(body: str, field: str, tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(f"[eval]\n{body}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value) and field in str(error.value)


def test_eval_tasks_are_validated_like_training_tasks(tiny_model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("[eval]\nepisodes = 2\n[[eval.tasks]]\nenv_id = 'Mth-v0'\n", encoding="utf-8")
    config = load_config(path, [f'model.path="{tiny_model_dir}"', f'run.output_dir="{tmp_path}"'])
    with pytest.raises(ConfigError, match=r"run\.toml: \[eval\]: tasks\[0\]: env_id 'Mth-v0'"):
        Trainer(config)


def test_own_eval_tasks_and_budget(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = tiny_config(
        tiny_model_dir,
        tmp_path,
        "run.steps=1",
        "eval.episodes=2",
        "eval.max_tokens=3",
        'eval.tasks=[{"env_id": "TrainerTest-Chars-v0", "kwargs": {"chars": "xyz"}},'
        ' {"env_id": "Math-v0", "kwargs": {"difficulty": 1}}]',
    )
    Trainer(config).train()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1]
    # Math-v0 is never solved by the random tiny model in 3 tokens; chars always ends "solved"
    assert all(r["eval_episodes"] == 4 and r["eval_accuracy"] == 0.5 for r in rows)


def test_resume_keeps_the_step_zero_line_once(tiny_model_dir: Path, tmp_path: Path) -> None:
    overrides = ("eval.episodes=1", "eval.every=1", "run.checkpoint_every=1")
    Trainer(tiny_config(tiny_model_dir, tmp_path, *overrides)).train()
    resumed = Trainer(tiny_config(tiny_model_dir, tmp_path, *overrides, "run.steps=3"), resume=True)
    assert resumed.step_count == 2
    resumed.train()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert all("eval_accuracy" in r for r in rows)


def test_the_report_draws_eval_accuracy(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plots extra (matplotlib) is not installed")
    from arenagym.cli import main

    config = tiny_config(tiny_model_dir, tmp_path, "eval.episodes=2", "eval.every=1")
    Trainer(config).train()
    assert main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "metric-eval_accuracy" in page
    assert (tmp_path / "report" / "eval_accuracy.png").stat().st_size > 0


def test_a_runs_description_does_not_count_the_step_0_evaluation_as_a_step(tmp_path: Path) -> None:
    from arenagym.trainers.runs import describe_run

    lines = ['{"step": 0, "eval_accuracy": 0.5}', '{"step": 1, "reward_mean": 0.1}']
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert "metrics.jsonl with 1 step" in describe_run(tmp_path)
    (tmp_path / "metrics.jsonl").write_text(lines[1] + "\n" + '{"step": 2}\n')
    assert "metrics.jsonl with 2 steps" in describe_run(tmp_path)
