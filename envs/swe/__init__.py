"""SWE-v0: repository tasks in a sandbox, graded by the task's own tests.

SWE-bench-format tasks (Skywork-SWE's recipe: a repository at a base commit, a problem statement,
FAIL_TO_PASS/PASS_TO_PASS tests), OpenHands' tools as the action space, sandboxed runtimes
(bubblewrap by default, Docker, or a trusted local one) and SWE-bench's "resolved" reward,
computed in a fresh sandbox with the tests restored. The bundled tasks are synthesized from small
libraries written for arenagym; ``tasks=`` takes any SWE-bench-format JSONL file. Real libraries
come from the package registry (``arenagym swe import-sdist``, :mod:`~arenagym.envs.swe.sdist`),
each with its own Python environment (:mod:`~arenagym.envs.swe.runtime.pyenv`), mounted
read-only into the sandboxes of the tasks that name it.
"""

from arenagym.envs.core.registration import register_env

register_env(
    "SWE-v0",
    "arenagym.envs.swe.env:SWEEnv",
    "Resolve a repository issue with OpenHands' tools in a sandbox; graded by its tests",
    {},
)
