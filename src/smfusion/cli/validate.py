"""``smfusion validate | report``: station validation and the HTML report (argument definitions and thin wrappers; :mod:`smfusion.cli`)."""

from __future__ import annotations

import argparse

from smfusion.cli.args import date, non_negative_int, output_args, positive_float, positive_int

__all__ = ["validate_parser", "report_parser"]


def _depth(text: str) -> tuple[float, float]:
    try:
        top, bottom = (float(v) for v in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"depth must be TOP-BOTTOM in metres, e.g. 0-0.05, got {text!r}") from None
    return top, bottom


def _validate(args: argparse.Namespace) -> int:
    from smfusion.evaluation.validation import ValidationOptions, format_validation, validate, write_validation

    opts = ValidationOptions(
        max_distance_km=args.max_distance, spatial=args.spatial, depth=args.depth, good_flags=tuple(args.flags),
        matching=args.matching, window=args.window, min_hours=args.min_hours, min_samples=args.min_samples,
        start=args.start, end=args.end, common_dates=args.common_dates, quality=args.quality,
        variable=args.variable, n_boot=args.n_boot, seed=args.seed, value_column=args.value_column)
    refs = [tuple(r.split("=", 1)) if "=" in r else r for r in args.reference]
    pred = (args.label, args.prediction) if args.label else args.prediction
    result = validate(pred, args.stations, refs, opts)
    paths = write_validation(result, args.out)
    print(format_validation(result))
    print(f"wrote {paths['table']}, {paths['summary']}, {paths['json']}")
    return 0


def validate_parser(sub) -> None:
    v = sub.add_parser("validate", help="score a prediction (and reference products) against in-situ stations")
    v.add_argument("prediction", help="smfusion output (site or grid layout, NetCDF/Zarr), a gridded NetCDF, "
                                      "or a folder of pynetcf cell files (QA4SM SMAP L3 / ERA5-Land)")
    v.add_argument("--stations", required=True, help="ISMN folder or .zip, station table CSV (or folder with "
                                                     "stations.csv), or long CSV (docs/formats.md)")
    v.add_argument("--reference", action="append", default=[], metavar="[LABEL=]PATH",
                   help="reference product scored beside the prediction (repeatable)")
    output_args(v, "table CSV; TABLE.summary.csv and TABLE.json beside it",
                overwrite_help="replace the tables if smfusion wrote them (docs/errors.md)")
    v.add_argument("--label", default=None, help="name of the prediction in the table (default: file name)")
    v.add_argument("--variable", default=None, help="prediction variable (default: the soil-moisture one)")
    v.add_argument("--max-distance", type=positive_float, default=50.0, metavar="KM", help="station-to-point limit (km)")
    v.add_argument("--spatial", choices=["nearest", "cell"], default="nearest",
                   help="nearest point with data, or the EASE-2 cell containing the station")
    v.add_argument("--depth", type=_depth, default=(0.0, 0.1), metavar="TOP-BOTTOM", help="sensor depth range (m)")
    v.add_argument("--flags", nargs="+", default=["G"], help="ISMN quality flags kept (default G)")
    v.add_argument("--matching", choices=["auto", "daily", "nearest", "mean"], default="auto")
    v.add_argument("--window", default="1h", help="half-width for nearest/mean matching (e.g. 1h, 30min)")
    v.add_argument("--min-hours", type=positive_int, default=12, help="hourly values a daily station mean needs")
    v.add_argument("--min-samples", type=positive_int, default=20, help="pairs a station needs to be scored")
    v.add_argument("--start", type=date, default=None, help="first date scored (UTC)")
    v.add_argument("--end", type=date, default=None, help="last date scored (UTC)")
    v.add_argument("--common-dates", action="store_true", help="score every product on the dates all have pairs")
    v.add_argument("--quality", choices=["none", "recommended"], default="none",
                   help="SMAP retrieval_qual_flag filter for products that carry it")
    v.add_argument("--value-column", default=None, help="value column of station CSVs (default vwc/soil_moisture/sm)")
    v.add_argument("--n-boot", type=positive_int, default=1000, help="bootstrap resamples for the median intervals")
    v.add_argument("--seed", type=non_negative_int, default=0, help="bootstrap seed")
    v.set_defaults(func=_validate)


def _report(args: argparse.Namespace) -> int:
    from smfusion.evaluation.htmlreport import build_report

    index = build_report(args.run_dir, args.out, validation=args.validation, sites=args.sites,
                         progress=not args.quiet, overwrite=args.overwrite)
    print(f"wrote {index} (open it in a browser; no server needed)")
    return 0


def report_parser(sub) -> None:
    r = sub.add_parser("report", help="static HTML report of a run (index.html + images) from its files")
    r.add_argument("run_dir")
    output_args(r, "output folder (written whole; an existing one needs --overwrite)")
    r.add_argument("--validation", default=None, help="station validation table from smfusion validate")
    r.add_argument("--sites", nargs="*", default=[], help="test sites to show as time series besides best/median/worst")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_report)
