"""The phrasing of ImageEdit instructions, and resolving it against a scene with the knowledge
table (what the oracle reasoner does).

An instruction is one of :data:`TEMPLATES`, whose slots are filled with phrases:

- ``{ref}`` / ``{ref2}``, one object: explicit (``the banana``), a riddle (``the fruit that keeps
  the doctor away``), or facts (``the thing that would sink in water``, ``the thing that you
  could eat and would float in water``);
- ``{colour}``: a colour name, ``the colour of snow``, ``the colour of a ripe lemon`` or
  ``the same colour as {ref}``;
- ``{size}``: ``small``, ``medium-sized`` or ``large``;
- ``{place}``: a corner (``the top-left corner``) or ``the empty cell directly left of {ref}``;
- ``{need}``: a situation that calls for a kind of object (``It is raining and I have to go
  out.``);
- ``{intent}``: a goal that implies which objects must go (``My guest tonight is vegan; take
  away whatever they cannot eat.``) or be changed.

:func:`resolve` tries every template and every way of cutting the instruction into its slots,
and returns the edit program of the first reading whose every phrase resolves (a referent must
pick out exactly one object).

Example:
    >>> from arenagym.envs.imageedit.scene import SceneObject
    >>> scene = (
    ...     SceneObject(0, "apple", "green", "medium", 0, 0, "organic"),
    ...     SceneObject(1, "stone", "grey", "small", 1, 0, "stone"),
    ... )
    >>> sink = "Paint the thing that would sink in water the colour of snow."
    >>> [op.as_json() for op in resolve(sink, scene)]
    [{'op': 'recolour', 'id': 1, 'colour': 'white'}]
    >>> ripe = "Make the fruit that keeps the doctor away look ripe."
    >>> [op.as_json() for op in resolve(ripe, scene)]
    [{'op': 'recolour', 'id': 0, 'colour': 'red'}]
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from arenagym.envs.imageedit.knowledge import COLOUR_OF, COLOURS, KINDS, SIZES, fact
from arenagym.envs.imageedit.program import Operation
from arenagym.envs.imageedit.scene import COLUMNS, CORNERS, ROWS, Scene, SceneObject

__all__ = [
    "CLAUSES",
    "DIRECTIONS",
    "INTENT_REMOVE",
    "RIPEN_ALL",
    "SIZE_WORDS",
    "TEMPLATES",
    "resolve",
]

#: Fact name -> the clause that states it ("the thing that <clause>").
CLAUSES: dict[str, str] = {
    "edible": "you could eat",
    "inedible": "you could not eat",
    "floats": "would float in water",
    "sinks": "would sink in water",
    "vegetarian_avoids": "a vegetarian would not eat",
    "vegan_avoids": "a vegan would not eat",
    "melts": "would melt on a hot summer day",
    "fruit": "is a fruit",
    "winter": "you would mostly see in winter",
    "summer": "you would mostly see in summer",
}
#: Goals that imply removing everything a fact holds for.
INTENT_REMOVE: dict[str, str] = {
    "My guest tonight is vegetarian; take away whatever they cannot eat.": "vegetarian_avoids",
    "My guest tonight is vegan; take away whatever they cannot eat.": "vegan_avoids",
    "I am about to tip everything here into a tub of water; take out whatever would end up "
    "at the bottom.": "sinks",
    "All of this will sit in the hot sun all afternoon; take away whatever would be ruined "
    "by melting.": "melts",
}
#: The goal that implies ripening every unripe fruit.
RIPEN_ALL = "I only eat ripe fruit and I want to eat all the fruit here today; make it all edible."
#: Size words in instructions.
SIZE_WORDS: dict[str, str] = {"small": "small", "medium-sized": "medium", "large": "large"}
#: "the empty cell directly <direction> <ref>" -> the step from the referent's cell.
DIRECTIONS: dict[str, tuple[int, int]] = {
    "left of": (-1, 0),
    "right of": (1, 0),
    "above": (0, -1),
    "below": (0, 1),
}
#: Template name -> its text; the name says which operation it asks for.
TEMPLATES: dict[str, str] = {
    "recolour": "Paint {ref} {colour}.",
    "ripen": "Make {ref} look ripe.",
    "resize": "Make {ref} {size}.",
    "remove": "Remove {ref}.",
    "move": "Move {ref} to {place}.",
    "add": "{need} Add what I need: a {size}, {colour} one in {place}.",
    "remove_all": "{intent}",
    "ripen_all": "{intent}",
}
_SLOT = re.compile(r"\{(\w+)\}")
_SAME = "the same colour as "
_COLOUR_OF = "the colour of "
_RIPE = "the colour of a ripe "
_EMPTY = "the empty cell directly "


# ------------------------------------------------------------------------ referent phrases
def explicit(kind: str) -> str:
    """``the <kind>``."""
    return f"the {KINDS[kind].label}"


def by_facts(*names: str) -> str:
    """``the thing that <clause> [and <clause>]``."""
    return "the thing that " + " and ".join(CLAUSES[n] for n in names)


def referents(phrase: str, scene: Scene) -> list[SceneObject]:
    """The objects of ``scene`` that ``phrase`` describes (``[]``: none, or not a referent)."""
    for kind in KINDS.values():
        if phrase in (f"the {kind.label}", kind.riddle):
            return [o for o in scene if o.kind == kind.name]
    if phrase.startswith("the thing that "):
        clauses = phrase.removeprefix("the thing that ").split(" and ")
        names = [n for c in clauses for n, text in CLAUSES.items() if text == c]
        if len(names) != len(clauses):
            return []
        return [o for o in scene if all(fact(o.kind, n) for n in names)]
    return []


def _one(phrase: str, scene: Scene) -> SceneObject | None:
    found = referents(phrase, scene)
    return found[0] if len(found) == 1 else None


def colour_value(phrase: str, scene: Scene) -> str | None:
    """The colour ``phrase`` names, or ``None``."""
    if phrase in COLOURS:
        return phrase
    if phrase.startswith(_SAME):
        other = _one(phrase.removeprefix(_SAME), scene)
        return None if other is None else other.colour
    if phrase.startswith(_RIPE):
        label = phrase.removeprefix(_RIPE)
        kinds = [k for k in KINDS.values() if k.label == label and k.ripe_colour]
        return kinds[0].ripe_colour if kinds else None
    if phrase.startswith(_COLOUR_OF):
        return COLOUR_OF.get(phrase.removeprefix(_COLOUR_OF))
    return None


def place_value(phrase: str, scene: Scene) -> tuple[int, int] | None:
    """The cell ``phrase`` names, or ``None``."""
    if phrase in CORNERS:
        return CORNERS[phrase]
    if phrase.startswith(_EMPTY):
        rest = phrase.removeprefix(_EMPTY)
        for direction, (dx, dy) in DIRECTIONS.items():
            if rest.startswith(direction + " "):
                anchor = _one(rest.removeprefix(direction + " "), scene)
                if anchor is None:
                    return None
                x, y = anchor.x + dx, anchor.y + dy
                inside = 0 <= x < COLUMNS and 0 <= y < ROWS
                return (x, y) if inside else None
    return None


def need_kind(phrase: str) -> str | None:
    """The kind of object the situation ``phrase`` calls for, or ``None``."""
    kinds = [k.name for k in KINDS.values() if k.need and k.need == phrase]
    return kinds[0] if kinds else None


# ------------------------------------------------------------------------------ parsing
def _readings(template: str, text: str) -> Iterator[dict[str, str]]:
    """Every way of cutting ``text`` into the slots of ``template`` (literal parts must match)."""
    parts = _SLOT.split(template)  # literal, slot, literal, slot, ..., literal
    literals, slots = parts[0::2], parts[1::2]

    def walk(position: int, index: int, filled: dict[str, str]) -> Iterator[dict[str, str]]:
        literal = literals[index]
        if not text.startswith(literal, position):
            return
        position += len(literal)
        if index == len(slots):
            if position == len(text):
                yield filled
            return
        following = literals[index + 1]
        end = position + 1
        while (end := text.find(following, end)) != -1 if following else False:
            yield from walk(end, index + 1, {**filled, slots[index]: text[position:end]})
            end += 1
        if not following:
            yield from walk(len(text), index + 1, {**filled, slots[index]: text[position:]})

    yield from walk(0, 0, {})


def resolve(instruction: str, scene: Scene) -> list[Operation] | None:
    """The edit program ``instruction`` asks for on ``scene``, or ``None`` when no reading of it
    resolves."""
    text = " ".join(instruction.split())
    for name, template in TEMPLATES.items():
        for slots in _readings(template, text):
            program = _program(name, slots, scene)
            if program:
                return program
    return None


def _program(name: str, slots: dict[str, str], scene: Scene) -> list[Operation] | None:
    if name == "remove_all":
        fact_name = INTENT_REMOVE.get(slots["intent"])
        if fact_name is None:
            return None
        targets = [o for o in scene if fact(o.kind, fact_name)]
        return [Operation("remove", id=o.id) for o in targets] or None
    if name == "ripen_all":
        if slots["intent"] != RIPEN_ALL:
            return None
        return [
            Operation("recolour", id=o.id, colour=KINDS[o.kind].ripe_colour)
            for o in scene
            if fact(o.kind, "fruit") and o.colour == KINDS[o.kind].unripe_colour
        ] or None
    if name == "add":
        kind = need_kind(slots["need"])
        size = SIZE_WORDS.get(slots["size"])
        cell = place_value(slots["place"], scene)
        colour = colour_value(slots["colour"], scene)
        if None in (kind, size, cell, colour):
            return None
        return [Operation("add", kind=kind, colour=colour, size=size, cell=cell)]
    target = _one(slots["ref"], scene)
    if target is None:
        return None
    if name == "remove":
        return [Operation("remove", id=target.id)]
    if name == "ripen":
        ripe = KINDS[target.kind].ripe_colour
        return [Operation("recolour", id=target.id, colour=ripe)] if ripe else None
    if name == "recolour":
        colour = colour_value(slots["colour"], scene)
        return [Operation("recolour", id=target.id, colour=colour)] if colour else None
    if name == "resize":
        size = SIZE_WORDS.get(slots["size"])
        return [Operation("resize", id=target.id, size=size)] if size in SIZES else None
    cell = place_value(slots["place"], scene)
    return [Operation("move", id=target.id, cell=cell)] if cell else None
