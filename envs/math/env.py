"""Math-v0: solve a math problem; math-verify checks the answer; reward noise is configurable."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

from arenagym.envs.core.dual import InverseTask
from arenagym.envs.core.text_env import Episode, InvalidAction, TextEnv, Turn
from arenagym.envs.math import procedural
from arenagym.envs.math.problems import Problem, load_bundled, load_jsonl
from arenagym.envs.math.scoring import MathScorer, RewardConfig, RewardModel
from arenagym.envs.math.verifier import DEFAULT_EXTRACTION, check_extraction_methods

_FORMAT_HINTS = {
    "boxed": "\\boxed{...}",
    "answer_tag": "<answer>...</answer>",
    "answer_is": '"The answer is ..."',
}

#: The inverse task's prompts (:meth:`MathEnv.inverse_task`): from a solution back to its problem.
INVERSE_SYSTEM_PROMPT = (
    "You are given a worked solution to a math problem. Write the problem it solves, exactly as "
    "it was posed."
)
INVERSE_QUESTION = (
    "Solution:\n{output}\n\nWhich problem does this solution solve? Reply with the problem only."
)


class MathEnv(TextEnv):
    r"""Solve a math problem; the final answer is checked by math-verify.

    ## Description
    Each episode poses one problem: procedurally generated (seven families: integer arithmetic,
    fractions, linear equations, systems of two equations, quadratics, percentages, counting with
    binomials; a difficulty knob 1-5), from the bundled set of hand-written problems, or from a
    JSONL file. The agent answers in free text; the final answer is extracted (the last
    ``\boxed{}``, ``<answer>`` tags, or "the answer is ...") and compared with the reference by
    math-verify, so equivalent forms (``1/2``, ``0.5``, ``\dfrac12``; ``x = 3`` and ``3``; sets,
    intervals) score alike. The reward can be made noisy as in "The Climb Carves Wisdom Deeper
    Than the Summit: On the Noisy Rewards in Learning to Reason" (Lv et al., 2025; see
    :class:`~arenagym.envs.math.scoring.RewardConfig`), while ``info["clean_reward"]`` stays clean.

    With ``flip_prob=p`` every reward computation is flipped with probability ``p``, independently
    of every other one: a coin is the hash of ``noise_seed`` and a noise key plus the turn it is
    computed on. The noise key is ``options["noise_key"]`` when given (the trainer passes one per
    trajectory, from its run seed, step and trajectory index), else drawn from the env's
    ``np_random`` on reset, so ``reset(seed=s)`` replays the same coins and every unseeded reset
    draws new ones. With ``flip_scope="group"`` the coin is keyed by
    ``options["noise_group_key"]`` instead (default: the noise key), which the trainer gives every
    rollout of one prompt in one step, so a group flips together and anew at each step.

    ## Action Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: the model's whole response.

    ## Observation Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: on reset the problem; after a wrong answer
    (when ``max_turns > 1``) a short note saying so; at the end a verdict.

    ## Rewards
    ``info["reward_components"]`` sum to the reward: ``correct`` (the verifier's 0/1, possibly
    flipped), or ``rm`` (+ ``rm_calibration``) with a reward model, ``rpr`` (reasoning-pattern
    reward, as the paper's released code computes it) in the RPR modes, ``format``
    (``format_reward`` when an answer was found), and ``invalid_action`` (minus
    ``invalid_action_penalty``) for a response without an answer. The reward is given on the step
    that ends the episode; earlier wrong attempts earn 0. ``info`` also holds ``clean_reward``
    (the noiseless verifier result), ``flipped`` and the ``noise_key`` the coin was keyed by.

    ## Starting State
    A problem drawn with the reset seed; ``options={"problem_index": i}`` or
    ``options={"task_id": ...}`` picks one problem of a file-backed source.
    ``options={"noise_key": k}`` (a str or int) keys this episode's flip coins under
    ``flip_scope="sample"``, and ``options={"noise_group_key": g}`` under ``"group"``; without
    them the key is drawn from the reset seed. The problem drawn does not depend on these keys.

    ## Episode End
    ``solved`` (correct), ``failed`` (wrong on the last allowed turn), ``no_answer`` (no
    extractable answer, beyond ``max_invalid_actions``), ``max_turns``, ``env_error``.

    ## Inverse Task
    The forward task maps a problem to a solution; :meth:`inverse_task` asks the way back
    ("which problem does this solution solve?") with the problem text as the target, for dual
    self-rewards (:mod:`arenagym.envs.core.dual`, ``[reward] source = "dual"`` in the trainer).

    ## Arguments
    * ``source``: ``"procedural"`` (default), ``"bundled"``, or a path to a JSONL file.
    * ``difficulty``: 1-5, or ``None`` (default) for all: procedural episodes then draw a
      difficulty per episode; file-backed sources keep only problems of that difficulty.
    * ``categories``: restrict to these families / categories (default: all).
    * ``answer_extraction``: the extraction methods in order (default boxed, answer_tag,
      answer_is).
    * ``verify_timeout_s``: the CPU-time limit of one answer check (default 5 s). Answers over
      the verifier's size bound (400 characters, brackets nested 8 deep) are wrong unread, and
      ``info["verify_note"]`` says so; see :mod:`arenagym.envs.math.verifier`. So a verdict
      does not depend on how busy the machine is, and answers of any plausible size finish far
      within the limit on any machine.
    * ``max_turns`` (1), ``max_invalid_actions`` (0), ``invalid_action_penalty`` (0.0),
      ``render_mode`` (``None`` or ``"ansi"``).
    * Reward settings: ``mode``, ``flip_prob``, ``flip_scope`` (``"sample"``, the default, or
      ``"group"``), ``noise_seed``, ``rpr_n_norm`` (20), ``rpr_weight``, ``format_reward``,
      ``reward_model``, ``simulated_rm_accuracy``, ``rm_calibration``, ``rm_threshold``,
      ``rm_alpha`` (see ``RewardConfig``).

    ## Examples
    >>> import gymnasium as gym
    >>> import arenagym.envs
    >>> env = gym.make("Math-v0", difficulty=1, flip_prob=0.4)
    >>> problem, info = env.reset(seed=7)
    >>> obs, reward, terminated, truncated, info = env.step("I think it is \\boxed{12}.")
    >>> terminated, info["stop_reason"] in ("solved", "failed"), sorted(info["reward_components"])
    (True, True, ['correct', 'format'])
    >>> info["clean_reward"] in (0.0, 1.0)
    True
    >>> flips = []
    >>> for trajectory in range(4):  # one prompt, four rollouts, each its own coin
    ...     _ = env.reset(seed=7, options={"noise_key": f"run0/step0/{trajectory}"})
    ...     flips.append(env.step("\\boxed{12}")[4]["flipped"])
    >>> len(flips), set(flips) <= {True, False}
    (4, True)
    """

    def __init__(
        self,
        source: str = "procedural",
        difficulty: int | None = None,
        categories: list[str] | None = None,
        answer_extraction: list[str] | tuple[str, ...] = DEFAULT_EXTRACTION,
        verify_timeout_s: float = 5.0,
        max_turns: int = 1,
        max_invalid_actions: int = 0,
        invalid_action_penalty: float = 0.0,
        render_mode: str | None = None,
        mode: str = "correct",
        flip_prob: float = 0.0,
        flip_scope: str = "sample",
        noise_seed: int = 0,
        rpr_n_norm: int = 20,
        rpr_weight: float = 1.0,
        format_reward: float = 0.0,
        reward_model: str | RewardModel | None = None,
        simulated_rm_accuracy: float | None = None,
        rm_calibration: bool = False,
        rm_threshold: float = 0.5,
        rm_alpha: float = 0.1,
    ) -> None:
        super().__init__(
            max_turns=max_turns,
            invalid_action_penalty=invalid_action_penalty,
            max_invalid_actions=max_invalid_actions,
            max_action_length=65_536,
            max_observation_length=16_384,
            render_mode=render_mode,
        )
        self.reward_config = RewardConfig(
            mode=mode,  # type: ignore[arg-type]
            flip_prob=flip_prob,
            flip_scope=flip_scope,  # type: ignore[arg-type]
            noise_seed=noise_seed,
            rpr_n_norm=rpr_n_norm,
            rpr_weight=rpr_weight,
            format_reward=format_reward,
            reward_model=reward_model,
            simulated_rm_accuracy=simulated_rm_accuracy,
            rm_calibration=rm_calibration,
            rm_threshold=rm_threshold,
            rm_alpha=rm_alpha,
        )
        self.answer_extraction = check_extraction_methods(answer_extraction)
        self.scorer = MathScorer(
            self.reward_config,
            answer_extraction=self.answer_extraction,
            verify_timeout_s=verify_timeout_s,
        )
        self.source = source
        self.difficulty = difficulty
        self.categories = tuple(categories) if categories else None
        self._problems = self._load_problems()
        hints = " or ".join(_FORMAT_HINTS[m] for m in self.answer_extraction)
        self.system_prompt = (
            "You are solving a math problem. Reason step by step, then give the exact final "
            f"answer as {hints}. Simplify fractions and radicals; give sets as \\{{a, b\\}}, "
            "intervals as [a, b) and pairs as (x, y)."
        )
        self._format_help = f"put your final answer in {hints}, for example \\boxed{{42}}"
        self._problem: Problem | None = None
        self._noise_key = ""

    # ------------------------------------------------------------------------- episode
    def _load_problems(self) -> list[Problem] | None:
        if self.source == "procedural":
            if self.difficulty is not None and self.difficulty not in range(1, 6):
                raise ValueError(
                    f"difficulty must be 1-5 (or None for all), got {self.difficulty!r}"
                )
            unknown = set(self.categories or ()) - set(procedural.FAMILIES)
            if unknown:
                raise ValueError(
                    f"unknown categories {sorted(unknown)}; use {list(procedural.FAMILIES)}"
                )
            return None
        problems = load_bundled() if self.source == "bundled" else load_jsonl(Path(self.source))
        kept = [
            p
            for p in problems
            if (self.difficulty is None or p.difficulty == self.difficulty)
            and (self.categories is None or p.category in self.categories)
        ]
        if not kept:
            raise ValueError(
                f"no problems in {self.source!r} match difficulty={self.difficulty!r} and "
                f"categories={self.categories!r}; pass difficulty=None to use every difficulty"
            )
        return kept

    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        options = options or {}
        rng = self.np_random
        if self._problems is None:
            family = str(rng.choice(self.categories or procedural.FAMILIES))
            difficulty = self.difficulty or int(rng.integers(1, 6))
            problem = procedural.generate(family, difficulty, rng)
        else:
            problem = self._problems[int(rng.integers(len(self._problems)))]
            if "problem_index" in options:
                index = options["problem_index"]
                if (
                    not isinstance(index, numbers.Integral)
                    or isinstance(index, bool)
                    or not 0 <= index < len(self._problems)
                ):
                    raise ValueError(
                        f"options['problem_index'] must be an int in [0, {len(self._problems)}), "
                        f"got {index!r}"
                    )
                problem = self._problems[int(index)]
            elif "task_id" in options:
                matches = [p for p in self._problems if p.task_id == options["task_id"]]
                if not matches:
                    raise ValueError(
                        f"options['task_id']={options['task_id']!r} is not in {self.source!r}"
                    )
                problem = matches[0]
        self._problem = problem
        self._noise_key = self._episode_noise_key(options, drawn=int(rng.integers(2**62)))
        return Episode(
            task_id=problem.task_id,
            system_prompt=self.system_prompt,
            prompt=problem.problem,
            info={"category": problem.category, "difficulty": problem.difficulty},
        )

    def _episode_noise_key(self, options: dict[str, Any], *, drawn: int) -> str:
        """This episode's flip key: from the options when given, else ``drawn`` (from the seed).

        ``drawn`` is drawn on every reset, keys given or not, so the problems of later unseeded
        resets do not depend on whether keys were passed.
        """
        key: Any = options.get("noise_key", drawn)
        if self.reward_config.flip_scope == "group":
            key = options.get("noise_group_key", key)
        if isinstance(key, bool) or not isinstance(key, str | numbers.Integral):
            raise ValueError(
                "options['noise_key'] and options['noise_group_key'] must be a str or an int, "
                f"got {key!r}"
            )
        return str(key)

    def _respond(self, action: str) -> Turn | InvalidAction:
        problem = self._problem
        assert problem is not None
        last_turn = self.is_last_turn
        # one computation per answer attempt: the turn and invalid-action counts name it
        noise_key = f"{self._noise_key}/turn{self._turns}/invalid{self._invalid_actions}"
        score = self.scorer.score(problem.problem, problem.answer, action, noise_key=noise_key)
        info: dict[str, Any] = {
            "extracted_answer": score.extracted_answer,
            "parsed_answer": score.parsed_answer,
            "verify_timed_out": score.timed_out,
            "verify_note": score.verify_note,
            "flipped": score.flipped,
            "rpr": score.rpr,
            "rm_score": score.rm_score,
            "noise_key": noise_key,
            "noise": self.reward_config.as_info(),
        }
        solved = score.clean_reward == 1.0
        if not score.has_answer:
            return InvalidAction(
                f"no final answer found; {self._format_help}",
                stop_reason="no_answer",
                info=info,
                final_reward_components=score.components,
                clean_reward=score.clean_reward,
            )
        unread = f" ({score.verify_note})" if score.verify_note else ""
        if solved or last_turn:
            return Turn(
                observation=f"Your answer {score.extracted_answer} is "
                + ("correct." if solved else f"incorrect{unread}."),
                reward_components=score.components,
                terminated=True,
                stop_reason="solved" if solved else "failed",
                info={**info, "gold_answer": problem.answer},
                clean_reward=score.clean_reward,
            )
        return Turn(
            observation=f"Your answer {score.extracted_answer} is incorrect{unread}. Try again.",
            reward_components={name: 0.0 for name in score.components},
            info=info,
            clean_reward=score.clean_reward,
        )

    def inverse_task(self) -> InverseTask | None:
        """The inverse of this episode's task: given a solution, write the problem it solves.

        The target is the problem text exactly as the episode posed it (the reset observation);
        ``None`` before the first reset. Cheap: no generation, no verifier call.

        Example:
            >>> env = MathEnv(difficulty=1)
            >>> env.inverse_task() is None
            True
            >>> problem, _ = env.reset(seed=3)
            >>> task = env.inverse_task()
            >>> task.target == problem
            True
            >>> task.messages("2 + 2 = 4. The answer is 4.")[1]["content"].splitlines()[1]
            '2 + 2 = 4. The answer is 4.'
        """
        if self._problem is None:
            return None
        return InverseTask(INVERSE_SYSTEM_PROMPT, INVERSE_QUESTION, self._problem.problem)

    def __repr__(self) -> str:
        return f"MathEnv(source={self.source!r}, difficulty={self.difficulty!r})"
