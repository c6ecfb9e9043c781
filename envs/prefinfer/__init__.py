"""PrefInfer-v0: infer a person's preferences from scattered behaviour; a judge then predicts
their choices from the description (AlignXplore; AlignX-style stance vectors; P-SOUPS dimensions).

Users, responses and choices are simulated offline and seeded, so every split is reproducible.
"""

from arenagym.envs.core.registration import register_env

_ENTRY = "arenagym.envs.prefinfer.env:PrefInferEnv"

register_env(
    "PrefInfer-v0",
    _ENTRY,
    "Infer a simulated user's preferences from chosen/rejected pairs; a judge predicts held-out choices",
    {"split": "alignx_like"},
)
register_env(
    "PrefInfer-Strict-v0",
    _ENTRY,
    "PrefInfer-v0 with a required machine-readable STANCES line in the answer",
    {"split": "alignx_like", "strict": True},
)
register_env(
    "PrefInfer-PSoups-v0",
    _ENTRY,
    "PrefInfer with P-SOUPS-like users: expertise, informativeness and style at their poles",
    {"split": "psoups_like"},
)
register_env(
    "PrefInfer-Comments-v0",
    _ENTRY,
    "PrefInfer from comments the user wrote only (no pairwise choices)",
    {"split": "comments_only"},
)
register_env(
    "PrefInfer-Noisy-v0",
    _ENTRY,
    "PrefInfer with noisy choices (softmax temperature 1, label noise 0.2)",
    {"split": "noisy"},
)
register_env(
    "PrefInfer-Shift-v0",
    _ENTRY,
    "Streaming PrefInfer: 3 steps, updating the description as the user's preferences shift",
    {"split": "shift"},
)
