r"""The dual self-reward (SUDER): it is the policy's mean log p(input | output, inverse prompt),
computed in batches exactly as one by one, standardised per group and mixed as configured;
configs and task lists without an inverse task are refused by name; on SmolLM2 it ranks a
correct Math-v0 solution above a corrupted one; the trainer trains on it and logs it beside the
env's clean score."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import arenagym.envs  # noqa: F401  (registers Math-v0)
from arenagym.agents.baselines import MathSolverAgent
from arenagym.agents.rollout import Step, Trajectory
from arenagym.trainers.config import ConfigError, TaskConfig, load_config
from arenagym.trainers.dual_reward import (
    DualSelfReward,
    check_inverse_tasks,
    inverse_log_likelihoods,
    standardize_groups,
)
from arenagym.trainers.trainer import Trainer

Loaded = tuple[Any, Any]


def load(path: Path) -> Loaded:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> Loaded:
    return load(tiny_model_dir)


@pytest.fixture(scope="module")
def smollm2() -> Loaded:
    pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")
    from arenagym.agents.models import ModelError, resolve_model

    try:
        path = resolve_model("smollm2-135m-instruct", progress=False)
    except ModelError as error:
        pytest.skip(f"SmolLM2 is not available: {error}")
    return load(path)


def direct_log_likelihood(
    loaded: Loaded, messages: list[dict[str, str]], target: str, normalize: bool
) -> float:
    """log p(target | messages), one sequence, written out without the trainer's helpers."""
    model, tokenizer = loaded
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    answer = tokenizer(target, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt + answer])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    logp = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
    total = float(logp.gather(-1, torch.tensor(answer)[:, None]).sum())
    return total / len(answer) if normalize else total


def math_episode(seed: int, difficulty: int = 2) -> tuple[str, Any, str]:
    """Problem text, inverse task and task id of Math-v0 episode ``seed``."""
    env = gym.make("Math-v0", difficulty=difficulty)
    problem, info = env.reset(seed=seed)
    task = env.unwrapped.inverse_task()
    env.close()
    return problem, task, info["task_id"]


def trajectory(
    index: int, seed: int, action: str, reward: float, difficulty: int = 2
) -> Trajectory:
    problem, _, task_id = math_episode(seed, difficulty)
    step = Step(problem, action, reward)
    return Trajectory(
        index, "Math-v0", {"difficulty": difficulty}, seed, "failed", [step], task_id=task_id,
        reward=reward, clean_reward=reward,
    )  # fmt: skip


CASES = [
    (0, r"50% of 142 is 71. The answer is \boxed{71}."),
    (1, "I do not know."),
    (2, r"Eliminating a variable gives (x, y) = (-1, -4). The answer is \boxed{(-1, -4)}."),
]


# ------------------------------------------------------------------- the score itself
@pytest.mark.parametrize("which", ["tiny", "smollm2"])
@pytest.mark.parametrize("normalize", [True, False])
def test_the_reward_is_the_direct_log_likelihood_of_the_input(
    which: str, normalize: bool, request: pytest.FixtureRequest
) -> None:
    loaded = request.getfixturevalue(which)
    requests = []
    for seed, solution in CASES:
        _, task, _ = math_episode(seed)
        requests.append((task.messages(solution), task.target))
    scores = inverse_log_likelihoods(*loaded, requests, normalize=normalize, batch_size=4)
    direct = [direct_log_likelihood(loaded, m, t, normalize) for m, t in requests]
    assert scores == pytest.approx(direct, rel=1e-5, abs=1e-4)  # float32, batched or not
    assert all(s < 0 for s in scores)


def test_batching_gives_the_numbers_of_one_by_one(tiny: Loaded) -> None:
    # different prompt and target lengths, so batches are padded
    ask = [{"role": "system", "content": "Recover the input."}]
    requests = [
        ([*ask, {"role": "user", "content": "y" * n}], "x = " + "1" * (n % 5 + 1))
        for n in (1, 40, 7, 23, 3, 60, 12)
    ]
    one_by_one = inverse_log_likelihoods(*tiny, requests, batch_size=1)
    for size in (2, 3, 16):
        batched = inverse_log_likelihoods(*tiny, requests, batch_size=size)
        assert batched == pytest.approx(one_by_one, abs=1e-5)


def test_scoring_keeps_no_gradient_and_restores_the_mode(tiny: Loaded) -> None:
    model, tokenizer = tiny
    model.train()
    _, task, _ = math_episode(0)
    [score] = inverse_log_likelihoods(model, tokenizer, [(task.messages("7"), task.target)])
    assert isinstance(score, float)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    model.eval()  # as the other tests of this module expect it


def test_a_prompt_longer_than_the_context_is_cut_from_the_left(tiny: Loaded) -> None:
    model, tokenizer = tiny
    messages = [{"role": "user", "content": "many words " * 200}]
    [cut] = inverse_log_likelihoods(model, tokenizer, [(messages, "abc")], max_length=64)
    assert math.isfinite(cut)
    with pytest.raises(ValueError, match="does not fit the model's context of 2"):
        inverse_log_likelihoods(model, tokenizer, [(messages, "abc def ghi")], max_length=2)


# ------------------------------------------------------ groups, mixing, replaying episodes
def test_group_standardisation() -> None:
    values = [1.0, 2.0, 6.0, -3.0, -3.0, 5.0]
    groups = ["a", "a", "a", "b", "b", "c"]
    out = standardize_groups(values, groups)
    a = np.array(values[:3])
    assert out[:3] == pytest.approx(list((a - a.mean()) / (a.std(ddof=1) + 1e-6)))
    assert out[3:] == [0.0, 0.0, 0.0]  # equal rewards, and a group of one, carry nothing
    assert standardize_groups([], []) == []


def test_the_source_scores_replayed_episodes_standardised_and_mixed(tiny: Loaded) -> None:
    # two prompts (seeds 5 and 9), three sampled outputs each, env rewards 0/1
    outputs = ["x = 3", "The answer is 12.", r"\boxed{0}"]
    trajectories = [
        trajectory(i, seed, text, float(i % 2))
        for i, (seed, text) in enumerate((s, o) for s in (5, 9) for o in outputs)
    ]
    model, tokenizer = tiny
    raw = DualSelfReward(model, tokenizer).score(trajectories)
    requests = []
    for t in trajectories:
        _, task, _ = math_episode(t.seed)  # type: ignore[arg-type]
        requests.append((task.messages(t.steps[-1].action), task.target))
    assert raw == pytest.approx(inverse_log_likelihoods(model, tokenizer, requests), abs=1e-6)

    source = DualSelfReward(model, tokenizer, group_standardize=True, mix=0.25, batch_size=2)
    mixed = source.score(trajectories)
    standard = standardize_groups(raw, [0, 0, 0, 1, 1, 1])
    env = [t.reward for t in trajectories]
    expected = [0.75 * d + 0.25 * e for d, e in zip(standard, env, strict=True)]
    assert mixed == pytest.approx(expected, abs=1e-5)
    assert source.last_metrics["dual_reward_mean"] == pytest.approx(sum(raw) / 6, abs=1e-6)
    assert source.last_metrics["env_reward_mean"] == pytest.approx(0.5)


def test_an_episode_that_the_seed_does_not_replay_is_an_error(tiny: Loaded) -> None:
    source = DualSelfReward(*tiny)
    wrong = trajectory(0, 5, "x", 0.0)
    wrong.task_id = "proc/something/else"
    with pytest.raises(RuntimeError, match="replaying the reset gave task"):
        source.score([wrong])
    unseeded = trajectory(0, 5, "x", 0.0)
    unseeded.seed = None
    with pytest.raises(RuntimeError, match="unseeded episode cannot be replayed"):
        source.score([unseeded])


# ----------------------------------------------------------------------------- config
def test_the_config_takes_the_dual_options() -> None:
    config = load_config(
        "grpo",
        [
            'reward.source="dual"',
            "reward.dual_normalize=false",
            "reward.dual_group_standardize=true",
            "reward.dual_mix=0.5",
            "reward.batch_size=4",
        ],
    )
    r = config.reward
    assert (r.source, r.dual_normalize, r.dual_group_standardize, r.dual_mix, r.batch_size) == (
        "dual", False, True, 0.5, 4,
    )  # fmt: skip
    defaults = load_config("grpo", ['reward.source="dual"']).reward
    assert (defaults.dual_normalize, defaults.dual_group_standardize, defaults.dual_mix) == (
        True, False, 0.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ('reward.source="duel"', r"reward\.source must be one of env, reward_model, dual"),
        ("reward.dual_mix=1.5", r"reward\.dual_mix must be in \[0, 1\]"),
        ("reward.dual_mix=-0.1", r"reward\.dual_mix must be in \[0, 1\]"),
        ('reward.dual_normalize="yes"', r"\[reward\]: dual_normalize must be bool"),
        ("reward.dual_group_standardize=1", r"\[reward\]: dual_group_standardize must be bool"),
        ("reward.batch_size=0", r"reward\.batch_size must be >= 1"),
        ("reward.dual_mixx=0.5", r"\[reward\] has no key 'dual_mixx'"),
    ],
)
def test_bad_dual_options_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("grpo", [override])


def test_a_task_without_an_inverse_task_is_refused_before_the_model_loads(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModelForCausalLM

    def no_loading(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was loaded before the task list was checked")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", no_loading)
    check_inverse_tasks([TaskConfig("Math-v0", {"difficulty": 1})], "run.toml")
    config = load_config(
        "grpo",
        ['reward.source="dual"', f'model.path="{tiny_model_dir}"', 'model.device="cpu"'],
    )
    config.tasks = [TaskConfig("Math-v0"), TaskConfig("TrainerTest-Chars-v0")]
    config.run.output_dir = str(tmp_path / "run")
    with pytest.raises(ConfigError, match=r"tasks\[1\]: reward\.source = \"dual\" needs an env"):
        Trainer(config)
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------- SmolLM2 ranks solutions
def corrupt_numbers(text: str, rng: np.random.Generator) -> str:
    """Every number shifted by 1-9: a fluent solution of some other problem, wrong answer."""
    return re.sub(r"\d+", lambda m: str(int(m.group()) + int(rng.integers(1, 10))), text)


def test_smollm2_ranks_a_correct_solution_above_a_corrupted_one(smollm2: Loaded) -> None:
    # 20 fixed Math-v0 problems (difficulty 2, seeds 0-19), each with the scripted solver's
    # worked solution (checked correct by the env) and the same solution with its numbers
    # shifted. Measured: 20/20 ranked right, mean margin 0.53 nats per problem token.
    env = gym.make("Math-v0", difficulty=2)
    solver = MathSolverAgent()
    requests = []
    for seed in range(20):
        problem, _ = env.reset(seed=seed)
        solver.reset("")
        solution = solver.act(problem)
        task = env.unwrapped.inverse_task()
        corrupted = corrupt_numbers(solution, np.random.default_rng(seed))
        assert corrupted != solution
        requests += [
            (task.messages(solution), task.target),
            (task.messages(corrupted), task.target),
        ]
        assert env.step(solution)[4]["stop_reason"] == "solved"
    env.close()
    scores = inverse_log_likelihoods(*smollm2, requests, batch_size=8)
    correct, corrupted_scores = scores[0::2], scores[1::2]
    margins = [c - w for c, w in zip(correct, corrupted_scores, strict=True)]
    fraction = sum(m > 0 for m in margins) / len(margins)
    assert fraction >= 0.9, margins
    assert sum(margins) / len(margins) > 0.25, margins


# ------------------------------------------------------------------------ the trainer
def test_the_trainer_runs_on_the_dual_reward_and_logs_both_rewards(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = load_config(
        "grpo",
        [
            f'model.path="{tiny_model_dir}"',
            'model.device="cpu"',
            f'run.output_dir="{tmp_path}"',
            "run.steps=2",
            "run.checkpoint_every=0",
            "rollout.prompts_per_step=2",
            "rollout.group_size=3",
            "rollout.max_tokens=6",
            "rollout.context_stages=[]",
            "optim.lr=0.001",
            'reward.source="dual"',
            "reward.batch_size=4",
        ],
    )
    config.tasks = [TaskConfig("Math-v0", {"difficulty": 1})]
    trainer = Trainer(config)
    assert isinstance(trainer.reward_source, DualSelfReward)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    records = trainer.train()
    assert [r["step"] for r in records] == [1, 2]
    for record in records:
        # the self-reward alone is trained on; the env's rewards are logged beside it
        assert record["reward_mean"] == pytest.approx(record["dual_reward_mean"], abs=1e-6)
        assert record["dual_reward_mean"] < 0
        assert 0.0 <= record["clean_reward_mean"] <= 1.0
        assert 0.0 <= record["env_reward_mean"] <= 1.0
        assert record["samples"] == 6 and not record.get("skipped_update")
    after = list(trainer.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    from arenagym.trainers.metrics import read_metrics

    logged = read_metrics(tmp_path / "metrics.jsonl")
    assert all("dual_reward_mean" in row and "clean_reward_mean" in row for row in logged)


def test_the_dual_reward_trains_on_image_edit_too(tiny_model_dir: Path, tmp_path: Path) -> None:
    """ImageEdit-v0's inverse task (scene + edit program -> the instruction) feeds the same
    reward source: every sample is scored against its episode's own instruction."""
    config = load_config(
        "grpo",
        [
            f'model.path="{tiny_model_dir}"',
            'model.device="cpu"',
            f'run.output_dir="{tmp_path}"',
            "run.steps=1",
            "run.checkpoint_every=0",
            "rollout.prompts_per_step=2",
            "rollout.group_size=2",
            "rollout.max_tokens=6",
            "rollout.context_stages=[]",
            'reward.source="dual"',
        ],
    )
    config.tasks = [
        TaskConfig(
            "ImageEdit-Easy-v0", {"observation": "text", "max_turns": 1, "max_invalid_actions": 0}
        )
    ]
    trainer = Trainer(config)
    [record] = trainer.train()
    assert record["dual_reward_mean"] < 0 and record["samples"] == 4
    assert record["reward_mean"] == pytest.approx(record["dual_reward_mean"], abs=1e-6)
