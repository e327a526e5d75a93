"""Config sections that say which data: readers, periods, site split, normalisation."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from smfusion.config.base import TAG_PREFIX, Period, _Strict, unique
from smfusion.config.tb import CasmTwinConfig, TBFilesConfig
from smfusion.config.stores import GridInputsConfig, LazyConfig
from smfusion.config.sensors import SensorCellsConfig
from smfusion.errors import ConfigError


class TwinConfig(_Strict):
    """Options of the twin experiment (``data.reader: twin``; see docs/twin.md)."""

    seed: int = 0
    n_coarse: Optional[int] = Field(24, ge=1)  # None: every usable CONUS-sample cell
    station_fraction: float = Field(0.75, ge=0.0, le=1.0)
    max_stations_per_cell: int = Field(2, ge=1, le=16)
    n_networks: int = Field(4, ge=1)
    sat_bias: float = 0.06
    sat_seasonal: float = 0.04
    sat_noise: float = Field(0.02, ge=0.0)  # 0.03 before issue 27 (calibrated: docs/twin.md)
    sat_gain_loss: float = Field(0.35, ge=0.0, le=1.0)
    input_errors: float = Field(0.0, ge=0.0)  # 0: inputs = the truth's drivers; 1: realistic forcing/soil-map errors
    dynamics: Literal["calibrated", "original"] = "calibrated"  # truth's layer-1 dynamics, station-error persistence


class GriddedConfig(_Strict):
    """Real-format multiscale inputs (``data.reader: gridded``; see docs/multiscale.md)."""

    forcing: str  # CF NetCDF/Zarr, (time, y, x) dynamic and (y, x) static variables on the fine EASE-2 grid
    smap_dir: str  # SMAP L3 granules (SPL3SMP, 36 km) for the satellite term
    ismn_dir: str  # ISMN station files (header+values or CEOP)
    overpass: Literal["AM", "PM"] = "AM"
    ismn_depth: tuple[float, float] = (0.0, 0.1)  # (from, to) m below the surface
    ismn_good_flags: list[str] = Field(default_factory=lambda: ["G"])
    ismn_networks: Optional[list[str]] = None
    coarse_grid: str = "M36"

    @field_validator("ismn_depth")
    @classmethod
    def _depth(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= v[0] < v[1]:
            raise ValueError(f"give 0 <= from < to (m), got {v[0]} .. {v[1]}")
        return v


class FusionConfig(_Strict):
    """Multi-source point model (readers ``tfrecord`` and ``points``, model ``fusion``; docs/fusion.md).

    ``groups``: input source groups (``smfusion.io.fusion_schema.GROUPS``);
    ``patch_size``: centre crop of the image patches (pixels).
    """

    groups: list[str] = Field(default_factory=lambda: ["smap", "gldas"])
    patch_size: int = Field(8, ge=1)
    cnn_channels: int = Field(16, ge=1)
    embed_size: int = Field(16, ge=1)
    max_lag_days: int = Field(7, ge=1)  # reader points: oldest SMAP retrieval used as an input
    # reader tfrecord: stream the shards into training and evaluation (docs/fusion.md, "Streaming");
    # False loads every labelled example into memory first (small sets only)
    stream: bool = True
    shuffle_buffer: int = Field(256, ge=1)  # examples held per lane by the bounded shuffle buffer
    # lanes: the shards are dealt to this many lanes (seeded order), each read one shard after another through
    # its own shuffle buffer; a minibatch takes batch_size / lanes examples of every lane. Fixes the data
    # order for any number of loader workers and --nproc processes (a divisor of lanes).
    lanes: int = Field(4, ge=1)
    # folder of the shard index (sensor, record, label present per example); None: the smfusion cache folder
    # (SMFUSION_CACHE_DIR or the OS cache), never the data folder unless named here
    index_dir: Optional[str] = None

    @field_validator("groups")
    @classmethod
    def _groups_nonempty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one input group is needed")
        return v


class DataConfig(_Strict):
    """Which data, which variables. A run config's ``data`` is the subclass its ``reader`` selects
    (:data:`DATA_BY_READER`); ``point_reader`` / ``multiscale_reader`` say what the reader gives."""

    gives_points: ClassVar[bool] = False  # labelled point examples (no periods needed; fusion defaults)
    multiscale_only: ClassVar[bool] = False  # for multiscale runs only (needs a multiscale section)
    gives_retrievals: ClassVar[bool] = False  # its inputs are satellite soil-moisture retrievals (CASM-style)
    # its data are drawn for the window it is asked for (a synthetic twin): a day differs between windows, so a
    # product reads the whole period in one time block
    drawn_per_window: ClassVar[bool] = False

    @property
    def point_reader(self) -> bool:
        """Whether ``reader`` gives point examples (looked up in :data:`DATA_BY_READER`, so a reader set
        after validation is answered too)."""
        return self.traits.gives_points

    @property
    def multiscale_reader(self) -> bool:
        """Whether ``reader`` is for multiscale runs only (:data:`DATA_BY_READER`)."""
        return self.traits.multiscale_only

    @property
    def traits(self) -> type["DataConfig"]:
        """What ``reader`` declares (``gives_points``, ``multiscale_only``, ``gives_retrievals``,
        ``drawn_per_window``): its row of :data:`DATA_BY_READER` (a reader set after validation is answered too)."""
        return DATA_BY_READER.get(self.reader, DataConfig)

    def section_of(self, name: str) -> Any:
        """The reader's own section ``data.<name>``; a one-line :class:`ConfigError` when it is absent.

        A config loaded from YAML never gets here without it (the reader's class, :class:`_SectionData`,
        refuses at load); this guards a reader or check handed a config whose ``reader`` was set afterwards."""
        value = getattr(self, name, None)
        if value is None:
            raise ConfigError(f"data.reader '{self.reader}' needs a data.{name} section", field=f"data.{name}")
        return value

    # Dataset readers: hydrodl, gridded, twin, or any registered one (smfusion.data.loading.get_reader);
    # point readers: tfrecord, points. Checked with the other registry names before any work.
    reader: str = "hydrodl"
    # data adapter (smfusion.data.adapters); None: points for the point readers, multiscale with a
    # multiscale section, else sequence
    adapter: Optional[str] = None
    twin: Optional[TwinConfig] = None  # reader twin (defaults when absent)
    gridded: Optional[GriddedConfig] = None  # reader gridded (required)
    casm_twin: Optional[CasmTwinConfig] = None  # reader casm_twin (defaults when absent; SYNTHETIC)
    tb_files: Optional[TBFilesConfig] = None  # reader tb_files (required): real TB files on EASE-2 cells
    grid_inputs: Optional[GridInputsConfig] = None  # reader grid_inputs (required): gridded stores -> cells
    sensor_cells: Optional[SensorCellsConfig] = None  # reader sensor_cells (required): retrievals in cell files
    lazy: Optional[LazyConfig] = None  # sequence adapter: read training samples block by block (cache)
    root: Optional[str] = None  # default: settings.conus_dir() or the checksummed download
    subset: str = "CONUSv4f1"
    dynamic: list[str] = Field(default_factory=list)
    static: list[str] = Field(default_factory=list)
    target: list[str] = Field(default_factory=lambda: ["SMAP_AM"])
    sites: Optional[list[int]] = None  # explicit site list (None: all)

    @field_validator("target")
    @classmethod
    def _target_nonempty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one target variable is needed")
        return v

    @field_validator("dynamic", "static", "target")
    @classmethod
    def _no_repeat(cls, v: list[str]) -> list[str]:
        return unique(v, "variable")

    @field_validator("sites")
    @classmethod
    def _sites(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        if v is None:
            return v
        if not v:
            raise ValueError("empty list: no site to read (omit data.sites to use every site)")
        if min(v) < 0:
            raise ValueError(f"site indices start at 0, got {min(v)}")
        return unique(v, "site")

    @model_validator(mode="after")
    def _one_role_each(self) -> "DataConfig":
        roles = {"dynamic": self.dynamic, "static": self.static, "target": self.target}
        for a, b in (("dynamic", "static"), ("dynamic", "target"), ("static", "target")):
            both = [v for v in roles[a] if v in roles[b]]
            if both:
                raise ValueError(f"variable '{both[0]}' is in both data.{a} and data.{b}")
        return self


class _SectionData(DataConfig):
    """A reader whose own section (``section``) is required."""

    section: ClassVar[str] = ""
    what: ClassVar[str] = ""

    @model_validator(mode="after")
    def _section_given(self) -> "_SectionData":
        if getattr(self, self.section) is None:
            raise ValueError(f"data.reader '{self.reader}' needs a data.{self.section} section ({self.what})")
        return self


class TBFilesData(_SectionData):
    """``reader: tb_files``: real TB files on EASE-2 cells (:mod:`smfusion.data.tb_files`)."""

    section: ClassVar[str] = "tb_files"
    what: ClassVar[str] = "grid, cells, sensor files"


class GriddedData(_SectionData):
    """``reader: gridded``: real-format multiscale inputs (:mod:`smfusion.data.gridded`)."""

    section: ClassVar[str] = "gridded"
    what: ClassVar[str] = "forcing, smap_dir, ismn_dir"
    multiscale_only: ClassVar[bool] = True


class GridInputsData(_SectionData):
    """``reader: grid_inputs``: gridded stores -> EASE-2 cells (:mod:`smfusion.data.grid_inputs`)."""

    section: ClassVar[str] = "grid_inputs"
    what: ClassVar[str] = "grid, cells, stores"


class SensorCellsData(_SectionData):
    """``reader: sensor_cells``: soil-moisture retrievals in TU Wien cell files (:mod:`smfusion.data.sensor_cells`)."""

    section: ClassVar[str] = "sensor_cells"
    what: ClassVar[str] = "sites and products"
    gives_retrievals: ClassVar[bool] = True


class TwinData(DataConfig):
    """``reader: twin`` (SYNTHETIC multiscale twin, docs/twin.md)."""

    multiscale_only: ClassVar[bool] = True
    drawn_per_window: ClassVar[bool] = True


class PointData(DataConfig):
    """``reader: tfrecord`` or ``points``: labelled point examples (the fusion path)."""

    gives_points: ClassVar[bool] = True


#: reader name -> its data section's class: the one table behind every reader-specific rule of a config
#: (required section, multiscale-only, point examples) and what a reader declares it is (retrievals, drawn per
#: window: :attr:`DataConfig.traits`); any other reader gets :class:`DataConfig`.
DATA_BY_READER: dict[str, type[DataConfig]] = {
    "tb_files": TBFilesData, "gridded": GriddedData, "grid_inputs": GridInputsData, "sensor_cells": SensorCellsData,
    "twin": TwinData,
    "tfrecord": PointData, "points": PointData,
}


def _reader_tag(value: Any) -> str:
    reader = value.get("reader", "hydrodl") if isinstance(value, dict) else getattr(value, "reader", "hydrodl")
    return TAG_PREFIX + (reader if reader in DATA_BY_READER else "*")


#: ``RunConfig.data``: the section class is selected by ``reader`` (a pydantic discriminated union).
DataSection = Annotated[
    Union[tuple(Annotated[cls, Tag(TAG_PREFIX + name)] for name, cls in DATA_BY_READER.items())
          + (Annotated[DataConfig, Tag(TAG_PREFIX + "*")],)],
    Discriminator(_reader_tag),
]


class PeriodsConfig(_Strict):
    train: Period
    validation: Optional[Period] = None
    test: Optional[Period] = None
    warmup_days: int = Field(365, ge=0)

    @field_validator("train", "validation", "test", mode="before")
    @classmethod
    def _parse(cls, v: Any) -> Any:
        return Period.parse(v)


class SplitConfig(_Strict):
    """How sites are split. ``temporal``: every site in train and test.

    ``kfold``: spatial k-fold over sites (seeded); ``fold`` is held out.
    ``sites``: explicit ``train_sites``/``test_sites`` lists.
    ``validation_fraction`` holds out a random fraction of training sites
    over the training period for early stopping.
    """

    kind: Literal["temporal", "kfold", "sites"] = "temporal"
    k: int = Field(5, ge=2)
    fold: int = Field(0, ge=0)
    seed: int = 0
    train_sites: Optional[list[int]] = None
    test_sites: Optional[list[int]] = None
    validation_fraction: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> "SplitConfig":
        if self.kind == "kfold" and self.fold >= self.k:
            raise ValueError(f"fold {self.fold} out of range for k={self.k}")
        if self.kind == "sites" and (not self.train_sites or not self.test_sites):
            raise ValueError("kind 'sites' needs train_sites and test_sites")
        for name in ("train_sites", "test_sites"):
            sites = getattr(self, name) or []
            unique(sites, f"{name}: site")
            if sites and min(sites) < 0:
                raise ValueError(f"{name}: site indices start at 0, got {min(sites)}")
        both = set(self.train_sites or []) & set(self.test_sites or [])
        if both:
            raise ValueError(f"site {min(both)} is in both train_sites and test_sites")
        return self


class NormConfig(_Strict):
    """Normalisation: z-scores fitted on the training period and sites.

    ``target: site`` scales each target with its own site's training mean and
    std (the model learns the dynamics, the site statistics carry level and
    amplitude); it needs training observations at every predicted site, so
    it is for temporal splits only. ``target: predicted`` scales each site's
    target with a mean and std predicted from its static inputs (ridge
    regressions fitted on the training sites' statistics; data/target_stats.py):
    no statistic of the site itself, so it serves unseen sites too.
    """

    log1p: list[str] = Field(default_factory=list)  # variables transformed by log1p before scaling
    target: Literal["global", "site", "predicted"] = "global"
    predicted_ridge: float = Field(1.0, ge=0.0)  # ridge penalty of target: predicted (standardised statics)
