"""SIGKILL during sync and during apply, then a normal run: the CRM and the store end as after an
uninterrupted run (no task twice, no update lost, no record missed or doubled)."""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.reliability.harness import CRMS, Reference, Trial, reference, run_apply_trial, run_trial

DEFAULT_TRIALS = 3
SLOW_TRIALS = int(os.environ.get("CRM_UPSELL_CRASH_TRIALS", "50"))  # a smaller sample: set it lower
WORKERS = 4


@pytest.fixture(scope="module")
def reference_for(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Reference]:
    """One uninterrupted reference run per CRM, shared by this module's tests."""
    cache: dict[str, Reference] = {}

    def get(crm: str) -> Reference:
        if crm not in cache:
            cache[crm] = reference(crm, tmp_path_factory.mktemp(f"{crm}-reference"))
        return cache[crm]

    return get


def _trials(ref: Reference, workdir: Path, count: int) -> list[Trial]:
    def one(number: int) -> Trial:
        rng = random.Random(f"{ref.crm}-{number}")  # reproducible: trial N always draws the same delay
        return run_trial(ref, workdir / f"trial-{number}", number, rng)

    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(one, range(1, count + 1)))


def _check(ref: Reference, trials: list[Trial]) -> None:
    phases = Counter(t.phase.split(" (")[0] for t in trials)
    print(
        f"\n{ref.crm}: {len(trials)} trial(s); reference run {ref.run_s:.2f} s, its sync "
        f"{ref.sync_window[0]:.2f}-{ref.sync_window[1]:.2f} s after launch; kills landed in {dict(phases)}"
    )
    failed = [t.describe() for t in trials if t.problems]
    assert not failed, f"{len(failed)} of {len(trials)} trial(s) failed:\n" + "\n\n".join(failed)
    if len(trials) >= 10:
        assert phases["sync"] and phases["apply"], f"the kills should land in both phases: {dict(phases)}"


@pytest.mark.parametrize("crm", CRMS)
def test_killed_runs_rerun_to_the_same_state(
    crm: str, tmp_path: Path, reference_for: Callable[[str], Reference]
) -> None:
    ref = reference_for(crm)
    _check(ref, _trials(ref, tmp_path, DEFAULT_TRIALS))


@pytest.mark.slow
@pytest.mark.parametrize("crm", CRMS)
def test_many_killed_runs_rerun_to_the_same_state(
    crm: str, tmp_path: Path, reference_for: Callable[[str], Reference]
) -> None:
    ref = reference_for(crm)
    _check(ref, _trials(ref, tmp_path, SLOW_TRIALS))


@pytest.mark.parametrize("crm", CRMS)
def test_killed_while_tasks_are_created_but_unconfirmed(
    crm: str, tmp_path: Path, reference_for: Callable[[str], Reference]
) -> None:
    trial = run_apply_trial(reference_for(crm), tmp_path / "trial")
    assert "a task batch sent and unconfirmed" in trial.phase, trial.describe()
    assert not trial.problems, trial.describe()
