"""Any arenagym id as a SkyRL-Gym ``BaseTextEnv``, and dataset rows in SkyRL's format.

Why: SkyRL's generator (``SkyRLGymGenerator``) trains on environments registered with
``skyrl_gym``. For every dataset row it calls ``skyrl_gym.make(row["env_class"],
env_config=<the class's section of the skyrl_gym config>, extras=<every other column of the row>)``,
sets ``extras["max_turns"]`` to ``generator.max_turns``, then ``env.init(row["prompt"])`` and one
``env.step(model_reply)`` per turn until ``done``. :class:`ArenagymTextEnv` answers those calls by
playing the episode the row names (env id, env kwargs, seed) through a
:class:`~arenagym.envs.integrations.session.TextSession`, so one env class serves every arenagym
id, and a row rebuilds its episode byte for byte.

- :func:`register` registers the class with ``skyrl_gym`` (default name ``"arenagym"``);
- :func:`dataset_rows` writes rows the way SkyRL's dataset preparation expects them:
  ``data_source``, ``prompt``, ``env_class``, ``reward_spec`` and ``extra_info``, which holds
  ``env_id``, ``env_kwargs`` (JSON, so that rows of different envs share one schema) and
  ``seed``.

The episode is looked up field by field in ``extras["extra_info"]``, then ``extras`` itself, then
``env_config`` (e.g. ``environment.skyrl_gym.arenagym.env_id=Math-v0`` to give one id to a whole
run); ``env_config.env_kwargs`` are defaults under the row's. ``extras["max_turns"]`` (set by the
generator) ends an episode that is still running after that many replies, with
``stop_reason="max_turns"``. An episode's last step returns no observation (SkyRL's convention:
nothing masked trails the last reply); the env's closing text is in ``metadata``.

Example:
    >>> import skyrl_gym
    >>> name = register()
    >>> row = dataset_rows("Math-v0", seeds=[3])[0]
    >>> sorted(row), row["env_class"], row["extra_info"]["seed"]
    (['data_source', 'env_class', 'extra_info', 'prompt', 'reward_spec'], 'arenagym', 3)
    >>> extras = {k: v for k, v in row.items() if k not in ("prompt", "env_class")}
    >>> env = skyrl_gym.make(name, env_config={}, extras={**extras, "max_turns": 1})
    >>> prompt, metadata = env.init(row["prompt"])
    >>> prompt == row["prompt"], prompt[-1]["content"], metadata["env_id"]
    (True, 'What is 10% of 80?', 'Math-v0')
    >>> out = env.step("The answer is \\\\boxed{8}.")
    >>> out["observations"], out["reward"], out["done"], out["metadata"]["stop_reason"]
    ([], 1.0, True, 'solved')
    >>> env.close()
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import gymnasium as gym

from arenagym.envs.integrations.session import EpisodeRef, TextSession
from arenagym.envs.integrations.session import dataset_rows as _session_rows

try:
    import skyrl_gym
    from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput
except ImportError as _error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "arenagym.envs.integrations.skyrl needs skyrl-gym: pip install 'arenagym[skyrl]'"
    ) from _error

__all__ = ["ENV_CLASS", "ArenagymTextEnv", "dataset_rows", "register"]

#: The env class name :func:`register` and :func:`dataset_rows` use by default.
ENV_CLASS = "arenagym"

_FIELDS = ("env_id", "env_kwargs", "seed")


def _plain(value: Any) -> Any:
    """A mapping (an omegaconf ``DictConfig`` too) as plain dicts, recursively."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _seed(value: Any) -> Any:
    """numpy and other integral seeds as ``int`` (parquet readers may give either)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value


def _episode_ref(extras: Mapping[str, Any], env_config: Mapping[str, Any]) -> EpisodeRef:
    """The episode named by the first of ``extras["extra_info"]``, ``extras``, ``env_config``
    that has each field; ``env_config["env_kwargs"]`` are defaults under the row's kwargs."""
    sources: list[tuple[str, Mapping[str, Any]]] = []
    extra_info = extras.get("extra_info")
    if extra_info is not None:
        if not isinstance(extra_info, Mapping):
            raise TypeError(
                f"extras['extra_info']: expected a mapping, got {type(extra_info).__name__}"
            )
        sources.append(("extras['extra_info']", extra_info))
    sources += [("extras", extras), ("env_config", env_config)]
    found: dict[str, tuple[str, Any]] = {}
    for field in _FIELDS:
        for where, source in sources:
            if field in source:
                found[field] = (where, source[field])
                break
    if "env_id" not in found:
        raise ValueError(
            "env_id: no arenagym id for this episode; put env_id, env_kwargs and seed in the "
            "row's extra_info column (see arenagym.envs.integrations.skyrl.dataset_rows) or "
            "env_id in the env class's env_config"
        )
    try:
        defaults = EpisodeRef.from_columns(
            "defaults", _plain(env_config.get("env_kwargs")), None
        ).env_kwargs
    except ValueError as error:
        raise ValueError(f"env_config: {error}") from None
    where = found["env_id"][0]
    try:
        ref = EpisodeRef.from_columns(
            found["env_id"][1],
            _plain(found.get("env_kwargs", (where, None))[1]),
            _seed(found.get("seed", (where, None))[1]),
        )
    except ValueError as error:
        field = str(error).split(":", 1)[0]
        raise ValueError(f"{found.get(field, (where,))[0]}: {error}") from None
    try:
        gym.spec(ref.env_id)
    except gym.error.Error as error:
        raise ValueError(
            f"{found['env_id'][0]}: env_id: {ref.env_id!r} is not a registered arenagym id "
            f"({error})"
        ) from None
    return EpisodeRef(ref.env_id, {**defaults, **ref.env_kwargs}, ref.seed)


def _max_turns(extras: Mapping[str, Any]) -> int | None:
    value = extras.get("max_turns")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"extras['max_turns']: expected an int >= 1 or None, got {value!r}")
    return int(value)


class ArenagymTextEnv(BaseTextEnv):
    """One episode of an arenagym id as a SkyRL-Gym text env.

    Arguments (what ``skyrl_gym.make`` passes):
        env_config: the env class's section of SkyRL's ``skyrl_gym`` config (a mapping, an
            omegaconf ``DictConfig`` too); may give ``env_id``, ``env_kwargs`` (defaults under
            the row's), ``seed``.
        extras: the dataset row's columns other than ``prompt`` and ``env_class``: the episode
            in ``extra_info`` (``env_id``, ``env_kwargs`` as JSON or a mapping, ``seed``) or at
            the top level, and ``max_turns`` (the generator's cap on replies; ``None``: the
            env's own limits only).

    ``init(prompt)`` starts the episode and returns its opening chat messages (the row's
    ``prompt`` is replaced by them: they are the episode's own) and metadata (``env_id``,
    ``env_kwargs``, ``seed``, ``task_id``). ``step(reply)`` returns the env's next message as
    ``observations`` (none on the last step), the step's reward, ``done``, and ``metadata``
    with ``stop_reason`` (``None`` until the end), ``clean_reward``, ``invalid_action``,
    ``reward_components`` and ``turn``, plus ``final_observation`` on the last step. A garbage
    reply is the env's business: a penalised step with an observation saying how to act.
    ``close`` is idempotent.

    Raises:
        TypeError: ``extras``, ``env_config`` or ``extras["extra_info"]`` is not a mapping.
        ValueError: a field is missing or wrong; the message names it (``env_id``,
            ``env_kwargs``, ``seed``, ``max_turns``) and where it was read.
    """

    def __init__(
        self,
        env_config: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if env_config is None:
            env_config = {}
        if not isinstance(env_config, Mapping):
            raise TypeError(
                f"env_config: expected a mapping (the env class's skyrl_gym config), "
                f"got {type(env_config).__name__}"
            )
        if not isinstance(extras, Mapping):
            raise TypeError(
                "extras: expected a mapping (the dataset row's columns besides prompt and "
                f"env_class), got {type(extras).__name__}"
            )
        self.ref: EpisodeRef = _episode_ref(extras, env_config)
        self.max_turns: int | None = _max_turns(extras)  # type: ignore[assignment]
        self.session: TextSession | None = None
        self.done = False
        self.stop_reason: str | None = None
        self.total_reward = 0.0
        self.total_clean_reward = 0.0
        self.invalid_actions = 0

    def init(
        self, prompt: list[dict[str, str]] | None = None
    ) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """Start (or restart) the episode; its opening messages and metadata."""
        self.close()
        try:
            self.session = TextSession(self.ref)
        except TypeError as error:
            raise ValueError(
                f"env_kwargs: {self.ref.env_id} rejected {dict(self.ref.env_kwargs)!r}: {error}"
            ) from None
        self.turns = 0
        self.done = False
        self.stop_reason = None
        self.total_reward = self.total_clean_reward = 0.0
        self.invalid_actions = 0
        metadata = {
            "env_id": self.ref.env_id,
            "env_kwargs": dict(self.ref.env_kwargs),
            "seed": self.ref.seed,
            "task_id": self.session.reset_info.get("task_id"),
        }
        return [dict(m) for m in self.session.messages], metadata

    def step(self, action: str) -> BaseTextEnvStepOutput:
        """Play the model's ``action`` (its reply) for one turn."""
        if self.session is None:
            raise RuntimeError(f"{self.ref.env_id}: call init(prompt) before step (or after close)")
        if self.done:
            raise RuntimeError(f"{self.ref.env_id}: the episode is over ({self.stop_reason})")
        outcome = self.session.send(action)
        self.turns += 1
        invalid = bool(outcome.info.get("invalid_action", False))
        self.invalid_actions += invalid
        self.total_reward += outcome.reward
        self.total_clean_reward += outcome.clean_reward
        self.done = outcome.done
        if self.done:
            self.stop_reason = outcome.info.get("stop_reason")
        elif self.max_turns is not None and self.turns >= self.max_turns:
            self.done, self.stop_reason = True, "max_turns"
        metadata: dict[str, Any] = {
            "stop_reason": self.stop_reason,
            "clean_reward": outcome.clean_reward,
            "invalid_action": invalid,
            "reward_components": dict(outcome.info.get("reward_components", {})),
            "turn": self.turns,
        }
        if self.done:
            metadata["final_observation"] = outcome.observation
        observations = [] if self.done else [{"role": "user", "content": outcome.observation}]
        return BaseTextEnvStepOutput(
            observations=observations, reward=outcome.reward, done=self.done, metadata=metadata
        )

    def get_metrics(self) -> dict[str, Any]:
        """The episode's totals (SkyRL averages the numbers over episodes)."""
        return {
            "turns": self.turns,
            "total_reward": self.total_reward,
            "clean_reward": self.total_clean_reward,
            "invalid_actions": self.invalid_actions,
            "solved": float(self.stop_reason == "solved"),
            "stop_reason": self.stop_reason,
        }

    def close(self) -> None:
        """Release the arenagym env (idempotent)."""
        session, self.session = self.session, None
        if session is not None:
            session.close()


def register(name: str = ENV_CLASS) -> str:
    """Register :class:`ArenagymTextEnv` with ``skyrl_gym`` as ``name`` (the rows'
    ``env_class``); registering it again under the same name is a no-op. Returns ``name``.

    >>> register() == register("arenagym")
    True
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty env class name, got {name!r}")
    entry_point = f"{__name__}:{ArenagymTextEnv.__name__}"
    existing = skyrl_gym.registry.get(name)
    if existing is not None:
        if existing.entry_point in (entry_point, ArenagymTextEnv):
            return name
        raise ValueError(
            f"name: {name!r} is already registered with skyrl_gym for "
            f"{existing.entry_point!r}; pass another name"
        )
    skyrl_gym.register(id=name, entry_point=entry_point)
    return name


def dataset_rows(
    env_id: str,
    seeds: Iterable[int],
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    env_class: str = ENV_CLASS,
    data_source: str | None = None,
) -> list[dict[str, Any]]:
    """One SkyRL dataset row per seed: ``data_source`` (default ``"arenagym/<env_id>"``, SkyRL
    groups eval metrics by it), ``prompt`` (the episode's opening messages), ``env_class``,
    ``reward_spec`` (``{"method": "rule", "ground_truth": None}``: the env scores) and
    ``extra_info`` (``env_id``, ``env_kwargs`` as JSON, ``seed``). Save them with
    ``datasets.Dataset.from_list(rows).to_parquet(path)``.

    >>> row = dataset_rows("Math-v0", [0], {"difficulty": 1})[0]
    >>> row["data_source"], row["extra_info"]
    ('arenagym/Math-v0', {'env_id': 'Math-v0', 'env_kwargs': '{"difficulty": 1}', 'seed': 0})
    """
    if not isinstance(env_class, str) or not env_class:
        raise ValueError(f"env_class: expected a non-empty env class name, got {env_class!r}")
    source = f"arenagym/{env_id}" if data_source is None else data_source
    return [
        {
            "data_source": source,
            "prompt": row["prompt"],
            "env_class": env_class,
            "reward_spec": {"method": "rule", "ground_truth": None},
            "extra_info": {key: row[key] for key in _FIELDS},
        }
        for row in _session_rows(env_id, seeds, env_kwargs)
    ]
