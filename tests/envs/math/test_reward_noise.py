r"""Reward noise for Math-v0: flipped rewards, the reasoning-pattern reward (RPR), reward models and
their calibration, and the TRL reward function.

Rates are checked against binomial bounds (5 standard deviations). The coins are hashes, so each
check is deterministic; the bounds say the hash behaves like a fair source of coins.
"""

from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from arenagym.envs.core.rewards import (
    REASONING_PHRASES,
    calibrate_reward_model,
    flip_binary,
    flip_coin,
    reasoning_pattern_hits,
    reasoning_pattern_score,
    repeated_ngram_ratio,
)
from arenagym.envs.math.scoring import (
    MathScorer,
    RewardConfig,
    load_reward_model,
    make_trl_reward,
)

NO_ANSWER = "I could not finish this one."  # no extractable answer: clean reward 0, no verify call


def within_binomial(count: int, n: int, p: float, sds: float = 5.0) -> bool:
    return abs(count - n * p) <= sds * math.sqrt(n * p * (1 - p)) + 1e-9


# ------------------------------------------------------------------------ flip coins
@pytest.mark.parametrize("p", [0.05, 0.2, 0.4, 0.5, 0.8])
def test_group_flip_rate_over_10000_tasks(p: float) -> None:
    scorer = MathScorer(RewardConfig(flip_prob=p))
    scores = [scorer.score("q", "5", NO_ANSWER, task_id=f"task-{i}") for i in range(10_000)]
    flips = sum(score.flipped for score in scores)
    assert within_binomial(flips, 10_000, p), flips
    # symmetric flip of a clean 0: the reward is exactly the coin
    assert all(score.reward == (1.0 if score.flipped else 0.0) for score in scores)
    assert all(score.clean_reward == 0.0 for score in scores)


@pytest.mark.parametrize("p", [0.05, 0.3, 0.7])
def test_flip_coin_rate(p: float) -> None:
    flips = sum(flip_coin(p, noise_seed=7, key=f"k{i}") for i in range(10_000))
    assert within_binomial(flips, 10_000, p), flips


def test_flip_prob_zero_and_one() -> None:
    keys = [f"k{i}" for i in range(500)]
    assert not any(flip_coin(0.0, noise_seed=0, key=k) for k in keys)
    assert all(flip_coin(1.0, noise_seed=0, key=k) for k in keys)


@pytest.mark.parametrize("p", [-0.01, 1.01])
def test_flip_coin_rejects_bad_probability(p: float) -> None:
    with pytest.raises(ValueError, match=r"flip_prob must be in \[0, 1\]"):
        flip_coin(p, noise_seed=0, key="k")


def test_flip_applies_to_a_no_answer_response() -> None:
    # documented: a response without an answer scores 0, and 1 when its coin flips
    scorer = MathScorer(RewardConfig(flip_prob=1.0, format_reward=0.1))
    score = scorer.score("q", "5", NO_ANSWER, task_id="t")
    assert (score.has_answer, score.clean_reward, score.flipped) == (False, 0.0, True)
    assert score.components == {"correct": 1.0, "format": 0.0}
    assert score.reward == 1.0


def test_flip_is_symmetric() -> None:
    assert flip_binary(1.0) == 0.0
    assert flip_binary(0.0) == 1.0
    scorer = MathScorer(RewardConfig(flip_prob=1.0))
    right = scorer.score("q", "5", r"\boxed{5}", task_id="t")
    wrong = scorer.score("q", "5", r"\boxed{6}", task_id="t")
    assert (right.clean_reward, right.reward, right.flipped) == (1.0, 0.0, True)
    assert (wrong.clean_reward, wrong.reward, wrong.flipped) == (0.0, 1.0, True)
    assert right.components == {"correct": 0.0, "format": 0.0}
    assert wrong.components == {"correct": 1.0, "format": 0.0}


def test_every_rollout_of_a_group_flips_together() -> None:
    scorer = MathScorer(RewardConfig(flip_prob=0.5))
    responses = [
        r"\boxed{5}",
        r"So \boxed{6}.",
        NO_ANSWER,
        "The answer is 5.",
        "<answer>7</answer>",
    ]
    clean = {r: scorer.score("q", "5", r, task_id="x").clean_reward for r in responses}
    assert list(clean.values()) == [1.0, 0.0, 0.0, 1.0, 0.0]
    pattern = []
    for i in range(300):
        task = f"task-{i}"
        scores = [
            scorer.score("q", "5", response, task_id=task, sample_key=f"rollout-{j}")
            for j, response in enumerate(responses)
        ]
        flipped = {score.flipped for score in scores}
        assert len(flipped) == 1, task
        for response, score in zip(responses, scores, strict=True):
            assert score.reward == (1.0 - clean[response] if score.flipped else clean[response])
            assert score.clean_reward == clean[response]
        pattern.append(flipped.pop())
    assert within_binomial(sum(pattern), 300, 0.5)


def test_sample_scope_gives_independent_coins() -> None:
    p, groups, size = 0.5, 2_000, 5
    scorer = MathScorer(RewardConfig(flip_prob=p, flip_scope="sample"))
    flips = [
        [
            scorer.score("q", "5", NO_ANSWER, task_id=f"task-{i}", sample_key=f"s{j}").flipped
            for j in range(size)
        ]
        for i in range(groups)
    ]
    total = sum(map(sum, flips))
    assert within_binomial(total, groups * size, p)
    mixed = sum(1 for group in flips if 0 < sum(group) < size)
    p_mixed = 1 - p**size - (1 - p) ** size
    assert within_binomial(mixed, groups, p_mixed), mixed
    agree = sum(group[0] == group[1] for group in flips)
    assert within_binomial(agree, groups, p * p + (1 - p) * (1 - p)), agree
    # the same sample key gets the same coin again
    again = scorer.score("q", "5", NO_ANSWER, task_id="task-3", sample_key="s2").flipped
    assert again == flips[3][2]


def test_sample_scope_rate_at_low_p() -> None:
    scorer = MathScorer(RewardConfig(flip_prob=0.1, flip_scope="sample"))
    flips = sum(
        scorer.score("q", "5", NO_ANSWER, task_id="one-task", sample_key=str(j)).flipped
        for j in range(10_000)
    )
    assert within_binomial(flips, 10_000, 0.1), flips


def test_noise_seeds_give_different_patterns() -> None:
    keys = [f"task-{i}" for i in range(4_000)]
    seed0 = [flip_coin(0.5, noise_seed=0, key=k) for k in keys]
    seed1 = [flip_coin(0.5, noise_seed=1, key=k) for k in keys]
    assert seed0 == [flip_coin(0.5, noise_seed=0, key=k) for k in keys]  # deterministic
    agree = sum(a == b for a, b in zip(seed0, seed1, strict=True))
    assert within_binomial(agree, len(keys), 0.5), agree
    a = MathScorer(RewardConfig(flip_prob=0.5, noise_seed=0))
    b = MathScorer(RewardConfig(flip_prob=0.5, noise_seed=1))
    pattern_a = [a.score("q", "5", NO_ANSWER, task_id=k).flipped for k in keys[:200]]
    pattern_b = [b.score("q", "5", NO_ANSWER, task_id=k).flipped for k in keys[:200]]
    assert pattern_a == seed0[:200]
    assert pattern_b == seed1[:200]
    assert pattern_a != pattern_b


# ------------------------------------------------------------------------ RPR
def test_the_forty_phrases() -> None:
    assert len(REASONING_PHRASES) == 40
    assert len(set(REASONING_PHRASES)) == 40
    assert all(phrase == phrase.lower() for phrase in REASONING_PHRASES)


def test_rpr_exact_hits() -> None:
    text = "First, we need to factor. Wait, let me check: thus x = 2."
    assert reasoning_pattern_hits(text) == {"first, ", "we need to", "wait", "let me check", "thus"}
    assert reasoning_pattern_score(text) == pytest.approx(5 / 40)
    assert reasoning_pattern_score(text, n_norm=20) == pytest.approx(5 / 20)


def test_rpr_counts_presence_not_occurrences() -> None:
    text = "wait wait wait. Wait! WAIT? therefore, therefore."
    assert reasoning_pattern_hits(text) == {"wait", "therefore"}
    assert reasoning_pattern_score(text) == pytest.approx(2 / 40)


def test_rpr_is_case_insensitive() -> None:
    assert reasoning_pattern_hits("THEREFORE. Hence. ConSequently") == {
        "therefore", "hence", "consequently"
    }  # fmt: skip
    lower = "let me try again, it is still not correct"
    assert reasoning_pattern_hits(lower.upper()) == reasoning_pattern_hits(lower) == {
        "let me try", "try again", "still not", "not correct"
    }  # fmt: skip


def test_rpr_trailing_spaces_are_part_of_phrases() -> None:
    assert reasoning_pattern_hits("For example, 2.") == set()
    assert reasoning_pattern_hits("For example 2.") == {"for example "}
    assert reasoning_pattern_hits("we can see.") == set()
    assert reasoning_pattern_hits("We can see that") == {"we can see "}
    assert reasoning_pattern_hits("first,") == set()


def test_rpr_no_phrases() -> None:
    assert reasoning_pattern_hits("2 + 2 = 4") == set()
    assert reasoning_pattern_score("2 + 2 = 4") == 0.0
    assert reasoning_pattern_score("") == 0.0


def test_rpr_all_forty_and_twenty_phrases() -> None:
    every = " | ".join(REASONING_PHRASES)
    assert len(reasoning_pattern_hits(every)) == 40
    assert repeated_ngram_ratio(every) == 0.0
    assert reasoning_pattern_score(every) == 1.0
    assert reasoning_pattern_score(every, n_norm=20) == 1.0  # capped at 1
    half = " | ".join(REASONING_PHRASES[:20])
    assert len(reasoning_pattern_hits(half)) == 20
    assert reasoning_pattern_score(half) == pytest.approx(0.5)
    assert reasoning_pattern_score(half, n_norm=20) == 1.0


def test_repeated_ngram_ratio_by_hand() -> None:
    assert repeated_ngram_ratio(" ".join(f"w{i}" for i in range(19))) == 0.0  # too short
    assert repeated_ngram_ratio(" ".join(f"w{i}" for i in range(20))) == 0.0  # one 20-gram
    # a 25-word loop, 4 times: 100 words, 81 20-grams, 25 distinct
    loop = " ".join([f"w{i}" for i in range(25)] * 4)
    assert repeated_ngram_ratio(loop) == pytest.approx((81 - 25) / 81)
    # 3-grams of "a b c a b c": abc bca cab abc -> 1 repeat in 4
    assert repeated_ngram_ratio("a b c a b c", n=3) == pytest.approx(1 / 4)


def test_rpr_repetition_penalty() -> None:
    # 1 + 38 + 20 = 59 words, 40 20-grams, one of which (w0..w19) repeats: ratio 1/40
    text = (
        "Therefore "
        + " ".join(f"w{i}" for i in range(38))
        + " "
        + " ".join(f"w{i}" for i in range(20))
    )
    assert repeated_ngram_ratio(text) == pytest.approx(1 / 40)
    assert reasoning_pattern_score(text, n_norm=20) == pytest.approx(1 / 20 - 1 / 40)
    assert reasoning_pattern_score(text, n_norm=40) == 0.0


def test_rpr_looping_text_is_floored_at_zero() -> None:
    looping = "Wait, let me check. " * 50  # 200 words with period 4
    assert reasoning_pattern_hits(looping) == {"wait", "let me check"}
    assert repeated_ngram_ratio(looping) == pytest.approx((181 - 4) / 181)
    assert reasoning_pattern_score(looping) == 0.0
    assert reasoning_pattern_score(looping, n_norm=20) == 0.0
    every_looping = (" ".join(REASONING_PHRASES) + " ") * 10  # all phrases, but a loop
    assert reasoning_pattern_score(every_looping) == pytest.approx(
        1.0 - repeated_ngram_ratio(every_looping)
    )
    assert reasoning_pattern_score(every_looping) < 0.2


@pytest.mark.parametrize("n_norm", [0, -5])
def test_rpr_n_norm_must_be_positive(n_norm: int) -> None:
    with pytest.raises(ValueError, match="n_norm must be positive"):
        reasoning_pattern_score("wait", n_norm=n_norm)


# ------------------------------------------------------------------------ modes
REASONED = r"First, we need to factor. Wait, let me check: thus x = \boxed{2}."  # 5 phrases


def test_mode_correct() -> None:
    score = MathScorer(RewardConfig(format_reward=0.1)).score("q", "2", REASONED, task_id="t")
    assert score.components == {"correct": 1.0, "format": 0.1}
    assert score.reward == pytest.approx(1.1)
    assert score.rpr == pytest.approx(5 / 40)  # reported, not rewarded


def test_mode_rpr() -> None:
    scorer = MathScorer(RewardConfig(mode="rpr", rpr_n_norm=20, rpr_weight=0.3))
    right = scorer.score("q", "2", REASONED, task_id="t")
    wrong = scorer.score("q", "3", REASONED, task_id="t")
    for score in (right, wrong):
        assert score.components == {"rpr": pytest.approx(5 / 20), "format": 0.0}  # no weight
        assert score.reward == pytest.approx(0.25)
    assert (right.clean_reward, wrong.clean_reward) == (1.0, 0.0)
    no_answer = scorer.score("q", "2", "Wait, thus hence.", task_id="t")
    assert no_answer.components == {"rpr": pytest.approx(3 / 20), "format": 0.0}


def test_mode_correct_plus_rpr() -> None:
    config = RewardConfig(mode="correct+rpr", rpr_weight=0.5, format_reward=0.1)
    scorer = MathScorer(config)
    right = scorer.score("q", "2", REASONED, task_id="t")
    assert right.components == {
        "correct": 1.0, "rpr": pytest.approx(0.5 * 5 / 40), "format": 0.1
    }  # fmt: skip
    assert right.reward == pytest.approx(1.0 + 0.0625 + 0.1)
    wrong = scorer.score("q", "3", REASONED, task_id="t")
    assert wrong.components == {"correct": 0.0, "rpr": pytest.approx(0.0625), "format": 0.1}
    assert wrong.reward == pytest.approx(0.1625)


def test_correct_plus_rpr_flips_only_correctness() -> None:
    scorer = MathScorer(RewardConfig(mode="correct+rpr", flip_prob=1.0))
    score = scorer.score("q", "2", REASONED, task_id="t")
    assert score.flipped is True
    assert score.components == {"correct": 0.0, "rpr": pytest.approx(5 / 40), "format": 0.0}
    assert score.clean_reward == 1.0


@pytest.mark.parametrize(
    "config",
    [
        RewardConfig(),
        RewardConfig(mode="rpr", format_reward=0.2),
        RewardConfig(mode="correct+rpr", rpr_weight=2.0, format_reward=0.1, flip_prob=0.5),
        RewardConfig(simulated_rm_accuracy=0.7, rm_calibration=True, format_reward=0.05),
    ],
)
def test_components_sum_to_the_reward(config: RewardConfig) -> None:
    scorer = MathScorer(config)
    for i, response in enumerate([REASONED, NO_ANSWER, r"\boxed{3}", "Wait, hence " * 30]):
        score = scorer.score("q", "2", response, task_id=f"t{i}")
        assert score.reward == pytest.approx(sum(score.components.values()))


# ------------------------------------------------------------------------ reward models
def test_callable_reward_model() -> None:
    calls: list[tuple[str, str]] = []

    def rm(prompt: str, response: str) -> float:
        calls.append((prompt, response))
        return 0.3

    scorer = MathScorer(RewardConfig(reward_model=rm, format_reward=0.1))
    score = scorer.score("What is 1+1?", "2", r"\boxed{2}", task_id="t")
    assert calls == [("What is 1+1?", r"\boxed{2}")]
    assert score.components == {"rm": 0.3, "format": 0.1}
    assert score.reward == pytest.approx(0.4)
    assert score.rm_score == 0.3
    assert score.clean_reward == 1.0  # the verifier still reports the truth
    assert scorer.config.as_info()["reward_model"].endswith("rm")


def test_module_attr_reward_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "arenagym_test_rm_module.py").write_text(
        textwrap.dedent(
            """
            def score(prompt, response):
                return 0.9 if "good" in response else 0.1
            NOT_CALLABLE = 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "arenagym_test_rm_module", raising=False)
    scorer = MathScorer(RewardConfig(reward_model="arenagym_test_rm_module:score"))
    assert scorer.score("q", "2", r"a good \boxed{7}", task_id="t").reward == 0.9
    assert scorer.score("q", "2", r"a bad \boxed{2}", task_id="t").reward == 0.1
    assert scorer.config.as_info()["reward_model"] == "arenagym_test_rm_module:score"
    with pytest.raises(ValueError, match="not callable"):
        MathScorer(RewardConfig(reward_model="arenagym_test_rm_module:NOT_CALLABLE"))


@pytest.mark.parametrize("spec", ["no_colon", ":score", "os:", ""])
def test_malformed_reward_model_name(spec: str) -> None:
    with pytest.raises(ValueError, match="'module:attr'"):
        load_reward_model(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("os:no_such_scorer", "reward_model 'os:no_such_scorer': 'os' has no 'no_such_scorer'"),
        (
            "no_such_module_xyz:score",
            "reward_model 'no_such_module_xyz:score': cannot import 'no_such_module_xyz' "
            "(No module named 'no_such_module_xyz')",
        ),
    ],
)
def test_unknown_reward_model_name_raises_value_error(spec: str, message: str) -> None:
    for make in (
        lambda: MathScorer(RewardConfig(reward_model=spec)),
        lambda: load_reward_model(spec),
        lambda: make_trl_reward(reward_model=spec),
    ):
        with pytest.raises(ValueError) as caught:
            make()
        assert str(caught.value) == message
        assert type(caught.value) is ValueError


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_reward_model_score_must_be_in_unit_interval(value: float) -> None:
    scorer = MathScorer(RewardConfig(reward_model=lambda prompt, response: value))
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        scorer.score("q", "2", r"\boxed{2}", task_id="t")


TEN_PHRASES = (
    "Wait. Alternatively, consequently, as a result, thus, therefore, hence, so that, "
    r"thereby, I need to say \boxed{2}"
)


def test_ten_phrase_text() -> None:
    assert len(reasoning_pattern_hits(TEN_PHRASES)) == 10
    assert reasoning_pattern_score(TEN_PHRASES, n_norm=20) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("rm_value", "threshold", "alpha", "expected"),
    [
        (0.3, 0.5, 0.1, 0.35),  # below the threshold: + alpha * RPR
        (0.0, 0.5, 0.1, 0.05),
        (0.49, 0.5, 0.1, 0.54),  # may end above the threshold
        (0.5, 0.5, 0.1, 0.5),  # at the threshold: unchanged
        (0.7, 0.5, 0.1, 0.7),  # above: unchanged
        (0.95, 1.0, 1.0, 1.0),  # capped at 1 (0.95 + 0.5)
        (0.3, 0.5, 0.0, 0.3),
    ],
)
def test_calibration(rm_value: float, threshold: float, alpha: float, expected: float) -> None:
    assert calibrate_reward_model(rm_value, rpr=0.5, threshold=threshold, alpha=alpha) == (
        pytest.approx(expected)
    )
    config = RewardConfig(
        reward_model=lambda prompt, response: rm_value,
        rm_calibration=True,
        rm_threshold=threshold,
        rm_alpha=alpha,
        rpr_n_norm=20,
    )
    score = MathScorer(config).score("q", "2", TEN_PHRASES, task_id="t")
    assert score.rm_score == rm_value
    assert score.reward == pytest.approx(expected)
    assert set(score.components) == {"rm", "rm_calibration", "format"}
    assert score.components["rm"] == rm_value
    assert score.components["rm_calibration"] == pytest.approx(expected - rm_value)


def test_calibration_defaults_are_paper_values() -> None:
    config = RewardConfig()
    assert (config.rm_threshold, config.rm_alpha, config.rpr_n_norm) == (0.5, 0.1, 40)
    assert (config.mode, config.flip_prob, config.flip_scope) == ("correct", 0.0, "group")


def test_no_calibration_component_without_calibration() -> None:
    score = MathScorer(RewardConfig(reward_model=lambda p, r: 0.2)).score(
        "q", "2", TEN_PHRASES, task_id="t"
    )
    assert score.components == {"rm": 0.2, "format": 0.0}


@pytest.mark.parametrize("accuracy", [0.6, 0.85])
def test_simulated_rm_accuracy(accuracy: float) -> None:
    scorer = MathScorer(RewardConfig(simulated_rm_accuracy=accuracy, noise_seed=3))
    pairs = [(f"problem {i}", NO_ANSWER + f" ({i})") for i in range(3_000)]
    pairs += [(f"problem {i}", rf"attempt {i}: \boxed{{2}}") for i in range(1_000)]
    scores = [scorer.score(prompt, "2", response, task_id=prompt) for prompt, response in pairs]
    assert sum(s.clean_reward for s in scores) == 1_000
    right = sum((s.rm_score >= 0.5) == (s.clean_reward == 1.0) for s in scores)
    assert within_binomial(right, len(pairs), accuracy), right / len(pairs)
    for s in scores:
        assert s.rm_score is not None
        assert 0.0 <= s.rm_score < 1.0
        assert not 0.49 < s.rm_score < 0.5  # a margin around the decision threshold
        assert s.reward == s.components["rm"] == s.rm_score
    # deterministic: a second scorer gives the same scores; another seed does not
    again = MathScorer(RewardConfig(simulated_rm_accuracy=accuracy, noise_seed=3))
    assert [again.score(p, "2", r, task_id=p).rm_score for p, r in pairs[:300]] == [
        s.rm_score for s in scores[:300]
    ]
    other = MathScorer(RewardConfig(simulated_rm_accuracy=accuracy, noise_seed=4))
    assert [other.score(p, "2", r, task_id=p).rm_score for p, r in pairs[:300]] != [
        s.rm_score for s in scores[:300]
    ]


@pytest.mark.parametrize(("accuracy", "high_when_correct"), [(1.0, True), (0.0, False)])
def test_simulated_rm_extremes(accuracy: float, high_when_correct: bool) -> None:
    scorer = MathScorer(RewardConfig(simulated_rm_accuracy=accuracy))
    for i in range(200):
        right = scorer.score(f"q{i}", "2", rf"\boxed{{2}} #{i}", task_id="t")
        wrong = scorer.score(f"q{i}", "2", rf"\boxed{{3}} #{i}", task_id="t")
        assert (right.rm_score >= 0.5) is high_when_correct
        assert (wrong.rm_score >= 0.5) is not high_when_correct


# ------------------------------------------------------------------------ invalid configs
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "reward"}, "mode must be one of"),
        ({"flip_prob": 1.5}, r"flip_prob must be in \[0, 1\]"),
        ({"flip_prob": -0.1}, r"flip_prob must be in \[0, 1\]"),
        ({"flip_scope": "batch"}, "flip_scope must be 'group' or 'sample'"),
        ({"rpr_n_norm": 0}, "rpr_n_norm must be positive"),
        ({"reward_model": "m:f", "simulated_rm_accuracy": 0.5}, "not both"),
        ({"simulated_rm_accuracy": 1.2}, r"simulated_rm_accuracy must be in \[0, 1\]"),
        ({"mode": "rpr", "simulated_rm_accuracy": 0.8}, "mode='rpr' uses no correctness"),
        ({"simulated_rm_accuracy": 0.8, "flip_prob": 0.1}, "does not apply to a reward model"),
        ({"mode": "rpr", "flip_prob": 0.1}, "which mode='rpr' does not use"),
        ({"rm_calibration": True}, "rm_calibration needs reward_model"),
        ({"rpr_weight": -0.5}, r"^rpr_weight must be a finite number >= 0, got -0.5$"),
        ({"rpr_weight": math.inf}, r"^rpr_weight must be a finite number >= 0, got inf$"),
        ({"rpr_weight": math.nan}, r"^rpr_weight must be a finite number >= 0, got nan$"),
        ({"format_reward": -0.1}, r"^format_reward must be a finite number >= 0, got -0.1$"),
        ({"format_reward": math.nan}, r"^format_reward must be a finite number >= 0, got nan$"),
        ({"format_reward": -math.inf}, r"^format_reward must be a finite number >= 0, got -inf$"),
        ({"rm_alpha": -1.0}, r"^rm_alpha must be a finite number >= 0, got -1.0$"),
        ({"rm_alpha": math.inf}, r"^rm_alpha must be a finite number >= 0, got inf$"),
        ({"rm_threshold": -0.01}, r"^rm_threshold must be in \[0, 1\], got -0.01$"),
        ({"rm_threshold": 1.5}, r"^rm_threshold must be in \[0, 1\], got 1.5$"),
        ({"rm_threshold": math.nan}, r"^rm_threshold must be in \[0, 1\], got nan$"),
    ],
)
def test_invalid_config_raises(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RewardConfig(**kwargs)
    with pytest.raises(ValueError, match=message):
        make_trl_reward(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rpr_weight": 0.0},
        {"format_reward": 0.0},
        {"rm_alpha": 0.0},
        {"rpr_weight": 5.0, "format_reward": 2.0, "rm_alpha": 3},
        {"rm_threshold": 0.0},
        {"rm_threshold": 1.0},
        {"rm_threshold": 1},
    ],
)
def test_boundary_configs_are_accepted(kwargs: dict[str, Any]) -> None:
    config = RewardConfig(**kwargs)
    assert {name: getattr(config, name) for name in kwargs} == kwargs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rpr_weight": -1.0}, "rpr_weight"),
        ({"format_reward": math.nan}, "format_reward"),
        ({"rm_alpha": -0.1}, "rm_alpha"),
        ({"rm_threshold": 2.0}, "rm_threshold"),
    ],
)
def test_invalid_config_raises_through_the_env(kwargs: dict[str, Any], message: str) -> None:
    from arenagym.envs.math.env import MathEnv

    with pytest.raises(ValueError, match=f"^{message} must be"):
        MathEnv(**kwargs)


# ------------------------------------------------------------------------ TRL reward function
def test_trl_strings() -> None:
    reward = make_trl_reward()
    assert reward(["The answer is 4.", "\\boxed{5}", "no idea"], answer=["4", "4", "4"]) == [
        1.0, 0.0, 0.0
    ]  # fmt: skip
    assert reward([], answer=[]) == []


def test_trl_chat_messages() -> None:
    reward = make_trl_reward()
    completions = [
        [{"role": "assistant", "content": r"so it is \boxed{4}"}],
        [{"role": "assistant", "content": r"\boxed{5}"}],
        [{"role": "user", "content": r"\boxed{4}"}, {"role": "assistant", "content": "no idea"}],
        [{"role": "assistant", "content": "First it is "}, {"role": "assistant", "content": "$x$. "},
         {"role": "assistant", "content": r"\boxed{4}"}],
    ]  # fmt: skip
    prompts = [[{"role": "user", "content": "2+2?"}]] * 4
    assert reward(completions, prompts=prompts, answer=["4"] * 4) == [1.0, 0.0, 0.0, 1.0]


def test_trl_rejects_other_completion_types() -> None:
    with pytest.raises(TypeError, match="str or a list of messages"):
        make_trl_reward()([42], answer=["4"])


def test_trl_solution_column() -> None:
    reward = make_trl_reward()
    solution = r"We get $\boxed{3}$ first, but the final value is $\boxed{\frac{1}{2}}$."
    assert reward([r"\boxed{0.5}", r"\boxed{3}"], solution=[solution, solution]) == [1.0, 0.0]
    # an answer column wins over a solution column
    assert reward([r"\boxed{3}"], answer=["3"], solution=[solution]) == [1.0]


def test_trl_needs_an_answer_column() -> None:
    with pytest.raises(ValueError, match="'answer'"):
        make_trl_reward()([r"\boxed{3}"], prompts=["q"])


@pytest.mark.parametrize(
    ("columns", "name"),
    [
        ({"answer": ["4"]}, "answer"),
        ({"answer": ["4", "4"], "prompts": ["q"]}, "prompts"),
        ({"answer": ["4", "4"], "task_id": ["a", "b", "c"]}, "task_id"),
        ({"solution": [r"\boxed{4}"] * 3}, "answer"),
    ],
)
def test_trl_column_length_mismatch(columns: dict[str, list[str]], name: str) -> None:
    with pytest.raises(ValueError, match=rf"column '{name}' has \d+ rows for 2 completions"):
        make_trl_reward()([r"\boxed{4}", r"\boxed{4}"], **columns)


def test_trl_group_flips_are_keyed_by_prompt() -> None:
    noisy = make_trl_reward(flip_prob=0.5)
    clean = make_trl_reward(flip_prob=0.5, clean=True)
    prompts, completions = [], []
    for i in range(40):
        for j, text in enumerate([r"\boxed{4}", r"\boxed{5}", "no idea", r"it is \boxed{4}"]):
            prompts.append(f"Prompt number {i}: what is 2+2?")
            completions.append(f"{text} (sample {j})")
    answers = ["4"] * len(completions)
    rewards = noisy(completions, prompts=prompts, answer=answers)
    truths = clean(completions, prompts=prompts, answer=answers)
    assert truths == [1.0, 0.0, 0.0, 1.0] * 40
    group_flips = []
    for g in range(40):
        flips = {rewards[k] != truths[k] for k in range(4 * g, 4 * g + 4)}
        assert len(flips) == 1, f"prompt {g} flipped only some of its completions"
        group_flips.append(flips.pop())
    assert 0 < sum(group_flips) < 40
    # stateless: the same prompt in another call, in another position, gets the same coin
    g = group_flips.index(True)
    assert noisy([r"\boxed{4}"], prompts=[prompts[4 * g]], answer=["4"]) == [0.0]
    # a task_id column overrides the prompt as the key
    shared = noisy(
        completions[::4], prompts=prompts[::4], answer=answers[::4], task_id=["same"] * 40
    )
    assert len(set(shared)) == 1


def test_trl_sample_scope() -> None:
    reward = make_trl_reward(flip_prob=0.5, flip_scope="sample")
    completions = [rf"\boxed{{4}} (sample {j})" for j in range(200)]
    rewards = reward(completions, prompts=["one prompt"] * 200, answer=["4"] * 200)
    assert within_binomial(int(sum(rewards)), 200, 0.5)


def test_trl_clean_ignores_the_noise() -> None:
    completions = [r"\boxed{4}", r"\boxed{5}"]
    assert make_trl_reward(flip_prob=1.0)(completions, answer=["4", "4"]) == [0.0, 1.0]
    assert make_trl_reward(flip_prob=1.0, clean=True)(completions, answer=["4", "4"]) == [1.0, 0.0]


def test_trl_modes_and_extraction() -> None:
    rpr = make_trl_reward(mode="rpr", rpr_n_norm=20)
    assert rpr([TEN_PHRASES], answer=["99"]) == [pytest.approx(0.5)]
    tags_only = make_trl_reward(answer_extraction=["answer_tag"])
    assert tags_only([r"<answer>3</answer> \boxed{4}"], answer=["3"]) == [1.0]


def test_trl_numeric_answer_column() -> None:
    """Regression: a numeric 'answer' column (common in HF datasets) raised TypeError."""
    reward = make_trl_reward()
    assert reward([r"\boxed{4}", r"\boxed{5}"], answer=[4, 4]) == [1.0, 0.0]
    assert reward([r"\boxed{\frac{1}{2}}", r"\boxed{0.25}"], answer=[0.5, 0.5]) == [1.0, 0.0]
    assert reward([r"\boxed{-3}"], answer=[-3]) == [1.0]


def test_trl_bad_row_names_the_row() -> None:
    reward = make_trl_reward()
    with pytest.raises(ValueError) as caught:
        reward([r"\boxed{1}", r"\boxed{2}"], answer=["1", "}{"])
    assert str(caught.value) == (
        "math_reward: row 1: math-verify cannot parse the reference answer '}{'"
    )
    scored = make_trl_reward(reward_model=lambda prompt, response: 2.0)
    with pytest.raises(ValueError) as caught:
        scored(["a", "b"], answer=["1", "1"])
    assert str(caught.value) == "math_reward: row 0: the reward model returned 2.0, outside [0, 1]"


def test_trl_row_without_an_answer_is_not_an_error() -> None:
    # a no-answer completion is scored 0, not reported as a bad row
    assert make_trl_reward()(["no idea", r"\boxed{4}"], answer=["4", 4]) == [0.0, 1.0]
