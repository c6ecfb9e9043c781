"""One episode of a single-agent arenagym env driven by text: what every framework adapter needs.

Why: TRL, verifiers, OpenEnv, SkyRL-Gym and verl each want the same few things from an env, in
their own shapes: the opening chat messages of an episode named by (env id, kwargs, seed), then
"here is the model's reply: what is the next user message, the reward, is it over?". A
:class:`TextSession` answers exactly that over ``gymnasium.make``; :func:`dataset_rows` lists the
episodes as dataset rows (prompt messages plus the columns that rebuild each episode), the form
TRL and verifiers datasets take.

Example:
    >>> session = TextSession(EpisodeRef("Math-v0", {"difficulty": 1}, seed=3))
    >>> [m["role"] for m in session.messages]
    ['system', 'user']
    >>> outcome = session.send("I have no idea.")
    >>> outcome.done, outcome.reward, outcome.info["stop_reason"]
    (True, 0.0, 'no_answer')
    >>> session.total_reward, session.turns
    (0.0, 1)
    >>> session.close()
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

__all__ = ["EpisodeRef", "StepOutcome", "TextSession", "dataset_rows"]


@dataclass(frozen=True)
class EpisodeRef:
    """The three things that rebuild an episode byte for byte: the env id, its kwargs, the seed.

    >>> EpisodeRef.from_columns("Math-v0", '{"difficulty": 2}', 7)
    EpisodeRef(env_id='Math-v0', env_kwargs={'difficulty': 2}, seed=7)
    """

    env_id: str
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None

    @classmethod
    def from_columns(
        cls, env_id: str, env_kwargs: str | Mapping[str, Any] | None, seed: Any
    ) -> EpisodeRef:
        """Rebuild a reference from dataset columns (``env_kwargs`` as a JSON object or a dict;
        datasets store a JSON string so that rows of different envs share one schema)."""
        if not isinstance(env_id, str) or not env_id:
            raise ValueError(f"env_id: expected an arenagym id, got {env_id!r}")
        if env_kwargs is None or env_kwargs == "":
            kwargs: Mapping[str, Any] = {}
        elif isinstance(env_kwargs, str):
            try:
                kwargs = json.loads(env_kwargs)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"env_kwargs: not JSON ({error.msg}): {env_kwargs[:80]!r}"
                ) from None
        else:
            kwargs = env_kwargs
        if not isinstance(kwargs, Mapping):
            raise ValueError(f"env_kwargs: expected a JSON object, got {type(kwargs).__name__}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed: expected an int >= 0 or None, got {seed!r}")
        return cls(env_id, dict(kwargs), seed)

    def columns(self) -> dict[str, Any]:
        """The dataset columns of this episode (see :func:`dataset_rows`)."""
        return {
            "env_id": self.env_id,
            "env_kwargs": json.dumps(dict(self.env_kwargs), sort_keys=True),
            "seed": self.seed,
        }


@dataclass(frozen=True)
class StepOutcome:
    """What one reply did: the env's answer (the next user message; empty when it has none), the
    step's reward and clean reward, whether the episode is over (``done``: ``terminated`` by the
    task, or ``truncated`` by a limit such as the turn limit), and the step's ``info``."""

    observation: str
    reward: float
    clean_reward: float
    done: bool
    info: dict[str, Any]
    terminated: bool = False
    truncated: bool = False


class TextSession:
    """One episode of ``ref``: built and reset on construction, then one :meth:`send` per reply.

    ``messages`` holds the conversation so far as chat messages (``system`` from the reset's
    ``info["system_prompt"]``, the observations as ``user``, the replies as ``assistant``).
    Garbage replies are the env's business: it answers them with a penalised step and a helpful
    observation, never an exception. Sending after the episode ended raises ``RuntimeError``.
    """

    def __init__(self, ref: EpisodeRef) -> None:
        self.ref = ref
        self.env = gym.make(ref.env_id, **dict(ref.env_kwargs))
        observation, info = self.env.reset(seed=ref.seed)
        self.reset_info: dict[str, Any] = dict(info)
        system_prompt = str(info.get("system_prompt", ""))
        self.messages: list[dict[str, str]] = (
            [{"role": "system", "content": system_prompt}] if system_prompt else []
        )
        self.messages.append({"role": "user", "content": str(observation)})
        self.total_reward = 0.0
        self.total_clean_reward = 0.0
        self.turns = 0
        self.done = False
        self.stop_reason: str | None = None

    @property
    def prompt(self) -> str:
        """The first observation (the task)."""
        return next(m["content"] for m in self.messages if m["role"] == "user")

    def send(self, reply: str) -> StepOutcome:
        """Step the env with the model's ``reply``; the outcome, also added to ``messages``."""
        if self.done:
            raise RuntimeError(f"{self.ref.env_id}: the episode is over ({self.stop_reason})")
        observation, reward, terminated, truncated, info = self.env.step(reply)
        self.messages.append({"role": "assistant", "content": reply})
        self.turns += 1
        self.done = bool(terminated or truncated)
        clean = float(info.get("clean_reward", reward))
        self.total_reward += float(reward)
        self.total_clean_reward += clean
        if self.done:
            self.stop_reason = info.get("stop_reason")
        text = "" if observation is None else str(observation)
        if not self.done or text:
            self.messages.append({"role": "user", "content": text})
        return StepOutcome(
            text,
            float(reward),
            clean,
            self.done,
            dict(info),
            terminated=bool(terminated),
            truncated=bool(truncated and not terminated),
        )

    def close(self) -> None:
        """Release the env (idempotent)."""
        self.env.close()

    def __enter__(self) -> TextSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def dataset_rows(
    env_id: str, seeds: Iterable[int], env_kwargs: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One row per seed: ``prompt`` (the opening chat messages) and the columns ``env_id``,
    ``env_kwargs`` (JSON), ``seed`` that rebuild the episode (:meth:`EpisodeRef.from_columns`).

    >>> row = dataset_rows("Math-v0", [0], {"difficulty": 1})[0]
    >>> sorted(row), row["env_kwargs"], [m["role"] for m in row["prompt"]]
    (['env_id', 'env_kwargs', 'prompt', 'seed'], '{"difficulty": 1}', ['system', 'user'])
    """
    rows = []
    for seed in seeds:
        ref = EpisodeRef(env_id, dict(env_kwargs or {}), seed)
        with TextSession(ref) as session:
            rows.append({"prompt": [dict(m) for m in session.messages], **ref.columns()})
    return rows
