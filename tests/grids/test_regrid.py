"""Area-weighted regridding: identity, nesting = block mean, conservation of the area integral (M36 -> M25)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from smfusion.errors import ConfigError, DataError
from smfusion.grids.ease2 import get_grid, latlon_to_rowcol, rowcol_to_latlon, rowcol_to_xy
from smfusion.grids.nesting import aggregate
from smfusion.grids.regrid import Regridder, regrid, regrid_sites, site_weights


def _field(shape, seed=0, nan_fraction=0.0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.05, 0.5, shape)
    a[rng.random(shape) < nan_fraction] = np.nan
    return a


def test_same_grid_is_identity():
    win = (100, 130, 200, 260)
    a = _field((3, 30, 60), nan_fraction=0.2)
    out = regrid(a, "M36", "M36", src_window=win, dst_window=win)
    np.testing.assert_allclose(out, a, rtol=1e-12, atol=0)
    assert np.array_equal(np.isnan(out), np.isnan(a))


def test_nesting_case_equals_block_mean():
    win = (400, 440, 800, 880)  # M09 rows/cols aligned to M36 cells (factor 4)
    a = _field((2, 40, 80), seed=1, nan_fraction=0.3)
    for frac in (0.0, 0.5, 0.75):
        out = regrid(a, "M09", "M36", src_window=win, min_valid_fraction=frac)
        np.testing.assert_allclose(out, aggregate(a, "M09", "M36", frac, offset=win[::2]), rtol=1e-12)


def test_m36_to_m25_conserves_the_area_integral():
    src, dst = get_grid("M36"), get_grid("M25")
    sw = (100, 140, 200, 260)
    a = _field((40, 60), seed=2)
    rg = Regridder.create(src, dst, sw)
    # target cells entirely inside the source window
    top, bottom = src.y_max - sw[0] * src.cell_size, src.y_max - sw[1] * src.cell_size
    left, right = src.x_min + sw[2] * src.cell_size, src.x_min + sw[3] * src.cell_size
    r0 = int(np.ceil((dst.y_max - top) / dst.cell_size))
    r1 = int(np.floor((dst.y_max - bottom) / dst.cell_size))
    c0 = int(np.ceil((left - dst.x_min) / dst.cell_size))
    c1 = int(np.floor((right - dst.x_min) / dst.cell_size))
    out = regrid(a, src, dst, src_window=sw, dst_window=(r0, r1, c0, c1))
    assert np.isfinite(out).all()
    # independent integral: each source cell times its overlap with the union U of the target cells
    uy1, uy0 = dst.y_max - r0 * dst.cell_size, dst.y_max - r1 * dst.cell_size
    ux0, ux1 = dst.x_min + c0 * dst.cell_size, dst.x_min + c1 * dst.cell_size
    sy1 = src.y_max - np.arange(sw[0], sw[1]) * src.cell_size
    sx0 = src.x_min + np.arange(sw[2], sw[3]) * src.cell_size
    oy = np.clip(np.minimum(sy1, uy1) - np.maximum(sy1 - src.cell_size, uy0), 0, None)
    ox = np.clip(np.minimum(sx0 + src.cell_size, ux1) - np.maximum(sx0, ux0), 0, None)
    expected = (a * oy[:, None] * ox[None, :]).sum()
    got = out.sum() * dst.cell_size**2
    assert got == pytest.approx(expected, rel=1e-12)
    # area mean too, and the default target window holds the explicit one
    assert out.mean() == pytest.approx(expected / ((uy1 - uy0) * (ux1 - ux0)), rel=1e-12)
    full = rg(a, min_valid_fraction=1.0)
    r_off, c_off = r0 - rg.dst_window[0], c0 - rg.dst_window[2]
    np.testing.assert_allclose(full[r_off:r_off + out.shape[0], c_off:c_off + out.shape[1]], out, rtol=1e-12)


def test_row_only_field_gives_exact_interval_means():
    src, dst = get_grid("M36"), get_grid("M25")
    sw = (150, 170, 0, 10)
    per_row = np.linspace(0.1, 0.4, 20)
    a = np.repeat(per_row[:, None], 10, axis=1)
    out = regrid(a, src, dst, src_window=sw, min_valid_fraction=0.0)
    rg = Regridder.create(src, dst, sw)
    rows = np.arange(rg.dst_window[0], rg.dst_window[1])
    for k, r in enumerate(rows):
        y1 = dst.y_max - r * dst.cell_size
        y0 = y1 - dst.cell_size
        sy1 = src.y_max - np.arange(sw[0], sw[1]) * src.cell_size
        ov = np.clip(np.minimum(sy1, y1) - np.maximum(sy1 - src.cell_size, y0), 0, None)
        if ov.sum() >= dst.cell_size * (1 - 1e-9):  # rows wholly inside the band
            assert out[k, 1] == pytest.approx((per_row * ov).sum() / ov.sum(), rel=1e-12)


def test_coverage_threshold_and_missing_values():
    a = _field((8, 8), seed=3)
    a[:4, :] = np.nan
    lo = regrid(a, "M36", "M25", src_window=(100, 108, 100, 108), min_valid_fraction=0.0)
    hi = regrid(a, "M36", "M25", src_window=(100, 108, 100, 108), min_valid_fraction=1.0)
    assert np.isfinite(lo).sum() > np.isfinite(hi).sum() > 0
    assert np.nanmin(lo) >= np.nanmin(a) - 1e-12 and np.nanmax(lo) <= np.nanmax(a) + 1e-12


def test_dataarray_path_sets_target_coords():
    src, dst = get_grid("M36"), get_grid("M25")
    rows, cols = np.arange(120, 130), np.arange(300, 320)
    x, y = rowcol_to_xy(src, rows, cols)
    da = xr.DataArray(_field((2, 10, 20), seed=4), dims=("time", "y", "x"),
                      coords={"time": [0, 1], "y": y, "x": x}, name="sm")
    out = regrid(da, src, dst)
    assert out.dims == da.dims and out.attrs["ease2_grid"] == "M25"
    r0, c0 = latlon_to_rowcol(dst, out["lat"].values[0], out["lon"].values[0])
    ex, ey = rowcol_to_xy(dst, r0, c0)
    assert out["x"].values[0] == pytest.approx(ex) and out["y"].values[0] == pytest.approx(ey)
    np.testing.assert_allclose(out.values, regrid(da.values, src, dst, src_window=(120, 130, 300, 320)))


def test_across_projections_constant_and_smooth_fields():
    src, dst = get_grid("M36"), get_grid("N36")
    sw = (20, 40, 300, 330)  # high northern latitudes
    lat, _ = rowcol_to_latlon(src, np.arange(*sw[:2])[:, None], np.arange(*sw[2:])[None, :])
    const = regrid(np.full((20, 30), 0.3), src, dst, src_window=sw, min_valid_fraction=0.9, oversample=6)
    assert np.isfinite(const).any()
    np.testing.assert_allclose(const[np.isfinite(const)], 0.3, rtol=1e-12)
    smooth = 0.01 * lat
    out = regrid(smooth, src, dst, src_window=sw, min_valid_fraction=0.99, oversample=6)
    rg = Regridder.create(src, dst, sw, oversample=6)
    rr, cc = np.nonzero(np.isfinite(out))
    dlat, _ = rowcol_to_latlon(dst, rr + rg.dst_window[0], cc + rg.dst_window[2])
    np.testing.assert_allclose(out[rr, cc], 0.01 * dlat, atol=0.01 * 0.2)  # within 0.2 deg of latitude


def test_regrid_sites_matches_the_window_regrid():
    rows, cols = np.meshgrid(np.arange(100, 110), np.arange(200, 212), indexing="ij")
    vals = _field((2, 10, 12), seed=5, nan_fraction=0.1)
    ds = xr.Dataset({"sm": (("site", "time"), vals.reshape(2, -1).T)},
                    coords={"site": np.arange(120), "time": [0, 1], "row": ("site", rows.ravel()),
                            "col": ("site", cols.ravel())}, attrs={"ease2_grid": "M36"})
    out = regrid_sites(ds, "M25", min_valid_fraction=0.5)
    grid = regrid(vals, "M36", "M25", src_window=(100, 110, 200, 212), min_valid_fraction=0.5)
    rg = Regridder.create("M36", "M25", (100, 110, 200, 212))
    ref = grid[:, out["row"].values - rg.dst_window[0], out["col"].values - rg.dst_window[2]].T
    np.testing.assert_allclose(out["sm"].values, ref, rtol=1e-6)
    assert out.attrs["ease2_grid"] == "M25" and np.isfinite(out["sm"].values).mean() > 0.8
    w = site_weights("M36", "M25", rows.ravel(), cols.ravel(), out["row"].values, out["col"].values)
    assert np.all(np.asarray(w.sum(axis=1)).ravel() <= get_grid("M25").cell_size ** 2 * (1 + 1e-9))


def test_bad_inputs_raise():
    with pytest.raises(DataError, match="does not match the source window"):
        regrid(np.zeros((5, 5)), "M36", "M25", src_window=(0, 4, 0, 4))
    with pytest.raises(ConfigError, match="not inside"):
        Regridder.create("M36", "M25", (0, 500, 0, 10))
    with pytest.raises(ConfigError, match="min_valid_fraction"):
        regrid(np.zeros((4, 4)), "M36", "M25", src_window=(0, 4, 0, 4), min_valid_fraction=2)
