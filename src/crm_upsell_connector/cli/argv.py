"""Global options where users put them: ``crm-upsell init --config X`` means ``crm-upsell --config X init``.

Click reads an option only at the level that declares it, so the global options (declared on the root
command) are moved in front of the command line before click parses it. Only the options listed in
``GLOBAL_OPTIONS`` move; no command declares an option of the same name, and nothing after ``--`` moves.
"""

from __future__ import annotations

#: global option -> whether it takes a value.
GLOBAL_OPTIONS: dict[str, bool] = {
    "--config": True,
    "-c": True,
    "--connection": True,
    "--verbose": False,
    "-v": False,
    "--wait": True,
    "--log-format": True,
}


def _global(arg: str) -> tuple[bool, bool]:
    """(is a global option, takes its value from the next arg)."""
    name, eq, _ = arg.partition("=")
    if name in GLOBAL_OPTIONS:
        return True, GLOBAL_OPTIONS[name] and not eq
    # -vv, -vvv: a repeated count flag; -cPATH: a short option glued to its value.
    if len(arg) > 2 and arg[0] == "-" and arg[1] != "-":
        if set(arg[1:]) == {"v"}:
            return True, False
        if arg[1] == "c":
            return True, False
    return False, False


def hoist_global_options(args: list[str]) -> list[str]:
    """``args`` with every global option (and its value) moved in front of the command."""
    moved: list[str] = []
    rest: list[str] = []
    i = 0
    seen_command = False
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        is_global, takes_value = _global(arg)
        if is_global:
            if seen_command:
                moved.append(arg)
                if takes_value and i + 1 < len(args):
                    moved.append(args[i + 1])
                    i += 1
            else:
                rest.append(arg)
                if takes_value and i + 1 < len(args):
                    rest.append(args[i + 1])
                    i += 1
        else:
            if not arg.startswith("-"):
                seen_command = True
            rest.append(arg)
        i += 1
    if not moved:
        return rest
    # Globals given before the command stay first; the moved ones follow them, still before the command.
    first_command = next((n for n, t in enumerate(rest) if _is_command_start(rest, n)), len(rest))
    return rest[:first_command] + moved + rest[first_command:]


def _is_command_start(args: list[str], n: int) -> bool:
    arg = args[n]
    if arg.startswith("-"):
        return False
    if n > 0:
        is_global, takes_value = _global(args[n - 1])
        if is_global and takes_value:
            return False
    return True


def command_name(args: list[str]) -> str | None:
    """The command of a command line (``sync`` in ``--config X sync --full``), None when there is none."""
    i = 0
    while i < len(args):
        arg = args[i]
        is_global, takes_value = _global(arg)
        if is_global:
            i += 2 if takes_value else 1
            continue
        if not arg.startswith("-"):
            return arg
        i += 1
    return None
