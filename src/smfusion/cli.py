"""``smfusion <command>``: thin wrappers over the Python API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from smfusion.errors import SmfusionError


def _train(args: argparse.Namespace) -> int:
    from smfusion.config import load_config
    from smfusion.evaluation.report import evaluate
    from smfusion.training.run import train

    cfg = load_config(args.config)
    if args.epochs is not None:
        cfg.training.epochs = args.epochs
    run_dir = train(cfg, args.run_dir, resume=not args.restart)
    print(f"trained run: {run_dir}")
    if not args.no_evaluate and cfg.periods.test is not None:
        print(evaluate(run_dir).text)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from smfusion.evaluation.report import evaluate

    print(evaluate(args.run_dir, plots_on=False if args.no_plots else None).text)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from smfusion.products.predict import predict_to_file

    path = predict_to_file(args.run_dir, args.start, args.end, args.out)
    print(f"wrote {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from smfusion.demo import run_demo

    run_demo(run_dir=args.run_dir)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smfusion", description="Machine-learning soil-moisture products.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a run from a YAML config, then evaluate it")
    t.add_argument("config")
    t.add_argument("--run-dir", default=None, help="run directory (default: config run_dir or runs/<name>)")
    t.add_argument("--epochs", type=int, default=None, help="override training.epochs")
    t.add_argument("--restart", action="store_true", help="ignore existing checkpoints")
    t.add_argument("--no-evaluate", action="store_true")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="score a trained run on its test period, beside baselines")
    e.add_argument("run_dir")
    e.add_argument("--no-plots", action="store_true")
    e.set_defaults(func=_evaluate)

    pr = sub.add_parser("predict", help="predict a period with a trained run into a NetCDF file")
    pr.add_argument("run_dir")
    pr.add_argument("--start", required=True)
    pr.add_argument("--end", required=True)
    pr.add_argument("--out", required=True)
    pr.set_defaults(func=_predict)

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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
