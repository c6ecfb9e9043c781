"""Runs that never lose or mix data (issue 14, item 5): a used output folder needs ``--resume`` or
``--overwrite``, ``--resume`` refuses another model / algorithm / task list, task lists are
checked before step 1, a step whose episodes all fail stops the run, and OR1's budget hint
works as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import pytest

from arenagym.cli import main
from arenagym.envs.core.spaces import UnicodeText
from arenagym.trainers.config import ConfigError, load_config
from arenagym.trainers.metrics import read_metrics
from arenagym.trainers.runs import RunConflictError, delete_run, run_files

BROKEN_ID = "TrainerTest-Broken-v0"

CONFIG = """
imports = ["arenagym_trainers_testkit"]

[model]
device = "cpu"

[algorithm]
name = "{algorithm}"
filter_zero_variance_groups = {filter}

[rollout]
prompts_per_step = 1
group_size = 2
max_tokens = 4

[run]
steps = 1
checkpoint_every = 1

[[tasks]]
env_id = "TrainerTest-Chars-v0"
kwargs = {{ chars = "{chars}" }}
{extra}
"""


class BrokenEnv(gym.Env[str, str]):
    """Builds fine; every reset fails, as a dead sandbox would."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = UnicodeText(max_length=100)
        self.action_space = UnicodeText(max_length=100)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        raise RuntimeError("the sandbox is down")

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        raise RuntimeError("the sandbox is down")


if BROKEN_ID not in gym.registry:
    gym.register(BROKEN_ID, entry_point=BrokenEnv)


def write_config(
    path: Path,
    *,
    algorithm: str = "grpo",
    chars: str = "aeiou",
    extra: str = "",
    filter_groups: bool = False,
) -> Path:
    text = CONFIG.format(
        algorithm=algorithm, chars=chars, extra=extra, filter=str(filter_groups).lower()
    )
    path.write_text(text, encoding="utf-8")
    return path


def train(config: Path, model: Path, output: Path, *extra: str) -> int:
    return main(
        ["train", str(config), "--model", str(model), "--output", str(output), "--quiet", *extra]
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def used_folder(tiny_model_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A config and an output folder holding a 2-step run plus files of the user's own."""
    config = write_config(tmp_path / "run.toml")
    out = tmp_path / "out"
    assert train(config, tiny_model_dir, out, "--steps", "2") == 0
    (out / "notes.txt").write_text("my notes")
    (out / "checkpoints" / "README").write_text("mine too")
    return config, out


def test_training_into_a_used_folder_is_refused_and_touches_nothing(
    used_folder: tuple[Path, Path], tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, out = used_folder
    before = snapshot(out)
    capsys.readouterr()
    assert train(config, tiny_model_dir, out) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert f"{out} holds a run" in error
    assert "checkpoints step-000001, step-000002" in error and "metrics.jsonl with 2 steps" in error
    assert "--resume" in error and "--overwrite" in error
    assert snapshot(out) == before

    # the Python API refuses too, naming its own options
    api_config = load_config(config, [f'run.output_dir="{out}"', f'model.path="{tiny_model_dir}"'])
    from arenagym.trainers.trainer import Trainer

    with pytest.raises(RunConflictError, match=r"resume=True.*overwrite=True"):
        Trainer(api_config)
    assert snapshot(out) == before


def test_overwrite_replaces_exactly_the_previous_run(
    used_folder: tuple[Path, Path], tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, out = used_folder
    capsys.readouterr()
    assert train(config, tiny_model_dir, out, "--overwrite", "--steps", "1") == 0
    assert "--overwrite: deleted the previous run" in capsys.readouterr().err
    # the old run's step-000002 would have outlived the new step 1 under keep-2 rotation
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["README", "step-000001"]
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1]
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "checkpoints" / "README").read_text() == "mine too"


def test_resume_continues_the_run(
    used_folder: tuple[Path, Path], tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, out = used_folder
    first_two = read_metrics(out / "metrics.jsonl")
    capsys.readouterr()
    assert train(config, tiny_model_dir, out, "--resume", "--steps", "3") == 0
    assert "resuming at step 2" in capsys.readouterr().err
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[:2] == first_two
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "README",
        "step-000002",
        "step-000003",
    ]


def test_resume_with_another_model_algorithm_and_tasks_is_refused(
    used_folder: tuple[Path, Path],
    tiny_model_dir: Path,
    tiny_model_dir_b: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out = used_folder
    before = snapshot(out)
    other = write_config(tmp_path / "other.toml", algorithm="rloo", chars="xyz")
    capsys.readouterr()
    assert train(other, tiny_model_dir_b, out, "--resume") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert "cannot resume" in error and "step-000002" in error
    model_a, model_b = tiny_model_dir.absolute(), tiny_model_dir_b.absolute()
    assert f"model.path: checkpoint '{model_a}' vs new '{model_b}'" in error
    assert "algorithm.name: checkpoint 'grpo' vs new 'rloo'" in error
    assert 'tasks: checkpoint [TrainerTest-Chars-v0 {"chars": "aeiou"}] vs new' in error
    assert '[TrainerTest-Chars-v0 {"chars": "xyz"}]' in error
    assert snapshot(out) == before

    api_config = load_config(other, [f'run.output_dir="{out}"', f'model.path="{tiny_model_dir}"'])
    from arenagym.trainers.trainer import Trainer

    with pytest.raises(RunConflictError, match=r"algorithm\.name: checkpoint 'grpo' vs new 'rloo'"):
        Trainer(api_config, resume=True)
    assert snapshot(out) == before


def test_a_misspelt_env_id_fails_before_step_1(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path / "typo.toml", extra='[[tasks]]\nenv_id = "TrainerTest-Chrs-v0"\n'
    )
    out = tmp_path / "out"
    assert train(config, tiny_model_dir, out) == 2
    error = capsys.readouterr().err
    assert f"{config}: tasks[1]: env_id 'TrainerTest-Chrs-v0' is not a registered env" in error
    assert "did you mean 'TrainerTest-Chars-v0'" in error
    assert not out.exists()  # nothing ran, nothing was written


def test_kwargs_the_env_does_not_take_fail_before_step_1(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = load_config(
        write_config(tmp_path / "kwargs.toml"),
        [f'model.path="{tiny_model_dir}"', f'run.output_dir="{tmp_path / "out"}"'],
    )
    config.tasks[0].kwargs = {"charz": "aeiou"}
    from arenagym.trainers.trainer import Trainer

    with pytest.raises(ConfigError) as caught:
        Trainer(config)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'kwargs.toml'}: tasks[0]: TrainerTest-Chars-v0")
    assert (
        "'charz' (did you mean 'chars'?)" in message and "accepted kwargs: chars, prompt" in message
    )


def test_a_step_whose_episodes_all_fail_stops_the_run(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "broken.toml")
    text = config.read_text().replace('"TrainerTest-Chars-v0"', f'"{BROKEN_ID}"')
    config.write_text(text.replace('kwargs = { chars = "aeiou" }', ""))
    out = tmp_path / "out"
    assert train(config, tiny_model_dir, out) == 1
    error = capsys.readouterr().err
    assert "step 1: all 2 episodes ended in env_error" in error
    assert "RuntimeError: the sandbox is down" in error and "Traceback" in error
    assert run_files(out) == []  # no step was logged, so fixing the env and rerunning just works


def test_a_step_without_samples_for_a_good_reason_is_fine(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # chars = "" scores every response 0: every group has zero variance and is filtered out
    config = write_config(tmp_path / "flat.toml", chars="", filter_groups=True)
    out = tmp_path / "out"
    assert train(config, tiny_model_dir, out, "--steps", "2") == 0
    rows = read_metrics(out / "metrics.jsonl")
    assert [(r["skipped_update"], r["filtered_groups"]) for r in rows] == [(True, 1), (True, 1)]


def test_the_or1_budget_hint_works_as_written(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["or1", "--model", str(tiny_model_dir), "--output", str(tmp_path / "or1"), "--quiet"]
    assert main(["train", *base]) == 2
    error = capsys.readouterr().err
    hint = re.search(r"e\.g\. (--set \S+)$", error.strip())
    assert hint is not None, error
    suggested = shlex.split(hint.group(1))  # as a shell would pass it
    assert suggested[1].startswith("rollout.context_stages=")
    small = ["--steps", "1", "--device", "cpu", "--set", "rollout.prompts_per_step=1"]
    small += ["--set", "rollout.group_size=2", "--set", "optim.mini_batches=1"]
    assert main(["train", *base, *suggested, *small]) == 0, capsys.readouterr().err
    [row] = read_metrics(tmp_path / "or1" / "metrics.jsonl")
    assert row["max_tokens"] == 512  # a quarter of the tiny model's 2048-token context


def test_run_files_are_only_the_runs_own(tmp_path: Path) -> None:
    (tmp_path / "checkpoints" / "step-000003.tmp").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step-notes").mkdir()
    (tmp_path / "tensorboard").mkdir()
    (tmp_path / "tensorboard" / "events.out.tfevents.1.host").write_bytes(b"x")
    (tmp_path / "tensorboard" / "layout.json").write_text("{}")
    (tmp_path / "metrics.jsonl").write_text("")  # empty: a run stopped before step 1
    assert [p.name for p in run_files(tmp_path)] == [
        "step-000003.tmp",
        "events.out.tfevents.1.host",
    ]
    delete_run(tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "checkpoints",
        "checkpoints/step-notes",
        "tensorboard",
        "tensorboard/layout.json",
    ]
