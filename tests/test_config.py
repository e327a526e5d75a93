import pytest
import yaml

from smfusion.config import RunConfig, load_config, parse_config
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
        ({"variants": [{"model": {"hidden_sise": 8}}]}, r"variants\.0: hidden_sise: unknown key"),
        ({"variants": [{"training": {"lr": 0}}]}, r"variants\.0: lr"),
        ({"variants": [{"training": {"seed": 3}}]}, "set for the whole run"),
        ({"variants": [{"model": {"name": "nope"}}]}, "unknown model 'nope'"),
        ({"features__bucket": {"capacities_mm": [50]}}, r"features\.bucket reads \['TMP_2_FORA'"),
        ({"features__bucket": {"capacities_mm": [50, 50]}}, "distinct positive"),
        ({"data__dynamic": ["APCP_FORA", "TMP_2_FORA", "DSWRF_FORA", "DLWRF_FORA"], "periods__warmup_days": 30,
          "features__bucket": {"capacities_mm": [50]}}, r"warmup_days >= 365"),
        ({"training__loss": "nsee"}, "unknown objective 'nsee'"),
        ({"data__lazy": {}, "training__loss": "nse"}, r"training\.loss: nse needs each site's target std"),
        ({"training__device": "gpu"}, r"training\.device"),
        ({"training__device": "cuda:99"}, r"training\.device: 'cuda:99' but this machine has"),
    ],
)
def test_config_errors_name_the_key(tmp_path, patch, message):
    from smfusion.training.run import check_names

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_with(**patch)))
    with pytest.raises(ConfigError, match=message) as exc:
        check_names(load_config(path), str(path))  # names registries resolve are checked beside them
    assert "bad.yaml" in str(exc.value)


def test_cuda_device_is_checked_before_any_data(monkeypatch):
    """A CUDA device torch does not see, or more processes than GPUs, is a ConfigError naming training.device."""
    import torch

    from smfusion.training.distributed import Dist
    from smfusion.training.run import check_device, check_names

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"training\.device: 'cuda' but this machine has no CUDA device"):
        check_names(parse_config(_with(training__device="cuda")), "c.yaml")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    check_device("cuda:0")
    check_device("cpu")
    with pytest.raises(ConfigError, match=r"has 1 CUDA device\(s\); use 'cpu' or cuda:0\.\.cuda:0"):
        check_device("cuda:1")
    Dist(0, 2, 0).check_device("cuda")
    with pytest.raises(ConfigError, match="process 1 of this machine has no CUDA device of its own"):
        Dist(1, 2, 1).check_device("cuda")
    Dist(1, 2, 1).check_device("cpu")


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


def test_variants_give_members_their_settings():
    cfg = parse_config(
        _with(
            training__ensemble=2,
            training__seed=10,
            variants=[{"training": {"swa_epochs": 1}}, {"model": {"hidden_size": 7}, "training": {"lr": 0.5}}],
        )
    )
    members = cfg.members()
    assert cfg.n_members == 4 == len(members)
    assert [m.index for m in members] == [0, 1, 2, 3]
    assert [m.training.seed for m in members] == [10, 11, 12, 13]
    assert [m.variant for m in members] == [0, 0, 1, 1]
    assert [m.model.hidden_size for m in members] == [256, 256, 7, 7]
    assert [m.training.swa_epochs for m in members] == [1, 1, None, None]
    assert members[2].training.lr == 0.5 and members[0].training.lr == cfg.training.lr
    plain = parse_config(_with(training__ensemble=3)).members()
    assert [(m.index, m.training.seed, m.model.hidden_size) for m in plain] == [(0, 0, 256), (1, 1, 256), (2, 2, 256)]


def test_the_reader_selects_the_data_section():
    """config.data.DATA_BY_READER: one table of the reader-specific rules (typed union on data.reader); the
    resolved config (and so its hash, a run's resume key) is what it was."""
    from smfusion.config.data import DATA_BY_READER, DataConfig, GriddedData, PointData, TwinData
    from smfusion.data.checks import check_config
    from smfusion.data.loading import get_reader

    base = {"name": "x", "periods": {"train": ["2015-04-01", "2015-12-31"]}, "data": {"dynamic": ["a"], "target": ["y"]}}

    def cfg(**data):
        return parse_config({**base, "data": {**base["data"], **data}})

    assert type(cfg().data) is DataConfig and type(cfg(reader="points").data) is PointData
    assert cfg(reader="points").data.point_reader and not cfg().data.point_reader
    changed = cfg()
    changed.data.reader = "tfrecord"  # set after validation: the table still answers
    assert changed.data.point_reader
    assert cfg(reader="points").to_dict()["data"] == {**cfg().to_dict()["data"], "reader": "points"}
    assert DATA_BY_READER["twin"] is TwinData and TwinData.multiscale_only and GriddedData.multiscale_only
    for reader, section in (("tb_files", "tb_files"), ("gridded", "gridded"), ("grid_inputs", "grid_inputs")):
        with pytest.raises(ConfigError, match=rf"data: data.reader '{reader}' needs a data.{section} section"):
            cfg(reader=reader)
    late = cfg()
    for reader in ("tb_files", "gridded", "grid_inputs", "sensor_cells"):  # set after validation: one line too
        late.data.reader = reader
        with pytest.raises(ConfigError, match=rf"data.reader '{reader}' needs a data.{reader} section") as err:
            get_reader(reader)(late.data, "2015-04-01", "2015-04-02")
        assert err.value.field == f"data.{reader}"
        assert any("needs a data." + reader in str(p) for p in check_config(late))
    with pytest.raises(ConfigError, match=r"data\.dynamc: unknown key$"):
        cfg(reader="points", dynamc=[])  # the union's tag is no part of the key's path
    with pytest.raises(ConfigError, match="is for multiscale runs"):
        cfg(reader="twin")
    built = RunConfig(**{**base, "data": DataConfig(reader="points", target=["y"])})  # built in code: re-selected
    assert type(built.data) is PointData and built.fusion is not None
