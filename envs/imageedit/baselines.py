"""Baseline agents for ImageEdit-v0: an oracle reasoner, a literal editor, and random edits.

All three read the text observation (``observation="text"``) or the ``"text"`` entry of a
``Dict`` observation, and reply with an edit program.

- :class:`OracleReasoner` resolves the instruction against the scene with the knowledge table
  (:func:`~arenagym.envs.imageedit.language.resolve`): it reads the instruction's phrasing the
  way it was written and looks up every fact, so it scores 1.0 — the ceiling, not a competitor.
- :class:`LiteralEditor` applies the surface words without reasoning: the first object whose
  kind the instruction names (else the first object), the op its verb names, the first colour,
  size or corner word it contains (else a default: the palette's next colour, the first free
  cell). It gets explicit referents right, and implicit ones, values given through knowledge
  and goals wrong.
- :class:`RandomEditor` makes one random well-formed edit of a random object: the floor.

Example:
    >>> import gymnasium as gym
    >>> import arenagym.envs
    >>> env = gym.make("ImageEdit-v0", observation="text")
    >>> prompt, info = env.reset(seed=4)
    >>> agent = OracleReasoner()
    >>> agent.reset(info["system_prompt"])
    >>> env.step(agent.act(prompt))[1]
    1.0
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

import numpy as np

from arenagym.envs.imageedit.knowledge import COLOURS, KINDS, SIZES
from arenagym.envs.imageedit.language import SIZE_WORDS, resolve
from arenagym.envs.imageedit.program import Operation
from arenagym.envs.imageedit.scene import CORNERS, Scene, SceneObject, empty_cells, parse_scene

__all__ = ["LiteralEditor", "OracleReasoner", "RandomEditor", "read_observation"]


def read_observation(observation: Any) -> tuple[str, Scene]:
    """The instruction and the scene in an ImageEdit observation (text or ``Dict``)."""
    text = observation["text"] if isinstance(observation, dict) else str(observation)
    match = re.search(r"^Instruction: (.*)$", text, re.MULTILINE)
    return (match[1].strip() if match else ""), parse_scene(text)


def _program(operations: list[Operation]) -> str:
    return json.dumps([op.as_json() for op in operations])


class OracleReasoner:
    """Resolves the instruction with the knowledge table (see the module docstring)."""

    def reset(self, system_prompt: str) -> None:
        """Nothing to remember."""

    def act(self, observation: Any) -> str:
        """The edit program the instruction asks for (the literal edit when it cannot tell)."""
        instruction, scene = read_observation(observation)
        program = resolve(instruction, scene)
        return _program(program) if program else LiteralEditor().act(observation)


def _words(text: str, phrases: list[str]) -> list[str]:
    """``phrases`` found in ``text`` as whole words, in the order they appear."""
    found = []
    for phrase in phrases:
        match = re.search(rf"\b{re.escape(phrase)}\b", text)
        if match:
            found.append((match.start(), phrase))
    return [phrase for _, phrase in sorted(found)]


class LiteralEditor:
    """Applies the instruction's surface words, with no world knowledge."""

    def reset(self, system_prompt: str) -> None:
        """Nothing to remember."""

    def act(self, observation: Any) -> str:
        """One edit built from the words of the instruction."""
        instruction, scene = read_observation(observation)
        text = instruction.lower()
        labels = {KINDS[o.kind].label: o for o in scene}
        named = [labels[label] for label in _words(text, list(labels))]
        colours = _words(text, list(COLOURS))
        sizes = [SIZE_WORDS[w] for w in _words(text, list(SIZE_WORDS))]
        corners = [CORNERS[c] for c in _words(text, list(CORNERS))]
        free = empty_cells(scene)
        cell = corners[0] if corners and corners[0] in free else (free[0] if free else None)
        if re.search(r"\badd\b", text) and cell is not None:
            mentioned = _words(text, [k.label for k in KINDS.values()])
            kind = mentioned[0].replace(" ", "_") if mentioned else next(iter(KINDS))
            size = sizes[0] if sizes else "medium"
            return _program(
                [Operation("add", kind=kind, colour=(colours or ["red"])[0], size=size, cell=cell)]
            )
        if not scene:
            return "[]"
        target = named[0] if named else min(scene, key=lambda o: o.id)
        if re.search(r"\b(remove|take away|take out|delete)\b", text):
            return _program([Operation("remove", id=target.id)])
        if re.search(r"\bmove\b", text) and cell is not None:
            return _program([Operation("move", id=target.id, cell=cell)])
        if sizes and not colours:
            return _program([Operation("resize", id=target.id, size=sizes[0])])
        colour = next((c for c in colours if c != target.colour), None)
        palette = list(COLOURS)  # no colour word: the next colour of the palette
        colour = colour or palette[(palette.index(target.colour) + 1) % len(palette)]
        return _program([Operation("recolour", id=target.id, colour=colour)])


class RandomEditor:
    """One random well-formed edit of a random object (or a random addition).

    Args:
        seed: with the observation's text, seeds each choice, so an episode's edit is
            reproducible and differs between episodes even when the runner builds a fresh agent
            per episode (``None``: fresh entropy).
    """

    def __init__(self, seed: int | None = 0) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self, system_prompt: str) -> None:
        """Nothing to remember."""

    def _pick(self, items: list[Any]) -> Any:
        return items[int(self.rng.integers(len(items)))]

    def act(self, observation: Any) -> str:
        """A random recolour, resize, move, remove or add."""
        instruction, scene = read_observation(observation)
        if self.seed is not None:
            self.rng = np.random.default_rng([self.seed, zlib.crc32(instruction.encode())])
        free = empty_cells(scene)
        ops = ["recolour", "resize", "remove"] + (["move", "add"] if free else [])
        op = self._pick(ops) if scene else "add"
        if op == "add" and free:
            kind = self._pick(list(KINDS))
            return _program(
                [
                    Operation(
                        "add",
                        kind=kind,
                        colour=self._pick(list(COLOURS)),
                        size=self._pick(list(SIZES)),
                        cell=self._pick(free),
                    )
                ]
            )
        if not scene:
            return "[]"
        target: SceneObject = self._pick(list(scene))
        if op == "recolour":
            return _program([Operation("recolour", id=target.id, colour=self._pick(list(COLOURS)))])
        if op == "resize":
            return _program([Operation("resize", id=target.id, size=self._pick(list(SIZES)))])
        if op == "move":
            return _program([Operation("move", id=target.id, cell=self._pick(free))])
        return _program([Operation("remove", id=target.id)])
