"""SWE-v0 end to end: registration, check_env, episodes, grading at the end, faults, cleanup."""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from arenagym.envs.core.registration import list_envs
from arenagym.envs.swe.env import BUNDLED_TASKS, SWEEnv
from arenagym.envs.swe.runtime.bubblewrap import SANDBOX_PYTHON, bubblewrap_unavailable_reason
from arenagym.envs.swe.runtime.docker import docker_unavailable_reason
from arenagym.envs.swe.runtime.interface import SandboxError
from arenagym.envs.swe.tasks import dump_tasks

needs_bubblewrap = pytest.mark.skipif(
    bubblewrap_unavailable_reason() is not None, reason=str(bubblewrap_unavailable_reason())
)
_DOCKER_REASON = docker_unavailable_reason()

FIX = (
    "<function=str_replace_editor>\n<parameter=command>str_replace</parameter>\n"
    "<parameter=path>/workspace/calc/__init__.py</parameter>\n"
    "<parameter=old_str>    return a - b</parameter>\n"
    "<parameter=new_str>    return a + b</parameter>\n</function>"
)
FINISH = '{"name": "finish", "arguments": {"message": "fixed add"}}'


def bash(command: str) -> str:
    return json.dumps({"name": "execute_bash", "arguments": {"command": command}})


def test_registered_and_made_with_a_task_file(calc_tasks_file: Path) -> None:
    assert "SWE-v0" in list_envs()
    assert gym.spec("SWE-v0").kwargs == {}
    env = gym.make("SWE-v0", tasks=str(calc_tasks_file))
    observation, info = env.reset(seed=0)
    assert info["task_id"] in ("calc-snapshot-1", "calc-git-1")
    assert "/workspace" in observation and "call `finish`" in observation
    assert (
        "<function=execute_bash>" in info["system_prompt"] or "<function=" in info["system_prompt"]
    )
    assert [tool["function"]["name"] for tool in info["tools"]] == [
        "execute_bash",
        "str_replace_editor",
        "think",
        "finish",
    ]
    env.close()


def test_check_env_passes_without_warnings(calc_tasks_file: Path) -> None:
    env = gym.make("SWE-v0", tasks=str(calc_tasks_file))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert not [
        str(w.message)
        for w in caught
        if not issubclass(w.category, (DeprecationWarning, ResourceWarning))
    ]
    env.close()


@pytest.mark.skipif(not BUNDLED_TASKS.is_file(), reason="the bundled task file is not built yet")
def test_default_task_set_is_the_bundled_one() -> None:
    env = gym.make("SWE-v0")
    seen = {env.reset(seed=seed)[1]["task_id"] for seed in range(8)}
    assert len(seen) > 1 and len(env.unwrapped.tasks) >= 50
    env.close()


def test_seeds_and_task_ids_choose_the_task(calc_tasks_file: Path) -> None:
    env = SWEEnv(tasks=str(calc_tasks_file))
    first = env.reset(seed=5)
    assert env.reset(seed=5) == first  # byte for byte
    chosen = {env.reset(seed=seed)[1]["task_id"] for seed in range(12)}
    assert chosen == {"calc-snapshot-1", "calc-git-1"}
    assert env.reset(options={"task_id": "calc-git-1"})[1]["task_id"] == "calc-git-1"
    with pytest.raises(ValueError, match="unknown task_id"):
        env.reset(options={"task_id": "nope"})
    env.close()


def test_bad_constructor_arguments_name_the_fix(calc_tasks_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="allow_local=True"):
        SWEEnv(tasks=str(calc_tasks_file), runtime="local")
    with pytest.raises(ValueError, match="'bubblewrap', 'docker' or 'local'"):
        SWEEnv(tasks=str(calc_tasks_file), runtime="chroot")
    with pytest.raises(ValueError, match="unknown limits"):
        SWEEnv(tasks=str(calc_tasks_file), limits={"cpu": 1})
    with pytest.raises(FileNotFoundError, match="tasks="):
        SWEEnv(tasks=str(tmp_path / "none.jsonl"))


def _runtimes() -> list[object]:
    return [
        pytest.param("bubblewrap", marks=needs_bubblewrap),
        pytest.param(
            "docker",
            marks=pytest.mark.skipif(_DOCKER_REASON is not None, reason=str(_DOCKER_REASON)),
        ),
        "local",
    ]


@pytest.mark.filterwarnings("ignore:the local runtime runs commands")
@pytest.mark.parametrize("runtime", _runtimes())
def test_an_episode_that_fixes_the_bug_is_solved(calc_tasks_file: Path, runtime: str) -> None:
    env = SWEEnv(
        tasks=str(calc_tasks_file),
        runtime=runtime,
        allow_local=runtime == "local",
        # the sandboxes' interpreter (Debian's, with pytest), so every runtime grades alike
        runtime_options={"python": SANDBOX_PYTHON} if runtime == "local" else None,
    )
    env.reset(options={"task_id": "calc-git-1"})
    history = env.step(bash("git log --oneline | wc -l; ls tests"))[0]
    assert history.splitlines()[:2] == ["1", "test_calc.py"]  # one commit, no test_new.py
    observation, reward, terminated, truncated, info = env.step(FIX)
    assert "has been edited" in observation and reward == 0.0 and not terminated
    observation, reward, terminated, truncated, info = env.step(FINISH)
    assert (reward, terminated, truncated, info["stop_reason"]) == (1.0, True, False, "solved")
    assert info["reward_components"] == {"resolved": 1.0}
    assert info["test_statuses"]["tests/test_new.py::test_add_negative"] == "passed"
    assert "+    return a + b" in info["diff"] and "__pycache__" not in info["diff"]
    assert info["timings"]["grade_s"] > 0 and "6 of 6 selected tests pass" in observation
    env.close()


@needs_bubblewrap
def test_finishing_without_a_fix_fails_and_turn_limits_grade(calc_tasks_file: Path) -> None:
    env = SWEEnv(tasks=str(calc_tasks_file), max_turns=2)
    env.reset(options={"task_id": "calc-snapshot-1"})
    assert env.runtime is None  # reset starts no sandbox
    *_, info = env.step('{"name": "think", "arguments": {"thought": "no sandbox needed"}}')
    assert env.runtime is None
    observation, reward, terminated, truncated, info = env.step(FIX)
    assert (reward, terminated, truncated, info["stop_reason"]) == (1.0, False, True, "max_turns")
    assert "The turn limit is reached" in observation
    env.reset(options={"task_id": "calc-snapshot-1"})
    observation, reward, terminated, _, info = env.step(FINISH)
    assert (reward, terminated, info["stop_reason"]) == (0.0, True, "failed")
    assert info["test_statuses"]["tests/test_calc.py::test_add"] == "failed"
    assert info["diff"] == ""
    env.close()


def test_invalid_actions_explain_the_format_and_end_the_episode(calc_tasks_file: Path) -> None:
    env = SWEEnv(tasks=str(calc_tasks_file), max_invalid_actions=2, invalid_action_penalty=0.1)
    env.reset(seed=0)
    observation, reward, terminated, _, info = env.step("<function=execute_bash>ls")
    assert observation.startswith("Invalid action: a <function=...> tag is not closed")
    assert "<parameter=command>" in observation and '"arguments"' in observation  # the format
    assert reward == -0.1 and info["invalid_action"] and not terminated
    env.step("<function=nope></function>")
    *_, terminated, _, info = env.step(None)  # type: ignore[arg-type]
    assert terminated and info["stop_reason"] == "invalid_action"
    env.close()


@needs_bubblewrap
def test_fifty_random_garbage_actions_never_raise(calc_tasks_file: Path) -> None:
    env = SWEEnv(tasks=str(calc_tasks_file), max_invalid_actions=1000, max_turns=1000)
    rng = np.random.default_rng(7)
    env.action_space.seed(7)
    env.reset(seed=7)
    fragments = [
        "<function=",
        "</function>",
        "<parameter=command>",
        "</parameter>",
        "execute_bash",
        "str_replace_editor",
        '{"name": ',
        '"arguments": ',
        "{",
        "}",
        "[",
        "]",
        "view",
        "\n",
        "/workspace",
        "<parameter=path>",
        "<parameter=view_range>",
        "-1",
        "\x00",
        "🙂",
        '"',
    ]
    for _ in range(50):
        if rng.random() < 0.5:
            action = "".join(rng.choice(fragments, size=int(rng.integers(0, 12))))
        else:
            action = env.action_space.sample()[:200]
        observation, reward, terminated, truncated, info = env.step(action)
        assert isinstance(observation, str) and np.isfinite(reward)
        assert sum(info["reward_components"].values()) == pytest.approx(reward)
        assert not terminated or info["stop_reason"] != "env_error"
        if terminated or truncated:
            env.reset()
    env.close()


@needs_bubblewrap
def test_a_sandbox_fault_ends_the_episode_with_env_error(calc_tasks_file: Path) -> None:
    env = SWEEnv(tasks=str(calc_tasks_file))
    env.reset(seed=0)
    env.step(bash("true"))
    runtime = env.runtime
    assert runtime is not None

    def crash(*_args: object, **_kwargs: object) -> None:
        raise SandboxError("the sandbox died")

    runtime.run = crash  # type: ignore[method-assign]
    _, reward, terminated, _, info = env.step(bash("ls"))
    assert terminated and info["stop_reason"] == "env_error" and reward == 0.0
    assert "the sandbox died" in info["error"] and env.runtime is None
    env.reset(seed=0)  # the env is usable again
    assert "exit code 0" in env.step(bash("true"))[0]
    env.close()


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


@needs_bubblewrap
def test_close_leaves_no_process_or_directory_behind(calc_tasks_file: Path) -> None:
    env = SWEEnv(tasks=str(calc_tasks_file))
    env.reset(seed=1)
    env.step(bash("sleep 300 > /dev/null 2>&1 & echo started"))
    runtime = env.runtime
    private = runtime.private_dir  # type: ignore[union-attr]
    cache = env._state["cache_dir"]
    assert private is not None and private.exists() and cache.exists()
    env.close()
    env.close()  # idempotent
    assert not private.exists() and not cache.exists()
    assert _processes_mentioning(str(private)) == []


def test_render_shows_the_transcript(calc_tasks_file: Path) -> None:
    env = SWEEnv(tasks=str(calc_tasks_file), render_mode="ansi")
    env.reset(seed=0)
    env.step('{"name": "think", "arguments": {"thought": "hmm"}}')
    transcript = env.render()
    assert transcript is not None and "Your thought has been logged." in transcript
    env.close()


@needs_bubblewrap
def test_setup_commands_run_in_the_sandbox_and_stay_out_of_the_diff(tmp_path: Path, kit) -> None:
    task = kit.snapshot_task(
        tmp_path, setup_commands=("printf 'GENERATED = 1\\n' > calc/_generated.py",)
    )
    path = tmp_path / "setup.jsonl"
    dump_tasks([task], path)
    env = SWEEnv(tasks=str(path))
    env.reset(seed=0)
    assert env.step(bash("cat calc/_generated.py"))[0].startswith("GENERATED = 1\n")
    env.step(FIX)
    *_, info = env.step(FINISH)
    assert info["stop_reason"] == "solved"
    assert "_generated" not in info["diff"] and "+    return a + b" in info["diff"]
    env.close()


@needs_bubblewrap
@pytest.mark.skipif(not BUNDLED_TASKS.is_file(), reason="the bundled task file is not built yet")
@pytest.mark.filterwarnings("ignore:the local runtime runs commands")
@pytest.mark.parametrize("runtime", _runtimes())
def test_a_bundled_task_is_solved_by_applying_its_gold_patch_with_the_tools(runtime: str) -> None:
    env = gym.make("SWE-v0", runtime=runtime, allow_local=runtime == "local")
    _, info = env.reset(seed=3)
    task = env.unwrapped._by_id[info["task_id"]]
    created = env.step(
        json.dumps(
            {
                "name": "str_replace_editor",
                "arguments": {
                    "command": "create",
                    "path": "/workspace/fix.diff",
                    "file_text": task.patch,
                },
            }
        )
    )[0]
    assert created == "File created successfully at: /workspace/fix.diff"
    assert "exit code 0" in env.step(bash("git apply fix.diff && rm fix.diff"))[0]
    *_, reward, terminated, _, info = env.step(FINISH)
    assert (reward, terminated, info["stop_reason"]) == (1.0, True, "solved")
    assert set(info["grading"]["fail_to_pass"]) == set(task.FAIL_TO_PASS)
    env.close()


@pytest.mark.slow
@pytest.mark.skipif(_DOCKER_REASON is not None, reason=str(_DOCKER_REASON))
def test_eight_docker_episodes_at_once_lose_no_command_output() -> None:
    """On a busy daemon a command can finish before its last output reaches the reader; that
    output (a diff, a test report) must still arrive: every concurrent gold fix is resolved."""
    from concurrent.futures import ThreadPoolExecutor

    def episode(index: int) -> tuple[float, str]:
        env = SWEEnv(runtime="docker")
        try:
            _, info = env.reset(seed=index)
            task = env._by_id[info["task_id"]]
            for command in ("ls -la", "git log --oneline", "grep -rn 'def ' --include=*.py ."):
                env.step(bash(command))
            create = {"command": "create", "path": "/workspace/fix.diff", "file_text": task.patch}
            env.step(json.dumps({"name": "str_replace_editor", "arguments": create}))
            env.step(bash("git apply fix.diff && rm fix.diff"))
            *_, reward, _terminated, _truncated, info = env.step(FINISH)
            return reward, str(info.get("grading", {}).get("grading_error"))
        finally:
            env.close()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(episode, range(16)))
    assert results == [(1.0, "None")] * 16
