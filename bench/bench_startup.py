"""Start-up time of the ``crm-upsell`` command: ``--help``, ``--version`` and a usage error.

Each command line runs in a fresh process many times; the median and the slowest wall time are
printed, with the time of a bare ``python -c pass`` for reference. The target is ``--help`` and
``--version`` under 0.3 s on a 2-core machine: heavy modules (SQLAlchemy, CEL, rich, the
connectors) load only when a command needs them.

    uv run python -m bench.bench_startup            # 15 runs each
    uv run python -m bench.bench_startup --runs 5
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

TARGET_S = 0.3
CASES: list[tuple[str, list[str]]] = [
    ("python -c pass (reference)", [sys.executable, "-c", "pass"]),
    ("crm-upsell --help", [sys.executable, "-m", "crm_upsell_connector", "--help"]),
    ("crm-upsell --version", [sys.executable, "-m", "crm_upsell_connector", "--version"]),
    (
        "crm-upsell run --dryrun (usage error)",
        [sys.executable, "-m", "crm_upsell_connector", "run", "--dryrun"],
    ),
    ("crm-upsell sync --help", [sys.executable, "-m", "crm_upsell_connector", "sync", "--help"]),
]


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run; CPU time is the fairer figure on a busy machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="runs per command line")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")
    print(f"{'command':<40} {'wall median s':>13} {'wall max s':>10} {'CPU median s':>12}  target (wall)")
    for name, cmd in CASES:
        timed(cmd)  # warm the file cache and the bytecode
        runs = [timed(cmd) for _ in range(args.runs)]
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        mark = (
            ""
            if "--help" not in name[:20] and "--version" not in name
            else ("ok" if wall < TARGET_S else f"OVER {TARGET_S} s")
        )
        print(f"{name:<40} {wall:>13.3f} {max(w for w, _ in runs):>10.3f} {cpu:>12.3f}  {mark}")


if __name__ == "__main__":
    main()
