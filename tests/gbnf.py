"""A small GBNF reader for tests: a grammar without recursion, as one Python regex.

The protocol's grammars are regular (no rule refers back to itself), so each rule
inlines into a regex and "does the grammar accept this string" is ``re.fullmatch``.
That lets tests check the grammars against the formatter and parser offline, with
no model and no llama.cpp. It reads the GBNF subset the protocol writes: literals,
character classes (negated, ranges, ``\\x`` and ``\\n`` escapes), groups, ``|``,
``?``, ``*``, ``+`` and ``{m,n}``.
"""

from __future__ import annotations

import re

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "]": "]", "[": "["}


class GrammarSyntaxError(ValueError):
    """Text this reader does not understand (a test bug or a grammar bug)."""


def _escape_at(text: str, i: int) -> tuple[str, int]:
    """The character an escape at ``text[i] == '\\'`` stands for, and the index after it."""
    code = text[i + 1]
    if code == "x":
        return chr(int(text[i + 2 : i + 4], 16)), i + 4
    if code in _ESCAPES:
        return _ESCAPES[code], i + 2
    raise GrammarSyntaxError(f"unknown escape \\{code}")


def _rules(grammar: str) -> dict[str, str]:
    rules: dict[str, str] = {}
    for line in grammar.split("\n"):  # a literal may hold a raw \r, never a raw \n
        if not line.strip():
            continue
        name, sep, body = line.partition("::=")
        if not sep:
            raise GrammarSyntaxError(f"not a rule: {line!r}")
        rules[name.strip()] = body.strip()
    return rules


class _Compiler:
    def __init__(self, rules: dict[str, str]) -> None:
        self.rules = rules
        self.active: list[str] = []

    def rule(self, name: str) -> str:
        if name not in self.rules:
            raise GrammarSyntaxError(f"undefined rule {name}")
        if name in self.active:
            raise GrammarSyntaxError(f"recursive rule {name}: not a regular grammar")
        self.active.append(name)
        pattern, end = self._alternation(self.rules[name], 0)
        if end != len(self.rules[name]):
            raise GrammarSyntaxError(f"unexpected text in rule {name}: {self.rules[name][end:]!r}")
        self.active.pop()
        return f"(?:{pattern})"

    def _alternation(self, text: str, i: int) -> tuple[str, int]:
        options = []
        while True:
            seq, i = self._sequence(text, i)
            options.append(seq)
            i = _skip(text, i)
            if i < len(text) and text[i] == "|":
                i += 1
                continue
            return "|".join(options), i

    def _sequence(self, text: str, i: int) -> tuple[str, int]:
        parts = []
        while True:
            i = _skip(text, i)
            if i >= len(text) or text[i] in "|)":
                return "".join(parts), i
            atom, i = self._atom(text, i)
            atom, i = _repeat(atom, text, i)
            parts.append(atom)

    def _atom(self, text: str, i: int) -> tuple[str, int]:
        c = text[i]
        if c == '"':
            out, i = [], i + 1
            while text[i] != '"':
                if text[i] == "\\":
                    char, i = _escape_at(text, i)
                else:
                    char, i = text[i], i + 1
                out.append(char)
            return f"(?:{re.escape(''.join(out))})", i + 1
        if c == "[":
            return _char_class(text, i)
        if c == "(":
            inner, i = self._alternation(text, i + 1)
            if i >= len(text) or text[i] != ")":
                raise GrammarSyntaxError("unclosed group")
            return f"(?:{inner})", i + 1
        match = re.compile(r"[A-Za-z][\w-]*").match(text, i)
        if match is None:
            raise GrammarSyntaxError(f"unexpected {text[i:]!r}")
        return self.rule(match.group()), match.end()


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _repeat(atom: str, text: str, i: int) -> tuple[str, int]:
    if i < len(text) and text[i] in "?*+":
        return f"(?:{atom}){text[i]}", i + 1
    match = re.compile(r"\{(\d+)(,(\d*))?\}").match(text, i)
    if match is None:
        return atom, i
    return f"(?:{atom}){match.group()}", match.end()


def _char_class(text: str, i: int) -> tuple[str, int]:
    i += 1
    negated = text[i] == "^"
    i += negated
    chars: list[str] = []
    while text[i] != "]":
        if text[i] == "\\":
            char, i = _escape_at(text, i)
        else:
            char, i = text[i], i + 1
        if text[i] == "-" and text[i + 1] != "]":
            if text[i + 1] == "\\":
                last, i = _escape_at(text, i + 1)
            else:
                last, i = text[i + 1], i + 2
            chars.append(f"{re.escape(char)}-{re.escape(last)}")
        else:
            chars.append(re.escape(char))
    return f"[{'^' if negated else ''}{''.join(chars)}]", i + 1


def to_regex(grammar: str) -> str:
    """The grammar's ``root`` as a regex (match it with ``re.fullmatch``)."""
    return _Compiler(_rules(grammar)).rule("root")


def accepts(grammar: str, text: str) -> bool:
    """Whether ``grammar`` generates exactly ``text``."""
    return re.fullmatch(to_regex(grammar), text, re.DOTALL) is not None
