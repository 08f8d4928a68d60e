"""The settings file (TOML): where it is, what it may hold, and careful edits to it.

The file is read only when it exists (``tomllib`` is not even imported otherwise, so
``facts list`` starts as fast as before), and every value is checked on the way in:
a typo names its file and line at once instead of surfacing in the middle of an
ingest. Edits keep the user's comments and layout: one line changes, the result is
parsed back and compared with what was meant, and only when a hand-made layout
defeats that is the file written out whole (``tomli-w``, comments lost). The file
holds no secret (an API key is named by the environment variable that holds it) and
is written readable by its owner alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from memllm_cli.errors import MemllmError

CONFIG_ENV = "MEMLLM_CONFIG"
FILENAME = "config.toml"
PROFILES = "profiles"
# Patterns as text, compiled at first use (``re`` caches them): importing this module is
# part of every command's start, which pays for no regular expression it does not use.
PROFILE_NAME = r"[A-Za-z0-9_-]{1,64}"
ENV_NAME = r"[A-Z_][A-Z0-9_]{0,127}"
_DECODE_WHERE = r"\s*\(at (?:line (\d+), column \d+|end of document)\)$"
_HEADER = r"\s*\["
_ASSIGNMENT = r"\s*[A-Za-z0-9_\"'.-]+\s*="

Value = str | int


class ConfigError(MemllmError):
    """A settings file, setting or value that memllm cannot use."""


class Key(NamedTuple):
    """One setting: its name, the environment variable that overrides it, and its kind.

    The records of this module are named tuples, not dataclasses: they are made at every
    command's start, where a dataclass's generated methods cost about 0.5 ms each.
    """

    name: str
    env: str | None
    kind: str  # text | path | url | int | envname
    help: str
    minimum: int | None = None


KEYS: dict[str, Key] = {
    key.name: key
    for key in (
        Key("db", "MEMLLM_DB", "path", "the memory file (a bare name: in the memllm home)"),
        Key("model", "MEMLLM_MODEL", "path", "a GGUF file to use instead of the default model"),
        Key("model_url", "MEMLLM_MODEL_URL", "url", "an OpenAI-compatible server to use instead"),
        Key("model_name", "MEMLLM_MODEL_NAME", "text", "the model name sent to model_url"),
        Key("api_key_env", None, "envname", "the environment variable holding the server's key"),
        Key("me", "MEMLLM_ME", "text", "your own name in memory"),
        Key("threads", "MEMLLM_THREADS", "int", "CPU threads the model runs on", minimum=1),
        Key("gpu_layers", "MEMLLM_GPU_LAYERS", "int", "model layers on the GPU (-1: all)", -1),
    )
}


class ConfigFile(NamedTuple):
    """The settings a file holds: its top level and each ``[profiles.NAME]`` table."""

    path: Path
    exists: bool
    top: dict[str, Value]
    profiles: dict[str, dict[str, Value]]


def config_path() -> Path:
    """``MEMLLM_CONFIG`` when set, else ``config.toml`` in the platform's user config folder."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("memllm", appauthor=False)) / FILENAME


def key_named(name: str) -> Key:
    """The setting ``name``; an unknown one is an error that lists the known ones."""
    if name in KEYS:
        return KEYS[name]
    if "key" in name.lower():
        raise ConfigError(
            f"unknown setting {name!r}: the file never holds an API key; put the key in an "
            "environment variable and name that variable with api_key_env"
        )
    raise ConfigError(f"unknown setting {name!r} (settings: {', '.join(KEYS)})")


def check_profile_name(name: str) -> str:
    if not re.fullmatch(PROFILE_NAME, name):
        raise ConfigError(
            f"bad profile name {name!r}: use letters, digits, '-' and '_' (at most 64)"
        )
    return name


def parse_value(key: Key, text: str) -> Value:
    """A value given as text (an environment variable, ``config set``), checked."""
    if key.kind == "int":
        try:
            return check_value(key, int(text.strip()))
        except ValueError:
            raise ConfigError(f"{key.name} must be a whole number, not {text!r}") from None
    return check_value(key, text)


def check_value(key: Key, value: Any) -> Value:
    """``value`` if it fits ``key``, stripped of surrounding spaces; else a ConfigError."""
    if key.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key.name} must be a whole number, not {value!r}")
        if key.minimum is not None and value < key.minimum:
            raise ConfigError(f"{key.name} must be at least {key.minimum}, not {value}")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{key.name} must be a string, not {value!r}")
    value = value.strip()
    if not value:
        raise ConfigError(f"{key.name} is empty")
    if not value.isprintable():
        raise ConfigError(f"{key.name} contains a control character")
    if key.kind == "envname" and not re.fullmatch(ENV_NAME, value):
        raise ConfigError(
            f"{key.name} is the NAME of the environment variable that holds the API key "
            "(such as OPENAI_API_KEY: capitals, digits, '_'), never the key itself"
        )
    return value


def read(path: Path) -> ConfigFile:
    """The settings in ``path``, checked; empty when there is no file."""
    text = _text(path)
    if text is None:
        return ConfigFile(path, False, {}, {})
    return _checked(_parse(text, path), text, path)


def _text(path: Path) -> str | None:
    """The file's text, or None when there is no file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the settings file {path}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"the settings file {path} is not UTF-8 text") from None


def _parse(text: str, path: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(_DECODE_WHERE, message)
        where = f"{path}:{found[1]}" if found and found[1] else str(path)
        what = message[: found.start()] if found else message
        raise ConfigError(f"malformed settings file {where}: {what}") from None


def _checked(data: dict[str, Any], text: str, path: Path) -> ConfigFile:
    top: dict[str, Value] = {}
    profiles: dict[str, dict[str, Value]] = {}
    for name, value in data.items():
        if name != PROFILES:
            top[name] = _file_value(name, value, text, path, None)
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{path}{_line(text, name, None)}: write profiles as [profiles.NAME]")
        for profile, table in value.items():
            try:
                check_profile_name(profile)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
            if not isinstance(table, dict):
                raise ConfigError(
                    f"{path}: profile {profile!r} must be a table [profiles.{profile}]"
                )
            profiles[profile] = {
                k: _file_value(k, v, text, path, profile) for k, v in table.items()
            }
    return ConfigFile(path, True, top, profiles)


def _file_value(name: str, value: Any, text: str, path: Path, profile: str | None) -> Value:
    try:
        return check_value(key_named(name), value)
    except ConfigError as exc:
        section = f" (profile {profile})" if profile else ""
        raise ConfigError(f"{path}{_line(text, name, profile)}{section}: {exc}") from None


def _line(text: str, name: str, profile: str | None) -> str:
    """``:N`` for the line that sets ``name`` (in ``profile``'s table), or "" if unsure."""
    lines = text.splitlines()
    start = 0
    if profile is not None:
        start = next((i + 1 for i, line in enumerate(lines) if _is_header(line, profile)), 0)
    assign = re.compile(rf"\s*[\"']?{re.escape(name)}[\"']?\s*=")
    found = next((i for i in range(start, len(lines)) if assign.match(lines[i])), None)
    return "" if found is None else f":{found + 1}"


def _is_header(line: str, profile: str) -> bool:
    header = rf"\s*\[\s*{PROFILES}\s*\.\s*{re.escape(profile)}\s*\]\s*(#.*)?"
    return re.fullmatch(header, line.rstrip("\r\n")) is not None


def write(path: Path, name: str, value: Value | None, profile: str | None = None) -> bool:
    """Set ``name`` (remove it when ``value`` is None) at the top level or in ``profile``.

    Returns False when the file already said so (nothing is written).
    """
    key = key_named(name)
    if value is not None:
        value = check_value(key, value)
    if profile is not None:
        check_profile_name(profile)
    text = _text(path) or ""
    data = _parse(text, path)
    _checked(data, text, path)  # a file with a mistake in it is mended by hand first
    wanted = _changed(data, name, value, profile)
    if wanted == data:
        return False
    new = _edited(text, name, value, profile)
    if new is None or _parse_or_none(new, path) != wanted:
        import tomli_w

        new = "# memllm settings (memllm config show explains them)\n" + tomli_w.dumps(wanted)
    write_private(path, new)
    return True


def _changed(data: dict[str, Any], name: str, value: Value | None, profile: str | None) -> dict:
    """A copy of ``data`` with the one change made."""
    held = data.get(PROFILES, {}).get(profile, {}) if profile is not None else data
    if value is None and name not in held:
        return data
    wanted = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    if profile is not None:
        profiles = wanted.setdefault(PROFILES, {})
        profiles[profile] = dict(profiles.get(profile, {}))
        table = profiles[profile]
    else:
        table = wanted
    if value is None:
        table.pop(name, None)
    else:
        table[name] = value
    return wanted


def _parse_or_none(text: str, path: Path) -> dict[str, Any] | None:
    try:
        return _parse(text, path)
    except ConfigError:
        return None


def _edited(text: str, name: str, value: Value | None, profile: str | None) -> str | None:
    """``text`` with the line that sets ``name`` replaced, added or removed; None if unsure."""
    import tomli_w

    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    entry = "" if value is None else tomli_w.dumps({name: value})
    if profile is None:
        start = 0
    else:
        start = next((i + 1 for i, line in enumerate(lines) if _is_header(line, profile)), -1)
        if start < 0:
            if value is None:
                return None
            gap = "\n" if lines and lines[-1].strip() else ""
            return "".join(lines) + f"{gap}[{PROFILES}.{profile}]\n{entry}"
    end = next((i for i in range(start, len(lines)) if re.match(_HEADER, lines[i])), len(lines))
    assign = re.compile(rf"\s*{re.escape(name)}\s*=")
    at = next((i for i in range(start, end) if assign.match(lines[i])), None)
    if at is not None:
        lines[at] = entry
    elif value is None:
        return None
    else:
        assigned = [i for i in range(start, end) if re.match(_ASSIGNMENT, lines[i])]
        if assigned:
            at = assigned[-1] + 1
        elif profile is None:  # after the comments that open the file
            at = next((i for i in range(end) if not lines[i].lstrip().startswith("#")), end)
        else:
            at = start
        lines.insert(at, entry)
    return "".join(lines)


def write_private(path: Path, text: str) -> None:
    """Replace the file at once (never half-written), mode 0600, through a symlink if any."""
    from memllm_cli import system

    target = path.resolve()
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        system.make_private_folder(target.parent)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        system.keep_private(temporary)
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ConfigError(f"cannot write the settings file {path}: {exc.strerror}") from None
