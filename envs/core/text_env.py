"""The base class of every single-agent LLM text env: the env contract, implemented once.

A family subclasses :class:`TextEnv` and writes two hooks:

- :meth:`TextEnv._start_episode` builds an :class:`Episode` (task id, system prompt, first
  observation) from the seeded ``self.np_random``;
- :meth:`TextEnv._respond` turns one action into a :class:`Turn` (observation, reward components,
  whether the episode ended and why) or an :class:`InvalidAction` (what was wrong, how to act).

Everything else is done here, identically for every family: type and length checks on the action,
invalid-action penalties and their allowance, the turn limit, ``reward_components``,
``clean_reward`` and ``stop_reason`` in ``info``, the ``"ansi"`` transcript, turning an
infrastructure fault inside a hook into a ``stop_reason="env_error"`` step instead of an
exception, and an idempotent ``close``.

What every ``step`` puts in ``info`` (besides what the family adds):

- ``reward_components``: a dict that sums to the step's reward;
- ``clean_reward``: the step's noiseless score, which benchmarks and leaderboards add up instead
  of the reward. It is the step's reward unless the family says otherwise through
  :attr:`Turn.clean_reward` / :attr:`InvalidAction.clean_reward` (a noisy or shaped reward keeps
  its clean verifier score there), so every env reports it and a family never sets it by hand;
- ``invalid_action`` (and, when it is ``True``, ``error``: what was wrong), ``turn``;
- ``stop_reason`` on the step that ends the episode (:data:`STOP_REASONS`, or a more specific
  reason the family documents in its class docstring's "Episode End").

Two class attributes adapt the rules for a family whose game has its own (TextArena's):

- :attr:`TextEnv.invalid_actions_in_a_row`: the ``max_invalid_actions`` allowance counts
  invalid actions *in a row*, and a valid action starts the count again (the default counts
  every invalid action of the episode);
- :attr:`TextEnv.accepts_any_action`: :meth:`TextEnv._respond` also gets actions that are not
  text or are longer than ``max_action_length`` (it must turn them into an
  :class:`InvalidAction`), instead of the base rejecting them before the family sees them.

Example:
    >>> class Echo(TextEnv):
    ...     def _start_episode(self, options):
    ...         return Episode(task_id="echo", system_prompt="Repeat the word.", prompt="say hi")
    ...     def _respond(self, action):
    ...         if not action.strip():
    ...             return InvalidAction("the reply was empty; write the word")
    ...         ok = action.strip() == "hi"
    ...         return Turn("done", {"correct": float(ok)}, terminated=True,
    ...                     stop_reason="solved" if ok else "failed")
    >>> env = Echo(max_turns=2, max_invalid_actions=1)
    >>> obs, info = env.reset(seed=0)
    >>> obs, info["task_id"]
    ('say hi', 'echo')
    >>> env.step("  ")[1:3], env.step("hi")[1:3]
    ((0.0, False), (1.0, True))
    >>> _ = env.reset(seed=0)
    >>> info = env.step("hi")[4]
    >>> info["reward_components"], info["clean_reward"], info["stop_reason"]
    ({'correct': 1.0}, 1.0, 'solved')
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym

from arenagym.envs.core.spaces import UnicodeText

logger = logging.getLogger(__name__)

#: The stop reasons every family shares; families may add more specific ones (e.g. ``no_answer``).
STOP_REASONS: frozenset[str] = frozenset(
    {"solved", "failed", "max_turns", "invalid_action", "timeout", "env_error"}
)


@dataclass(frozen=True)
class Episode:
    """What a family returns from :meth:`TextEnv._start_episode`."""

    task_id: str
    system_prompt: str
    prompt: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Turn:
    """The outcome of one well-formed action.

    ``reward_components`` sum to the step reward. ``stop_reason`` is required when ``terminated``.
    ``clean_reward`` is the step's noiseless score (``info["clean_reward"]``); ``None`` (the
    default) means the step's reward itself, which is right for every env whose reward is not
    noisy or shaped.
    """

    observation: str
    reward_components: dict[str, float]
    terminated: bool = False
    stop_reason: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    clean_reward: float | None = None


@dataclass(frozen=True)
class InvalidAction:
    """An action the env could not use: ``message`` says what was wrong and how to act instead.

    ``stop_reason`` is what the episode ends with once the allowance of invalid actions is used up
    (``invalid_action`` unless the family has a more specific one). ``final_reward_components``
    are added to the penalty when this action ends the episode (e.g. a noisy reward that a
    missing answer still earns). ``clean_reward`` is the step's noiseless score, as in
    :class:`Turn` (``None``: the step's reward, penalty included).
    """

    message: str
    stop_reason: str = "invalid_action"
    info: dict[str, Any] = field(default_factory=dict)
    final_reward_components: dict[str, float] = field(default_factory=dict)
    clean_reward: float | None = None


#: What ends an observation clipped to the observation space's ``max_length``.
TRUNCATION_MARKER = "\n…[truncated]"
#: The smallest ``max_observation_length``: room for the truncation marker and some text before it.
MIN_OBSERVATION_LENGTH = 64


class EnvInfrastructureError(RuntimeError):
    """Raised inside a hook when something the env depends on (a sandbox, a worker) failed."""


class TextEnv(gym.Env[str, str]):
    """A single-agent env whose observations and actions are text.

    Arguments shared by every family (subclasses pass them through):

    Args:
        max_turns: the episode is truncated with ``stop_reason="max_turns"`` after this many valid
            actions (invalid ones are bounded by ``max_invalid_actions`` instead).
        invalid_action_penalty: subtracted from the reward of every invalid action (>= 0).
        max_invalid_actions: how many invalid actions are tolerated; one more ends the episode
            (in the episode, or in a row when the family sets :attr:`invalid_actions_in_a_row`).
        max_action_length: longer actions are invalid (the action space's ``max_length``).
        max_observation_length: the observation space's ``max_length`` (at least
            :data:`MIN_OBSERVATION_LENGTH`); longer observations are cut to it, ending in
            :data:`TRUNCATION_MARKER`.
        render_mode: ``None`` or ``"ansi"`` (``render()`` returns the transcript so far).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}
    #: Whether the ``max_invalid_actions`` allowance counts invalid actions in a row (a valid
    #: action starts the count again, as in TextArena: "a second invalid move in a row loses")
    #: rather than over the whole episode (the default).
    invalid_actions_in_a_row: ClassVar[bool] = False
    #: Whether :meth:`_respond` also gets actions that are not text or are longer than
    #: ``max_action_length``, for a family whose game must see every move to keep its own count
    #: of invalid moves; its ``_respond`` then turns them into an :class:`InvalidAction`.
    #: By default (``False``) the base rejects them with a message and ``_respond`` only ever
    #: gets text within the limit.
    accepts_any_action: ClassVar[bool] = False

    def __init__(
        self,
        *,
        max_turns: int = 1,
        invalid_action_penalty: float = 0.0,
        max_invalid_actions: int = 0,
        max_action_length: int = 65_536,
        max_observation_length: int = 65_536,
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(max_turns, int) or max_turns < 1:
            raise ValueError(f"max_turns must be an int >= 1, got {max_turns!r}")
        if invalid_action_penalty < 0:
            raise ValueError(
                "invalid_action_penalty is subtracted from the reward, so it must be >= 0; "
                f"got {invalid_action_penalty!r}"
            )
        if not isinstance(max_invalid_actions, int) or max_invalid_actions < 0:
            raise ValueError(
                f"max_invalid_actions must be an int >= 0, got {max_invalid_actions!r}"
            )
        if (
            isinstance(max_observation_length, bool)
            or not isinstance(max_observation_length, int)
            or max_observation_length < MIN_OBSERVATION_LENGTH
        ):
            raise ValueError(
                f"max_observation_length must be an int >= {MIN_OBSERVATION_LENGTH} (room for "
                f"the truncation marker and some text), got {max_observation_length!r}"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        self.max_turns = max_turns
        self.invalid_action_penalty = float(invalid_action_penalty)
        self.max_invalid_actions = max_invalid_actions
        self.render_mode = render_mode
        self.action_space = UnicodeText(max_action_length)
        self.observation_space = UnicodeText(max_observation_length)
        self._episode: Episode | None = None
        self._turns = 0  # valid actions so far
        self._invalid_actions = 0
        self._done = False
        self._transcript: list[tuple[str, str]] = []
        self._closed = False

    # ----------------------------------------------------------------- hooks for families
    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        """Build the next episode from ``self.np_random`` (already seeded by ``reset``)."""
        raise NotImplementedError

    def _respond(self, action: str) -> Turn | InvalidAction:
        """Apply one action of at most ``max_action_length`` characters (with
        :attr:`accepts_any_action`: any action, of any type and length)."""
        raise NotImplementedError

    def _release(self) -> None:
        """Free what the family holds (processes, temp dirs); called once by :meth:`close`."""

    @property
    def is_last_turn(self) -> bool:
        """Inside :meth:`_respond`: whether a valid action now is the episode's last allowed one."""
        return self._turns + 1 >= self.max_turns

    # ----------------------------------------------------------------------- Gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self._episode = self._start_episode(options)
        self._turns = 0
        self._invalid_actions = 0
        self._done = False
        prompt = self._clip(self._episode.prompt)
        self._transcript = [("system", self._episode.system_prompt), ("env", prompt)]
        info = {
            **self._episode.info,
            "system_prompt": self._episode.system_prompt,
            "task_id": self._episode.task_id,
        }
        return prompt, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._done or self._episode is None:
            when = "after the episode ended" if self._done else "before reset()"
            raise RuntimeError(f"{type(self).__name__}.step() called {when}; call reset()")
        recording = self.render_mode == "ansi"
        if recording:
            shown = action if isinstance(action, str) else repr(action)
            self._transcript.append(("agent", self._clip(shown)))

        outcome = self._checked_respond(action)
        if not isinstance(outcome, InvalidAction):
            self._turns += 1
            terminated = outcome.terminated
            stop_reason = outcome.stop_reason
            if terminated and stop_reason is None:
                raise RuntimeError(f"{type(self).__name__}._respond ended without a stop_reason")
            if self.invalid_actions_in_a_row:
                self._invalid_actions = 0
            components = dict(outcome.reward_components)
            observation = outcome.observation
            info: dict[str, Any] = {"turn": self._turns, "invalid_action": False, **outcome.info}
            final_components = None
        else:
            self._invalid_actions += 1
            left = self.max_invalid_actions - self._invalid_actions + 1
            terminated = left <= 0
            stop_reason = outcome.stop_reason if terminated else None
            components = {"invalid_action": -self.invalid_action_penalty or 0.0}
            in_a_row = " in a row" if self.invalid_actions_in_a_row else ""
            ending = (
                "The episode has ended."
                if terminated
                else f"{left} more invalid action(s){in_a_row} will end the episode."
            )
            observation = f"Invalid action: {outcome.message}\n{ending}"
            info = {"turn": self._turns, **outcome.info}
            info.update(invalid_action=True, error=outcome.message)
            final_components = outcome.final_reward_components

        truncated = not terminated and self._turns >= self.max_turns
        if truncated:
            stop_reason = "max_turns"
        if terminated or truncated:
            self._done = True
            info["stop_reason"] = stop_reason
            if final_components:
                components.update(final_components)
        info["reward_components"] = components
        reward = float(sum(components.values()))
        clean = outcome.clean_reward
        info["clean_reward"] = reward if clean is None else float(clean)
        if len(observation) > self.observation_space.max_length:
            observation = self._clip(observation)
        if recording:
            self._transcript.append(("env", observation))
        return observation, reward, terminated, truncated, info

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the transcript so far, one block per message."""
        if self.render_mode != "ansi":
            return None
        return "\n".join(f"[{role}]\n{text}\n" for role, text in self._transcript)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._release()
        super().close()

    # --------------------------------------------------------------------------- helpers
    def _checked_respond(self, action: Any) -> Turn | InvalidAction:
        if self.accepts_any_action:
            return self._guarded_respond(action)
        if not isinstance(action, str):
            return InvalidAction(
                f"actions are text (str), but got {type(action).__name__}; reply with text"
            )
        if len(action) > self.action_space.max_length:
            return InvalidAction(
                f"the reply has {len(action)} characters, over the limit of "
                f"{self.action_space.max_length}; reply more briefly"
            )
        return self._guarded_respond(action)

    def _guarded_respond(self, action: Any) -> Turn | InvalidAction:
        """:meth:`_respond`, with an exception inside it turned into an ``env_error`` turn."""
        try:
            return self._respond(action)
        except Exception as error:  # an infrastructure fault must not kill a whole batch
            logger.warning("%s step failed: %s", type(self).__name__, error, exc_info=True)
            return Turn(
                observation=f"The environment failed: {error}",
                reward_components={},
                terminated=True,
                stop_reason="env_error",
                info={
                    "error": f"{type(error).__name__}: {error}",
                    "traceback": traceback.format_exc(),
                },
            )

    def _clip(self, text: str) -> str:
        """``text`` cut to the observation space's ``max_length``, ending in the marker."""
        limit = self.observation_space.max_length
        if len(text) <= limit:
            return text
        if limit < len(TRUNCATION_MARKER):  # (only a space replaced after construction)
            return text[:limit]
        return text[: limit - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER
