"""Hook specifications: the whole plugin API of nnactive.

A plugin is a module (or object) named by an entry point in the group ``nnactive``. It implements any
of the hooks below, marked with :data:`nnactive_core.hookimpl`. Each hook receives a ``register``
callback; the plugin calls it once per object it provides. The host validates every registered object,
owns the registry and reports problems by distribution name, so a broken plugin never takes the CLI
down.

Compatibility promise, for the whole 0.x series: every 0.x release of nnactive-core keeps the hook
names and their ``register`` argument, and the base classes that registered objects derive from; new
hook arguments are only ever added as optional (pluggy passes an implementation only the arguments it
names). A plugin written for 0.N therefore works on every later 0.x release, and anything that would
break it waits for 1.0. Plugins declare exactly that range: ``nnactive-core>=0.N,<1``.
"""

import pluggy

PROJECT_NAME = "nnactive"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def nnactive_register_strategies(register):
    """Register query strategies. Since 0.1.

    ``register(strategy)`` takes an *instance* of a subclass of one of:

    - :class:`nnactive_core.strategies.api.ScoreStrategy`: turns one case's ensemble probabilities
      (members x classes x Z x Y x X) into voxel score maps (pools x Z x Y x X); the core's patch engine
      aggregates, selects non-overlapping patches and composes the query through the strategy's
      composition rule. Strategies never select patches themselves.
    - :class:`nnactive_core.strategies.api.PlacementStrategy`: places patches directly from the
      ground-truth oracle (the random family, starting budgets). The core checks that every patch lies
      inside its case, overlaps neither other patches nor annotated regions, and that as many as asked
      were returned.

    The instance must have a unique ``name`` (lower case, digits, ``-`` and ``_``; it appears in
    experiment names) and a one-line ``description`` shown by ``nnactive plugins``.
    """


@hookspec
def nnactive_register_cost_metrics(register):
    """Register annotation cost metrics. Since 0.1.

    ``register(metric)`` takes an instance of :class:`nnactive_core.costs.api.CostMetric`: a ``name``, a
    one-line ``description``, a ``unit`` and ``measure(patch, labels_in_patch, label_values, background)``
    returning a mapping of column name to number for one annotated patch (``labels_in_patch``: the
    ground truth inside the patch; ``label_values``: label name -> value without ``ignore``;
    ``background``: the background value). The core sums the values per loop and cumulatively and
    records them with each loop's results.

    A metric may also implement ``estimate(patch, probabilities)``: the expected columns of
    a patch not annotated yet from the model's class probabilities inside it (classes x Z x Y x X,
    ensemble mean; None where no model predicted it), or None for no estimate (the base class's
    default). A budget in a metric that depends on labels (``budget_metric``) needs it.
    """


@hookspec
def nnactive_register_dataset_adapters(register):
    """Register dataset adapters. Since 0.1.

    ``register(adapter)`` takes an instance of :class:`nnactive_core.datasets.api.DatasetAdapter`: a
    ``name``, a one-line ``description`` and ``open(location, **options)`` returning a
    :class:`nnactive_core.datasets.api.Dataset` (cases, label names, ignore label, ground-truth oracle,
    optional cost-free layer).
    """


@hookspec
def nnactive_register_launchers(register):
    """Register experiment launchers. Since 0.1.

    ``register(launcher)`` takes an instance of :class:`nnactive_core.launchers.api.Launcher`: a ``name``,
    a one-line ``description``, ``options`` (the option names it accepts) and
    ``launch(jobs, **options)`` which runs each :class:`nnactive_core.launchers.api.LaunchJob`
    (an ``nnactive run`` command line for one experiment) on some execution engine.
    """


@hookspec
def nnactive_register_trackers(register):
    """Register experiment trackers. Since 0.1.

    ``register(tracker)`` takes an instance of :class:`nnactive_core.tracking.Tracker`: a ``name``
    (what ``nnactive run --tracker NAME`` selects), a one-line ``description`` and
    ``start(event)``, called with :class:`nnactive_core.tracking.ExperimentStarted` when a run of an
    experiment begins and returning a :class:`nnactive_core.tracking.TrackerRun` that receives the
    run's later events (epochs, folds, validated loops, queries, the finished experiment) and is
    closed when the run ends. A tracker that raises is reported by name once and left out for the rest
    of the run; it never stops the experiment.
    """
