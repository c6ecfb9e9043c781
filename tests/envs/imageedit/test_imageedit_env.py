"""ImageEdit-v0: spaces and observation modes, determinism per seed, check_env on every id and
mode, invalid actions (hypothesis-fuzzed programs), the inverse task, rendering, arguments."""

from __future__ import annotations

import inspect
import json
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import arenagym.envs
from arenagym.envs.core.dual import HasInverseTask, InverseTask
from arenagym.envs.core.spaces import UnicodeText
from arenagym.envs.imageedit.env import INVERSE_SYSTEM_PROMPT, ImageEditEnv
from arenagym.envs.imageedit.render import HEIGHT, WIDTH

IDS = ["ImageEdit-v0", "ImageEdit-Easy-v0", "ImageEdit-Hard-v0", "ImageEdit-Bench-v0"]
MODES = [
    {},
    {"observation": "text"},
    {"action": "image"},
    {"observation": "text", "action": "image"},
    {"render_mode": "rgb_array"},
    {"render_mode": "ansi"},
]


def _right(env: gym.Env) -> str:
    return json.dumps(env.unwrapped.current_triple.program_json())


@pytest.mark.parametrize("env_id", IDS)
def test_every_id_is_registered_and_passes_check_env(env_id: str) -> None:
    assert env_id in arenagym.envs.list_envs()
    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert not [
        str(w.message)
        for w in caught
        if not issubclass(w.category, (DeprecationWarning, ResourceWarning))
    ]
    env.close()


@pytest.mark.parametrize("kwargs", MODES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_check_env_passes_in_every_observation_and_action_mode(kwargs: dict[str, Any]) -> None:
    env = gym.make("ImageEdit-v0", **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert not [
        str(w.message)
        for w in caught
        if not issubclass(w.category, (DeprecationWarning, ResourceWarning))
    ]
    env.close()
    env.close()  # idempotent


def test_the_dict_observation_and_the_text_observation_agree() -> None:
    env = gym.make("ImageEdit-v0")
    space = env.observation_space
    assert isinstance(space, spaces.Dict) and set(space.spaces) == {
        "text",
        "instruction",
        "scene",
        "image",
    }
    assert space["image"] == spaces.Box(0, 255, (HEIGHT, WIDTH, 3), np.uint8)
    assert env.action_space == UnicodeText(16_384)
    observation, info = env.reset(seed=5)
    assert space.contains(observation) and observation["image"].dtype == np.uint8
    text_env = gym.make("ImageEdit-v0", observation="text")
    assert isinstance(text_env.observation_space, UnicodeText)
    text, text_info = text_env.reset(seed=5)
    assert text == observation["text"] and info == text_info
    assert text.startswith(f"Instruction: {observation['instruction']}\n")
    assert observation["scene"] in text
    assert {"system_prompt", "task_id", "category", "difficulty"} <= set(info)
    # after a valid edit, the dict shows the edited scene
    after = env.step(_right(env))[0]
    assert not np.array_equal(after["image"], observation["image"])
    assert after["scene"] != observation["scene"] and after["text"].startswith("Target identified")


@pytest.mark.parametrize("env_id", IDS)
def test_the_same_seed_gives_byte_identical_images_and_instructions(env_id: str) -> None:
    first, second = gym.make(env_id), gym.make(env_id)
    seen = set()
    for seed in (0, 7, 123, 2**31 - 1):
        a, info_a = first.reset(seed=seed)
        b, info_b = second.reset(seed=seed)
        assert a["image"].tobytes() == b["image"].tobytes()
        assert (a["instruction"], a["scene"], a["text"]) == (
            b["instruction"],
            b["scene"],
            b["text"],
        )
        assert info_a == info_b
        seen.add(a["image"].tobytes() + a["instruction"].encode())
        again, _ = first.reset(seed=seed)  # the same env, reset again
        assert again["image"].tobytes() == a["image"].tobytes()
    assert len(seen) == 4


def test_a_valid_edit_ends_the_episode_and_components_sum_to_the_reward() -> None:
    env = gym.make("ImageEdit-v0", observation="text")
    env.reset(seed=3)
    _, reward, terminated, truncated, info = env.step(_right(env))
    assert (reward, terminated, truncated, info["stop_reason"]) == (1.0, True, False, "solved")
    assert info["reward_components"] == {"target": 0.5, "edit": 0.5}
    assert info["clean_reward"] == 1.0 and info["reasoning"] and info["target_program"]
    env.reset(seed=3)
    triple = env.unwrapped.current_triple
    bystander = next(o for o in triple.scene if f"#{o.id}" not in triple.targets)
    _, reward, terminated, _, info = env.step(json.dumps([{"op": "remove", "id": bystander.id}]))
    assert (reward, terminated, info["stop_reason"]) == (0.0, True, "failed")
    assert info["reward_components"] == {"target": 0.0, "edit": 0.0}
    assert not info["target_identified"] and not info["scene_match"]


GARBAGE_OPS = st.fixed_dictionaries(
    {
        "op": st.one_of(
            st.sampled_from(["recolour", "move", "remove", "resize", "add", "x"]), st.integers()
        )
    },
    optional={
        "id": st.one_of(st.integers(-5, 40), st.text(max_size=3), st.none(), st.booleans()),
        "colour": st.one_of(st.sampled_from(["red", "mauve", ""]), st.integers()),
        "size": st.sampled_from(["small", "gigantic", ""]),
        "to": st.one_of(st.lists(st.integers(-3, 6), max_size=3), st.text(max_size=3)),
        "at": st.lists(st.integers(-3, 6), max_size=3),
        "kind": st.sampled_from(["cup", "unicorn", "ICE_CUBE"]),
        "extra": st.integers(),
    },
)
GARBAGE = st.one_of(
    st.lists(GARBAGE_OPS, max_size=20).map(json.dumps),
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
    ).map(json.dumps),
    st.text(max_size=60),
    st.sampled_from(["", "[" * 10_000, "{" * 3000, "```json\n[{]```", "x" * 20_000, "[]", "null"]),
    st.sampled_from([None, 3, b"[]", [{"op": "remove", "id": 0}], np.zeros((2, 2, 3), np.uint8)]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), actions=st.lists(GARBAGE, min_size=1, max_size=4))
def test_garbage_programs_are_penalised_steps_never_errors(seed: int, actions: list[Any]) -> None:
    env = ImageEditEnv(observation="text", max_invalid_actions=3, invalid_action_penalty=0.25)
    env.reset(seed=seed)
    for action in actions:
        observation, reward, terminated, _, info = env.step(action)
        assert info.get("stop_reason") != "env_error", info.get("error")
        assert abs(sum(info["reward_components"].values()) - reward) < 1e-9
        if info["invalid_action"]:
            assert observation.startswith("Invalid action: ") and info["error"]
            assert reward == -0.25
        else:
            assert terminated and 0.0 <= reward <= 1.0
        if terminated:
            break
    env.close()


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ("no json here", "no JSON edit program"),
        ('[{"op": "paint", "id": 0}]', "unknown op 'paint'"),
        ('[{"op": "remove", "id": 99}]', "there is no object #99"),
        ('[{"op": "recolour", "id": 0, "colour": "mauve"}]', "colour must be one of"),
        ('[{"op": "move", "id": 0, "to": [4, 0]}]', "off the grid"),
        ('[{"op": "resize", "id": 0, "size": "huge"}]', "size must be one of"),
        ('[{"op": "remove", "id": 0, "why": 1}]', "unknown key(s) why"),
        ('[{"op": "move", "id": 0}]', "needs to"),
        ("[]", "the program is empty"),
        (None, "got NoneType"),
    ],
)
def test_invalid_actions_say_what_was_wrong(action: Any, says: str) -> None:
    env = gym.make("ImageEdit-v0", observation="text", max_invalid_actions=1)
    env.reset(seed=0)
    observation, reward, terminated, _, info = env.step(action)
    assert info["invalid_action"] and says in info["error"] and says in observation
    assert not terminated and reward == -0.1
    observation, _, terminated, _, info = env.step(action)
    assert terminated and info["stop_reason"] == "invalid_action"
    assert "The episode has ended." in observation


def test_an_occupied_cell_is_invalid_and_names_the_occupant() -> None:
    env = gym.make("ImageEdit-v0", observation="text")
    env.reset(seed=0)
    scene = env.unwrapped.current_triple.scene
    first, second = scene[0], scene[1]
    action = json.dumps([{"op": "move", "id": first.id, "to": [second.x, second.y]}])
    info = env.step(action)[4]
    assert info["invalid_action"] and f"taken by #{second.id} {second.kind}" in info["error"]


def test_image_actions_are_scored_and_wrong_images_are_invalid() -> None:
    env = gym.make("ImageEdit-v0", action="image", observation="text")
    assert env.action_space == spaces.Box(0, 255, (HEIGHT, WIDTH, 3), np.uint8)
    env.reset(seed=2)
    for bad in ("[]", np.zeros((HEIGHT, WIDTH), np.uint8), np.full((HEIGHT, WIDTH, 3), 300.0)):
        info = env.step(bad)[4]
        assert info["invalid_action"]
    env = gym.make("ImageEdit-v0", action="image", render_mode="rgb_array")
    observation, _ = env.reset(seed=2)
    assert np.array_equal(env.render(), observation["image"])
    from arenagym.envs.imageedit.render import render_scene

    target = render_scene(env.unwrapped.current_triple.target_scene)
    _, reward, terminated, _, info = env.step(target.astype(np.float32))  # floats are accepted
    assert (reward, terminated, info["stop_reason"]) == (1.0, True, "solved")
    assert np.array_equal(env.render(), target)


def test_the_inverse_task_asks_for_the_instruction_from_the_program() -> None:
    env = gym.make("ImageEdit-v0")
    assert isinstance(env.unwrapped, HasInverseTask)
    assert env.unwrapped.inverse_task() is None  # before the first reset
    targets = []
    for seed in range(5):
        observation, _ = env.reset(seed=seed)
        task = env.unwrapped.inverse_task()
        assert isinstance(task, InverseTask) and task.system_prompt == INVERSE_SYSTEM_PROMPT
        assert task.target == observation["instruction"]
        targets.append(task.target)
        program = _right(env)
        system, user = task.messages(program)
        assert system == {"role": "system", "content": INVERSE_SYSTEM_PROMPT}
        assert program in user["content"] and "{output}" not in user["content"]
        assert observation["instruction"] not in user["content"]  # the answer is not given away
        for obj in env.unwrapped.current_triple.scene:
            assert f"#{obj.id} {obj.kind}" in user["content"]
    assert len(set(targets)) == 5
    env.reset(seed=3)  # a replayed reset gives the same inverse task
    assert env.unwrapped.inverse_task().target == targets[3]
    env.step(_right(env))  # still the episode's task after it ended
    assert env.unwrapped.inverse_task().target == targets[3]


def test_ansi_render_is_the_transcript() -> None:
    env = gym.make("ImageEdit-v0", render_mode="ansi")
    _, info = env.reset(seed=1)
    env.step("oops")
    transcript = env.render()
    assert info["system_prompt"] in transcript and "Invalid action:" in transcript


def test_options_pick_a_bench_triple_or_a_category() -> None:
    env = gym.make("ImageEdit-v0", observation="text")
    _, info = env.reset(options={"index": 17})
    assert info["task_id"] == "imageedit/bench/0017"
    _, info = env.reset(seed=1, options={"category": "intention", "difficulty": 3})
    assert (info["category"], info["difficulty"]) == ("intention", 3)
    bench = gym.make("ImageEdit-Bench-v0", observation="text")
    assert bench.reset(seed=17)[1]["task_id"] == "imageedit/bench/0017"
    hard = gym.make(
        "ImageEdit-Bench-v0", observation="text", difficulty=3, categories=["multi_hop"]
    )
    for seed in range(10):
        info = hard.reset(seed=seed)[1]
        assert (info["category"], info["difficulty"]) == ("multi_hop", 3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"split": "other"},
        {"difficulty": 4},
        {"categories": ["poetry"]},
        {"observation": "pixels"},
        {"action": "both"},
        {"target_weight": 2.0},
        {"render_mode": "human"},
    ],
)
def test_wrong_arguments_raise_and_name_the_choices(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ImageEditEnv(**kwargs)


def test_the_docstring_has_gymnasium_sections() -> None:
    doc = inspect.getdoc(ImageEditEnv) or ""
    for section in ("Description", "Action Space", "Observation Space", "Rewards",
                    "Starting State", "Episode End", "Arguments", "Examples"):  # fmt: skip
        assert f"## {section}" in doc
    assert ">>> " in doc
