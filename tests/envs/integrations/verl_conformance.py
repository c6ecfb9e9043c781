"""Conformance of arenagym's verl adapter to the installed verl (run in .venv-verl, not collected
by the main test run: tests/envs/integrations/test_verl.py starts it with .venv-verl/bin/python).

Everything below is verl's own code: the trainer config it ships, its agent-loop registry and YAML
loader, ``RLHFDataset`` reading the parquet file, its ``collate_fn`` and ``DataProto``, and
``AgentLoopWorker.generate_sequences``, which instantiates the agent loop with hydra, runs it and
pads the trajectories into the batch the trainer consumes. The one stand-in is the LLM server
(``LLMServerClient``, vLLM/SGLang on GPUs): a scripted server answers ``generate`` with the token
ids of scripted replies, so that the episodes can be replayed on ``gymnasium.make`` and compared.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
import verl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from verl.experimental.agent_loop.agent_loop import (
    AgentLoopBase,
    AgentLoopWorker,
    _agent_loop_registry,
)
from verl.protocol import DataProto
from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn
from verl.workers.rollout.replica import TokenOutput

import arenagym.envs  # noqa: F401  (registers the ids)
from arenagym.agents.tiny_model import build_tiny_model
from arenagym.envs.integrations import verl as adapter

MATH = ("Math-v0", {"difficulty": 1, "max_turns": 3, "max_invalid_actions": 2}, 3)
TICTACTOE = ("TextArena/TicTacToe-v0", {}, 0)
TICTACTOE_REPLIES = ["I will win.", "[4]", "[0]", "[1]", "[2]", "[3]", "[5]", "[6]", "[7]", "[8]"]


def gold_answer(env_id: str, env_kwargs: dict[str, Any], seed: int) -> str:
    """The Math answer, read off a probe episode's last step (the env reports it when it ends)."""
    env = gym.make(env_id, **{**env_kwargs, "max_turns": 1})
    env.reset(seed=seed)
    *_, info = env.step(r"\boxed{-12345}")
    env.close()
    return str(info["gold_answer"])


def play_on_gymnasium(
    env_id: str, env_kwargs: dict[str, Any], seed: int, replies: Iterator[str]
) -> dict[str, Any]:
    """The reference: the same episode stepped on ``gymnasium.make`` with the same replies."""
    env = gym.make(env_id, **env_kwargs)
    observation, _ = env.reset(seed=seed)
    total, turns, observations = 0.0, 0, [observation]
    while True:
        observation, reward, terminated, truncated, info = env.step(next(replies))
        total, turns = total + float(reward), turns + 1
        observations.append(observation)
        if terminated or truncated:
            env.close()
            return {
                "reward": total,
                "turns": turns,
                "stop": info["stop_reason"],
                "obs": observations,
            }


class ScriptedServer:
    """Stands in for verl's ``LLMServerClient`` (the vLLM/SGLang servers): ``generate`` answers
    each request with the token ids of the next scripted reply of that episode, plus ``<|im_end|>``,
    as a chat model stops. An episode is told apart by its first prompt."""

    def __init__(self, tokenizer: Any, scripts: dict[str, list[str]]) -> None:
        self.tokenizer = tokenizer
        self.scripts = scripts  # a text in the episode's first prompt -> its replies (cycled)
        self.by_request: dict[str, Iterator[str]] = {}
        self.prompts: dict[str, list[list[int]]] = {}
        self.eos = tokenizer.convert_tokens_to_ids("<|im_end|>")

    async def generate(
        self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **kw: Any
    ) -> TokenOutput:
        assert {"temperature", "top_p"} <= set(sampling_params)
        if request_id not in self.by_request:
            text = self.tokenizer.decode(prompt_ids)
            (key,) = [key for key in self.scripts if key in text]
            self.by_request[request_id] = itertools.cycle(self.scripts[key])
        self.prompts.setdefault(request_id, []).append(list(prompt_ids))
        reply = next(self.by_request[request_id])
        ids = [*self.tokenizer.encode(reply, add_special_tokens=False), self.eos]
        return TokenOutput(token_ids=ids, log_probs=[-1.0] * len(ids), stop_reason="completed")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("verl")


@pytest.fixture(scope="module")
def config(workdir: Path) -> Any:
    """verl's own PPO trainer config, pointed at a tiny model and the generated agent-loop YAML."""
    config = OmegaConf.load(
        Path(verl.__file__).parent / "trainer/config/_generated_ppo_trainer.yaml"
    )
    model = build_tiny_model(workdir / "model", seed=0)
    config.actor_rollout_ref.model.path = str(model)
    rollout = config.actor_rollout_ref.rollout
    rollout.name = "vllm"  # only read, never started here
    rollout.prompt_length = 1024
    rollout.response_length = 8192
    rollout.calculate_log_probs = True
    rollout.agent.agent_loop_config_path = str(
        adapter.write_agent_loop_config(workdir / "agent_loops.yaml")
    )
    config.data.max_prompt_length = 1024
    config.data.cache_dir = str(workdir / "cache")
    return config


def make_batch(config: Any, workdir: Path, tokenizer: Any, specs: list[tuple]) -> DataProto:
    """Rows written by the adapter, read back by verl's RLHFDataset, collated as verl does."""
    rows = []
    for env_id, env_kwargs, seed in specs:
        rows += adapter.verl_rows(env_id, [seed], env_kwargs, start_index=len(rows))
    path = adapter.write_parquet(rows, workdir / f"rows-{len(list(workdir.iterdir()))}.parquet")
    dataset = RLHFDataset([str(path)], tokenizer, config.data)
    return DataProto.from_single_dict(collate_fn([dataset[i] for i in range(len(dataset))]))


def test_agent_loop_is_a_verl_agent_loop_registered_by_name() -> None:
    cls = adapter.ArenaGymAgentLoop
    assert issubclass(cls, AgentLoopBase)
    assert cls is adapter.agent_loop_class()
    # verl's @register entry: what hydra.utils.instantiate locates
    assert _agent_loop_registry[adapter.AGENT_NAME] == {"_target_": adapter.AGENT_LOOP_TARGET}
    from hydra.utils import get_class

    assert get_class(adapter.AGENT_LOOP_TARGET) is cls


def test_worker_loads_the_agent_loop_from_the_generated_yaml(config: Any) -> None:
    _agent_loop_registry.pop(adapter.AGENT_NAME, None)
    _agent_loop_registry.pop("arenagym_short", None)
    path = Path(config.actor_rollout_ref.rollout.agent.agent_loop_config_path)
    other = adapter.write_agent_loop_config(
        path.with_name("short.yaml"), "arenagym_short", max_turns=1
    )
    AgentLoopWorker(config, llm_client=None)
    entry = _agent_loop_registry[adapter.AGENT_NAME]
    assert entry["name"] == adapter.AGENT_NAME and entry["_target_"] == adapter.AGENT_LOOP_TARGET
    short = OmegaConf.merge(config, {"actor_rollout_ref": {"rollout": {"agent": {}}}})
    short.actor_rollout_ref.rollout.agent.agent_loop_config_path = str(other)
    AgentLoopWorker(short, llm_client=None)
    assert _agent_loop_registry["arenagym_short"]["max_turns"] == 1


@pytest.fixture(scope="module")
def rollout(config: Any, workdir: Path) -> dict[str, Any]:
    """One batch (a 3-turn Math episode, a TicTacToe game) through AgentLoopWorker."""
    answer = gold_answer(*MATH)
    math_replies = ["Let me think.", r"\boxed{-1}", rf"The answer is \boxed{{{answer}}}"]
    worker = AgentLoopWorker(config, llm_client=None)
    math_prompt = gym.make(MATH[0], **MATH[1]).reset(seed=MATH[2])[0]
    tictactoe_prompt = "You are Player"
    server = ScriptedServer(
        worker.tokenizer, {math_prompt: math_replies, tictactoe_prompt: TICTACTOE_REPLIES}
    )
    worker.llm_client = server
    batch = make_batch(config, workdir, worker.tokenizer, [MATH, TICTACTOE])
    output = asyncio.run(worker.generate_sequences(batch))
    references = [
        play_on_gymnasium(*MATH, iter(math_replies)),
        play_on_gymnasium(*TICTACTOE, itertools.cycle(TICTACTOE_REPLIES)),
    ]
    return {"output": output, "references": references, "worker": worker, "server": server}


def test_rewards_turns_and_stop_reasons_match_gymnasium(rollout: dict[str, Any]) -> None:
    output, references = rollout["output"], rollout["references"]
    scores = output.batch["rm_scores"].sum(dim=-1).tolist()
    assert scores == pytest.approx([r["reward"] for r in references])
    assert references[0]["reward"] == 1.0 and references[0]["turns"] == 3  # solved on turn 3
    assert references[1]["turns"] > 3  # a multi-turn game
    # assistant turns + env turns + the prompt, as verl counts them
    assert output.non_tensor_batch["__num_turns__"].tolist() == [2 * r["turns"] for r in references]
    assert list(output.non_tensor_batch["env_stop_reason"]) == [r["stop"] for r in references]
    turn_scores = output.non_tensor_batch["turn_scores"]
    assert [sum(t) for t in turn_scores] == pytest.approx([r["reward"] for r in references])
    assert [len(t) for t in turn_scores] == [r["turns"] for r in references]


def test_env_turns_are_masked_user_messages_and_replies_are_trained(
    rollout: dict[str, Any],
) -> None:
    output, references, tokenizer = (
        rollout["output"],
        rollout["references"],
        rollout["worker"].tokenizer,
    )
    for row, reference in enumerate(references):
        responses = output.batch["responses"][row]
        mask = output.batch["response_mask"][row].bool()
        attention = output.batch["attention_mask"][row, -responses.shape[0] :].bool()
        sampled = tokenizer.decode(responses[mask].tolist())
        env_text = tokenizer.decode(responses[attention & ~mask].tolist())
        # every env answer but the last (the episode is over) is a user turn, not trained on
        for observation in reference["obs"][1:-1]:
            assert f"<|im_start|>user\n{observation}<|im_end|>" in env_text
            assert observation not in sampled
        assert env_text.count("<|im_start|>user") == reference["turns"] - 1
        assert sampled.count("<|im_end|>") == reference["turns"]  # one per reply
        # the prompt is the env's opening messages under the chat template
        prompt = output.batch["prompts"][row]
        prompt_text = tokenizer.decode(prompt[prompt != tokenizer.pad_token_id].tolist())
        assert prompt_text.endswith(f"{reference['obs'][0]}<|im_end|>\n<|im_start|>assistant\n")
        # the log-probabilities the server returned ride along on the sampled tokens only
        logprobs = output.batch["rollout_log_probs"][row]
        assert bool((logprobs[mask] == -1.0).all()) and bool((logprobs[~mask] == 0.0).all())


def test_each_generate_call_sees_the_conversation_so_far(rollout: dict[str, Any]) -> None:
    server, tokenizer = rollout["server"], rollout["worker"].tokenizer
    for prompts in server.prompts.values():
        for before, after in itertools.pairwise(prompts):
            assert after[: len(before)] == before  # append-only token stream
            assert tokenizer.decode(after[len(before) :]).rstrip().endswith("<|im_start|>assistant")


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(replies=st.lists(st.text(max_size=40), min_size=1, max_size=4))
def test_any_model_text_is_an_env_step_never_an_exception(
    config: Any, workdir: Path, replies: list[str]
) -> None:
    worker = AgentLoopWorker(config, llm_client=None)
    env_id, env_kwargs, seed = MATH
    worker.llm_client = ScriptedServer(worker.tokenizer, {"": replies})
    batch = make_batch(config, workdir, worker.tokenizer, [MATH])
    output = asyncio.run(worker.generate_sequences(batch))
    # what the env received is the text of the sampled tokens
    tok = worker.tokenizer
    said = [
        tok.decode(tok.encode(r, add_special_tokens=False), skip_special_tokens=True)
        for r in replies
    ]
    reference = play_on_gymnasium(env_id, env_kwargs, seed, itertools.cycle(said))
    assert output.batch["rm_scores"].sum().item() == pytest.approx(reference["reward"])
    assert output.non_tensor_batch["__num_turns__"].tolist() == [2 * reference["turns"]]


def test_bad_extra_info_names_the_field(config: Any) -> None:
    worker = AgentLoopWorker(config, llm_client=None)
    worker.llm_client = ScriptedServer(worker.tokenizer, {"": ["[1]"]})
    batch = DataProto.from_single_dict(
        {
            "dummy_tensor": torch.zeros(1, 1),
            "raw_prompt": np.array([[{"role": "user", "content": "hi"}]], dtype=object),
            "agent_name": np.array([adapter.AGENT_NAME], dtype=object),
            "extra_info": np.array([{"env_id": "Math-v0", "seed": -3}], dtype=object),
        }
    )
    with pytest.raises(ValueError, match=r"extra_info\.seed"):
        asyncio.run(worker.generate_sequences(batch))
