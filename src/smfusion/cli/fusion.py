"""``smfusion merge-labels | predict-points | fusion-shards``: the fusion verbs (docs/fusion.md) (argument definitions and thin wrappers; :mod:`smfusion.cli`)."""

from __future__ import annotations

import argparse

from smfusion.cli.args import fraction, non_negative_int, output_args, positive_int

__all__ = ["fusion_parsers"]


def _merge_labels(args: argparse.Namespace) -> int:
    from smfusion.data.merge_labels import merge_labels

    counts = merge_labels(args.examples, args.ismn, args.out, num_workers=args.num_workers,
                          meta_dir=args.ismn_metadata, overwrite=args.overwrite)
    print(counts)
    return 0


def _predict_points(args: argparse.Namespace) -> int:
    if args.saved_model:
        from smfusion.io.saved_model import predict_saved_model

        path, n = predict_saved_model(args.saved_model, args.input, args.out, args.num_inference_samples,
                                      args.num_skip_samples)
    else:
        from smfusion.products.points import predict_points_file

        path, n = predict_points_file(args.input, args.run, args.out, overwrite=args.overwrite)
    print(f"wrote {n} predictions to {path}")
    return 0


def _fusion_shards(args: argparse.Namespace) -> int:
    from smfusion.synthetic.fusion_shards import write_shards

    paths = write_shards(args.out, n_sensors=args.sensors, n_times=args.times, size=args.size, seed=args.seed,
                         n_shards=args.shards, labelled=not args.unlabelled, label_fraction=args.label_fraction,
                         overwrite=args.overwrite)
    print(f"wrote {len(paths)} SYNTHETIC shards to {args.out}")
    return 0


def fusion_parsers(sub) -> None:
    """merge-labels, predict-points, fusion-shards (docs/fusion.md)."""
    ml = sub.add_parser("merge-labels", help="add ISMN 5 cm readings to fusion shards as sm_0_5 "
                        "(the published combine_ismn_data.py rule; docs/fusion.md)")
    ml.add_argument("--examples", required=True, help="TFRecord shards: file, folder or glob")
    ml.add_argument("--ismn", required=True, help="ISMN download: the CEOP-format zip or its extracted folder")
    output_args(ml, "output folder for the labelled shards")
    ml.add_argument("--num-workers", type=positive_int, default=1, help="processes, one shard each at a time")
    ml.add_argument("--ismn-metadata", default=None, help="folder for the ismn package's index (kept for reuse); "
                    "default a temporary folder")
    ml.set_defaults(func=_merge_labels)

    pp = sub.add_parser("predict-points", help="predict sm_0_5 for every example of a TFRecord file into a CSV")
    pp.add_argument("--input", required=True, help="TFRecord file (gzip or plain); labels not needed")
    which = pp.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="trained point run directory")
    which.add_argument("--saved-model", help="the published exported model folder (saved_model.pb, variables/); "
                       "needs the tensorflow extra")
    output_args(pp, "CSV file")
    pp.add_argument("--num-inference-samples", type=positive_int, default=None,
                    help="--saved-model: predict this many examples (default all)")
    pp.add_argument("--num-skip-samples", type=non_negative_int, default=0, help="--saved-model: skip this many first")
    pp.set_defaults(func=_predict_points)

    fs = sub.add_parser("fusion-shards", help="write SYNTHETIC fusion shards in the published layout "
                        "(field names, dtypes, shapes; small images)")
    output_args(fs)
    fs.add_argument("--sensors", type=positive_int, default=40)
    fs.add_argument("--times", type=positive_int, default=30)
    fs.add_argument("--size", type=positive_int, default=8)
    fs.add_argument("--shards", type=positive_int, default=4)
    fs.add_argument("--seed", type=non_negative_int, default=0)
    fs.add_argument("--unlabelled", action="store_true")
    fs.add_argument("--label-fraction", type=fraction, default=1.0, help="share of sensors carrying sm_0_5")
    fs.set_defaults(func=_fusion_shards)
