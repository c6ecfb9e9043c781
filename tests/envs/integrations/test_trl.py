"""The TRL adapter against the installed TRL: single-turn reward functions checked against the
env's own rewards, and a real ``GRPOTrainer`` run (CPU, tiny random model) on a multi-turn env
through :class:`MultiTurnRollout`, replayed token by token."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arenagym.agents.tiny_model import build_tiny_model
from arenagym.envs import list_envs
from arenagym.envs.integrations.session import EpisodeRef, TextSession, dataset_rows
from arenagym.envs.integrations.trl import (
    EPISODE_KEY,
    MultiTurnRollout,
    dataset,
    episode_reward,
    reward_function,
    single_turn_problem,
)

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

SINGLE_AGENT_IDS = sorted(list_envs(multi_agent=False))
SINGLE_TURN_IDS = {
    "Math-v0",
    "Math-Bundled-v0",
    "PrefInfer-v0",
    "PrefInfer-Comments-v0",
    "PrefInfer-Noisy-v0",
    "PrefInfer-PSoups-v0",
    "PrefInfer-Strict-v0",
}
MULTI_TURN_IDS = [env_id for env_id in SINGLE_AGENT_IDS if env_id not in SINGLE_TURN_IDS]
SEEDS = list(range(6))
WRONG = r"So it is \boxed{-987654321}."


def env_step_reward(seed: int, text: str, **env_kwargs: Any) -> float:
    """The env's own reward for ``text``, without the adapter."""
    env = gym.make("Math-v0", **env_kwargs)
    try:
        env.reset(seed=seed)
        return float(env.step(text)[1])
    finally:
        env.close()


def gold_answer(seed: int) -> str:
    env = gym.make("Math-v0")
    try:
        env.reset(seed=seed)
        return env.unwrapped._problem.answer
    finally:
        env.close()


def columns(rows: Any) -> dict[str, list[Any]]:
    return {name: list(rows[name]) for name in ("env_id", "env_kwargs", "seed")}


@pytest.fixture(scope="module")
def math_rows() -> Any:
    return dataset("Math-v0", SEEDS)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


# ------------------------------------------------------------------------ which ids are single-turn
def test_single_turn_ids() -> None:
    found = {env_id for env_id in SINGLE_AGENT_IDS if single_turn_problem(env_id) is None}
    assert found == SINGLE_TURN_IDS
    for env_id in sorted(found):  # the rule holds: one reply, any reply, ends the episode
        for reply in ("", "garbage ]]", r"\boxed{1}"):
            with TextSession(EpisodeRef(env_id, {}, 0)) as session:
                assert session.send(reply).done, (env_id, reply)


@pytest.mark.parametrize("env_id", MULTI_TURN_IDS)
def test_multi_turn_ids_are_refused(env_id: str) -> None:
    with pytest.raises(
        ValueError, match=r"is multi-turn \(max_turns=\d+.*rollout_func=MultiTurnRollout"
    ):
        reward_function(env_id)


def test_kwargs_decide_single_turn() -> None:
    assert single_turn_problem("Math-v0", {"max_turns": 2}) == "max_turns=2, max_invalid_actions=0"
    with pytest.raises(ValueError, match="Math-v0 is multi-turn"):
        reward_function("Math-v0", max_invalid_actions=1)
    assert single_turn_problem("RecInterUser-v0", {"pages": 1, "max_turns": 1,
                                                   "max_invalid_actions": 0}) is None  # fmt: skip


@pytest.mark.parametrize(
    ("env_id", "message"),
    [
        ("Nope-v0", "env_id: unknown env id 'Nope-v0'"),
        ("TextArena/Nim-AEC-v0", "multi-agent"),
        ("", "env_id: expected an arenagym id"),
    ],
)
def test_bad_env_ids(env_id: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        reward_function(env_id)
    with pytest.raises(ValueError, match=message):
        dataset(env_id, [0])


# ------------------------------------------------------------------------ single-turn rewards
def test_math_rewards_match_the_env(math_rows: Any) -> None:
    reward = reward_function("Math-v0")
    prompts, cols = math_rows["prompt"], columns(math_rows)
    right = [rf"The answer is \boxed{{{gold_answer(seed)}}}." for seed in SEEDS]
    assert reward(prompts, right, **cols) == [1.0] * len(SEEDS)
    assert reward(prompts, [WRONG] * len(SEEDS), **cols) == [0.0] * len(SEEDS)
    # another row's answer: whatever the env says, the function says
    shifted = right[1:] + right[:1]
    assert reward(prompts, shifted, **cols) == [
        env_step_reward(seed, text) for seed, text in zip(SEEDS, shifted, strict=True)
    ]
    # conversational completions, as TRL passes them for chat datasets
    chats = [[{"role": "assistant", "content": text}] for text in right]
    assert reward(prompts, chats, **cols) == [1.0] * len(SEEDS)
    # without prompts (a plain call), and with TRL's extra keyword arguments
    assert reward(completions=right, completion_ids=[[1]] * 6, trainer_state=None, **cols) == [
        1.0
    ] * len(SEEDS)


def test_penalty_and_noise_kwargs_are_the_envs(math_rows: Any) -> None:
    penalised = reward_function("Math-v0", invalid_action_penalty=0.5)
    cols = columns(math_rows)
    assert penalised(math_rows["prompt"], ["no idea"] * 6, **cols) == [-0.5] * 6
    flipped = reward_function("Math-v0", flip_prob=1.0)
    right = [rf"\boxed{{{gold_answer(seed)}}}" for seed in SEEDS]
    assert flipped(math_rows["prompt"], right, **cols) == [0.0] * 6
    assert flipped(math_rows["prompt"], [WRONG] * 6, **cols) == [1.0] * 6


def test_names_are_distinct_and_readable() -> None:
    plain = reward_function("Math-v0")
    penalised = reward_function("Math-v0", invalid_action_penalty=0.5, format_reward=0.1)
    named = reward_function("Math-v0", name="math_clean")
    assert plain.__name__ == "Math-v0"
    assert penalised.__name__ == "Math-v0[format_reward=0.1,invalid_action_penalty=0.5]"
    assert named.__name__ == "math_clean"
    assert len({plain.__name__, penalised.__name__, named.__name__}) == 3
    for bad in ("", "   ", 7):
        with pytest.raises(ValueError, match="name: expected a non-empty str"):
            reward_function("Math-v0", name=bad)


def test_rows_of_other_envs_get_none(math_rows: Any) -> None:
    other = dataset_rows("PrefInfer-v0", [0])[0]
    reward = reward_function("Math-v0")
    rewards = reward(
        [math_rows["prompt"][0], other["prompt"]],
        [rf"\boxed{{{gold_answer(0)}}}", "Prefers short answers."],
        env_id=["Math-v0", "PrefInfer-v0"],
        env_kwargs=[math_rows["env_kwargs"][0], other["env_kwargs"]],
        seed=[0, 0],
    )
    assert rewards == [1.0, None]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"env_kwargs": None}, "has no 'env_kwargs' column"),
        ({"seed": [0]}, r"column 'seed' has 1 rows for 2 completions"),
        ({"env_kwargs": ["{", "{}"]}, r"row 0: env_kwargs: not JSON"),
        ({"env_kwargs": ["[1]", "{}"]}, r"row 0: env_kwargs: expected a JSON object"),
        ({"seed": [0, -1]}, r"row 1: seed: expected an int >= 0"),
        ({"seed": [0, "1"]}, r"row 1: seed: expected an int >= 0"),
        ({"env_id": ["Math-v0", ""]}, r"row 1: env_id: expected an arenagym id"),
        ({"env_kwargs": ["{}", '{"max_turns": 2}']}, r"row 1: the episode did not end"),
    ],
)
def test_bad_columns_name_the_field(overrides: dict[str, Any], message: str) -> None:
    cols: dict[str, Any] = {"env_id": ["Math-v0"] * 2, "env_kwargs": ["{}"] * 2, "seed": [0, 1]}
    cols.update(overrides)
    cols = {key: value for key, value in cols.items() if value is not None}
    with pytest.raises(ValueError, match=message):
        reward_function("Math-v0")(None, [WRONG, WRONG], **cols)


def test_kwargs_that_change_the_task_are_caught(math_rows: Any) -> None:
    with pytest.raises(ValueError, match=r"row 0: the episode rebuilt .* does not open with"):
        reward_function("Math-v0", difficulty=5)(
            math_rows["prompt"][:1], [WRONG], **{k: v[:1] for k, v in columns(math_rows).items()}
        )


def test_completions_of_other_types_are_refused() -> None:
    with pytest.raises(TypeError, match=r"completions\[0\]: expected a str or a list"):
        reward_function("Math-v0")(None, [42], env_id=["Math-v0"], env_kwargs=["{}"], seed=[0])


PENALISED = reward_function("Math-v0", invalid_action_penalty=0.5)
garbage = st.text(max_size=120).filter(
    lambda t: not any(c.isdigit() for c in t) and "answer" not in t.lower() and "boxed" not in t
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=300), as_chat=st.booleans(), seed=st.integers(0, 2**31))
def test_fuzzed_completions_score_as_the_env(text: str, as_chat: bool, seed: int) -> None:
    completion: Any = [{"role": "assistant", "content": text}] if as_chat else text
    got = PENALISED(None, [completion], env_id=["Math-v0"], env_kwargs=["{}"], seed=[seed])
    assert got == [env_step_reward(seed, text, invalid_action_penalty=0.5)]


@settings(max_examples=30, deadline=None)
@given(text=garbage)
def test_garbage_gets_the_penalty(text: str) -> None:
    assert PENALISED(None, [text], env_id=["Math-v0"], env_kwargs=["{}"], seed=[1]) == [-0.5]


# ------------------------------------------------------------------------ dataset
def test_a_missing_framework_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match=r"needs 'datasets': pip install 'arenagym\[trl\]'"):
        dataset("Math-v0", [0])


def test_dataset_rows_rebuild_their_episodes(math_rows: Any) -> None:
    assert math_rows.column_names == ["prompt", "env_id", "env_kwargs", "seed"]
    assert list(math_rows["seed"]) == SEEDS
    for row in math_rows:
        ref = EpisodeRef.from_columns(row["env_id"], row["env_kwargs"], row["seed"])
        assert json.loads(row["prompt"][0][EPISODE_KEY]) == ref.columns()
        with TextSession(ref) as session:
            assert [(m["role"], m["content"]) for m in row["prompt"]] == [
                (m["role"], m["content"]) for m in session.messages
            ]
    with pytest.raises(ValueError, match="seeds: expected at least one seed"):
        dataset("Math-v0", [])
    with pytest.raises(ValueError, match="seed: expected an int >= 0"):
        dataset("Math-v0", [-1])


def test_trl_logs_two_reward_functions_under_two_keys(
    tiny_model: Path, math_rows: Any, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    config = GRPOConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, num_generations=2,
        max_completion_length=8, max_steps=1, use_cpu=True, report_to="none", logging_steps=1,
        save_strategy="no", seed=0,
    )  # fmt: skip
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model),
        processing_class=AutoTokenizer.from_pretrained(tiny_model, padding_side="left"),
        reward_funcs=[
            reward_function("Math-v0"),
            reward_function("Math-v0", name="penalised", invalid_action_penalty=0.5),
        ],
        args=config,
        train_dataset=math_rows,
    )
    trainer.train()
    logs = trainer.state.log_history[0]
    # gibberish never answers: the env's own scores, under each function's own key
    assert logs["rewards/Math-v0/mean"] == 0.0
    assert logs["rewards/penalised/mean"] == -0.5


# ------------------------------------------------------------------------ multi-turn
MED_ID = "MedDialog-En-v0"
MED_KWARGS = {"n_triplets": 2, "n_demos": 1, "demo_k": 1}


def test_rollout_arguments_are_checked() -> None:
    for field in ("max_turns", "max_turn_tokens", "max_completion_tokens", "max_workers"):
        with pytest.raises(ValueError, match=f"^{field}: expected an int >= 1"):
            MultiTurnRollout(**{field: 0})
    rollout = MultiTurnRollout()
    with pytest.raises(ValueError, match=rf"prompts\[0\]: .*no '{EPISODE_KEY}' key"):
        rollout([[{"role": "user", "content": "hi"}]], SimpleNamespace())
    with pytest.raises(ValueError, match=rf"prompts\[0\]: bad '{EPISODE_KEY}'"):
        rollout([[{"role": "user", "content": "hi", EPISODE_KEY: "{}"}]], SimpleNamespace())
    with pytest.raises(NotImplementedError, match="use_vllm=False"):
        rollout([], SimpleNamespace(use_vllm=True))


def test_episode_reward_needs_the_rollout_fields() -> None:
    with pytest.raises(ValueError, match="reads the 'env_reward' field"):
        episode_reward(["a"])
    with pytest.raises(ValueError, match="'env_reward' has 2 rows for 1 completions"):
        episode_reward(["a"], env_reward=[1.0, 2.0])
    logged: dict[str, float] = {}
    rewards = episode_reward(
        ["a", "b"], env_reward=[1, 0.5], env_turns=[2, 4], log_metric=logged.__setitem__
    )
    assert rewards == [1.0, 0.5]
    assert logged == {"env/turns": 3.0}


@pytest.fixture(scope="module")
def grpo_run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Two GRPO steps (4 groups of 2 episodes each) on MedDialog-En-v0, a multi-turn env, on CPU;
    one direct rollout call first."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    train = dataset(MED_ID, range(8), **MED_KWARGS)  # 2 steps x 4 prompts
    rollout = MultiTurnRollout(max_turns=3, max_turn_tokens=12)
    config = GRPOConfig(
        output_dir=str(tmp_path_factory.mktemp("grpo")), per_device_train_batch_size=8,
        num_generations=2, max_completion_length=12, max_steps=2, use_cpu=True, report_to="none",
        logging_steps=1, save_strategy="no", learning_rate=1e-2, seed=0,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model, padding_side="left")
    trainer = GRPOTrainer(
        model=model, processing_class=tokenizer, reward_funcs=[episode_reward], args=config,
        train_dataset=train, rollout_func=rollout,
    )  # fmt: skip
    prompts = [train[0]["prompt"]] * 2 + [train[1]["prompt"]] * 2  # as TRL's sampler repeats them
    torch.manual_seed(0)
    direct = rollout(prompts, trainer)
    played_directly = len(rollout.history)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer.train()
    changed = sum(
        float((p.detach() - before[name]).abs().sum()) for name, p in model.named_parameters()
    )
    return SimpleNamespace(
        trainer=trainer, rollout=rollout, tokenizer=tokenizer, prompts=prompts, direct=direct,
        played_directly=played_directly, changed=changed,
    )  # fmt: skip


def spans(ids: list[int], mask: list[int]) -> list[tuple[int, list[int]]]:
    """Consecutive runs of equal mask value: (mask value, ids)."""
    runs: list[tuple[int, list[int]]] = []
    for token, bit in zip(ids, mask, strict=True):
        if runs and runs[-1][0] == bit:
            runs[-1][1].append(token)
        else:
            runs.append((bit, [token]))
    return runs


def test_rollout_output_replays_exactly(grpo_run: SimpleNamespace) -> None:
    out, tokenizer = grpo_run.direct, grpo_run.tokenizer
    n = len(grpo_run.prompts)
    assert out["logprobs"] is None
    assert all(len(out[key]) == n for key in ("prompt_ids", "completion_ids", "env_mask"))
    for i, prompt in enumerate(grpo_run.prompts):
        ids, mask = out["completion_ids"][i], out["env_mask"][i]
        assert len(ids) == len(mask) and set(mask) <= {0, 1}
        ref = EpisodeRef.from_columns(**json.loads(prompt[0][EPISODE_KEY]))
        with TextSession(ref) as session:
            plain = [{"role": m["role"], "content": m["content"]} for m in session.messages]
            assert out["prompt_ids"][i] == tokenizer.apply_chat_template(
                plain, add_generation_prompt=True, tokenize=True, return_dict=False
            )
            runs = spans(ids, mask)
            assert runs[0][0] == 1 and runs[-1][0] == 1  # the model speaks first and last
            for bit, run in runs:
                if bit == 1:  # the model's sampled tokens: their text is the action
                    assert len(run) <= 12
                    outcome = session.send(tokenizer.decode(run, skip_special_tokens=True))
                else:  # the env's turn: its observation, rendered by the chat template
                    assert outcome.observation.strip()
                    assert outcome.observation in tokenizer.decode(run, skip_special_tokens=True)
            assert session.turns == out["env_turns"][i] == 3  # three model turns, two env turns
            assert session.total_reward == pytest.approx(out["env_reward"][i])
    assert grpo_run.rollout.history[0].turns == 3
    assert grpo_run.rollout.history[0].env_tokens == len(out["env_mask"][0]) - sum(
        out["env_mask"][0]
    )


def test_grpo_trains_through_the_multi_turn_env(grpo_run: SimpleNamespace) -> None:
    steps = [log for log in grpo_run.trainer.state.log_history if "loss" in log]
    assert len(steps) == 2
    # the env was stepped more than once per episode, by the trainer's own logs and the rollout's
    assert all(log["env/turns"] > 1 for log in steps)
    played = list(grpo_run.rollout.history)[grpo_run.played_directly :]
    assert len(played) == 16 and all(episode.turns > 1 for episode in played)
    # TRL got the env mask: its completion length counts only the model's tokens
    for step, log in enumerate(steps):
        batch = played[8 * step : 8 * step + 8]
        assert log["completions/mean_length"] == pytest.approx(
            sum(e.model_tokens for e in batch) / 8
        )
        assert log["rewards/episode_reward/mean"] == pytest.approx(sum(e.reward for e in batch) / 8)
    assert all(e.env_tokens > 0 for e in played)
    # and learned from the env's rewards: non-zero gradients, moved parameters
    assert any(log["grad_norm"] > 0 for log in steps)
    assert grpo_run.changed > 0


def test_rollout_limits(grpo_run: SimpleNamespace) -> None:
    prompts, trainer = grpo_run.prompts[:2], grpo_run.trainer
    capped = MultiTurnRollout(max_turn_tokens=4, max_completion_tokens=20)(prompts, trainer)
    # the env's answer does not fit in 20 tokens: one turn, no env tokens, stopped by the cap
    assert capped["env_turns"] == [1, 1]
    assert capped["env_stop_reason"] == ["max_completion_tokens"] * 2
    assert all(1 <= len(ids) <= 4 for ids in capped["completion_ids"])
    assert all(set(mask) == {1} for mask in capped["env_mask"])
    two = MultiTurnRollout(max_turns=2, max_turn_tokens=4)(prompts, trainer)
    assert two["env_turns"] == [2, 2] and two["env_stop_reason"] == ["max_turns"] * 2
    assert all(mask.count(0) > 0 and sum(mask) <= 8 for mask in two["env_mask"])
