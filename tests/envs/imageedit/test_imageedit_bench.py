"""The bundled set, the knowledge table and generator, the baselines, and the suites."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import arenagym.envs  # noqa: F401  (registers the ids)
from arenagym.benchmarks.suite import load_suite
from arenagym.cli import main
from arenagym.envs.imageedit.baselines import (
    LiteralEditor,
    OracleReasoner,
    RandomEditor,
    read_observation,
)
from arenagym.envs.imageedit.generator import (
    BENCH_SIZE,
    CATEGORIES,
    DIFFICULTIES,
    bench_triple,
    generate,
)
from arenagym.envs.imageedit.knowledge import KINDS, fact
from arenagym.envs.imageedit.language import CLAUSES, resolve
from arenagym.envs.imageedit.program import apply_program
from arenagym.envs.imageedit.scene import describe_scene, parse_scene, scene_key


def test_the_bundled_set_has_1200_distinct_solvable_triples_per_category_and_difficulty() -> None:
    triples = [bench_triple(i) for i in range(BENCH_SIZE)]
    assert BENCH_SIZE >= 1000
    cells = Counter((t.category, t.difficulty) for t in triples)
    assert cells == {(c, d): 100 for c in CATEGORIES for d in DIFFICULTIES}
    assert len({(t.instruction, scene_key(t.scene)) for t in triples}) == BENCH_SIZE
    assert len({t.instruction for t in triples}) > 500
    for triple in triples:
        # the knowledge table resolves every instruction to exactly the target scene
        program = resolve(triple.instruction, triple.scene)
        assert program is not None, triple.instruction
        assert scene_key(apply_program(triple.scene, program).scene) == scene_key(
            triple.target_scene
        )
        assert triple.reasoning[-1].startswith("Edit: ") and len(triple.reasoning) >= 2
        assert parse_scene(describe_scene(triple.scene)) == triple.scene
        assert len({o.kind for o in triple.scene}) == len(triple.scene)  # kinds are distinct
    assert bench_triple(5) == triples[5]
    with pytest.raises(IndexError):
        bench_triple(BENCH_SIZE)


def test_difficulty_means_more_objects() -> None:
    sizes: dict[int, list[int]] = {d: [] for d in DIFFICULTIES}
    for index in range(BENCH_SIZE):
        triple = bench_triple(index)
        sizes[triple.difficulty].append(len(triple.scene))
    assert max(sizes[1]) < min(sizes[2]) and max(sizes[2]) < min(sizes[3])


def test_generation_is_deterministic_per_seed() -> None:
    for category in CATEGORIES:
        for difficulty in DIFFICULTIES:
            a = generate(np.random.default_rng(9), category, difficulty)
            assert a == generate(np.random.default_rng(9), category, difficulty)
    with pytest.raises(ValueError, match="category"):
        generate(np.random.default_rng(0), "poetry", 1)


def test_the_knowledge_table_is_consistent() -> None:
    riddles = [k.riddle for k in KINDS.values()]
    assert all(riddles) and len(set(riddles)) == len(riddles)
    needs = [k.need for k in KINDS.values() if k.need]
    assert len(set(needs)) == len(needs)
    for kind in KINDS.values():
        assert kind.material and kind.colours
        if kind.ripe_colour:
            assert {kind.ripe_colour, kind.unripe_colour} <= set(kind.colours)
        for name in CLAUSES:
            assert fact(kind.name, name) in (True, False, None)
    assert fact("apple", "floats") and fact("stone", "sinks") and fact("egg", "vegan_avoids")
    assert fact("egg", "vegetarian_avoids") is False and fact("sausage", "vegetarian_avoids")


def _mean_scores(env_id: str, seeds: range) -> dict[str, float]:
    env = gym.make(env_id, observation="text")
    scores: dict[str, list[float]] = {}
    for name, agent in (
        ("oracle", OracleReasoner()),
        ("literal", LiteralEditor()),
        ("random", RandomEditor(seed=0)),
    ):
        for seed in seeds:
            observation, info = env.reset(seed=seed)
            agent.reset(info["system_prompt"])
            _, reward, terminated, _, step_info = env.step(agent.act(observation))
            assert terminated and not step_info["invalid_action"]  # baselines write valid programs
            scores.setdefault(name, []).append(reward)
    return {name: float(np.mean(values)) for name, values in scores.items()}


@pytest.mark.parametrize("env_id", ["ImageEdit-v0", "ImageEdit-Bench-v0", "ImageEdit-Hard-v0"])
def test_the_oracle_solves_and_the_literal_editor_beats_random(env_id: str) -> None:
    # measured over seeds 0-99: oracle 1.0; literal 0.20 / 0.20 / 0.13; random 0.06 / 0.09 / 0.04
    mean = _mean_scores(env_id, range(100))
    assert mean["oracle"] == 1.0
    assert mean["literal"] < 0.35
    assert mean["oracle"] - 0.6 > mean["literal"] > mean["random"] + 0.05


def test_a_fresh_random_editor_per_episode_still_varies_its_edits() -> None:
    """The runner builds an agent per episode: the edit must depend on the episode, not only on
    the seed (and stay reproducible)."""
    env = gym.make("ImageEdit-Bench-v0", observation="text")
    actions = []
    for seed in range(12):
        observation, _ = env.reset(seed=seed)
        actions.append(RandomEditor(seed=0).act(observation))
        assert actions[-1] == RandomEditor(seed=0).act(observation)
    assert len({json.loads(a)[0]["op"] for a in actions}) >= 3


def test_baselines_read_dict_observations_too() -> None:
    env = gym.make("ImageEdit-v0")
    observation, _ = env.reset(seed=8)
    instruction, scene = read_observation(observation)
    assert instruction == observation["instruction"] and scene == env.unwrapped.current_triple.scene
    assert env.step(OracleReasoner().act(observation))[1] == 1.0
    assert json.loads(LiteralEditor().act(observation)) and json.loads(
        RandomEditor().act(observation)
    )


def test_the_suites_load_and_run_with_the_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full, quick = load_suite("imageedit"), load_suite("imageedit-quick")
    assert full.n_episodes >= 500 and quick.n_episodes <= 40
    ids = {task.env for task in full.tasks}
    assert ids == {"ImageEdit-v0", "ImageEdit-Easy-v0", "ImageEdit-Hard-v0", "ImageEdit-Bench-v0"}
    covered = {c for t in full.tasks for c in t.kwargs.get("categories", [])}
    assert covered == set(CATEGORIES)
    assert all(t.kwargs.get("observation") == "text" for t in (*full.tasks, *quick.tasks))
    store = tmp_path / "r.sqlite"
    module = "arenagym.envs.imageedit.baselines"
    for agent in ("OracleReasoner", "LiteralEditor", "RandomEditor"):
        command = ["run", "--suite", "imageedit-quick", "--store", str(store), "--no-progress"]
        assert main([*command, "--agent", f"{module}:{agent}", "--agent-name", agent]) == 0
        out = capsys.readouterr().out
        assert f"{quick.n_episodes} episodes run" in out and "0 failed" in out
