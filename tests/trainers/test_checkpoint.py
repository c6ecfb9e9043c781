"""Checkpoints: a training process killed mid-run and resumed with ``--resume`` ends with the
same weights and metrics as an uninterrupted run with the same seed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from arenagym.trainers.checkpoint import latest_checkpoint
from arenagym.trainers.metrics import read_metrics

STEPS = 6

CONFIG = """
imports = ["arenagym_trainers_testkit"]

[model]
path = "{model}"
device = "cpu"

[algorithm]
name = "grpo"

[rollout]
prompts_per_step = 2
group_size = 4
max_tokens = 6

[optim]
lr = 0.002
micro_batch_size = 3
schedule = "cosine"
warmup_steps = 2

[entropy]
adaptive = true
target = 10.0

[run]
steps = {steps}
seed = 7
checkpoint_every = 1
keep_checkpoints = 2

[[tasks]]
env_id = "TrainerTest-Chars-v0"
kwargs = {{ chars = "aeiou" }}
"""


def train_command(config: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "arenagym",
        "train",
        str(config),
        "--output",
        str(output),
        "--quiet",
        *extra,
    ]


def subprocess_env(testkit_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(testkit_dir), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"  # the same reduction order in both runs
    return env


def load_weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    checkpoint = latest_checkpoint(run / "checkpoints")
    assert checkpoint is not None and checkpoint.name == f"step-{STEPS:06d}"
    return load_file(str(checkpoint / "model.safetensors"))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(
    tiny_model_dir: Path, testkit_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(CONFIG.format(model=tiny_model_dir, steps=STEPS), encoding="utf-8")
    env = subprocess_env(testkit_dir)

    whole = tmp_path / "whole"
    done = subprocess.run(
        train_command(config, whole), env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr

    broken = tmp_path / "broken"
    process = subprocess.Popen(train_command(config, broken), env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        latest = latest_checkpoint(broken / "checkpoints")
        if (latest is not None and latest.name >= "step-000002") or process.poll() is not None:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = latest_checkpoint(broken / "checkpoints")
    assert killed_at is not None and killed_at.name < f"step-{STEPS:06d}"

    resumed = subprocess.run(
        train_command(config, broken, "--resume"),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at step" in resumed.stderr

    expected, actual = load_weights(whole), load_weights(broken)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    rows_whole, rows_broken = (
        read_metrics(whole / "metrics.jsonl"),
        read_metrics(broken / "metrics.jsonl"),
    )
    assert [r["step"] for r in rows_broken] == list(range(1, STEPS + 1))
    for a, b in zip(rows_whole, rows_broken, strict=True):
        for key in ("reward_mean", "entropy", "entropy_coef", "lr", "loss", "response_length"):
            assert a[key] == b[key], (a["step"], key)


def test_resume_without_a_checkpoint_starts_fresh(tiny_model_dir: Path, tmp_path: Path) -> None:
    from arenagym.trainers.config import TaskConfig, load_config
    from arenagym.trainers.trainer import Trainer

    config = load_config(
        "grpo",
        [
            f'model.path="{tiny_model_dir}"',
            f'run.output_dir="{tmp_path}"',
            "run.steps=1",
            'model.device="cpu"',
        ],
    )
    config.tasks = [TaskConfig("TrainerTest-Chars-v0")]
    assert Trainer(config, resume=True).step_count == 0
