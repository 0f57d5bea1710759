"""Config: YAML to typed config, overrides, and errors that name the key."""
import pytest

from w2v.config import ConfigError, build_config, load_config


def test_defaults_are_word2vec_c():
    cfg = build_config({"corpus": {"paths": ["x.txt"]}})
    m, t = cfg.model, cfg.train
    assert (m.arch, m.dim, m.window, m.negative, m.ns_exponent, m.sample) == ("skipgram", 100, 5, 5, 0.75, 1e-3)
    assert (t.alpha, t.min_alpha, t.epochs) == (0.025, 0.0001, 5)
    assert cfg.vocab.min_count == 5


def test_overrides_and_types():
    cfg = build_config({"model": {"dim": "50"}}, overrides=["train.epochs=2", "model.arch=cbow",
                                                             "corpus.paths=a.txt,b.txt", "model.cbow_mean=false"])
    assert cfg.model.dim == 50 and cfg.train.epochs == 2 and cfg.model.arch == "cbow"
    assert cfg.corpus.paths == ["a.txt", "b.txt"] and cfg.model.cbow_mean is False


def test_unknown_key_suggests_nearest():
    with pytest.raises(ConfigError, match=r"unknown config key 'model.windw'.*did you mean 'model.window'"):
        build_config({"model": {"windw": 5}})
    with pytest.raises(ConfigError, match="unknown config key 'trian'"):
        build_config({"trian": {"epochs": 1}})


@pytest.mark.parametrize("section,key,value,accepted", [
    ("model", "window", 0, ">= 1"), ("model", "dim", 0, ">= 1"), ("model", "negative", 0, ">= 1"),
    ("model", "arch", "glove", "'skipgram' or 'cbow'"), ("train", "device", "tpu", "'cuda:N'"),
    ("train", "epochs", 1.5, "integer"), ("model", "dim", "big", "integer"), ("model", "sample", -1, ">= 0"),
    ("distributed", "backend", "mpi", "'gloo'"), ("distributed", "sync", "some", "'touched'"),
    ("distributed", "merge", "max", "'average'"), ("distributed", "sync_every_words", 0, ">= 1"),
    ("train", "backend", "cuda", "'auto', 'torch' or 'fused'"),
])
def test_bad_values_name_key_and_range(section, key, value, accepted):
    with pytest.raises(ConfigError) as e:
        build_config({section: {key: value}})
    assert f"'{section}.{key}'" in str(e.value) and accepted in str(e.value)


def test_not_yaml_names_file_and_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("model:\n  dim: [100\n  window: 5\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML at line \d+"):
        load_config(p)


@pytest.mark.parametrize("value", ['!!float ""', '!!int "x"', '!!float "."'])
def test_tagged_value_yaml_cannot_read_is_a_config_error(tmp_path, value):
    p = tmp_path / "bad.yaml"
    p.write_text(f"train:\n  epochs: {value}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML: a tagged value"):
        load_config(p)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "none.yaml")


def test_default_config_lists_every_key_at_its_default(root):
    """configs/default.yaml says it lists every key: it does, each at the built-in default."""
    import dataclasses

    import yaml

    from w2v.config import Config
    data = yaml.safe_load((root / "configs" / "default.yaml").read_text())
    listed = {f"{s}.{k}" for s, body in data.items() for k in body}
    defaults = Config().to_dict()
    assert listed == {f"{s}.{k}" for s, body in defaults.items() for k in body}
    cfg = load_config(root / "configs" / "default.yaml")
    expected = dataclasses.replace(Config(), corpus=dataclasses.replace(Config().corpus, paths=["data/sotu.txt.gz"]))
    assert cfg == expected


def test_other_configs_say_which_keys_they_leave_at_defaults(root):
    for path in sorted((root / "configs").glob("*.yaml")):
        if path.name != "default.yaml":
            assert "Keys not listed are at their defaults" in path.read_text(), path
            load_config(path)


def test_shared_negatives_auto_settles_per_device():
    # 'auto' (the default): a window's noise shared on a CPU, a draw per pair on a GPU (negative
    # sampling); true and
    # false stay as given on both; anything else is an error naming the key and the choices.
    import torch

    from w2v.core import settle
    from w2v.mode import Mode
    assert build_config({}).model.shared_negatives == "auto"
    for given, cpu, cuda in (("auto", True, False), (True, True, True), ("false", False, False)):
        cfg = build_config({}, overrides=[f"model.shared_negatives={given}"])
        assert settle(cfg, torch.device("cpu")).model.shared_negatives is cpu
        assert settle(cfg, torch.device("cuda")).model.shared_negatives is cuda
        assert (Mode.of(cfg.model, "cuda") is Mode.SG_WINDOW) is cuda and (Mode.of(cfg.model) is Mode.SG_WINDOW) is cpu
    hs = build_config({"model": {"loss": "hs"}})   # hs keeps windows on a GPU too
    assert settle(hs, torch.device("cuda")).model.shared_negatives is True
    with pytest.raises(ConfigError, match=r"'model.shared_negatives' must be true, false or auto, got 'sometimes'"):
        build_config({"model": {"shared_negatives": "sometimes"}})
