"""The verl adapter (arenagym.envs.integrations.verl).

verl cannot live in this venv (it pins transformers <5.11), so the tests here cover what runs
without it (dataset rows, parquet, the agent-loop YAML, input validation, the missing-verl error),
and one test runs the conformance suite (verl_conformance.py: verl's own dataset, registry and
AgentLoopWorker driving Math and TextArena episodes) in .venv-verl, which scripts/verl-venv builds.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arenagym.envs.integrations import verl as adapter
from arenagym.envs.integrations.session import EpisodeRef, TextSession

ROOT = Path(__file__).resolve().parents[3]
VERL_PYTHON = ROOT / ".venv-verl" / "bin" / "python"


def test_rows_follow_verls_dataset_format_and_rebuild_their_episode() -> None:
    rows = adapter.verl_rows("TextArena/Nim-v0", [0, 5], start_index=10, split="test")
    rows += adapter.verl_rows("Math-v0", [2], {"difficulty": 2}, data_source="math")
    assert [r["extra_info"]["index"] for r in rows] == [10, 11, 0]
    assert [r["data_source"] for r in rows] == ["arenagym/TextArena/Nim-v0"] * 2 + ["math"]
    assert {r["agent_name"] for r in rows} == {adapter.AGENT_NAME}
    for row in rows:
        assert set(row) == {
            "data_source",
            "prompt",
            "ability",
            "reward_model",
            "extra_info",
            "agent_name",
        }
        ref = adapter.episode_ref(row["extra_info"])
        with TextSession(ref) as session:
            assert session.messages == row["prompt"]


def test_parquet_round_trip_keeps_one_schema_for_different_envs(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    rows = adapter.verl_rows("Math-v0", [1], {"difficulty": 1})
    rows += adapter.verl_rows("TextArena/TicTacToe-v0", [4], start_index=1)
    path = adapter.write_parquet(rows, tmp_path / "sub" / "train.parquet")
    back = pq.read_table(path).to_pylist()
    assert back == rows
    assert [adapter.episode_ref(r["extra_info"]) for r in back] == [
        EpisodeRef("Math-v0", {"difficulty": 1}, 1),
        EpisodeRef("TextArena/TicTacToe-v0", {}, 4),
    ]
    with pytest.raises(ValueError, match="rows"):
        adapter.write_parquet([], tmp_path / "empty.parquet")


def test_agent_loop_yaml_names_the_class_and_checks_its_arguments(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    path = adapter.write_agent_loop_config(tmp_path / "loops.yaml", "games", max_turns=8)
    assert yaml.safe_load(path.read_text()) == [
        {
            "name": "games",
            "_target_": "arenagym.envs.integrations.verl.ArenaGymAgentLoop",
            "max_turns": 8,
        }
    ]
    with pytest.raises(ValueError, match="max_turns"):
        adapter.agent_loop_config(max_turns=0)
    with pytest.raises(ValueError, match="init_kwargs"):
        adapter.agent_loop_config(tools=["x"])
    with pytest.raises(ValueError, match="name"):
        adapter.agent_loop_config("")


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.dictionaries(
            st.sampled_from(["env_id", "env_kwargs", "seed", "index"]),
            st.one_of(
                st.none(),
                st.integers(-3, 3),
                st.text(max_size=8),
                st.booleans(),
                st.sampled_from(["Math-v0", "{}", '{"difficulty": 1}', "[1]", "{bad"]),
                st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
            ),
        ),
    )
)
def test_extra_info_is_validated_field_by_field(extra_info: Any) -> None:
    try:
        ref = adapter.episode_ref(extra_info)
    except ValueError as error:
        assert str(error).startswith("extra_info")
    else:
        assert ref.env_id == extra_info["env_id"]
        assert ref.seed is None or ref.seed >= 0


@pytest.mark.skipif(
    importlib.util.find_spec("verl") is not None, reason="verl is installed in this venv"
)
def test_without_verl_the_agent_loop_says_how_to_get_it() -> None:
    with pytest.raises(ImportError, match="scripts/verl-venv"):
        adapter.ArenaGymAgentLoop  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        adapter.nothing  # type: ignore[attr-defined]  # noqa: B018


@pytest.mark.slow
@pytest.mark.skipif(
    not VERL_PYTHON.exists(), reason="no .venv-verl: run scripts/verl-venv to build verl's venv"
)
def test_conformance_with_installed_verl() -> None:
    """verl_conformance.py in .venv-verl: verl's RLHFDataset, registry and AgentLoopWorker."""
    command = [str(VERL_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "tests/envs/integrations/verl_conformance.py"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    sys.stdout.write(done.stdout[-3000:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary
