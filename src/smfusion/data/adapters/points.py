"""The ``points`` adapter: independent (sensor, time) examples for the fusion model (Batchu et al. 2023).

Readers ``tfrecord`` (labelled shards in the fusion schema) and ``points``
(the real CONUS SMAP + NLDAS sample as a point table); see
:mod:`smfusion.data.points`. Examples are split by sensor (no sensor in two
splits); the scaler holds per-channel statistics of the training points;
minibatches are random examples; predictions are one value per example, so
they are scored pooled over a split's examples (the paper's protocol).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from smfusion.data import points as P
from smfusion.data.adapters import register_adapter
from smfusion.data.adapters.base import Adapter, Batches, Sampler, rows_rule
from smfusion.data.normalize import Scaler
from smfusion.errors import ConfigError, DataError
from smfusion.io.fusion_schema import LABEL

PREDICT_CHUNK = 1024
STREAM_CHUNK = 256  # streamed validation: examples read, normalised and predicted at a time


def _from_shards(cfg, start: Optional[str], end: Optional[str]):
    """Reader ``tfrecord``: every labelled example of the shards in ``data.root``; with ``fusion.stream`` the
    shards and their index (:class:`~smfusion.data.points_stream.ShardSet`), read later as each step needs."""
    f = cfg.fusion
    if not cfg.data.root:
        raise ConfigError("data.root: the folder of labelled TFRecord shards is required for reader 'tfrecord'")
    if f.stream:
        from smfusion.data.points_stream import open_shards

        return open_shards(cfg.data.root, f.groups, f.patch_size, f.index_dir, progress=cfg.training.progress)
    return P.points_from_shards(cfg.data.root, f.groups, f.patch_size)


def _from_conus(cfg, start: Optional[str], end: Optional[str]):
    """Reader ``points``: the CONUS point table over the training period, or from ``start`` to ``end``."""
    f = cfg.fusion
    if start is None or end is None:
        start, end = cfg.periods.train.as_tuple() if cfg.periods else ("2015-04-01", "2017-03-31")
    else:  # points from ``start`` on: the index warm-up comes before it
        start = (pd.Timestamp(start) - pd.Timedelta(days=P.API_WARMUP_DAYS)).strftime("%Y-%m-%d")
    return P.conus_points(cfg.data.root, start, end, f.groups, f.max_lag_days, cfg.data.subset, cfg.data.sites)


#: point reader -> (how its examples are read ``(cfg, start, end)``, whether it reads shards that
#: ``fusion.stream`` streams)
POINT_READERS = {"tfrecord": (_from_shards, True), "points": (_from_conus, False)}


def _point_reader(cfg) -> tuple:
    if cfg.data.reader not in POINT_READERS:
        raise ConfigError(f"data.reader '{cfg.data.reader}' is not a point reader (use {' or '.join(POINT_READERS)})")
    return POINT_READERS[cfg.data.reader]


def load_points(cfg, start: Optional[str] = None, end: Optional[str] = None):
    """Every labelled point of the config's data (all sensors; split later); with ``start``/``end`` (reader
    ``points``), the points of that window (:data:`POINT_READERS`)."""
    return _point_reader(cfg)[0](cfg, start, end)


def _streams(points) -> bool:
    """Whether ``points`` are shards read as needed (a ShardSet) rather than a PointSet in memory."""
    return not isinstance(points, P.PointSet)


def _select(points, ids: Optional[np.ndarray], period) -> P.PointSet:
    """The examples of sensors ``ids`` (None: all) with a timestamp inside ``period`` (None: any), in memory
    (from a ShardSet: only those records are decoded)."""
    if _streams(points):
        return points.load(points.rows(ids, None if period is None else tuple(pd.Timestamp(p).strftime("%Y-%m-%d")
                                                                              for p in period)))
    keep = np.ones(len(points), dtype=bool) if ids is None else np.isin(points.sensor, np.asarray(ids))
    if period is not None:
        t = points.timestamp.astype("datetime64[ms]")
        t0 = np.datetime64(pd.Timestamp(period[0]), "ms")
        t1 = np.datetime64(pd.Timestamp(period[1]) + pd.Timedelta(days=1), "ms")
        keep &= (t >= t0) & (t < t1)
    return points.subset(np.flatnonzero(keep))


class PointSampler(Sampler):
    """``batch_size`` examples drawn at random (with replacement)."""

    def __init__(self, arrays: dict[str, np.ndarray], batch_size: int):
        self.arrays, self.batch_size = arrays, batch_size
        self.n = int(arrays["y"].shape[0])

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        idx = rng.integers(0, self.n, self.batch_size)
        return {k: v[idx] for k, v in self.arrays.items()}

    def iterations_per_epoch(self, batch_size: int, seq_len: int) -> int:
        return rows_rule(self.n, batch_size)


@register_adapter("points")
class PointsAdapter(Adapter):
    """See the module docstring. Fitted state: ``scaler``."""

    layout = "points"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.scaler: Optional[Scaler] = None
        self._train_arrays: Optional[dict[str, np.ndarray]] = None  # shared by every member's sampler

    def check(self) -> None:
        if not self.cfg.data.point_reader:
            raise ConfigError(f"data.reader: the points adapter reads 'tfrecord' or 'points', not '{self.cfg.data.reader}'")
        if self.cfg.model.name != "fusion":
            raise ConfigError(f"model.name: point readers train the 'fusion' model, got '{self.cfg.model.name}'")
        if self.cfg.transfer is not None:
            raise ConfigError("transfer: point runs cannot fine-tune from another run yet")
        if _point_reader(self.cfg)[1] and self.cfg.fusion.stream:  # before the index pass
            from smfusion.data.points_stream import check_batch
            from smfusion.data.stream_loader import rank_world

            for m in self.cfg.members():
                check_batch(m.training.batch_size, self.cfg.fusion.lanes, rank_world()[1])

    # -- data ------------------------------------------------------------------
    def load(self, start: Optional[str] = None, end: Optional[str] = None, require_target: bool = True,
             inputs_only: bool = False) -> P.PointSet:
        return load_points(self.cfg, start, end)

    def split(self, points: P.PointSet) -> P.SensorSplit:
        return P.split_by_sensor(points.sensor, self.cfg.split)

    @staticmethod
    def load_split(run_dir: Path) -> P.SensorSplit:
        path = Path(run_dir) / "split.json"
        try:
            return P.SensorSplit.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"cannot read the run's split: {exc}", path=path) from None

    def all_ids(self, points: P.PointSet) -> np.ndarray:
        return np.unique(points.sensor)

    def cv_units(self, points: P.PointSet) -> dict[str, np.ndarray]:
        ids, first = np.unique(points.sensor, return_index=True)
        return {"ids": ids, "lat": points.lat[first], "lon": points.lon[first]}

    # -- fitted state ----------------------------------------------------------
    def fit(self, points, split: P.SensorSplit, source: Optional[Adapter] = None) -> None:
        if _streams(points):  # one decoding pass over the training examples, in the loader workers
            from smfusion.data.stream_loader import moments_stream
            from smfusion.io.fusion_schema import groups_for

            rows = points.rows(split.train)
            if rows.size == 0:
                raise DataError("no training points after the sensor split")
            mo = moments_stream(points, rows, self.cfg.training.loader_workers, self.cfg.training.progress)
            self.scaler = P.scaler_from(mo, groups_for(points.groups))
            return
        train = points.of_sensors(split.train)
        if len(train) == 0:
            raise DataError("no training points after the sensor split")
        self.scaler = P.fit_scaler(train)

    def save(self, run_dir: Path) -> None:
        self.scaler.save(Path(run_dir) / "scaler.yaml")

    def restore(self, run_dir: Path) -> None:
        self.scaler = Scaler.load(Path(run_dir) / "scaler.yaml")

    # -- model -----------------------------------------------------------------
    def model_kwargs(self) -> dict:
        f = self.cfg.fusion
        return {"n_dynamic": 0, "n_static": 0, "n_target": 1,
                "sources": P.model_sources(self.cfg.data.reader, f.groups),
                "cnn_channels": f.cnn_channels, "embed_size": f.embed_size}

    # -- batches ---------------------------------------------------------------
    def train_batches(self, points, split: P.SensorSplit, training) -> Sampler:
        if _streams(points):
            from smfusion.data.stream_loader import StreamSampler

            return StreamSampler(points, points.rows(split.train), self.scaler, self.cfg.fusion, training)
        if self._train_arrays is None:
            self._train_arrays = P.model_inputs(points.of_sensors(split.train), self.scaler)
        return PointSampler(self._train_arrays, training.batch_size)

    def validation_batches(self, points, split: P.SensorSplit) -> Optional[Batches]:
        if not split.validation.size or not np.isin(points.sensor, split.validation).any():
            return None
        if _streams(points):  # read again at each validation, STREAM_CHUNK examples at a time
            from smfusion.data.points_stream import StreamBatches

            return StreamBatches(points, points.rows(split.validation), self.scaler, STREAM_CHUNK)
        return self.eval_batches(points, split.validation, None)

    def eval_batches(self, points: P.PointSet, ids: Optional[np.ndarray], period, chunk: Optional[int] = None
                     ) -> Batches:
        """Examples of sensors ``ids`` (None: all) with a timestamp inside ``period`` (None: any)."""
        from smfusion.data.points_stream import point_batches

        return point_batches(_select(points, ids, period), self.scaler, chunk or PREDICT_CHUNK)

    # -- back to physical units ------------------------------------------------
    def to_physical(self, z: np.ndarray, batches: Batches) -> np.ndarray:
        return z * self.scaler.std[LABEL] + self.scaler.mean[LABEL]

    def observations(self, points: P.PointSet, batches: Batches) -> np.ndarray:
        return batches.meta["points"].y.astype(np.float32).reshape(-1, 1, 1)

    def coords(self, points: P.PointSet, batches: Batches) -> tuple[tuple[str, ...], dict]:
        sub = batches.meta["points"]
        return ("example",), {"sensor": ("example", sub.sensor),
                              "time": ("example", sub.timestamp.astype("datetime64[ms]").astype("datetime64[ns]")),
                              "lat": ("example", sub.lat), "lon": ("example", sub.lon)}

    def variable_attrs(self, points, var: str) -> dict:
        return {"units": "m3 m-3", "long_name": "soil moisture 0-5 cm",
                "standard_name": "volume_fraction_of_condensed_water_in_soil"}
