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
