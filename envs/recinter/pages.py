"""The text form of a recommendation page, and reading it back (for agents that act on text).

:func:`render_page` writes what an LLM recommender sees; :func:`parse_page` reads the same text
into a :class:`~arenagym.envs.recinter.simulator.Page`, so the classic baselines act on exactly
the observation an LLM gets (nothing hidden is passed on the side).

Example:
    >>> from arenagym.envs.recinter.simulator import World, WorldConfig
    >>> world = World(WorldConfig(n_users=20, n_items=30, n_merchants=4), seed=1)
    >>> page = world.page(3, world.sample_candidates())
    >>> parsed = parse_page(render_page(world, page, header="Round 1"))
    >>> parsed.user, list(parsed.candidates) == list(page.candidates)
    (3, True)
    >>> bool(np.allclose(parsed.popularity, page.popularity, atol=0.01))
    True
"""

from __future__ import annotations

import re

import numpy as np

from arenagym.envs.recinter.profile import compute_profile
from arenagym.envs.recinter.simulator import Page, World
from arenagym.envs.recinter.text import SCENARIOS, item_label, user_label

#: The line that the upper-bound setting (``RecInter-v0(reveal_utilities=True)``) adds to a page.
UTILITIES_PREFIX = "[upper bound: reveal_utilities] true utilities: "
_ID = re.compile(r"\bi(\d{1,5})\b")
_ROW = re.compile(
    r"^i(\d+) \| (\S+) \| (\S+) \| (\$+) \| ([\d.]+) \((\d+)\) \| (\d+) \| (\d+) \| "
    r"([+-][\d.]+) \| ([\d.]+) \|"
)
_USER = re.compile(r"User u(\d+)")
_HISTORY = re.compile(r"^Recent history: (.*)$", re.MULTILINE)
TABLE_HEADER = (
    "id | category | brand | price | rating (n) | sales | likes | sentiment | popularity | tags"
)


def item_ids(text: str) -> list[int]:
    """Every item id (``i012``) written in ``text``, in order, repeats kept."""
    return [int(match) for match in _ID.findall(text)]


def render_history(world: World, user: int, length: int = 8) -> str:
    """The user's last ``length`` clicks: ``i012 (books, bought, rated 4)``."""
    entries = []
    for h in world.history[user][-length:]:
        what = "bought" if h.purchased else "liked" if h.liked else "clicked"
        rated = f", rated {h.rating}" if h.rating is not None else ""
        entries.append(f"{item_label(h.item)} ({world.categories[world.item_category[h.item]]}, "
                       f"{what}{rated})")
    return "; ".join(entries) if entries else "none"


def render_candidates(world: World, page: Page) -> str:
    """The candidate table, one row per item with its live attributes."""
    rows = [TABLE_HEADER]
    for j, item in enumerate(page.candidates):
        tags = ", ".join(world.item_tags[item])
        rows.append(
            f"{item_label(int(item))} | {world.categories[page.category[j]]} | "
            f"{world.merchant_names[page.merchant[j]]} | {'$' * int(page.price[j])} | "
            f"{page.rating[j]:.2f} ({page.n_ratings[j]}) | {page.sales[j]} | {page.likes[j]} | "
            f"{page.sentiment[j]:+.2f} | {page.popularity[j]:.2f} | "
            f"{SCENARIOS[world.item_scenario[item]]}; {tags}"
        )
    return "\n".join(rows)


def render_page(world: World, page: Page, header: str, slate_size: int | None = None) -> str:
    """The whole page: header, user profile, recent history, candidates, the instruction."""
    review_texts = {r.review_id: r.text for r in world.reviews}
    profile = compute_profile(world.history[page.user], world.categories, world.item_category,
                              review_texts)
    k = slate_size or world.config.slate_size
    example = ", ".join(item_label(int(i)) for i in page.candidates[:k])
    lines = [
        f"{header}. User {user_label(page.user)}.",
        f"Profile: {profile.text()}",
        f"Recent history: {render_history(world, page.user)}",
        "Candidates:",
        render_candidates(world, page),
        f"Rank {k} of these ids, best first, e.g.: {example}",
    ]
    if page.oracle_utility is not None:
        values = ", ".join(
            f"{item_label(int(i))}={u:.4f}"
            for i, u in zip(page.candidates, page.oracle_utility, strict=True)
        )
        lines.append(UTILITIES_PREFIX + values)
    return "\n".join(lines)


def parse_page(text: str) -> Page | None:
    """The last page in ``text`` read back into a :class:`Page` (``None`` if there is none).

    Category, merchant and price come back as small integers local to the page (their order of
    first appearance), which is all a ranking policy needs.
    """
    start = text.rfind(TABLE_HEADER)
    if start < 0:
        return None
    head, table = text[:start], text[start:]
    user_match = list(_USER.finditer(head))
    history_match = list(_HISTORY.finditer(head))
    rows = [m for line in table.splitlines() if (m := _ROW.match(line))]
    if not rows:
        return None
    categories: dict[str, int] = {}
    merchants: dict[str, int] = {}
    history = item_ids(history_match[-1].group(1)) if history_match else []
    purchased = [
        int(m.group(1))
        for m in re.finditer(r"i(\d+) \([^,]+, bought", history_match[-1].group(1))
    ] if history_match else []
    oracle = None
    oracle_at = text.rfind(UTILITIES_PREFIX)
    if oracle_at > start:
        values = dict(
            (int(i), float(u))
            for i, u in re.findall(r"i(\d+)=(-?[\d.]+)", text[oracle_at:].splitlines()[0])
        )
        oracle = np.array([values.get(int(m.group(1)), 0.0) for m in rows])
    return Page(
        round=0,
        user=int(user_match[-1].group(1)) if user_match else -1,
        history=tuple(history),
        history_purchased=tuple(purchased),
        candidates=np.array([int(m.group(1)) for m in rows]),
        category=np.array([categories.setdefault(m.group(2), len(categories)) for m in rows]),
        merchant=np.array([merchants.setdefault(m.group(3), len(merchants)) for m in rows]),
        price=np.array([len(m.group(4)) for m in rows]),
        rating=np.array([float(m.group(5)) for m in rows]),
        n_ratings=np.array([int(m.group(6)) for m in rows]),
        sales=np.array([int(m.group(7)) for m in rows]),
        likes=np.array([int(m.group(8)) for m in rows]),
        sentiment=np.array([float(m.group(9)) for m in rows]),
        popularity=np.array([float(m.group(10)) for m in rows]),
        oracle_utility=oracle,
    )
