"""``arenagym train`` (and ``merge``) through :mod:`arenagym.cli`: help, bad input, a preset end to
end."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from arenagym.cli import main
from arenagym.trainers.config import ConfigError, load_config
from arenagym.trainers.metrics import read_metrics


def test_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "--resume" in out and "or1" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nonexistent"], "neither a config file nor a preset"),
        (["grpo"], "no model"),
        (["grpo", "--model", "/no/such/dir"], "model.path: no model directory at '/no/such/dir'"),
        (["grpo", "--model", "Qwen/Qwen2.5-0.5B"], "looks like a Hugging Face hub id"),
        (["grpo", "--model", ".", "--set", "optim.lrr=1"], "[optim] has no key 'lrr'"),
        (["grpo", "--model", ".", "--set", "algorithm.name=a2c"], "algorithm.name must be"),
        (["missing.toml"], "no such config file"),
    ],
)
def test_bad_input_is_one_line_and_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("arenagym train: error:")


def test_config_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[rollout]\ngroup_size = 'many'\n")
    with pytest.raises(ConfigError, match=r"bad.toml: \[rollout\]: group_size must be int"):
        load_config(path)
    path.write_text("[rollouts]\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: unknown section"):
        load_config(path)
    path.write_text("[run\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_registry_names_work_where_a_model_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("safetensors")
    monkeypatch.setenv("ARENAGYM_HOME", str(tmp_path / "home"))
    out = tmp_path / "merged"
    assert main(["merge", "--method", "linear", "--models", "tiny", "tiny", "--output", str(out)]) == 0
    tiny = tmp_path / "home" / "models" / "tiny"
    from safetensors.numpy import load_file

    merged, original = load_file(out / "model.safetensors"), load_file(tiny / "model.safetensors")
    assert merged.keys() == original.keys()
    assert all((merged[k] == original[k]).all() for k in merged)  # the mean of a model with itself
    capsys.readouterr()
    assert main(["merge", "--method", "linear", "--models", "tiny", "nope/nope", "--output", str(out)]) == 2
    assert "--models: model 'nope/nope' looks like a Hugging Face hub id" in capsys.readouterr().err


def test_usage_errors_are_one_line_naming_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("arenagym train: error: the following arguments are required: config")
    assert err.count("\n") == 1
    assert main(["train", "grpo", "--resume", "--overwrite"]) == 2
    assert "not allowed with argument --resume" in capsys.readouterr().err
    assert main(["rm", "score", "pairs.jsonl"]) == 2
    assert capsys.readouterr().err.startswith("arenagym rm: error: argument COMMAND: invalid choice")


def test_train_a_preset_end_to_end_from_the_command_line(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "arenagym",  # the `arenagym` command
            "train",
            "drgrpo",
            "--model",
            str(tiny_model_dir),
            "--output",
            str(out),
            "--steps",
            "2",
            "--device",
            "cpu",
            "--set",
            "rollout.prompts_per_step=2",
            "--set",
            "rollout.group_size=2",
            "--set",
            "rollout.max_tokens=4",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "step 2/2" in done.stdout and f"done: {out}" in done.stdout
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    assert all(r["samples"] == 4 and not r.get("skipped_update") for r in records)  # it trained
    assert all(sum(r["stop_reasons"].values()) == 4 for r in records)
    assert (out / "checkpoints" / "step-000002" / "model.safetensors").is_file()


def test_a_generation_budget_beyond_the_models_context_is_refused(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # or1 stages its budget from 8192 tokens; the tiny model's context is 2048
    status = main(["train", "or1", "--model", str(tiny_model_dir), "--output", str(tmp_path)])
    assert status == 2
    error = capsys.readouterr().err
    assert "context_overflow" in error and "rollout.max_tokens" in error


def test_the_progress_lines_show_the_evaluation(tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable, "-m", "arenagym", "train", "drgrpo", "--model", str(tiny_model_dir),
            "--output", str(out), "--steps", "1", "--device", "cpu",
            "--set", "rollout.prompts_per_step=2", "--set", "rollout.group_size=2",
            "--set", "rollout.max_tokens=4", "--set", "eval.episodes=2", "--set", "eval.every=1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(r"step 1/1 .* eval accuracy [01]\.\d{3} \(\d+ episodes\)", done.stdout)
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [0, 1]
