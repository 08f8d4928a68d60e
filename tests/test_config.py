"""The settings file and profiles: precedence, sources, checks, careful edits, and their use."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from memllm_cli import config
from memllm_cli.config import Settings
from memllm_cli.config_file import ConfigError, read, write
from memllm_cli.runtime import models
from memllm_cli.runtime.scripted import ScriptedModel


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    """The settings file the autouse fixture points MEMLLM_CONFIG at (not made yet)."""
    return Path(os.environ["MEMLLM_CONFIG"])


def write_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# Each layer sets db to its own name; the expected winner is the first layer present.
LAYERS = ("option", "env", "profile", "file")


@pytest.mark.parametrize(
    "present",
    [
        ("option", "env", "profile", "file"),
        ("env", "profile", "file"),
        ("profile", "file"),
        ("file",),
        (),
        ("option", "file"),
        ("env", "file"),
        ("option", "profile"),
    ],
    ids=lambda p: "+".join(p) or "nothing",
)
def test_precedence_option_env_profile_file_default(
    present, settings_file, memllm_home, monkeypatch, tmp_path
):
    text = 'db = "/f/file.db"\n' if "file" in present else ""
    text += '[profiles.work]\nme = "Worker"\n'
    if "profile" in present:
        text += 'db = "/f/profile.db"\n'
    write_file(settings_file, text)
    if "env" in present:
        monkeypatch.setenv("MEMLLM_DB", "/f/env.db")
    option = Path("/f/option.db") if "option" in present else None
    found = Settings("work").get("db", option)
    expected = {
        "option": ("/f/option.db", "command line"),
        "env": ("/f/env.db", "MEMLLM_DB"),
        "profile": ("/f/profile.db", "profile work"),
        "file": ("/f/file.db", "file"),
    }
    winner = next((layer for layer in LAYERS if layer in present), None)
    if winner is None:
        assert (found.value, found.source) == (
            str(memllm_home / "memory.db"),
            "default (MEMLLM_HOME)",
        )
    else:
        assert (found.value, found.source) == expected[winner]


def test_config_show_says_where_each_value_comes_from(cli, settings_file, monkeypatch):
    write_file(
        settings_file,
        'me = "Ingrid Solberg"\nthreads = 4\n[profiles.work]\nthreads = 8\nmodel_name = "qwen"\n',
    )
    monkeypatch.setenv("MEMLLM_GPU_LAYERS", "-1")
    rows = {
        r["key"]: r for r in jsonl(cli("--profile", "work", "config", "show", "--jsonl").stdout)
    }
    assert rows["profile"] == {"key": "profile", "value": "work", "source": "command line"}
    assert rows["me"] == {"key": "me", "value": "Ingrid Solberg", "source": "file"}
    assert rows["threads"] == {"key": "threads", "value": 8, "source": "profile work"}
    assert rows["model_name"]["source"] == "profile work"
    assert rows["gpu_layers"] == {"key": "gpu_layers", "value": -1, "source": "MEMLLM_GPU_LAYERS"}
    assert rows["model"] == {"key": "model", "value": None, "source": "default"}
    plain = {r["key"]: r for r in jsonl(cli("config", "show", "--jsonl").stdout)}
    assert plain["threads"] == {"key": "threads", "value": 4, "source": "file"}
    monkeypatch.setenv("MEMLLM_PROFILE", "work")
    by_env = {r["key"]: r for r in jsonl(cli("config", "show", "--jsonl").stdout)}
    assert by_env["profile"]["source"] == "MEMLLM_PROFILE"
    assert by_env["threads"]["value"] == 8
    assert cli("config", "show").stderr == f"settings file: {settings_file}\n"


def test_a_profile_picks_another_memory(cli, settings_file, memllm_home):
    cli("config", "set", "--profile", "work", "db", "work.db")
    assert cli("--profile", "work", "facts", "add", "Tove", "employer", "NIVA").exit_code == 0
    assert cli("facts", "add", "Ingrid", "residence", "Oslo").exit_code == 0
    work = jsonl(cli("--profile", "work", "facts", "list", "--jsonl").stdout)
    home = jsonl(cli("facts", "list", "--jsonl").stdout)
    assert [r["subject"] for r in work] == ["Tove"]
    assert [r["subject"] for r in home] == ["Ingrid"]
    assert (memllm_home / "work.db").is_file() and (memllm_home / "memory.db").is_file()
    # The root option and the config subcommand's option name the same table.
    assert cli("--profile", "work", "config", "get", "db").stdout == f"{memllm_home / 'work.db'}\n"


def test_an_unknown_profile_is_one_line_and_exit_1(cli, settings_file, monkeypatch):
    write_file(settings_file, "[profiles.work]\nme = 'W'\n")
    result = cli("--profile", "home", "facts", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no profile 'home' in ")
    assert "profiles: work" in result.stderr and result.stderr.count("\n") == 1
    with_db = cli("--db", str(settings_file.parent / "m.db"), "--profile", "home", "facts", "list")
    assert with_db.exit_code == 1 and not (settings_file.parent / "m.db").exists()
    monkeypatch.setenv("MEMLLM_PROFILE", "nope")
    assert cli("facts", "list").exit_code == 1


def test_a_malformed_file_names_its_line(cli, settings_file):
    write_file(settings_file, 'me = "Ingrid"\n\nthreads = = 4\n')
    result = cli("facts", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: malformed settings file {settings_file}:3: ")
    assert result.stderr.count("\n") == 1 and result.stdout == ""


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("modle = 'x.gguf'\n", ":1: unknown setting 'modle'"),
        ("me = 'a'\nthreads = 'four'\n", ":2: threads must be a whole number"),
        ("threads = 0\n", ":1: threads must be at least 1"),
        ("threads = true\n", "threads must be a whole number"),
        ("[profiles.w]\nme = 'a'\n[profiles.x]\ngpu_layers = -2\n", ":4 (profile x): gpu_layers"),
        ("me = ''\n", "me is empty"),
        ("api_key = 'sk-123'\n", "name that variable with api_key_env"),
        ("api_key_env = 'sk-proj-abc123'\n", "never the key itself"),
        ("profiles = 3\n", "write profiles as [profiles.NAME]"),
        ("[profiles.'a b']\nme = 'x'\n", "bad profile name 'a b'"),
    ],
)
def test_a_bad_setting_in_the_file_is_named_with_its_line(cli, settings_file, text, says):
    write_file(settings_file, text)
    result = cli("config", "show")
    assert result.exit_code == 1
    assert says in result.stderr and str(settings_file) in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_bad_environment_value_names_the_variable(cli, monkeypatch):
    monkeypatch.setenv("MEMLLM_THREADS", "many")
    result = cli("config", "get", "threads")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: environment variable MEMLLM_THREADS: threads must be a whole number, not 'many'\n"
    )


def test_set_and_unset_keep_comments_and_layout(cli, settings_file):
    original = (
        "# my settings\n"
        'me = "Ingrid"  # who I am\n'
        "\n"
        "# the work laptop\n"
        "[profiles.work]\n"
        'db = "work.db"\n'
        "threads = 2 # small machine\n"
    )
    write_file(settings_file, original)
    assert cli("config", "set", "threads", "4").exit_code == 0
    assert cli("config", "set", "--profile", "work", "threads", "6").exit_code == 0
    assert cli("config", "set", "--profile", "home", "me", "Me at home").exit_code == 0
    assert cli("config", "unset", "--profile", "work", "db").exit_code == 0
    assert settings_file.read_text() == (
        "# my settings\n"
        'me = "Ingrid"  # who I am\n'
        "threads = 4\n"
        "\n"
        "# the work laptop\n"
        "[profiles.work]\n"
        "threads = 6\n"
        "\n"
        "[profiles.home]\n"
        'me = "Me at home"\n'
    )
    assert stat.S_IMODE(settings_file.stat().st_mode) == 0o600
    parsed = read(settings_file)
    assert parsed.top == {"me": "Ingrid", "threads": 4}
    assert parsed.profiles == {"work": {"threads": 6}, "home": {"me": "Me at home"}}


def test_set_makes_a_private_file_and_unset_of_nothing_changes_nothing(cli, settings_file):
    result = cli("config", "set", "me", "Ingrid Solberg")
    assert result.exit_code == 0
    assert result.stderr == f"set me = 'Ingrid Solberg' in the top level of {settings_file}\n"
    assert settings_file.read_text() == 'me = "Ingrid Solberg"\n'
    assert stat.S_IMODE(settings_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings_file.parent.stat().st_mode) == 0o700
    before = settings_file.stat().st_mtime_ns
    unset = cli("config", "unset", "--profile", "ghost", "me")
    assert unset.exit_code == 0 and "me was not set in [profiles.ghost]" in unset.stderr
    assert settings_file.stat().st_mtime_ns == before
    gone = cli("config", "unset", "me")
    assert "now 'me' (default)" in gone.stderr
    assert read(settings_file).top == {}


def test_a_layout_the_line_editor_cannot_follow_is_rewritten_correctly(settings_file):
    write_file(settings_file, 'profiles = { work = { db = "w.db" } }\nme = """\nIngrid"""\n')
    assert read(settings_file).top == {"me": "Ingrid"}
    assert write(settings_file, "me", "one", None)
    assert write(settings_file, "threads", 3, "work")
    parsed = read(settings_file)
    assert parsed.top == {"me": "one"}
    assert parsed.profiles == {"work": {"db": "w.db", "threads": 3}}


def test_set_writes_through_a_symlink(tmp_path, settings_file):
    real = write_file(tmp_path / "dotfiles" / "memllm.toml", "me = 'a'\n")
    settings_file.parent.mkdir(parents=True)
    settings_file.symlink_to(real)
    write(settings_file, "me", "b")
    assert settings_file.is_symlink() and read(real).top == {"me": "b"}


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["set", "nosuch", "1"], 2, "no setting 'nosuch'"),
        (["get", "nosuch"], 2, "no setting 'nosuch'"),
        (["set", "threads", "four"], 1, "threads must be a whole number, not 'four'"),
        (["set", "gpu_layers", "-5"], 1, "gpu_layers must be at least -1"),
        (["set", "me", "x", "--profle", "w"], 2, "unexpected extra argument"),
        (["set", "api_key_env", "sk-abc123def456"], 1, "never the key itself"),
        (["set", "model_url", "file:///etc/passwd"], 1, "error: "),
        (["set", "--profile", "a/b", "me", "x"], 1, "bad profile name 'a/b'"),
    ],
)
def test_bad_keys_exit_2_and_bad_values_exit_1(cli, settings_file, args, code, says):
    result = cli("config", *args)
    assert result.exit_code == code
    assert says in result.stderr and result.stderr.count("\n") == 1
    assert not settings_file.exists()


def test_set_takes_minus_one_for_all_gpu_layers(cli, settings_file):
    assert cli("config", "set", "gpu_layers", "-1", "--profile", "gpu").exit_code == 0
    assert read(settings_file).profiles == {"gpu": {"gpu_layers": -1}}


def test_get_prints_the_value_and_exits_1_when_unset(cli, settings_file, monkeypatch):
    assert cli("config", "get", "me").stdout == "me\n"
    missing = cli("config", "get", "model")
    assert (
        missing.exit_code == 1 and missing.stdout == "" and missing.stderr == "model is not set\n"
    )
    monkeypatch.setenv("MEMLLM_ME", "Env Me")
    as_json = json.loads(cli("config", "get", "me", "--json").stdout)
    assert as_json == {"key": "me", "value": "Env Me", "source": "MEMLLM_ME"}
    assert cli("--db", "/x/y.db", "config", "get", "db").stdout == "/x/y.db\n"


def test_set_notes_what_outranks_the_value_just_set(cli, monkeypatch):
    monkeypatch.setenv("MEMLLM_ME", "Env Me")
    result = cli("config", "set", "me", "File Me")
    assert "note: MEMLLM_ME sets me too, and wins: 'Env Me'" in result.stderr


def test_paths_relative_to_the_home_or_the_settings_folder(cli, settings_file, memllm_home):
    write_file(settings_file, 'db = "notes.db"\nmodel = "models/m.gguf"\n')
    chosen = Settings()
    assert chosen.db_path() == memllm_home / "notes.db"
    assert chosen.get("model").value == str(settings_file.parent / "models" / "m.gguf")
    cli("config", "set", "db", "sub/dir.db")  # a path typed here is kept absolute
    assert read(settings_file).top["db"] == str(Path.cwd() / "sub" / "dir.db")
    cli("config", "set", "model", "x.gguf")
    assert read(settings_file).top["model"] == str(Path.cwd() / "x.gguf")


def test_model_and_model_url_are_one_choice(settings_file, monkeypatch):
    write_file(
        settings_file, 'model_url = "http://127.0.0.1:8080"\n[profiles.p]\nmodel = "/m.gguf"\n'
    )
    path, url = Settings().model()
    assert (path.value, url.value) == (None, "http://127.0.0.1:8080")
    path, url = Settings("p").model()  # the profile's model outranks the file's server
    assert (path.value, url.value) == ("/m.gguf", None)
    assert url.source == "file, unused: model from profile p"
    path, url = Settings("p").model(url="http://localhost:9")  # the option outranks both
    assert (path.value, url.value) == (None, "http://localhost:9")
    monkeypatch.setenv("MEMLLM_MODEL", "/env.gguf")
    path, url = Settings().model()
    assert (path.value, url.value) == ("/env.gguf", None)


def test_ask_uses_the_profile_server_key_threads_and_name(cli, settings_file, monkeypatch):
    write_file(
        settings_file,
        "threads = 3\n[profiles.srv]\n"
        'model_url = "http://127.0.0.1:9"\nmodel_name = "qwen"\nme = "Ola"\n'
        'api_key_env = "SRV_KEY"\ngpu_layers = -1\n',
    )
    monkeypatch.setenv("SRV_KEY", "sk-srv")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-generic")  # the profile's own key wins over it
    loaded: list[tuple] = []

    def load(path=None, url=None, *, model_name=None, server=None, threads=None, gpu_layers=None):
        key = server.api_key if server else None
        loaded.append((path, url, model_name, key, threads, gpu_layers))
        return ScriptedModel(["I do not know."])

    monkeypatch.setattr(models, "load_model", load)
    result = cli("--profile", "srv", "ask", "Who am I?", "--no-memory", "--json")
    assert result.exit_code == 0, result.stderr
    assert loaded == [(None, "http://127.0.0.1:9", "qwen", "sk-srv", 3, -1)]
    loaded.clear()
    cli("--profile", "srv", "ask", "Who?", "--no-memory", "--model", "/m.gguf", "--threads", "2")
    assert loaded == [("/m.gguf", None, "qwen", None, 2, -1)]
    loaded.clear()
    cli("ask", "Who?", "--no-memory", "--model-url", "http://127.0.0.1:9", "--api-key", "sk-opt")
    assert loaded == [(None, "http://127.0.0.1:9", None, "sk-opt", 3, None)]
    usage = cli("ask", "Who?", "--server-kind", "vllm")  # no server anywhere
    assert usage.exit_code == 2 and "--server-kind goes with --model-url" in usage.stderr
    assert cli("--profile", "srv", "ask", "Who?", "--server-kind", "vllm").exit_code == 0


def test_a_bad_server_url_in_the_file_fails_before_the_memory_opens(
    cli, settings_file, memllm_home, scripted_model
):
    write_file(settings_file, 'model_url = "ftp://example.org"\n')
    result = cli("ask", "Where?")
    assert result.exit_code == 1 and result.stderr.startswith("error: ")
    assert not (memllm_home / "memory.db").exists()


def test_the_api_key_comes_from_the_variable_named_and_is_never_shown(
    cli, settings_file, monkeypatch
):
    write_file(settings_file, 'api_key_env = "WORK_LLM_KEY"\n')
    assert Settings().api_key().value is None
    monkeypatch.setenv("WORK_LLM_KEY", "sk-secret-123")
    key = Settings().api_key()
    assert (key.value, key.source) == ("sk-secret-123", "WORK_LLM_KEY (api_key_env, file)")
    shown = cli("config", "show", "--json")
    assert "sk-secret-123" not in shown.stdout
    rows = {r["key"]: r for r in json.loads(shown.stdout)}
    assert rows["api_key"]["value"] == "(hidden)"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-generic")
    assert Settings().api_key().source == "WORK_LLM_KEY (api_key_env, file)"
    monkeypatch.setenv("MEMLLM_API_KEY", "sk-other")
    assert Settings().api_key().source == "MEMLLM_API_KEY"
    assert Settings().api_key("sk-flag").value == "sk-flag"


def test_edit_opens_the_editor_on_a_template_then_checks_the_file(
    cli, settings_file, tmp_path, monkeypatch
):
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys\n"
        "path = sys.argv[1]\n"
        "text = open(path).read()\n"
        "assert '# [profiles.work]' in text\n"
        "open(path, 'a').write(sys.argv[0] and \"me = 'Edited'\\n\")\n"
    )
    monkeypatch.setenv("VISUAL", f"{sys.executable} {editor}")
    result = cli("config", "edit")
    assert result.exit_code == 0, result.stderr
    assert read(settings_file).top == {"me": "Edited"}
    assert stat.S_IMODE(settings_file.stat().st_mode) == 0o600
    monkeypatch.setenv(
        "VISUAL", f"{sys.executable} -c \"open(__import__('sys').argv[1], 'a').write('x=')\""
    )
    broken = cli("config", "edit")
    assert broken.exit_code == 1 and "malformed settings file" in broken.stderr


def test_config_path_follows_memllm_config(cli, settings_file):
    assert cli("config", "path").stdout == f"{settings_file}\n"


def test_no_settings_file_means_no_toml_parser_imported(tmp_path, settings_file):
    code = (
        "import sys\n"
        "from memllm_cli.cli import main\n"
        "sys.argv = ['memllm', 'facts', 'list', '--jsonl']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('tomllib' in sys.modules, 'tomli_w' in sys.modules, file=sys.stderr)\n"
    )

    def imported() -> str:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        return done.stderr.strip().splitlines()[-1]

    assert imported() == "False False"
    write_file(settings_file, f"db = {json.dumps(str(tmp_path / 'm.db'))}\n")
    assert imported() == "True False"
    assert (tmp_path / "m.db").is_file()


def test_the_settings_module_owns_the_default_home(memllm_home):
    assert config.default_db_path() == memllm_home / "memory.db"
    with pytest.raises(ConfigError):
        Settings("missing").check()


def test_mcp_loads_its_model_with_the_threads_and_gpu_layers_asked(cli, settings_file, monkeypatch):
    """`memllm mcp` loads the model on the first remember: with the flags, else the settings."""
    pytest.importorskip("mcp")
    from memllm_cli.mcp_server import server, tools

    write_file(settings_file, "threads = 3\ngpu_layers = 5\n")
    loaders, loaded = [], []

    class Tools:
        def __init__(self, store, embedder, load_model, *, me):
            loaders.append(load_model)

        def close(self):
            pass

    def load(path=None, url=None, *, model_name=None, server=None, threads=None, gpu_layers=None):
        loaded.append((threads, gpu_layers))
        return ScriptedModel([])

    monkeypatch.setattr(tools, "MemoryTools", Tools)
    monkeypatch.setattr(server, "build", lambda t, read_only=False: None)
    monkeypatch.setattr(server, "serve_stdio", lambda s: None)
    monkeypatch.setattr(models, "load_model", load)
    assert cli("mcp").exit_code == 0
    assert cli("mcp", "--threads", "2", "--n-gpu-layers", "0").exit_code == 0
    for load_model in loaders:
        load_model()
    assert loaded == [(3, 5), (2, 0)]
