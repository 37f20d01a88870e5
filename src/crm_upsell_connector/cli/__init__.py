"""The ``crm-upsell`` command: one clear line and an exit code for every error, no tracebacks."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import click
import typer

from crm_upsell_connector.errors import ConnectorError, StopRequested
from crm_upsell_connector.http.redact import scrub

INTERNAL_ERROR = 70
INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and, as a script, exits with) the exit code."""
    from crm_upsell_connector.cli.app import app

    command = typer.main.get_command(app)
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        result = command.main(args=argv, prog_name="crm-upsell", standalone_mode=False)
    except StopRequested as exc:
        print(f"stopped: {scrub(exc.one_line())}", file=sys.stderr)
        return exc.exit_code
    except ConnectorError as exc:
        print(f"error: {scrub(exc.one_line())}", file=sys.stderr)
        return exc.exit_code
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        return INTERRUPTED
    except click.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: progress up to the last committed page is kept", file=sys.stderr)
        return INTERRUPTED
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
    return int(result) if isinstance(result, int) else 0


def entry() -> None:
    sys.exit(main())
