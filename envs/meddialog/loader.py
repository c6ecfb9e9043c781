"""Load MedDG/KaMed-format dialogues from JSON or JSONL (never unpickles).

MedDG releases a pickle of a list of dialogues, each a list of turns
``{"id": "Patients" | "Doctor", "Sentence": str, "Symptom": [...], "Medicine": [...],
"Test": [...], "Attribute": [...], "Disease": [...]}``. Convert it once with
``json.dump(pickle.load(open("test.pk", "rb")), open("test.json", "w"), ensure_ascii=False)``
(only for a file you trust), then load the JSON here (one list of dialogues) or JSONL (one
dialogue per line). Every problem raises :class:`DialogueFormatError` naming the file, the line
(JSONL), the dialogue index, the turn and the field.

Example:
    >>> import json, tempfile
    >>> turns = [{"id": "Patients", "Sentence": "胃疼", "Symptom": ["胃痛"]},
    ...          {"id": "Doctor", "Sentence": "多久了？", "Attribute": ["时长"]}]
    >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    ...     json.dump([turns], f, ensure_ascii=False)
    >>> dialogues = load_dialogues(f.name)
    >>> dialogues[0][1].speaker, dialogues[0][1].entities
    ('doctor', ('时长',))
    >>> pairs = response_pairs(dialogues)
    >>> pairs[0][0][-1].text, pairs[0][1].text
    ('胃疼', '多久了？')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from arenagym.envs.meddialog.dialogues import Utterance

#: MedDG's entity fields, in its order (KaMed files may omit them).
ENTITY_FIELDS: tuple[str, ...] = ("Symptom", "Medicine", "Test", "Attribute", "Disease")
_SPEAKERS = {"Patients": "patient", "Patient": "patient", "Doctor": "doctor"}


class DialogueFormatError(ValueError):
    """A MedDG/KaMed file that cannot be used; the message says where and what."""


def load_dialogues(path: str | Path) -> list[list[Utterance]]:
    """The dialogues of a ``.json`` (a list) or ``.jsonl`` (one dialogue per line) file."""
    path = Path(path)
    if path.suffix in (".pk", ".pkl", ".pickle"):
        raise DialogueFormatError(
            f"{path}: pickles are not loaded (unpickling can run code); convert a trusted file "
            "to JSON first (see the module docstring)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DialogueFormatError(f"{path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise DialogueFormatError(f"{path}: not UTF-8 text ({error.reason})") from None
    raw: list[tuple[str, Any]] = []
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                raw.append((f"{path}: line {number}", _json(line, f"{path}: line {number}")))
    else:
        data = _json(text, str(path))
        if not isinstance(data, list):
            raise DialogueFormatError(f"{path}: the top level must be a list of dialogues")
        raw = [(str(path), item) for item in data]
    return [_dialogue(item, where, index) for index, (where, item) in enumerate(raw)]


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DialogueFormatError(
            f"{where}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    except RecursionError:
        raise DialogueFormatError(
            f"{where}: the JSON is nested too deeply to read (a dialogue is a list of turns)"
        ) from None
    except ValueError as error:  # e.g. a number too long to read
        raise DialogueFormatError(f"{where}: not valid JSON ({error})") from None


def _dialogue(item: Any, where: str, index: int) -> list[Utterance]:
    place = f"{where}: dialogue {index}"
    if not isinstance(item, list) or not item:
        raise DialogueFormatError(f"{place}: must be a non-empty list of turns")
    turns = []
    for number, turn in enumerate(item):
        at = f"{place}, turn {number}"
        if not isinstance(turn, dict):
            raise DialogueFormatError(f"{at}: must be an object")
        speaker = turn.get("id")
        if speaker not in _SPEAKERS:
            raise DialogueFormatError(
                f"{at}: field 'id' must be 'Patients' or 'Doctor', got {speaker!r}"
            )
        sentence = turn.get("Sentence")
        if not isinstance(sentence, str):
            raise DialogueFormatError(f"{at}: field 'Sentence' must be a string")
        entities: list[str] = []
        for name in ENTITY_FIELDS:
            values = turn.get(name, [])
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise DialogueFormatError(f"{at}: field {name!r} must be a list of strings")
            entities += [v for v in values if v not in entities]
        turns.append(Utterance(_SPEAKERS[speaker], sentence, (), tuple(entities)))
    return turns


def response_pairs(
    dialogues: list[list[Utterance]],
) -> list[tuple[list[Utterance], Utterance]]:
    """Every doctor turn with the history before it (MedDG's next-turn samples)."""
    return [
        (dialogue[:index], turn)
        for dialogue in dialogues
        for index, turn in enumerate(dialogue)
        if turn.speaker == "doctor" and index > 0
    ]
