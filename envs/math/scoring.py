r"""Math-v0's scoring: the clean verifier result, then the configured reward noise.

Every setting of "The Climb Carves Wisdom Deeper Than the Summit: On the Noisy Rewards in Learning
to Reason" is one :class:`RewardConfig`:

- ``flip_prob=p`` (``flip_scope="group"``: one coin per prompt, shared by every rollout of it;
  ``"sample"``: one coin per response) — symmetric 1 <-> 0 flips of the correctness reward;
- ``mode="rpr"`` — reward only the reasoning patterns (RPR); ``mode="correct+rpr"`` — both;
- ``reward_model=...`` — a scorer ``(prompt, response) -> float in [0, 1]`` replaces the verifier
  (``simulated_rm_accuracy=a`` is a built-in noisy RM of accuracy ``a``), and
  ``rm_calibration=True`` adds ``rm_alpha * RPR`` to scores below ``rm_threshold``, capped at 1.

Flips act on the verifier's 0/1 outcome whatever it was, as in the paper's symmetric noise: a
response without an answer scores 0, and 1 when its coin flips. ``Score.clean_reward`` is always
the noiseless verifier result; leaderboards use it.
:func:`make_trl_reward` exposes the same scoring as a TRL reward function.

Example:
    >>> scorer = MathScorer(RewardConfig(flip_prob=1.0))
    >>> score = scorer.score("What is 1/2 + 1/4?", r"\frac34", r"So \boxed{0.75}.", task_id="t1")
    >>> score.clean_reward, score.reward, score.flipped
    (1.0, 0.0, True)
    >>> reward = make_trl_reward(mode="correct")
    >>> reward(["The answer is 4.", "\\boxed{5}"], answer=["4", "4"])
    [1.0, 0.0]
"""

from __future__ import annotations

import hashlib
import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from arenagym.envs.core.parsing import last_boxed
from arenagym.envs.core.rewards import (
    calibrate_reward_model,
    flip_binary,
    flip_coin,
    reasoning_pattern_score,
    unit_hash,
)
from arenagym.envs.math.verifier import (
    DEFAULT_EXTRACTION,
    AnswerChecker,
    check_extraction_methods,
    extract_answer,
)

RewardModel = Callable[[str, str], float]
MODES = ("correct", "rpr", "correct+rpr")


@dataclass(frozen=True)
class RewardConfig:
    """How a verified response becomes a reward. Every field is a Math-v0 keyword argument.

    Attributes:
        mode: ``"correct"`` (verifier or reward model), ``"rpr"`` (reasoning patterns only) or
            ``"correct+rpr"`` (correctness plus ``rpr_weight * RPR``).
        flip_prob: probability of flipping the correctness reward 1 <-> 0.
        flip_scope: ``"group"`` (one coin per task id) or ``"sample"`` (one per response).
        noise_seed: seeds every noise coin, so a noisy run is reproducible.
        rpr_n_norm: RPR's normaliser: 40 (the paper's text) or 20 (its released code).
        rpr_weight: the weight of RPR in ``"correct+rpr"``.
        format_reward: added when the response holds an extractable answer (0 disables it).
        reward_model: a scorer ``(prompt, response) -> [0, 1]`` or its ``"module:attr"`` name;
            replaces the verifier's correctness in the reward.
        simulated_rm_accuracy: instead of a model, a simulated RM whose score lands on the right
            side of 0.5 with this probability (deterministic per prompt and response).
        rm_calibration: the paper's RPR calibration of the RM score.
        rm_threshold: below this RM score, calibration adds ``rm_alpha * RPR``.
        rm_alpha: the calibration weight.
    """

    mode: Literal["correct", "rpr", "correct+rpr"] = "correct"
    flip_prob: float = 0.0
    flip_scope: Literal["group", "sample"] = "group"
    noise_seed: int = 0
    rpr_n_norm: int = 40
    rpr_weight: float = 1.0
    format_reward: float = 0.0
    reward_model: str | RewardModel | None = None
    simulated_rm_accuracy: float | None = None
    rm_calibration: bool = False
    rm_threshold: float = 0.5
    rm_alpha: float = 0.1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.flip_scope not in ("group", "sample"):
            raise ValueError(f"flip_scope must be 'group' or 'sample', got {self.flip_scope!r}")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {self.flip_prob}")
        if self.rpr_n_norm <= 0:
            raise ValueError(
                f"rpr_n_norm must be positive (40 or 20 in the paper), got {self.rpr_n_norm}"
            )
        has_rm = self.reward_model is not None or self.simulated_rm_accuracy is not None
        if self.reward_model is not None and self.simulated_rm_accuracy is not None:
            raise ValueError("give reward_model or simulated_rm_accuracy, not both")
        if self.simulated_rm_accuracy is not None and not 0 <= self.simulated_rm_accuracy <= 1:
            raise ValueError(
                f"simulated_rm_accuracy must be in [0, 1], got {self.simulated_rm_accuracy}"
            )
        if has_rm and self.mode == "rpr":
            raise ValueError(
                "mode='rpr' uses no correctness signal; drop the reward model or use mode='correct'"
            )
        if has_rm and self.flip_prob > 0:
            raise ValueError(
                "flip_prob flips the verifier's 0/1 reward; it does not apply to a reward model"
            )
        if self.mode == "rpr" and self.flip_prob > 0:
            raise ValueError("flip_prob flips correctness, which mode='rpr' does not use")
        for name in ("rpr_weight", "format_reward", "rm_alpha"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0.0 <= self.rm_threshold <= 1.0:
            raise ValueError(f"rm_threshold must be in [0, 1], got {self.rm_threshold!r}")
        if self.rm_calibration and not has_rm:
            raise ValueError("rm_calibration needs reward_model= or simulated_rm_accuracy=")

    def as_info(self) -> dict[str, Any]:
        """The settings, JSON-ready (a callable reward model is named by its qualified name)."""
        info = asdict(self)
        if callable(self.reward_model):
            info["reward_model"] = getattr(
                self.reward_model, "__qualname__", repr(self.reward_model)
            )
        return info


@dataclass(frozen=True)
class Score:
    """One response scored: the reward, its components (they sum to it) and what led to them."""

    reward: float
    components: dict[str, float]
    clean_reward: float
    has_answer: bool
    extracted_answer: str | None
    parsed_answer: str = ""
    timed_out: bool = False
    flipped: bool = False
    rpr: float = 0.0
    rm_score: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def load_reward_model(spec: str | RewardModel) -> RewardModel:
    """A reward model from a callable or a ``"module:attr"`` name."""
    if callable(spec):
        return spec
    module_name, _, attribute = str(spec).partition(":")
    if not module_name or not attribute:
        raise ValueError(f"reward_model must be a callable or 'module:attr', got {spec!r}")
    try:
        scorer = getattr(importlib.import_module(module_name), attribute)
    except ImportError as error:
        raise ValueError(
            f"reward_model {spec!r}: cannot import {module_name!r} ({error})"
        ) from None
    except AttributeError:
        raise ValueError(f"reward_model {spec!r}: {module_name!r} has no {attribute!r}") from None
    if not callable(scorer):
        raise ValueError(f"reward_model {spec!r} is not callable")
    return scorer


class MathScorer:
    """Scores responses to math problems under a :class:`RewardConfig`."""

    def __init__(
        self,
        config: RewardConfig | None = None,
        *,
        answer_extraction: Sequence[str] = DEFAULT_EXTRACTION,
        verify_timeout_s: float = 5.0,
    ) -> None:
        self.config = config or RewardConfig()
        self.answer_extraction = check_extraction_methods(answer_extraction)
        self.checker = AnswerChecker(verify_timeout_s)
        self._reward_model = (
            load_reward_model(self.config.reward_model) if self.config.reward_model else None
        )

    def score(
        self, prompt: str, gold: str, response: str, *, task_id: str, sample_key: str = ""
    ) -> Score:
        """Score ``response`` to the problem ``prompt`` whose reference answer is ``gold``.

        ``task_id`` keys group-scoped noise (every rollout of one task shares its coin);
        ``sample_key`` tells rollouts apart for sample-scoped noise.
        """
        config = self.config
        extracted = extract_answer(response, self.answer_extraction)
        verdict = self.checker.check(gold, extracted) if extracted is not None else None
        correct = 1.0 if verdict is not None and verdict.correct else 0.0
        has_answer = extracted is not None
        rpr = reasoning_pattern_score(response, n_norm=config.rpr_n_norm)
        components: dict[str, float] = {}
        flipped = False
        rm_score: float | None = None

        if config.mode in ("correct", "correct+rpr"):
            if self._reward_model is not None or config.simulated_rm_accuracy is not None:
                rm_score = self._rm_score(prompt, response, correct)
                components["rm"] = rm_score
                if config.rm_calibration:
                    calibrated = calibrate_reward_model(
                        rm_score, rpr=rpr, threshold=config.rm_threshold, alpha=config.rm_alpha
                    )
                    components["rm_calibration"] = calibrated - rm_score
            else:
                key = task_id if config.flip_scope == "group" else f"{task_id}\x1f{sample_key}"
                flipped = flip_coin(config.flip_prob, noise_seed=config.noise_seed, key=key)
                components["correct"] = flip_binary(correct) if flipped else correct
        if config.mode in ("rpr", "correct+rpr"):
            components["rpr"] = rpr * (config.rpr_weight if config.mode == "correct+rpr" else 1.0)
        components["format"] = config.format_reward if has_answer else 0.0
        return Score(
            reward=float(sum(components.values())),
            components=components,
            clean_reward=correct,
            has_answer=has_answer,
            extracted_answer=extracted,
            parsed_answer=verdict.parsed if verdict else "",
            timed_out=bool(verdict and verdict.timed_out),
            flipped=flipped,
            rpr=rpr,
            rm_score=rm_score,
        )

    def _rm_score(self, prompt: str, response: str, correct: float) -> float:
        if self._reward_model is not None:
            value = float(self._reward_model(prompt, response))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"the reward model returned {value}, outside [0, 1]")
            return value
        accuracy = self.config.simulated_rm_accuracy
        assert accuracy is not None
        seed = self.config.noise_seed
        right = unit_hash("rm-right", seed, prompt, response) < accuracy
        high = (correct == 1.0) == right
        spread = unit_hash("rm-margin", seed, prompt, response)
        return 0.5 + 0.5 * spread if high else 0.49 * (1.0 - spread)


def _completion_text(completion: Any) -> str:
    """TRL completions are strings, or conversations: a list of ``{"role", "content"}`` messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(
            m.get("content", "")
            for m in completion
            if isinstance(m, dict) and m.get("role") != "user"
        )
    raise TypeError(
        f"a completion must be a str or a list of messages, got {type(completion).__name__}"
    )


def make_trl_reward(
    *,
    answer_extraction: Sequence[str] = DEFAULT_EXTRACTION,
    verify_timeout_s: float = 5.0,
    clean: bool = False,
    **reward_config: Any,
) -> Callable[..., list[float]]:
    r"""A TRL-style reward function ``fn(completions, **columns) -> list[float]`` for Math-v0 scoring.

    The dataset needs an ``answer`` column (or a MATH-style ``solution`` whose last ``\boxed{}`` is
    the answer); ``prompts`` (passed by TRL) and an optional ``task_id`` column key group noise,
    so every completion of one prompt shares its flip. ``clean=True`` returns the noiseless
    verifier result (for evaluation). Pass it as ``GRPOTrainer(reward_funcs=[fn], ...)``.
    """
    scorer = MathScorer(
        RewardConfig(**reward_config),
        answer_extraction=answer_extraction,
        verify_timeout_s=verify_timeout_s,
    )

    def math_reward(completions: list[Any], **columns: Any) -> list[float]:
        count = len(completions)
        answers = columns.get("answer")
        if answers is None and columns.get("solution") is not None:
            answers = [last_boxed(solution) or "" for solution in columns["solution"]]
        if answers is None:
            raise ValueError("math_reward needs an 'answer' (or 'solution') column")
        prompts = columns.get("prompts") or columns.get("prompt") or [""] * count
        task_ids = columns.get("task_id")
        for name, values in (("answer", answers), ("prompts", prompts), ("task_id", task_ids)):
            if values is not None and len(values) != count:
                raise ValueError(f"column {name!r} has {len(values)} rows for {count} completions")
        rewards = []
        for index, completion in enumerate(completions):
            prompt_text = (
                prompts[index] if isinstance(prompts[index], str) else repr(prompts[index])
            )
            task_id = (
                str(task_ids[index])
                if task_ids is not None
                else hashlib.sha1(prompt_text.encode()).hexdigest()[:16]
            )
            text = _completion_text(completion)
            try:
                score = scorer.score(
                    prompt_text,
                    str(answers[index]),
                    text,
                    task_id=task_id,
                    sample_key=f"{index}:{text}",
                )
            except ValueError as error:
                raise ValueError(f"math_reward: row {index}: {error}") from None
            rewards.append(score.clean_reward if clean else score.reward)
        return rewards

    return math_reward
