r"""Math-v0's scoring: the clean verifier result, then the configured reward noise.

Every setting of "The Climb Carves Wisdom Deeper Than the Summit: On the Noisy Rewards in Learning
to Reason" (Lv et al., 2025) is one :class:`RewardConfig`:

- ``flip_prob=p`` — symmetric 1 <-> 0 flips of the correctness reward, each reward flipped with
  probability ``p`` independently every time it is computed (``flip_scope="sample"``, the
  default), or one coin per group of rollouts of a prompt per step (``"group"``, as the paper's
  released code does);
- ``mode="rpr"`` — reward only the reasoning patterns (RPR, exactly as the released code computes
  it: :func:`~arenagym.envs.core.reward_wrappers.reasoning_pattern_score`); ``mode="correct+rpr"`` — both;
- ``reward_model=...`` — a scorer ``(prompt, response) -> float in [0, 1]`` replaces the verifier
  (``simulated_rm_accuracy=a`` is a built-in noisy RM of accuracy ``a``), and
  ``rm_calibration=True`` adds ``rm_alpha * RPR`` to scores below ``rm_threshold``, capped at 1.

Flips act on the verifier's 0/1 outcome whatever it was: a response without an answer scores 0,
and 1 when its coin flips. ``Score.clean_reward`` is always the noiseless verifier result;
leaderboards use it. Which computations share a coin is the caller's choice, through the noise key
it passes to :meth:`MathScorer.score` (Math-v0 builds keys from its reset options; see
:class:`~arenagym.envs.math.env.MathEnv`).
:func:`make_trl_reward` exposes the same scoring as a TRL reward function.

Example:
    >>> scorer = MathScorer(RewardConfig(flip_prob=1.0))
    >>> score = scorer.score("What is 1/2 + 1/4?", r"\frac34", r"So \boxed{0.75}.")
    >>> score.clean_reward, score.reward, score.flipped
    (1.0, 0.0, True)
    >>> reward = make_trl_reward(mode="correct")
    >>> reward(["The answer is 4.", "\\boxed{5}"], answer=["4", "4"])
    [1.0, 0.0]
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from arenagym.envs.core.loading import LoadError, load_object
from arenagym.envs.core.parsing import last_boxed
from arenagym.envs.core.reward_wrappers import (
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
        flip_prob: probability of flipping the correctness reward 1 <-> 0, drawn afresh for
            every reward computation.
        flip_scope: ``"sample"`` (default: every response its own coin) or ``"group"`` (the
            rollouts of one prompt in one step share a coin). The scope decides which noise key
            a caller uses (Math-v0's ``noise_key`` or ``noise_group_key`` reset option; the TRL
            function's row or prompt); :meth:`MathScorer.score` flips by the key it is given.
        noise_seed: seeds every noise coin, so a noisy run is reproducible.
        rpr_n_norm: RPR's normaliser: 20 in the paper's released code (the default).
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
    flip_scope: Literal["group", "sample"] = "sample"
    noise_seed: int = 0
    rpr_n_norm: int = 20
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
                f"rpr_n_norm must be positive (20 in the paper), got {self.rpr_n_norm}"
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
    """One response scored: the reward, its components (they sum to it) and what led to them.

    ``verify_note`` says why the extracted answer was not read (over the verifier's size bound,
    or math-verify failed on it); ``timed_out`` that its check overran the time limit.
    """

    reward: float
    components: dict[str, float]
    clean_reward: float
    has_answer: bool
    extracted_answer: str | None
    parsed_answer: str = ""
    timed_out: bool = False
    verify_note: str = ""
    flipped: bool = False
    rpr: float = 0.0
    rm_score: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def load_reward_model(spec: str | RewardModel) -> RewardModel:
    """A reward model from a callable or a ``"module:attr"`` name.

    Names resolve through :func:`arenagym.envs.core.loading.load_object`; a name that does not
    resolve raises ``ValueError`` saying which name and why.
    """
    if callable(spec):
        return spec
    try:
        scorer = load_object(str(spec), what="reward_model")
    except LoadError as error:
        raise ValueError(str(error)) from None  # a plain ValueError, as every config error here
    if not callable(scorer):
        raise ValueError(f"reward_model {spec!r} is not callable")
    return scorer


class MathScorer:
    """Scores responses to math problems under a :class:`RewardConfig`.

    A call with a ``noise_key`` flips by the hash of ``(noise_seed, noise_key)``; a call without
    one draws its coin from the scorer's own generator (seeded by ``noise_seed``), so repeated
    calls flip independently and a fresh scorer replays the same sequence.
    """

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
        # any int seeds it (numpy refuses negative seeds, the hash does not)
        self._coins = np.random.default_rng(int(unit_hash("coins", self.config.noise_seed) * 2**64))
        self._coins_lock = threading.Lock()  # envs score in worker threads

    def score(
        self, prompt: str, gold: str, response: str, *, noise_key: str | None = None
    ) -> Score:
        """Score ``response`` to the problem ``prompt`` whose reference answer is ``gold``.

        ``noise_key`` names this reward computation for the flip coin: computations with
        different keys flip independently, with the same key identically (how a group shares
        its coin). ``None`` draws a fresh coin from the scorer's generator.
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
                flipped = self._flip(noise_key)
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
            verify_note=verdict.note if verdict else "",
            flipped=flipped,
            rpr=rpr,
            rm_score=rm_score,
        )

    def _flip(self, noise_key: str | None) -> bool:
        """The coin of one reward computation (see :meth:`score`)."""
        config = self.config
        if noise_key is not None:
            return flip_coin(config.flip_prob, noise_seed=config.noise_seed, key=noise_key)
        with self._coins_lock:
            return bool(self._coins.random() < config.flip_prob)

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
    name: str = "math_reward",
    **reward_config: Any,
) -> Callable[..., list[float]]:
    r"""A TRL-style reward function ``fn(completions, **columns) -> list[float]`` for Math-v0 scoring.

    The dataset needs an ``answer`` column (or a MATH-style ``solution`` whose last ``\boxed{}`` is
    the answer). Flips are drawn afresh on every call (TRL calls once per generation batch): with
    ``flip_scope="sample"`` each completion has its own coin; with ``"group"`` the completions of
    one prompt in one call share a coin (the prompt is named by an optional ``task_id`` column,
    else by ``prompts`` as TRL passes them). Coins are keyed by ``(noise_seed, call number, row and
    completion)`` or ``(noise_seed, call number, prompt)``, so a run that makes the same calls gets
    the same flips. ``clean=True`` returns the
    noiseless verifier result (for evaluation). ``name`` is the function's ``__name__``, under which
    TRL logs it: give two instances two names (e.g. ``"noisy"`` and ``"clean"``). Pass it as
    ``GRPOTrainer(reward_funcs=[fn], ...)``.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    reward_name = name
    scorer = MathScorer(
        RewardConfig(**reward_config),
        answer_extraction=answer_extraction,
        verify_timeout_s=verify_timeout_s,
    )

    calls = itertools.count()
    group_scope = scorer.config.flip_scope == "group"

    def math_reward(completions: list[Any], **columns: Any) -> list[float]:
        call = next(calls)
        count = len(completions)
        answers = columns.get("answer")
        if answers is None and columns.get("solution") is not None:
            answers = [last_boxed(solution) or "" for solution in columns["solution"]]
        if answers is None:
            raise ValueError(f"{reward_name} needs an 'answer' (or 'solution') column")
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
            # the text too: processes of a distributed run make the same calls with other rows
            noise_key = f"trl\x1f{call}\x1f" + (
                f"group\x1f{task_id}" if group_scope else f"{index}\x1f{text}"
            )
            try:
                score = scorer.score(prompt_text, str(answers[index]), text, noise_key=noise_key)
            except ValueError as error:
                raise ValueError(f"{reward_name}: row {index}: {error}") from None
            rewards.append(score.clean_reward if clean else score.reward)
        return rewards

    math_reward.__name__ = math_reward.__qualname__ = reward_name
    return math_reward
