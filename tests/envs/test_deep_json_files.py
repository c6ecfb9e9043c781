"""Every JSON file format an env reads reports a too-deep or too-long-number document as its
usual file error (naming the file and line), never a raw ``RecursionError`` or ``ValueError``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from arenagym.envs.math.problems import ProblemFileError, load_jsonl
from arenagym.envs.meddialog.knowledge import KnowledgeGraphError, load_knowledge_graph
from arenagym.envs.meddialog.loader import DialogueFormatError, load_dialogues
from arenagym.envs.swe.tasks import TaskFormatError, load_tasks

DEEP = "[" * 100_000
LONG_NUMBER = "1" * 5_000  # past Python's int-from-string digit limit


@pytest.mark.parametrize("payload", [DEEP, LONG_NUMBER], ids=["deep", "long-number"])
@pytest.mark.parametrize(
    ("name", "load", "error"),
    [
        ("problems.jsonl", load_jsonl, ProblemFileError),
        ("graph.json", load_knowledge_graph, KnowledgeGraphError),
        ("dialogues.jsonl", load_dialogues, DialogueFormatError),
        ("tasks.jsonl", load_tasks, TaskFormatError),
    ],
)
def test_a_deep_or_huge_json_document_is_a_file_error(
    tmp_path: Path,
    name: str,
    load: Callable[[Path], Any],
    error: type[Exception],
    payload: str,
) -> None:
    path = tmp_path / name
    path.write_text(payload + "\n", encoding="utf-8")
    with pytest.raises(error) as raised:
        load(path)
    assert name in str(raised.value)
