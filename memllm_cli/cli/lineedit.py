"""Line editing and history for ``memllm chat``, when a person types at a terminal.

Python's ``readline`` (GNU readline or libedit) gives arrow keys, Ctrl-R search and
Tab completion of the slash commands. The history file lives in the memllm home,
readable by its owner alone (it holds what was said to the memory), and keeps the
last :data:`HISTORY_LENGTH` lines; a line typed with a leading space is not kept,
as in bash. Where ``readline`` is missing (Windows) or stdin is not a terminal,
lines are read plainly, with no history.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from memllm_cli.cli.output import message

if TYPE_CHECKING:
    from rich.console import Console

HISTORY_FILE = "chat_history"
HISTORY_LENGTH = 1000
PROMPT = "you› "
# Escapes inside \001 ... \002 take no room on screen: readline then knows where the
# prompt ends, so editing and scrolling history never overwrite it.
BOLD_PROMPT = f"\001\033[1m\002{PROMPT.rstrip()}\001\033[0m\002 "


class LineReader:
    """Reads one chat line at a time; with ``readline`` when ``editing`` is on."""

    def __init__(
        self, console: Console, history: Path, commands: Sequence[str], *, editing: bool
    ) -> None:
        self._console = console
        self._history = history
        self._commands = list(commands)
        self._readline = _readline() if editing else None
        if self._readline is not None:
            self._start(self._readline)

    @property
    def editing(self) -> bool:
        return self._readline is not None

    def read(self) -> str:
        """The next line (EOFError at the end, KeyboardInterrupt on Ctrl-C)."""
        if self._readline is None:
            return self._console.input(f"[bold]{PROMPT.rstrip()}[/bold] ")
        bold = self._console.is_terminal and not self._console.no_color
        line = input(BOLD_PROMPT if bold else PROMPT)
        if line.strip() and not line.startswith(" "):
            self._readline.add_history(line)
        return line

    def close(self) -> None:
        """Save the history: the last HISTORY_LENGTH lines, in a file only you can read."""
        if self._readline is None:
            return
        from memllm_cli import system

        try:
            system.make_private_folder(self._history.parent)
            if not self._history.exists():
                system.create_private_file(self._history)
            self._readline.write_history_file(str(self._history))
            system.keep_private(self._history)
        except OSError as exc:
            message(f"warning: chat history not saved to {self._history}: {exc.strerror}")

    def _start(self, readline: ModuleType) -> None:
        readline.set_auto_history(False)
        readline.set_history_length(HISTORY_LENGTH)
        readline.clear_history()
        if self._history.is_file():
            try:
                readline.read_history_file(str(self._history))
            except OSError as exc:
                message(f"warning: chat history not read from {self._history}: {exc.strerror}")
        readline.set_completer(self._complete)
        readline.set_completer_delims(" \t\n")
        if "libedit" in (readline.__doc__ or ""):
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind("tab: complete")

    def _complete(self, text: str, state: int) -> str | None:
        """Tab completes a slash command at the start of the line."""
        matches = [c for c in self._commands if c.startswith(text)] if text.startswith("/") else []
        return matches[state] if state < len(matches) else None


def _readline() -> ModuleType | None:
    try:
        import readline
    except ImportError:  # Windows, or a Python built without it: plain lines
        return None
    return readline


@contextmanager
def line_reader(console: Console, history: Path, commands: Sequence[str]) -> Iterator[LineReader]:
    """A :class:`LineReader` that edits lines when stdin is a terminal; saves history at exit."""
    reader = LineReader(console, history, commands, editing=sys.stdin.isatty())
    try:
        yield reader
    finally:
        reader.close()
