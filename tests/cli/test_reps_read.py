"""What the CLI shows a sales-ops reader: owners by name in the plan, guardrails and segments in words."""

from __future__ import annotations

import re
from pathlib import Path

from tests.reliability.harness import open_env, setup_fields


def test_plan_and_score_speak_in_names_and_words(tmp_path: Path) -> None:
    with open_env("hubspot", tmp_path) as env:
        setup_fields(env)
        env.must("sync")
        owners = {name for (name,) in env.query("SELECT name FROM owners") if name}
        owner_ids = {oid for (oid,) in env.query("SELECT id FROM owners")}

        plan = env.cli("plan")
        assert plan.returncode == 0, plan.stderr
        task_lines = [line for line in plan.stdout.splitlines() if line.startswith("+ task for ")]
        assert task_lines, plan.stdout
        for line in task_lines:
            who = line.removeprefix("+ task for ").split(" on ", 1)[0]
            assert who in owners, line
            assert not any(oid in who for oid in owner_ids)
        assert " key " not in plan.stdout  # the task key is for recognition, not for reading

        score = env.cli("score")
        assert score.returncode == 0, score.stderr
        held = next(line for line in score.stdout.splitlines() if line.startswith("Held back by guardrails"))
        assert not re.search(r"\w_\w", held), held  # no identifier like do_not_contact
        assert "at_risk" not in score.stdout and "unmeasured" not in score.stdout
