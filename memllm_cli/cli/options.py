"""The model options of ``ask``, ``chat`` and ``ingest``, and the session they open."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from memllm_cli.cli.common import embedder, open_store, settings
from memllm_cli.cli.output import message

if TYPE_CHECKING:
    from memllm_cli.runtime.loop import Session

ModelPath = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="A GGUF file to use instead of the default model (or MEMLLM_MODEL, settings file).",
    ),
]


def _checked_url(url: str | None) -> str | None:
    """A bad ``--model-url`` fails before the memory opens or a document is read."""
    if url is None:
        return None
    from memllm_cli.runtime.server import check_url

    return check_url(url)


ModelUrl = Annotated[
    str | None,
    typer.Option(
        "--model-url",
        callback=_checked_url,
        help=(
            "An OpenAI-compatible server (llama-server, Ollama, vLLM): an http(s) URL, "
            "reached directly (MEMLLM_MODEL_PROXY=1 lets HTTP_PROXY apply). Or "
            "MEMLLM_MODEL_URL, or the settings file."
        ),
    ),
]
ModelName = Annotated[
    str | None,
    typer.Option("--model-name", help="The model name to send to --model-url (MEMLLM_MODEL_NAME)."),
]
ShowMemory = Annotated[
    bool, typer.Option("--show-memory", help="Print every memory read and write to stderr.")
]
Me = Annotated[
    str | None,
    typer.Option(
        "--me", help="Your own name in memory (default: MEMLLM_ME, the settings file, or 'me')."
    ),
]
MaxTokens = Annotated[
    int, typer.Option("--max-tokens", min=1, max=1 << 20, help="Longest answer, in tokens.")
]


def open_session(
    ctx: typer.Context,
    model_path: str | None,
    url: str | None,
    model_name: str | None,
    *,
    show_memory: bool,
    me: str | None,
    max_tokens: int,
    memory: bool = True,
) -> tuple[Session, float]:
    """The memory and the chosen model, joined; also the model's load time in seconds.

    Options left out come from the environment or the settings file (``memllm config``).
    """
    from memllm_cli.runtime import models
    from memllm_cli.runtime.loop import Session

    path, url, name = chosen_model(ctx, model_path, url, model_name)
    me = chosen_me(ctx, me)
    store = open_store(ctx)
    started = time.perf_counter()
    model = models.load_model(path, url, model_name=name)
    load_seconds = time.perf_counter() - started
    on_event = _show_event if show_memory else None
    session = Session(
        store, model, embedder(), me=me, memory=memory, max_tokens=max_tokens, on_event=on_event
    )
    return session, load_seconds


def chosen_model(
    ctx: typer.Context, model_path: str | None, url: str | None, model_name: str | None
) -> tuple[str | None, str | None, str | None]:
    """(GGUF path, server URL, model name) to load: the options given, else the environment
    or the settings file (``memllm config``). A bad URL fails here, before any work."""
    chosen = settings(ctx)
    path_setting, url_setting = chosen.model(model_path, url)
    name = chosen.get("model_name", model_name).value
    return _text(path_setting.value), _checked_url(_text(url_setting.value)), _text(name)


def chosen_me(ctx: typer.Context, me: str | None) -> str:
    """``--me``, else ``MEMLLM_ME``, the settings file, or "me"."""
    return str(settings(ctx).get("me", me).value)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _show_event(kind: str, text: str) -> None:
    message(f"[memory {kind}] {text}")
