"""nnactive plugin: foreground-aware random baselines (``random-label``, ``random-label2``) and the
class-covering starting budgets (``*-all-classes``)."""

__version__ = "0.1.0"
