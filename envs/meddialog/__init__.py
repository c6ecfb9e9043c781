"""MedDialog: medical dialogue on a bundled bilingual gastro-intestinal knowledge graph.

``MedDialog-v0`` (mode ``next_turn``) is MedRef's benchmark task under MedDG's protocol: write the
doctor's next turn given the history, candidate knowledge triplets and demonstrations, scored
with character-level BLEU/ROUGE and entity F1. ``MedConsult-v0`` (mode ``consult``) is an
AgentClinic-style interactive consultation with a rule-based patient who answers only what is
asked. Cases and dialogues are simulated offline from the knowledge graph and seeded.
"""

from arenagym.envs.core.registration import register_env

_NEXT_TURN = "arenagym.envs.meddialog.env:MedDialogEnv"
_CONSULT = "arenagym.envs.meddialog.consult:MedConsultEnv"

register_env(
    "MedDialog-v0",
    _NEXT_TURN,
    "Write the doctor's next turn of a Chinese MedDG-style consultation (KG triplets, demos)",
    {"language": "zh"},
)
register_env(
    "MedDialog-En-v0",
    _NEXT_TURN,
    "MedDialog-v0 in English: the doctor's next turn, scored with MedDG's metrics",
    {"language": "en"},
)
register_env(
    "MedConsult-v0",
    _CONSULT,
    "Interactive Chinese consultation: question a simulated patient, order tests, diagnose, treat",
    {"language": "zh"},
)
register_env(
    "MedConsult-En-v0",
    _CONSULT,
    "MedConsult-v0 in English: question a simulated patient, order tests, diagnose, treat",
    {"language": "en"},
)
