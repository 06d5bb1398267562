"""What a wheel carries: every package, the scopes and the experiment configs; and how a
shipped config is found by name. (CI builds the wheel and runs it from outside the checkout:
.ci/run.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.common.shipped import EXPERIMENTS, SCOPES, shipped_folder
from emodarts_nni.config.experiment import load_config, locate_config, shipped_configs
from emodarts_nni.space.scopes import available_scopes, load_scope

ROOT = Path(__file__).resolve().parent.parent


def setuptools_config() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["tool"]["setuptools"]


def test_the_wheel_lists_every_package_folder() -> None:
    listed = set(setuptools_config()["packages"])
    folders = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "emodarts_nni").rglob("__init__.py")
    }
    assert folders <= listed, f"add to pyproject.toml packages: {sorted(folders - listed)}"


def test_the_scopes_and_configs_ship_from_the_top_level_folders() -> None:
    config = setuptools_config()
    assert config["package-dir"] == {
        "emodarts_nni.search_spaces": SCOPES,
        "emodarts_nni.experiments": EXPERIMENTS,
    }
    assert "*.yaml" in config["package-data"]["emodarts_nni.search_spaces"]
    assert "*.yaml" in config["package-data"]["emodarts_nni.experiments"]
    # in a checkout the shipped folders are the top-level ones (no second copy)
    assert shipped_folder(SCOPES) == ROOT / "search_spaces"
    assert shipped_folder(EXPERIMENTS) == ROOT / "experiments"
    assert available_scopes() == sorted(p.stem for p in (ROOT / "search_spaces").glob("*.yaml"))
    assert shipped_configs() == sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))
    assert load_scope("lstm_only").seq_ops[0] == "lstm_1"


def test_a_shipped_config_loads_by_name_from_any_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    by_name = load_config("quickstart")
    by_path = load_config(ROOT / "experiments" / "quickstart.yaml")
    assert by_name == by_path and by_name.output.dir == tmp_path / "runs"


def test_a_config_by_name_resolves_relative_paths_against_the_working_directory(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path, base_dir = locate_config("quickstart")
    assert path == ROOT / "experiments" / "quickstart.yaml"
    assert base_dir == tmp_path  # never the package folder (site-packages, once installed)
    own = tmp_path / "configs" / "mine.yaml"
    own.parent.mkdir()
    own.write_text("seed: 1\n")
    assert locate_config(own) == (own, own.parent)  # a file keeps its own folder
    assert locate_config(os.path.join("configs", "mine.yaml")) == (
        Path("configs", "mine.yaml"),
        tmp_path / "configs",
    )


def test_a_local_file_wins_over_a_shipped_config_of_the_same_name(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart").write_text("name: local\n")
    assert load_config("quickstart").name == "local"


def test_an_unknown_config_name_suggests_the_shipped_ones(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'quickstart'") as caught:
        load_config("quikstart")
    assert "iemocap" in str(caught.value) and "\n" not in str(caught.value)
