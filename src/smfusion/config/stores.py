"""Config sections of gridded input stores (reader ``grid_inputs``) and lazy training reads (``data.lazy``)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from smfusion.config.base import _Strict


class GridVariable(_Strict):
    """Where one model variable comes from in a store, and in which units the model sees it.

    ``name`` (the store's variable) or ``standard_name`` (its CF standard name) finds it;
    ``units`` converts it (checked with cf-units/UDUNITS; None: as stored); ``source_units``
    overrides the store's ``units`` attribute (of the daily value when ``daily: sum``);
    ``daily`` turns sub-daily steps into days.
    """

    name: Optional[str] = None
    standard_name: Optional[str] = None
    units: Optional[str] = None
    source_units: Optional[str] = None
    daily: Literal["mean", "sum", "min", "max"] = "mean"

    @model_validator(mode="after")
    def _check(self) -> "GridVariable":
        if (self.name is None) == (self.standard_name is None):
            raise ValueError("give exactly one of name or standard_name")
        return self


class GridStore(_Strict):
    """One xarray-readable store: NetCDF file(s) (a path or a glob), a Zarr store, or GRIB (``engine: cfgrib``).

    Its grid: 1-D ``lat``/``lon`` (or ``latitude``/``longitude``) coordinates, or projected ``x``/``y`` of an
    EASE-Grid 2.0 grid named by ``grid`` (default: the store's ``ease2_grid`` attribute).
    """

    path: str
    engine: Optional[str] = None
    grid: Optional[str] = None
    variables: dict[str, GridVariable]


class GridInputsConfig(_Strict):
    """Reader ``grid_inputs``: forcing and statics from gridded stores, sampled to cells of an EASE-2 grid.

    ``cells``: ``land`` (every land cell of ``grid``, from the EASE-2 M36 land list ``land_file``,
    default ``<data dir>/ease2/ease36land.nc``) or a NetCDF/CSV file with ``lat``/``lon`` per cell;
    ``bbox`` [lat_min, lat_max, lon_min, lon_max] keeps the cells inside. Site ids are positions in
    that list. ``resample``: ``nearest`` (the store pixel holding the cell centre) or ``area``
    (area-weighted mean of the valid pixels; NaN below ``min_valid_fraction`` of the cell).
    """

    grid: str = "M36"
    cells: str = "land"
    land_file: Optional[str] = None
    bbox: Optional[tuple[float, float, float, float]] = None
    resample: Literal["nearest", "area"] = "nearest"
    min_valid_fraction: float = Field(0.5, gt=0.0, le=1.0)
    stores: list[GridStore] = Field(min_length=1)


class LazyConfig(_Strict):
    """Training reads (sequence adapter): blocks of ``block_sites`` training sites are read when a minibatch
    needs them and kept in a cache of ``cache_mb``; the data set is never loaded whole."""

    block_sites: int = Field(256, ge=1)
    cache_mb: float = Field(256.0, gt=0)
