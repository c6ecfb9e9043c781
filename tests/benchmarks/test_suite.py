"""Suite manifests: loading, defaults, and one clear error per kind of mistake."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from arenagym.benchmarks.suite import (
    DEFAULT_AGENT_CALL_TIMEOUT_S,
    DEFAULT_EPISODE_TIMEOUT_S,
    DEFAULT_MAX_STEPS,
    MAX_SEED,
    MAX_TASK_EPISODES,
    SuiteError,
    Task,
    bundled_suites,
    default_task_name,
    episode_reset_seed,
    load_suite,
    parse_suite,
)

GOOD = """
name = "demo"
description = "a demo"

[[tasks]]
name = "count-1"
env = "ArenagymTest/Countdown-v0"
kwargs = { turns = 1 }
episodes = 3
seeds = [0, 1]
metric = "success"
max_steps = 5

[[tasks]]
env = "ArenagymTest/Countdown-v0"
episodes = 1
seeds = [7]
"""

TASK = 'env = "ArenagymTest/Countdown-v0"\nepisodes = 2\nseeds = [0, 1]\n'


def write(tmp_path: Path, text: str, name: str = "suite.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_a_full_manifest_with_defaults(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, GOOD))
    assert suite.name == "demo"
    assert suite.description == "a demo"
    first, second = suite.tasks
    assert first == Task(
        name="count-1",
        env="ArenagymTest/Countdown-v0",
        kwargs={"turns": 1},
        episodes=3,
        seeds=(0, 1),
        metric="success",
        max_steps=5,
    )
    assert second.name == "ArenagymTest/Countdown-v0"  # no kwargs: the env id
    assert (second.metric, second.max_steps, second.kwargs) == (
        "clean_reward",
        DEFAULT_MAX_STEPS,
        {},
    )
    assert suite.n_episodes == 3 * 2 + 1
    assert list(first.episode_keys()) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert suite.task("count-1") is first
    with pytest.raises(KeyError, match="count-1"):
        suite.task("nope")


def test_suite_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    suite = load_suite(str(write(tmp_path, "[[tasks]]\n" + TASK, name="my_suite.toml")))
    assert suite.name == "my_suite"


def test_default_task_name_adds_a_stable_kwargs_digest() -> None:
    name = default_task_name("Math-v0", {"difficulty": 3, "source": "procedural"})
    assert name.startswith("Math-v0-") and len(name) == len("Math-v0-") + 6
    assert name == default_task_name("Math-v0", {"source": "procedural", "difficulty": 3})
    assert name != default_task_name("Math-v0", {"difficulty": 4, "source": "procedural"})
    assert default_task_name("Math-v0", {}) == "Math-v0"


def test_tasks_with_the_same_env_and_different_kwargs_get_distinct_default_names(
    tmp_path: Path,
) -> None:
    text = "".join(f"[[tasks]]\n{TASK}kwargs = {{ turns = {n} }}\n" for n in (1, 2))
    names = [task.name for task in load_suite(write(tmp_path, text)).tasks]
    assert len(set(names)) == 2


def test_module_colon_env_id_imports_the_module_like_gym_make(tmp_path: Path) -> None:
    text = TASK.replace("ArenagymTest/", "arenagym_bench_testkit:ArenagymTest/")
    suite = load_suite(write(tmp_path, "[[tasks]]\n" + text))
    assert suite.tasks[0].env == "arenagym_bench_testkit:ArenagymTest/Countdown-v0"


@pytest.mark.parametrize("name", ["math", "smoke"])
def test_bundled_suites_load(name: str) -> None:
    assert name in bundled_suites()
    suite = load_suite(name)
    assert suite.name == name
    assert all(task.env in ("Math-v0", "Math-Bundled-v0") for task in suite.tasks)
    assert suite.source == f"<bundled suite {name}>"


def test_the_math_suite_covers_three_difficulties_with_three_seeds() -> None:
    suite = load_suite("math")
    procedural = [task for task in suite.tasks if task.env == "Math-v0"]
    assert sorted(task.kwargs["difficulty"] for task in procedural) == [1, 3, 5]
    assert all(len(task.seeds) == 3 and task.metric == "clean_reward" for task in suite.tasks)


def test_unknown_bundled_suite_names_the_bundled_ones() -> None:
    with pytest.raises(SuiteError, match=r"unknown suite 'nope'.*math.*smoke"):
        load_suite("nope")


def test_missing_file_is_a_suite_error(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="cannot read the suite file"):
        load_suite(tmp_path / "absent.toml")


# (manifest text, words the message must contain besides the file name)
ONE_TASK = "[[tasks]]\n" + TASK

BAD: dict[str, tuple[str, list[str]]] = {
    "not toml": ("[[tasks]\nenv=", ["not valid TOML"]),
    "unknown top key": (f'colour = "red"\n[[tasks]]\n{TASK}', ["top level", "'colour'"]),
    "unknown task key": (f"[[tasks]]\n{TASK}epsiodes = 3\n", ["tasks[0]", "'epsiodes'"]),
    "no tasks": ('name = "x"\n', ["'tasks'", "missing"]),
    "empty tasks": ("tasks = []\n", ["'tasks'", "empty"]),
    "tasks not tables": ("tasks = [1, 2]\n", ["'tasks'", "array of tables"]),
    "name type": (f"name = 3\n[[tasks]]\n{TASK}", ["'name'", "string"]),
    "description type": (f"description = 3\n[[tasks]]\n{TASK}", ["'description'"]),
    "missing env": ("[[tasks]]\nepisodes = 1\nseeds = [0]\n", ["tasks[0]", "'env'", "missing"]),
    "env type": ("[[tasks]]\nenv = 3\nepisodes = 1\nseeds = [0]\n", ["'env'", "string"]),
    "unknown env": (
        '[[tasks]]\nenv = "Maths-v0"\nepisodes = 1\nseeds = [0]\n',
        ["tasks[0]", "'env'", "unknown env id 'Maths-v0'", "'Math-v0'"],
    ),
    "unimportable env module": (
        '[[tasks]]\nenv = "no_such_module_xyz:Foo-v0"\nepisodes = 1\nseeds = [0]\n',
        ["'env'", "module 'no_such_module_xyz': cannot import it"],
    ),
    "missing episodes": (
        '[[tasks]]\nenv = "ArenagymTest/Countdown-v0"\nseeds = [0]\n',
        ["'episodes'", "missing"],
    ),
    "episodes zero": (
        ONE_TASK.replace("episodes = 2", "episodes = 0"),
        ["'episodes'", ">= 1", "0"],
    ),
    "episodes type": (
        ONE_TASK.replace("episodes = 2", 'episodes = "2"'),
        ["'episodes'", "integer"],
    ),
    "episodes bool": (ONE_TASK.replace("episodes = 2", "episodes = true"), ["'episodes'"]),
    "missing seeds": (
        '[[tasks]]\nenv = "ArenagymTest/Countdown-v0"\nepisodes = 1\n',
        ["'seeds'", "missing"],
    ),
    "empty seeds": (ONE_TASK.replace("[0, 1]", "[]"), ["'seeds'", "empty"]),
    "seeds type": (ONE_TASK.replace("[0, 1]", '"0, 1"'), ["'seeds'", "list of integers"]),
    "seeds floats": (ONE_TASK.replace("[0, 1]", "[0.5]"), ["'seeds'", "list of integers"]),
    "repeated seeds": (ONE_TASK.replace("[0, 1]", "[1, 1]"), ["'seeds'", "repeated"]),
    "unknown metric": (ONE_TASK + 'metric = "accuracy"\n', ["'metric'", "'accuracy'", "success"]),
    "max_steps zero": (ONE_TASK + "max_steps = 0\n", ["'max_steps'", ">= 1"]),
    "kwargs type": (ONE_TASK + "kwargs = 3\n", ["'kwargs'", "table"]),
    "kwargs datetime": (
        ONE_TASK + "kwargs = { when = 1979-05-27T07:32:00Z }\n",
        ["'kwargs'", "JSON-serialisable"],
    ),
    "kwargs nan": (ONE_TASK + "kwargs = { x = nan }\n", ["'kwargs'", "JSON-serialisable"]),
    "task name type": (ONE_TASK + "name = 7\n", ["'name'", "non-empty string"]),
    "generation not a table": ("generation = 3\n" + ONE_TASK, ["'generation'", "table"]),
    "generation unknown key": (
        "[generation]\nmax_token = 3\n" + ONE_TASK,
        ["[generation]", "'max_token'", "max_tokens"],
    ),
    "generation max_tokens zero": (
        "[generation]\nmax_tokens = 0\n" + ONE_TASK,
        ["[generation]", "'max_tokens'", "integer >= 1"],
    ),
    "generation max_total_tokens text": (
        '[generation]\nmax_total_tokens = "9"\n' + ONE_TASK,
        ["'max_total_tokens'", "integer >= 1"],
    ),
    "generation temperature negative": (
        "[generation]\ntemperature = -0.5\n" + ONE_TASK,
        ["'temperature'", ">= 0"],
    ),
    "generation top_p": ("[generation]\ntop_p = 1.5\n" + ONE_TASK, ["'top_p'", "(0, 1]"]),
    "generation stop": ('[generation]\nstop = "x"\n' + ONE_TASK, ["'stop'", "list"]),
    "settings not a table": ("settings = 3\n" + ONE_TASK, ["'settings'", "table"]),
    "settings unknown key": (
        "[settings]\ntimeout = 3\n" + ONE_TASK,
        [":2: [settings]", "'timeout'", "agent_call_timeout_s", "episode_timeout_s"],
    ),
    "settings call timeout zero": (
        "[settings]\nagent_call_timeout_s = 0\n" + ONE_TASK,
        [":2: [settings]", "'agent_call_timeout_s'", "seconds > 0"],
    ),
    "settings episode timeout text": (
        '[settings]\nepisode_timeout_s = "1h"\n' + ONE_TASK,
        ["'episode_timeout_s'", "seconds > 0", "'1h'"],
    ),
    "settings timeout nan": (
        "[settings]\nepisode_timeout_s = nan\n" + ONE_TASK,
        ["'episode_timeout_s'", "seconds > 0"],
    ),
    "settings timeout bool": (
        "[settings]\nagent_call_timeout_s = true\n" + ONE_TASK,
        ["'agent_call_timeout_s'"],
    ),
    "leaderboard unknown key": (
        '[leaderboard]\noverall = "x"\n' + ONE_TASK,
        ["[leaderboard]", "'overall'", "primary_task", "reference_agents"],
    ),
    "leaderboard primary task unknown": (
        '[leaderboard]\nprimary_task = "nope"\n' + ONE_TASK,
        [":2: [leaderboard]", "'primary_task'", "'nope'", "'ArenagymTest/Countdown-v0'"],
    ),
    "leaderboard references type": (
        '[leaderboard]\nreference_agents = "oracle"\n' + ONE_TASK,
        ["'reference_agents'", "list of agent names"],
    ),
    "leaderboard references repeated": (
        '[leaderboard]\nreference_agents = ["o", "o"]\n' + ONE_TASK,
        ["'reference_agents'", "repeated"],
    ),
    "episodes over the maximum": (
        ONE_TASK.replace("episodes = 2", "episodes = 100000000000"),
        [":3: tasks[0]", "'episodes'", "100,000,000,000", f"{MAX_TASK_EPISODES:,}"],
    ),
    "episodes times seeds over the maximum": (
        ONE_TASK.replace("episodes = 2", f"episodes = {MAX_TASK_EPISODES // 2 + 1}"),
        [":3: tasks[0]", "'episodes'", "x 2 seed(s)", "MAX_TASK_EPISODES"],
    ),
    "deeply nested kwargs": (
        ONE_TASK + "kwargs = { x = " + "[" * 3000 + "]" * 3000 + " }\n",
        [":5: ", "nested too deeply"],
    ),
    "integer too long to read": (
        ONE_TASK.replace("episodes = 2", "episodes = 1" + "0" * 5000),
        [":3: ", "not valid TOML", "more than 4300 digits"],
    ),
    "seed too large for the store": (
        ONE_TASK.replace("[0, 1]", "[0, 99999999999999999999999]"),
        [":4: tasks[0]", "'seeds'", "99999999999999999999999", "out of range", "2**63 - 1"],
    ),
    "seed just over the bound": (
        ONE_TASK.replace("[0, 1]", f"[{2**63}]"),
        ["'seeds'", "out of range"],
    ),
    "negative seed": (ONE_TASK.replace("[0, 1]", "[-1]"), ["'seeds'", "seed -1 is out of range"]),
    "player kwargs date": (
        '[[players]]\nname = "a"\nagent = "random"\nkwargs = { d = 1979-05-27 }\n' + ONE_TASK,
        [":4: players[0]", "'kwargs'", "JSON-serialisable"],
    ),
    "player missing agent": (
        '[[players]]\nname = "a"\n' + ONE_TASK,
        [":1: players[0]", "'agent'", "agent spec string"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_every_mistake_is_a_suite_error_naming_the_file_and_field(
    tmp_path: Path, case: str
) -> None:
    text, words = BAD[case]
    path = write(tmp_path, text, name=f"bad_{case.replace(' ', '_')}.toml")
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    for word in words:
        assert word in message, (word, message)


def test_duplicate_task_names_name_both_tasks(tmp_path: Path) -> None:
    text = f'[[tasks]]\nname = "a"\n{TASK}[[tasks]]\nname = "a"\n{TASK}'
    with pytest.raises(SuiteError, match=r"tasks\[1\] \(name 'a'\).*'name'.*tasks\[0\]"):
        load_suite(write(tmp_path, text))


def test_duplicate_default_names_are_caught_too(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="already used by tasks"):
        load_suite(write(tmp_path, f"[[tasks]]\n{TASK}[[tasks]]\n{TASK}"))


def test_errors_in_a_named_task_mention_its_name(tmp_path: Path) -> None:
    text = f'[[tasks]]\n{TASK}[[tasks]]\nname = "second"\n{TASK.replace("2", "0", 1)}'
    with pytest.raises(SuiteError, match=r"tasks\[1\] \(name 'second'\): field 'episodes'"):
        load_suite(write(tmp_path, text))


def test_parse_suite_names_its_source_in_errors() -> None:
    with pytest.raises(SuiteError, match=r"^<inline>: field 'name' is missing"):
        parse_suite("[[tasks]]\n" + TASK, source="<inline>")


def test_reset_seeds_are_fixed_distinct_and_32_bit() -> None:
    grid = list(itertools.product(range(5), range(200)))
    seeds = [episode_reset_seed(seed, episode) for seed, episode in grid]
    assert len(set(seeds)) == len(grid)
    assert all(0 <= s < 2**32 for s in seeds)
    assert seeds == [episode_reset_seed(seed, episode) for seed, episode in grid]
    # pinned, so that a change that would silently re-draw every stored episode fails here
    assert episode_reset_seed(0, 0) == 2356488672


def test_generation_budgets_fill_only_what_an_llm_agent_leaves_unset() -> None:
    suite = parse_suite(
        'name = "g"\n[generation]\nmax_tokens = 32\nmax_total_tokens = 320\ntemperature = 0\n'
        + ONE_TASK
    )
    assert suite.generation == {"max_tokens": 32, "max_total_tokens": 320, "temperature": 0}
    # the spec's own keys win, then --agent-kwargs; the suite fills the rest
    assert suite.agent_kwargs("hf:/m,max_tokens=8", {"temperature": 0.7}) == {
        "temperature": 0.7,
        "max_total_tokens": 320,
    }
    assert suite.agent_kwargs("vllm:/m,max_total_tokens=5", None) == {
        "max_tokens": 32,
        "temperature": 0,
    }
    assert suite.agent_kwargs("openai:http://h/v1,model=x", {}) == suite.generation
    # scripted agents take no generation settings
    assert suite.agent_kwargs("random", {"seed": 1}) == {"seed": 1}
    assert suite.agent_kwargs("arenagym_bench_testkit:ConstAgent", {}) == {}
    assert parse_suite(ONE_TASK, default_name="g").agent_kwargs("hf:/m", {"seed": 3}) == {"seed": 3}


def test_messages_name_the_line_of_the_field(tmp_path: Path) -> None:
    text = (
        'name = "lines"\n'  # 1
        "\n"  # 2
        "[[tasks]]\n"  # 3
        f"{TASK}"  # 4-6
        "\n"  # 7
        "[[tasks]]  # the second\n"  # 8
        'name = "second"\n'  # 9
        'env = "ArenagymTest/Countdown-v0"\n'  # 10
        "seeds = [0]\n"  # 11
        "episodes = 0\n"  # 12
    )
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert str(caught.value).startswith(
        f"{path}:12: tasks[1] (name 'second'): field 'episodes' must be an integer >= 1"
    )
    # a missing field: the line of its table's header
    with pytest.raises(SuiteError, match=r"^[^:]+:8: tasks\[1\]: field 'episodes' is missing"):
        load_suite(
            write(tmp_path, text.replace("episodes = 0\n", "").replace('name = "second"\n', ""))
        )


def test_tasks_written_inline_get_messages_without_a_line(tmp_path: Path) -> None:
    text = 'tasks = [{ env = "ArenagymTest/Countdown-v0", episodes = 0, seeds = [0] }]\n'
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert str(caught.value).startswith(f"{path}: tasks[0]: field 'episodes'")


def test_a_suite_at_the_size_bound_loads(tmp_path: Path) -> None:
    text = ONE_TASK.replace("episodes = 2", f"episodes = {MAX_TASK_EPISODES // 2}")
    assert load_suite(write(tmp_path, text)).n_episodes == MAX_TASK_EPISODES


def test_settings_and_leaderboard_tables(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, ONE_TASK))
    assert (suite.agent_call_timeout_s, suite.episode_timeout_s) == (
        DEFAULT_AGENT_CALL_TIMEOUT_S,
        DEFAULT_EPISODE_TIMEOUT_S,
    )
    assert (suite.primary_task, suite.reference_agents) == (None, ())
    text = (
        "[settings]\nagent_call_timeout_s = 2.5\nepisode_timeout_s = inf\n"
        '[leaderboard]\nprimary_task = "main"\nreference_agents = ["oracle", "pkg.mod:Oracle"]\n'
        f'[[tasks]]\nname = "main"\n{TASK}'
    )
    suite = load_suite(write(tmp_path, text))
    assert (suite.agent_call_timeout_s, suite.episode_timeout_s) == (2.5, float("inf"))
    assert suite.primary_task == "main"
    assert suite.reference_agents == ("oracle", "pkg.mod:Oracle")
    assert suite.leaderboard_settings() == {
        "primary_task": "main",
        "reference_agents": ["oracle", "pkg.mod:Oracle"],
        "task_episodes": {"main": 4},  # 2 episodes x 2 seeds
    }


def test_match_tasks_are_bounded_too() -> None:
    pytest.importorskip("textarena")
    players = '[[players]]\nname = "a"\nagent = "random"\n'
    match = '[[matches]]\nenv = "TextArena/Nim-AEC-v0"\nseeds = [0]\nepisodes = 2000000\n'
    with pytest.raises(SuiteError, match=r"^<m>:8: matches\[0\]: field 'episodes'.*per lineup"):
        parse_suite('name = "m"\n' + players + match, source="<m>")


def test_a_huge_integer_time_limit_is_no_limit(tmp_path: Path) -> None:
    text = "[settings]\nagent_call_timeout_s = 1" + "0" * 400 + "\n" + ONE_TASK
    suite = load_suite(write(tmp_path, text))
    assert suite.agent_call_timeout_s == float("inf")


def test_the_largest_seed_the_store_holds_loads(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, ONE_TASK.replace("[0, 1]", f"[0, {MAX_SEED}]")))
    assert suite.tasks[0].seeds == (0, MAX_SEED)


def test_keys_of_a_sub_table_are_not_fields_of_its_task(tmp_path: Path) -> None:
    text = (
        "[[tasks]]\n"  # 1
        'env = "ArenagymTest/Countdown-v0"\n'  # 2
        "seeds = [0]\n"  # 3
        "[tasks.kwargs]\n"  # 4
        "turns = 1\n"  # 5
        "episodes = 2\n"  # 6: inside kwargs, not the task's episodes
    )
    path = write(tmp_path, text, name="s.toml")
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert str(caught.value).startswith(f"{path}:1: tasks[0]: field 'episodes' is missing")
    # a field given as a sub-table: the line of its header
    bad_kwargs = text.replace("episodes = 2\n", "when = 1979-05-27\n") + "[[tasks]]\n" + TASK
    path = write(tmp_path, bad_kwargs.replace("seeds = [0]\n", "seeds = [0]\nepisodes = 1\n"))
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert str(caught.value).startswith(f"{path}:5: tasks[0]: field 'kwargs' must be JSON")
    # a dotted key: the line it is on; the next [[tasks]] is counted as the second
    dotted = (
        f"[[tasks]]\n{TASK}"  # 1-4
        "kwargs.when = 1979-05-27\n"  # 5
        f"[[tasks]]\n{TASK}"  # 6-9
        "[tasks.kwargs]\n"  # 10
        "x = 1\n"  # 11
        "episodes = 0\n"  # 12: kwargs' own, not the task's
    )
    path = write(tmp_path, dotted)
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert str(caught.value).startswith(f"{path}:5: tasks[0]: field 'kwargs' must be JSON")
    fixed = dotted.replace("kwargs.when = 1979-05-27\n", "kwargs.when = 1\n")
    first, second = load_suite(write(tmp_path, fixed)).tasks
    assert (first.kwargs, first.episodes) == ({"when": 1}, 2)
    assert (second.kwargs, second.episodes) == ({"x": 1, "episodes": 0}, 2)
    path = write(
        tmp_path, fixed.replace("seeds = [0, 1]\n[tasks.kwargs]", "seeds = []\n[tasks.kwargs]")
    )
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert str(caught.value).startswith(f"{path}:9: tasks[1]: field 'seeds' is empty")


def test_match_and_player_fields_are_checked_like_tasks() -> None:
    pytest.importorskip("textarena")
    players = '[[players]]\nname = "a"\nagent = "random"\n'
    match = '[[matches]]\nenv = "TextArena/Nim-AEC-v0"\nseeds = [0]\n'
    cases = {
        "name = 5\n": [":8: matches[0]", "'name'", "non-empty string", "5"],
        'name = ""\n': [":8: matches[0]", "'name'", "non-empty string"],
        "kwargs = { d = 1979-05-27 }\n": [":8: matches[0]", "'kwargs'", "JSON-serialisable"],
    }
    for extra, words in cases.items():
        with pytest.raises(SuiteError) as caught:
            parse_suite('name = "m"\n' + players + match + extra, source="<m>")
        for word in words:
            assert word in str(caught.value), (word, str(caught.value))
    with pytest.raises(SuiteError, match=r"^<m>:7: matches\[0\]: field 'seeds'.*out of range"):
        parse_suite('name = "m"\n' + players + match.replace("[0]", f"[{2**63}]"), source="<m>")
