"""Config sections of the methods: evaluation, multiscale, CV, seasonal (CASM), features, transfer, uncertainty."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from smfusion.config.base import Period, _Strict

class EvaluationConfig(_Strict):
    """Baseline rows scored beside the model (series runs; a baseline that does not apply to the run,
    e.g. the published hydroDL predictions off their protocol, is left out), plots, climatology window.
    Point runs always score their own baselines (SMAP alone, GLDAS alone rescaled)."""

    baselines: list[Literal["climatology", "linear", "hydrodl_lstm", "hydrodl_multitask", "satellite"]] = Field(
        default_factory=lambda: ["climatology", "linear", "satellite", "hydrodl_lstm", "hydrodl_multitask"]
    )
    plots: bool = True
    climatology_window: int = Field(31, ge=1)


class ObservationConfig(_Strict):
    """Learned observation operator of the multiscale coarse term (docs/multiscale.md, "Observation model").

    The coarse term compares ``b_c(t) + (1 + g_c(t)) * agg_c(t)`` with the retrieval, in the scaler's
    z-units: ``b`` and ``g`` are each ``coef . [1, sin(2 pi k doy / 365.25), cos(...)]_{k <= harmonics}``,
    ``coef`` per coarse cell (``kind: cell``) or a linear map of the coarse cell's mean static inputs
    (``kind: static``). Zero at the start (the identity), penalised by ``l2 * mean(b^2 + g^2)`` over the
    minibatch's cells and days. ``gain: false`` learns the bias only. ``lr_scale``: the operator's
    effective learning rate relative to the network's.
    """

    kind: Literal["cell", "static"] = "cell"
    harmonics: int = Field(1, ge=0, le=3)
    gain: bool = True
    l2: float = Field(0.01, ge=0.0)
    # the operator learns lr_scale times faster than the network (Adam steps on W / lr_scale): a zero-started
    # operator must take up the satellite's errors before the network fits them
    lr_scale: float = Field(1.0, gt=0.0)


class MultiscaleConfig(_Strict):
    """Multiscale objective (Liu et al. 2022): coarse-cell term + station term.

    loss = w_coarse * loss(aggregate of fine predictions per coarse cell, satellite)
    + w_site * loss(prediction at station cells, station). A coarse cell enters
    the first term only when at least ``min_coverage`` of its fine cells are in
    the data. ``w_coarse: 0`` or ``w_site: 0`` is single-scale training.
    """

    satellite: str = "sm_satellite"  # coarse target, repeated on the fine cells of each coarse cell
    w_coarse: float = Field(1.0, ge=0.0)
    w_site: float = Field(1.0, ge=0.0)
    aggregation: Literal["mean", "median"] = "mean"
    min_coverage: float = Field(0.5, gt=0.0, le=1.0)
    groups_per_batch: int = Field(4, ge=1)  # coarse cells per minibatch (all their fine cells)
    stations_per_batch: int = Field(16, ge=1)
    burn_in: int = Field(0, ge=0)  # first days of each window left out of the loss (LSTM state spin-up)
    # coarse term on absolute values, or on anomalies from each window's mean (the satellite then
    # constrains dynamics only and the stations the level: a biased satellite cannot pull the level)
    coarse_target: Literal["absolute", "anomaly"] = "absolute"
    # learned observation operator between the aggregated prediction and the retrieval (None: identity)
    observation: Optional[ObservationConfig] = None

    @model_validator(mode="after")
    def _check(self) -> "MultiscaleConfig":
        if self.w_coarse + self.w_site <= 0:
            raise ValueError("w_coarse and w_site are both 0: nothing to learn")
        return self


class RegionBox(_Strict):
    """A user region for leave-one-region-out CV: sites with lat and lon inside the bounds (edges included)."""

    name: str
    lat: tuple[float, float]
    lon: tuple[float, float]

    @model_validator(mode="after")
    def _ordered(self) -> "RegionBox":
        if self.lat[0] > self.lat[1] or self.lon[0] > self.lon[1]:
            raise ValueError(f"region {self.name!r}: give bounds as [low, high]")
        return self


class CVConfig(_Strict):
    """Spatial cross-validation (``smfusion cv``; docs/ungauged.md): k-fold by ``station``, by lat/lon
    ``block`` tiles of ``block_deg`` degrees, leave-one-``network``-out, k contiguous regions by balanced
    ``kmeans`` on coordinates or of whole ``ease2`` blocks (``block_cells`` cells of ``grid`` per side),
    or leave-one-region-out over user ``regions`` (bounding boxes, or ``regions_file``: CSV ``site,region``
    or JSON ``{region: [site ids]}``). ``buffer_km``: training sites within this distance of a held-out
    site are left out of that fold's training.

    Scored on held-out sites over ``periods``: ``test`` (unseen cells AND unseen year; the training
    period when the config has no test period) and/or ``train`` (unseen cells, training year).
    ``temporal_reference`` also trains the same recipe on every site (temporal split) and scores the
    held-out sites' test period with it (seen cells, unseen year). ``baselines``: rows that need no
    target at the held-out cell (docs/ungauged.md); ``idw_neighbours`` / ``idw_power`` for the two
    inverse-distance rows.
    """

    kind: Literal["station", "block", "network", "kmeans", "ease2", "regions"] = "station"
    k: int = Field(5, ge=2)
    block_deg: float = Field(2.0, gt=0.0)
    seed: int = 0
    buffer_km: float = Field(0.0, ge=0.0)
    block_cells: int = Field(8, ge=1)
    grid: str = "M36"
    regions: Optional[list[RegionBox]] = None
    regions_file: Optional[str] = None
    periods: list[Literal["test", "train"]] = Field(default_factory=lambda: ["test"])
    temporal_reference: bool = False
    baselines: list[Literal["idw_climatology", "idw_observations", "linear", "gbm"]] = Field(default_factory=list)
    idw_neighbours: int = Field(8, ge=1)
    idw_power: float = Field(2.0, ge=0.0)

    @model_validator(mode="after")
    def _check(self) -> "CVConfig":
        if self.kind == "regions" and (self.regions is None) == (self.regions_file is None):
            raise ValueError("kind 'regions' needs exactly one of regions (boxes) and regions_file")
        if self.kind != "regions" and (self.regions is not None or self.regions_file is not None):
            raise ValueError(f"regions / regions_file are for kind 'regions', not {self.kind!r}")
        if not self.periods:
            raise ValueError("periods: give test, train or both")
        return self


ClimateIndex = Literal["p_mean", "pet_mean", "aridity", "p_seasonality", "frac_snow", "high_prec_freq",
                      "high_prec_dur", "low_prec_freq", "low_prec_dur", "t_mean"]


class DescriptorsConfig(_Strict):
    """Static inputs that exist at every cell without its target (data/climate.py, docs/ungauged.md):
    CAMELS-style ``climate`` indices of each cell's forcing over the training period, and a smooth
    ``location`` encoding (``xyz`` unit vector, or ``fourier`` features of the EASE-Grid 2.0 coordinates
    at ``wavelengths_km``). The variables name the forcing (units read from their attributes);
    ``albedo`` enters the Priestley-Taylor PET. ``static_noise``: std of Gaussian noise added to every
    normalised static input of each training minibatch (a regulariser against keying on a training
    site's exact statics; prediction sees the statics as they are). Sequence runs only."""

    climate: list[ClimateIndex] = Field(default_factory=list)
    location: Literal["none", "xyz", "fourier"] = "none"
    wavelengths_km: list[float] = Field(default_factory=lambda: [4000.0, 2000.0])
    precipitation: str = "APCP_FORA"
    temperature: str = "TMP_2_FORA"
    shortwave: str = "DSWRF_FORA"
    longwave: str = "DLWRF_FORA"
    albedo: float = Field(0.23, ge=0.0, lt=1.0)
    static_noise: float = Field(0.0, ge=0.0)

    @property
    def active(self) -> bool:
        """Whether descriptor variables are added to the data (``static_noise`` alone adds none)."""
        return bool(self.climate) or self.location != "none"

    @field_validator("climate")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("climate: an index is listed twice")
        return v

    @field_validator("wavelengths_km")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if not v or min(v) <= 0:
            raise ValueError("wavelengths_km: give positive wavelengths")
        return v


class SeasonalConfig(_Strict):
    """Seasonal-cycle residual learning (CASM; docs/casm.md).

    ``target_mode: anomaly`` trains on target minus its day-of-year
    climatology (fitted on the training period and sites) and adds it back at
    prediction; ``input_mode: anomaly`` does the same for the dynamic inputs
    (``inputs``; None: all of them). ``window`` (odd, days) and ``min_count``
    as in :class:`smfusion.data.climatology.Climatology`. ``input_period``: the
    period the input climatologies are fitted on (None: ``periods.train``);
    inputs only, no target, so any period where the inputs exist, e.g. a
    source sensor's whole era (CASM computes each sensor's seasonal cycle over
    its record). ``climatology_inputs``: anomaly inputs whose climatology on
    the day is also an input column, ``<name>_clim`` (the seasonal state the
    anomaly is taken from: a residual model that sees it can be state-dependent).
    """

    target_mode: Literal["absolute", "anomaly"] = "absolute"
    input_mode: Literal["absolute", "anomaly"] = "absolute"
    inputs: Optional[list[str]] = None
    window: int = Field(31, ge=1, le=365)
    min_count: int = Field(5, ge=1)
    input_period: Optional[Period] = None
    climatology_inputs: list[str] = Field(default_factory=list)

    @field_validator("input_period", mode="before")
    @classmethod
    def _parse_period(cls, v):
        return Period.parse(v)

    @field_validator("window")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"window must be odd, got {v}")
        return v


class BucketConfig(_Strict):
    """Bucket water balance of the forcing (data/water_balance.py): one relative-saturation input
    ``bucket{C}`` per capacity ``C`` (mm). The variables name the forcing (units read from their
    attributes); ``albedo`` enters the Priestley-Taylor PET."""

    capacities_mm: list[float] = Field(min_length=1)
    melt_mm_per_degc: float = Field(3.0, ge=0.0)
    precipitation: str = "APCP_FORA"
    temperature: str = "TMP_2_FORA"
    shortwave: str = "DSWRF_FORA"
    longwave: str = "DLWRF_FORA"
    albedo: float = Field(0.23, ge=0.0, lt=1.0)

    @property
    def variables(self) -> list[str]:
        """The forcing variables the buckets read."""
        return [self.precipitation, self.temperature, self.shortwave, self.longwave]

    @field_validator("capacities_mm")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if min(v) <= 0 or len(set(v)) != len(v):
            raise ValueError("capacities_mm: give distinct positive capacities")
        return v


class FeaturesConfig(_Strict):
    """Lagged, antecedent, polarization-ratio and bucket inputs derived from dynamic variables
    (data/features.py)."""

    lags: dict[str, list[int]] = Field(default_factory=dict)  # variable -> lags k >= 1 (value of day t - k)
    antecedent: dict[str, list[int]] = Field(default_factory=dict)  # variable -> windows w >= 2 (mean of t-w+1..t)
    # new variable -> [H-pol TB, V-pol TB]: PR = (V - H) / (V + H)
    polarization_ratio: dict[str, tuple[str, str]] = Field(default_factory=dict)
    bucket: Optional[BucketConfig] = None  # relative saturation of water-balance buckets


class TransferConfig(_Strict):
    """Fine-tune from a trained run (training/transfer.py): copy its weights, re-map or
    re-initialise the input layer for this run's inputs, freeze ``freeze`` parts."""

    from_run: str
    freeze: list[str] = Field(default_factory=list)
    reinit: list[str] = Field(default_factory=list)
    input_layer: Literal["remap", "reinit"] = "remap"
    source_scaler: bool = True  # inputs/target shared with the source keep the source's normalisation
    # remap: this run's input -> the source input whose input-layer column it starts from (another sensor's
    # analogue, e.g. tb_h_amsr2_06: tb_h_smos); a source column shared by k inputs is split among them (/ k)
    input_map: dict[str, str] = Field(default_factory=dict)


class UncertaintyConfig(_Strict):
    """Predictive uncertainty (docs/uncertainty.md).

    Input-noise spread: ``noise_runs`` forward runs per member with Gaussian noise of std ``noise`` x each
    dynamic input's training std (of its residual under input_mode anomaly). ``beta_nll``: the beta of the
    beta-NLL (0: plain NLL) for probabilistic heads. ``recalibration``: post-hoc recalibration fitted on the
    held-out validation data (``none``; ``variance``: epistemic and aleatoric variance factors by maximum
    likelihood; ``isotonic``: then an isotonic map of the PIT); ``quantiles``: extra product layers.
    """

    noise: float = Field(0.1, ge=0.0)
    noise_runs: int = Field(0, ge=0)  # 0: no input-noise runs
    seed: int = 0
    beta_nll: float = Field(0.0, ge=0.0, le=1.0)
    # multiscale NLL: common correlation of the fine cells' errors inside a coarse cell (0: independent)
    fine_error_correlation: float = Field(0.0, ge=0.0, le=1.0)
    recalibration: Literal["none", "variance", "isotonic"] = "variance"
    quantiles: list[float] = Field(default_factory=list)  # e.g. [0.05, 0.95]: product layers sm_q05, sm_q95

    @field_validator("quantiles")
    @classmethod
    def _levels(cls, v: list[float]) -> list[float]:
        if any(not 0.0 < q < 1.0 for q in v):
            raise ValueError(f"quantiles must lie in (0, 1), got {v}")
        return sorted(set(v))


class DataIntegrationConfig(_Strict):
    """Data integration (issue 29, Fang and Shen 2020's DI-LSTM): the model also sees the most recent target
    retrieval available at ``d - lead`` (its value, its age in days, a mask), for any sequence model.

    At day ``d`` the inputs gain, per target, the normalised value of the last retrieval at a day ``t <= d -
    lead``, its age ``(d - t) / max_age`` and 1; all three are 0 when no retrieval lies within ``max_age`` days
    (``d - t > max_age``). Training draws each sequence's lead uniformly from ``train_leads`` (default: ``lead``
    only) and drops each retrieval seen as input with a probability drawn uniformly from ``[0, thin]`` per
    sequence (the loss keeps every retrieval), so the model learns the irregular schedule. ``lead`` is the
    run's default at prediction (``smfusion predict --lead``). ``retrievals: K`` gives the same three channels
    for each of the last ``K`` retrievals at or before ``d - lead`` (their values, ages, masks).
    """

    lead: int = Field(1, ge=1)
    max_age: int = Field(10, ge=1)
    thin: float = Field(0.5, ge=0.0, lt=1.0)
    train_leads: Optional[tuple[int, int]] = None
    retrievals: int = Field(1, ge=1, le=5)

    @model_validator(mode="after")
    def _check(self) -> "DataIntegrationConfig":
        lo, hi = self.leads
        if lo < 1 or hi < lo:
            raise ValueError(f"train_leads [{lo}, {hi}]: give 1 <= first <= second")
        if max(hi, self.lead) > self.max_age:
            raise ValueError(f"max_age {self.max_age} is below a lead ({max(hi, self.lead)}): every retrieval "
                             "would be masked")
        return self

    @property
    def leads(self) -> tuple[int, int]:
        """The inclusive range of training leads."""
        return tuple(self.train_leads) if self.train_leads is not None else (self.lead, self.lead)

    def history_days(self, lead: Optional[int] = None) -> int:
        """Days of retrievals before a day that its inputs read (at ``lead``; None: the longest lead)."""
        return max(self.leads[1], self.lead) + self.max_age if lead is None else lead + self.max_age
