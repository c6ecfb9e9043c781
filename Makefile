# The two commands of the README. Each creates or reuses .venv (Python 3.12) and installs arenagym.
.PHONY: main test lint

STORE ?= results/arenagym.sqlite
SUITE ?= math
RECINTER = arenagym.envs.recinter.baselines
MEDDIALOG = arenagym.envs.meddialog.baselines

## make main: run the benchmark suites (math, TextArena, RecInter, MedDialog) with the built-in
## baseline agents and print the leaderboard
main:
	scripts/ensure-venv textarena
	.venv/bin/arenagym run --suite $(SUITE) --agent random --agent-kwargs '{"seed": 0}' --agent-name random --store $(STORE)
	.venv/bin/arenagym run --suite $(SUITE) --agent math-solver --store $(STORE)
	.venv/bin/arenagym run --suite dfc18-quick --store $(STORE)
	.venv/bin/arenagym run --suite recinter --agent $(RECINTER):PopularityAgent --agent-name popularity --store $(STORE)
	.venv/bin/arenagym run --suite recinter --agent $(RECINTER):RandomAgent --agent-name random --store $(STORE)
	.venv/bin/arenagym run --suite meddialog --agent $(MEDDIALOG):ScriptedDoctor --agent-name scripted-doctor --store $(STORE)
	.venv/bin/arenagym run --suite meddialog --agent $(MEDDIALOG):RetrievalDoctor --agent-name retrieval-doctor --store $(STORE)
	.venv/bin/arenagym leaderboard --store $(STORE) --markdown results/leaderboard.md

## make test: lint and run the whole test suite
test:
	scripts/ensure-venv test
	scripts/setup-swe-runtime
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -n 2 --dist loadfile -q
