"""The ``crm-upsell`` command: one clear line and an exit code for every error, no tracebacks.

Usage mistakes (an unknown option or command, a missing argument) are the framework's usage errors:
the usage line, its suggestion and exit 2. Ctrl-C prints one line saying what was kept and how to
resume, and exits 130. Only this module and ``cli.argv`` load at start-up; ``cli.app`` imports what a
command needs when the command runs, so ``--help`` and ``--version`` stay quick.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from crm_upsell_connector.cli.argv import command_name, hoist_global_options
from crm_upsell_connector.errors import ConnectorError, StopRequested
from crm_upsell_connector.http.redact import scrub

USAGE_ERROR = 2
INTERNAL_ERROR = 70
INTERRUPTED = 130

#: what Ctrl-C leaves behind, per command, and how to carry on.
_KEPT = {
    "sync": "every page committed before the interrupt is kept; 'crm-upsell sync' resumes from there",
    "apply": "writes already sent are recorded and the rest stay queued; 'crm-upsell apply' resumes them",
    "run": "synced pages and writes already sent are kept; 'crm-upsell run' resumes from there",
    "setup": "fields already created are kept; 'crm-upsell setup' creates the rest",
    "demo": "the demo's sandbox and store are thrown away; run 'crm-upsell demo' again",
    "schedule": "the worker stopped; runs it started are recorded; start it again to carry on",
}


def interrupted_line(args: list[str]) -> str:
    """The one line printed on Ctrl-C: what was kept, how to resume."""
    command = command_name(args)
    kept = _KEPT.get(command or "", "nothing was written after the interrupt; run the command again")
    return f"interrupted: {kept}"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and, as a script, exits with) the exit code."""
    import typer
    from typer._click.exceptions import ClickException, NoArgsIsHelpError

    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        from crm_upsell_connector.cli.app import app

        command = typer.main.get_command(app)
        result = command.main(args=args, prog_name="crm-upsell", standalone_mode=False)
    except StopRequested as exc:
        print(f"stopped: {scrub(exc.one_line())}", file=sys.stderr)
        return exc.exit_code
    except ConnectorError as exc:
        problems = getattr(exc, "problems", ())
        if len(problems) > 1:
            # Every problem of a config file at once, one per line, each with its key path.
            print(f"error: {len(problems)} problems in the config:", file=sys.stderr)
            for problem in problems:
                print(f"  {scrub(problem)}", file=sys.stderr)
        else:
            print(f"error: {scrub(exc.one_line())}", file=sys.stderr)
        return exc.exit_code
    except NoArgsIsHelpError as exc:
        # A bare command (``crm-upsell``, ``crm-upsell auth``): its help, with the framework's exit code.
        exc.show()
        return exc.exit_code
    except ClickException as exc:
        # Usage errors print the usage line, "Try 'crm-upsell run --help'" and the suggestion click
        # makes ("Did you mean 'explain'?"); they exit 2.
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        print(interrupted_line(args), file=sys.stderr)
        return INTERRUPTED
    except typer.Abort:
        # A prompt met the end of standard input (typer turns that EOFError into Abort).
        print(
            "aborted: standard input ended before an answer was given; nothing was written", file=sys.stderr
        )
        return 1
    except Exception as exc:
        logging.getLogger("crm_upsell_connector").debug("internal error", exc_info=True)
        print(
            f"internal error: {type(exc).__name__}: {scrub(str(exc))[:300]} "
            "(please report it; run with -v to see the traceback)",
            file=sys.stderr,
        )
        return INTERNAL_ERROR
    finally:
        # The commands stop at a checkpoint on SIGTERM; give an embedding program its handler back.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous_sigterm)
    code = int(result) if isinstance(result, int) else 0
    if code == INTERRUPTED:
        # typer turns a KeyboardInterrupt inside a command into exit code 130 without a word.
        print(interrupted_line(args), file=sys.stderr)
    return code


def entry() -> None:
    sys.exit(main())
