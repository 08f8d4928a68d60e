"""The model options of ``ask``, ``chat`` and ``ingest``, and the session they open."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from memllm_cli.cli.common import embedder, open_store, settings
from memllm_cli.cli.output import message

if TYPE_CHECKING:
    from memllm_cli.runtime.loop import Session
    from memllm_cli.runtime.model import Model
    from memllm_cli.runtime.server import ServerOptions

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
    from memllm_cli.runtime.transport import check_url

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


def _checked_kind(kind: str) -> str:
    from memllm_cli.runtime.server import KINDS

    if kind not in KINDS:
        raise typer.BadParameter(f"{kind!r} is not one of {', '.join(KINDS)}")
    return kind


ServerKind = Annotated[
    str,
    typer.Option(
        "--server-kind",
        callback=_checked_kind,
        help=(
            "What serves --model-url: llamacpp (llama-server, llama-cpp-python), vllm, "
            "ollama, openai (sent no grammar), or auto (ask it once)."
        ),
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help=(
            "The model server's API key (default: MEMLLM_API_KEY, the variable the settings' "
            "api_key_env names, else OPENAI_API_KEY)."
        ),
    ),
]
ServedAdapter = Annotated[
    bool,
    typer.Option(
        "--served-adapter",
        help=(
            "The --model-url server runs the default model with memllm's adapter "
            "(llama-server --lora, an Ollama ADAPTER): send the adapter's prompts."
        ),
    ),
]
Timeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=1,
        max=86400,
        help=(
            "Seconds to wait for the --model-url server's next bytes (default 120); "
            "failed connections, 429 and 5xx answers are retried."
        ),
    ),
]


def server_options(
    url: str | None,
    api_key: str | None,
    kind: str,
    served_adapter: bool,
    timeout: float | None,
    ctx: typer.Context | None = None,
    model_path: str | None = None,
) -> ServerOptions | None:
    """How to reach the model server: ``--model-url``, or with ``ctx`` the server the
    settings name (``memllm config``) when no --model sets them aside. A server option
    without a server is a usage error. The key: ``--api-key``, ``MEMLLM_API_KEY``, the
    variable the settings' ``api_key_env`` names, else ``OPENAI_API_KEY``."""
    from memllm_cli.config import Settings

    chosen = Settings() if ctx is None else settings(ctx)
    if ctx is not None:
        url = chosen_model(ctx, model_path, url, None)[1]
    if url is None:
        if served_adapter:
            raise typer.BadParameter("--served-adapter goes with --model-url")
        if kind != "auto":
            raise typer.BadParameter("--server-kind goes with --model-url")
        return None
    from dataclasses import replace

    from memllm_cli.runtime.server import ServerOptions

    key = chosen.api_key(api_key).value
    options = ServerOptions(kind=kind, api_key=_text(key), served_adapter=served_adapter)
    return options if timeout is None else replace(options, timeout=timeout)


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
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        max=1024,
        help=(
            "llama.cpp's CPU threads, for prompts and generation alike (default, for a small "
            "model: one generating, the cores but one, at most 4, for prompts)."
        ),
    ),
]
GpuLayers = Annotated[
    int | None,
    typer.Option(
        "--n-gpu-layers",
        min=-1,
        max=1 << 20,
        help="Model layers to run on the GPU: 0 none, -1 all (default: all, with a GPU build).",
    ),
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
    server: ServerOptions | None = None,
    threads: int | None = None,
    gpu_layers: int | None = None,
) -> tuple[Session, float]:
    """The memory and the chosen model, joined; also the model's load time in seconds.

    Options left out come from the environment or the settings file (``memllm config``).
    """
    from memllm_cli.runtime.loop import Session

    chosen_model(ctx, model_path, url, model_name)  # a bad setting fails before the memory opens
    me = chosen_me(ctx, me)
    store = open_store(ctx)
    started = time.perf_counter()
    model = load_chosen_model(
        ctx, model_path, url, model_name, server=server, threads=threads, gpu_layers=gpu_layers
    )
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


def load_chosen_model(
    ctx: typer.Context,
    model_path: str | None,
    url: str | None,
    model_name: str | None,
    *,
    server: ServerOptions | None = None,
    threads: int | None = None,
    gpu_layers: int | None = None,
) -> Model:
    """The model the options choose, else the environment or the settings file, loaded."""
    from memllm_cli.runtime import models

    chosen = settings(ctx)
    path, url, name = chosen_model(ctx, model_path, url, model_name)
    return models.load_model(
        path,
        url,
        model_name=name,
        server=server,
        threads=_number(chosen.get("threads", threads).value),
        gpu_layers=_number(chosen.get("gpu_layers", gpu_layers).value),
    )


def chosen_me(ctx: typer.Context, me: str | None) -> str:
    """``--me``, else ``MEMLLM_ME``, the settings file, or "me"."""
    return str(settings(ctx).get("me", me).value)


def _number(value: object) -> int | None:
    return None if value is None else int(str(value))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _show_event(kind: str, text: str) -> None:
    message(f"[memory {kind}] {text}")
