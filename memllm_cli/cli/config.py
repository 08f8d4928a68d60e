"""``memllm config ...``: the settings file, its profiles, and where each setting comes from."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from memllm_cli.cli.common import settings, state
from memllm_cli.cli.complete import profiles, setting_keys
from memllm_cli.cli.output import JsonFlag, emit, listing, message, render

if TYPE_CHECKING:
    from memllm_cli.config import Setting

app = typer.Typer(
    help=(
        "Show and change the settings file: the default memory, model, server, your name, "
        "and named profiles. Options override the environment, which overrides the file."
    ),
    no_args_is_help=True,
)
Key = Annotated[
    str,
    typer.Argument(
        metavar="KEY", help="A setting (config show lists them).", autocompletion=setting_keys
    ),
]
Profile = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Change this profile's table, [profiles.NAME] (made if new), not the top level.",
        autocompletion=profiles,
    ),
]
COLUMNS = [("key", "key"), ("value", "value"), ("source", "from")]
TEMPLATE = """\
# memllm settings. `memllm config show` says which apply and where each comes from:
# an option wins over an environment variable (MEMLLM_DB, MEMLLM_MODEL, ...), which
# wins over the chosen profile's table (--profile NAME, MEMLLM_PROFILE), which wins
# over the settings at the top of this file.
{keys}
# [profiles.work]
# db = "work.db"
# model_url = "http://127.0.0.1:8080"
# api_key_env = "WORK_LLM_KEY"
"""


def _key(name: str) -> str:
    from memllm_cli.config_file import KEYS

    if name not in KEYS:
        raise typer.BadParameter(f"no setting {name!r}; settings: {', '.join(KEYS)}")
    return name


@app.command("show")
@listing
def show(ctx: typer.Context, *, fmt: str) -> None:
    """Show every setting, its value and where it comes from: an option, an environment
    variable, a profile, the file, or the default. The API key itself is never shown.

    Example: memllm config show

    Example: memllm --profile work config show --json
    """
    chosen = settings(ctx)
    rows = [setting.to_dict() for setting in chosen.all()]
    where = chosen.path if chosen.path.is_file() else f"{chosen.path} (none yet)"
    message(f"settings file: {where}")
    render(rows, fmt, COLUMNS)


@app.command("get")
def get(ctx: typer.Context, key: Key, json_: JsonFlag = False) -> None:
    """Print one setting's value as memllm would use it; exit 1 when it has none.

    Example: memllm config get db

    Example: memllm --profile work config get model_url --json
    """
    found = settings(ctx).get(_key(key), state(ctx).db if key == "db" else None)
    if json_:
        render([found.to_dict()], "jsonl", [])
    elif found.value is not None:
        emit(str(found.value))
    if found.value is None:
        message(f"{key} is not set")
        raise typer.Exit(1)


# "-1" (gpu_layers: all) is a value, not an unknown option
@app.command("set", context_settings={"ignore_unknown_options": True})
def set_(
    ctx: typer.Context,
    key: Key,
    value: Annotated[str, typer.Argument(help="The new value.")],
    profile: Profile = None,
) -> None:
    """Set KEY to VALUE in the settings file (made, readable by you alone, if missing).

    A relative model path is stored absolute; a bare db name (work.db) means a memory
    in the memllm home. api_key_env takes the NAME of the environment variable that
    holds a model server's API key, never the key.

    Example: memllm config set me "Ingrid Solberg"

    Example: memllm config set --profile work db work.db
    """
    from memllm_cli.config_file import KEYS, parse_value, write

    name = _key(key)
    parsed = parse_value(KEYS[name], value)
    if name == "model" or (name == "db" and _is_path(str(parsed))):
        parsed = os.path.abspath(os.path.expanduser(str(parsed)))
    elif name == "model_url":
        from memllm_cli.runtime.server import check_url

        check_url(str(parsed))
    profile = profile or state(ctx).profile
    chosen = settings(ctx)
    changed = write(chosen.path, name, parsed, profile)
    table = f"[profiles.{profile}]" if profile else "the top level"
    verb = "set" if changed else "already set:"
    message(f"{verb} {name} = {parsed!r} in {table} of {chosen.path}")
    now = _now(ctx, name, profile)
    meant = f"profile {profile}" if profile else "file"
    if now.source != meant:
        message(f"note: {now.source} sets {name} too, and wins: {now.value!r}")


@app.command("unset")
def unset(ctx: typer.Context, key: Key, profile: Profile = None) -> None:
    """Remove KEY from the settings file (its top level, or a profile's table).

    Example: memllm config unset model_url

    Example: memllm config unset --profile work db
    """
    from memllm_cli.config_file import write

    name = _key(key)
    profile = profile or state(ctx).profile
    chosen = settings(ctx)
    table = f"[profiles.{profile}]" if profile else "the top level"
    if not write(chosen.path, name, None, profile):
        message(f"{name} was not set in {table} of {chosen.path}")
        return
    now = _now(ctx, name, profile)
    message(f"removed {name} from {table} of {chosen.path}; now {now.value!r} ({now.source})")


@app.command("path")
def path(ctx: typer.Context) -> None:
    """Print where the settings file is (MEMLLM_CONFIG, or the platform's config folder).

    Example: memllm config path
    """
    emit(str(settings(ctx).path))


@app.command("edit")
def edit(ctx: typer.Context) -> None:
    """Open the settings file in $VISUAL or $EDITOR (made from a commented template if
    missing), then check it.

    Example: memllm config edit
    """
    import shlex
    import subprocess

    from memllm_cli.config_file import KEYS, ConfigError, read, write_private

    file = settings(ctx).path
    if not file.exists():
        keys = "\n".join(f"# {name} = ...   # {key.help}" for name, key in KEYS.items())
        write_private(file, TEMPLATE.format(keys=keys))
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        done = subprocess.run([*shlex.split(editor), str(file)], check=False)
    except OSError as exc:
        raise ConfigError(f"cannot run the editor {editor!r}: {exc.strerror}") from None
    if done.returncode != 0:
        raise ConfigError(f"the editor {editor!r} exited with status {done.returncode}")
    found = read(file)
    message(f"{file}: {len(found.top)} setting(s), {len(found.profiles)} profile(s)")


def _is_path(text: str) -> bool:
    """A db value that names a folder too (not a bare file name in the memllm home)."""
    return os.sep in text or "/" in text or text.startswith("~")


def _now(ctx: typer.Context, name: str, profile: str | None) -> Setting:
    """The setting as the file now gives it (to the profile just changed, if one was)."""
    from memllm_cli.config import Settings

    return Settings(profile or state(ctx).profile).get(name)
