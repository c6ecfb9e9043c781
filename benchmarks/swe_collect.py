"""``arenagym swe collect``: runtime-validated SWE-v0 trajectories for fine-tuning.

Why: Skywork-SWE fine-tunes on agent trajectories that its sandbox validated (the fix made the
task's tests pass), in a chat format with tool calls. This runs an agent over a task file's
tasks in SWE-v0, keeps the episodes whose fix the grader accepted (``resolved``; ``keep="all"``
keeps every episode, for inspection), and writes each as one JSONL row ready for SFT:

- ``messages``: ``system`` (SWE-v0's instructions), ``user`` (the issue), then per turn an
  ``assistant`` message whose reply parses as a tool call carries it as ``tool_calls`` (OpenAI
  format, the arguments as a JSON string) and the sandbox's answer follows as a ``tool`` message;
  a reply that is no tool call stays ``content`` and the env's correction follows as ``user``.
- ``tools``: SWE-v0's OpenAI tool schemas (what TRL's ``SFTTrainer`` and chat templates take
  beside ``messages``);
- ``instance_id``, ``repo``, ``attempt``, ``resolved``, ``reward``, ``turns``, ``stop_reason``,
  ``tokens`` (the messages rendered by ``tokenizer``'s chat template when one is given).

:func:`collection_stats` gives what Skywork-SWE reports about its trajectories: episodes,
resolve rate per repository, turns and tokens of the kept trajectories.

Example (``# doctest: +SKIP``: plays sandboxed episodes):
    >>> result = collect("arenagym.envs.swe.baselines:GoldPatchAgent", "tasks.jsonl",
    ...                  agent_kwargs={"tasks": "tasks.jsonl"})  # doctest: +SKIP
    >>> write_trajectories(result.kept, "traj.jsonl")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from arenagym.agents.episode import EnvStep, play_episode
from arenagym.agents.specs import build_agent, resolve_agent_factory
from arenagym.envs.swe.realset import RealSetError, real_tasks, resolve_task_set
from arenagym.envs.swe.tasks import load_tasks
from arenagym.envs.swe.tools import TOOL_SPECS, ToolCallError, parse_tool_call

__all__ = [
    "CollectError",
    "CollectResult",
    "SWETrajectory",
    "collect",
    "collection_stats",
    "sft_messages",
    "write_trajectories",
]

KEEP = ("resolved", "all")


class CollectError(ValueError):
    """Bad input to ``arenagym swe collect`` (exit status 2): an argument, agent or task file."""


@dataclass
class SWETrajectory:
    """One played episode, in the SFT format (see the module docs)."""

    instance_id: str
    repo: str
    attempt: int
    resolved: bool
    reward: float
    turns: int
    stop_reason: str
    messages: list[dict[str, Any]]
    tokens: int | None = None
    error: str | None = None  # what ended an env_error / agent_error episode

    def row(self) -> dict[str, Any]:
        """The JSONL row."""
        return {
            "instance_id": self.instance_id,
            "repo": self.repo,
            "attempt": self.attempt,
            "resolved": self.resolved,
            "reward": self.reward,
            "turns": self.turns,
            "stop_reason": self.stop_reason,
            "tokens": self.tokens,
            "error": self.error,
            "messages": self.messages,
            "tools": TOOL_SPECS,
        }


@dataclass
class CollectResult:
    """Every episode played (``episodes``) and the ones kept (``kept``)."""

    episodes: list[SWETrajectory] = field(default_factory=list)
    keep: str = "resolved"

    @property
    def kept(self) -> list[SWETrajectory]:
        """The trajectories to write: the resolved ones, or all with ``keep="all"``."""
        return [e for e in self.episodes if self.keep == "all" or e.resolved]


def sft_messages(
    system_prompt: str, steps: Sequence[EnvStep], final_observation: Any
) -> list[dict[str, Any]]:
    """The chat of an episode with its tool calls (see the module docs). Each step holds what the
    agent saw and did; the env's answer to a step is what the agent saw next, and to the last
    one ``final_observation`` (left out when the episode ended on an empty one).

    >>> first = EnvStep("issue", '{"name": "think", "arguments": {"thought": "hm"}}', 0.0,
    ...                 False, False, {})
    >>> second = EnvStep("Your thought has been logged.", "oops", 0.0, True, False, {})
    >>> messages = sft_messages("sys", [first, second], "")
    >>> [m["role"] for m in messages]
    ['system', 'user', 'assistant', 'tool', 'assistant']
    >>> messages[2]["tool_calls"][0]["function"], messages[3]["content"]
    ({'name': 'think', 'arguments': '{"thought": "hm"}'}, 'Your thought has been logged.')
    """
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    if not steps:
        return messages
    messages.append({"role": "user", "content": _text(steps[0].observation)})
    for index, step in enumerate(steps):
        call_id = f"call_{index}"
        try:
            call = parse_tool_call(step.action)
        except ToolCallError:
            call = None
        if call is None:
            messages.append({"role": "assistant", "content": step.action})
        else:
            function = {"name": call.name, "arguments": json.dumps(call.arguments)}
            messages.append(
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"id": call_id, "type": "function", "function": function}],
                }
            )
        last = index + 1 == len(steps)
        answer = _text(final_observation if last else steps[index + 1].observation)
        if last and not answer and (step.terminated or step.truncated):
            continue
        if call is None:
            messages.append({"role": "user", "content": answer})
        else:
            messages.append({"role": "tool", "tool_call_id": call_id, "content": answer})
    return messages


def _text(observation: Any) -> str:
    return "" if observation is None else str(observation)


def collect(
    agent_spec: str,
    tasks: str | os.PathLike[str],
    *,
    agent_kwargs: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    attempts: int = 1,
    workers: int = 2,
    keep: str = "resolved",
    tokenizer: Any = None,
    on_episode: Callable[[SWETrajectory], None] | None = None,
) -> CollectResult:
    """Play ``attempts`` episodes of every task of ``tasks`` (a task file, or a split of the
    real-library set: ``"real-test"``...) with a fresh agent of
    ``agent_spec`` each, ``workers`` at a time; every episode in task order, attempt by attempt.

    ``on_episode`` is called with each finished episode (a progress bar). Raises
    :class:`CollectError` for a bad argument or agent spec, and the task file's own error
    (``TaskFormatError``) for a bad task file.
    """
    if keep not in KEEP:
        raise CollectError(f"keep must be one of {', '.join(KEEP)}, got {keep!r}")
    if not isinstance(attempts, int) or attempts < 1:
        raise CollectError(f"attempts must be an int >= 1, got {attempts!r}")
    if not isinstance(workers, int) or workers < 1:
        raise CollectError(f"workers must be an int >= 1, got {workers!r}")
    named = resolve_task_set(tasks) if isinstance(tasks, str) else None
    try:
        task_list = list(real_tasks(named)) if named else load_tasks(tasks, require_tests=True)
    except RealSetError as error:
        raise CollectError(str(error)) from None
    try:
        factory = resolve_agent_factory(agent_spec)
    except ValueError as error:
        raise CollectError(str(error)) from None
    kwargs = dict(agent_kwargs or {})
    make_kwargs = {**dict(env_kwargs or {}), "tasks": str(tasks)}
    try:  # a task whose repository is missing or refused fails here, not as env_error rows
        gym.make("SWE-v0", **make_kwargs).close()
    except (ValueError, TypeError, OSError) as error:
        raise CollectError(f"SWE-v0 cannot play {tasks}: {error}") from None
    jobs = [(task, attempt) for attempt in range(attempts) for task in task_list]

    def play(job: tuple[Any, int]) -> SWETrajectory:
        task, attempt = job
        steps: list[EnvStep] = []
        result = play_episode(
            lambda: gym.make("SWE-v0", **make_kwargs),
            lambda: build_agent(factory, agent_spec, **kwargs),
            options={"task_id": task.instance_id},
            on_step=steps.append,
        )
        messages = sft_messages(result.system_prompt, steps, result.observation)
        episode = SWETrajectory(
            instance_id=task.instance_id,
            repo=task.repo,
            attempt=attempt,
            resolved=result.env_stop_reason == "solved" and result.clean_reward >= 1.0,
            reward=result.reward,
            turns=result.turns,
            stop_reason=result.stop_reason,
            messages=messages,
            tokens=_count_tokens(tokenizer, messages),
            error=_episode_error(result),
        )
        if on_episode is not None:
            on_episode(episode)
        return episode

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="swe-collect") as pool:
        episodes = list(pool.map(play, jobs))
    return CollectResult(episodes, keep)


def _episode_error(result: Any) -> str | None:
    """One line on what ended the episode abnormally (the env's report or the failure)."""
    if result.failure is not None:
        return f"{type(result.failure.error).__name__}: {result.failure.error}"[:500]
    if result.env_error is not None:
        return str(result.env_error)[:500]
    return None


def _count_tokens(tokenizer: Any, messages: list[dict[str, Any]]) -> int | None:
    if tokenizer is None:
        return None
    try:
        ids = tokenizer.apply_chat_template(messages, tools=TOOL_SPECS, tokenize=True)
    except Exception:  # a template that cannot render tool calls: count the plain text instead
        text = "\n".join(str(m.get("content") or json.dumps(m.get("tool_calls"))) for m in messages)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if isinstance(ids, Mapping):  # BatchEncoding
        ids = ids["input_ids"]
    return len(ids)


def write_trajectories(trajectories: Sequence[SWETrajectory], path: str | os.PathLike[str]) -> int:
    """Write one JSONL row per trajectory, replacing ``path`` at once (a run killed while
    writing leaves the previous file whole); the number written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        for trajectory in trajectories:
            out.write(json.dumps(trajectory.row(), ensure_ascii=False) + "\n")
    partial.replace(target)
    return len(trajectories)


def collection_stats(result: CollectResult) -> dict[str, Any]:
    """Episodes, resolved episodes and resolve rate overall and per repository, how episodes
    ended (``stop_reasons``: an ``env_error`` count is a broken setup, not a failed agent); turns and tokens
    (mean, median, max) of the kept trajectories.

    >>> def t(repo, resolved, turns):
    ...     return SWETrajectory("i", repo, 0, resolved, float(resolved), turns, "x", [], 10)
    >>> stats = collection_stats(CollectResult([t("a", True, 2), t("a", False, 5), t("b", True, 4)]))
    >>> stats["resolve_rate"], stats["repos"]["a"], stats["turns"]["mean"]
    (0.6666666666666666, {'episodes': 2, 'resolved': 1, 'resolve_rate': 0.5}, 3.0)
    """
    by_repo: dict[str, list[SWETrajectory]] = defaultdict(list)
    for episode in result.episodes:
        by_repo[episode.repo].append(episode)
    resolved = sum(e.resolved for e in result.episodes)
    kept = result.kept

    def summary(values: list[int]) -> dict[str, float] | None:
        if not values:
            return None
        return {
            "mean": statistics.fmean(values),
            "median": statistics.median(values),
            "max": max(values),
        }

    return {
        "episodes": len(result.episodes),
        "resolved": resolved,
        "resolve_rate": resolved / len(result.episodes) if result.episodes else 0.0,
        "kept": len(kept),
        "stop_reasons": dict(sorted(Counter(e.stop_reason for e in result.episodes).items())),
        "repos": {
            repo: {
                "episodes": len(episodes),
                "resolved": sum(e.resolved for e in episodes),
                "resolve_rate": sum(e.resolved for e in episodes) / len(episodes),
            }
            for repo, episodes in sorted(by_repo.items())
        },
        "turns": summary([e.turns for e in kept]),
        "tokens": summary([e.tokens for e in kept if e.tokens is not None]),
    }


def collect_command(args: Any) -> int:
    """``arenagym swe collect TASKS --agent SPEC -o OUT``, given the parsed arguments (the
    parser and the error format are :mod:`arenagym.cli`'s): plays the episodes with a progress
    line per episode on stderr, writes the kept trajectories to ``OUT`` and the statistics to
    ``OUT`` with ``.stats.json`` appended, prints the statistics; exit status 0."""
    import sys

    from arenagym.envs.swe.tasks import TaskFormatError

    try:
        agent_kwargs = json.loads(args.agent_kwargs) if args.agent_kwargs else {}
        env_kwargs = json.loads(args.env_kwargs) if args.env_kwargs else {}
    except json.JSONDecodeError as error:
        raise CollectError(f"--agent-kwargs/--env-kwargs: not JSON ({error.msg})") from None
    if not isinstance(agent_kwargs, dict) or not isinstance(env_kwargs, dict):
        raise CollectError("--agent-kwargs and --env-kwargs take a JSON object")
    if resolve_task_set(args.tasks) is None and not Path(args.tasks).is_file():
        raise CollectError(f"task file {args.tasks} does not exist")
    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        from arenagym.agents.models import resolve_model

        tokenizer = AutoTokenizer.from_pretrained(resolve_model(args.tokenizer))
    done = [0]

    def progress(episode: SWETrajectory) -> None:
        done[0] += 1
        outcome = "resolved" if episode.resolved else episode.stop_reason
        if episode.error:
            outcome += f" ({episode.error})"
        print(
            f"[{done[0]}] {episode.instance_id} (attempt {episode.attempt + 1}): {outcome}, "
            f"{episode.turns} turns",
            file=sys.stderr,
            flush=True,
        )

    try:
        result = collect(
            args.agent,
            args.tasks,
            agent_kwargs=agent_kwargs,
            env_kwargs=env_kwargs,
            attempts=args.attempts,
            workers=args.workers,
            keep=args.keep,
            tokenizer=tokenizer,
            on_episode=progress,
        )
    except TaskFormatError as error:
        raise CollectError(str(error)) from None
    written = write_trajectories(result.kept, args.output)
    stats = collection_stats(result)
    stats_path = Path(f"{args.output}.stats.json")
    stats_path.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(stats, indent=2))
    print(
        f"arenagym swe collect: {written} trajectories in {args.output} "
        f"({stats['resolved']}/{stats['episodes']} episodes resolved); statistics in {stats_path}",
        file=sys.stderr,
    )
    return 0
