"""``smfusion <command>``: thin wrappers over the Python API."""

from __future__ import annotations

import argparse
import os
import sys

from smfusion.cli.args import (Parser, date, fraction, grid_name, non_negative_float, non_negative_int,
                                output_args, positive_int, run)
from smfusion.cli.fusion import fusion_parsers
from smfusion.cli.validate import report_parser, validate_parser
from smfusion.errors import ConfigError


def _config(args: argparse.Namespace):
    """The config named by ``args.config``, with ``--epochs`` applied."""
    from smfusion.config import load_config

    from smfusion.training.run import check_names

    cfg = load_config(args.config)
    if getattr(args, "epochs", None) is not None:
        cfg.training.epochs = args.epochs
    check_names(cfg, source=args.config)  # model, objective, adapter, reader: before any work
    return cfg


def _torchrun(args: argparse.Namespace) -> int:
    """``train --nproc N``: this command again under ``torchrun --standalone`` with N processes."""
    import subprocess

    again = [args.command, args.config]
    for flag, value in (("--run-dir", args.run_dir), ("--epochs", args.epochs)):
        if value is not None:
            again += [flag, str(value)]
    again += [f for f, on in (("--restart", args.restart), ("--no-evaluate", args.no_evaluate)) if on]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
           "-m", "smfusion.cli", *again]
    return subprocess.call(cmd)


def _train(args: argparse.Namespace) -> int:
    from smfusion.evaluation.report import evaluate
    from smfusion.training.run import train

    if getattr(args, "nproc", 1) > 1 and "WORLD_SIZE" not in os.environ:
        from smfusion.training.distributed import Dist

        for m in _config(args).members():  # a bad config fails here, once
            Dist(0, args.nproc, 0).check_machine(m.training.device, m.training.threads)
            Dist(0, args.nproc, 0).check_batch(m.training.batch_size)
            Dist(0, args.nproc, args.nproc - 1).check_device(m.training.device)
        return _torchrun(args)
    cfg = _config(args)
    run_dir = train(cfg, args.run_dir, resume=not args.restart)  # one path for every method (data adapter)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # one of several DDP processes: rank 0 reports and evaluates
    print(f"trained run: {run_dir}")
    if args.no_evaluate:
        return 0
    if cfg.periods is not None and cfg.periods.test is None and not cfg.data.point_reader:
        print("no periods.test in the config: nothing to evaluate")
        return 0
    from smfusion.io.lock import hold

    with hold(run_dir, "evaluate"):  # one job per run, as `smfusion evaluate`
        print(evaluate(run_dir).text)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from smfusion.evaluation.report import evaluate

    print(evaluate(args.run_dir, plots_on=False if args.no_plots else None, recalibration=args.recalibration).text)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from smfusion.products.predict import predict_to_file

    if args.era or (getattr(args, "product", False) and args.grid and args.layout == "grid"):
        return _predict_chain(args)
    if args.run_dir is None or args.start is None or args.end is None:
        raise ConfigError("predict: RUN_DIR, --start and --end are required (or --era RUN START END ... with --product)")
    if getattr(args, "product", False):
        from smfusion.products.longterm import predict_product

        from smfusion.resources import cpu_count

        workers = args.workers if args.workers is not None else (None if args.scheduler else cpu_count())
        path = predict_product(args.run_dir, args.start, args.end, args.out, layout=args.layout, grid=args.grid,
                               composite_days=args.composite_days, noise_runs=args.noise_runs, noise=args.noise,
                               chunk_days=args.chunk_days, chunk_sites=args.chunk_sites,
                               recalibration=args.recalibration,
                               workers=workers or None, threads_per_worker=args.threads_per_worker,
                               scheduler=args.scheduler, restart=args.restart, overwrite=args.overwrite,
                               lead=args.lead)
        print(f"wrote {path}")
        return 0
    path = predict_to_file(args.run_dir, args.start, args.end, args.out, overwrite=args.overwrite,
                           recalibration=args.recalibration, lead=args.lead)
    print(f"wrote {path}")
    return 0


def _nowcast(args: argparse.Namespace) -> int:
    from smfusion.products.daily import append_day

    path = append_day(args.run_dir, args.day, args.out, lead=args.lead, recalibration=args.recalibration)
    print(f"appended {args.day} to {path}")
    return 0


def _nowcast_parser(sub) -> None:
    p = sub.add_parser("nowcast", help="the daily job: append one day to a site product (Zarr), resuming the "
                       "carried state (docs/nowcast.md)")
    p.add_argument("run_dir")
    p.add_argument("--day", type=date, required=True, help="the day to append, YYYY-MM-DD (the store's next day)")
    p.add_argument("--out", required=True, help="the Zarr store (created on the first day; state kept in OUT.state/)")
    p.add_argument("--lead", type=positive_int, default=None,
                   help="data-integration runs: retrievals up to DAY - LEAD (default: the run's lead)")
    _recalibration_arg(p)
    p.set_defaults(func=_nowcast)


def _recalibrate(args: argparse.Namespace) -> int:
    from smfusion.runs import Run

    run = Run.load(args.run_dir)
    recals = run.recalibration(args.method, refit=True)
    print(run.recalibration_note or f"recalibration {args.method}: nothing to fit")
    for var, r in recals.items():
        print(f"{var}: {r.method}, epistemic std x {r.epistemic_factor:.3f}, aleatoric std x {r.aleatoric_factor:.3f}, "
              f"validation NLL {r.info['nll_before']:.4f} -> {r.info['nll_after']:.4f} ({r.info['n_points']} values)")
    return 0


def _recalibration_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recalibration", choices=["none", "variance", "isotonic"], default=None,
                   help="post-hoc recalibration of the spread layers (default: the run's uncertainty.recalibration)")


def _predict_chain(args: argparse.Namespace) -> int:
    """``--era`` (several runs, one product) or ``--grid`` (area-weighted onto any EASE-2 grid): products/chain.py."""
    from smfusion.products.chain import predict_chain

    if not args.product:
        raise ConfigError("predict --era / --grid: add --product (a chained product is a long-term product)")
    if args.era:
        if args.run_dir is not None or args.start or args.end:
            raise ConfigError("predict --era: the eras give the runs and periods; drop RUN_DIR, --start, --end")
        eras = [tuple(e) for e in args.era]
    else:
        if args.run_dir is None or args.start is None or args.end is None:
            raise ConfigError("predict --grid: give RUN_DIR, --start and --end")
        eras = [(args.run_dir, args.start, args.end)]
    path = predict_chain(eras, args.out, layout=args.layout, grid=args.grid, composite_days=args.composite_days,
                         noise_runs=args.noise_runs, noise=args.noise, chunk_days=args.chunk_days,
                         chunk_sites=args.chunk_sites, min_valid_fraction=args.min_valid_fraction,
                         overwrite=args.overwrite)
    print(f"wrote {path}")
    if args.check:
        from smfusion.evaluation.product_check import check_product

        print(check_product(path, eras[0][0]).text)
    return 0


def _cv(args: argparse.Namespace) -> int:
    from smfusion.experiments.cv import run_cv

    result = run_cv(_config(args), args.run_dir)
    print(result.text)
    return 0


def _check(args: argparse.Namespace) -> int:
    from smfusion.runs.checks import validate_config
    from smfusion.training.run import check_training

    problems = validate_config(_config(args), args.config, training=check_training)  # what train and cv refuse
    for problem in problems:
        print(f"smfusion: {problem.severity}: {problem}", file=sys.stderr)
    errors = sum(p.severity == "error" for p in problems)
    if not errors:
        print(f"{args.config}: inputs OK ({len(problems)} warning(s))")
    return 2 if errors else 0


def _casm_twin(args: argparse.Namespace) -> int:
    from smfusion.synthetic.casm_twin import write_casm_twin

    path = write_casm_twin(args.out, seed=args.seed, n_cells=args.cells, start=args.start, end=args.end,
                           dielectric=args.dielectric)
    print(f"wrote the SYNTHETIC CASM twin (TB of four sensor eras, sm_smap, sm_true) to {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from smfusion.cli.demo import run_demo

    run_demo(run_dir=args.run_dir)
    return 0


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config")
    p.add_argument("--run-dir", default=None, help="run directory (default: config run_dir or runs/<name>)")
    p.add_argument("--epochs", type=positive_int, default=None, help="override training.epochs")


def _train_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _config_args(p)
    p.add_argument("--restart", action="store_true", help="ignore existing checkpoints")
    p.add_argument("--no-evaluate", action="store_true")
    p.add_argument("--nproc", type=positive_int, default=1,
                   help="train with N DistributedDataParallel processes on this machine (torchrun; gloo on CPU, "
                        "NCCL on GPUs); across machines launch `torchrun ... -m smfusion.cli train` yourself")
    return p


def _predict_parser(sub) -> None:
    pr = sub.add_parser("predict", help="predict a period with a trained run (or a chain of runs) into a NetCDF file")
    pr.add_argument("run_dir", nargs="?", default=None)
    pr.add_argument("--start", type=date, default=None, help="first day, YYYY-MM-DD")
    pr.add_argument("--end", type=date, default=None, help="last day, YYYY-MM-DD")
    output_args(pr)
    pr.add_argument("--era", nargs=3, action="append", metavar=("RUN_DIR", "START", "END"),
                    help="--product: one era of a chained product (repeat, contiguous; docs/casm.md); "
                         "the product has a `source` layer")
    pr.add_argument("--min-valid-fraction", type=fraction, default=0.5,
                    help="--grid: least share of an output cell covered by valid input cells")
    pr.add_argument("--check", action="store_true",
                    help="--era/--grid: print skill per era and the homogeneity check against the data's truth/target")
    pr.add_argument("--product", action="store_true",
                    help="long-term product (docs/casm.md, docs/uncertainty.md): sm, sm_std, sm_epistemic_std, "
                         "sm_aleatoric_std, quantiles, sm_climatology")
    _recalibration_arg(pr)
    pr.add_argument("--lead", type=positive_int, default=None,
                    help="data-integration runs (docs/nowcast.md): day d from the retrievals up to d - LEAD "
                         "(default: the run's data_integration.lead)")
    pr.add_argument("--layout", choices=["site", "grid"], default="site", help="--product: (site, time) or EASE-2 (time, y, x)")
    pr.add_argument("--grid", type=grid_name, default=None, help="--product --layout grid: EASE-2 grid, any (M36, M25, M09, N25...), "
                    "area-weighted from the run's grid (default: the data's own grid, else M36)")
    pr.add_argument("--composite-days", type=positive_int, default=1,
                    help="--product: N-day steps (CASM: 3); tb runs composite the inputs of the passes "
                    "in each window and then predict, other runs average their daily output")
    pr.add_argument("--noise-runs", type=non_negative_int, default=None, help="--product: noisy runs per member (default: config)")
    pr.add_argument("--noise", type=non_negative_float, default=None, help="--product: input noise x training std (default: config)")
    pr.add_argument("--chunk-days", type=positive_int, default=366, help="--product: days per time block (one task)")
    pr.add_argument("--chunk-sites", type=positive_int, default=2048, help="--product: cells per cell block (one task)")
    pr.add_argument("--workers", type=non_negative_int, default=None,
                    help="--product: local Dask cluster of N worker processes (default: one per CPU; 0: no cluster,"
                         " tasks in this process)")
    pr.add_argument("--threads-per-worker", type=positive_int, default=1, help="--product: threads per local worker")
    pr.add_argument("--scheduler", default=None,
                    help="--product: address (tcp://host:8786) or scheduler file (.json) of a running Dask cluster")
    pr.add_argument("--restart", action="store_true", help="--product: discard an unfinished job's work folder")
    pr.set_defaults(func=_predict)


def _casm_twin_parser(sub) -> None:
    ct = sub.add_parser("casm-twin", help="write the SYNTHETIC CASM twin (tau-omega TB of AMSR-E/AMSR2/SMOS/SMAP-like "
                                      "eras, SMAP-like target, truth) as a (site, time) NetCDF")
    output_args(ct)
    ct.add_argument("--cells", type=positive_int, default=200)
    ct.add_argument("--seed", type=non_negative_int, default=0)
    ct.add_argument("--start", type=date, default="2002-01-01")
    ct.add_argument("--end", type=date, default="2020-12-31")
    ct.add_argument("--dielectric", default="mironov", choices=["mironov", "dobson"])
    ct.set_defaults(func=_casm_twin)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="smfusion", description="Machine-learning soil-moisture products.")
    p.add_argument("--debug", action="store_true", help="print the traceback of an error (or set SMFUSION_DEBUG=1)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a run from a YAML config (any method), then evaluate it")
    _train_args(t)
    t.set_defaults(func=_train)
    # earlier names of `train` for two methods, kept as aliases (the config says the method)
    for alias in ("multiscale", "train-points"):
        _train_args(sub.add_parser(alias, help="alias of `smfusion train`")).set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="score a trained run on its test period, beside baselines")
    e.add_argument("run_dir")
    e.add_argument("--no-plots", action="store_true")
    _recalibration_arg(e)
    e.set_defaults(func=_evaluate)

    rc = sub.add_parser("recalibrate", help="fit the run's post-hoc recalibration on its held-out validation data")
    rc.add_argument("run_dir")
    rc.add_argument("--method", choices=["variance", "isotonic"], default=None,
                    help="default: the run's uncertainty.recalibration")
    rc.set_defaults(func=_recalibrate)

    _predict_parser(sub)
    _nowcast_parser(sub)

    c = sub.add_parser("cv", help="spatial cross-validation (config cv: section); scored on held-out sites/stations only")
    _config_args(c)
    c.set_defaults(func=_cv)

    ck = sub.add_parser("check", help="check a config's inputs in seconds (files, variables, periods) before training")
    ck.add_argument("config")
    ck.set_defaults(func=_check)

    fusion_parsers(sub)
    _casm_twin_parser(sub)
    validate_parser(sub)
    report_parser(sub)

    d = sub.add_parser("demo", help="train and evaluate the demo LSTM on the real CONUS data (< 10 min)")
    d.add_argument("--run-dir", default="runs/demo")
    d.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one verb; every error ends as one line on stderr (exit 2: user error, 1: internal; docs/errors.md)."""
    return run(build_parser(), argv)


if __name__ == "__main__":  # pragma: no cover  (also: torchrun -m smfusion.cli)
    sys.exit(main())
