"""Baseline agents for PrefInfer-v0: no preference, majority stance, and the upper bound.

- :class:`NoPreferenceAgent` describes nobody in particular: the judge guesses, so it scores
  chance (about 0.5) — the floor.
- :class:`MajorityStanceAgent` infers stances from the observation text alone: it reads each
  response's features with the renderer's marker vocabulary (a bag-of-phrases reader, as a
  feature-based model would learn), counts per dimension how often the chosen response was
  higher than the rejected one (comments vote for their own features), and keeps the clear
  majorities. In streaming mode old votes decay, so the description follows a shift.
- :class:`OracleAgent` answers with the true stances in the env's upper-bound setting
  (``reveal_stances=True``, the only way to open it), reaching the Bayes-optimal accuracy that the
  env reports as ``info["oracle_accuracy"]``; elsewhere it falls back to the majority stance. It
  is a reference (an upper bound), not a competitor.

Example:
    >>> import gymnasium as gym
    >>> import arenagym.envs
    >>> env = gym.make("PrefInfer-v0")
    >>> prompt, info = env.reset(seed=0)
    >>> agent = MajorityStanceAgent()
    >>> agent.reset(info["system_prompt"])
    >>> reply = agent.act(prompt)
    >>> reply.startswith("<think>") and "STANCES:" in reply
    True
    >>> 0.0 <= env.step(reply)[1] <= 1.0
    True
"""

from __future__ import annotations

import numpy as np

from arenagym.envs.prefinfer.dimensions import DIMENSION_NAMES, DIMENSIONS
from arenagym.envs.prefinfer.env import STANCES_PREFIX
from arenagym.envs.prefinfer.judge import describe, format_stances_line, parse_stances_line
from arenagym.envs.prefinfer.users import detect_features

__all__ = ["MajorityStanceAgent", "NoPreferenceAgent", "OracleAgent"]

_TOPIC = np.array([d.topic for d in DIMENSIONS])


def _answer(stances: dict[str, float], reasoning: str) -> str:
    return (
        f"<think>{reasoning}</think>"
        f"<answer>{describe(stances)}\n{format_stances_line(stances)}</answer>"
    )


class NoPreferenceAgent:
    """Says the person has no particular preferences (the judge can only guess)."""

    def reset(self, system_prompt: str) -> None:
        """Nothing to remember."""

    def act(self, observation: str) -> str:
        """The same description whatever the observation."""
        return _answer({}, "I do not use the signals.")


class MajorityStanceAgent:
    """Majority vote over the observed choices and comments (see the module docstring).

    Args:
        min_votes: a dimension needs at least this many informative signals...
        threshold: ...and a mean vote of at least this size (in [0, 1]) to get a pole.
        decay: in streaming mode, earlier steps' votes are multiplied by this per step.
        max_stances: keep at most this many of the strongest stances.
    """

    def __init__(
        self,
        min_votes: float = 2.0,
        threshold: float = 0.5,
        decay: float = 0.3,
        max_stances: int = 5,
    ) -> None:
        self.min_votes = min_votes
        self.threshold = threshold
        self.decay = decay
        self.max_stances = max_stances
        self._votes = np.zeros(len(DIMENSIONS))
        self._counts = np.zeros(len(DIMENSIONS))

    def reset(self, system_prompt: str) -> None:
        """Forget the previous episode's votes."""
        self._votes = np.zeros(len(DIMENSIONS))
        self._counts = np.zeros(len(DIMENSIONS))

    def act(self, observation: str) -> str:
        """Vote on the new signals and describe the clear majorities."""
        self._votes *= self.decay
        self._counts *= self.decay
        chosen: str | None = None
        for paragraph in observation.split("\n\n"):
            if paragraph.startswith("*Chosen:* "):
                chosen = paragraph
            elif paragraph.startswith("*Rejected:* ") and chosen is not None:
                diff = np.sign(detect_features(chosen) - detect_features(paragraph))
                self._votes += diff
                self._counts += diff != 0
                chosen = None
            elif paragraph.startswith("*Comment:* "):
                features = detect_features(paragraph)
                # style: 0 / 1 markers vote; topics: only a mention is informative
                vote = np.where(_TOPIC, features, 2 * features - 1)
                self._votes += vote
                self._counts += vote != 0
        return _answer(self.stances(), "Majority vote of chosen-over-rejected feature changes.")

    def stances(self) -> dict[str, float]:
        """The current inferred stances."""
        mean = np.divide(
            self._votes, self._counts, out=np.zeros_like(self._votes), where=self._counts > 0
        )
        strong = [
            i
            for i in np.argsort(-np.abs(mean), kind="stable")
            if self._counts[i] >= self.min_votes and abs(mean[i]) >= self.threshold
        ][: self.max_stances]
        return {DIMENSION_NAMES[i]: 1.0 if mean[i] > 0 else 0.0 for i in sorted(strong)}


class OracleAgent:
    """The true stances, read from the upper-bound setting's observations (else the majority
    stance): a reference for the best achievable accuracy, not a competitor."""

    def __init__(self) -> None:
        self._fallback = MajorityStanceAgent()

    def reset(self, system_prompt: str) -> None:
        """Start a new episode."""
        self._fallback.reset(system_prompt)

    def act(self, observation: str) -> str:
        """Answer with the revealed stances when the observation carries them."""
        fallback = self._fallback.act(observation)
        for line in reversed(observation.splitlines()):
            if line.startswith(STANCES_PREFIX):
                stances, _ = parse_stances_line(line.removeprefix(STANCES_PREFIX))
                return _answer(stances, "The upper-bound setting reveals the true stances.")
        return fallback
