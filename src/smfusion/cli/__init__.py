"""The command line, ``smfusion <verb>``: thin wrappers over the Python API (:mod:`~smfusion.cli.main`;
argument types and one-line errors in :mod:`~smfusion.cli.args`; the fusion verbs in
:mod:`~smfusion.cli.fusion`; ``validate`` and ``report`` in :mod:`~smfusion.cli.validate`; ``smfusion demo``
in :mod:`~smfusion.cli.demo`). Nothing below this package imports it."""
