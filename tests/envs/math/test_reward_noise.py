r"""Reward noise for Math-v0: flipped rewards, the reasoning-pattern reward (RPR), reward models and
their calibration, and the TRL reward function.

Flips follow "Noisy Rewards in Learning to Reason" (Lv et al., 2025): every reward computation is
flipped with probability p, independently of every other; a group of rollouts shares a coin only
under ``flip_scope="group"``, and then anew at every step. Rates are checked against binomial
bounds (5 standard deviations). The coins are hashes of keys (or draws from a seeded generator),
so each check is deterministic; the bounds say the coins behave like fair ones.

The RPR values are computed by hand from the paper's released code (``think_reward`` in
``verl/verl/utils/reward_score/math_score.py`` of trestad/Noisy-Rewards-in-Learning-to-Reason).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arenagym.envs.core.reward_wrappers import (
    REASONING_PHRASES,
    calibrate_reward_model,
    flip_binary,
    flip_coin,
    reasoning_pattern_hits,
    reasoning_pattern_score,
    repeated_ngram_ratio,
)
from arenagym.envs.math.env import MathEnv
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
@pytest.mark.parametrize("p", [0.05, 0.3, 0.8])
def test_unkeyed_flip_rate_on_one_task(p: float) -> None:
    # the same prompt scored again and again: each computation flips on its own
    scorer = MathScorer(RewardConfig(flip_prob=p))
    scores = [scorer.score("q", "5", NO_ANSWER) for _ in range(5_000)]
    flips = [score.flipped for score in scores]
    assert within_binomial(sum(flips), 5_000, p), sum(flips)
    runs_kept = sum(a == b for a, b in itertools.pairwise(flips))
    assert within_binomial(runs_kept, 4_999, p * p + (1 - p) * (1 - p)), runs_kept
    # symmetric flip of a clean 0: the reward is exactly the coin, the clean reward stays exact
    assert all(score.reward == (1.0 if score.flipped else 0.0) for score in scores)
    assert all(score.clean_reward == 0.0 for score in scores)


def test_unkeyed_coins_replay_from_the_noise_seed() -> None:
    def flips(seed: int) -> list[bool]:
        scorer = MathScorer(RewardConfig(flip_prob=0.5, noise_seed=seed))
        return [scorer.score("q", "5", NO_ANSWER).flipped for _ in range(300)]

    assert flips(3) == flips(3)
    assert flips(3) != flips(4)


@pytest.mark.parametrize("p", [0.05, 0.3, 0.7])
def test_flip_coin_rate(p: float) -> None:
    flips = sum(flip_coin(p, noise_seed=7, key=f"k{i}") for i in range(10_000))
    assert within_binomial(flips, 10_000, p), flips


@pytest.mark.parametrize("p", [0.1, 0.4])
def test_keyed_flip_rate(p: float) -> None:
    scorer = MathScorer(RewardConfig(flip_prob=p))
    flips = sum(scorer.score("q", "5", NO_ANSWER, noise_key=f"0/{i}").flipped for i in range(5_000))
    assert within_binomial(flips, 5_000, p), flips


@settings(max_examples=60, deadline=None)
@given(
    p=st.sampled_from([0.0, 1.0]),
    key=st.one_of(st.none(), st.text(max_size=30)),
    seed=st.integers(min_value=-(2**63), max_value=2**63),
    response=st.sampled_from([NO_ANSWER, r"\boxed{5}", r"\boxed{6}"]),
)
def test_p_zero_never_flips_and_p_one_always_flips(
    p: float, key: str | None, seed: int, response: str
) -> None:
    if key is not None:
        assert flip_coin(p, noise_seed=seed, key=key) is (p == 1.0)
    scorer = MathScorer(RewardConfig(flip_prob=p, noise_seed=seed))
    score = scorer.score("q", "5", response, noise_key=key)
    clean = 1.0 if response == r"\boxed{5}" else 0.0
    assert score.flipped is (p == 1.0)
    assert score.clean_reward == clean
    assert score.components["correct"] == (1.0 - clean if p == 1.0 else clean)


@pytest.mark.parametrize("p", [-0.01, 1.01])
def test_flip_coin_rejects_bad_probability(p: float) -> None:
    with pytest.raises(ValueError, match=r"flip_prob must be in \[0, 1\]"):
        flip_coin(p, noise_seed=0, key="k")


def test_flip_applies_to_a_no_answer_response() -> None:
    # documented: a response without an answer scores 0, and 1 when its coin flips
    scorer = MathScorer(RewardConfig(flip_prob=1.0, format_reward=0.1))
    score = scorer.score("q", "5", NO_ANSWER)
    assert (score.has_answer, score.clean_reward, score.flipped) == (False, 0.0, True)
    assert score.components == {"correct": 1.0, "format": 0.0}
    assert score.reward == 1.0


def test_flip_is_symmetric() -> None:
    assert flip_binary(1.0) == 0.0
    assert flip_binary(0.0) == 1.0
    scorer = MathScorer(RewardConfig(flip_prob=1.0))
    right = scorer.score("q", "5", r"\boxed{5}")
    wrong = scorer.score("q", "5", r"\boxed{6}")
    assert (right.clean_reward, right.reward, right.flipped) == (1.0, 0.0, True)
    assert (wrong.clean_reward, wrong.reward, wrong.flipped) == (0.0, 1.0, True)
    assert right.components == {"correct": 0.0, "format": 0.0}
    assert wrong.components == {"correct": 1.0, "format": 0.0}


def test_one_key_one_coin_whatever_the_response() -> None:
    # how a group shares its coin: its members are scored with one key
    scorer = MathScorer(RewardConfig(flip_prob=0.5))
    responses = [
        r"\boxed{5}",
        r"So \boxed{6}.",
        NO_ANSWER,
        "The answer is 5.",
        "<answer>7</answer>",
    ]
    clean = [scorer.score("q", "5", r, noise_key="x").clean_reward for r in responses]
    assert clean == [1.0, 0.0, 0.0, 1.0, 0.0]
    pattern = []
    for i in range(300):
        scores = [scorer.score("q", "5", r, noise_key=f"group-{i}") for r in responses]
        flipped = {score.flipped for score in scores}
        assert len(flipped) == 1, i
        for truth, score in zip(clean, scores, strict=True):
            assert score.reward == (1.0 - truth if score.flipped else truth)
            assert score.clean_reward == truth
        pattern.append(flipped.pop())
    assert within_binomial(sum(pattern), 300, 0.5)
    # reproducible: a fresh scorer gives the same coin for the same key
    again = MathScorer(RewardConfig(flip_prob=0.5))
    assert [
        again.score("q", "5", NO_ANSWER, noise_key=f"group-{i}").flipped for i in range(300)
    ] == (pattern)


def test_noise_seeds_give_different_patterns() -> None:
    keys = [f"key-{i}" for i in range(4_000)]
    seed0 = [flip_coin(0.5, noise_seed=0, key=k) for k in keys]
    seed1 = [flip_coin(0.5, noise_seed=1, key=k) for k in keys]
    assert seed0 == [flip_coin(0.5, noise_seed=0, key=k) for k in keys]  # deterministic
    agree = sum(a == b for a, b in zip(seed0, seed1, strict=True))
    assert within_binomial(agree, len(keys), 0.5), agree
    a = MathScorer(RewardConfig(flip_prob=0.5, noise_seed=0))
    b = MathScorer(RewardConfig(flip_prob=0.5, noise_seed=1))
    pattern_a = [a.score("q", "5", NO_ANSWER, noise_key=k).flipped for k in keys[:200]]
    pattern_b = [b.score("q", "5", NO_ANSWER, noise_key=k).flipped for k in keys[:200]]
    assert pattern_a == seed0[:200]
    assert pattern_b == seed1[:200]
    assert pattern_a != pattern_b


# ------------------------------------------------------------------------ noise through the env
ONE_PROBLEM = {"id": "only", "problem": "What is 1+1?", "answer": "2"}


@pytest.fixture(scope="module")
def one_problem(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("math") / "one.jsonl"
    path.write_text(json.dumps(ONE_PROBLEM) + "\n")
    return str(path)


def trainer_keys(seed: int, step: int, index: int, group: int) -> dict[str, str]:
    """The reset options the trainer passes (``arenagym.trainers.trainer.noise_options``)."""
    return {"noise_key": f"{seed}/{step}/{index}", "noise_group_key": f"{seed}/{step}/group{group}"}


def run_flips(
    path: str, scope: str, p: float, steps: int, groups: int, size: int, seed: int = 0
) -> list[list[list[bool]]]:
    """``flips[step][group][member]`` of a simulated run: every rollout is the one problem with
    env seed 5 (as a trainer's group shares its env seed), keys as the trainer makes them."""
    env = MathEnv(source=path, difficulty=None, flip_prob=p, flip_scope=scope)
    flips = []
    for step in range(steps):
        per_step = []
        for group in range(groups):
            members = []
            for member in range(size):
                options = trainer_keys(seed, step, group * size + member, group)
                env.reset(seed=5, options=options)
                _, reward, _, _, info = env.step(NO_ANSWER)
                assert info["clean_reward"] == 0.0
                assert reward == (1.0 if info["flipped"] else 0.0)
                members.append(info["flipped"])
            per_step.append(members)
        flips.append(per_step)
    return flips


def test_env_sample_scope_rate_and_independent_members(one_problem: str) -> None:
    p, steps, groups, size = 0.3, 40, 10, 5
    flips = run_flips(one_problem, "sample", p, steps, groups, size)
    every = [f for step in flips for group in step for f in group]
    assert within_binomial(sum(every), steps * groups * size, p), sum(every)
    all_groups = [group for step in flips for group in step]
    mixed = sum(0 < sum(group) < size for group in all_groups)
    assert within_binomial(mixed, len(all_groups), 1 - p**size - (1 - p) ** size), mixed
    agree = sum(group[0] == group[1] for group in all_groups)
    assert within_binomial(agree, len(all_groups), p * p + (1 - p) * (1 - p)), agree


def test_env_group_scope_flips_a_group_together_per_step(one_problem: str) -> None:
    p, steps, groups, size = 0.3, 50, 8, 4
    flips = run_flips(one_problem, "group", p, steps, groups, size)
    all_groups = [group for step in flips for group in step]
    assert all(len(set(group)) == 1 for group in all_groups)
    flipped_groups = sum(group[0] for group in all_groups)
    assert within_binomial(flipped_groups, len(all_groups), p), flipped_groups
    # the same prompt (group 0) at successive steps: independent coins, not one per task
    series = [step[0][0] for step in flips]
    assert 0 < sum(series) < steps


@pytest.mark.parametrize("scope", ["sample", "group"])
def test_env_steps_flip_independently(one_problem: str, scope: str) -> None:
    # one task, one trajectory index, 400 steps: the flip of a step says nothing of the next
    p, steps = 0.3, 400
    series = [step[0][0] for step in run_flips(one_problem, scope, p, steps, 1, 1)]
    assert within_binomial(sum(series), steps, p), sum(series)
    kept = sum(a == b for a, b in itertools.pairwise(series))
    assert within_binomial(kept, steps - 1, p * p + (1 - p) * (1 - p)), kept


@pytest.mark.parametrize("scope", ["sample", "group"])
def test_env_same_key_same_flips(one_problem: str, scope: str) -> None:
    first = run_flips(one_problem, scope, 0.5, 5, 4, 3)
    assert first == run_flips(one_problem, scope, 0.5, 5, 4, 3)
    assert first != run_flips(one_problem, scope, 0.5, 5, 4, 3, seed=1)  # another run seed


def test_env_without_keys_draws_from_the_reset_seed(one_problem: str) -> None:
    env = MathEnv(source=one_problem, difficulty=None, flip_prob=0.5)

    def flipped(seed: int | None) -> bool:
        env.reset(seed=seed)
        return bool(env.step(NO_ANSWER)[4]["flipped"])

    seeded = [flipped(seed) for seed in range(200)]
    assert seeded == [flipped(seed) for seed in range(200)]  # reset(seed) replays the coin
    assert within_binomial(sum(seeded), 200, 0.5)
    flipped(123)
    unseeded = [flipped(None) for _ in range(200)]  # each unseeded reset draws anew
    assert within_binomial(sum(unseeded), 200, 0.5)
    flipped(123)
    assert unseeded == [flipped(None) for _ in range(200)]


def test_env_group_key_defaults_to_the_noise_key(one_problem: str) -> None:
    env = MathEnv(source=one_problem, difficulty=None, flip_prob=0.5, flip_scope="group")
    keys = []
    for options in (
        {"noise_key": "a"},
        {"noise_key": "a", "noise_group_key": "g"},
        {"noise_key": 7},
    ):
        env.reset(seed=0, options=options)
        keys.append(env.step(NO_ANSWER)[4]["noise_key"])
    assert keys == ["a/turn0/invalid0", "g/turn0/invalid0", "7/turn0/invalid0"]


def test_env_multi_turn_attempts_get_their_own_coins(one_problem: str) -> None:
    env = MathEnv(source=one_problem, difficulty=None, flip_prob=0.5, max_turns=3)
    env.reset(seed=0, options={"noise_key": "k"})
    infos = [env.step(r"\boxed{3}")[4] for _ in range(3)]
    assert [info["noise_key"] for info in infos] == [
        "k/turn0/invalid0", "k/turn1/invalid0", "k/turn2/invalid0"
    ]  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    p=st.sampled_from([0.0, 1.0]),
    scope=st.sampled_from(["sample", "group"]),
    options=st.fixed_dictionaries(
        {},
        optional={
            "noise_key": st.one_of(st.text(max_size=20), st.integers()),
            "noise_group_key": st.one_of(st.text(max_size=20), st.integers()),
        },
    ),
    seed=st.one_of(st.none(), st.integers(min_value=0, max_value=2**32 - 1)),
    answer=st.sampled_from([r"\boxed{2}", r"\boxed{3}", NO_ANSWER]),
)
def test_env_p_zero_never_flips_and_p_one_always_flips(
    one_problem: str,
    p: float,
    scope: str,
    options: dict[str, Any],
    seed: int | None,
    answer: str,
) -> None:
    env = MathEnv(source=one_problem, difficulty=None, flip_prob=p, flip_scope=scope)
    env.reset(seed=seed, options=options)
    _, reward, _, _, info = env.step(answer)
    clean = 1.0 if answer == r"\boxed{2}" else 0.0
    assert info["clean_reward"] == clean
    assert info["flipped"] is (p == 1.0)
    assert reward == (1.0 - clean if p == 1.0 else clean)


@pytest.mark.parametrize("key", [1.5, None, ["a"], True])
def test_env_rejects_a_bad_noise_key(one_problem: str, key: Any) -> None:
    env = MathEnv(source=one_problem, difficulty=None, flip_prob=0.5)
    with pytest.raises(ValueError, match="must be a str or an int"):
        env.reset(seed=0, options={"noise_key": key})


# ------------------------------------------------------------------------ RPR
def reference_repetition(text: str, n: int = 20) -> float:
    """An independent statement of the reference penalty: distinct repeated n-grams / n-grams."""
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return len([g for g, c in Counter(grams).items() if c > 1]) / len(grams)


def test_the_forty_phrases() -> None:
    assert len(REASONING_PHRASES) == 40
    assert len(set(REASONING_PHRASES)) == 40
    assert all(phrase == phrase.lower() for phrase in REASONING_PHRASES)


def test_rpr_exact_hits() -> None:
    text = "First, we need to factor. Wait, let me check: thus x = 2."
    assert reasoning_pattern_hits(text) == {"first, ", "we need to", "wait", "let me check", "thus"}
    assert reasoning_pattern_score(text) == pytest.approx(5 / 20)  # the reference's 20
    assert reasoning_pattern_score(text, n_norm=40) == pytest.approx(5 / 40)


def test_rpr_counts_presence_not_occurrences() -> None:
    text = "wait wait wait. Wait! WAIT? therefore, therefore."
    assert reasoning_pattern_hits(text) == {"wait", "therefore"}
    assert reasoning_pattern_score(text) == pytest.approx(2 / 20)


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
    assert reasoning_pattern_score(every) == 1.0  # 40 / 20, capped at 1
    assert reasoning_pattern_score(every, n_norm=40) == 1.0
    half = " | ".join(REASONING_PHRASES[:20])
    assert len(reasoning_pattern_hits(half)) == 20
    assert reasoning_pattern_score(half) == 1.0
    assert reasoning_pattern_score(half, n_norm=40) == pytest.approx(0.5)


def test_repeated_ngram_ratio_by_hand() -> None:
    assert repeated_ngram_ratio(" ".join(f"w{i}" for i in range(19))) == 0.0  # too short
    assert repeated_ngram_ratio(" ".join(f"w{i}" for i in range(20))) == 0.0  # one 20-gram
    # a 25-word loop, 4 times: 100 words, 81 20-grams, 25 distinct ones, all of them repeated
    loop = " ".join([f"w{i}" for i in range(25)] * 4)
    assert repeated_ngram_ratio(loop) == pytest.approx(25 / 81)
    # 3-grams of "a b c a b c": abc bca cab abc -> 1 distinct repeated (abc) in 4
    assert repeated_ngram_ratio("a b c a b c", n=3) == pytest.approx(1 / 4)
    # "a a a a" 2-grams: aa aa aa -> 1 distinct repeated in 3 (not 2 extra copies in 3)
    assert repeated_ngram_ratio("a a a a", n=2) == pytest.approx(1 / 3)
    # case matters here; RPR lower-cases first
    assert repeated_ngram_ratio("A b A B", n=2) == 0.0
    assert repeated_ngram_ratio("a b a b", n=2) == pytest.approx(1 / 3)


def test_rpr_repetition_penalty_on_normal_text() -> None:
    # 1 + 38 + 20 = 59 words, 40 20-grams, one of which (w0..w19) repeats: ratio 1/40
    text = (
        "Therefore "
        + " ".join(f"w{i}" for i in range(38))
        + " "
        + " ".join(f"w{i}" for i in range(20))
    )
    assert repeated_ngram_ratio(text) == pytest.approx(1 / 40)
    assert reasoning_pattern_score(text) == pytest.approx(1 / 20 - 1 / 40)
    assert reasoning_pattern_score(text, n_norm=40) == 0.0


def test_rpr_on_looping_text_matches_the_reference() -> None:
    looping = "Wait, let me check. " * 50  # 200 words with period 4
    assert reasoning_pattern_hits(looping) == {"wait", "let me check"}
    # 181 20-grams, 4 distinct, each seen many times: the reference penalty is 4/181, not 177/181
    assert repeated_ngram_ratio(looping) == pytest.approx(4 / 181)
    assert reasoning_pattern_score(looping) == pytest.approx(2 / 20 - 4 / 181)  # 0.0779
    assert reasoning_pattern_score(looping, n_norm=40) == pytest.approx(2 / 40 - 4 / 181)
    every_looping = (" ".join(REASONING_PHRASES) + " ") * 10  # all phrases, but a loop
    words = len(every_looping.split())  # period p = words / 10, every distinct 20-gram repeats
    period = words // 10
    assert repeated_ngram_ratio(every_looping) == pytest.approx(period / (words - 19))
    assert reasoning_pattern_score(every_looping) == pytest.approx(1.0 - period / (words - 19))


def test_rpr_penalty_is_on_lower_cased_text() -> None:
    # 4 phrase words, then W0..W19 and w0..w19: 44 words, 25 20-grams; lower-cased, w0..w19 repeats
    text = (
        "Therefore, wait, thus, hence. "
        + " ".join(f"W{i}" for i in range(20))
        + " "
        + " ".join(f"w{i}" for i in range(20))
    )
    assert repeated_ngram_ratio(text) == 0.0
    assert reasoning_pattern_score(text) == pytest.approx(4 / 20 - 1 / 25)


def test_rpr_self_posed_questions_cost_a_point_each() -> None:
    reasoned = "First, we need to add. Wait, thus 2."
    assert reasoning_pattern_score(reasoned) == pytest.approx(4 / 20)
    assert reasoning_pattern_score(reasoned + " User: what is 3+3? Assistant: 6") == 0.0
    assert reasoning_pattern_score(reasoned + " user:no space") == pytest.approx(4 / 20)
    every = " | ".join(REASONING_PHRASES)
    assert reasoning_pattern_score(every + " user: again") == 0.0  # 1 - 1


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.sampled_from([*REASONING_PHRASES[:12], "x", "y", "z", "user: ", "Wait", "\n"]),
        max_size=120,
    )
)
def test_rpr_matches_a_restatement_of_the_reference(parts: list[str]) -> None:
    text = " ".join(parts)
    lowered = text.lower()
    hits = sum(phrase in lowered for phrase in REASONING_PHRASES)
    expected = min(1.0, hits / 20) - reference_repetition(lowered) - lowered.count("user: ")
    assert reasoning_pattern_score(text) == pytest.approx(max(0.0, expected))
    assert repeated_ngram_ratio(text) == pytest.approx(reference_repetition(text))


@pytest.mark.parametrize("n_norm", [0, -5])
def test_rpr_n_norm_must_be_positive(n_norm: int) -> None:
    with pytest.raises(ValueError, match="n_norm must be positive"):
        reasoning_pattern_score("wait", n_norm=n_norm)


# ------------------------------------------------------------------------ modes
REASONED = r"First, we need to factor. Wait, let me check: thus x = \boxed{2}."  # 5 phrases


def test_mode_correct() -> None:
    score = MathScorer(RewardConfig(format_reward=0.1)).score("q", "2", REASONED)
    assert score.components == {"correct": 1.0, "format": 0.1}
    assert score.reward == pytest.approx(1.1)
    assert score.rpr == pytest.approx(5 / 20)  # reported, not rewarded


def test_mode_rpr() -> None:
    scorer = MathScorer(RewardConfig(mode="rpr", rpr_n_norm=20, rpr_weight=0.3))
    right = scorer.score("q", "2", REASONED)
    wrong = scorer.score("q", "3", REASONED)
    for score in (right, wrong):
        assert score.components == {"rpr": pytest.approx(5 / 20), "format": 0.0}  # no weight
        assert score.reward == pytest.approx(0.25)
    assert (right.clean_reward, wrong.clean_reward) == (1.0, 0.0)
    no_answer = scorer.score("q", "2", "Wait, thus hence.")
    assert no_answer.components == {"rpr": pytest.approx(3 / 20), "format": 0.0}


def test_mode_correct_plus_rpr() -> None:
    config = RewardConfig(mode="correct+rpr", rpr_weight=0.5, format_reward=0.1)
    scorer = MathScorer(config)
    right = scorer.score("q", "2", REASONED)
    assert right.components == {
        "correct": 1.0, "rpr": pytest.approx(0.5 * 5 / 20), "format": 0.1
    }  # fmt: skip
    assert right.reward == pytest.approx(1.0 + 0.125 + 0.1)
    wrong = scorer.score("q", "3", REASONED)
    assert wrong.components == {"correct": 0.0, "rpr": pytest.approx(0.125), "format": 0.1}
    assert wrong.reward == pytest.approx(0.225)


def test_correct_plus_rpr_flips_only_correctness() -> None:
    scorer = MathScorer(RewardConfig(mode="correct+rpr", flip_prob=1.0))
    score = scorer.score("q", "2", REASONED)
    assert score.flipped is True
    assert score.components == {"correct": 0.0, "rpr": pytest.approx(5 / 20), "format": 0.0}
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
    for response in [REASONED, NO_ANSWER, r"\boxed{3}", "Wait, hence " * 30]:
        score = scorer.score("q", "2", response)
        assert score.reward == pytest.approx(sum(score.components.values()))


# ------------------------------------------------------------------------ reward models
def test_callable_reward_model() -> None:
    calls: list[tuple[str, str]] = []

    def rm(prompt: str, response: str) -> float:
        calls.append((prompt, response))
        return 0.3

    scorer = MathScorer(RewardConfig(reward_model=rm, format_reward=0.1))
    score = scorer.score("What is 1+1?", "2", r"\boxed{2}")
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
    assert scorer.score("q", "2", r"a good \boxed{7}").reward == 0.9
    assert scorer.score("q", "2", r"a bad \boxed{2}").reward == 0.1
    assert scorer.config.as_info()["reward_model"] == "arenagym_test_rm_module:score"
    with pytest.raises(ValueError, match="not callable"):
        MathScorer(RewardConfig(reward_model="arenagym_test_rm_module:NOT_CALLABLE"))


@pytest.mark.parametrize("spec", ["no_colon", ":score", "os:", ""])
def test_malformed_reward_model_name(spec: str) -> None:
    with pytest.raises(ValueError, match=r"expected 'package\.module:attr'"):
        load_reward_model(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "os:no_such_scorer",
            "reward_model 'os:no_such_scorer': module 'os' has no 'no_such_scorer'",
        ),
        (
            "no_such_module_xyz:score",
            "reward_model 'no_such_module_xyz:score': cannot import module 'no_such_module_xyz' "
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
        scorer.score("q", "2", r"\boxed{2}")


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
    score = MathScorer(config).score("q", "2", TEN_PHRASES)
    assert score.rm_score == rm_value
    assert score.reward == pytest.approx(expected)
    assert set(score.components) == {"rm", "rm_calibration", "format"}
    assert score.components["rm"] == rm_value
    assert score.components["rm_calibration"] == pytest.approx(expected - rm_value)


def test_calibration_defaults_are_paper_values() -> None:
    config = RewardConfig()
    assert (config.rm_threshold, config.rm_alpha, config.rpr_n_norm) == (0.5, 0.1, 20)
    assert (config.mode, config.flip_prob, config.flip_scope) == ("correct", 0.0, "sample")


def test_no_calibration_component_without_calibration() -> None:
    score = MathScorer(RewardConfig(reward_model=lambda p, r: 0.2)).score("q", "2", TEN_PHRASES)
    assert score.components == {"rm": 0.2, "format": 0.0}


@pytest.mark.parametrize("accuracy", [0.6, 0.85])
def test_simulated_rm_accuracy(accuracy: float) -> None:
    scorer = MathScorer(RewardConfig(simulated_rm_accuracy=accuracy, noise_seed=3))
    pairs = [(f"problem {i}", NO_ANSWER + f" ({i})") for i in range(3_000)]
    pairs += [(f"problem {i}", rf"attempt {i}: \boxed{{2}}") for i in range(1_000)]
    scores = [scorer.score(prompt, "2", response) for prompt, response in pairs]
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
    assert [again.score(p, "2", r).rm_score for p, r in pairs[:300]] == [
        s.rm_score for s in scores[:300]
    ]
    other = MathScorer(RewardConfig(simulated_rm_accuracy=accuracy, noise_seed=4))
    assert [other.score(p, "2", r).rm_score for p, r in pairs[:300]] != [
        s.rm_score for s in scores[:300]
    ]


@pytest.mark.parametrize(("accuracy", "high_when_correct"), [(1.0, True), (0.0, False)])
def test_simulated_rm_extremes(accuracy: float, high_when_correct: bool) -> None:
    scorer = MathScorer(RewardConfig(simulated_rm_accuracy=accuracy))
    for i in range(200):
        right = scorer.score(f"q{i}", "2", rf"\boxed{{2}} #{i}")
        wrong = scorer.score(f"q{i}", "2", rf"\boxed{{3}} #{i}")
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


def test_trl_group_scope_shares_a_coin_per_prompt_per_call() -> None:
    noisy = make_trl_reward(flip_prob=0.5, flip_scope="group")
    clean = make_trl_reward(flip_prob=0.5, flip_scope="group", clean=True)
    prompts, completions = [], []
    for i in range(40):
        for j, text in enumerate([r"\boxed{4}", r"\boxed{5}", "no idea", r"it is \boxed{4}"]):
            prompts.append(f"Prompt number {i}: what is 2+2?")
            completions.append(f"{text} (sample {j})")
    answers = ["4"] * len(completions)
    truths = clean(completions, prompts=prompts, answer=answers)
    assert truths == [1.0, 0.0, 0.0, 1.0] * 40
    calls = []
    for _ in range(30):  # one call per training step
        rewards = noisy(completions, prompts=prompts, answer=answers)
        group_flips = []
        for g in range(40):
            flips = {rewards[k] != truths[k] for k in range(4 * g, 4 * g + 4)}
            assert len(flips) == 1, f"prompt {g} flipped only some of its completions"
            group_flips.append(flips.pop())
        calls.append(group_flips)
    flipped = sum(map(sum, calls))
    assert within_binomial(flipped, 30 * 40, 0.5), flipped
    # a prompt's coin is drawn anew at every call: no prompt keeps its flip for the whole run
    per_prompt = [sum(call[g] for call in calls) for g in range(40)]
    assert all(0 < count < 30 for count in per_prompt), per_prompt
    # a task_id column overrides the prompt as the group
    shared = noisy(
        completions[::4], prompts=prompts[::4], answer=answers[::4], task_id=["same"] * 40
    )
    assert len(set(shared)) == 1
    # reproducible: a fresh function replays the same calls' coins
    again = make_trl_reward(flip_prob=0.5, flip_scope="group")
    first = make_trl_reward(flip_prob=0.5, flip_scope="group")
    for _ in range(3):
        assert again(completions, prompts=prompts, answer=answers) == first(
            completions, prompts=prompts, answer=answers
        )


def test_trl_sample_scope_is_the_default_and_draws_per_call() -> None:
    reward = make_trl_reward(flip_prob=0.5)
    completions = [rf"\boxed{{4}} (sample {j})" for j in range(200)]
    first = reward(completions, prompts=["one prompt"] * 200, answer=["4"] * 200)
    assert within_binomial(int(sum(first)), 200, 0.5)
    second = reward(completions, prompts=["one prompt"] * 200, answer=["4"] * 200)
    agree = sum(a == b for a, b in zip(first, second, strict=True))
    assert within_binomial(agree, 200, 0.5), agree


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


def test_trl_name_is_the_logging_key() -> None:
    assert make_trl_reward().__name__ == "math_reward"  # the default is unchanged
    noisy = make_trl_reward(flip_prob=1.0, name="noisy")
    clean = make_trl_reward(flip_prob=1.0, clean=True, name="clean")
    assert (noisy.__name__, clean.__name__) == ("noisy", "clean")
    # the name changes nothing but the name: same scores as an unnamed function
    completions = [r"\boxed{4}", r"\boxed{5}"]
    assert noisy(completions, answer=["4", "4"]) == [0.0, 1.0]
    assert clean(completions, answer=["4", "4"]) == [1.0, 0.0]
    with pytest.raises(ValueError, match=r"^noisy: row 0: math-verify cannot parse"):
        noisy([r"\boxed{1}"], answer=["}{"])
    with pytest.raises(ValueError, match=r"^clean needs an 'answer'"):
        clean([r"\boxed{1}"])


@pytest.mark.parametrize("name", ["", "  ", None, 3])
def test_trl_bad_name(name: Any) -> None:
    with pytest.raises(ValueError, match=r"^name must be a non-empty str"):
        make_trl_reward(name=name)
