"""The settings a command runs with, and where each came from.

Where the memory lives, which model answers, who "me" is: a command-line option wins,
then the environment (``MEMLLM_DB``, ``MEMLLM_MODEL``, ...), then the chosen profile's
table of the settings file (``--profile`` or ``MEMLLM_PROFILE``), then the file's top
level, then the defaults here. Each answer is a :class:`Setting` that says which of
these gave it, so ``memllm config show`` can tell. The file itself (finding, checking,
editing it) is :mod:`memllm_cli.config_file`; it is read at the first setting that
needs it, never when options and the environment already answer.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from memllm_cli.config_file import (
    KEYS,
    ConfigError,
    ConfigFile,
    Value,
    check_profile_name,
    config_path,
    parse_value,
    read,
)

DB_FILENAME = "memory.db"
HOME_ENV = "MEMLLM_HOME"
PROFILE_ENV = "MEMLLM_PROFILE"
API_KEY_ENV = "MEMLLM_API_KEY"
OPENAI_KEY_ENV = "OPENAI_API_KEY"  # the key many servers' clients read: the last resort
COMMAND_LINE = "command line"
DEFAULT = "default"
FILE = "file"
DEFAULTS: dict[str, Value] = {"me": "me"}


def home_dir() -> Path:
    """``MEMLLM_HOME`` when set, else the platform's user data directory."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("memllm", appauthor=False))


def default_db_path() -> Path:
    return home_dir() / DB_FILENAME


def embedder_name() -> str:
    """``MEMLLM_EMBEDDER``: ``minilm`` (the default: llama.cpp when installed), ``minilm-st``
    (the sentence-transformers reference) or ``hash`` (deterministic, for tests)."""
    return os.environ.get("MEMLLM_EMBEDDER", "minilm")


class Setting(NamedTuple):
    """A setting's value (None: not set) and where it came from: ``command line``, an
    environment variable's name, ``profile NAME``, ``file`` or ``default``.

    A named tuple rather than a dataclass: one is made at every command's start (see
    :class:`memllm_cli.config_file.Key`).
    """

    key: str
    value: Value | None
    source: str

    @property
    def given(self) -> bool:
        """Given for this command (its options or the environment), not kept in a file."""
        return _rank(self) <= 1

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


class Settings:
    """The settings of one command: options, then environment, then profile, file, defaults."""

    def __init__(self, profile: str | None = None, path: Path | None = None) -> None:
        env_profile = os.environ.get(PROFILE_ENV) or None
        self.profile = profile or env_profile
        self.profile_source = COMMAND_LINE if profile else PROFILE_ENV if env_profile else None
        self._path = path

    @cached_property
    def path(self) -> Path:
        return self._path or config_path()

    @cached_property
    def file(self) -> ConfigFile:
        """The settings file, read once; a profile it does not define is an error."""
        found = read(self.path)
        if self.profile is not None and self.profile not in found.profiles:
            check_profile_name(self.profile)
            known = ", ".join(sorted(found.profiles)) or "none yet"
            raise ConfigError(
                f"no profile {self.profile!r} in {self.path} (profiles: {known}; "
                f"memllm config set --profile {self.profile} KEY VALUE makes one)"
            )
        return found

    def check(self) -> ConfigFile:
        """The settings file, read now: a mistake in it, or an unknown profile, fails here."""
        return self.file

    def get(self, name: str, option: Value | Path | None = None) -> Setting:
        """The setting ``name``: ``option`` (its command-line value) when given, else the
        environment, the profile, the file or the default."""
        key = KEYS[name]
        if option is not None:
            return Setting(name, str(option) if key.kind == "path" else option, COMMAND_LINE)
        raw = os.environ.get(key.env) if key.env else None
        if raw:
            try:
                return self._absolute(Setting(name, parse_value(key, raw), key.env or ""))
            except ConfigError as exc:
                raise ConfigError(f"environment variable {key.env}: {exc}") from None
        if self.profile is not None and name in self.file.profiles[self.profile]:
            value = self.file.profiles[self.profile][name]
            return self._absolute(Setting(name, value, f"profile {self.profile}"))
        if name in self.file.top:
            return self._absolute(Setting(name, self.file.top[name], FILE))
        if name == "db":
            where = f"{DEFAULT} ({HOME_ENV})" if os.environ.get(HOME_ENV) else DEFAULT
            return Setting(name, str(default_db_path()), where)
        return Setting(name, DEFAULTS.get(name), DEFAULT)

    def _absolute(self, setting: Setting) -> Setting:
        """A path from the file or the environment with ``~`` expanded; a relative one in the
        file is relative to the memllm home (``db``) or to the file's folder (``model``), not
        to where memllm runs. A command-line path stays as given."""
        if KEYS[setting.key].kind != "path":
            return setting
        path = Path(str(setting.value)).expanduser()
        if not path.is_absolute() and not setting.given:
            path = (home_dir() if setting.key == "db" else self.path.parent) / path
        return Setting(setting.key, str(path), setting.source)

    def db_path(self, option: Path | None = None) -> Path:
        """The memory file: ``--db``, ``MEMLLM_DB``, the profile, the file, or the default."""
        return Path(str(self.get("db", option).value))

    def model(self, path: str | None = None, url: str | None = None) -> tuple[Setting, Setting]:
        """(model, model_url): one choice, made by the first source that names either.

        A ``--model`` on the command line outruns a ``model_url`` in the file, and a
        profile's ``model_url`` outruns a ``model`` at the file's top level. The one
        outrun comes back unset, its source saying what outran it.
        """
        chosen_path, chosen_url = self.get("model", path), self.get("model_url", url)
        path_rank, url_rank = _rank(chosen_path), _rank(chosen_url)
        if chosen_path.value is not None and path_rank < url_rank:
            chosen_url = _outrun(chosen_url, chosen_path)
        elif chosen_url.value is not None and url_rank < path_rank:
            chosen_path = _outrun(chosen_path, chosen_url)
        return chosen_path, chosen_url

    def api_key(self, option: str | None = None) -> Setting:
        """The model server's API key: ``--api-key``, ``MEMLLM_API_KEY``, the environment
        variable that ``api_key_env`` names, else ``OPENAI_API_KEY``. The key never comes
        from the file itself."""
        if option:
            return Setting("api_key", option, COMMAND_LINE)
        if os.environ.get(API_KEY_ENV):
            return Setting("api_key", os.environ[API_KEY_ENV], API_KEY_ENV)
        named = self.get("api_key_env")
        if named.value is not None:
            where = f"{named.value} (api_key_env, {named.source})"
            return Setting("api_key", os.environ.get(str(named.value)) or None, where)
        if os.environ.get(OPENAI_KEY_ENV):
            return Setting("api_key", os.environ[OPENAI_KEY_ENV], OPENAI_KEY_ENV)
        return Setting("api_key", None, DEFAULT)

    def all(self) -> list[Setting]:
        """Every setting as a command without options would use it (``config show``)."""
        self.check()
        model, model_url = self.model()
        shown = {"model": model, "model_url": model_url}
        rows = [
            Setting("profile", self.profile, self.profile_source or DEFAULT),
            *(shown.get(name) or self.get(name) for name in KEYS),
        ]
        key = self.api_key()
        rows.append(Setting("api_key", "(hidden)" if key.value else None, key.source))
        return rows


def _rank(setting: Setting) -> int:
    """0 for the command line, 1 for the environment, 2 a profile, 3 the file, 4 defaults."""
    source = setting.source
    if source == COMMAND_LINE:
        return 0
    if source.startswith("profile "):
        return 2
    if source == FILE:
        return 3
    if source.startswith(DEFAULT):
        return 4
    return 1  # an environment variable


def _outrun(setting: Setting, by: Setting) -> Setting:
    if setting.value is None:
        return setting
    return Setting(setting.key, None, f"{setting.source}, unused: {by.key} from {by.source}")
