"""PrefInfer-v0: the judge's accuracy behaves as the issue says (Bayes-optimal truth, chance for
nothing or noise, unbiased A/B order, updating beats frozen under a shift), plus strict mode, the
simulated users, the baselines and the suite."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import arenagym.envs
from arenagym.benchmarks.suite import load_suite
from arenagym.cli import main
from arenagym.envs.prefinfer.baselines import (
    MajorityStanceAgent,
    NoPreferenceAgent,
    OracleAgent,
)
from arenagym.envs.prefinfer.dimensions import DIMENSION_NAMES, DIMENSIONS, PSOUPS_DIMENSIONS
from arenagym.envs.prefinfer.env import STANCES_PREFIX, PrefInferEnv
from arenagym.envs.prefinfer.judge import (
    describe,
    format_stances_line,
    parse_stances_line,
)
from arenagym.envs.prefinfer.posts import POSTS
from arenagym.envs.prefinfer.users import detect_features

IDS = [
    "PrefInfer-v0",
    "PrefInfer-Strict-v0",
    "PrefInfer-PSoups-v0",
    "PrefInfer-Comments-v0",
    "PrefInfer-Noisy-v0",
    "PrefInfer-Shift-v0",
]


def _truth(observation: str) -> dict[str, float]:
    line = observation.rsplit(STANCES_PREFIX, 1)[1]
    return parse_stances_line(line)[0]


def _answer(text: str) -> str:
    return f"<think>t</think><answer>{text}</answer>"


def _run(env: gym.Env, seed: int, policy: Callable[[str, int], str]) -> tuple[float, list[dict]]:
    observation, _ = env.reset(seed=seed)
    total, infos, step = 0.0, [], 0
    while True:
        observation, reward, terminated, truncated, info = env.step(policy(observation, step))
        total += reward
        infos.append(info)
        step += 1
        if terminated or truncated:
            return total, infos


def test_registered_ids_and_bundled_data() -> None:
    assert set(IDS) <= set(arenagym.envs.list_envs())
    assert len(DIMENSIONS) >= 16 and len(set(DIMENSION_NAMES)) == len(DIMENSIONS)
    assert len(POSTS) >= 300 and len({p.text for p in POSTS}) == len(POSTS)


@pytest.mark.parametrize("env_id", ["PrefInfer-v0", "PrefInfer-PSoups-v0", "PrefInfer-Noisy-v0"])
def test_true_stances_reach_the_bayes_optimal_accuracy(env_id: str) -> None:
    env = gym.make(env_id, reveal_stances=True)
    realised, oracle = [], []
    for seed in range(40):
        line = lambda obs, _: _answer(format_stances_line(_truth(obs)))  # noqa: E731
        reward, (info,) = _run(env, seed, line)
        assert info["expected_accuracy"] == pytest.approx(info["oracle_accuracy"])
        assert info["stance_precision"] == info["stance_recall"] == 1.0
        assert info["format_valid"] and reward == info["accuracy"]
        realised.append(reward)
        oracle.append(info["oracle_accuracy"])
        # the lenient lexicon reads the plain-language description to the same predictions
        text = lambda obs, _: _answer(describe(_truth(obs)))  # noqa: E731
        assert _run(env, seed, text)[1][0]["accuracy"] == info["accuracy"]
    standard_error = np.std(realised) / np.sqrt(len(realised))
    assert abs(np.mean(realised) - np.mean(oracle)) < 3 * standard_error + 0.01
    assert np.mean(oracle) > 0.55


@pytest.mark.parametrize(
    "action",
    ["", "no tags at all", "<answer></answer>", _answer("   "), "<think>x</think><answer>detailed"],
)
def test_missing_empty_or_truncated_answer_scores_zero(action: str) -> None:
    env = gym.make("PrefInfer-v0")
    env.reset(seed=1)
    observation, reward, terminated, _, info = env.step(action)
    assert reward == 0.0 and terminated and info["stop_reason"] == "no_answer"
    assert info["invalid_action"] and observation.startswith("Invalid action:")
    assert info["reward_components"] == {"invalid_action": 0.0, "accuracy": 0.0}


def test_shuffled_stances_and_no_preference_score_about_chance() -> None:
    env = gym.make("PrefInfer-v0", reveal_stances=True)
    rng = np.random.default_rng(0)

    def shuffled(observation: str, _step: int) -> str:
        truth = _truth(observation)
        names = rng.choice(DIMENSION_NAMES, size=len(truth), replace=False)
        values = rng.permutation(list(truth.values()))
        return _answer(format_stances_line(dict(zip(names, values, strict=True))))

    nothing = lambda obs, step: NoPreferenceAgent().act(obs)  # noqa: E731
    for policy in (shuffled, nothing):
        scores = [_run(env, seed, policy)[0] for seed in range(80)]
        assert 0.42 < np.mean(scores) < 0.58


def _feature_judge(preference: str, post: str, response_a: str, response_b: str) -> str:
    """An LLM judge stand-in: the offline rule applied to the texts it is shown."""
    stances, _ = parse_stances_line(preference)
    weights = np.array([2 * stances.get(n, 0.5) - 1 for n in DIMENSION_NAMES])
    delta = float(weights @ (detect_features(response_a) - detect_features(response_b)))
    return "A" if delta >= 0 else "B"


def always_a(preference: str, post: str, response_a: str, response_b: str) -> str:
    return "A"


def test_llm_judge_sees_an_unbiased_ab_order() -> None:
    offline = gym.make("PrefInfer-v0", reveal_stances=True)
    judged = gym.make("PrefInfer-v0", reveal_stances=True, judge=_feature_judge)
    positional = gym.make("PrefInfer-v0", reveal_stances=True, judge=f"{__name__}:always_a")
    truth = lambda obs, _: _answer(format_stances_line(_truth(obs)))  # noqa: E731
    chosen_as_a, shown, always = 0, 0, []
    for seed in range(40):
        by_offline = _run(offline, seed, truth)[1][0]
        by_llm = _run(judged, seed, truth)[1][0]
        assert by_llm["judge"] == "llm" and by_llm["judge_errors"] == 0
        assert by_llm["accuracy"] == by_offline["accuracy"]  # the order is mapped back exactly
        chosen_as_a += by_llm["chosen_as_a"]
        shown += by_llm["n_heldout"]
        always.append(_run(positional, seed, truth)[0])
    assert 0.45 < chosen_as_a / shown < 0.55
    assert 0.42 < np.mean(always) < 0.58  # a judge that always says "A" is at chance


def test_a_failing_or_rambling_judge_never_raises() -> None:
    def broken(*_: str) -> str:
        raise RuntimeError("the judge server is down")

    for judge in (broken, lambda *_: "maybe"):
        env = gym.make("PrefInfer-v0", judge=judge)
        env.reset(seed=0)
        _, reward, terminated, _, info = env.step(_answer("concise"))
        assert terminated and info["judge_errors"] == info["n_heldout"] and reward < 0.5
    with pytest.raises(ValueError, match="judge must be"):
        PrefInferEnv(judge="not a judge")
    with pytest.raises(ValueError, match="judge 'no_such_module_xyz:judge': cannot import module"):
        PrefInferEnv(judge="no_such_module_xyz:judge")


def test_in_the_shift_split_an_updating_description_beats_a_frozen_one() -> None:
    env = gym.make("PrefInfer-Shift-v0", reveal_stances=True)
    first: dict[str, str] = {}

    def updating(observation: str, _step: int) -> str:
        return _answer(format_stances_line(_truth(observation)))

    def frozen(observation: str, step: int) -> str:
        if step == 0:
            first["answer"] = updating(observation, step)
        return first["answer"]

    up = [_run(env, seed, updating)[0] for seed in range(40)]
    down = [_run(env, seed, frozen)[0] for seed in range(40)]
    assert np.mean(up) > np.mean(down) + 0.08
    _, infos = _run(env, 0, updating)
    assert len(infos) == 3 and infos[-1]["stop_reason"] in ("solved", "failed")
    assert sum(sum(i["reward_components"].values()) for i in infos) == pytest.approx(
        np.mean([i["accuracy"] for i in infos])
    )


def test_streaming_shows_the_previous_description() -> None:
    env = gym.make("PrefInfer-Shift-v0")
    env.reset(seed=5)
    observation = env.step(_answer("MY-OLD-DESCRIPTION is concise"))[0]
    assert "**This is the preference description you wrote before:**" in observation
    assert "MY-OLD-DESCRIPTION is concise" in observation and "*Chosen:* " in observation


def test_same_seed_same_episode_and_different_seeds_differ() -> None:
    def record(seed: int) -> str:
        env = gym.make("PrefInfer-Shift-v0")
        observation, info = env.reset(seed=seed)
        steps = [env.step(_answer("likes jokes and concise answers")) for _ in range(3)]
        return json.dumps([observation, info, steps], sort_keys=True, default=str)

    assert record(11) == record(11)
    assert record(11) != record(12)


def test_strict_mode_needs_the_stances_line() -> None:
    env = gym.make("PrefInfer-Strict-v0", max_invalid_actions=1)
    env.reset(seed=2)
    _, reward, terminated, _, info = env.step(_answer("prefers concise answers"))
    assert info["invalid_action"] and not terminated and reward == 0.0
    _, _, terminated, _, info = env.step(_answer("prefers concise\nSTANCES: verbosity=0; bogus=7"))
    assert terminated and not info["format_valid"] and info["parsed_stances"] == {"verbosity": 0.0}
    env.reset(seed=2)
    info = env.step(_answer("Nothing.\nSTANCES:"))[4]
    assert info["format_valid"] and info["parsed_stances"] == {}


def test_comments_only_and_psoups_splits() -> None:
    observation, _ = gym.make("PrefInfer-Comments-v0").reset(seed=0)
    assert "*Comment:* " in observation and "*Chosen:* " not in observation
    env = gym.make("PrefInfer-PSoups-v0", heldout_dims=["warmth"], reveal_stances=True)
    observation, _ = env.reset(seed=0)
    assert set(_truth(observation)) == set(PSOUPS_DIMENSIONS)
    info = env.step(_answer(format_stances_line(_truth(observation))))[4]
    assert set(info["per_dimension_accuracy"]) == {"warmth"}
    with pytest.raises(ValueError, match="split must be one of"):
        PrefInferEnv(split="nope")
    with pytest.raises(ValueError, match="unknown dimensions"):
        PrefInferEnv(candidates=["telepathy"])


def test_heldout_pairs_differ_on_an_active_dimension() -> None:
    env = PrefInferEnv(split="noisy", weighted=True)
    for seed in range(10):
        env.reset(seed=seed)
        for step in env._plan:
            assert 2 <= len(step.user.active) <= 5
            assert set(step.user.as_dict().values()) <= {0.0, 1.0}
            for pair in step.pairs:
                assert set(pair.changed) & set(step.user.active)
                assert step.user.utility(pair.first_features) != step.user.utility(
                    pair.second_features
                )


@pytest.mark.parametrize("env_id", IDS)
def test_garbage_never_raises(env_id: str) -> None:
    env = gym.make(env_id, max_invalid_actions=2, judge=always_a)
    env.reset(seed=0)
    for action in ["<answer>" * 30, "STANCES: ===", None, "x" * 70_000, _answer("🙂 not not no")]:
        _, reward, terminated, truncated, _ = env.step(action)
        assert isinstance(reward, float)
        if terminated or truncated:
            env.reset()


def test_true_stances_only_in_the_explicit_upper_bound_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARENAGYM_PREFINFER_ORACLE_CHANNEL", "1")  # no process-wide switch exists
    plain, _ = gym.make("PrefInfer-v0").reset(seed=0)
    revealed, _ = gym.make("PrefInfer-v0", reveal_stances=True).reset(seed=0)
    assert STANCES_PREFIX not in plain and STANCES_PREFIX in revealed
    assert revealed.startswith(plain)  # the same observation, plus the stances line
    with pytest.raises(ValueError, match="reveal_stances"):
        gym.make("PrefInfer-v0", reveal_stances="yes")
    with pytest.raises(ValueError, match="reveal_stances"):
        gym.make("PrefInfer-v0", reveal_stances=None)


def test_baselines_order() -> None:
    env = gym.make("PrefInfer-v0")
    revealed = gym.make("PrefInfer-v0", reveal_stances=True)
    scores: dict[str, list[float]] = {"none": [], "majority": [], "oracle": [], "fallback": []}
    for seed in range(40):
        for name, agent, target in (
            ("none", NoPreferenceAgent(), env),
            ("majority", MajorityStanceAgent(), env),
            ("oracle", OracleAgent(), revealed),
            ("fallback", OracleAgent(), env),
        ):
            agent.reset("")
            scores[name].append(_run(target, seed, lambda obs, _, a=agent: a.act(obs))[0])
    mean = {name: float(np.mean(values)) for name, values in scores.items()}
    assert mean["oracle"] > mean["majority"] + 0.05 > mean["none"] + 0.1
    assert mean["fallback"] == mean["majority"]


def test_the_suite_runs_every_baseline_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = load_suite("prefinfer")
    assert {t.env for t in suite.tasks} >= set(IDS) - {"PrefInfer-Strict-v0"}
    revealing = [t.name for t in suite.tasks if t.kwargs.get("reveal_stances")]
    assert revealing == ["alignx-like-upper-bound"]  # the one task the oracle is meant for
    small = tmp_path / "prefinfer-small.toml"
    small.write_text(
        'name = "prefinfer-small"\n'
        + "".join(
            f'[[tasks]]\nname = "{t.name}"\nenv = "{t.env}"\nkwargs = {json.dumps(t.kwargs)}\n'
            "episodes = 2\nseeds = [0]\n"
            for t in suite.tasks
        )
        .replace('": ', '" = ')
        .replace("{", "{ ")
        .replace("}", " }"),
        encoding="utf-8",
    )
    store = tmp_path / "r.sqlite"
    module = "arenagym.envs.prefinfer.baselines"
    for agent in ("NoPreferenceAgent", "MajorityStanceAgent", "OracleAgent"):
        command = ["run", "--suite", str(small), "--store", str(store), "--no-progress"]
        assert main([*command, "--agent", f"{module}:{agent}", "--agent-name", agent]) == 0
        out = capsys.readouterr().out
        assert f"{2 * len(suite.tasks)} episodes run" in out and "0 failed" in out


def test_importing_the_envs_does_not_load_the_prefinfer_env() -> None:
    code = "import sys, arenagym.envs; print('arenagym.envs.prefinfer.env' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
