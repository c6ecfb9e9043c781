"""The stance dimensions of PrefInfer users: what each means, how responses show it, how to say it.

A user's hidden stance on a dimension is 0 (prefers the low pole), 0.5 (indifferent) or 1 (prefers
the high pole), as in AlignX's preference vectors. Twelve dimensions are about style and four
levels of content; eight are topic interests. Each dimension carries

- ``low_markers`` / ``high_markers``: the exact phrases a templated response contains when its
  feature value on the dimension is 0 / 1 (no marker: 0.5; topic dimensions are 0 or 1 only);
- ``low_words`` / ``high_words``: the phrase lexicon the lenient judge reads descriptions with;
- ``low_text`` / ``high_text``: the canonical phrase :func:`~arenagym.envs.prefinfer.judge.describe`
  writes (and the lexicon reads back).

Example:
    >>> len(DIMENSIONS) >= 16, DIMENSION_NAMES[:3]
    (True, ('verbosity', 'formality', 'technical_depth'))
    >>> DIMENSIONS[INDEX["humour"]].high_text
    'enjoys humour and jokes'
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dimension:
    """One interpretable stance dimension (see the module docstring)."""

    name: str
    topic: bool
    low_markers: tuple[str, ...]
    high_markers: tuple[str, ...]
    low_words: tuple[str, ...]
    high_words: tuple[str, ...]
    low_text: str
    high_text: str


def _style(
    name: str,
    low_markers: tuple[str, ...],
    high_markers: tuple[str, ...],
    low_words: tuple[str, ...],
    high_words: tuple[str, ...],
    low_text: str,
    high_text: str,
) -> Dimension:
    return Dimension(
        name, False, low_markers, high_markers, low_words, high_words, low_text, high_text
    )


def _topic(name: str, aside: str, words: tuple[str, ...]) -> Dimension:
    return Dimension(
        name,
        True,
        (),
        (aside,),
        (),
        words,
        f"is not interested in {words[0]}",
        f"is interested in {words[0]}",
    )


DIMENSIONS: tuple[Dimension, ...] = (
    _style(
        "verbosity",
        ("In short:",),
        ("Let me go into more detail.",),
        ("concise", "brief", "short answers", "succinct"),
        ("detailed", "thorough", "long answers", "in-depth", "elaborate", "verbose"),
        "prefers concise, brief answers",
        "prefers detailed, thorough answers",
    ),
    _style(
        "formality",
        ("Hey there!", "Honestly, mate,"),
        ("Dear reader,", "I would respectfully suggest the following."),
        ("casual", "informal", "relaxed tone", "chatty"),
        ("formal", "polite", "professional tone", "respectful"),
        "likes a casual, informal tone",
        "likes a formal, polite tone",
    ),
    _style(
        "technical_depth",
        ("In plain words,",),
        ("Technically speaking, treat it as an optimisation problem with constraints.",),
        ("plain language", "non-technical", "simple words", "layman"),
        ("technical", "jargon", "expert-level", "technical depth"),
        "wants plain language, non-technical explanations",
        "wants technical, expert-level explanations",
    ),
    _style(
        "humour",
        ("On a serious note,",),
        ("(Pun fully intended.)", "Ha, classic dilemma!"),
        ("serious", "no-nonsense"),
        ("humour", "humor", "funny", "jokes", "playful", "witty"),
        "wants a serious, no-nonsense tone",
        "enjoys humour and jokes",
    ),
    _style(
        "warmth",
        ("Facts only:",),
        ("I'm sorry you're dealing with this, and it's great that you asked.",),
        ("detached", "impersonal", "matter-of-fact", "cold"),
        ("warm", "empathetic", "empathy", "caring", "supportive"),
        "prefers a detached, matter-of-fact manner",
        "values warm, empathetic replies",
    ),
    _style(
        "optimism",
        ("Realistically, this may well not work out.",),
        ("I'm confident this will turn out great!",),
        ("pessimistic", "sceptical", "skeptical", "gloomy"),
        ("optimistic", "positive outlook", "upbeat", "encouraging"),
        "leans towards a sceptical, pessimistic outlook",
        "likes an optimistic, upbeat outlook",
    ),
    _style(
        "evidence",
        ("Going by gut feeling,",),
        ("Research suggests",),
        ("intuition", "gut feeling", "anecdotal", "personal opinion"),
        ("evidence", "research", "data", "studies", "sources"),
        "trusts intuition and gut feeling",
        "wants evidence and research",
    ),
    _style(
        "directness",
        ("It depends, and you might consider several options.",),
        ("Bottom line:",),
        ("nuanced", "hedged", "indirect", "balanced options"),
        ("direct", "straightforward", "blunt", "decisive"),
        "prefers nuanced, hedged advice",
        "prefers direct, straightforward advice",
    ),
    _style(
        "caution",
        ("Don't overthink it, just go for it.",),
        ("Be careful and double-check everything first.",),
        ("bold", "risk-taking", "adventurous"),
        ("careful", "cautious", "risk-averse", "safety", "warnings"),
        "likes bold, risk-taking advice",
        "likes careful, cautious advice",
    ),
    _style(
        "lists",
        ("after that,",),
        ("\n- ",),
        ("prose", "flowing text", "paragraphs"),
        ("lists", "bullet points", "bulleted", "structured"),
        "prefers flowing prose",
        "prefers bullet points and lists",
    ),
    _style(
        "examples",
        ("In general terms,",),
        ("For example,",),
        ("abstract", "general principles", "high-level"),
        ("examples", "concrete", "illustrations", "specific cases"),
        "prefers abstract, general principles",
        "wants concrete examples",
    ),
    _style(
        "questions",
        ("That is all there is to it.",),
        ("What have you tried so far?",),
        ("self-contained", "one-shot answers", "closed answers"),
        ("follow-up questions", "clarifying questions", "questions back"),
        "prefers self-contained, one-shot answers",
        "likes follow-up questions",
    ),
    _topic(
        "technology",
        "Side note on technology: it is a bit like debugging software.",
        ("technology", "tech", "gadgets", "software", "computers"),
    ),
    _topic(
        "cooking",
        "Side note on cooking: think of it like following a recipe.",
        ("cooking", "food", "recipes", "baking"),
    ),
    _topic(
        "fitness",
        "Side note on fitness: it is like training for a race.",
        ("fitness", "exercise", "sports", "workouts"),
    ),
    _topic(
        "finance",
        "Side note on money: budget for it like an investment.",
        ("finance", "money", "investing", "budgeting"),
    ),
    _topic(
        "travel",
        "Side note on travel: it is like planning a trip abroad.",
        ("travel", "travelling", "traveling", "trips"),
    ),
    _topic(
        "music",
        "Side note on music: it is like practising an instrument.",
        ("music", "songs", "instruments"),
    ),
    _topic(
        "science",
        "Side note on science: it is like running an experiment.",
        ("science", "physics", "astronomy"),
    ),
    _topic(
        "parenting",
        "Side note on parenting: it is like raising kids.",
        ("parenting", "children", "kids", "family life"),
    ),
)

DIMENSION_NAMES: tuple[str, ...] = tuple(d.name for d in DIMENSIONS)
INDEX: dict[str, int] = {name: i for i, name in enumerate(DIMENSION_NAMES)}
STYLE_DIMENSIONS: tuple[str, ...] = tuple(d.name for d in DIMENSIONS if not d.topic)
TOPIC_DIMENSIONS: tuple[str, ...] = tuple(d.name for d in DIMENSIONS if d.topic)
#: The three P-SOUPS dimensions (expertise, informativeness, style) as PrefInfer dimensions.
PSOUPS_DIMENSIONS: tuple[str, ...] = ("technical_depth", "verbosity", "warmth")
