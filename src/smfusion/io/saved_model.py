"""Run the published exported fusion model on shards, as the published ``run_inference.py`` does.

The model (``soil_moisture_model.zip``: ``saved_model.pb``, ``variables/``,
``graph_def.pbtxt``) is a TF-1 graph loaded with the ``serve`` tag. Per example
(batch of one) it is fed, from :data:`smfusion.io.fusion_schema.PUBLISHED_MODEL`:

* ``ImageTensor:0`` (1, H, W, 10) float32: Sentinel-1 VV, VH, angle, Sentinel-2
  B4, B3, B2, B8, B11, B12 as stored, and the NASA DEM mapped from 0..3000 m to
  ``int(clip(elevation / 3000 * 255, 0, 255))``;
* ``LowResImageTensor:0`` (1, H, W, 4): SoilGrids sand, silt, clay, bulk density as stored;
* ``AuxTensor:0`` (1, 2): ``smap_sm / 255``, ``gldas_sm / 255`` (0 where absent,
  the published parser's default);

and ``clip_by_value:0`` (soil moisture clipped to [0, 1]) is read. A missing
image field is a one-line DataError (the published parser has no default for
them). Needs TensorFlow: the optional extra ``pip install 'smfusion[tensorflow]'``
(CPU build); nothing else in smfusion imports it.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Optional

import numpy as np

from smfusion.errors import ConfigError, DataError
from smfusion.io.atomic import atomic_path
from smfusion.io.fusion_schema import PUBLISHED_MODEL, REQUIRED, field_values, label_value
from smfusion.io.tfrecord import list_shards, read_examples

__all__ = ["published_inputs", "input_fields", "load_saved_model", "predict_saved_model"]

_PROPS = ("center_lat", "center_long", "sensor_id", "timestamp", "size", "sm_0_5", "sm_5_5")


def input_fields() -> set[str]:
    """Every field :func:`published_inputs` reads."""
    m = PUBLISHED_MODEL
    return set(m.image) | set(m.low_res_image) | set(m.auxiliary)


def _image(ex: dict, names, size: int, path, index: int) -> np.ndarray:
    planes = []
    for name in names:
        if name not in ex:
            raise DataError(f"record {index}: missing field the exported model needs", path=path, field=name)
        v = field_values(ex, name, size, path, index).reshape(size, size)
        if name == "nasa_dem_elevation":
            lo, hi = PUBLISHED_MODEL.dem_range_m
            v = np.floor(np.clip((v - lo) / (hi - lo) * 255.0, 0.0, 255.0))
        planes.append(v)
    return np.stack(planes, axis=-1).astype(np.float32)


def published_inputs(ex: dict, path="<memory>", index: int = 0) -> dict[str, np.ndarray]:
    """``{"image": (H, W, 10), "low_res_image": (H, W, 4), "auxiliary": (2,)}`` float32 for one example."""
    if "size" in ex:
        size = int(field_values(ex, "size", 0, path, index)[0])
    else:
        first = ex.get(PUBLISHED_MODEL.image[0])
        size = int(round(np.sqrt(first.size))) if first is not None and not isinstance(first, list) else 0
    m = PUBLISHED_MODEL
    aux = [float(field_values(ex, n, 0, path, index)[0]) if n in ex else 0.0 for n in m.auxiliary]
    return {"image": _image(ex, m.image, size, path, index),
            "low_res_image": _image(ex, m.low_res_image, size, path, index),
            "auxiliary": np.asarray(aux, dtype=np.float32)}


def _tensorflow():
    try:
        import tensorflow as tf
    except ImportError:
        raise ConfigError("predict-points --saved-model needs TensorFlow: pip install 'smfusion[tensorflow]' "
                          "(the CPU build)") from None
    return tf.compat.v1


def load_saved_model(model_dir: str | Path):
    """(session, run function) of the exported model in ``model_dir``; run(inputs) -> float."""
    model_dir = Path(model_dir)
    if not (model_dir / "saved_model.pb").is_file() and not (model_dir / "saved_model.pbtxt").is_file():
        raise DataError("not an exported TensorFlow model folder (no saved_model.pb)", path=model_dir)
    tf = _tensorflow()
    graph = tf.Graph()
    sess = tf.Session(graph=graph)
    m = PUBLISHED_MODEL
    try:
        with graph.as_default():
            tf.saved_model.loader.load(sess, list(m.tags), str(model_dir))
            out = graph.get_tensor_by_name(m.output_tensor)
            feeds = [graph.get_tensor_by_name(n) for n in (m.image_tensor, m.low_res_tensor, m.auxiliary_tensor)]
    except (KeyError, ValueError, OSError, RuntimeError) as exc:
        sess.close()
        msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise DataError(f"cannot load the exported model with the published signature: {msg}",
                        path=model_dir) from None

    def run(inputs: dict[str, np.ndarray]) -> float:
        values = (inputs["image"][None], inputs["low_res_image"][None], inputs["auxiliary"][None])
        return float(np.asarray(sess.run(out, feed_dict=dict(zip(feeds, values)))).squeeze())

    return sess, run


def _examples(shards, keys):
    for shard in shards:
        for i, ex in enumerate(read_examples(shard, REQUIRED, keys=keys)):
            yield shard, i, ex


def predict_saved_model(
    model_dir: str | Path, input_path: str | Path, out: str | Path, num_inference_samples: Optional[int] = None,
    num_skip_samples: int = 0, progress: bool = True,
) -> tuple[Path, int]:
    """Exported-model predictions for the examples of ``input_path`` (file, folder or glob) into a CSV.

    ``num_skip_samples`` examples are skipped first, then ``num_inference_samples``
    are predicted (all when None), as the published script's options.
    """
    from tqdm.auto import tqdm

    shards = list_shards(input_path)
    keys = input_fields() | set(_PROPS)
    stop = None if num_inference_samples is None else num_skip_samples + num_inference_samples
    stream = itertools.islice(_examples(shards, keys), num_skip_samples, stop)
    sess, run = load_saved_model(model_dir)
    out, n = Path(out), 0
    try:
        with atomic_path(out) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["sensor_id", "timestamp_ms", "time_utc", "center_lat", "center_long", "sm_0_5_pred", "sm_0_5"])
            for shard, i, ex in tqdm(stream, desc="predict-points", unit="example", disable=not progress):
                pred = run(published_inputs(ex, shard, i))
                t = int(field_values(ex, "timestamp", 0, shard, i)[0])
                y = label_value(ex, shard, i)
                w.writerow([ex["sensor_id"][0].decode("utf-8", "replace"), t, str(np.datetime64(t, "ms")),
                            f"{float(ex['center_lat'][0]):.5f}", f"{float(ex['center_long'][0]):.5f}",
                            f"{pred:.5f}", "" if not np.isfinite(y) else f"{y:.5f}"])
                n += 1
    finally:
        sess.close()
    return out, n
