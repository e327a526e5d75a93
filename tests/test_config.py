import pytest
import yaml

from smfusion.config import load_config, parse_config
from smfusion.errors import ConfigError

BASE = {
    "data": {"dynamic": ["APCP_FORA"], "static": ["Sand"], "target": ["SMAP_AM"]},
    "periods": {"train": ["2015-04-01", "2016-03-31"], "test": ["2016-04-01", "2017-03-31"]},
}


def _with(**patch):
    import copy

    cfg = copy.deepcopy(BASE)
    for path, value in patch.items():
        node = cfg
        keys = path.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return cfg


def test_valid_and_example_configs(tmp_path):
    cfg = parse_config(BASE)
    assert cfg.periods.train.start == "2015-04-01" and cfg.model.name == "lstm"
    from pathlib import Path

    for path in sorted(Path(__file__).parents[1].glob("configs/*.yaml")):
        load_config(path)  # every shipped example validates


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"training__epoch": 3}, r"training\.epoch: unknown key"),
        ({"bogus": 1}, r"bogus: unknown key"),
        ({"periods__train": ["2016-03-31", "2015-04-01"]}, "ends before it starts"),
        ({"periods__test": ["2016-13-01", "2017-01-01"]}, "bad date"),
        ({"model__name": "transformer9"}, "unknown model 'transformer9'"),
        ({"training__lr": -1}, r"training\.lr"),
        ({"split__kind": "kfold", "split__k": 3, "split__fold": 3}, "fold 3 out of range"),
        ({"normalization__log1p": ["NOPE"]}, "not an input variable"),
        ({"data__target": []}, "at least one target"),
    ],
)
def test_config_errors_name_the_key(tmp_path, patch, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_with(**patch)))
    with pytest.raises(ConfigError, match=message) as exc:
        load_config(path)
    assert "bad.yaml" in str(exc.value)


def test_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.yaml")
    p = tmp_path / "broken.yaml"
    p.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(p)


def test_site_normalisation_needs_temporal_split():
    ok = _with(normalization__target="site")
    assert parse_config(ok).normalization.target == "site"
    with pytest.raises(ConfigError, match="needs training observations"):
        parse_config(_with(normalization__target="site", split__kind="kfold"))
    with pytest.raises(ConfigError, match="needs training observations"):
        parse_config(_with(normalization__target="site", split__validation_fraction=0.1))
