"""check_config: a hydroDL config's files, variables, sites, periods and values, in about a second."""

import pytest

from smfusion.config import parse_config
from smfusion.data.checks import CHECKS, Problem, check_config, raise_for_problems, register_check
from smfusion.errors import DataError

pytestmark = pytest.mark.realdata


def _cfg(root, **periods):
    return parse_config({
        "data": {"root": str(root), "dynamic": ["APCP_FORA", "TMP_2_FORA"], "static": ["Sand"],
                 "target": ["SMAP_AM"]},
        "periods": {"train": ["2015-04-01", "2016-03-31"], "test": ["2016-04-01", "2017-03-31"],
                    "warmup_days": 30, **periods},
    })


@pytest.fixture(scope="module")
def db(tmp_path_factory, mini_db):
    return mini_db(tmp_path_factory.mktemp("chk") / "db")


def test_good_config_has_no_problem(db):
    assert check_config(_cfg(db)) == []


def test_every_period_is_checked_against_the_data_and_the_target(db):
    problems = check_config(_cfg(db, validation=["2014-01-01", "2014-12-31"], test=["2016-04-01", "2019-01-01"]))
    assert [(p.where, p.severity) for p in problems] == [("periods.validation", "error"), ("periods.test", "error")]
    assert "outside the data, 2015-04-01 .. 2018-03-31" in problems[1].what
    (p,) = check_config(_cfg(db, test=["2017-04-01", "2018-03-31"]))
    assert p.where == "periods.test" and "SMAP_AM has no observation" in p.what and "2017-03-31" in p.what
    (w,) = check_config(_cfg(db, test=["2015-05-01", "2015-06-30"], warmup_days=365))
    assert w.severity == "warning" and "warm-up of 365 days" in w.what
    with pytest.raises(DataError, match="periods.test: .*no observation"):
        raise_for_problems(check_config(_cfg(db, test=["2017-04-01", "2018-03-31"])))
    raise_for_problems([w])  # warnings do not raise


def test_missing_files_sites_and_bad_values_are_listed(db, tmp_path):
    import shutil

    cfg = _cfg(db)
    cfg.data.dynamic = ["APCP_FORA", "NOPE"]
    cfg.data.static = ["Sand", "Clayy"]
    cfg.data.sites = [0, 7]
    found = [(p.where.rsplit("/", 2)[-2:] if "/" in p.where else p.where) for p in check_config(cfg)]
    assert found == [["2015", "NOPE.csv"], ["2016", "NOPE.csv"], ["const", "Clayy.csv"], "data.sites"]
    copy = tmp_path / "db"
    shutil.copytree(db, copy)
    path = copy / "CONUSv4f1/2016/TMP_2_FORA.csv"
    path.write_text(path.read_text().replace(",", ",inf,", 1))
    (p,) = check_config(_cfg(copy))
    assert p.where.endswith("2016/TMP_2_FORA.csv [field 'TMP_2_FORA']")
    assert p.what == "non-finite value inf at line 1 (site 0), column 2 (2016-04-02)"


def test_readers_without_a_hook_get_a_warning_and_hooks_plug_in(db):
    cfg = _cfg(db)
    cfg.data.reader = "myreader"
    (p,) = check_config(cfg)
    assert p.severity == "warning" and "no input check for reader 'myreader'" in p.what
    try:
        register_check("myreader")(lambda c: [Problem("data.root", "no files")])
        assert [str(p) for p in check_config(cfg)] == ["data.root: no files"]
    finally:
        CHECKS.pop("myreader")
    cfg.data.reader = "points"  # the data adapter's own refusal comes first
    assert "point readers train the 'fusion' model" in str(check_config(cfg)[0])
