"""The curated world-knowledge table of ImageEdit: what each kind of object is, and facts about it.

Every fact here is common knowledge that an instruction may rely on without stating it: what is
edible, what floats or sinks in water, what a vegetarian or a vegan avoids, what melts on a hot
day, which season a thing belongs to, what colour a fruit turns when ripe, what a thing is for,
and the colours of familiar things ("the colour of the sky"). A fact is ``None`` where it is not
clear-cut (does a carrot float?); instructions only ever rely on facts that are set, so an agent
with ordinary world knowledge can resolve every instruction.

Example:
    >>> KINDS["apple"].ripe_colour, KINDS["apple"].floats, fact("sausage", "vegetarian_avoids")
    ('red', True, True)
    >>> COLOUR_OF["the sky on a clear day"]
    'blue'
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COLOURS",
    "COLOUR_OF",
    "FACTS",
    "KINDS",
    "MATERIALS",
    "SIZES",
    "Kind",
    "fact",
]

#: The colour palette: every colour an object can have, with its RGB value in renderings.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (245, 215, 40),
    "green": (60, 170, 60),
    "blue": (50, 100, 220),
    "purple": (140, 60, 180),
    "pink": (245, 150, 190),
    "brown": (130, 80, 40),
    "black": (30, 30, 30),
    "white": (250, 250, 250),
    "grey": (140, 140, 140),
}
#: Object sizes, smallest first.
SIZES: tuple[str, ...] = ("small", "medium", "large")
#: Materials (shown in the scene, drawn as the outline; never edited).
MATERIALS: tuple[str, ...] = ("organic", "wood", "metal", "glass", "plastic", "fabric", "stone")


@dataclass(frozen=True)
class Kind:
    """One kind of object and what everybody knows about it.

    Attributes:
        name: the identifier used in programs (``"ice_cube"``); :attr:`label` is the words.
        category: ``fruit``, ``vegetable``, ``meat``, ``dairy``, ``object``, ``clothing`` or
            ``plant``.
        shape: how it is drawn (see :mod:`~arenagym.envs.imageedit.render`).
        colours: the colours it plausibly has (its first is the most typical).
        material: what it is made of.
        edible: whether people eat it.
        floats: whether it floats in water (``None``: not clear-cut).
        diet: for food, ``"plant"``, ``"meat"`` or ``"animal"`` (an animal product that is not
            meat); ``None`` for things that are not food or whose diet is not clear-cut.
        melts: whether it melts on a hot summer day (``None``: not clear-cut).
        season: the season it belongs to, if any.
        ripe_colour: for fruit that ripens visibly, its colour when ripe...
        unripe_colour: ...and before.
        riddle: a description that picks it out by a fact about it ("the fruit that keeps the
            doctor away").
        need: a situation in which one needs it ("It is raining and I have to go out."), if any.
    """

    name: str
    category: str
    shape: str
    colours: tuple[str, ...]
    material: str
    edible: bool
    floats: bool | None = None
    diet: str | None = None
    melts: bool | None = None
    season: str | None = None
    ripe_colour: str | None = None
    unripe_colour: str | None = None
    riddle: str = ""
    need: str = ""

    @property
    def label(self) -> str:
        """The kind's name in words (``"ice cube"``)."""
        return self.name.replace("_", " ")


_ALL = tuple(COLOURS)

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("apple", "fruit", "circle", ("red", "green"), "organic", True, floats=True,
             diet="plant", season="autumn", ripe_colour="red", unripe_colour="green",
             riddle="the fruit that keeps the doctor away"),
        Kind("banana", "fruit", "crescent", ("yellow", "green"), "organic", True, floats=True,
             diet="plant", ripe_colour="yellow", unripe_colour="green",
             riddle="the fruit that monkeys are famous for loving"),
        Kind("lemon", "fruit", "ellipse", ("yellow", "green"), "organic", True, floats=True,
             diet="plant", ripe_colour="yellow", unripe_colour="green",
             riddle="the sour fruit used to make lemonade"),
        Kind("strawberry", "fruit", "heart", ("red", "green"), "organic", True, diet="plant",
             season="summer", ripe_colour="red", unripe_colour="green",
             riddle="the red berry with its seeds on the outside"),
        Kind("pumpkin", "fruit", "pumpkin", ("orange", "green"), "organic", True, floats=True,
             diet="plant", season="autumn", ripe_colour="orange", unripe_colour="green",
             riddle="the thing people carve into lanterns at Halloween"),
        Kind("grapes", "fruit", "cluster", ("purple", "green"), "organic", True, diet="plant",
             ripe_colour="purple", unripe_colour="green",
             riddle="the fruit that wine is made from"),
        Kind("carrot", "vegetable", "triangle", ("orange",), "organic", True, diet="plant",
             riddle="the vegetable rabbits are said to love"),
        Kind("broccoli", "vegetable", "tree", ("green",), "organic", True, diet="plant",
             riddle="the vegetable that looks like a tiny tree"),
        Kind("potato", "vegetable", "blob", ("brown",), "organic", True, floats=False,
             diet="plant", riddle="the vegetable that chips are made from"),
        Kind("sausage", "meat", "capsule", ("brown", "red", "pink"), "organic", True,
             diet="meat", riddle="the food that goes in a hot dog bun"),
        Kind("fish", "meat", "fish", ("grey", "blue", "orange"), "organic", True, diet="meat",
             riddle="the food that is served with chips in a British chippy"),
        Kind("egg", "dairy", "egg", ("white", "brown"), "organic", True, floats=False,
             diet="animal", riddle="the thing a hen lays"),
        Kind("cheese", "dairy", "wedge", ("yellow", "orange"), "organic", True, diet="animal",
             riddle="the food that mice are said to love"),
        Kind("stone", "object", "blob", ("grey", "black", "white"), "stone", False,
             floats=False, melts=False, riddle="the thing you would skip across a pond"),
        Kind("coin", "object", "disc", ("yellow", "grey"), "metal", False, floats=False,
             melts=False, riddle="the thing you would throw into a wishing well"),
        Kind("key", "object", "key", ("grey", "yellow"), "metal", False, floats=False,
             melts=False, riddle="the thing that opens a lock", need="I have locked myself out."),
        Kind("ball", "object", "circle", _ALL, "plastic", False, floats=True,
             melts=False, riddle="the thing you kick in football"),
        Kind("cork", "object", "cylinder", ("brown",), "wood", False, floats=True,
             melts=False, riddle="the thing that stops a wine bottle"),
        Kind("ice_cube", "object", "square", ("white", "blue"), "glass", False, floats=True,
             melts=True, riddle="the frozen thing that cools a drink"),
        Kind("snowman", "object", "snowman", ("white",), "organic", False, melts=True,
             season="winter", riddle="the figure children build in the snow"),
        Kind("candle", "object", "candle", ("white", "red", "yellow"), "organic", False,
             melts=True, riddle="the thing you light when the power goes out",
             need="The power has gone out and it is getting dark."),
        Kind("cup", "object", "cup", _ALL, "glass", False, melts=False,
             riddle="the thing you drink tea from", need="I am thirsty and want some tea."),
        Kind("umbrella", "object", "umbrella", _ALL, "fabric", False, melts=False,
             riddle="the thing that keeps you dry in the rain",
             need="It is raining and I have to go out."),
        Kind("sun_hat", "clothing", "hat", _ALL, "fabric", False, melts=False, season="summer",
             riddle="the thing that shades your head at the beach",
             need="I am going to the beach on a sunny day."),
        Kind("mitten", "clothing", "mitten", _ALL, "fabric", False, melts=False,
             season="winter", riddle="the thing that keeps your hand warm in the snow",
             need="My hands are freezing on the way to school."),
        Kind("leaf", "plant", "leaf", ("green", "orange", "red", "brown"), "organic", False,
             floats=True, season="autumn", riddle="the thing that falls from trees in autumn"),
    )
}  # fmt: skip

#: The colours of familiar things, for instructions that name a colour through them.
COLOUR_OF: dict[str, str] = {
    "the sky on a clear day": "blue",
    "fresh grass": "green",
    "snow": "white",
    "coal": "black",
    "the sun in a child's drawing": "yellow",
    "a flamingo": "pink",
    "chocolate": "brown",
    "lavender": "purple",
    "a fire engine": "red",
    "an elephant": "grey",
    "a tangerine": "orange",
    "the sea in a postcard": "blue",
    "a lime": "green",
    "milk": "white",
}


def _vegetarian_avoids(kind: Kind) -> bool | None:
    if not kind.edible:
        return False
    return None if kind.diet is None else kind.diet == "meat"


def _vegan_avoids(kind: Kind) -> bool | None:
    if not kind.edible:
        return False
    return None if kind.diet is None else kind.diet in ("meat", "animal")


def _melts(kind: Kind) -> bool | None:
    if kind.melts is not None:
        return kind.melts
    return False if kind.category in ("fruit", "vegetable", "meat", "plant") else None


#: The yes/no facts instructions may rely on, by name: kind -> True, False or None (unclear).
FACTS = {
    "edible": lambda k: k.edible,
    "inedible": lambda k: not k.edible,
    "floats": lambda k: k.floats,
    "sinks": lambda k: None if k.floats is None else not k.floats,
    "vegetarian_avoids": _vegetarian_avoids,
    "vegan_avoids": _vegan_avoids,
    "melts": _melts,
    "fruit": lambda k: None if k.name == "pumpkin" else k.category == "fruit",  # (culinary: veg)
    "winter": lambda k: k.season == "winter",
    "summer": lambda k: k.season == "summer",
}


def fact(kind: str, name: str) -> bool | None:
    """Whether fact ``name`` (a key of :data:`FACTS`) holds for ``kind`` (``None``: unclear)."""
    return FACTS[name](KINDS[kind])
