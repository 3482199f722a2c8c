"""The core's own plugin: its built-ins are registered through the same hooks as any plugin."""

from nnactive_core.hookspecs import hookimpl


@hookimpl
def nnactive_register_strategies(register):
    from nnactive_core.strategies.random_uniform import UniformRandom

    register(UniformRandom())


@hookimpl
def nnactive_register_cost_metrics(register):
    from nnactive_core.costs.annotation_time import AnnotationTime
    from nnactive_core.costs.basic import BASIC_COST_METRICS

    for metric in BASIC_COST_METRICS:
        register(metric)
    register(AnnotationTime())


@hookimpl
def nnactive_register_dataset_adapters(register):
    from nnactive_core.datasets.demo import DemoAdapter
    from nnactive_core.datasets.nnunet_raw import NnunetRawAdapter

    register(NnunetRawAdapter())
    register(DemoAdapter())


@hookimpl
def nnactive_register_launchers(register):
    from nnactive_core.launchers.commands import CommandsLauncher
    from nnactive_core.launchers.local import LocalLauncher

    register(LocalLauncher())
    register(CommandsLauncher())
