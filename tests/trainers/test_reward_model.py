"""Bradley-Terry reward models on the tiny model: pair files, training, scoring, pairwise
accuracy (``arenagym rm eval``), and use as the trainer's reward source."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from arenagym.cli import main
from arenagym.trainers.reward_model import (
    PairsError,
    RewardModelScorer,
    evaluate_pairs,
    read_pairs,
    train_reward_model,
)

NAMES = ["Ann", "Bob", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hal", "Ida", "Jo", "Kai", "Lu"]


def pair_lines(names: list[str]) -> str:
    rows = [
        {"prompt": f"Is {n} here?", "chosen": f"Yes, {n} is here.", "rejected": f"No, {n} left."}
        for n in names
    ]
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture(scope="module")
def trained_rm(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rm")
    pairs = read_pairs(io.StringIO(pair_lines(NAMES[:8])))
    _, losses = train_reward_model(pairs, tiny_model_dir, out, epochs=6, lr=2e-3, batch_size=4)
    assert losses[-1] < losses[0]
    return out


def test_pair_file_layouts_and_errors(tmp_path: Path) -> None:
    messages = {
        "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}],
    }
    [pair] = read_pairs(io.StringIO(json.dumps(messages) + "\n"))
    assert pair.rejected[-1] == {"role": "assistant", "content": "b"}
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        '{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q", "chosen": "a"}\n'
    )
    with pytest.raises(PairsError, match=r"pairs.jsonl:2: missing field 'rejected'"):
        read_pairs(path)
    path.write_text("not json\n")
    with pytest.raises(PairsError, match=r"pairs.jsonl:1: not valid JSON"):
        read_pairs(path)
    path.write_text('{"chosen": "a", "rejected": "b"}\n')
    with pytest.raises(PairsError, match="'prompt' is required"):
        read_pairs(path)
    path.write_text('{"chosen": [{"role": "user"}], "rejected": "b", "prompt": "q"}\n')
    with pytest.raises(PairsError, match=r"chosen\[0\]"):
        read_pairs(path)


def test_trained_reward_model_ranks_held_out_pairs(trained_rm: Path, tiny_model_dir: Path) -> None:
    held_out = read_pairs(io.StringIO(pair_lines(NAMES[8:])))
    trained = evaluate_pairs(RewardModelScorer(trained_rm), held_out)
    assert trained["accuracy"] == 1.0 and trained["pairs"] == 4.0
    assert trained["margin_mean"] > 0
    assert json.loads((trained_rm / "reward_model.json").read_text())["pairs"] == 8


def test_scores_are_sigmoid_of_raw_scores(trained_rm: Path) -> None:
    import math

    conversations = [
        [{"role": "user", "content": "Is Ann here?"}, {"role": "assistant", "content": text}]
        for text in ("Yes, Ann is here.", "No, Ann left.")
    ]
    raw = RewardModelScorer(trained_rm, normalize="raw", batch_size=1).score(conversations)
    mapped = RewardModelScorer(trained_rm).score(conversations)
    assert mapped == pytest.approx([1 / (1 + math.exp(-r)) for r in raw], rel=1e-5)
    assert all(0 < m < 1 for m in mapped) and raw[0] > raw[1]


def test_rm_cli_eval_and_errors(
    trained_rm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(pair_lines(NAMES[8:]))
    assert main(["rm", "eval", str(pairs), "--model", str(trained_rm)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == 1.0
    pairs.write_text("{}\n")
    assert main(["rm", "eval", str(pairs), "--model", str(trained_rm)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pairs.jsonl:1: missing field 'chosen'" in err
    assert main(["rm", "--help"]) == 0 and "rm eval pairs.jsonl" in capsys.readouterr().out


def test_reward_model_as_the_trainers_reward_source(
    trained_rm: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from arenagym.trainers.config import TaskConfig, load_config
    from arenagym.trainers.trainer import Trainer

    config = load_config(
        "grpo",
        [
            f'model.path="{tiny_model_dir}"',
            'model.device="cpu"',
            f'run.output_dir="{tmp_path}"',
            "run.steps=1",
            "run.checkpoint_every=0",
            "rollout.prompts_per_step=1",
            "rollout.group_size=4",
            "rollout.max_tokens=4",
            'reward.source="reward_model"',
            f'reward.model="{trained_rm}"',
        ],
    )
    config.tasks = [TaskConfig("TrainerTest-Chars-v0")]
    trainer = Trainer(config)
    [record] = trainer.train()
    assert 0.0 < record["reward_mean"] < 1.0  # sigmoid scores, not the env's
    assert record["samples"] == 4
