"""arenagym envs in TRL's ``GRPOTrainer``: reward functions for single-turn envs, a multi-turn rollout.

Why: TRL is where many users already run GRPO. A single-turn env (one reply, one verdict: Math-v0,
PrefInfer-v0) is exactly a TRL reward function: :func:`reward_function` rebuilds each row's
episode from the dataset columns ``env_id``, ``env_kwargs``, ``seed`` (:func:`dataset` writes
them), steps it with the completion and returns the env's reward. A multi-turn env (TextArena
games, MedConsult-v0, SWE-v0) needs the trainer to talk to it between the model's turns:
:class:`MultiTurnRollout` is a ``rollout_func`` for ``GRPOTrainer`` that plays whole episodes,
keeps every token id as sampled, and masks the env's tokens out of the loss (``env_mask``);
:func:`episode_reward` hands the episode's return to the trainer.

Which ids are single-turn: those whose env ends after one reply whatever it is, i.e.
``max_turns == 1`` and ``max_invalid_actions == 0`` (:func:`single_turn_problem` says why not).
With their registered kwargs these are ``Math-v0``, ``Math-Bundled-v0`` and ``PrefInfer-v0``
with its splits except ``PrefInfer-Shift-v0``; MedDialog, MedConsult, RecInter (and its user and
merchant views), SWE and TextArena ids are multi-turn.

Example:
    >>> rows = dataset("Math-v0", seeds=[0, 1], difficulty=1)
    >>> reward = reward_function("Math-v0", difficulty=1)
    >>> reward.__name__
    'Math-v0[difficulty=1]'
    >>> reward(rows["prompt"], ["No idea.", "No idea."], **rows.remove_columns("prompt")[:])
    [0.0, 0.0]
    >>> reward_function("TextArena/GuessTheNumber-v0")
    Traceback (most recent call last):
    ...
    ValueError: TextArena/GuessTheNumber-v0 is multi-turn (max_turns=1000, ...): ...rollout_func=...

Multi-turn training (``GRPOConfig`` as usual; see :class:`MultiTurnRollout`)::

    trainer = GRPOTrainer(model, args=config, train_dataset=dataset("TextArena/Nim-v0", range(64)),
                          reward_funcs=[episode_reward], rollout_func=MultiTurnRollout())
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from arenagym.envs.core.registration import env_entry
from arenagym.envs.integrations.session import EpisodeRef, TextSession, dataset_rows

if TYPE_CHECKING:
    import datasets

__all__ = [
    "EPISODE_KEY",
    "EpisodeSummary",
    "MultiTurnRollout",
    "dataset",
    "episode_reward",
    "reward_function",
    "single_turn_problem",
]

#: The key of a prompt's first message that names its episode (JSON of ``env_id``, ``env_kwargs``,
#: ``seed``). ``rollout_func`` only sees prompts, and many envs (TextArena games) show the same
#: prompt for every seed, so the episode travels with the prompt. Chat templates ignore it.
EPISODE_KEY = "arenagym_episode"

_MULTI_TURN_HINT = (
    "train it with GRPOTrainer(rollout_func=MultiTurnRollout(), reward_funcs=[episode_reward]) "
    "from arenagym.envs.integrations.trl"
)
_COLUMNS = ("env_id", "env_kwargs", "seed")


def _require(module: str) -> Any:
    """Import ``module`` or raise an ImportError that names the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"arenagym.envs.integrations.trl needs {module!r}: pip install 'arenagym[trl]' ({error})"
        ) from error


def _check_env_id(env_id: Any) -> str:
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env_id: expected an arenagym id, got {env_id!r}")
    try:
        entry = env_entry(env_id)
    except KeyError as error:
        raise ValueError(f"env_id: {error.args[0]}") from None
    if entry.multi_agent:
        raise ValueError(
            f"env_id: {env_id} is a multi-agent (PettingZoo) env; TRL trains one policy on a "
            f"single-agent id (e.g. {env_id.replace('-AEC', '')})"
        )
    return env_id


def single_turn_problem(env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> str | None:
    """Why ``env_id`` with ``env_kwargs`` is not single-turn, or ``None`` when it is.

    Single-turn means every episode ends after one reply, whatever the reply: the env allows one
    turn (``max_turns == 1``) and no invalid action before ending (``max_invalid_actions == 0``).

    >>> single_turn_problem("Math-v0") is None
    True
    >>> single_turn_problem("Math-v0", {"max_turns": 3})
    'max_turns=3, max_invalid_actions=0'
    """
    env = gym.make(_check_env_id(env_id), **dict(env_kwargs or {}))
    try:
        max_turns = getattr(env.unwrapped, "max_turns", None)
        max_invalid = getattr(env.unwrapped, "max_invalid_actions", None)
    finally:
        env.close()
    if max_turns == 1 and max_invalid == 0:
        return None
    return f"max_turns={max_turns}, max_invalid_actions={max_invalid}"


def _default_name(env_id: str, env_kwargs: Mapping[str, Any]) -> str:
    if not env_kwargs:
        return env_id
    parts = ",".join(f"{key}={json.dumps(env_kwargs[key])}" for key in sorted(env_kwargs))
    return f"{env_id}[{parts}]"


def _completion_text(completion: Any, row: int) -> str:
    """A TRL completion as the env's action: a string, or the assistant turns of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and all(isinstance(m, Mapping) for m in completion):
        texts = []
        for message in completion:
            if message.get("role", "assistant") != "assistant":
                continue
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):  # typed content parts
                texts.extend(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        return "".join(texts)
    raise TypeError(
        f"completions[{row}]: expected a str or a list of chat messages, "
        f"got {type(completion).__name__}"
    )


def _same_prompt(expected: Sequence[Mapping[str, Any]], given: Any) -> bool:
    """Whether the conversational prompt ``given`` shows the messages of ``expected``."""
    if not isinstance(given, list):
        return True  # a plain-text prompt: nothing to compare against
    pairs = [(m.get("role"), m.get("content")) for m in given if isinstance(m, Mapping)]
    return pairs == [(m["role"], m["content"]) for m in expected]


def reward_function(
    env_id: str, *, name: str | None = None, **env_kwargs: Any
) -> Callable[..., list[float | None]]:
    """A TRL reward function ``fn(prompts, completions, **columns) -> list[float | None]``.

    Each row's episode is rebuilt from its columns ``env_id``, ``env_kwargs`` (JSON) and ``seed``
    (:func:`dataset`), with ``env_kwargs`` given here laid over the row's (e.g. a penalty or
    reward-noise setting), and stepped once with the completion; the step's reward is the row's
    reward. Garbage completions get the env's own penalty. Rows of another env id get ``None``,
    which TRL leaves out, so one run can mix envs with one function per env. A conversational
    prompt must be the rebuilt episode's opening messages (else the kwargs changed the task).

    The function's ``__name__`` (TRL's logging key) is ``name`` or ``env_id[kwargs]``. A
    multi-turn ``env_id`` (see :func:`single_turn_problem`) raises ``ValueError`` pointing to
    :class:`MultiTurnRollout`. Reward noise keyed by reset options (Math-v0's ``noise_key``) is
    keyed here by the row's seed; :func:`arenagym.envs.math.scoring.make_trl_reward` draws fresh
    coins per computation.
    """
    problem = single_turn_problem(env_id, env_kwargs)
    if problem is not None:
        raise ValueError(
            f"{env_id} is multi-turn ({problem}): a reward function scores one reply; "
            + _MULTI_TURN_HINT
        )
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"name: expected a non-empty str, got {name!r}")
    fn_name = name or _default_name(env_id, env_kwargs)
    overrides = dict(env_kwargs)

    def reward(
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        **columns: Any,
    ) -> list[float | None]:
        if completions is None:
            raise ValueError(f"{fn_name}: no completions given")
        count = len(completions)
        for column in _COLUMNS:
            values = columns.get(column)
            if values is None:
                raise ValueError(
                    f"{fn_name}: the dataset has no {column!r} column; build it with "
                    "arenagym.envs.integrations.trl.dataset (columns env_id, env_kwargs, seed)"
                )
            if len(values) != count:
                raise ValueError(
                    f"{fn_name}: column {column!r} has {len(values)} rows for {count} completions"
                )
        if prompts is not None and len(prompts) != count:
            raise ValueError(
                f"{fn_name}: 'prompts' has {len(prompts)} rows for {count} completions"
            )
        rewards: list[float | None] = []
        for row, completion in enumerate(completions):
            text = _completion_text(completion, row)
            try:
                ref = EpisodeRef.from_columns(
                    columns["env_id"][row], columns["env_kwargs"][row], columns["seed"][row]
                )
            except ValueError as error:
                raise ValueError(f"{fn_name}: row {row}: {error}") from None
            if ref.env_id != env_id:
                rewards.append(None)
                continue
            ref = EpisodeRef(ref.env_id, {**ref.env_kwargs, **overrides}, ref.seed)
            with TextSession(ref) as session:
                if prompts is not None and not _same_prompt(session.messages, prompts[row]):
                    raise ValueError(
                        f"{fn_name}: row {row}: the episode rebuilt from env_id, env_kwargs and "
                        f"seed ({ref}) does not open with the row's prompt; the function's "
                        "env_kwargs must not change the task"
                    )
                outcome = session.send(text)
                if not outcome.done:
                    raise ValueError(
                        f"{fn_name}: row {row}: the episode did not end after one reply: its "
                        f"env_kwargs {dict(ref.env_kwargs)} make {env_id} multi-turn; "
                        f"{_MULTI_TURN_HINT}"
                    )
            rewards.append(outcome.reward)
        return rewards

    reward.__name__ = reward.__qualname__ = fn_name
    return reward


def dataset(env_id: str, seeds: Iterable[int], **env_kwargs: Any) -> datasets.Dataset:
    """A TRL training dataset: one row per seed, built on :func:`dataset_rows`.

    Columns: ``prompt`` (the episode's opening chat messages; the first one also carries
    :data:`EPISODE_KEY` for :class:`MultiTurnRollout`), ``env_id``, ``env_kwargs`` (JSON) and
    ``seed`` (for :func:`reward_function`).
    """
    Dataset = _require("datasets").Dataset
    _check_env_id(env_id)
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds: expected at least one seed")
    for seed in seeds:
        EpisodeRef.from_columns(env_id, env_kwargs, seed)  # a bad seed raises naming the field
    rows = dataset_rows(env_id, seeds, env_kwargs)
    for row in rows:
        columns = {column: row[column] for column in _COLUMNS}
        row["prompt"][0][EPISODE_KEY] = json.dumps(columns, sort_keys=True)
    return Dataset.from_list(rows)


def _episode_of(prompt: Any, index: int) -> EpisodeRef:
    """The episode a rollout prompt names through :data:`EPISODE_KEY`."""
    marker = prompt[0].get(EPISODE_KEY) if isinstance(prompt, list) and prompt else None
    if not isinstance(marker, str):
        raise ValueError(
            f"prompts[{index}]: its first message has no {EPISODE_KEY!r} key naming the episode; "
            "build the dataset with arenagym.envs.integrations.trl.dataset"
        )
    try:
        columns = json.loads(marker)
        return EpisodeRef.from_columns(columns["env_id"], columns["env_kwargs"], columns["seed"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"prompts[{index}]: bad {EPISODE_KEY!r} ({error})") from None


@dataclass(frozen=True)
class EpisodeSummary:
    """One episode a :class:`MultiTurnRollout` played: what, how many turns, how it ended."""

    ref: EpisodeRef
    turns: int
    reward: float
    clean_reward: float
    stop_reason: str | None
    model_tokens: int
    env_tokens: int


class MultiTurnRollout:
    """A ``rollout_func`` for TRL's ``GRPOTrainer`` that plays whole arenagym episodes.

    Why ``rollout_func`` and not ``environment_factory``: ``environment_factory`` exposes an env's
    methods as *tools*, so the model would have to emit tool-call JSON (and the chat template
    support tool calling), env messages would be tool results, and an episode would end when the
    model stops calling tools. arenagym envs take the model's raw text as the action and decide
    themselves when the episode ends, which ``rollout_func`` expresses directly: it gets the
    batch's prompts (each prompt repeated ``num_generations`` times by TRL's sampler) and returns
    one sequence per prompt.

    Per episode: the opening messages are rendered with the chat template (``prompt_ids``); then,
    turn after turn, the trainer's model samples a reply from the token ids so far (batched over
    the episodes still running), the reply's decoded text steps the env, and the env's next
    message is appended as the template renders a user turn plus the generation prompt. The
    sampled ids are kept as they are (never re-tokenised); the env's ids get ``env_mask`` 0, so
    only the model's tokens carry loss. The episode's return and details come back as the extra
    fields ``env_reward``, ``env_clean_reward``, ``env_turns`` and ``env_stop_reason``, which TRL
    passes to reward functions (use :func:`episode_reward`).

    Args:
        max_turns: at most this many model turns per episode (``None``: until the env ends it).
        max_turn_tokens: new tokens per model turn (``None``: the trainer's
            ``max_completion_length``).
        max_completion_tokens: the whole completion (model and env tokens) stays within this;
            an episode that would pass it stops there (``stop_reason="max_completion_tokens"``).
            ``None``: no bound but ``max_turns`` and the env's own.
        max_workers: threads that build and step envs concurrently.
        history_size: how many of the latest episodes :attr:`history` keeps.

    Generation uses the trainer's transformers model with its ``generation_config``
    (``use_vllm=True`` is not supported). :attr:`history` keeps the latest episodes played.
    """

    def __init__(
        self,
        *,
        max_turns: int | None = None,
        max_turn_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        max_workers: int = 8,
        history_size: int = 1024,
    ) -> None:
        for field_name, value in (
            ("max_turns", max_turns),
            ("max_turn_tokens", max_turn_tokens),
            ("max_completion_tokens", max_completion_tokens),
        ):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{field_name}: expected an int >= 1 or None, got {value!r}")
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers: expected an int >= 1, got {max_workers!r}")
        self.max_turns = max_turns
        self.max_turn_tokens = max_turn_tokens
        self.max_completion_tokens = max_completion_tokens
        self.max_workers = max_workers
        self.history: deque[EpisodeSummary] = deque(maxlen=history_size)

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        if getattr(trainer, "use_vllm", False):
            raise NotImplementedError(
                "MultiTurnRollout generates with the trainer's transformers model; "
                "set GRPOConfig(use_vllm=False)"
            )
        refs = [_episode_of(prompt, index) for index, prompt in enumerate(prompts)]
        tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
        template_kwargs = dict(getattr(trainer, "chat_template_kwargs", None) or {})
        eos_ids = set(trainer.eos_token_ids)
        per_turn = self.max_turn_tokens or trainer.max_completion_length
        cap = self.max_completion_tokens
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(refs) or 1)) as pool:
            sessions = list(pool.map(TextSession, refs))
            try:
                prompt_ids = [
                    _render(tokenizer, session.messages, template_kwargs) for session in sessions
                ]
                completion: list[list[int]] = [[] for _ in sessions]
                mask: list[list[int]] = [[] for _ in sessions]
                stop: list[str | None] = [None] * len(sessions)
                active = list(range(len(sessions)))
                while active:
                    budget = {
                        i: per_turn if cap is None else min(per_turn, cap - len(completion[i]))
                        for i in active
                    }
                    sampled = _generate(
                        trainer,
                        [prompt_ids[i] + completion[i] for i in active],
                        max(budget.values()),
                    )
                    replies = []
                    for i, ids in zip(active, sampled, strict=True):
                        ids = _first_turn(ids, eos_ids, budget[i])
                        completion[i] += ids
                        mask[i] += [1] * len(ids)
                        replies.append(tokenizer.decode(ids, skip_special_tokens=True))
                    outcomes = list(pool.map(lambda i, r: sessions[i].send(r), active, replies))
                    still = []
                    for i, outcome in zip(active, outcomes, strict=True):
                        if outcome.done:
                            continue
                        if self.max_turns is not None and sessions[i].turns >= self.max_turns:
                            stop[i] = "max_turns"
                            continue
                        bridge = [] if completion[i][-1] in eos_ids else [tokenizer.eos_token_id]
                        bridge += _env_turn_ids(tokenizer, outcome.observation, template_kwargs)
                        if cap is not None and len(completion[i]) + len(bridge) >= cap:
                            stop[i] = "max_completion_tokens"
                            continue
                        completion[i] += bridge
                        mask[i] += [0] * len(bridge)
                        still.append(i)
                    active = still
            finally:
                for session in sessions:
                    session.close()
        summaries = [
            EpisodeSummary(
                ref=session.ref,
                turns=session.turns,
                reward=session.total_reward,
                clean_reward=session.total_clean_reward,
                stop_reason=session.stop_reason or stop[i],
                model_tokens=sum(mask[i]),
                env_tokens=len(mask[i]) - sum(mask[i]),
            )
            for i, session in enumerate(sessions)
        ]
        self.history.extend(summaries)
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": completion,
            "logprobs": None,
            "env_mask": mask,
            "env_reward": [s.reward for s in summaries],
            "env_clean_reward": [s.clean_reward for s in summaries],
            "env_turns": [s.turns for s in summaries],
            "env_stop_reason": [s.stop_reason or "" for s in summaries],
        }


def episode_reward(
    completions: Sequence[Any], env_reward: Sequence[float] | None = None, **columns: Any
) -> list[float]:
    """The reward function of :class:`MultiTurnRollout`: each episode's return (``env_reward``).

    Also logs ``env/turns`` and ``env/clean_reward`` (means over the batch) through TRL's
    ``log_metric``, so the trainer's logs show how long episodes were.
    """
    if env_reward is None:
        raise ValueError(
            "episode_reward reads the 'env_reward' field that MultiTurnRollout returns; "
            "pass GRPOTrainer(rollout_func=MultiTurnRollout(), ...)"
        )
    if len(env_reward) != len(completions):
        raise ValueError(
            f"'env_reward' has {len(env_reward)} rows for {len(completions)} completions"
        )
    log_metric = columns.get("log_metric")
    if callable(log_metric) and completions:
        for key, column in (("env/turns", "env_turns"), ("env/clean_reward", "env_clean_reward")):
            values = columns.get(column)
            if values:
                log_metric(key, sum(float(v) for v in values) / len(values))
    return [float(value) for value in env_reward]


def _render(tokenizer: Any, messages: list[dict[str, str]], kwargs: dict[str, Any]) -> list[int]:
    """The token ids of ``messages`` plus the generation prompt, by the tokenizer's chat template."""
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    ids = tokenizer.apply_chat_template(
        plain, add_generation_prompt=True, tokenize=True, return_dict=False, **kwargs
    )
    return list(ids)


_DUMMY = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]


def _env_turn_ids(tokenizer: Any, observation: str, kwargs: dict[str, Any]) -> list[int]:
    """The ids the chat template puts after a finished assistant turn for a user message
    ``observation`` and the next generation prompt (the end-of-turn token itself excluded)."""
    prefix = tokenizer.apply_chat_template(_DUMMY, tokenize=True, return_dict=False, **kwargs)
    full = tokenizer.apply_chat_template(
        [*_DUMMY, {"role": "user", "content": observation}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=False,
        **kwargs,
    )
    prefix, full = list(prefix), list(full)
    eos = [i for i, token in enumerate(prefix) if token == tokenizer.eos_token_id]
    if eos:
        prefix = prefix[: eos[-1] + 1]
    if full[: len(prefix)] != prefix:
        raise ValueError(
            "the chat template renders earlier turns differently once a user message follows; "
            "MultiTurnRollout needs a template that appends turns"
        )
    return full[len(prefix) :]


def _first_turn(ids: list[int], eos_ids: set[int], budget: int) -> list[int]:
    """The sampled ids up to and including the first end-of-turn token, at most ``budget``."""
    ids = ids[:budget]
    for position, token in enumerate(ids):
        if token in eos_ids:
            return ids[: position + 1]
    return ids


def _generate(trainer: Any, contexts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
    """Sample one continuation per context with the trainer's model (left-padded batch)."""
    torch = _require("torch")
    unwrap = _require("trl.models.utils").unwrap_model_for_generation
    tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)
    width = max(len(ids) for ids in contexts)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in contexts])
    attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in contexts])
    device = trainer.accelerator.device
    config = copy.deepcopy(trainer.generation_config)
    config.max_new_tokens = max_new_tokens
    with (
        unwrap(
            trainer.model_wrapped,
            trainer.accelerator,
            gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
            generation_kwargs=trainer.generation_kwargs,
            gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
        ) as model,
        torch.no_grad(),
    ):
        output = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            generation_config=config,
        )
    return [row.tolist() for row in output[:, width:].cpu()]
