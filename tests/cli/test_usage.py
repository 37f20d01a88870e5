"""Usage mistakes are usage errors (exit 2, the usage line, click's suggestion), never "internal error"."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from crm_upsell_connector.cli import INTERNAL_ERROR, USAGE_ERROR, main
from crm_upsell_connector.cli.app import app
from crm_upsell_connector.cli.argv import hoist_global_options


def _commands() -> Iterator[tuple[str, ...]]:
    """Every command path: ('run',), ('auth', 'set'), ('sandbox', 'serve')..."""
    root = typer.main.get_command(app)

    def walk(group: object, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        commands = getattr(group, "commands", None)
        if not commands:
            yield path
            return
        for name, sub in commands.items():
            yield from walk(sub, (*path, name))

    yield from walk(root, ())


COMMANDS = sorted(_commands())


def test_the_walk_sees_every_command() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert {"init", "check", "sync", "run", "apply", "status", "auth set", "sandbox serve"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_answers_a_bad_option_with_a_usage_error(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*command, "--no-such-option"])

    err = capsys.readouterr().err
    assert code == USAGE_ERROR, err
    assert f"Usage: crm-upsell {' '.join(command)}" in err
    assert "No such option: --no-such-option" in err
    assert f"Try 'crm-upsell {' '.join(command)} --help' for help." in err
    assert "internal error" not in err


def test_a_misspelt_option_gets_the_framework_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--dryrun"]) == USAGE_ERROR
    err = capsys.readouterr().err
    assert "No such option: --dryrun" in err
    assert "--dry-run" in err


def test_a_misspelt_command_gets_the_nearest_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explian"]) == USAGE_ERROR
    err = capsys.readouterr().err
    assert "No such command 'explian'" in err
    assert "Did you mean 'explain'" in err
    assert "Usage: crm-upsell" in err


def test_a_missing_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain"]) == USAGE_ERROR
    err = capsys.readouterr().err
    assert "Missing argument" in err
    assert "Usage: crm-upsell explain" in err


@pytest.mark.parametrize("args", [[], ["auth"], ["sandbox"]], ids=["bare", "auth", "sandbox"])
def test_a_bare_command_prints_its_help(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(args)

    out = capsys.readouterr()
    text = out.out + out.err
    assert code == USAGE_ERROR  # click's convention for a group called without a command
    assert code != INTERNAL_ERROR
    assert "Usage: crm-upsell" in text
    assert "Commands:" in text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("crm-upsell-connector ")
    assert "hubspot: crm-upsell-hubspot" in out


def test_global_options_work_after_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.toml"
    for args in (
        ["status", "--config", str(missing)],
        ["status", f"--config={missing}"],
        ["status", "-c", str(missing)],
    ):
        assert main(args) == 2
        assert f"no config file at {missing}" in capsys.readouterr().err
    # -v and --wait after the command are accepted too (they would be "No such option" otherwise)
    assert main(["check", "-vv", "--wait", "1", "--config", str(missing)]) == 2
    assert f"no config file at {missing}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["init", "--config", "x.toml"], ["--config", "x.toml", "init"]),
        (["-v", "sync", "--full", "-vv"], ["-v", "-vv", "sync", "--full"]),
        (["--config", "a", "run", "--connection=b"], ["--config", "a", "--connection=b", "run"]),
        (["sync", "--", "--config"], ["sync", "--", "--config"]),
        (["explain", "--wait", "3", "ACC-1"], ["--wait", "3", "explain", "ACC-1"]),
        (["--version"], ["--version"]),
    ],
)
def test_hoisting(given: list[str], expected: list[str]) -> None:
    assert hoist_global_options(given) == expected


def test_the_installed_command_exits_2_on_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crm_upsell_connector", "run", "--dryrun"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Usage: crm-upsell run" in done.stderr
    assert "Traceback" not in done.stderr
