"""Experiment configs: YAML in, typed frozen objects out; every mistake named precisely."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.config.experiment import (
    STRATEGY_NAMES,
    CorpusConfig,
    ExperimentConfig,
    SearchConfig,
    SynthConfig,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
)
from emodarts_nni.config.overrides import command_line_overrides, load_config_with, parse_overrides

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
PAPER_CONFIGS = ("iemocap", "msp_improv", "msp_podcast")


def write(folder: Path, text: str, name: str = "exp.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(data: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data, source="exp.yaml", **kwargs)
    return str(caught.value)


def dotted_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(cls):
        keys.append(prefix + f.name)
        section = f.metadata["rule"]
        if hasattr(section, "cls"):
            keys += dotted_keys(section.cls, prefix + f.name + ".")
    return keys


# --------------------------------------------------------------------------- defaults
def test_an_empty_config_gives_the_documented_defaults(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = config_from_dict({})
    assert cfg.corpus.kind == "synth"
    assert cfg.corpus.synth == SynthConfig(10, 5, 20)
    assert (cfg.features.n_mfcc, cfg.features.frames, cfg.features.pooled_frames) == (128, 512, 128)
    assert cfg.features.hop_length == 250 and cfg.features.normalisation == "train"
    assert (cfg.splits.protocol, cfg.splits.fold, cfg.splits.search_fraction) == ("auto", 0, 0.7)
    assert (cfg.space.scope, cfg.space.cnn_cells, cfg.space.seq_cells) == ("emodarts", 4, 2)
    assert cfg.search == SearchConfig()
    assert (cfg.search.strategy, cfg.search.epochs, cfg.search.lr) == ("darts", 300, 0.025)
    assert cfg.retrain.patience is None
    assert cfg.trainer.precision == "32" and cfg.webui.port == 8080
    assert cfg.output.dir == tmp_path / "runs"


def test_configs_are_frozen_and_hashable() -> None:
    # search.params must be the strategy's own parameters (checked at load): ENAS's
    # update_kwargs is a free-form nested value
    data = {"search": {"strategy": "enas", "params": {"update_kwargs": [1, {"b": 2}]}}}
    cfg = config_from_dict(data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.search.params["update_kwargs"] = 2  # type: ignore[index]
    assert cfg.search.params["update_kwargs"] == (1, {"b": 2})
    assert hash(cfg) == hash(config_from_dict(config_to_dict(cfg)))


def test_a_real_corpus_has_no_synth_section(tmp_path: Path) -> None:
    cfg = config_from_dict({"corpus": {"kind": "emodb", "root": str(tmp_path)}})
    assert cfg.corpus.synth is None
    assert "synth" not in config_to_dict(cfg)["corpus"]
    assert CorpusConfig().synth == SynthConfig()


def test_strategy_names_are_the_supported_nni_strategies() -> None:
    assert STRATEGY_NAMES == (
        "darts",
        "darts-2nd",
        "beta-darts",
        "pc-darts",
        "darts-minus",
        "enas",
        "gumbel",
        "proxyless",
        "random-oneshot",
        "random",
        "evolution",
    )
    for name in STRATEGY_NAMES:
        assert config_from_dict({"search": {"strategy": name}}).search.strategy == name


def test_space_fields_are_the_build_space_arguments() -> None:
    space = config_from_dict({"space": {"hidden": 64}}).space
    kwargs = space.build_kwargs()
    assert "scope" not in kwargs and kwargs["hidden"] == 64 and kwargs["cnn_cells"] == 4


# --------------------------------------------------------------------------- experiment files
def test_quickstart_loads_as_is_and_is_cpu_sized() -> None:
    cfg = load_config(EXPERIMENTS / "quickstart.yaml")
    assert cfg.name == "quickstart" and cfg.corpus.kind == "synth"
    assert cfg.trainer.num_threads == 2
    assert cfg.features.pooled_frames < 128 and cfg.space.cnn_cells < 4
    assert cfg.search.epochs < 300 and cfg.retrain.epochs < 300
    assert cfg.retrain.patience is not None


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_configs_load_with_the_corpus_root_overridden(name: str, tmp_path: Path) -> None:
    cfg = load_config(EXPERIMENTS / f"{name}.yaml", {"corpus.root": str(tmp_path)})
    assert cfg.name == name and cfg.corpus.kind == name and cfg.corpus.root == tmp_path
    assert (cfg.features.n_mfcc, cfg.features.pooled_frames, cfg.features.max_seconds) == (
        128,
        128,
        8.0,
    )
    assert (cfg.space.scope, cfg.space.cnn_cells, cfg.space.seq_cells) == ("emodarts", 4, 2)
    assert (cfg.search.strategy, cfg.search.epochs, cfg.retrain.epochs) == ("darts", 300, 300)
    for optimiser in (cfg.search, cfg.retrain):
        assert (optimiser.lr, optimiser.lr_min, optimiser.batch_size) == (0.025, 0.001, 16)
    assert cfg.splits.search_fraction == 0.7


def test_paper_configs_reproduce_each_corpus_protocol(tmp_path: Path) -> None:
    def load(name: str) -> ExperimentConfig:
        return load_config(EXPERIMENTS / f"{name}.yaml", {"corpus.root": str(tmp_path)})

    iemocap, improv, podcast = (load(name) for name in PAPER_CONFIGS)
    assert iemocap.corpus.options["improvised_only"] is True
    assert (iemocap.splits.protocol, iemocap.splits.n_folds) == ("session", 5)
    assert (improv.splits.protocol, improv.splits.n_folds) == ("session", 6)
    assert (podcast.splits.protocol, podcast.splits.n_folds) == ("speaker_kfold", 5)


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_configs_point_at_a_placeholder_root_until_edited(name: str) -> None:
    path = EXPERIMENTS / f"{name}.yaml"
    placeholder = yaml.safe_load(path.read_text())["corpus"]["root"]
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and "corpus.root" in message and placeholder in message


@pytest.mark.parametrize("name", ("quickstart", *PAPER_CONFIGS))
def test_every_experiment_file_cites_the_paper_and_round_trips(name: str, tmp_path: Path) -> None:
    path = EXPERIMENTS / f"{name}.yaml"
    assert path.read_text().startswith("#")
    cfg = load_config(path, {"corpus.root": str(tmp_path)} if name in PAPER_CONFIGS else None)
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_readme_documents_every_key() -> None:
    readme = (EXPERIMENTS / "README.md").read_text()
    missing = [key for key in dotted_keys(ExperimentConfig) if f"`{key}`" not in readme]
    assert not missing, f"experiments/README.md does not document {missing}"


# --------------------------------------------------------------------------- round trip
def test_round_trip_keeps_every_value(tmp_path: Path) -> None:
    (tmp_path / "scope.yaml").write_text("cnn_ops: [skip_connect]\n")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,speaker,session,duration\n")
    cfg = config_from_dict(
        {
            "name": "all-keys",
            "corpus": {"kind": "manifest", "manifest": "m.csv"},
            "features": {"cache_dir": "cache", "workers": 3},
            "splits": {"protocol": "speaker_kfold", "n_folds": 5, "fold": 4},
            "space": {"scope": "scope.yaml", "dropout": 0},
            "search": {"strategy": "enas", "params": {"update_kwargs": {"batch_size": 4}}},
            "retrain": {"patience": 3},
            "trainer": {"precision": "bf16-mixed", "num_threads": 4},
        },
        base_dir=tmp_path,
    )
    data = config_to_dict(cfg)
    assert data["corpus"]["manifest"] == str(manifest)
    assert data["space"]["scope"] == str(tmp_path / "scope.yaml")
    assert yaml.safe_load(yaml.safe_dump(data)) == data  # plain YAML-ready data
    assert config_from_dict(data) == cfg


# --------------------------------------------------------------------------- paths
def test_relative_paths_follow_the_config_folder_but_output_follows_the_cwd(
    tmp_path: Path, monkeypatch
) -> None:
    configs = tmp_path / "configs"
    (configs / "data" / "corpus").mkdir(parents=True)
    (configs / "my_scope.yaml").write_text("cnn_ops: [skip_connect]\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(
        configs,
        "corpus: {kind: ravdess, root: data/corpus}\n"
        "features: {cache_dir: ../cache}\n"
        "space: {scope: my_scope.yaml}\n"
        "output: {dir: runs}\n",
    )
    cfg = load_config(path)
    assert cfg.corpus.root == configs / "data" / "corpus"
    assert cfg.features.cache_dir == tmp_path / "cache"
    assert cfg.space.scope == str(configs / "my_scope.yaml")
    assert cfg.output.dir == elsewhere / "runs"


def test_paths_given_as_overrides_follow_the_cwd(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "corpus").mkdir()
    configs = tmp_path / "configs"
    configs.mkdir()
    monkeypatch.chdir(tmp_path)
    path = write(configs, "corpus: {kind: emodb, root: /nowhere}\n")
    cfg = load_config(path, {"corpus.root": "corpus", "output.dir": "out"})
    assert cfg.corpus.root == tmp_path / "corpus"
    assert cfg.output.dir == tmp_path / "out"


def test_a_scope_name_is_kept_as_a_name() -> None:
    assert config_from_dict({"space": {"scope": "lstm_only"}}).space.scope == "lstm_only"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"corpus": {"kind": "iemocap", "root": "missing_corpus"}}, "corpus.root"),
        ({"corpus": {"kind": "manifest", "manifest": "missing.csv"}}, "corpus.manifest"),
        ({"space": {"scope": "missing_scope.yaml"}}, "space.scope"),
    ],
)
def test_a_missing_path_is_named_with_its_key(tmp_path: Path, data: dict, key: str) -> None:
    message = error_of(data, base_dir=tmp_path)
    assert "exp.yaml" in message and key in message and str(tmp_path / "missing") in message


def test_real_corpora_need_a_root_and_manifest_corpora_a_manifest() -> None:
    assert "corpus.root = null" in error_of({"corpus": {"kind": "msp_podcast"}})
    assert "corpus.manifest = null" in error_of({"corpus": {"kind": "manifest"}})


def test_reader_options_are_the_readers_own(tmp_path: Path) -> None:
    def corpus(kind: str, **options: Any) -> dict:
        return {"corpus": {"kind": kind, "root": str(tmp_path), "options": options}}

    cfg = config_from_dict(corpus("iemocap", merge_excited=True, improvised_only=False))
    assert dict(cfg.corpus.options) == {"merge_excited": True, "improvised_only": False}
    message = error_of(corpus("iemocap", merge_exited=True))
    assert "'corpus.options.merge_exited'" in message and "did you mean 'merge_excited'" in message
    assert "corpus.options.merge_excited = 'yes'" in error_of(
        corpus("iemocap", merge_excited="yes")
    )
    assert "'corpus.options.x'" in error_of({"corpus": {"options": {"x": 1}}})  # synth has none


def test_a_csv_corpus_root_is_the_csv_file(tmp_path: Path) -> None:
    table = tmp_path / "corpus.csv"
    table.write_text("path,label,speaker\n")
    assert config_from_dict({"corpus": {"kind": "csv", "root": str(table)}}).corpus.root == table
    assert "existing CSV file" in error_of({"corpus": {"kind": "csv", "root": str(tmp_path)}})


def test_a_synth_corpus_root_is_refused_not_ignored(tmp_path: Path) -> None:
    # The embedded corpus lives under features.cache_dir; a root was silently ignored.
    message = error_of({"corpus": {"root": "new"}})
    assert "corpus.root" in message and "null for corpus.kind 'synth'" in message


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("data", "culprit", "hint"),
    [
        ({"serach": {}}, "'serach'", "did you mean 'search'"),
        ({"search": {"epoch": 3}}, "'search.epoch'", "did you mean 'epochs'"),
        ({"corpus": {"synth": {"speakers": 3}}}, "'corpus.synth.speakers'", "n_speakers"),
    ],
)
def test_an_unknown_key_is_named_with_a_suggestion(data: dict, culprit: str, hint: str) -> None:
    message = error_of(data)
    assert message.startswith("exp.yaml: unknown key")
    assert culprit in message and hint in message and "valid:" in message


@pytest.mark.parametrize(
    ("data", "culprit"),
    [
        ({"search": {"epochs": "ten"}}, "search.epochs = 'ten'"),
        ({"search": {"epochs": 10.0}}, "search.epochs = 10.0"),
        ({"search": {"epochs": True}}, "search.epochs = true"),
        ({"search": {"lr": -1}}, "search.lr = -1"),
        ({"search": {"lr": float("nan")}}, "search.lr = nan"),
        ({"search": {"strategy": "DARTS"}}, "search.strategy = 'DARTS'"),
        ({"trainer": {"precision": 8}}, "trainer.precision = 8"),
        ({"trainer": {"accelerator": "tpu"}}, "trainer.accelerator = 'tpu'"),
        ({"splits": {"n_folds": 5, "fold": 7}}, "splits.fold = 7"),
        ({"splits": {"search_fraction": 1.5}}, "splits.search_fraction = 1.5"),
        ({"splits": {"protocol": "random"}}, "splits.protocol = 'random'"),
        ({"features": {"normalisation": "global"}}, "features.normalisation = 'global'"),
        ({"features": {"n_mfcc": 128, "n_mels": 64}}, "features.n_mels = 64"),
        ({"features": {"pooled_frames": 1024}}, "features.pooled_frames = 1024"),
        ({"corpus": {"kind": "librispeech"}}, "corpus.kind = 'librispeech'"),
        ({"corpus": {"options": ["a"]}}, "corpus.options = ['a']"),
        ({"space": {"scope": ""}}, "space.scope = ''"),
        ({"space": {"dropout": 1}}, "space.dropout = 1"),
        ({"search": {"lr": 0.01, "lr_min": 0.1}}, "search.lr_min = 0.1"),
        ({"search": {"strategy": "evolution", "sample_size": 9}}, "search.sample_size = 9"),
        ({"retrain": {"patience": 0}}, "retrain.patience = 0"),
        ({"retrain": {"patience": 5}, "splits": {"validation_fraction": 0}}, "retrain.patience"),
        ({"trainer": {"accelerator": "cpu", "precision": "16-mixed"}}, "trainer.precision"),
        ({"webui": {"port": 70000}}, "webui.port = 70000"),
        ({"webui": {"enabled": "yes please"}}, "webui.enabled = 'yes please'"),
        ({"name": "../escape"}, "name = '../escape'"),
        ({"seed": -1}, "seed = -1"),
        ({"search": 5}, "search = 5"),
        ({"corpus": {"kind": "tess", "root": ".", "synth": {"n_speakers": 4}}}, "corpus.synth"),
        ({"corpus": {"synth": {"n_speakers": 7, "n_sessions": 2}}}, "corpus.synth.n_speakers = 7"),
    ],
)
def test_a_wrong_value_is_named_with_its_key_value_and_expectation(
    data: dict, culprit: str
) -> None:
    message = error_of(data)
    assert message.startswith("exp.yaml: ")
    assert culprit in message and "expected" in message


@pytest.mark.parametrize(
    ("key", "value"),
    [("seed", None), ("search.epochs", None), ("trainer.precision", None), ("output.dir", None)],
)
def test_null_is_refused_where_the_default_is_not_null(key: str, value: Any) -> None:
    section, _, leaf = key.rpartition(".")
    data: dict = {section: {leaf: value}} if section else {leaf: value}
    message = error_of(data)
    assert f"{key} = null" in message and "null is not allowed" in message


def test_null_is_accepted_where_the_default_is_null() -> None:
    cfg = config_from_dict(
        {
            "splits": {"n_folds": None},
            "retrain": {"patience": None},
            "trainer": {"num_threads": None},
            "features": {"cache_dir": None, "workers": None},
            "webui": None,  # an empty section: all defaults
        }
    )
    assert cfg.splits.n_folds is None and cfg.trainer.num_threads is None
    assert cfg.webui.enabled is True


def test_integers_are_accepted_where_numbers_are_expected() -> None:
    features = {"max_seconds": 4, "frames": 256}  # 4 s give 257 frames at hop 250
    cfg = config_from_dict({"search": {"lr": 1, "grad_clip": 10}, "features": features})
    assert cfg.search.lr == 1.0 and isinstance(cfg.search.lr, float)
    assert isinstance(cfg.features.max_seconds, float)


def test_an_unquoted_precision_32_means_the_string() -> None:
    assert config_from_dict({"trainer": {"precision": 32}}).trainer.precision == "32"


def test_fold_is_checked_against_n_folds() -> None:
    assert config_from_dict({"splits": {"n_folds": 5, "fold": 4}}).splits.fold == 4
    assert "0 to 4" in error_of({"splits": {"n_folds": 5, "fold": 5}})


# --------------------------------------------------------------------------- YAML files
def test_yaml_scientific_notation_without_a_dot_is_a_number(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "search:\n  weight_decay: 3e-4\n  arch_lr: 1E-3\n"))
    assert cfg.search.weight_decay == 3e-4 and cfg.search.arch_lr == 1e-3


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nsearch:\n  epochs: [1, 2\n  lr: 0.1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:4:")


def test_a_duplicated_key_is_an_error_not_silently_dropped(tmp_path: Path) -> None:
    path = write(tmp_path, "search:\n  epochs: 3\n  epochs: 4\n")
    with pytest.raises(ConfigError, match=r":3: .*duplicate key 'epochs'"):
        load_config(path)


def test_yaml_tags_that_build_objects_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(ConfigError, match="exp.yaml:1:"):
        load_config(path)


def test_file_level_problems_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="top level"):
        load_config(write(tmp_path, "- a\n- b\n"))
    path = write(tmp_path, "search:\n  stratgy: darts\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: unknown key 'search.stratgy'")


def test_the_run_is_named_after_the_file_unless_named(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "", "my run.yaml")).name == "my_run"
    assert load_config(write(tmp_path, "name: other\n")).name == "other"


# --------------------------------------------------------------------------- overrides
def test_overrides_set_dotted_keys(tmp_path: Path) -> None:
    cfg = load_config(
        EXPERIMENTS / "iemocap.yaml",
        {
            "search.strategy": "enas",
            "splits.fold": 2,
            "output.dir": str(tmp_path / "x"),
            "corpus.options.merge_excited": True,
            "search.params.reward_metric_name": "ua",
            "corpus.root": str(tmp_path),
        },
    )
    assert cfg.search.strategy == "enas" and cfg.splits.fold == 2
    assert cfg.output.dir == tmp_path / "x"
    assert cfg.corpus.options == {"improvised_only": True, "merge_excited": True}
    assert cfg.search.params == {"reward_metric_name": "ua"}


@pytest.mark.parametrize(
    ("overrides", "culprit"),
    [
        ({"search.stratgy": "enas"}, "unknown key 'search.stratgy' (did you mean 'strategy'?)"),
        ({"serch.strategy": "enas"}, "unknown key 'serch' (did you mean 'search'?)"),
        ({"search.epochs.max": 3}, "'search.epochs' is a value, not a section"),
        ({"search.strategy": "bayes"}, "override search.strategy = 'bayes'"),
        ({"splits.fold": 7, "splits.n_folds": 5}, "override splits.fold = 7"),
        ({"splits.fold": "2"}, "override splits.fold = '2'"),
    ],
)
def test_overrides_are_validated_like_the_file(overrides: dict, culprit: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(EXPERIMENTS / "quickstart.yaml", overrides)
    message = str(caught.value)
    assert "quickstart.yaml" in message and culprit in message


# --------------------------------------------------------------------------- --set
@pytest.mark.parametrize(("text", "number"), [("3e-4", 3e-4), ("1e-3", 1e-3), (".5", 0.5)])
def test_a_set_value_means_what_the_same_text_means_in_the_file(
    tmp_path: Path, text: str, number: float
) -> None:
    in_file = load_config(write(tmp_path, f"search:\n  arch_lr: {text}\n"))
    on_command_line = load_config_with(
        write(tmp_path, "", "plain.yaml"), [f"search.arch_lr={text}"]
    )
    assert in_file.search.arch_lr == on_command_line.search.arch_lr == number


@pytest.mark.parametrize("text", ["inf", ".inf", "-.inf", ".nan"])
def test_a_set_value_the_file_refuses_is_refused_with_the_same_message(
    tmp_path: Path, text: str
) -> None:
    with pytest.raises(ConfigError) as in_file:
        load_config(write(tmp_path, f"search:\n  arch_lr: {text}\n"))
    with pytest.raises(ConfigError) as on_command_line:
        load_config_with(write(tmp_path, "", "plain.yaml"), [f"search.arch_lr={text}"])
    file_message, set_message = str(in_file.value), str(on_command_line.value)
    assert file_message.startswith(f"{tmp_path / 'exp.yaml'}: search.arch_lr = ")
    assert set_message.startswith(f"{tmp_path / 'plain.yaml'}: override search.arch_lr = ")
    assert file_message.split("search.arch_lr = ")[1] == set_message.split("search.arch_lr = ")[1]
    assert "expected a number > 0" in set_message


def test_set_values_are_yaml_and_text_that_is_not_yaml_is_kept() -> None:
    overrides = parse_overrides(
        ["splits.fold=2", "corpus.root=", "name=@night", "search.params={k: 2}", "name=x=y"]
    )
    assert overrides == {
        "splits.fold": 2,
        "corpus.root": None,
        "name": "x=y",  # the last one wins; only the first = splits
        "search.params": {"k": 2},
    }


def test_a_set_item_without_a_value_is_one_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^--set 'search.epochs': expected KEY=VALUE$"):
        parse_overrides(["search.epochs"])


def test_shorthand_options_win_over_set() -> None:
    options = {"strategy": "enas", "scope": None, "fold": 1, "port": None, "no_webui": True}
    overrides = command_line_overrides(["search.strategy=darts", "splits.fold=0"], options)
    assert overrides == {"search.strategy": "enas", "splits.fold": 1, "webui.enabled": False}


def test_the_cli_reads_set_numbers_as_the_file_does(tmp_path: Path, capsys) -> None:
    from emodarts_nni.cli.main import main

    assert main(["plan", "quickstart", "--json", "--set", "search.arch_lr=3e-4"]) == 0
    assert main(["plan", "quickstart", "--set", "search.arch_lr=inf"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "override search.arch_lr = 'inf': expected a number > 0" in err


# --------------------------------------------------------------------------- dump
def test_dump_config_writes_yaml_that_loads_back_equal(tmp_path: Path) -> None:
    cfg = load_config(EXPERIMENTS / "iemocap.yaml", {"corpus.root": str(tmp_path)})
    path = dump_config(cfg, tmp_path / "run" / "config.yaml")
    assert path == tmp_path / "run" / "config.yaml"
    assert load_config(path) == cfg
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temp file left


def test_dump_config_is_atomic(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "config.yaml"
    target.write_text("name: previous\n")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        dump_config(config_from_dict({}), target)
    assert target.read_text() == "name: previous\n"  # the old file is intact...
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # ...and no temp file left


# --------------------------------------------------------------------------- one owner per fact
def test_the_features_section_is_the_extractors_config_type() -> None:
    from emodarts_nni.data.feature_config import FeatureConfig
    from emodarts_nni.pipeline.data import feature_config

    cfg = config_from_dict({"features": {"n_mfcc": 40, "n_mels": 64, "cache_dir": "c"}})
    assert isinstance(cfg.features, FeatureConfig)
    extraction = [f.name for f in dataclasses.fields(FeatureConfig)]
    section = [f.name for f in dataclasses.fields(cfg.features)]
    assert section == [*extraction, "cache_dir", "workers"]  # only where/how fast is added
    assert feature_config(cfg) == FeatureConfig(n_mfcc=40, n_mels=64)
    assert type(feature_config(cfg)) is FeatureConfig


def test_the_config_validates_against_each_facts_owner() -> None:
    from emodarts_nni.data.corpora import CORPUS_KINDS
    from emodarts_nni.data.feature_config import NORMALISATIONS
    from emodarts_nni.data.splits import PROTOCOLS
    from emodarts_nni.space.args import SPACE_DEFAULTS
    from emodarts_nni.strategy.registry import STRATEGY_NAMES as OWNED_NAMES

    def rule(cls: type, name: str) -> Any:
        return next(f for f in dataclasses.fields(cls) if f.name == name).metadata["rule"]

    cfg = config_from_dict({})
    assert rule(CorpusConfig, "kind").options == CORPUS_KINDS
    assert rule(type(cfg.splits), "protocol").options == PROTOCOLS
    assert rule(type(cfg.features), "normalisation").options == NORMALISATIONS
    assert rule(SearchConfig, "strategy").options == OWNED_NAMES
    for f in dataclasses.fields(cfg.space):
        if f.name != "scope":
            assert f.default == SPACE_DEFAULTS[f.name], f.name


def test_config_and_strategies_import_without_torch_or_nni() -> None:
    import subprocess
    import sys

    code = (
        "import sys, emodarts_nni.config.experiment, emodarts_nni.strategy.registry; "
        "print(sorted(m for m in ('torch', 'nni', 'librosa') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- space precedence
SETTINGS_SCOPE = (
    "cnn_ops: [sep_conv_3x3, skip_connect]\n"
    "seq_ops: [lstm_1, skip_connect]\n"
    "settings: {hidden: 64, cnn_cells: 2}\n"
)


def test_space_defaults_fill_every_argument_nobody_set() -> None:
    from emodarts_nni.space.args import SPACE_DEFAULTS

    space = config_from_dict({"space": {"scope": "emodarts"}}).space  # no settings
    for name, value in space.build_kwargs().items():
        assert value == SPACE_DEFAULTS[name], name


def test_scope_settings_beat_the_space_defaults(tmp_path: Path) -> None:
    (tmp_path / "scope.yaml").write_text(SETTINGS_SCOPE)
    space = config_from_dict({"space": {"scope": "scope.yaml"}}, base_dir=tmp_path).space
    assert (space.hidden, space.cnn_cells) == (64, 2)
    assert space.seq_nodes == 2  # not in the settings: the default
    assert config_from_dict({"space": {"scope": "cnn_only"}}).space.seq_cells == 0


def test_keys_written_in_the_config_beat_the_scope_settings(tmp_path: Path) -> None:
    (tmp_path / "scope.yaml").write_text(SETTINGS_SCOPE)
    data = {"space": {"scope": "scope.yaml", "hidden": 32}}
    space = config_from_dict(data, base_dir=tmp_path).space
    assert (space.hidden, space.cnn_cells) == (32, 2)


def test_command_line_overrides_beat_the_keys_written(tmp_path: Path) -> None:
    (tmp_path / "scope.yaml").write_text(SETTINGS_SCOPE)
    path = write(tmp_path, "space: {scope: scope.yaml, hidden: 32}\n")
    assert load_config(path, {"space.hidden": 16}).space.hidden == 16
    # --scope switches to a scope whose settings then apply under the keys written
    path = write(tmp_path, "space: {cnn_nodes: 3}\n", name="plain.yaml")
    space = load_config(path, {"space.scope": str(tmp_path / "scope.yaml")}).space
    assert (space.hidden, space.cnn_cells, space.cnn_nodes) == (64, 2, 3)


def test_the_resolved_space_survives_the_round_trip(tmp_path: Path) -> None:
    (tmp_path / "scope.yaml").write_text(SETTINGS_SCOPE)
    cfg = config_from_dict({"space": {"scope": "scope.yaml"}}, base_dir=tmp_path)
    assert config_from_dict(config_to_dict(cfg)) == cfg


# --------------------------------------------------------------------------- checked at load
@pytest.mark.parametrize(
    ("sections", "culprit"),
    [
        ({"space": {"scope": "lstm_onyl"}}, "space.scope = 'lstm_onyl'"),
        ({"space": {"scope": "bad_scope.yaml"}}, "sep_conv_9x9"),
        ({"space": {"hidden": 7}}, "space.hidden = 7"),
        (
            {"search": {"strategy": "evolution", "params": {"populationsize": 4}}},
            "'search.params.populationsize'",
        ),
        ({"features": {"frames": 512, "pooled_frames": 100}}, "features.pooled_frames = 100"),
    ],
)
def test_what_the_config_alone_can_tell_fails_in_load_config(
    tmp_path: Path, sections: dict, culprit: str
) -> None:
    (tmp_path / "bad_scope.yaml").write_text("cnn_ops: [sep_conv_3x3, sep_conv_9x9]\n")
    cache = tmp_path / "cache"
    data = {**sections, "features": {**sections.get("features", {}), "cache_dir": str(cache)}}
    path = write(tmp_path, yaml.safe_dump(data))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and culprit in message and "\n" not in message
    assert not cache.exists()  # no corpus synthesised, no feature extracted


def test_a_misspelt_scope_is_named_with_a_suggestion() -> None:
    message = error_of({"space": {"scope": "lstm_onyl"}})
    assert "space.scope" in message and "did you mean 'lstm_only'" in message


def test_the_cli_refuses_a_late_mistake_before_any_data_work(tmp_path: Path) -> None:
    import subprocess
    import sys

    cache = tmp_path / "cache"
    path = write(
        tmp_path,
        f"features: {{cache_dir: {cache}}}\nspace: {{scope: lstm_onyl}}\n"
        f"output: {{dir: {tmp_path / 'runs'}}}\n",
    )
    done = subprocess.run(
        [sys.executable, "-m", "emodarts_nni.cli.main", "run", str(path), "--no-webui"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "space.scope" in lines[0] and "lstm_onyl" in lines[0]
    assert not cache.exists() and not (tmp_path / "runs").exists()


def test_bad_scope_settings_name_the_scope(tmp_path: Path) -> None:
    scope = tmp_path / "scope.yaml"
    scope.write_text("cnn_ops: [skip_connect]\nseq_ops: [lstm_1]\nsettings: {hidden: 7}\n")
    message = error_of({"space": {"scope": "scope.yaml"}}, base_dir=tmp_path)
    assert "space.scope" in message and "'hidden' = 7" in message and "even" in message
    # the user's own even hidden fixes it: written keys beat the settings
    assert config_from_dict({"space": {"scope": str(scope), "hidden": 8}}).space.hidden == 8
    scope.write_text("cnn_ops: [skip_connect]\nsettings: {hiden: 8}\n")
    message = error_of({"space": {"scope": "scope.yaml"}}, base_dir=tmp_path)
    assert "space.scope" in message and "'hiden'" in message and "did you mean 'hidden'" in message


def test_a_space_too_large_for_this_machine_fails_in_load_config(tmp_path):
    """Reliability defect 3: `space.init_channels: 1000000` tried to allocate 12 TB; it is
    refused from the arguments alone, with the estimate, before any data work."""
    path = tmp_path / "huge.yaml"
    path.write_text("space:\n  init_channels: 1000000\n")
    with pytest.raises(ConfigError, match=r"space is too large for this machine: .*reduce") as err:
        load_config(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert not (tmp_path / "runs").exists()
