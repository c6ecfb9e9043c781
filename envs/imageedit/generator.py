"""Generating ImageEdit triples: a scene, an instruction that needs reasoning, and its edit.

Four categories, each at difficulty 1-3 (more objects, longer chains of facts, more targets):

- ``implicit_referent``: the object is named by what it is known for, the edit is explicit.
  1: a riddle ("the fruit that keeps the doctor away"); 2: a fact that only it has among the
  objects ("the thing that would sink in water"); 3: two facts that only it has together, with
  objects that have one of them as decoys.
- ``knowledge_value``: the object is named, the new value needs knowledge. 1: "look ripe";
  2: "the colour of snow"; 3: "the colour of a ripe banana" (with an unripe banana in the scene).
- ``multi_hop``: both the object and the value need knowledge. 1: a riddle and "the colour of
  ..."; 2: a fact and a colour, or a move next to an object named by a riddle; 3: facts, and "the
  same colour as" / "the empty cell next to" another object named by a riddle.
- ``intention``: a goal implies the edit. 1: a need implies what to add ("It is raining and I
  have to go out."); 2: a guest's diet, a tub of water or the hot sun implies what to remove
  (one or two objects); 3: ripening every unripe fruit, or removing two or three objects with
  decoys, or adding with the colour and place given through other objects.

Scenes have 3-4, 5-6 and 7-8 objects at difficulty 1, 2 and 3, all of different kinds, ids in
random order. :func:`bench_triple` enumerates the bundled REditBench-like set:
:data:`BENCH_SIZE` triples, index ``i`` in category ``CATEGORIES[i % 4]`` at difficulty
``i // 4 % 3 + 1``, each from its own seed.

Example:
    >>> triple = bench_triple(0)
    >>> triple.category, triple.difficulty, len(triple.program) >= 1
    ('implicit_referent', 1, True)
    >>> bench_triple(0) == triple
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations
from typing import Any

import numpy as np

from arenagym.envs.imageedit.knowledge import COLOUR_OF, COLOURS, FACTS, KINDS, SIZES, fact
from arenagym.envs.imageedit.language import (
    CLAUSES,
    DIRECTIONS,
    INTENT_REMOVE,
    RIPEN_ALL,
    SIZE_WORDS,
    TEMPLATES,
    by_facts,
    explicit,
)
from arenagym.envs.imageedit.program import Operation, apply_program
from arenagym.envs.imageedit.scene import COLUMNS, CORNERS, ROWS, Scene, SceneObject

__all__ = ["BENCH_SIZE", "CATEGORIES", "DIFFICULTIES", "Triple", "bench_triple", "generate"]

CATEGORIES: tuple[str, ...] = ("implicit_referent", "knowledge_value", "multi_hop", "intention")
DIFFICULTIES: tuple[int, ...] = (1, 2, 3)
#: How many triples the bundled set holds (100 per category and difficulty).
BENCH_SIZE = 1200
_BENCH_SEED = 20_250_601
_OBJECTS = {1: (3, 4), 2: (5, 6), 3: (7, 8)}
#: Facts that single out an object (``the thing that ...``).
_SINGLE_FACTS = tuple(CLAUSES)
_SIZE_PHRASE = {value: word for word, value in SIZE_WORDS.items()}


@dataclass(frozen=True)
class Triple:
    """One image-instruction-edit triple with its reasoning context."""

    scene: Scene
    instruction: str
    program: tuple[Operation, ...]
    category: str
    difficulty: int
    reasoning: tuple[str, ...]

    @property
    def target_scene(self) -> Scene:
        """The scene after the edit."""
        return apply_program(self.scene, list(self.program)).scene

    @property
    def targets(self) -> frozenset[str]:
        """What the edit touches (``#id`` of existing objects, ``new:kind`` of added ones)."""
        return apply_program(self.scene, list(self.program)).touched

    def program_json(self) -> list[dict[str, Any]]:
        """The edit program as JSON operations."""
        return [op.as_json() for op in self.program]


class _Retry(Exception):
    """The random draw cannot make this kind of triple; draw again."""


def bench_triple(index: int) -> Triple:
    """Triple ``index`` (0 to ``BENCH_SIZE - 1``) of the bundled set."""
    if not 0 <= index < BENCH_SIZE:
        raise IndexError(f"bench index must be in 0..{BENCH_SIZE - 1}, got {index}")
    category = CATEGORIES[index % len(CATEGORIES)]
    difficulty = DIFFICULTIES[index // len(CATEGORIES) % len(DIFFICULTIES)]
    return generate(np.random.default_rng([_BENCH_SEED, index]), category, difficulty)


def generate(rng: np.random.Generator, category: str, difficulty: int) -> Triple:
    """A triple of ``category`` at ``difficulty``, drawn from ``rng`` (deterministic)."""
    if category not in CATEGORIES:
        raise ValueError(f"category must be one of {CATEGORIES}, got {category!r}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    builder = _BUILDERS[category]
    for _ in range(200):
        try:
            return builder(_Draw(rng, difficulty))
        except _Retry:
            continue
    raise RuntimeError(f"could not generate a {category} triple at difficulty {difficulty}")


class _Draw:
    """Random choices for one triple."""

    def __init__(self, rng: np.random.Generator, difficulty: int) -> None:
        self.rng = rng
        self.difficulty = difficulty
        low, high = _OBJECTS[difficulty]
        self.n_objects = int(rng.integers(low, high + 1))

    def pick(self, items: list[Any] | tuple[Any, ...]) -> Any:
        if not items:
            raise _Retry
        return items[int(self.rng.integers(len(items)))]

    def sample(self, items: list[str], k: int) -> list[str]:
        if len(items) < k:
            raise _Retry
        return [items[int(i)] for i in self.rng.choice(len(items), size=k, replace=False)]

    def scene(self, kinds: list[str], colours: dict[str, str] | None = None) -> Scene:
        """Objects of ``kinds`` (distinct) in random cells, sizes and (plausible) colours."""
        colours = colours or {}
        cells = [(x, y) for y in range(ROWS) for x in range(COLUMNS)]
        chosen = self.rng.choice(len(cells), size=len(kinds), replace=False)
        ids = self.rng.permutation(len(kinds))
        objects = []
        for kind, cell_index, object_id in zip(kinds, chosen, ids, strict=True):
            x, y = cells[int(cell_index)]
            colour = colours.get(kind) or self.pick(KINDS[kind].colours)
            size = self.pick(SIZES)
            objects.append(
                SceneObject(int(object_id), kind, colour, size, x, y, KINDS[kind].material)
            )
        return tuple(sorted(objects, key=lambda o: o.id))

    def others(self, exclude: list[str], k: int, pool: list[str] | None = None) -> list[str]:
        candidates = [n for n in (pool if pool is not None else KINDS) if n not in exclude]
        return self.sample(candidates, k)


def _of(scene: Scene, kind: str) -> SceneObject:
    return next(o for o in scene if o.kind == kind)


def _name(obj: SceneObject) -> str:
    return f"the {KINDS[obj.kind].label} (#{obj.id})"


def _fact_pools(names: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Kinds for which all of ``names`` hold, and kinds for which they are known not to."""
    targets, decoys = [], []
    for kind in KINDS:
        values = [fact(kind, n) for n in names]
        if all(v is True for v in values):
            targets.append(kind)
        elif None not in values:
            decoys.append(kind)
    return targets, decoys


def _triple(
    draw: _Draw,
    category: str,
    scene: Scene,
    template: str,
    slots: dict[str, str],
    program: list[Operation],
    reasoning: list[str],
) -> Triple:
    instruction = TEMPLATES[template].format(**slots)
    instruction = instruction[0].upper() + instruction[1:]
    done = "; ".join(_op_text(op, scene) for op in program)
    return Triple(
        scene,
        instruction,
        tuple(program),
        category,
        draw.difficulty,
        (*reasoning, f"Edit: {done}."),
    )


def _op_text(op: Operation, scene: Scene) -> str:
    if op.op == "add":
        assert op.cell is not None
        return f"add a {op.size} {op.colour} {op.kind} at {op.cell}"
    obj = next(o for o in scene if o.id == op.id)
    value = {"recolour": op.colour, "resize": op.size, "move": op.cell, "remove": None}[op.op]
    return f"{op.op} {_name(obj)}" + ("" if value is None else f" to {value}")


# ------------------------------------------------------------------- explicit edits
def _explicit_edit(
    draw: _Draw, scene: Scene, target: SceneObject
) -> tuple[str, dict[str, str], Operation]:
    """An edit of ``target`` whose value is stated: recolour, resize, remove or move."""
    free_corners = [name for name, cell in CORNERS.items() if cell not in {o.cell for o in scene}]
    choices = ["recolour", "resize", "remove"] + (["move"] if free_corners else [])
    op = draw.pick(choices)
    if op == "recolour":
        colour = draw.pick([c for c in COLOURS if c != target.colour])
        return "recolour", {"colour": colour}, Operation("recolour", id=target.id, colour=colour)
    if op == "resize":
        size = draw.pick([s for s in SIZES if s != target.size])
        return "resize", {"size": _SIZE_PHRASE[size]}, Operation("resize", id=target.id, size=size)
    if op == "remove":
        return "remove", {}, Operation("remove", id=target.id)
    corner = draw.pick(free_corners)
    return "move", {"place": corner}, Operation("move", id=target.id, cell=CORNERS[corner])


def _referent_by_facts(draw: _Draw, n_facts: int) -> tuple[tuple[str, ...], str, list[str]]:
    """Facts, a target kind with all of them, and decoy kinds known to lack them all together
    (with two facts: at least one decoy has each fact alone)."""
    if n_facts == 1:
        names: tuple[str, ...] = (draw.pick(_SINGLE_FACTS),)
    else:
        names = draw.pick(list(permutations(_SINGLE_FACTS, 2)))
    targets, decoys = _fact_pools(names)
    target = draw.pick(targets)
    if n_facts == 1:
        return names, target, draw.others([target], draw.n_objects - 1, decoys)
    traps = [draw.pick([d for d in decoys if fact(d, n)]) for n in names]
    if len(set(traps)) < 2:
        raise _Retry
    rest = draw.others([target, *traps], draw.n_objects - 3, decoys)
    return names, target, [*traps, *rest]


def _facts_reason(names: tuple[str, ...], obj: SceneObject) -> str:
    clauses = " and ".join(CLAUSES[n] for n in names)
    return f"Among these objects only {_name(obj)} is one that {clauses}."


# --------------------------------------------------------------------------- builders
def _implicit_referent(draw: _Draw) -> Triple:
    if draw.difficulty == 1:
        target_kind = draw.pick(list(KINDS))
        scene = draw.scene([target_kind, *draw.others([target_kind], draw.n_objects - 1)])
        target = _of(scene, target_kind)
        ref = KINDS[target_kind].riddle
        why = f"'{ref}' is {_name(target)}."
    else:
        names, target_kind, decoys = _referent_by_facts(draw, draw.difficulty - 1)
        scene = draw.scene([target_kind, *decoys])
        target = _of(scene, target_kind)
        ref = by_facts(*names)
        why = _facts_reason(names, target)
    template, slots, op = _explicit_edit(draw, scene, target)
    return _triple(draw, "implicit_referent", scene, template, {"ref": ref, **slots}, [op], [why])


def _ripe_fruits() -> list[str]:
    return [k for k in KINDS if fact(k, "fruit")]


def _knowledge_value(draw: _Draw) -> Triple:
    if draw.difficulty == 1:
        target_kind = draw.pick(_ripe_fruits())
        kind = KINDS[target_kind]
        others = draw.others([target_kind], draw.n_objects - 1)
        scene = draw.scene([target_kind, *others], {target_kind: kind.unripe_colour or ""})
        target = _of(scene, target_kind)
        op = Operation("recolour", id=target.id, colour=kind.ripe_colour)
        why = [f"A ripe {kind.label} is {kind.ripe_colour}; {_name(target)} is {target.colour}."]
        return _triple(
            draw, "knowledge_value", scene, "ripen", {"ref": explicit(target_kind)}, [op], why
        )
    if draw.difficulty == 2:
        kinds = draw.others([], draw.n_objects)
        scene = draw.scene(kinds)
        target = _of(scene, draw.pick(kinds))
        thing = draw.pick([t for t, c in COLOUR_OF.items() if c != target.colour])
        colour = COLOUR_OF[thing]
        phrase = f"the colour of {thing}"
        why = [f"{thing[0].upper()}{thing[1:]} is {colour}."]
    else:
        fruit = draw.pick(_ripe_fruits())
        ripe = KINDS[fruit].ripe_colour or ""
        kinds = [fruit, *draw.others([fruit], draw.n_objects - 1)]
        scene = draw.scene(kinds, {fruit: KINDS[fruit].unripe_colour or ""})
        target = _of(scene, draw.pick([k for k in kinds[1:] if _of(scene, k).colour != ripe]))
        colour = ripe
        phrase = f"the colour of a ripe {KINDS[fruit].label}"
        why = [f"A ripe {KINDS[fruit].label} is {ripe} (the one here, still unripe, is not)."]
    slots = {"ref": explicit(target.kind), "colour": phrase}
    op = Operation("recolour", id=target.id, colour=colour)
    return _triple(draw, "knowledge_value", scene, "recolour", slots, [op], why)


def _neighbour_cell(draw: _Draw, scene: Scene, anchor: SceneObject) -> tuple[str, tuple[int, int]]:
    taken = {o.cell for o in scene}
    options = []
    for direction, (dx, dy) in DIRECTIONS.items():
        cell = (anchor.x + dx, anchor.y + dy)
        if 0 <= cell[0] < COLUMNS and 0 <= cell[1] < ROWS and cell not in taken:
            options.append((direction, cell))
    return draw.pick(options)


def _multi_hop(draw: _Draw) -> Triple:
    if draw.difficulty == 1:
        target_kind = draw.pick(list(KINDS))
        scene = draw.scene([target_kind, *draw.others([target_kind], draw.n_objects - 1)])
        target = _of(scene, target_kind)
        ref = KINDS[target_kind].riddle
        why = [f"'{ref}' is {_name(target)}."]
        thing = draw.pick([t for t, c in COLOUR_OF.items() if c != target.colour])
        why.append(f"{thing[0].upper()}{thing[1:]} is {COLOUR_OF[thing]}.")
        op = Operation("recolour", id=target.id, colour=COLOUR_OF[thing])
        slots = {"ref": ref, "colour": f"the colour of {thing}"}
        return _triple(draw, "multi_hop", scene, "recolour", slots, [op], why)
    names, target_kind, decoys = _referent_by_facts(
        draw, 1 if draw.difficulty == 2 else draw.pick([1, 2])
    )
    scene = draw.scene([target_kind, *decoys])
    target = _of(scene, target_kind)
    ref = by_facts(*names)
    why = [_facts_reason(names, target)]
    anchor = _of(scene, draw.pick(decoys))
    anchor_ref = KINDS[anchor.kind].riddle
    if draw.pick(["colour", "place"]) == "place":
        direction, cell = _neighbour_cell(draw, scene, anchor)
        why.append(
            f"'{anchor_ref}' is {_name(anchor)}, at {anchor.cell}; {direction} it is {cell}."
        )
        slots = {"ref": ref, "place": f"the empty cell directly {direction} {anchor_ref}"}
        return _triple(
            draw,
            "multi_hop",
            scene,
            "move",
            slots,
            [Operation("move", id=target.id, cell=cell)],
            why,
        )
    if draw.difficulty == 2:
        fruit = draw.pick([k for k in _ripe_fruits() if KINDS[k].ripe_colour != target.colour])
        colour = KINDS[fruit].ripe_colour or ""
        phrase = f"the colour of a ripe {KINDS[fruit].label}"
        why.append(f"A ripe {KINDS[fruit].label} is {colour}.")
    else:
        if anchor.colour == target.colour:
            raise _Retry
        colour, phrase = anchor.colour, f"the same colour as {anchor_ref}"
        why.append(f"'{anchor_ref}' is {_name(anchor)}, which is {colour}.")
    op = Operation("recolour", id=target.id, colour=colour)
    return _triple(draw, "multi_hop", scene, "recolour", {"ref": ref, "colour": phrase}, [op], why)


def _intention(draw: _Draw) -> Triple:
    mode = "add" if draw.difficulty == 1 else "remove_all"
    if draw.difficulty == 3:
        mode = draw.pick(["ripen_all", "remove_all", "add"])
    if mode == "add":
        return _add(draw)
    if mode == "ripen_all":
        fruits = _ripe_fruits()
        targets = draw.sample(fruits, int(draw.rng.integers(2, 4)))
        ripe_decoy = draw.others(targets, 1, fruits)
        pool = [k for k in KINDS if fact(k, "fruit") is False]
        kinds = [*targets, *ripe_decoy, *draw.others([], draw.n_objects - len(targets) - 1, pool)]
        colours = {k: KINDS[k].unripe_colour or "" for k in targets}
        colours[ripe_decoy[0]] = KINDS[ripe_decoy[0]].ripe_colour or ""
        scene = draw.scene(kinds, colours)
        objs = [_of(scene, k) for k in targets]
        program = [Operation("recolour", id=o.id, colour=KINDS[o.kind].ripe_colour) for o in objs]
        why = [
            "Unripe fruit here: " + ", ".join(_name(o) for o in objs) + "; "
            f"{_name(_of(scene, ripe_decoy[0]))} is already ripe.",
            "Each becomes its ripe colour.",
        ]
        program.sort(key=lambda op: op.id or 0)
        return _triple(draw, "intention", scene, "ripen_all", {"intent": RIPEN_ALL}, program, why)
    intent = draw.pick(list(INTENT_REMOVE))
    fact_name = INTENT_REMOVE[intent]
    targets_pool, decoys = _fact_pools((fact_name,))
    n_targets = int(draw.rng.integers(1, 3) if draw.difficulty == 2 else draw.rng.integers(2, 4))
    targets = draw.sample(targets_pool, n_targets)
    kinds = [*targets, *draw.others(targets, draw.n_objects - n_targets, decoys)]
    scene = draw.scene(kinds)
    objs = sorted((_of(scene, k) for k in targets), key=lambda o: o.id)
    program = [Operation("remove", id=o.id) for o in objs]
    why = [
        f"The goal means removing everything that {CLAUSES[fact_name]}: "
        + ", ".join(_name(o) for o in objs)
        + "."
    ]
    return _triple(draw, "intention", scene, "remove_all", {"intent": intent}, program, why)


def _add(draw: _Draw) -> Triple:
    needed = draw.pick([k for k in KINDS if KINDS[k].need])
    kinds = draw.others([needed], draw.n_objects)
    scene = draw.scene(kinds)
    size = draw.pick(SIZES)
    label = KINDS[needed].label
    why = [f"'{KINDS[needed].need}' calls for {'an' if label[0] in 'aeiou' else 'a'} {label}."]
    if draw.difficulty == 1:
        free = [name for name, cell in CORNERS.items() if cell not in {o.cell for o in scene}]
        place = draw.pick(free)
        cell = CORNERS[place]
        colour = draw.pick(list(COLOURS))
        colour_phrase = colour
    else:
        anchor = _of(scene, draw.pick(kinds))
        direction, cell = _neighbour_cell(draw, scene, anchor)
        place = f"the empty cell directly {direction} {KINDS[anchor.kind].riddle}"
        thing = draw.pick(list(COLOUR_OF))
        colour, colour_phrase = COLOUR_OF[thing], f"the colour of {thing}"
        why.append(f"'{KINDS[anchor.kind].riddle}' is {_name(anchor)}; {direction} it is {cell}.")
        why.append(f"{thing[0].upper()}{thing[1:]} is {colour}.")
    slots = {
        "need": KINDS[needed].need,
        "size": _SIZE_PHRASE[size],
        "colour": colour_phrase,
        "place": place,
    }
    op = Operation("add", kind=needed, colour=colour, size=size, cell=cell)
    return _triple(draw, "intention", scene, "add", slots, [op], why)


_BUILDERS = {
    "implicit_referent": _implicit_referent,
    "knowledge_value": _knowledge_value,
    "multi_hop": _multi_hop,
    "intention": _intention,
}
assert set(FACTS) >= set(CLAUSES)
