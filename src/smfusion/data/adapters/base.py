"""What every data adapter provides, and the two array containers they hand to training.

An adapter turns a config's data into what the one trainer and the one run
loader need, and back into physical units. It never calls the model.

=================  ==========================================================
``check``          refuse a config the adapter cannot serve, before any work
``load``           read the data the config names (a canonical ``(site, time)``
                   Dataset, or a point set)
``split``          train / validation / test ids (sites, stations, sensors)
``fit``            fitted state from the training data only (scalers,
                   climatologies); ``save``/``restore`` keep it in the run dir
``model_kwargs``   the input sizes (and options) ``build_model`` needs
``train_batches``  a :class:`Sampler` of training minibatches (dicts of arrays)
``eval_batches``   :class:`Batches`: model inputs for given ids and period
``to_physical``    normalised model output -> physical units
``to_dataset``     member predictions -> an ``xarray.Dataset``
=================  ==========================================================
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from smfusion.config import RunConfig
from smfusion.data.loading import SiteSplit
from smfusion.errors import DataError
from smfusion.io.atomic import write_text


@dataclass
class Batches:
    """Model inputs for prediction, in rows (sites or examples), and the normalised target.

    ``inputs``: name -> array whose first axis is the row; ``y``: (rows, time,
    target), NaN where there is no observation (time = 1 for point examples);
    days before ``score_from`` are warm-up; ``rows``: the ids (site or example
    index); ``time``: the dates of the time axis (None for points); ``noisy``:
    the inputs that input-noise runs perturb; ``chunk``: rows per forward pass.
    """

    inputs: dict[str, np.ndarray]
    y: np.ndarray
    rows: np.ndarray
    time: Optional[np.ndarray] = None
    score_from: int = 0
    noisy: tuple[str, ...] = ()
    chunk: int = 512
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def chunks(self, size: Optional[int] = None) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
        """(row slice, input dict) pieces of at most ``size`` (default ``chunk``) rows."""
        step = size or self.chunk
        for a in range(0, len(self), step):
            sl = slice(a, a + step)
            yield sl, {k: v[sl] for k, v in self.inputs.items()}

    def pieces(self) -> Iterator["Batches"]:
        """The rows as consecutive :class:`Batches` that hold their inputs, one piece in memory at a time (what
        :meth:`smfusion.runs.Run.forward` runs over). This one holds its inputs: it is its own one piece; a
        streamed subclass reads each piece as it is asked for."""
        yield self


class Sampler:
    """Training minibatches: ``sample(rng)`` -> dict of numpy arrays or tensors (the Trainer moves them to
    its device). ``start_epoch`` is called before each epoch's first minibatch and ``close`` after training
    (a streaming sampler opens and ends its readers there); ``local_rows`` True: under several processes,
    ``sample`` gives this process's rows of the global minibatch only, not all of them."""

    local_rows = False

    def start_epoch(self, epoch: int, n_iter: int) -> None:
        """Epoch ``epoch`` (1-based) of ``n_iter`` minibatches begins; default: nothing to do."""

    def close(self) -> None:
        """Training is over; default: nothing to release."""

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def iterations_per_epoch(self, batch_size: int, seq_len: int) -> int:
        """Default minibatches per epoch when ``training.iterations_per_epoch`` is not set."""
        raise NotImplementedError  # pragma: no cover - interface


def rows_rule(n_rows: int, batch_size: int) -> int:
    """One pass over the rows on average: ``ceil(n_rows / batch_size)``."""
    return max(1, math.ceil(n_rows / batch_size))


class Adapter:
    """Base class of the data adapters (see the module docstring); one instance per run.

    Subclasses set ``name`` (by :func:`~smfusion.data.adapters.register_adapter`),
    ``default_objective`` (None: ``training.loss``), ``layout`` (``"site"``:
    predictions are ``(site, time)`` series scored per site; ``"points"``:
    independent examples scored pooled) and ``sensor_inputs`` (True: the inputs are
    a satellite sensor's observations, CASM's sensor transfer; products say so).
    """

    name: str = "base"
    default_objective: Optional[str] = None
    layout: str = "site"
    sensor_inputs: bool = False

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg

    def check(self) -> None:
        """Refuse a config this adapter cannot train (before any data is read); default: nothing to check."""

    def carries_site_std(self) -> bool:
        """Whether training minibatches can carry ``y_std``, each site's training-period target std (the
        ``nse`` objective needs it); default: no."""
        return False

    # -- data ------------------------------------------------------------------
    def load(self, start: Optional[str] = None, end: Optional[str] = None, require_target: bool = True,
             inputs_only: bool = False) -> Any:
        """The data over ``start..end`` (both None: all the config needs); ``inputs_only``: no target needed."""
        raise NotImplementedError  # pragma: no cover - interface

    def split(self, data: Any) -> SiteSplit:
        raise NotImplementedError  # pragma: no cover - interface

    def all_ids(self, data: Any) -> np.ndarray:
        """Every id (site or sensor) of ``data``."""
        raise NotImplementedError  # pragma: no cover - interface

    def cv_units(self, data: Any) -> dict[str, np.ndarray]:
        """What spatial CV splits: ``{"ids", "lat", "lon"[, "network"]}``, one entry per unit."""
        raise NotImplementedError  # pragma: no cover - interface

    # -- fitted state ----------------------------------------------------------
    def fit(self, data: Any, split: SiteSplit, source: Optional["Adapter"] = None) -> None:
        raise NotImplementedError  # pragma: no cover - interface

    def save(self, run_dir: Path) -> None:
        raise NotImplementedError  # pragma: no cover - interface

    def restore(self, run_dir: Path) -> None:
        raise NotImplementedError  # pragma: no cover - interface

    @staticmethod
    def save_split(run_dir: Path, split: SiteSplit) -> None:
        write_text(Path(run_dir) / "split.json", json.dumps(split.to_dict()))

    @staticmethod
    def load_split(run_dir: Path) -> SiteSplit:
        path = Path(run_dir) / "split.json"
        try:
            return SiteSplit.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"cannot read the run's split: {exc}", path=path) from None

    # -- model -----------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover - interface

    def input_names(self) -> list[str]:
        """Columns of the model's input layer, in order (for transfer learning's re-mapping)."""
        raise DataError(f"adapter '{self.name}' has no named input columns (transfer re-mapping needs them)")

    def derived_inputs(self) -> dict[str, list[str]]:
        """Input columns the adapter computes beyond the config's ``data.dynamic``/``data.static``, by kind
        (``derived``: features of the dynamic inputs; ``descriptors``: statics from the forcing and
        location); what a report's protocol names. Default: none."""
        return {}

    def baseline_inputs(self, data: Any) -> tuple[Any, list[str], list[str]]:
        """``data`` with the model's inputs in physical units (derived columns added, not normalised) and
        the names of its dynamic and static input columns: what a baseline fitted on the model's own inputs
        reads (the report's linear baseline)."""
        raise DataError(f"adapter '{self.name}' has no physical input columns for a baseline on the same inputs")

    # -- batches ---------------------------------------------------------------
    def train_batches(self, data: Any, split: SiteSplit, training) -> Sampler:
        raise NotImplementedError  # pragma: no cover - interface

    def validation_batches(self, data: Any, split: SiteSplit) -> Optional[Batches]:
        raise NotImplementedError  # pragma: no cover - interface

    def eval_batches(self, data: Any, ids: np.ndarray, period: Optional[tuple[str, str]],
                     chunk: Optional[int] = None) -> Batches:
        raise NotImplementedError  # pragma: no cover - interface

    # -- back to physical units ------------------------------------------------
    def to_physical(self, z: np.ndarray, batches: Batches) -> np.ndarray:
        """Normalised output (rows, time, target) over the scored days -> physical units."""
        raise NotImplementedError  # pragma: no cover - interface

    def observations(self, data: Any, batches: Batches) -> np.ndarray:
        """Observed target in physical units, (rows, scored time, target), NaN where missing."""
        raise NotImplementedError  # pragma: no cover - interface

    def coords(self, data: Any, batches: Batches) -> tuple[tuple[str, ...], dict]:
        """Dims and coords of one predicted layer (``to_dataset``)."""
        raise NotImplementedError  # pragma: no cover - interface

    def variable_attrs(self, data: Any, var: str) -> dict:
        return {}
