"""What a run's config must pass before any work, one function for ``check``, ``train``, ``cv`` and ``predict``.

:func:`validate_config` resolves the names every use of a config needs (:func:`check_run_names`: the
adapter, the reader, each member's model; a bad name stops there) and then runs the inputs' checks
(:func:`smfusion.data.checks.check_config`: the adapter's ``check``, the reader's hook, the periods). What
only training needs is passed in by the training layer (``training=``:
:func:`smfusion.training.run.check_training`: objective, head, device, memory of each member; the
transfer source must then exist): this layer sits below ``training`` and never imports it, so ``predict``
runs the same function without training's part (a run trained on a GPU predicts on a CPU; a fine-tuned
run predicts after its source run is gone).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Callable, Optional

from smfusion.config import RunConfig
from smfusion.data.adapters import Adapter, adapter_for
from smfusion.data.checks import Problem, check_config, raise_for_problems
from smfusion.errors import ConfigError, SmfusionWarning

__all__ = ["check_run_names", "validate_config", "refuse_invalid", "named", "member_key"]

#: training's part of the check: ``(cfg, adapter, source)``, raises a ConfigError
TrainingCheck = Callable[[RunConfig, Adapter, str], None]


@contextlib.contextmanager
def named(source: str):
    """A ConfigError raised inside names the config ``source`` (once)."""
    try:
        yield
    except ConfigError as exc:
        text = str(exc)
        raise (exc if text.startswith("config '") else ConfigError(f"config '{source}': {text}")) from None


def member_key(cfg: RunConfig, m) -> str:
    """The config key of member ``m``'s model name (``model.name``, or its variant's when the variant sets it)."""
    named_here = cfg.variants and "name" in cfg.variants[m.variant].model
    return f"variants.{m.variant}.model.name" if named_here else "model.name"


def check_run_names(cfg: RunConfig, source: str = "<config>") -> Adapter:
    """Resolve the registry names a run is built from (adapter, reader, each member's model) and return the
    adapter; a name no registry knows is a ConfigError naming ``source`` and the key."""
    from smfusion.data.loading import get_reader
    from smfusion.models import registry

    with named(source):
        adapter = adapter_for(cfg)
        if adapter.layout == "site":
            get_reader(cfg.data.reader)
        for m in cfg.members():
            if m.model.name not in registry.available():
                raise ConfigError(f"{member_key(cfg, m)}: unknown model '{m.model.name}', "
                                  f"registered: {registry.available()}")
    return adapter


def validate_config(cfg: RunConfig, source: str = "<config>", training: Optional[TrainingCheck] = None
                    ) -> list[Problem]:
    """Every problem found before any data is read (module doc): the names, ``training``'s part when the
    config is to be trained, then the inputs. The one place a new check is called from: add it to a reader's
    hook (data/checks.py or the reader's module), to the adapter's ``check``, or here."""
    try:
        adapter = check_run_names(cfg, source)
        if training is not None:
            with named(source):
                training(cfg, adapter, source)
    except ConfigError as exc:
        return [Problem.from_error(exc)]
    return check_config(cfg, training=training is not None)


def refuse_invalid(cfg: RunConfig, source: str = "<config>", training: Optional[TrainingCheck] = None) -> None:
    """:func:`validate_config`: the first error is raised, warnings are issued as :class:`SmfusionWarning`."""
    problems = validate_config(cfg, source, training)
    raise_for_problems(problems)
    for p in problems:
        warnings.warn(str(p), SmfusionWarning, stacklevel=3)
