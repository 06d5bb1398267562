"""The config loader under hostile input: a YAML alias bomb, recursive aliases and deep
nesting are refused fast with the file and line; output and cache locations that cannot
be written and an invalid web UI host are refused before any data work. The fuzz tests
feed generated YAML text and generated mappings to the loader."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emodarts_nni.common.errors import ConfigError, EmodartsError
from emodarts_nni.common.yaml_loader import YAML_MAX_DEPTH, YAML_MAX_VALUES
from emodarts_nni.config.experiment import (
    ExperimentConfig,
    config_from_dict,
    load_config,
)

#: ~400 bytes that expand to 9^9 (387 million) strings: "billion laughs".
ALIAS_BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{x}: &{x} [{','.join([f'*{p}'] * 9)}]"
            for p, x in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path, **overrides) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides=overrides or None)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


# ---------------------------------------------------------------------------- YAML bounds
def test_an_alias_bomb_is_refused_at_once_with_its_line(tmp_path):
    path = write(tmp_path, ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 500
    start = time.process_time()
    message = refused(path)
    assert time.process_time() - start < 2.0
    assert f"more than {YAML_MAX_VALUES} values once aliases are expanded" in message
    assert message.startswith(f"{path}:5:")  # the first alias whose expansion is too big


def test_an_alias_bomb_in_a_scope_file_is_refused_too(tmp_path):
    from emodarts_nni.space.scopes import load_scope

    path = write(tmp_path, ALIAS_BOMB, "bomb.yaml")
    with pytest.raises(ConfigError, match=f"^{path}:5: invalid YAML: more than"):
        load_scope(path)


def test_a_recursive_alias_is_refused(tmp_path):
    message = refused(write(tmp_path, "corpus:\n  options: &o {a: [*o]}\n"))
    assert ":2: invalid YAML: alias *o refers to a node that contains it" in message


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path):
    deep = "corpus:\n  options: {a: " + "[" * 5000 + "]" * 5000 + "}\n"
    assert f"nested deeper than {YAML_MAX_DEPTH} levels" in refused(write(tmp_path, deep))
    # aliases cannot build what nesting may not: depth counts expanded
    chain = "a: &a [[[[[[[[[[1]]]]]]]]]]\n" + "".join(
        f"{x}: &{x} [[[[[[[[[[*{p}]]]]]]]]]]\n" for p, x in zip("abcde", "bcdef", strict=True)
    )
    assert f"nested deeper than {YAML_MAX_DEPTH} levels" in refused(write(tmp_path, chain))


def test_modest_anchors_aliases_and_merge_keys_still_work(tmp_path):
    text = (
        "search: &opt {lr: 0.01, epochs: 2}\n"
        "retrain:\n  <<: *opt\n  epochs: 3\n"
        "corpus: {kind: synth, synth: {n_speakers: 4, n_sessions: 2}}\n"
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.search.lr == cfg.retrain.lr == 0.01
    assert (cfg.search.epochs, cfg.retrain.epochs) == (2, 3)


# ------------------------------------------------------------------- output locations
def test_an_output_dir_or_cache_dir_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for section, key in (("output", "dir"), ("features", "cache_dir")):
        config = write(tmp_path, f"{section}:\n  {key}: {blocker}\n")
        message = refused(config)
        assert f"{section}.{key} = " in message and "exists and is not a folder" in message
        message = refused(config, **{f"{section}.{key}": str(blocker / "below")})
        assert f"{blocker} is a file, not a folder" in message


def test_a_read_only_cache_is_accepted_by_the_config(tmp_path):
    folder = tmp_path / "shared-cache"
    folder.mkdir(mode=0o555)  # finished features, read-only for this user: reading is fine
    cfg = load_config(write(tmp_path, ""), overrides={"features.cache_dir": str(folder)})
    assert cfg.features.cache_dir == folder


@pytest.mark.parametrize("host", ["256.1.1.1", "local host", "a_b:80", "-bad", "a..b", "x" * 300])
def test_an_invalid_webui_host_is_refused(tmp_path, host):
    message = refused(write(tmp_path, ""), **{"webui.host": host})
    assert "webui.host" in message and "an IP address or a host name" in message


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "0.0.0.0", "localhost", "gpu-01.lab.org"])
def test_valid_webui_hosts_are_accepted(tmp_path, host):
    assert load_config(write(tmp_path, ""), overrides={"webui.host": host}).webui.host == host


# --------------------------------------------------------------------------------- fuzz
def _known_keys() -> list[str]:
    keys: list[str] = []
    for f in dataclasses.fields(ExperimentConfig):
        keys.append(f.name)
        if dataclasses.is_dataclass(f.type) or isinstance(f.type, str):
            pass
    for section in ("corpus", "features", "splits", "space", "search", "retrain", "trainer"):
        cls = type(getattr(ExperimentConfig(), section))
        keys += [f.name for f in dataclasses.fields(cls)]
    return sorted(set(keys))


_KEYS = st.one_of(st.sampled_from(_known_keys()), st.text(max_size=8))
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["synth", "darts", "emodarts", "cpu", "train", "/nonexistent", "16-mixed"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=20,
)
_CONFIGS = st.dictionaries(_KEYS, _VALUES, max_size=6)


def _one_line_config_error(exc: BaseException) -> None:
    assert isinstance(exc, ConfigError), repr(exc)
    message = str(exc)
    assert message and "\n" not in message


@settings(
    max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=_CONFIGS)
def test_fuzz_config_from_dict_builds_or_fails_in_one_line(tmp_path, data):
    """Budget: 150 generated mappings (known section and key names mixed with random
    ones, values of every YAML type, nested), each within a 2 s deadline. Each builds
    an ExperimentConfig or raises ConfigError with a one-line message."""
    try:
        cfg = config_from_dict(data, source="fuzz", base_dir=tmp_path)
    except EmodartsError as exc:
        _one_line_config_error(exc)
        return
    assert isinstance(cfg, ExperimentConfig)


_YAML_TOKENS = st.sampled_from(
    [
        "\n",
        "  ",
        ": ",
        "- ",
        "&a ",
        "*a",
        "*b",
        "&b ",
        "<<: ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        "? ",
        "!!str ",
        "!!python/object:os.system ",
        "'",
        '"',
        "#",
        "|",
        ">",
        "---\n",
        "...\n",
        "%YAML 1.1\n",
        "\t",
        "search",
        "lr",
        "corpus",
        "kind",
        "1e-3",
        "nan",
        ".inf",
        "~",
        "yes",
        "0x1F",
        "2026-12-02",
        "\\u0000",
        "\x00",
        "\ufeff",
        "é",
    ]
)


@st.composite
def yaml_texts(draw: st.DrawFn) -> str:
    """Half: a generated mapping dumped as YAML (so most parse); half: a soup of YAML
    tokens (anchors, aliases, merge keys, tags, flow and block syntax)."""
    if draw(st.booleans()):
        data = draw(_CONFIGS)
        flow = draw(st.booleans())
        try:
            return yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
        except (yaml.YAMLError, ValueError):
            return "{}"
    return "".join(draw(st.lists(st.one_of(_YAML_TOKENS, st.text(max_size=4)), max_size=40)))


@settings(
    max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=yaml_texts())
def test_fuzz_load_config_loads_or_fails_in_one_line(tmp_path, text):
    """Budget: 200 generated YAML texts, each within a 2 s deadline. Each loads or
    raises ConfigError with a one-line message naming the file; nothing else escapes
    (no RecursionError, no TypeError, no object construction)."""
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        cfg = load_config(path)
    except EmodartsError as exc:
        _one_line_config_error(exc)
        assert str(exc).startswith(str(path))
        return
    assert isinstance(cfg, ExperimentConfig)
    assert not math.isnan(cfg.search.lr)
