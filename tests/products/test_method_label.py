"""Honest product labels (issue 26, item 5): only a sensor's observations as inputs make a CASM product."""

from pathlib import Path

from smfusion.config import load_config
from smfusion.products.longterm import method_label

ROOT = Path(__file__).resolve().parents[2]


def test_labels_follow_the_inputs():
    tb = method_label(load_config(ROOT / "configs" / "casm_twin_smos.yaml"))
    assert "CASM, brightness temperatures" in tb
    real = method_label(load_config(ROOT / "configs" / "casm_hawaii_smos.yaml"))
    assert "retrieval to retrieval" in real and "sm_smos" in real
    forcing = method_label(load_config(ROOT / "src" / "smfusion" / "configs" / "demo.yaml"))
    assert "CASM" not in forcing and "lstm" in forcing.lower()
    for name in ("casm_conus_lstm.yaml", "casm_conus.yaml"):  # residual learning on forcing: not CASM's method
        assert "CASM" not in method_label(load_config(ROOT / "configs" / name))


def test_labels_ask_what_the_reader_and_adapter_declare():
    """No reader or adapter name in the label: a new reader of retrievals (its row of DATA_BY_READER says
    ``gives_retrievals``) and a new adapter of sensor inputs (``sensor_inputs``) are labelled as the built-in ones."""
    from typing import ClassVar

    from smfusion.config.data import DATA_BY_READER, DataConfig, TwinData
    from smfusion.data.adapters import _ADAPTERS, register_adapter
    from smfusion.data.adapters.sequence import SequenceAdapter
    from smfusion.data.adapters.tb import TBAdapter

    class RetrievalsData(DataConfig):
        gives_retrievals: ClassVar[bool] = True

    cfg = load_config(ROOT / "configs" / "casm_conus.yaml")
    assert "CASM" not in method_label(cfg) and not cfg.data.traits.gives_retrievals
    DATA_BY_READER["my_retrievals"] = RetrievalsData
    try:
        cfg.data.reader = "my_retrievals"
        assert "retrieval to retrieval" in method_label(cfg) and cfg.data.traits is RetrievalsData
    finally:
        del DATA_BY_READER["my_retrievals"]

    @register_adapter("my_sensor_adapter")
    class MySensor(SequenceAdapter):
        sensor_inputs = True

    tb = load_config(ROOT / "configs" / "casm_twin_smos.yaml")
    tb.data.adapter = "my_sensor_adapter"
    try:
        assert "CASM, brightness temperatures" in method_label(tb) and TBAdapter.sensor_inputs
    finally:
        _ADAPTERS.pop("my_sensor_adapter")
    assert TwinData.drawn_per_window and not DATA_BY_READER["tb_files"].drawn_per_window  # longterm: one time block
