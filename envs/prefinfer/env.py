"""PrefInfer-v0: infer a person's preferences from scattered behaviour (AlignXplore, simulated).

The task of "AlignXplore" (Li et al., 2025): read a user's interaction history (pairwise choices
and/or comments), reason, and write a preference description; a judge given only that description
predicts which of two responses to a held-out post the user chose, and the reward is the judge's
accuracy. Users here are simulated and offline (see :mod:`~arenagym.envs.prefinfer.users`), with
AlignX-style stance vectors over 20 interpretable dimensions; the ``psoups_like`` split mirrors
P-SOUPS's three dimensions (expertise, informativeness, style) at their poles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from arenagym.envs.core.loading import LoadError, load_object
from arenagym.envs.core.parsing import last_tag
from arenagym.envs.core.text_env import Episode, InvalidAction, TextEnv, Turn
from arenagym.envs.prefinfer.dimensions import DIMENSIONS, INDEX, PSOUPS_DIMENSIONS
from arenagym.envs.prefinfer.judge import (
    Judge,
    format_stances_line,
    has_stances_line,
    offline_prediction,
    parse_lexicon,
    parse_stances_line,
    stance_vector,
)
from arenagym.envs.prefinfer.posts import POSTS
from arenagym.envs.prefinfer.users import (
    User,
    change_feature,
    choice_probability,
    comment_features,
    random_features,
    render_response,
    sample_user,
    shift_user,
)

#: The line that the upper-bound setting (``PrefInfer-v0(reveal_stances=True)``) adds to an
#: observation starts with this, followed by the true stances as a ``STANCES:`` line.
STANCES_PREFIX = "[upper bound: reveal_stances] "

SPLITS: dict[str, dict[str, Any]] = {
    "alignx_like": {},
    "psoups_like": {
        "candidates": list(PSOUPS_DIMENSIONS),
        "min_active": 3,
        "max_active": 3,
        "heldout_changes": 1,
    },
    "comments_only": {"signals": "comments"},
    "noisy": {"temperature": 1.0, "label_noise": 0.2},
    "shift": {"steps": 3, "shift_at": 1},
}
_DEFAULTS: dict[str, Any] = {
    "signals": "pairs",
    "n_signals": 10,
    "n_heldout": 16,
    "steps": 1,
    "shift_at": None,
    "temperature": 0.5,
    "label_noise": 0.0,
    "min_active": 2,
    "max_active": 5,
    "candidates": None,
    "heldout_changes": 3,
}
_DESCRIPTION_LIMIT = 4000


@dataclass(frozen=True)
class _Pair:
    post: str
    first: str
    second: str
    first_features: np.ndarray
    second_features: np.ndarray
    p_first: float  # the probability that the user chooses ``first``
    label: int  # 0: the user chose ``first``; 1: ``second``
    coin: bool  # the offline judge's tie-break
    swap: bool  # an LLM judge sees ``second`` as response A
    changed: tuple[str, ...]  # the dimensions on which the two responses differ


@dataclass(frozen=True)
class _Step:
    user: User
    signals: str
    pairs: tuple[_Pair, ...]

    @property
    def oracle_accuracy(self) -> float:
        return float(np.mean([max(p.p_first, 1 - p.p_first) for p in self.pairs]))


class PrefInferEnv(TextEnv):
    r"""Infer a simulated person's preferences from their choices and comments (AlignXplore).

    ## Description
    A hidden user has stances in {0, 0.5, 1} on 20 interpretable dimensions (verbosity,
    formality, technical depth, humour, warmth, optimism, evidence, directness, caution, lists,
    examples, follow-up questions, and eight topic interests), 2-5 of them non-neutral. The agent
    sees the user's behaviour in AlignXplore's prompt layout: numbered post / chosen / rejected
    blocks (choices drawn with a softmax temperature and label noise) and/or comments the user
    wrote, and writes a preference description. The exact offline judge reads stances from the
    description and predicts the user's choice on held-out pairs, which always differ on a
    dimension the user cares about; a pluggable LLM judge may replace it.

    ## Action Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: ``<think>…</think><answer>…</answer>``; the
    answer holds the description (in ``strict`` mode it must end with a line
    ``STANCES: name=0|1; ...``).

    ## Observation Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: on reset the instruction and the signals; in
    streaming mode each step shows the agent's previous description and new signals; at the end
    the score.

    ## Rewards
    ``reward_components["accuracy"]``: the judge's accuracy on the step's held-out pairs, divided by
    ``steps`` (so an episode's return is the mean accuracy); 0 for a missing, empty or truncated
    answer. ``info`` holds ``accuracy``, ``expected_accuracy`` (under the user's choice
    probabilities), ``oracle_accuracy`` (Bayes-optimal: the true utilities), ``stance_precision``,
    ``stance_recall``, ``per_dimension_accuracy``, ``format_valid`` and ``parsed_stances``.

    ## Starting State
    A user, its signals and held-out pairs drawn from the reset seed (posts from a pool of 320).

    ## Episode End
    After ``steps`` valid answers: ``solved`` (mean accuracy above 0.5) or ``failed``;
    ``no_answer`` after more than ``max_invalid_actions`` answers that are missing; ``env_error``.

    ## Arguments
    * ``split``: ``"alignx_like"`` (default), ``"psoups_like"`` (three P-SOUPS dimensions at
      their poles), ``"comments_only"``, ``"noisy"`` (temperature 1, label noise 0.2) or
      ``"shift"`` (3 streaming steps, the preferences shift after the first); it sets defaults
      for the arguments below, which override it.
    * ``signals``: ``"pairs"``, ``"comments"`` or ``"mixed"``; ``n_signals`` per step (10);
      ``n_heldout`` pairs per step (16).
    * ``steps`` (1: base; more: streaming), ``shift_at`` (the 0-based step from which the user's
      preferences have shifted, or ``None``).
    * ``temperature`` (0.5), ``label_noise`` (0.0), ``min_active`` / ``max_active`` (2 / 5),
      ``weighted`` (False: unit weights), ``candidates`` (dimensions users may care about),
      ``heldout_dims`` (held-out pairs differ on these; default any active one),
      ``heldout_changes`` (at most this many differing dimensions per held-out pair).
    * ``strict``: require the ``STANCES:`` line (default False: lenient phrase lexicon; a
      ``STANCES:`` line, when present, is still preferred).
    * ``judge``: ``None`` (the exact offline judge), a callable
      ``judge(preference, post, response_a, response_b) -> "A" | "B"`` or ``"module:attr"``;
      the A/B order is randomised per pair.
    * ``reveal_stances`` (``False``): the upper-bound setting. When ``True`` each observation
      ends with the user's true stances (a line starting with :data:`STANCES_PREFIX`), so that
      :class:`~arenagym.envs.prefinfer.baselines.OracleAgent` measures the Bayes-optimal
      accuracy; only an explicit constructor argument opens it (the suite's
      ``alignx-like-upper-bound`` task), never a default or a process-wide switch.
    * ``max_turns`` (default ``steps``), ``max_invalid_actions`` (0), ``invalid_action_penalty``
      (0.0), ``render_mode``.

    ## Examples
    >>> import gymnasium as gym
    >>> import arenagym.envs
    >>> env = gym.make("PrefInfer-v0", reveal_stances=True)
    >>> prompt, info = env.reset(seed=3)
    >>> prompt.splitlines()[0]
    "Generate the user's preference based on their historical behavior."
    >>> truth = prompt.rsplit("[upper bound: reveal_stances] ", 1)[1]
    >>> _, reward, terminated, _, info = env.step(f"<think>oracle</think><answer>{truth}</answer>")
    >>> terminated, info["expected_accuracy"] == info["oracle_accuracy"], info["format_valid"]
    (True, True, True)
    >>> env.reset(seed=3)[0] == prompt
    True
    >>> env.step("<answer></answer>")[1:3]
    (0.0, True)
    """

    def __init__(
        self,
        split: str = "alignx_like",
        signals: str | None = None,
        n_signals: int | None = None,
        n_heldout: int | None = None,
        steps: int | None = None,
        shift_at: int | None = None,
        temperature: float | None = None,
        label_noise: float | None = None,
        min_active: int | None = None,
        max_active: int | None = None,
        weighted: bool = False,
        candidates: list[str] | None = None,
        heldout_dims: list[str] | None = None,
        heldout_changes: int | None = None,
        strict: bool = False,
        judge: Judge | str | None = None,
        reveal_stances: bool = False,
        max_turns: int | None = None,
        max_invalid_actions: int = 0,
        invalid_action_penalty: float = 0.0,
        render_mode: str | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        given = {
            "signals": signals,
            "n_signals": n_signals,
            "n_heldout": n_heldout,
            "steps": steps,
            "shift_at": shift_at,
            "temperature": temperature,
            "label_noise": label_noise,
            "min_active": min_active,
            "max_active": max_active,
            "candidates": candidates,
            "heldout_changes": heldout_changes,
        }
        config = {**_DEFAULTS, **SPLITS[split], **{k: v for k, v in given.items() if v is not None}}
        if split == "shift" and shift_at is None and steps is not None and steps < 2:
            config["shift_at"] = None
        self.split = split
        self.signals: str = config["signals"]
        self.n_signals: int = config["n_signals"]
        self.n_heldout: int = config["n_heldout"]
        self.steps: int = config["steps"]
        self.shift_at: int | None = config["shift_at"]
        self.temperature: float = float(config["temperature"])
        self.label_noise: float = float(config["label_noise"])
        self.min_active: int = config["min_active"]
        self.max_active: int = config["max_active"]
        self.candidates: tuple[str, ...] | None = (
            tuple(config["candidates"]) if config["candidates"] else None
        )
        self.heldout_dims = tuple(heldout_dims) if heldout_dims else None
        self.heldout_changes: int = config["heldout_changes"]
        self.weighted = bool(weighted)
        self.strict = bool(strict)
        self._check_config()
        self.judge: Judge | None = _resolve_judge(judge)
        if not isinstance(reveal_stances, bool):
            raise ValueError(f"reveal_stances must be a bool, got {reveal_stances!r}")
        self.reveal_stances = reveal_stances
        super().__init__(
            max_turns=self.steps if max_turns is None else max_turns,
            invalid_action_penalty=invalid_action_penalty,
            max_invalid_actions=max_invalid_actions,
            max_action_length=65_536,
            max_observation_length=65_536,
            render_mode=render_mode,
        )
        self._plan: list[_Step] = []
        self._step_index = 0
        self._accuracies: list[float] = []

    def _check_config(self) -> None:
        if self.signals not in ("pairs", "comments", "mixed"):
            raise ValueError(
                f"signals must be 'pairs', 'comments' or 'mixed', got {self.signals!r}"
            )
        for name in ("n_signals", "n_heldout", "steps", "heldout_changes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not 1 <= self.min_active <= self.max_active:
            raise ValueError(
                f"need 1 <= min_active <= max_active, got {self.min_active}, {self.max_active}"
            )
        if self.shift_at is not None and not 1 <= self.shift_at < self.steps:
            raise ValueError(
                f"shift_at must be in 1..steps-1 (= {self.steps - 1}) or None, got {self.shift_at!r}"
            )
        if self.temperature < 0 or not 0 <= self.label_noise <= 0.5:
            raise ValueError("temperature must be >= 0 and label_noise in [0, 0.5]")
        for names in (self.candidates or (), self.heldout_dims or ()):
            unknown = [n for n in names if n not in INDEX]
            if unknown:
                raise ValueError(f"unknown dimensions {unknown}; known: {sorted(INDEX)}")
        pool = self.candidates or tuple(INDEX)
        if self.max_active > len(pool):
            raise ValueError(f"max_active={self.max_active} exceeds the {len(pool)} candidates")
        if self.heldout_dims and not set(self.heldout_dims) <= set(pool):
            raise ValueError("heldout_dims must be among the candidates")
        if self.heldout_dims and self.min_active < len(pool):
            raise ValueError(
                "heldout_dims needs every candidate active (min_active = number of candidates)"
            )

    # ------------------------------------------------------------------------- episodes
    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        rng = self.np_random
        user = sample_user(rng, self.min_active, self.max_active, self.candidates, self.weighted)
        plan = []
        for step in range(self.steps):
            if self.shift_at is not None and step == self.shift_at:
                user = shift_user(rng, user)
            plan.append(_Step(user, self._signals_text(rng, user), self._heldout(rng, user)))
        self._plan = plan
        self._step_index = 0
        self._accuracies = []
        number = int(rng.integers(10**9))
        oracle = float(np.mean([s.oracle_accuracy for s in plan]))
        return Episode(
            task_id=f"prefinfer/{self.split}/{number:09d}",
            system_prompt=self._system_prompt(),
            prompt=self._observation(0, None),
            info={"split": self.split, "steps": self.steps, "oracle_accuracy": oracle},
        )

    def _signals_text(self, rng: np.random.Generator, user: User) -> str:
        n_pairs = {"pairs": self.n_signals, "comments": 0, "mixed": (self.n_signals + 1) // 2}
        pairs = n_pairs[self.signals]
        blocks = []
        if pairs:
            lines = ["**This person has chosen or rejected comments on some posts:**"]
            for number in range(1, pairs + 1):
                post = POSTS[int(rng.integers(len(POSTS)))]
                first = random_features(rng)
                second = first.copy()
                active = [INDEX[n] for n in user.active]
                decisive = int(rng.choice(active))
                others = [i for i in range(len(DIMENSIONS)) if i != decisive]
                extra = rng.choice(others, size=int(rng.integers(1, 5)), replace=False)
                for dim in (decisive, *extra):
                    change_feature(rng, second, int(dim))
                p_first = choice_probability(
                    user, first, second, self.temperature, self.label_noise
                )
                chosen, rejected = (first, second) if rng.random() < p_first else (second, first)
                lines.append(f"{number}. *Post:* {post.text}")
                lines.append(f"*Chosen:* {render_response(post, chosen, rng)}")
                lines.append(f"*Rejected:* {render_response(post, rejected, rng)}")
            blocks.append("\n\n".join(lines))
        if self.n_signals - pairs:
            lines = ["**This person has commented on some posts:**"]
            for number in range(1, self.n_signals - pairs + 1):
                post = POSTS[int(rng.integers(len(POSTS)))]
                comment = render_response(post, comment_features(rng, user), rng)
                lines.append(f"{number}. *Post:* {post.text}")
                lines.append(f"*Comment:* {comment}")
            blocks.append("\n\n".join(lines))
        return "\n\n".join(blocks)

    def _heldout(self, rng: np.random.Generator, user: User) -> tuple[_Pair, ...]:
        pool = [INDEX[n] for n in user.active if not self.heldout_dims or n in self.heldout_dims]
        pairs = []
        while len(pairs) < self.n_heldout:
            post = POSTS[int(rng.integers(len(POSTS)))]
            first = random_features(rng)
            second = first.copy()
            decisive = int(rng.choice(pool))
            n_extra = int(rng.integers(0, self.heldout_changes))
            others = [i for i in range(len(DIMENSIONS)) if i != decisive]
            if self.heldout_dims:
                others = [i for i in others if DIMENSIONS[i].name not in (self.candidates or ())]
            changed = [decisive, *(int(d) for d in rng.choice(others, n_extra, replace=False))]
            for dim in changed:
                change_feature(rng, second, dim)
            if user.utility(first) == user.utility(second):
                continue  # held-out pairs always have a preferred response
            p_first = choice_probability(user, first, second, self.temperature, self.label_noise)
            pairs.append(
                _Pair(
                    post=post.text,
                    first=render_response(post, first, rng),
                    second=render_response(post, second, rng),
                    first_features=first,
                    second_features=second,
                    p_first=p_first,
                    label=0 if rng.random() < p_first else 1,
                    coin=bool(rng.random() < 0.5),
                    swap=bool(rng.random() < 0.5),
                    changed=tuple(sorted(DIMENSIONS[d].name for d in changed)),
                )
            )
        return tuple(pairs)

    # ---------------------------------------------------------------------------- text
    def _system_prompt(self) -> str:
        poles = "; ".join(
            f"{d.name} ({d.low_words[0]} / {d.high_words[0]})"
            if not d.topic
            else f"{d.name} (interest in {d.high_words[0]})"
            for d in DIMENSIONS
        )
        text = (
            "You infer a person's preferences from their behaviour: posts with the response they "
            "chose and the one they rejected, and/or comments they wrote. Reason inside "
            "<think>...</think>, then write a description of their preferences inside "
            "<answer>...</answer>. A judge will read only your description to predict which of "
            "two new responses the person prefers. Preferences concern these dimensions "
            f"(low pole / high pole): {poles}."
        )
        if self.strict:
            text += (
                " End the answer with one line 'STANCES: name=value; name=value' giving each "
                "dimension the person cares about as 0 (low pole) or 1 (high pole); leave out "
                "dimensions they are indifferent to."
            )
        return text

    def _observation(self, step: int, previous: str | None) -> str:
        parts = ["Generate the user's preference based on their historical behavior."]
        if previous is not None:
            parts.append(f"**This is the preference description you wrote before:**\n{previous}")
            parts.append("**Here is the person's new behaviour; update the description.**")
        parts.append(self._plan[step].signals)
        parts.append(
            "Write your reasoning in <think>...</think> and the preference description in "
            "<answer>...</answer>."
        )
        if self.reveal_stances:
            truth = format_stances_line(self._plan[step].user.as_dict())
            parts.append(STANCES_PREFIX + truth)
        return "\n\n".join(parts)

    # ------------------------------------------------------------------------- scoring
    def _respond(self, action: str) -> Turn | InvalidAction:
        lowered = action.lower()
        answer = last_tag(action, "answer")
        truncated = lowered.rfind("<answer>") > lowered.rfind("</answer>")
        missing_info = {"format_valid": False, "accuracy": 0.0}
        if answer is None or truncated or not answer.strip():
            why = "truncated" if truncated else "empty" if answer is not None else "missing"
            return InvalidAction(
                f"the answer is {why}; write <think>...</think><answer>description</answer>",
                stop_reason="no_answer",
                info=missing_info,
                final_reward_components={"accuracy": 0.0},
            )
        line_stances, line_valid = parse_stances_line(answer)
        has_line = has_stances_line(answer)
        if self.strict and not has_line:
            return InvalidAction(
                "strict mode needs a last answer line 'STANCES: name=0|1; ...'",
                stop_reason="no_answer",
                info=missing_info,
                final_reward_components={"accuracy": 0.0},
            )
        stances = line_stances if has_line else parse_lexicon(answer)
        format_valid = last_tag(action, "think") is not None and (line_valid or not has_line)
        step = self._plan[self._step_index]
        scores = self._score(step, stances, answer)
        accuracy = scores["accuracy"]
        self._accuracies.append(accuracy)
        self._step_index += 1
        info = {
            **scores,
            "format_valid": format_valid,
            "parsed_stances": stances,
            "step": self._step_index,
            **_stance_overlap(stances, step.user.as_dict()),
        }
        components = {"accuracy": accuracy / self.steps}
        if self._step_index >= self.steps:
            mean = float(np.mean(self._accuracies))
            info["true_stances"] = step.user.as_dict()
            info["mean_accuracy"] = mean
            return Turn(
                f"Scored: the judge predicted {mean:.0%} of the held-out choices.",
                components,
                terminated=True,
                stop_reason="solved" if mean > 0.5 else "failed",
                info=info,
            )
        previous = answer[:_DESCRIPTION_LIMIT]
        return Turn(self._observation(self._step_index, previous), components, info=info)

    def _score(self, step: _Step, stances: dict[str, float], answer: str) -> dict[str, Any]:
        vector = stance_vector(stances)
        predictions, judge_errors = [], 0
        for pair in step.pairs:
            if self.judge is None:
                predictions.append(
                    offline_prediction(vector, pair.first_features, pair.second_features, pair.coin)
                )
                continue
            a, b = (pair.second, pair.first) if pair.swap else (pair.first, pair.second)
            try:
                verdict = str(self.judge(answer, pair.post, a, b)).strip().upper()[:1]
            except Exception:  # a failing judge call counts as a wrong prediction
                verdict = ""
            if verdict not in ("A", "B"):
                judge_errors += 1
                predictions.append(1 - pair.label)
                continue
            predictions.append(int((verdict == "A") == pair.swap))
        correct = [int(p == pair.label) for p, pair in zip(predictions, step.pairs, strict=True)]
        per_dim: dict[str, list[int]] = {}
        active = set(step.user.active)
        for ok, pair in zip(correct, step.pairs, strict=True):
            for name in pair.changed:
                if name in active:
                    per_dim.setdefault(name, []).append(ok)
        expected = [
            pair.p_first if p == 0 else 1 - pair.p_first
            for p, pair in zip(predictions, step.pairs, strict=True)
        ]
        scores: dict[str, Any] = {
            "accuracy": float(np.mean(correct)),
            "expected_accuracy": float(np.mean(expected)),
            "oracle_accuracy": step.oracle_accuracy,
            "n_heldout": len(step.pairs),
            "per_dimension_accuracy": {k: float(np.mean(v)) for k, v in sorted(per_dim.items())},
            "judge": "offline" if self.judge is None else "llm",
        }
        if self.judge is not None:
            scores["judge_errors"] = judge_errors
            # how many held-out pairs showed the chosen response as A (about half: unbiased)
            scores["chosen_as_a"] = sum((p.label == 0) != p.swap for p in step.pairs)
        return scores


def _stance_overlap(predicted: dict[str, float], true: dict[str, float]) -> dict[str, float]:
    hits = sum(1 for name, value in predicted.items() if true.get(name) == value)
    return {
        "stance_precision": hits / len(predicted) if predicted else 0.0,
        "stance_recall": hits / len(true) if true else 1.0,
    }


def _resolve_judge(judge: Judge | str | None) -> Judge | None:
    """The judge ``judge`` names: itself (``None`` or a callable), or the callable a
    ``"module:attr"`` string names (:func:`arenagym.envs.core.loading.load_object`)."""
    if judge is None or callable(judge):
        return judge
    forms = (
        "judge must be None, a callable judge(preference, post, response_a, response_b) -> "
        "'A' | 'B', or 'module:attr' naming one"
    )
    if isinstance(judge, str) and ":" in judge:
        try:
            resolved = load_object(judge, what="judge")
        except LoadError as error:
            raise ValueError(f"{error}; {forms}") from None
        if callable(resolved):
            return resolved
    raise ValueError(f"{forms}; got {judge!r}")
