"""What trains and then scores: spatial / regional cross-validation (:mod:`~smfusion.experiments.cv`) and
the fusion paper's ablation (:mod:`~smfusion.experiments.fusion_ablation`). The layer above evaluation:
it calls :func:`smfusion.training.run.train`, then asks :mod:`smfusion.runs` and :mod:`smfusion.evaluation`."""
