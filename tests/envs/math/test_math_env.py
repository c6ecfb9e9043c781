r"""Math-v0 through ``gym.make`` and ``MathEnv``: the episode contract, answers and retries, noise,
determinism, problem sources, bad arguments and bad actions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import arenagym.envs  # noqa: F401  (registers Math-v0)
from arenagym.envs.math.env import MathEnv
from arenagym.envs.math.problems import load_bundled

WRONG = r"I believe the result is \boxed{987654321}."
NO_ANSWER = "Let me think about this problem for a while. I am not sure."


def boxed(answer: str) -> str:
    return f"Working it out carefully, the result is \\boxed{{{answer}}}."


def gold(env: gym.Env) -> str:
    return env.unwrapped._problem.answer


def make(**kwargs: Any) -> gym.Env:
    return gym.make("Math-v0", **kwargs)


# ------------------------------------------------------------------------ reset
def test_reset_info() -> None:
    env = make(difficulty=1)
    obs, info = env.reset(seed=0)
    problem = env.unwrapped._problem
    assert obs == problem.problem
    assert info["task_id"] == problem.task_id
    assert info["system_prompt"] == env.unwrapped.system_prompt
    assert "\\boxed{...}" in info["system_prompt"]
    assert "<answer>...</answer>" in info["system_prompt"]
    assert info["category"] == problem.category
    assert info["difficulty"] == 1
    assert env.observation_space.contains(obs)


def test_default_difficulty_is_drawn_per_episode() -> None:
    env = make()
    assert env.unwrapped.difficulty is None
    drawn = set()
    for seed in range(40):
        _, info = env.reset(seed=seed)
        assert info["difficulty"] in range(1, 6)
        assert info["task_id"].startswith(f"proc/{info['category']}/d{info['difficulty']}/")
        drawn.add(info["difficulty"])
    assert drawn == {1, 2, 3, 4, 5}
    assert MathEnv(difficulty=None).difficulty is None  # explicit None: the same


def test_fixed_difficulty_is_kept() -> None:
    env = make(difficulty=4)
    assert {env.reset(seed=seed)[1]["difficulty"] for seed in range(10)} == {4}


def test_procedural_category_names() -> None:
    env = make(categories=["counting", "linear_system"])
    drawn = {env.reset(seed=seed)[1]["category"] for seed in range(30)}
    assert drawn == {"counting", "linear_system"}
    with pytest.raises(ValueError, match="unknown categories \\['binomial'\\]"):
        make(categories=["binomial"])


def test_system_prompt_follows_extraction_methods() -> None:
    env = make(answer_extraction=["answer_tag"])
    _, info = env.reset(seed=0)
    assert "<answer>...</answer>" in info["system_prompt"]
    assert "\\boxed{...}" not in info["system_prompt"]


# ------------------------------------------------------------------------ one-shot answers
@pytest.mark.parametrize("seed", range(12))
def test_correct_answer_solves(seed: int) -> None:
    env = make(difficulty=1 + seed % 5)
    env.reset(seed=seed)
    answer = gold(env)
    obs, reward, terminated, truncated, info = env.step(boxed(answer))
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["stop_reason"] == "solved"
    assert info["clean_reward"] == 1.0
    assert info["reward_components"] == {"correct": 1.0, "format": 0.0}
    assert info["gold_answer"] == answer
    assert info["invalid_action"] is False
    assert info["turn"] == 1
    assert obs.endswith("is correct.")


def test_wrong_answer_fails() -> None:
    env = make()
    env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step(WRONG)
    assert (reward, terminated, truncated) == (0.0, True, False)
    assert info["stop_reason"] == "failed"
    assert info["clean_reward"] == 0.0
    assert info["extracted_answer"] == "987654321"
    assert info["reward_components"] == {"correct": 0.0, "format": 0.0}
    assert obs == "Your answer 987654321 is incorrect."


def test_no_answer() -> None:
    env = make(format_reward=0.1)
    env.reset(seed=2)
    obs, reward, terminated, truncated, info = env.step(NO_ANSWER)
    assert (reward, terminated, truncated) == (0.0, True, False)
    assert info["stop_reason"] == "no_answer"
    assert info["invalid_action"] is True
    assert info["reward_components"]["format"] == 0.0
    assert info["reward_components"] == {"invalid_action": 0.0, "correct": 0.0, "format": 0.0}
    assert math.copysign(1.0, info["reward_components"]["invalid_action"]) == 1.0  # not -0.0
    assert info["turn"] == 0  # an invalid action is not a turn
    assert info["clean_reward"] == 0.0
    assert info["extracted_answer"] is None
    assert "\\boxed{" in obs
    assert "\\boxed{" in info["error"]


def test_step_before_reset_and_after_the_end() -> None:
    env = MathEnv()
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(r"\boxed{1}")
    env.reset(seed=0)
    env.step(WRONG)
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(r"\boxed{1}")


# ------------------------------------------------------------------------ retries
def test_one_invalid_action_allowed_then_solved() -> None:
    env = make(max_invalid_actions=1, max_turns=2)
    env.reset(seed=3)
    obs, reward, terminated, truncated, info = env.step(NO_ANSWER)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["invalid_action"] is True
    assert "stop_reason" not in info
    assert "\\boxed{" in obs
    assert "1 more invalid action(s) will end the episode" in obs
    assert info["turn"] == 0
    obs, reward, terminated, truncated, info = env.step(boxed(gold(env)))
    assert (reward, terminated, info["stop_reason"], info["turn"]) == (1.0, True, "solved", 1)


def test_second_invalid_action_ends_with_no_answer() -> None:
    env = make(max_invalid_actions=1, max_turns=5)
    env.reset(seed=3)
    env.step(NO_ANSWER)
    obs, reward, terminated, truncated, info = env.step(NO_ANSWER)
    assert (reward, terminated, truncated) == (0.0, True, False)
    assert info["stop_reason"] == "no_answer"
    assert "The episode has ended." in obs


def test_max_invalid_actions_gives_a_retry_with_default_max_turns() -> None:
    """Regression: the invalid action used to take the only turn (truncated, 'max_turns')."""
    env = make(max_invalid_actions=1)
    env.reset(seed=3)
    obs, reward, terminated, truncated, info = env.step(NO_ANSWER)
    assert (reward, terminated, truncated, info["turn"]) == (0.0, False, False, 0)
    assert "stop_reason" not in info
    assert obs.endswith("1 more invalid action(s) will end the episode.")
    _, reward, terminated, truncated, info = env.step(boxed(gold(env)))
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert (info["stop_reason"], info["turn"]) == ("solved", 1)


def test_retry_after_no_answer_with_default_max_turns_can_still_fail() -> None:
    env = make(max_invalid_actions=1)
    env.reset(seed=3)
    env.step(NO_ANSWER)
    obs, reward, terminated, truncated, info = env.step(WRONG)
    assert (reward, terminated, truncated, info["stop_reason"]) == (0.0, True, False, "failed")
    assert obs == "Your answer 987654321 is incorrect."  # the last turn: no "Try again."


def test_invalid_actions_do_not_use_up_turns() -> None:
    env = make(max_turns=2, max_invalid_actions=3)
    env.reset(seed=4)
    turns = []
    for action in (NO_ANSWER, WRONG, NO_ANSWER, NO_ANSWER):
        _, _, terminated, truncated, info = env.step(action)
        assert (terminated, truncated) == (False, False)
        turns.append(info["turn"])
    assert turns == [0, 1, 1, 1]
    _, _, terminated, truncated, info = env.step(WRONG)
    assert (terminated, truncated, info["stop_reason"], info["turn"]) == (True, False, "failed", 2)


def test_is_last_turn() -> None:
    env = make(max_turns=2, max_invalid_actions=1)
    env.reset(seed=4)
    assert env.unwrapped.is_last_turn is False
    env.step(NO_ANSWER)
    assert env.unwrapped.is_last_turn is False  # an invalid action does not count
    env.step(WRONG)
    assert env.unwrapped.is_last_turn is True
    env.reset(seed=4)
    assert env.unwrapped.is_last_turn is False
    assert make().unwrapped.is_last_turn is True  # max_turns=1: the first answer is the last


def test_max_turns_lets_a_wrong_answer_be_retried() -> None:
    env = make(max_turns=3, format_reward=0.1)
    env.reset(seed=4)
    obs, reward, terminated, truncated, info = env.step(WRONG)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert obs == "Your answer 987654321 is incorrect. Try again."
    assert info["reward_components"] == {"correct": 0.0, "format": 0.0}  # earlier tries earn 0
    assert info["clean_reward"] == 0.0
    assert "stop_reason" not in info
    obs, reward, terminated, truncated, info = env.step(boxed(gold(env)))
    assert (terminated, truncated, info["stop_reason"], info["turn"]) == (True, False, "solved", 2)
    assert reward == pytest.approx(1.1)


def test_max_turns_all_wrong_fails_on_the_last_turn() -> None:
    env = make(max_turns=3)
    env.reset(seed=4)
    assert env.step(WRONG)[2:4] == (False, False)
    assert env.step(WRONG)[2:4] == (False, False)
    _, reward, terminated, truncated, info = env.step(WRONG)
    assert (reward, terminated, truncated, info["stop_reason"]) == (0.0, True, False, "failed")


def test_invalid_action_penalty_is_subtracted() -> None:
    env = make(invalid_action_penalty=0.25, max_invalid_actions=1, max_turns=3)
    env.reset(seed=5)
    _, reward, terminated, _, info = env.step(NO_ANSWER)
    assert (reward, terminated, info["turn"]) == (-0.25, False, 0)
    assert info["reward_components"] == {"invalid_action": -0.25}
    _, reward, terminated, _, info = env.step(NO_ANSWER)
    assert (reward, terminated, info["stop_reason"], info["turn"]) == (-0.25, True, "no_answer", 0)
    assert info["reward_components"] == {"invalid_action": -0.25, "correct": 0.0, "format": 0.0}


def test_invalid_action_penalty_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="invalid_action_penalty"):
        make(invalid_action_penalty=-1.0)


# ------------------------------------------------------------------------ noise
def test_flipped_reward_keeps_clean_reward() -> None:
    env = make(flip_prob=1.0)
    env.reset(seed=6)
    _, reward, _, _, info = env.step(boxed(gold(env)))
    assert (reward, info["clean_reward"], info["flipped"]) == (0.0, 1.0, True)
    assert info["stop_reason"] == "solved"  # the episode ends on the truth, not the noise
    assert info["noise"]["flip_prob"] == 1.0
    env.reset(seed=6)
    _, reward, _, _, info = env.step(WRONG)
    assert (reward, info["clean_reward"], info["stop_reason"]) == (1.0, 0.0, "failed")


def test_flip_applies_to_a_no_answer_reply() -> None:
    # documented: flips act on the verifier's 0 of a reply without an answer too
    env = make(flip_prob=1.0)
    env.reset(seed=6)
    _, reward, terminated, _, info = env.step(NO_ANSWER)
    assert (reward, terminated, info["stop_reason"]) == (1.0, True, "no_answer")
    assert (info["clean_reward"], info["flipped"], info["invalid_action"]) == (0.0, True, True)
    assert info["reward_components"] == {"invalid_action": 0.0, "correct": 1.0, "format": 0.0}


def test_group_and_sample_scope_across_rollouts(tmp_path: Path) -> None:
    # 40 rollouts of one prompt with one env seed (as a trainer's group): the noise keys decide
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"id": "only", "problem": "1+1?", "answer": "2"}) + "\n")

    def flips(scope: str, step: int = 0) -> list[bool]:
        env = MathEnv(source=str(path), difficulty=None, flip_prob=0.5, flip_scope=scope)
        out = []
        for rollout in range(40):
            options = {"noise_key": f"0/{step}/{rollout}", "noise_group_key": f"0/{step}/group0"}
            env.reset(seed=3, options=options)
            out.append(env.step(r"\boxed{2}")[4]["flipped"])
        return out

    group = flips("group")
    assert len(set(group)) == 1
    assert len({flips("group", step)[0] for step in range(20)}) == 2  # anew at every step
    sample = flips("sample")
    assert 0 < sum(sample) < 40
    assert sample == flips("sample")  # reproducible
    assert sample != flips("sample", step=1)
    assert MathEnv().reward_config.flip_scope == "sample"  # the default


def test_rpr_mode_through_the_env() -> None:
    env = make(mode="rpr", rpr_n_norm=20)
    env.reset(seed=7)
    _, reward, _, _, info = env.step("First, we need to factor. Wait, thus " + boxed("0"))
    assert info["reward_components"] == {"rpr": pytest.approx(4 / 20), "format": 0.0}
    assert reward == pytest.approx(0.2)
    assert info["rpr"] == pytest.approx(0.2)


def test_reward_model_through_the_env() -> None:
    env = make(reward_model=lambda prompt, response: 0.25, rm_calibration=True)
    env.reset(seed=8)
    _, reward, _, _, info = env.step(boxed(gold(env)))
    assert info["rm_score"] == 0.25
    assert info["clean_reward"] == 1.0
    assert reward == pytest.approx(0.25)  # no reasoning phrases: calibration adds 0
    assert info["reward_components"] == {"rm": 0.25, "rm_calibration": 0.0, "format": 0.0}


# ------------------------------------------------------------------------ determinism
def test_same_seed_same_prompt_and_info() -> None:
    def episode(seed: int) -> tuple[str, str, str]:
        env = make(flip_prob=0.3, difficulty=3)
        obs, info = env.reset(seed=seed)
        step_info = env.step(boxed("7"))[4]
        return obs, json.dumps(info, sort_keys=True), json.dumps(step_info, sort_keys=True)

    first = episode(11)
    assert first == episode(11)
    assert len({episode(seed)[0] for seed in range(11, 16)}) > 1


def test_reset_twice_on_one_env_repeats() -> None:
    env = make()
    obs1, info1 = env.reset(seed=9)
    obs2, info2 = env.reset(seed=9)
    assert (obs1, info1) == (obs2, info2)


# ------------------------------------------------------------------------ problem sources
def test_packaged_problem_set_source() -> None:
    problems = load_bundled()
    env = MathEnv(source="bundled", difficulty=None)
    _, info = env.reset(seed=0, options={"problem_index": 5})
    assert info["task_id"] == problems[5].task_id
    _, reward, _, _, info = env.step(boxed(problems[5].answer))
    assert (reward, info["stop_reason"]) == (1.0, "solved")
    target = problems[17]
    obs, info = env.reset(seed=0, options={"task_id": target.task_id})
    assert (obs, info["task_id"]) == (target.problem, target.task_id)
    with pytest.raises(ValueError, match="is not in"):
        env.reset(seed=0, options={"task_id": "no/such/id"})
    last = len(problems) - 1
    assert env.reset(seed=0, options={"problem_index": last})[1]["task_id"] == problems[-1].task_id


def test_packaged_problem_set_registered_id() -> None:
    env = gym.make("Math-Bundled-v0")
    _, info = env.reset(seed=1)
    assert info["task_id"] in {p.task_id for p in load_bundled()}
    assert env.unwrapped.difficulty is None


def test_packaged_problem_set_filters() -> None:
    env = MathEnv(source="bundled", difficulty=1, categories=["arithmetic"])
    for seed in range(5):
        _, info = env.reset(seed=seed)
        assert (info["category"], info["difficulty"]) == ("arithmetic", 1)


@pytest.mark.parametrize(
    "category",
    ["arithmetic", "fractions", "linear_equation", "linear_system", "quadratic", "percentage",
     "counting"],
)  # fmt: skip
def test_procedural_and_bundled_share_category_names(category: str) -> None:
    procedural = make(categories=[category])
    bundled = MathEnv(source="bundled", categories=[category])
    for seed in range(3):
        assert procedural.reset(seed=seed)[1]["category"] == category
        assert bundled.reset(seed=seed)[1]["category"] == category


@pytest.fixture
def problem_file(tmp_path: Path) -> Path:
    rows = [
        {"id": "p1", "problem": "What is 2+3?", "answer": "5", "difficulty": 1},
        {"problem": "Solve 2x = 1.", "solution": r"So $x = \boxed{\frac{1}{2}}$.", "difficulty": 2},
        {"id": "p3", "problem": "Set of roots of x^2 = 1?", "answer": r"\{-1, 1\}",
         "category": "quadratics", "difficulty": 1, "answer_form": "set"},
    ]  # fmt: skip
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def test_jsonl_source_problem_index_and_task_id(problem_file: Path) -> None:
    env = make(source=str(problem_file), difficulty=None)
    obs, info = env.reset(seed=0, options={"problem_index": 1})
    assert (obs, info["task_id"]) == ("Solve 2x = 1.", "mine/2")
    _, reward, _, _, info = env.step(r"x = \boxed{0.5}")
    assert (reward, info["stop_reason"], info["gold_answer"]) == (1.0, "solved", r"\frac{1}{2}")
    obs, info = env.reset(seed=0, options={"task_id": "p3"})
    assert (obs, info["category"]) == ("Set of roots of x^2 = 1?", "quadratics")
    _, reward, _, _, _ = env.step(r"\boxed{\{1, -1\}}")
    assert reward == 1.0
    with pytest.raises(ValueError, match="'nope' is not in"):
        env.reset(seed=0, options={"task_id": "nope"})


@pytest.mark.parametrize("index", [3, 4, -1, -3, 1.0, "1", None])
def test_problem_index_out_of_range_or_not_an_int(problem_file: Path, index: Any) -> None:
    env = MathEnv(source=str(problem_file))
    with pytest.raises(ValueError) as caught:
        env.reset(seed=0, options={"problem_index": index})
    assert str(caught.value) == (
        f"options['problem_index'] must be an int in [0, 3), got {index!r}"
    )
    # the range is that of the problems kept by the filters
    filtered = MathEnv(source=str(problem_file), difficulty=1)
    assert filtered.reset(seed=0, options={"problem_index": 1})[1]["task_id"] == "p3"
    with pytest.raises(ValueError, match=r"must be an int in \[0, 2\), got 2"):
        filtered.reset(seed=0, options={"problem_index": 2})


def test_jsonl_source_draws_every_problem(problem_file: Path) -> None:
    env = MathEnv(source=str(problem_file), difficulty=None)
    assert {env.reset(seed=seed)[1]["task_id"] for seed in range(40)} == {"p1", "mine/2", "p3"}


def test_jsonl_source_difficulty_filter(problem_file: Path) -> None:
    env = MathEnv(source=str(problem_file), difficulty=1)
    assert {env.reset(seed=seed)[1]["task_id"] for seed in range(30)} == {"p1", "p3"}
    with pytest.raises(ValueError, match="difficulty=None"):
        MathEnv(source=str(problem_file), difficulty=4)
    with pytest.raises(ValueError, match="no problems"):
        MathEnv(source=str(problem_file), difficulty=None, categories=["topology"])


def test_unparseable_reference_answer_is_an_env_error(tmp_path: Path) -> None:
    path = tmp_path / "bad_gold.jsonl"
    path.write_text(json.dumps({"problem": "?", "answer": "}{"}) + "\n")
    env = MathEnv(source=str(path), difficulty=None)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(r"\boxed{1}")
    assert (reward, terminated, truncated, info["stop_reason"]) == (0.0, True, False, "env_error")
    assert "cannot parse the reference answer" in info["error"]
    assert obs.startswith("The environment failed")


def test_jsonl_source_bad_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        make(source=str(tmp_path / "missing.jsonl"))


# ------------------------------------------------------------------------ bad arguments
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"difficulty": 9}, r"^difficulty must be 1-5 \(or None for all\), got 9$"),
        ({"difficulty": 0}, r"^difficulty must be 1-5 \(or None for all\), got 0$"),
        ({"difficulty": "3"}, r"^difficulty must be 1-5 \(or None for all\), got '3'$"),
        ({"categories": ["topology"]}, "unknown categories"),
        ({"mode": "bogus"}, "mode must be one of"),
        ({"flip_prob": 2.0}, "flip_prob must be in"),
        ({"flip_scope": "batch"}, "flip_scope"),
        ({"answer_extraction": ["latex"]}, "answer_extraction"),
        ({"answer_extraction": []}, "answer_extraction"),
        ({"max_turns": 0}, "max_turns"),
        ({"max_invalid_actions": -1}, "max_invalid_actions"),
        ({"render_mode": "human"}, "render_mode"),
        ({"verify_timeout_s": 0}, "timeout_s must be positive"),
        ({"rm_calibration": True}, "rm_calibration needs"),
    ],
)
@pytest.mark.filterwarnings("ignore:.*render_mode.*:UserWarning")
def test_bad_constructor_args(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(**kwargs)
    with pytest.raises(ValueError, match=message):
        MathEnv(**kwargs)


# ------------------------------------------------------------------------ render
def test_render_ansi_transcript() -> None:
    env = make(render_mode="ansi", max_turns=2)
    obs, info = env.reset(seed=10)
    env.step(WRONG)
    env.step(boxed(gold(env)))
    text = env.render()
    assert text.startswith("[system]\n" + info["system_prompt"] + "\n")
    for part in (f"[env]\n{obs}\n", f"[agent]\n{WRONG}\n", "is incorrect. Try again.",
                 f"[agent]\n{boxed(gold(env))}\n", "is correct."):  # fmt: skip
        assert part in text
    assert text.index(WRONG) < text.index("Try again.") < text.index("is correct.")


def test_render_clips_long_actions_to_the_observation_limit() -> None:
    env = make(render_mode="ansi")
    env.reset(seed=10)
    limit = env.unwrapped.observation_space.max_length
    assert limit == 16_384
    action = "z" * (limit + 100) + boxed("1")  # valid: under the action limit
    env.step(action)
    agent = [text for role, text in env.unwrapped._transcript if role == "agent"]
    assert agent == [action[: limit - len("\n…[truncated]")] + "\n…[truncated]"]
    assert len(agent[0]) == limit
    text = env.render()
    assert f"[agent]\n{agent[0]}\n\n[env]\nYour answer 1 is incorrect.\n" in text
    assert "Working it out carefully" not in text  # the cut-off tail is not shown


def test_render_without_mode_is_none() -> None:
    env = make()
    env.reset(seed=0)
    assert env.render() is None


# ------------------------------------------------------------------------ bad actions
@pytest.mark.parametrize("action", [42, None, b"\\boxed{1}", ["\\boxed{1}"]])
def test_non_str_action_is_invalid(action: Any) -> None:
    env = make(render_mode="ansi")
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
    assert (reward, terminated, truncated) == (0.0, True, False)
    assert info["invalid_action"] is True
    assert info["stop_reason"] == "invalid_action"
    assert "str" in info["error"]
    assert obs.startswith("Invalid action: ")
    assert f"[agent]\n{action!r}\n" in env.render()


def test_overlong_action_is_invalid() -> None:
    env = make(max_invalid_actions=1, max_turns=2)
    env.reset(seed=0)
    limit = env.unwrapped.action_space.max_length
    assert limit == 65_536
    too_long = "x" * limit + r"\boxed{1}"
    _, reward, terminated, _, info = env.step(too_long)
    assert (reward, terminated, info["invalid_action"]) == (0.0, False, True)
    assert str(limit) in info["error"]
    # exactly at the limit is fine (and has no answer)
    _, _, terminated, _, info = env.step("y" * limit)
    assert (terminated, info["stop_reason"]) == (True, "no_answer")


def test_pathological_answer_does_not_hang_a_step() -> None:
    env = make(verify_timeout_s=1.0)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(r"\boxed{9^{9^{9^{9}}}}")
    assert (reward, terminated, info["stop_reason"]) == (0.0, True, "failed")
    assert info["verify_timed_out"] is True


@pytest.mark.parametrize("length", [500, 3000])
def test_long_answer_gives_the_same_result_whatever_the_time_limit(length: int) -> None:
    """Regression: ``info["parsed_answer"]`` of these answers depended on the wall-clock limit
    (read on an idle machine, timed out on a busy one). The size bound now decides first."""
    action = "\\boxed{" + "x" * length + "}"
    results = []
    for timeout in (5.0, 1e-6):
        env = gym.make("Math-Bundled-v0", verify_timeout_s=timeout)
        env.reset(seed=0)
        observation, reward, _, _, info = env.step(action)
        results.append(
            (observation, reward, info["stop_reason"], info["parsed_answer"],
             info["verify_timed_out"], info["verify_note"])
        )  # fmt: skip
        env.close()
    assert results[0] == results[1]
    observation, reward, stop_reason, parsed, timed_out, note = results[0]
    assert (reward, stop_reason, parsed, timed_out) == (0.0, "failed", "", False)
    assert note == f"the answer has {length} characters, over the limit of 400"
    assert note in observation


def test_an_answer_that_breaks_math_verify_is_a_wrong_answer_not_an_env_error() -> None:
    env = make(difficulty=1)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(boxed(r"\binom{15000}{7500}"))
    assert (reward, terminated, info["stop_reason"]) == (0.0, True, "failed")
    assert "ValueError" in info["verify_note"]
