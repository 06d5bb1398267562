"""The documentation is part of the product: these tests hold it to the code.

- ``docs/getting-started.md`` is followed literally: its command blocks marked
  ``<!-- test: getting-started -->`` run as written, shrunk only by ``--set`` overrides,
  and what the page says you will see (console lines, run-folder files) must appear.
- The README's first two commands are the getting-started page's.
- Every key used in a shipped config, study file or scope is documented where such keys
  are documented; every option of every command has a help string.
- The Python API page's examples run, and every public name is on it.
- Every relative link in the docs points at a file (and heading) that exists.

All of it iterates what exists (configs, commands, public names), so commands, keys and
names added later are covered without editing this file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from quickstart_run import OVERRIDES as QUICKSTART_OVERRIDES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GETTING_STARTED = DOCS / "getting-started.md"
PYTHON_API = DOCS / "python-api.md"

#: Where each kind of key is documented (a key counts as documented when it appears in
#: backticks in one of these files; files that do not exist yet are skipped).
EXPERIMENT_KEY_DOCS = ("experiments/README.md", "docs/recipe.md", "docs/strategies.md")
STUDY_KEY_DOCS = ("experiments/README.md", "docs/study.md")
SCOPE_KEY_DOCS = ("docs/concepts.md",)
#: Nested option tables whose leaves are documented by the component that reads them.
OPTION_TABLES = {
    "corpus.options": ("docs/corpora.md",),
    "search.params": ("docs/strategies.md", "docs/nni-integration.md"),
}

#: Pages other branches are adding at the same time (issue 10); links to them are allowed
#: before they exist. Empty this once they are merged.
PENDING_PAGES: set[str] = set()

#: ``--set`` overrides that shrink a getting-started run to seconds (sizes as in
#: tests/test_pipeline.py's tiny_config): 3 synthetic sessions, 16 × 16 features, a tiny
#: space, one search epoch, two retrain epochs, one CPU thread.
SMALL_RUN = {
    **QUICKSTART_OVERRIDES,  # the shrunken quickstart the predict/export tests train
    "space.stem_multiplier": 2,
    "search.max_trials": 2,
    "search.trial_epochs": 1,
    "retrain.patience": None,
    "trainer.num_threads": 1,
    "trainer.progress": True,  # the page shows the progress lines a user sees
}
#: Commands that train, and so take SMALL_RUN and a free web UI port.
TRAINING_COMMANDS = ("run", "search", "retrain", "baseline")


# --- reading the docs -------------------------------------------------------------------


def marked_blocks(path: Path, marker: str) -> list[str]:
    """Fenced code blocks directly preceded by ``<!-- MARKER -->``, in page order."""
    text = path.read_text(encoding="utf-8")
    pattern = rf"<!-- {re.escape(marker)} -->\n```[^\n]*\n(.*?)\n```"
    return re.findall(pattern, text, flags=re.S)


def shell_commands(block: str) -> list[list[str]]:
    """The commands of a shell block: comments dropped, ``\\`` joined, split at ``&&``."""
    text = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        for part in line.split("&&"):
            commands.append(shlex.split(part))
    return commands


def backticked(*relative_paths: str) -> set[str]:
    """Every backticked token of the given files, also cut at ``=``, space and ``(``."""
    tokens: set[str] = set()
    for relative in relative_paths:
        path = ROOT / relative
        if not path.is_file():
            continue
        for token in re.findall(r"`([^`\n]+)`", path.read_text(encoding="utf-8")):
            tokens.add(token)
            tokens.add(re.split(r"[=\s(]", token, maxsplit=1)[0])
    return tokens


def dotted_keys(data: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Every key of nested mappings as a dotted path, sections included."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, Mapping):
            yield from dotted_keys(value, path + ".")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


# --- following getting-started.md ------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check_install(args: list[str]) -> None:
    """``pip install torch==V -e '.[EXTRA]'``: V is the torch installed here, inside the
    package's range, and the extra exists (running pip itself is out of a test's reach)."""
    from packaging.requirements import Requirement

    assert args[:1] == ["install"], args
    pins = [a for a in args if a.startswith("torch==")]
    assert len(pins) == 1, f"the install command should pin torch: {args}"
    version = pins[0].split("==", 1)[1]
    assert metadata.version("torch").split("+")[0] == version
    requirements = [Requirement(r) for r in metadata.requires("emodarts-nni") or []]
    torch_spec = next(r for r in requirements if r.name == "torch")
    assert version in torch_spec.specifier, (version, str(torch_spec))
    editable = args[args.index("-e") + 1]
    match = re.fullmatch(r"\.\[(\w+)\]", editable)
    extras = metadata.metadata("emodarts-nni").get_all("Provides-Extra") or []
    assert match and match.group(1) in extras, (editable, extras)


def _emodarts(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run ``emodarts ARGS`` as the doc writes it, shrunk; returns stdout + stderr."""
    extra: list[str] = []
    if args and args[0] in TRAINING_COMMANDS:
        for key, value in SMALL_RUN.items():
            extra += ["--set", f"{key}={'null' if value is None else value}"]
        extra += ["--port", str(_free_port())]
    result = subprocess.run(
        [sys.executable, "-m", "emodarts_nni.cli.main", *args, *extra],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"emodarts {shlex.join(args)} failed:\n{output[-4000:]}"
    return output


def _line_prefix(line: str) -> str:
    """What a console line of the doc promises: its text up to the first number or path."""
    prefix = re.split(r"[\d/~]", line.strip(), maxsplit=1)[0]
    return " ".join(prefix.split())


@pytest.mark.e2e
def test_getting_started_is_followed_literally_at_a_small_size(tmp_path):
    blocks = marked_blocks(GETTING_STARTED, "test: getting-started")
    assert blocks, "getting-started.md marks no command block for this test"
    # The doc's commands run from a checkout; this folder stands in for it.
    for name in ("experiments", "search_spaces"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    output = ""
    for block in blocks:
        for command in shell_commands(block):
            if command[:3] == ["python3", "-m", "venv"]:
                assert command[3:] == [".venv"], command  # this interpreter plays .venv
            elif command[0] == ".venv/bin/pip":
                _check_install(command[1:])
            elif command[0] == ".venv/bin/emodarts":
                output += _emodarts(command[1:], tmp_path, env)
            else:
                pytest.fail(
                    f"getting-started.md shows a command this test cannot follow: {command}"
                )

    flat = " ".join(output.split())
    for block in marked_blocks(GETTING_STARTED, "console: getting-started"):
        for line in block.splitlines():
            prefix = _line_prefix(line)
            if prefix and prefix not in ("…", "..."):
                assert prefix in flat, f"the doc promises {line.strip()!r}; output:\n{output}"

    run_dirs = re.findall(r"^run folder: (.+)$", output, flags=re.M)
    assert len(run_dirs) == 1, output
    run_dir = Path(run_dirs[0])
    listings = marked_blocks(GETTING_STARTED, "run-folder: getting-started")
    assert listings, "getting-started.md marks no run-folder listing"
    names = re.findall(r"[\w.-]+\.(?:json|yaml|csv|pt|txt|png)|\bnni/", listings[0])
    assert len(names) >= 10, names
    for name in names:
        assert (run_dir / name).exists(), f"the doc lists {name}, the run folder lacks it"
    for picture in re.findall(
        r"\(img/(getting-started-[\w.-]+\.png)\)", GETTING_STARTED.read_text()
    ):
        assert (DOCS / "img" / picture).is_file(), picture


def test_the_readme_starts_with_the_getting_started_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    readme_blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)[:2]
    doc_blocks = marked_blocks(GETTING_STARTED, "test: getting-started")
    doc_commands = [c for block in doc_blocks for c in shell_commands(block)]
    for block in readme_blocks[:1]:  # set up and run: exactly what the test follows
        assert shell_commands(block) == doc_commands[: len(shell_commands(block))]
    assert "getting-started.md" in readme


# --- keys ------------------------------------------------------------------------------


def _undocumented(keys: list[str], docs: tuple[str, ...]) -> list[str]:
    documented = backticked(*docs)
    missing = []
    for key in keys:
        table = next((t for t in OPTION_TABLES if key.startswith(t + ".")), None)
        if table is not None:
            leaf = key[len(table) + 1 :].split(".")[0]
            if leaf not in backticked(*OPTION_TABLES[table]):
                missing.append(f"{key} (in {', '.join(OPTION_TABLES[table])})")
        elif key not in documented:
            missing.append(key)
    return missing


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "experiments").glob("*.yaml")) + sorted((ROOT / "search_spaces").glob("*.yaml")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_key_of_a_shipped_file_is_documented(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if path.parent.name == "search_spaces":
        keys = [k for k in dotted_keys(data) if not k.startswith("settings.")]
        missing = _undocumented(keys, SCOPE_KEY_DOCS)
        # A scope's settings are space keys.
        missing += _undocumented(
            [f"space.{k}" for k in data.get("settings") or {}], EXPERIMENT_KEY_DOCS
        )
    elif "base" in data or "grid" in data:  # a study file
        keys = [k for k in dotted_keys(data) if not k.startswith(("overrides.", "grid."))]
        missing = _undocumented(keys, STUDY_KEY_DOCS)
        # Its overrides and grid axes are experiment keys.
        cell_keys = [*(data.get("overrides") or {}), *(data.get("grid") or {})]
        missing += _undocumented(cell_keys, EXPERIMENT_KEY_DOCS)
    else:
        missing = _undocumented(list(dotted_keys(data)), EXPERIMENT_KEY_DOCS)
    assert not missing, f"{path.name}: undocumented keys {missing}"


def test_the_key_check_catches_an_undocumented_key():
    assert _undocumented(["search.epochs", "search.epochz"], EXPERIMENT_KEY_DOCS) == [
        "search.epochz"
    ]
    assert _undocumented(["corpus.options.no_such_option"], EXPERIMENT_KEY_DOCS)


# --- the command line ------------------------------------------------------------------


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """``(command words, parser, help of the command)`` for every (sub-)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, helps.get(name)
                yield from _commands(sub, (*path, name))


def test_every_command_and_option_has_a_help_string():
    from emodarts_nni.cli.main import build_parser

    commands = list(_commands(build_parser()))
    assert len(commands) >= 12
    problems = []
    for words, parser, help_text in commands:
        if not help_text:
            problems.append(f"emodarts {' '.join(words)}: no help line in `emodarts --help`")
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (action.help or "").strip():
                name = "/".join(action.option_strings) or action.dest
                problems.append(f"emodarts {' '.join(words)} {name}: no help string")
        parser.format_help()  # a broken %(default)s would raise here
    assert not problems, "\n".join(problems)


def test_every_command_is_listed_in_the_interface():
    from emodarts_nni.cli.main import build_parser

    interface = (DOCS / "interface.md").read_text(encoding="utf-8")
    missing = [
        " ".join(words)
        for words, parser, _ in _commands(build_parser())
        if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
        and f"emodarts {' '.join(words)}" not in interface
    ]
    assert not missing, f"commands missing from docs/interface.md: {missing}"


# --- the Python API --------------------------------------------------------------------


def test_every_public_name_is_on_the_python_api_page():
    import emodarts_nni

    page = backticked("docs/python-api.md")
    headings = re.findall(r"^## `(\w+)", PYTHON_API.read_text(encoding="utf-8"), flags=re.M)
    missing = [n for n in emodarts_nni.__all__ if n not in page and n not in headings]
    assert not missing, f"public names missing from docs/python-api.md: {missing}"


def test_the_python_api_examples_run(tmp_path, monkeypatch, capsys):
    blocks = marked_blocks(PYTHON_API, "test: python-api")
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "python_api_example"}
    for index, block in enumerate(blocks):
        exec(compile(block, f"docs/python-api.md block {index + 1}", "exec"), namespace)
    printed = capsys.readouterr().out
    # The comments that state a result state this one.
    for expected in ("torch.Size([2, 4])", "torch.Size([2, 16, 32])", "darts 1 emodarts"):
        assert expected in printed
    assert (tmp_path / "architecture.json").is_file()


# --- links -----------------------------------------------------------------------------


def _pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "experiments" / "README.md", *sorted(DOCS.glob("*.md"))]


def test_every_relative_link_and_anchor_resolves():
    problems = []
    for page in _pages():
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # http:, https:, mailto:
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.exists():
                if linked.name not in PENDING_PAGES:
                    problems.append(f"{page.relative_to(ROOT)}: {target} does not exist")
                continue
            if anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), flags=re.M)
                if anchor not in {github_slug(h) for h in headings}:
                    problems.append(f"{page.relative_to(ROOT)}: {target}: no such heading")
    assert not problems, "\n".join(problems)


def test_github_slugs_match_githubs_rule():
    assert (
        github_slug("Operations (`emodarts_nni/space/ops.py`)")
        == "operations-emodarts_nnispaceopspy"
    )
    assert github_slug("Layouts: what `ROOT` must look like") == "layouts-what-root-must-look-like"


#: What getting-started.md states about experiments/quickstart.yaml: a pattern of the page
#: and the config values its numbers must equal, in order (a reworded sentence fails here,
#: so that a number cannot drift from the config unnoticed).
QUICKSTART_FACTS = {
    r"(\d+) utterances \((\d+) emotions, (\d+) speakers in (\d+) sessions\)": lambda c: [
        c["corpus"]["synth"]["n_speakers"] * 4 * c["corpus"]["synth"]["utterances_per_class_per_speaker"],
        4,
        c["corpus"]["synth"]["n_speakers"],
        c["corpus"]["synth"]["n_sessions"],
    ],
    r"(\d+) MFCCs × (\d+) frames": lambda c: [c["features"]["n_mfcc"], c["features"]["pooled_frames"]],
    r"(\d+) CNN cells of (\d+) nodes and (\d+) SeqNN cell": lambda c: [
        c["space"]["cnn_cells"], c["space"]["cnn_nodes"], c["space"]["seq_cells"]
    ],
    r"(\d+) search epochs \(the first (\d+) train": lambda c: [
        c["search"]["epochs"], c["search"]["warmup_epochs"]
    ],
    r"up to (\d+) retrain epochs": lambda c: [c["retrain"]["epochs"]],
    r"`search\.warmup_epochs: (\d+)`": lambda c: [c["search"]["warmup_epochs"]],
}  # fmt: skip


def test_every_number_getting_started_states_about_the_config_is_the_configs():
    config = yaml.safe_load((ROOT / "experiments" / "quickstart.yaml").read_text())
    page = " ".join(GETTING_STARTED.read_text().split())
    for pattern, expected in QUICKSTART_FACTS.items():
        found = re.findall(pattern, page)
        assert found, f"getting-started.md no longer says {pattern!r}: update QUICKSTART_FACTS"
        for match in found:
            numbers = [int(n) for n in ((match,) if isinstance(match, str) else match)]
            assert numbers == expected(config), (pattern, numbers, expected(config))


def test_getting_started_quotes_the_committed_reference_run():
    """Every console line the page shows is a line of the reference run it is made from
    (docs/img/reference_run.py), and its summary numbers are that run's metrics.json."""
    reference = DOCS / "reference"
    console = (reference / "quickstart-console.txt").read_text().splitlines()
    blocks = marked_blocks(GETTING_STARTED, "console: getting-started")
    assert blocks
    for line in (line for block in blocks for line in block.splitlines()):
        if line.strip() not in ("…", "..."):
            assert line in console, f"not a line of the reference run: {line!r}"
    metrics = json.loads((reference / "quickstart-metrics.json").read_text())
    page = GETTING_STARTED.read_text()
    assert f"test UA                     {metrics['ua']:.4f}" in page
    assert f"best epoch (validation UA)  {metrics['best_epoch'] + 1} (" in page
    assert f"epoch {metrics['best_epoch']} in the picture" in page
    silence = json.loads((reference / "quickstart-silence.json").read_text())
    assert f"{silence['longest_silence_seconds']} s" in page
