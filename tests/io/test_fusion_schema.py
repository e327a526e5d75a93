"""The published fusion layout: the full field list, dtypes and shapes, round trip, scaling, groups."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from smfusion.errors import DataError
from smfusion.io import fusion_schema as fs
from smfusion.io.tfrecord import read_examples, write_examples
from smfusion.synthetic.fusion_shards import encode

# The field list of the published dataset README (Batchu et al. 2023), in its order.
PUBLISHED_FIELDS = (
    "center_lat", "center_long", "sensor_id", "size", "timestamp", "utm_easting_northing_image_polygon",
    "utm_zone", "mask", "aster_B13", "aster_B14", "aster_time_millis_diff", "aster_timestamp",
    "cgls_lc_crops-coverfraction", "cgls_lc_discrete_classification", "cgls_lc_grass-coverfraction",
    "cgls_lc_moss-coverfraction", "cgls_lc_time_millis_diff", "cgls_lc_timestamp", "gldas_evaporation",
    "gldas_rainfall", "gldas_sm", "gldas_snow_depth", "gldas_temp", "gldas_time_millis_diff", "gldas_timestamp",
    "modis_leaf_area_Fpar", "modis_leaf_area_Lai", "modis_leaf_area_time_millis_diff", "modis_leaf_area_timestamp",
    "nasa_dem_elevation", "nasa_dem_time_millis_diff", "nasa_dem_timestamp", "sentinel_1_VH", "sentinel_1_VV",
    "sentinel_1_angle", "sentinel_1_max_VH", "sentinel_1_max_VV", "sentinel_1_max_angle", "sentinel_1_mean_VH",
    "sentinel_1_mean_VV", "sentinel_1_mean_angle", "sentinel_1_min_VH", "sentinel_1_min_VV",
    "sentinel_1_min_angle", "sentinel_1_orbit_pass", "sentinel_1_time_millis_diff", "sentinel_1_timestamp",
    "sentinel_2_B11", "sentinel_2_B12", "sentinel_2_B2", "sentinel_2_B3", "sentinel_2_B4", "sentinel_2_B5",
    "sentinel_2_B6", "sentinel_2_B7", "sentinel_2_B8", "sentinel_2_cloud_percentage", "sentinel_2_max_B11",
    "sentinel_2_max_B12", "sentinel_2_max_B2", "sentinel_2_max_B3", "sentinel_2_max_B4", "sentinel_2_max_B5",
    "sentinel_2_max_B6", "sentinel_2_max_B7", "sentinel_2_max_B8", "sentinel_2_max_sen_2_mask",
    "sentinel_2_mean_B11", "sentinel_2_mean_B12", "sentinel_2_mean_B2", "sentinel_2_mean_B3", "sentinel_2_mean_B4",
    "sentinel_2_mean_B5", "sentinel_2_mean_B6", "sentinel_2_mean_B7", "sentinel_2_mean_B8",
    "sentinel_2_mean_sen_2_mask", "sentinel_2_min_B11", "sentinel_2_min_B12", "sentinel_2_min_B2",
    "sentinel_2_min_B3", "sentinel_2_min_B4", "sentinel_2_min_B5", "sentinel_2_min_B6", "sentinel_2_min_B7",
    "sentinel_2_min_B8", "sentinel_2_min_sen_2_mask", "sentinel_2_sen_2_mask", "sentinel_2_time_millis_diff",
    "sentinel_2_timestamp", "smap_sm", "smap_time_millis_diff", "smap_timestamp", "soil_grids_bd_bdod_0-5cm_mean",
    "soil_grids_bd_time_millis_diff", "soil_grids_bd_timestamp", "soil_grids_clay_clay_0-5cm_mean",
    "soil_grids_clay_time_millis_diff", "soil_grids_clay_timestamp", "soil_grids_sand_sand_0-5cm_mean",
    "soil_grids_sand_time_millis_diff", "soil_grids_sand_timestamp", "soil_grids_silt_silt_0-5cm_mean",
    "soil_grids_silt_time_millis_diff", "soil_grids_silt_timestamp", "sm_0_5",
)


def _full_example(size: int, rng) -> dict:
    """Every schema field at its dtype and shape, distinct values."""
    ex = {}
    for name, f in fs.FIELDS.items():
        n = {fs.SCALAR: 1, fs.IMAGE: size * size, fs.VECTOR: 10}[f.shape]
        if f.dtype == fs.BYTES:
            ex[name] = [f"{name}-text".encode()]
        elif f.dtype == fs.FLOAT:
            ex[name] = rng.normal(0, 1e3, n).astype(np.float32)
        else:
            ex[name] = rng.integers(0, 256, n).astype(np.int64)
    ex["size"] = np.int64([size])
    return ex


def test_schema_is_the_published_list():
    assert list(fs.FIELDS)[: len(PUBLISHED_FIELDS)] == list(PUBLISHED_FIELDS)
    assert set(fs.FIELDS) - set(PUBLISHED_FIELDS) == {"sm_5_5"}  # parsed by the published inference script
    assert len(PUBLISHED_FIELDS) == 106


def test_dtypes_and_shapes_of_the_inference_script():
    # run_inference.py: sensor_id string; lat/long/timestamp/sm_0_5/sm_5_5 float; smap_sm/gldas_sm int64
    # scalars; S1/S2/DEM/SoilGrids images FixedLenFeature((512, 512), int64)
    f = fs.FIELDS
    assert f["sensor_id"].dtype == fs.BYTES
    for name in ("center_lat", "center_long", "timestamp", "sm_0_5", "sm_5_5"):
        assert (f[name].dtype, f[name].shape, f[name].origin) == (fs.FLOAT, fs.SCALAR, fs.SCRIPT)
    for name in ("smap_sm", "gldas_sm"):
        assert (f[name].dtype, f[name].shape, f[name].divisor) == (fs.INT64, fs.SCALAR, 255.0)
    m = fs.PUBLISHED_MODEL
    for name in m.image + m.low_res_image:
        assert (f[name].dtype, f[name].shape, f[name].origin) == (fs.INT64, fs.IMAGE, fs.SCRIPT)
    assert f["nasa_dem_elevation"].divisor == 1.0 and f["nasa_dem_elevation"].units == "m"
    assert fs.PUBLISHED_SIZE == 512
    # every source prefix of the list has its timestamp and time delta
    prefixes = {n[: -len("_timestamp")] for n in PUBLISHED_FIELDS if n.endswith("_timestamp")}
    assert len(prefixes) == 12 and all(f"{p}_time_millis_diff" in f for p in prefixes)


def test_round_trip_of_every_field(tmp_path):
    rng = np.random.default_rng(0)
    examples = [_full_example(4, rng), _full_example(4, rng)]
    path = write_examples(tmp_path / "data-00000-of-00001.tfrecord.gz", examples)
    got = list(read_examples(path, required=fs.REQUIRED))
    assert len(got) == 2
    for ex, back in zip(examples, got):
        assert set(back) == set(fs.FIELDS)
        for name, f in fs.FIELDS.items():
            if f.dtype == fs.BYTES:
                assert back[name] == ex[name]
            else:
                assert back[name].dtype == (np.float32 if f.dtype == fs.FLOAT else np.int64), name
                assert np.array_equal(back[name], ex[name]), name
                np.testing.assert_array_equal(fs.field_values(back, name, 4), ex[name] / f.divisor)


def test_scaling_conventions():
    ex = {"smap_sm": np.int64([102]), "gldas_sm": np.int64([51]), "nasa_dem_elevation": np.arange(4, dtype=np.int64),
          "timestamp": np.float32([1.6e12]), "sentinel_1_orbit_pass": [b"DESCENDING"]}
    assert fs.field_values(ex, "smap_sm", 2)[0] == pytest.approx(0.4)
    assert fs.field_values(ex, "gldas_sm", 2)[0] == pytest.approx(0.2)
    assert fs.field_values(ex, "nasa_dem_elevation", 2).tolist() == [0, 1, 2, 3]  # metres, unscaled
    assert fs.decode_codes("sentinel_1_orbit_pass", ex["sentinel_1_orbit_pass"]) == 0.0
    assert np.isnan(fs.decode_codes("sentinel_1_orbit_pass", [b"sideways"]))
    # timestamp is float32: near 2020 its step is 2**17 ms (131 s)
    assert np.spacing(np.float32(1.6e12)) == 2.0 ** 17
    # the SYNTHETIC writer's encoding inverts through the published divisors
    assert encode("smap_sm", 0.3, 2).tolist() == [round(0.3 * 255)]
    assert encode("gldas_sm", 20.0, 2)[0] / 255 == pytest.approx(0.2)  # 20 kg/m2 in 0-10 cm = 0.2 m3/m3
    vv = encode("sentinel_1_VV", [[-30.0, 5.0], [-40.0, 99.0]], 2)
    assert vv.dtype == np.int64 and vv.tolist() == [0, 255, 0, 255]  # byte-scaled, clipped


def test_label_fallback_and_no_data():
    assert fs.label_value({"sm_0_5": np.float32([0.2]), "sm_5_5": np.float32([0.3])}) == pytest.approx(0.2)
    assert fs.label_value({"sm_0_5": np.float32([0.0]), "sm_5_5": np.float32([0.3])}) == pytest.approx(0.3)
    assert np.isnan(fs.label_value({"center_lat": np.float32([1])}))


def test_wrong_size_or_kind_is_one_line_error():
    with pytest.raises(DataError, match=r"record 7: 3 values, expected size\*size = 4") as exc:
        fs.field_values({"sentinel_1_VV": np.int64([1, 2, 3])}, "sentinel_1_VV", 2, "s.tfrecord.gz", 7)
    assert "sentinel_1_VV" in str(exc.value) and "s.tfrecord.gz" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(DataError, match="numbers where the schema has bytes"):
        fs.field_values({"sensor_id": np.int64([5])}, "sensor_id", 0)


def test_groups_follow_the_schema():
    for g in fs.GROUPS.values():
        assert all(f in fs.FIELDS for f in g.fields()), g.name
        if g.timed:
            assert g.time_field().endswith("_time_millis_diff")
    assert [n for n, _ in fs.PAPER_ABLATION] == ["SMAP+GLDAS NN", "S1+DEM", "S1+DEM+S2", "S1+DEM+S2+SoilGrids",
                                                  "S1+DEM+S2+SoilGrids+SMAP+GLDAS"]
    assert fs.ablation_rows()[-1][1] == ["s1", "dem", "s2", "soilgrids", "smap", "gldas"]
    assert len(fs.channel_names(fs.GROUPS["landcover"])) == len(fs.LANDCOVER_CODES) + 3
    assert fs.example_fields(["smap"], label=True)[-3:] == ["smap_sm", "smap_time_millis_diff", "sm_0_5"]
    with pytest.raises(ValueError, match="unknown input group"):
        fs.groups_for(["s3"])


def test_docs_schema_table_lists_every_field():
    text = (Path(__file__).parents[2] / "docs" / "fusion.md").read_text()
    rows = set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.M))
    assert set(fs.FIELDS) <= rows
