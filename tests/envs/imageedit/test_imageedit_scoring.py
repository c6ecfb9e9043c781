"""ImageEdit scoring: the scene-graph reward's components and the image-action metric."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import arenagym.envs  # noqa: F401  (registers the ids)
from arenagym.envs.imageedit.generator import bench_triple
from arenagym.envs.imageedit.program import apply_program, parse_program
from arenagym.envs.imageedit.render import render_scene
from arenagym.envs.imageedit.scene import SceneObject
from arenagym.envs.imageedit.scoring import score_image, score_program

SCENE = (
    SceneObject(0, "apple", "green", "medium", 0, 0, "organic"),
    SceneObject(1, "stone", "grey", "small", 1, 0, "stone"),
    SceneObject(2, "cup", "blue", "large", 2, 1, "glass"),
)
RIPEN = parse_program('[{"op": "recolour", "id": 0, "colour": "red"}]')
TARGET = apply_program(SCENE, RIPEN)


def _score(program: str, weight: float = 0.5) -> dict:
    applied = apply_program(SCENE, parse_program(program))
    return score_program(applied, TARGET.scene, TARGET.touched, weight)


@pytest.mark.parametrize(
    ("program", "target", "edit"),
    [
        ('[{"op": "recolour", "id": 0, "colour": "red"}]', 0.5, 0.5),  # right
        (
            '[{"op": "recolour", "id": 0, "colour": "yellow"}]',
            0.5,
            0.0,
        ),  # right object, wrong value
        ('[{"op": "resize", "id": 0, "size": "large"}]', 0.5, 0.0),  # right object, wrong op
        ('[{"op": "recolour", "id": 1, "colour": "red"}]', 0.0, 0.0),  # wrong object
        # the right edit and an extra one: the scene and the target set are both wrong
        ('[{"op": "recolour", "id": 0, "colour": "red"}, {"op": "remove", "id": 2}]', 0.0, 0.0),
        # the same result by another route (via another colour) still matches
        (
            '[{"op": "recolour", "id": 0, "colour": "blue"},'
            ' {"op": "recolour", "id": 0, "colour": "red"}]',
            0.5,
            0.5,
        ),
    ],
)
def test_scene_graph_components(program: str, target: float, edit: float) -> None:
    scores = _score(program)
    assert scores["reward_components"] == {"target": target, "edit": edit}
    assert scores["target_identified"] == (target > 0) and scores["scene_match"] == (edit > 0)


def test_weights_and_object_f1() -> None:
    assert _score('[{"op": "recolour", "id": 0, "colour": "red"}]', 0.2)["reward_components"] == {
        "target": 0.2,
        "edit": 0.8,
    }
    wrong = _score('[{"op": "recolour", "id": 0, "colour": "yellow"}]')
    assert wrong["object_f1"] == pytest.approx(2 / 3)  # two of three objects as they should be


def test_added_objects_match_whatever_id_they_get() -> None:
    add = parse_program(
        '[{"op": "add", "kind": "umbrella", "colour": "blue", "size": "large", "at": [3, 0]}]'
    )
    target = apply_program(SCENE, add)
    assert target.touched == frozenset({"new:umbrella"})
    # removing and re-adding shifts ids; the scene graph ignores them
    detour = parse_program(
        '[{"op": "remove", "id": 2}, {"op": "add", "kind": "cup", "colour": "blue",'
        ' "size": "large",'
        ' "at": [2, 1], "material": "glass"}, {"op": "add", "kind": "umbrella", "colour": "blue",'
        ' "size": "large", "at": [3, 0]}]'
    )
    scores = score_program(apply_program(SCENE, detour), target.scene, target.touched)
    assert scores["scene_match"] and not scores["target_identified"]  # (it touched the cup too)


def test_the_image_metric_on_the_target_the_source_and_noise() -> None:
    source, target = render_scene(SCENE), render_scene(TARGET.scene)
    perfect = score_image(source, target, target)
    assert perfect["reward_components"] == {"target": 0.5, "edit": 0.5}
    unchanged = score_image(source, target, source)
    assert unchanged["reward_components"] == {"target": 0.0, "edit": 0.0}
    noise = np.random.default_rng(0).integers(0, 256, source.shape, dtype=np.uint8)
    assert sum(score_image(source, target, noise)["reward_components"].values()) < 0.05
    # within the tolerance is a match; past it is not
    assert score_image(source, target, np.clip(target.astype(int) + 10, 0, 255).astype(np.uint8))[
        "reward_components"
    ] == {"target": 0.5, "edit": 0.5}
    blurred = score_image(source, target, np.clip(target.astype(int) + 40, 0, 255).astype(np.uint8))
    assert blurred["preserved"] < 0.1


def test_the_image_metric_gives_partial_credit_in_the_right_place() -> None:
    source, target = render_scene(SCENE), render_scene(TARGET.scene)
    wrong_colour = render_scene(
        apply_program(
            SCENE, parse_program('[{"op": "recolour", "id": 0, "colour": "orange"}]')
        ).scene
    )
    wrong_object = render_scene(
        apply_program(SCENE, parse_program('[{"op": "recolour", "id": 1, "colour": "red"}]')).scene
    )
    colour = score_image(source, target, wrong_colour)
    obj = score_image(source, target, wrong_object)
    assert colour["changed_iou"] == pytest.approx(1.0) and colour["region_accuracy"] < 0.2
    assert obj["changed_iou"] == 0.0
    assert sum(obj["reward_components"].values()) < sum(colour["reward_components"].values()) < 0.6


def test_image_actions_rank_agents_like_programs_do() -> None:
    """Over bench triples, submitting the rendering of a program's result scores 1 for the right
    program and less for a wrong one (the metric is monotone in these cases)."""
    env = gym.make("ImageEdit-Bench-v0", action="image", observation="text")
    program_env = gym.make("ImageEdit-Bench-v0", observation="text")
    for seed in range(40):
        env.reset(seed=seed)
        triple = env.unwrapped.current_triple
        right = render_scene(triple.target_scene)
        assert env.step(right)[1] == 1.0
        env.reset(seed=seed)
        bystander = next(o for o in triple.scene if f"#{o.id}" not in triple.targets)
        wrong = apply_program(
            triple.scene, parse_program(json.dumps([{"op": "remove", "id": bystander.id}]))
        )
        image_reward = env.step(render_scene(wrong.scene))[1]
        program_env.reset(seed=seed)
        assert program_env.step(json.dumps([{"op": "remove", "id": bystander.id}]))[1] == 0.0
        assert image_reward < 0.5


def test_renderings_are_deterministic_and_every_bench_edit_changes_pixels() -> None:
    for index in range(0, 1200, 7):
        triple = bench_triple(index)
        before = render_scene(triple.scene)
        assert before.tobytes() == render_scene(triple.scene).tobytes()
        assert not np.array_equal(before, render_scene(triple.target_scene))
