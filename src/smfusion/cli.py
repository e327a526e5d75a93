"""``smfusion <command>``: thin wrappers over the Python API."""

from __future__ import annotations

import argparse
import os
import sys

from smfusion.errors import SmfusionError


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
            Dist(0, args.nproc, 0).check_batch(m.training.batch_size)
        return _torchrun(args)
    cfg = _config(args)
    run_dir = train(cfg, args.run_dir, resume=not args.restart)  # one path for every method (data adapter)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # one of several DDP processes: rank 0 reports and evaluates
    print(f"trained run: {run_dir}")
    if args.no_evaluate:
        return 0
    if cfg.periods is not None and cfg.periods.test is None and cfg.data.reader not in ("tfrecord", "points"):
        print("no periods.test in the config: nothing to evaluate")
        return 0
    print(evaluate(run_dir).text)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from smfusion.evaluation.report import evaluate

    print(evaluate(args.run_dir, plots_on=False if args.no_plots else None).text)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from smfusion.products.predict import predict_to_file

    if getattr(args, "product", False):
        from smfusion.products.longterm import predict_product

        workers = args.workers if args.workers is not None else (None if args.scheduler else os.cpu_count() or 1)
        path = predict_product(args.run_dir, args.start, args.end, args.out, layout=args.layout, grid=args.grid,
                               composite_days=args.composite_days, noise_runs=args.noise_runs, noise=args.noise,
                               chunk_days=args.chunk_days, chunk_sites=args.chunk_sites,
                               workers=workers or None, threads_per_worker=args.threads_per_worker,
                               scheduler=args.scheduler, restart=args.restart)
        print(f"wrote {path}")
        return 0
    path = predict_to_file(args.run_dir, args.start, args.end, args.out)
    print(f"wrote {path}")
    return 0


def _cv(args: argparse.Namespace) -> int:
    from smfusion.evaluation.cv import run_cv

    result = run_cv(_config(args), args.run_dir)
    print(result.text)
    return 0


def _merge_labels(args: argparse.Namespace) -> int:
    from smfusion.data.merge_labels import merge_labels

    counts = merge_labels(args.examples, args.ismn, args.out, num_workers=args.num_workers,
                          meta_dir=args.ismn_metadata)
    print(counts)
    return 0


def _predict_points(args: argparse.Namespace) -> int:
    if args.saved_model:
        from smfusion.io.saved_model import predict_saved_model

        path, n = predict_saved_model(args.saved_model, args.input, args.out, args.num_inference_samples,
                                      args.num_skip_samples)
    else:
        from smfusion.products.points import predict_points_file

        path, n = predict_points_file(args.input, args.run, args.out)
    print(f"wrote {n} predictions to {path}")
    return 0


def _fusion_shards(args: argparse.Namespace) -> int:
    from smfusion.synthetic.fusion_shards import write_shards

    paths = write_shards(args.out, n_sensors=args.sensors, n_times=args.times, size=args.size, seed=args.seed,
                         n_shards=args.shards, labelled=not args.unlabelled, label_fraction=args.label_fraction)
    print(f"wrote {len(paths)} SYNTHETIC shards to {args.out}")
    return 0


def _casm_twin(args: argparse.Namespace) -> int:
    from smfusion.synthetic.casm_twin import write_casm_twin

    path = write_casm_twin(args.out, seed=args.seed, n_cells=args.cells, start=args.start, end=args.end,
                           dielectric=args.dielectric)
    print(f"wrote the SYNTHETIC CASM twin (TB of four sensor eras, sm_smap, sm_true) to {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from smfusion.demo import run_demo

    run_demo(run_dir=args.run_dir)
    return 0


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config")
    p.add_argument("--run-dir", default=None, help="run directory (default: config run_dir or runs/<name>)")
    p.add_argument("--epochs", type=int, default=None, help="override training.epochs")


def _train_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    _config_args(p)
    p.add_argument("--restart", action="store_true", help="ignore existing checkpoints")
    p.add_argument("--no-evaluate", action="store_true")
    p.add_argument("--nproc", type=int, default=1,
                   help="train with N DistributedDataParallel processes on this machine (torchrun; gloo on CPU, "
                        "NCCL on GPUs); across machines launch `torchrun ... -m smfusion.cli train` yourself")
    return p


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smfusion", description="Machine-learning soil-moisture products.")
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
    e.set_defaults(func=_evaluate)

    pr = sub.add_parser("predict", help="predict a period with a trained run into a NetCDF file")
    pr.add_argument("run_dir")
    pr.add_argument("--start", required=True)
    pr.add_argument("--end", required=True)
    pr.add_argument("--out", required=True)
    pr.add_argument("--product", action="store_true",
                    help="long-term product (docs/casm.md): sm, sm_epistemic_std, sm_aleatoric_std, sm_climatology")
    pr.add_argument("--layout", choices=["site", "grid"], default="site", help="--product: (site, time) or EASE-2 (time, y, x)")
    pr.add_argument("--grid", default=None, help="--product --layout grid: EASE-2 grid (default: the data's, else M36)")
    pr.add_argument("--composite-days", type=int, default=1, help="--product: mean over blocks of N days (CASM: 3)")
    pr.add_argument("--noise-runs", type=int, default=None, help="--product: noisy runs per member (default: config)")
    pr.add_argument("--noise", type=float, default=None, help="--product: input noise x training std (default: config)")
    pr.add_argument("--chunk-days", type=int, default=366, help="--product: days per time block (one task)")
    pr.add_argument("--chunk-sites", type=int, default=2048, help="--product: cells per cell block (one task)")
    pr.add_argument("--workers", type=int, default=None,
                    help="--product: local Dask cluster of N worker processes (default: one per CPU; 0: no cluster,"
                         " tasks in this process)")
    pr.add_argument("--threads-per-worker", type=int, default=1, help="--product: threads per local worker")
    pr.add_argument("--scheduler", default=None,
                    help="--product: address (tcp://host:8786) or scheduler file (.json) of a running Dask cluster")
    pr.add_argument("--restart", action="store_true", help="--product: discard an unfinished job's work folder")
    pr.set_defaults(func=_predict)

    c = sub.add_parser("cv", help="spatial cross-validation (config cv: section); scored on held-out sites/stations only")
    _config_args(c)
    c.set_defaults(func=_cv)

    ml = sub.add_parser("merge-labels", help="add ISMN 5 cm readings to fusion shards as sm_0_5 "
                        "(the published combine_ismn_data.py rule; docs/fusion.md)")
    ml.add_argument("--examples", required=True, help="TFRecord shards: file, folder or glob")
    ml.add_argument("--ismn", required=True, help="ISMN download: the CEOP-format zip or its extracted folder")
    ml.add_argument("--out", required=True, help="output folder for the labelled shards")
    ml.add_argument("--num-workers", type=int, default=1, help="processes, one shard each at a time")
    ml.add_argument("--ismn-metadata", default=None, help="folder for the ismn package's index (kept for reuse); "
                    "default a temporary folder")
    ml.set_defaults(func=_merge_labels)

    pp = sub.add_parser("predict-points", help="predict sm_0_5 for every example of a TFRecord file into a CSV")
    pp.add_argument("--input", required=True, help="TFRecord file (gzip or plain); labels not needed")
    which = pp.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="trained point run directory")
    which.add_argument("--saved-model", help="the published exported model folder (saved_model.pb, variables/); "
                       "needs the tensorflow extra")
    pp.add_argument("--out", required=True, help="CSV file")
    pp.add_argument("--num-inference-samples", type=int, default=None,
                    help="--saved-model: predict this many examples (default all)")
    pp.add_argument("--num-skip-samples", type=int, default=0, help="--saved-model: skip this many first")
    pp.set_defaults(func=_predict_points)

    fs = sub.add_parser("fusion-shards", help="write SYNTHETIC fusion shards in the published layout "
                        "(field names, dtypes, shapes; small images)")
    fs.add_argument("--out", required=True)
    fs.add_argument("--sensors", type=int, default=40)
    fs.add_argument("--times", type=int, default=30)
    fs.add_argument("--size", type=int, default=8)
    fs.add_argument("--shards", type=int, default=4)
    fs.add_argument("--seed", type=int, default=0)
    fs.add_argument("--unlabelled", action="store_true")
    fs.add_argument("--label-fraction", type=float, default=1.0, help="share of sensors carrying sm_0_5")
    fs.set_defaults(func=_fusion_shards)

    ct = sub.add_parser("casm-twin", help="write the SYNTHETIC CASM twin (tau-omega TB of AMSR-E/AMSR2/SMOS/SMAP-like "
                                      "eras, SMAP-like target, truth) as a (site, time) NetCDF")
    ct.add_argument("--out", required=True)
    ct.add_argument("--cells", type=int, default=200)
    ct.add_argument("--seed", type=int, default=0)
    ct.add_argument("--start", default="2002-01-01")
    ct.add_argument("--end", default="2020-12-31")
    ct.add_argument("--dielectric", default="mironov", choices=["mironov", "dobson"])
    ct.set_defaults(func=_casm_twin)

    d = sub.add_parser("demo", help="train and evaluate the demo LSTM on the real CONUS data (< 10 min)")
    d.add_argument("--run-dir", default="runs/demo")
    d.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SmfusionError as exc:
        print(f"smfusion: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover  (also: torchrun -m smfusion.cli)
    sys.exit(main())
