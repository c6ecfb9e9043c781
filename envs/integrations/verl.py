"""arenagym envs in verl's multi-turn rollout: an agent loop, its dataset rows and its config file.

Why: verl trains at scale with an asynchronous rollout in which each dataset row runs an *agent
loop* (``verl.experimental.agent_loop``): a coroutine that chats with the rollout's LLM servers
token by token and returns the trajectory (prompt ids, response ids, a mask that is 1 on sampled
tokens and 0 on everything else) and, optionally, its reward. verl 0.9.1 has no ``Interaction``
classes any more (``verl.interactions`` is gone); a custom agent loop, named in a row's
``agent_name`` column and loaded from the YAML file at
``actor_rollout_ref.rollout.agent.agent_loop_config_path``, is its one way to put an environment in
the loop. This module supplies the three pieces:

- ``ArenaGymAgentLoop`` (built on first use, because verl is imported only then): a subclass of
  verl's ``AgentLoopBase``, registered as :data:`AGENT_NAME`. It rebuilds the row's episode from
  ``extra_info`` (``env_id``, ``env_kwargs``, ``seed``) as a
  :class:`~arenagym.envs.integrations.session.TextSession`, sends each reply the server samples to
  the env, appends the env's answer as a ``user`` message (masked out of the loss), and stops when
  the episode is done (or the response budget, or ``multi_turn.max_assistant_turns``, runs out).
  The trajectory's ``reward_score`` is the episode's env reward, so verl's trainer needs no reward
  function for these rows;
- :func:`verl_rows` / :func:`write_parquet`: dataset rows in verl's documented format
  (``data_source``, ``prompt``, ``ability``, ``reward_model``, ``extra_info``, plus ``agent_name``);
- :func:`agent_loop_config` / :func:`write_agent_loop_config`: the agent-loop YAML file.

verl pins transformers <5.11, so it lives in a venv of its own: ``scripts/verl-venv`` builds
``.venv-verl``. Without verl, this module still imports and its dataset and config helpers work;
only ``ArenaGymAgentLoop`` raises an ``ImportError`` that says how to get verl.

Example:
    >>> row = verl_rows("Math-v0", [3], {"difficulty": 1})[0]
    >>> row["agent_name"], row["data_source"], [m["role"] for m in row["prompt"]]
    ('arenagym_agent', 'arenagym/Math-v0', ['system', 'user'])
    >>> row["extra_info"]
    {'index': 0, 'split': 'train', 'env_id': 'Math-v0', 'env_kwargs': '{"difficulty": 1}', 'seed': 3}
    >>> episode_ref(row["extra_info"])
    EpisodeRef(env_id='Math-v0', env_kwargs={'difficulty': 1}, seed=3)
    >>> agent_loop_config()
    [{'name': 'arenagym_agent', '_target_': 'arenagym.envs.integrations.verl.ArenaGymAgentLoop'}]
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from uuid import uuid4

from arenagym.envs.integrations.session import EpisodeRef, TextSession, dataset_rows

__all__ = [
    "AGENT_LOOP_TARGET",
    "AGENT_NAME",
    "INSTALL_HINT",
    "agent_loop_class",
    "agent_loop_config",
    "episode_ref",
    "verl_rows",
    "write_agent_loop_config",
    "write_parquet",
]

#: The ``agent_name`` of arenagym rows, and the name the agent loop is registered under.
AGENT_NAME = "arenagym_agent"
#: The agent loop class as ``hydra.utils.instantiate`` locates it.
AGENT_LOOP_TARGET = f"{__name__}.ArenaGymAgentLoop"
#: How to get verl (it cannot share arenagym's test venv: it needs transformers <5.11).
INSTALL_HINT = (
    "verl is not installed; it needs a venv of its own (verl 0.9.1 pins transformers <5.11): "
    "run scripts/verl-venv in an arenagym checkout and use .venv-verl/bin/python, "
    "or pip install 'verl==0.9.1' 'transformers>=5.5.3,<5.11' in a separate venv"
)

_agent_loop_class: type | None = None


def episode_ref(extra_info: Mapping[str, Any] | None) -> EpisodeRef:
    """The episode a row's ``extra_info`` names (``env_id``, ``env_kwargs`` as JSON or a dict,
    ``seed``); a ``ValueError`` naming the field when one is missing or wrong.

    >>> episode_ref({"env_id": "TextArena/Nim-v0", "seed": 1})
    EpisodeRef(env_id='TextArena/Nim-v0', env_kwargs={}, seed=1)
    >>> episode_ref({"seed": 1})
    Traceback (most recent call last):
    ...
    ValueError: extra_info.env_id: missing; arenagym rows carry env_id, env_kwargs and seed (see verl_rows)
    """
    if not isinstance(extra_info, Mapping):
        raise ValueError(
            f"extra_info: expected a dict with env_id, env_kwargs and seed, got "
            f"{type(extra_info).__name__}"
        )
    if "env_id" not in extra_info:
        raise ValueError(
            "extra_info.env_id: missing; arenagym rows carry env_id, env_kwargs and seed "
            "(see verl_rows)"
        )
    seed = extra_info.get("seed")
    if hasattr(seed, "item") and not isinstance(seed, bool):  # a numpy integer from parquet
        seed = seed.item()
    try:
        return EpisodeRef.from_columns(extra_info["env_id"], extra_info.get("env_kwargs"), seed)
    except ValueError as error:
        raise ValueError(f"extra_info.{error}") from None


def verl_rows(
    env_id: str,
    seeds: Iterable[int],
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    split: str = "train",
    agent_name: str = AGENT_NAME,
    data_source: str | None = None,
    start_index: int = 0,
) -> list[dict[str, Any]]:
    """One verl dataset row per seed: ``prompt`` (the episode's opening chat messages),
    ``data_source`` (``arenagym/<env_id>`` unless given), ``ability``, ``reward_model`` (the env
    scores: there is no ground truth), ``extra_info`` (``index``, ``split``, ``env_id``,
    ``env_kwargs`` as JSON so that rows of different envs share one parquet schema, ``seed``) and
    ``agent_name``, which makes verl run :data:`AGENT_NAME` for the row."""
    if not isinstance(agent_name, str) or not agent_name:
        raise ValueError(f"agent_name: expected a non-empty string, got {agent_name!r}")
    rows = []
    for offset, row in enumerate(dataset_rows(env_id, seeds, env_kwargs)):
        rows.append(
            {
                "data_source": data_source or f"arenagym/{env_id}",
                "prompt": row["prompt"],
                "ability": "agent",
                "reward_model": {"style": "env", "ground_truth": ""},
                "extra_info": {
                    "index": start_index + offset,
                    "split": split,
                    "env_id": row["env_id"],
                    "env_kwargs": row["env_kwargs"],
                    "seed": row["seed"],
                },
                "agent_name": agent_name,
            }
        )
    return rows


def write_parquet(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write verl dataset rows (:func:`verl_rows`) to a parquet file, as ``data.train_files``
    and ``data.val_files`` read them; returns the path."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ImportError(
            f"writing parquet needs pyarrow ({error}): pip install 'arenagym[parquet]'"
        ) from error
    rows = [dict(row) for row in rows]
    if not rows:
        raise ValueError("rows: empty; give at least one row (see verl_rows)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def agent_loop_config(name: str = AGENT_NAME, **init_kwargs: Any) -> list[dict[str, Any]]:
    """The entries of verl's agent-loop config file (a list of ``hydra.utils.instantiate``
    configs, each with a ``name``): ``init_kwargs`` go to ``ArenaGymAgentLoop``'s constructor
    (``max_turns``: a cap on the model's turns per episode)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}")
    unknown = sorted(set(init_kwargs) - {"max_turns"})
    if unknown:
        raise ValueError(
            f"init_kwargs: unknown argument(s) {unknown}; ArenaGymAgentLoop takes max_turns"
        )
    max_turns = init_kwargs.get("max_turns")
    if max_turns is not None and (
        isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1
    ):
        raise ValueError(f"max_turns: expected an int >= 1 or None, got {max_turns!r}")
    return [{"name": name, "_target_": AGENT_LOOP_TARGET, **init_kwargs}]


def write_agent_loop_config(path: str | Path, name: str = AGENT_NAME, **init_kwargs: Any) -> Path:
    """Write :func:`agent_loop_config` as the YAML file that
    ``actor_rollout_ref.rollout.agent.agent_loop_config_path`` names; returns the path.

    (JSON is YAML: the file is written as JSON so that no YAML library is needed.)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(agent_loop_config(name, **init_kwargs), indent=2) + "\n")
    return path


def agent_loop_class() -> type:
    """``ArenaGymAgentLoop``, a subclass of verl's ``AgentLoopBase``, defined and registered
    (as :data:`AGENT_NAME`) on the first call. Raises ``ImportError`` (:data:`INSTALL_HINT`)
    when verl is not installed."""
    global _agent_loop_class
    if _agent_loop_class is None:
        _agent_loop_class = _define_agent_loop()
    return _agent_loop_class


def __getattr__(name: str) -> Any:
    if name == "ArenaGymAgentLoop":
        return agent_loop_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _define_agent_loop() -> type:
    try:
        from verl.experimental.agent_loop.agent_loop import (
            AgentLoopBase,
            AgentLoopOutput,
            register,
        )
        from verl.utils.profiler import simple_timer
    except ImportError as error:
        raise ImportError(f"{INSTALL_HINT} ({error})") from error

    class ArenaGymAgentLoop(AgentLoopBase):
        """A verl agent loop that plays one arenagym episode per dataset row.

        The row's ``extra_info`` names the episode (:func:`episode_ref`). The prompt is the
        episode's opening messages (rendered with the model's chat template), each turn is one
        generation on verl's LLM server, the decoded reply is the env's action, and the env's
        answer is appended as a ``user`` message whose tokens have mask 0. The episode ends when
        the env says so, when the response budget (``rollout.response_length``) is spent, or after
        ``max_turns`` / ``rollout.multi_turn.max_assistant_turns`` replies. ``reward_score`` is the
        env reward summed over the episode's steps (``extra_fields`` has the per-step
        ``turn_scores``, the clean reward and the stop reason).
        """

        def __init__(
            self, *args: Any, max_turns: int | None = None, tools: Any = None, **kwargs: Any
        ):
            super().__init__(*args, **kwargs)
            self.response_length = int(self.rollout_config.response_length)
            limits = [max_turns, self.rollout_config.multi_turn.max_assistant_turns]
            self.max_turns = min((int(n) for n in limits if n), default=None)

        async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
            ref = episode_ref(kwargs.get("extra_info"))
            loop = asyncio.get_running_loop()
            session = await loop.run_in_executor(None, TextSession, ref)
            try:
                return await self._play(session, sampling_params, kwargs)
            finally:
                await loop.run_in_executor(None, session.close)

        async def _play(
            self, session: TextSession, sampling_params: dict[str, Any], kwargs: dict[str, Any]
        ) -> AgentLoopOutput:
            loop = asyncio.get_running_loop()
            metrics: dict[str, Any] = {}
            extra_fields: dict[str, Any] = {}
            deterministic = bool(getattr(self.rollout_config, "full_determinism", False))
            request_id = f"det-{int(kwargs.get('priority', 0))}" if deterministic else uuid4().hex
            token_ids = await self.ct_build_initial_tokens([dict(m) for m in session.messages])
            mask: list[int] = []
            logprobs: list[float] | None = None
            turn_scores: list[float] = []
            assistant_turns = user_turns = 0
            stop_reason = ""
            while True:
                with simple_timer("generate_sequences", metrics):
                    output = await self.server_manager.generate(
                        request_id=request_id, prompt_ids=token_ids, sampling_params=sampling_params
                    )
                if output.num_preempted is not None:  # -1 (verl's "unknown") until a server says
                    metrics["num_preempted"] = max(metrics.get("num_preempted", 0), 0)
                    metrics["num_preempted"] += output.num_preempted
                for key, value in output.extra_fields.items():
                    extra_fields.setdefault(key, value)
                if output.extra_fields.get("max_global_steps"):
                    extra_fields["max_global_steps"] = output.extra_fields["max_global_steps"]
                if output.log_probs and logprobs is None:
                    logprobs = [0.0] * len(mask)
                merged, mask, logprobs = await self.ct_merge_assistant_token(
                    token_ids, output.token_ids, mask, logprobs, output.log_probs or None
                )
                token_ids = merged.token_ids
                assistant_turns += 1
                reply = self.tokenizer.decode(output.token_ids, skip_special_tokens=True)
                outcome = await loop.run_in_executor(None, session.send, reply)
                turn_scores.append(outcome.reward)
                if outcome.done:
                    stop_reason = str(outcome.info.get("stop_reason") or "done")
                    break
                if len(mask) >= self.response_length:
                    stop_reason = "response_length"
                    break
                if self.max_turns is not None and assistant_turns >= self.max_turns:
                    stop_reason = "max_turns"
                    break
                messages = [dict(m) for m in session.messages]
                merged, new_mask, new_logprobs = await self.ct_merge_context_msg(
                    messages[:-1], messages, token_ids, mask, logprobs
                )
                if len(new_mask) >= self.response_length:
                    stop_reason = "response_length"
                    break
                token_ids, mask, logprobs = merged.token_ids, new_mask, new_logprobs
                user_turns += 1

            response_start = len(token_ids) - len(mask)
            extra_fields.update(
                {
                    "turn_scores": turn_scores,
                    "tool_rewards": [],
                    "env_id": session.ref.env_id,
                    "env_stop_reason": stop_reason,
                    "env_clean_reward": session.total_clean_reward,
                }
            )
            return AgentLoopOutput(
                prompt_ids=token_ids[:response_start],
                response_ids=token_ids[response_start:][: self.response_length],
                response_mask=mask[: self.response_length],
                response_logprobs=logprobs[: self.response_length] if logprobs else None,
                reward_score=session.total_reward,
                num_turns=assistant_turns + user_turns + 1,
                metrics=metrics,
                extra_fields=extra_fields,
            )

    ArenaGymAgentLoop.__module__ = __name__
    ArenaGymAgentLoop.__qualname__ = "ArenaGymAgentLoop"
    return register(AGENT_NAME)(ArenaGymAgentLoop)
