"""What a query strategy is, for plugin authors.

Two kinds exist:

- :class:`ScoreStrategy` maps one case's ensemble probabilities to voxel score maps. The core's patch
  engine (:mod:`nnactive_core.query.engine`) aggregates them to patch scores, lets the strategy
  perturb them (power noise), selects non-overlapping candidates per case and asks the strategy to
  compose the final query from all candidates. The strategy never selects patches itself.
- :class:`PlacementStrategy` places patches directly from the ground-truth oracle (random baselines,
  starting budgets). The core validates what it returns.

Both are configured at construction and stateless afterwards: everything that changes per query
comes in a :class:`QueryContext`, including seeded random generators.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import attrs
import numpy as np

from nnactive_core.patches.patch import Patch, int_triple

if TYPE_CHECKING:
    import torch

    from nnactive_core.datasets.api import Dataset

GLOBAL_POOL = -1


@attrs.frozen(kw_only=True)
class QueryContext:
    """Everything a strategy may know about one query.

    ``loop`` is the index of the loop file this query creates (0 for the starting budget), and
    ``query_steps`` the number of loops of the experiment; schedules use both. ``label_values`` are
    the label values without ``ignore``, in the order of the probability channels.
    """

    patch_size: tuple[int, int, int] = attrs.field(converter=int_triple)
    query_size: int
    patches_per_case: int
    seed: int
    loop: int
    label_values: tuple[int, ...] = attrs.field(converter=tuple)
    background: int = 0
    stride: tuple[int, int, int] = attrs.field(default=(1, 1, 1), converter=int_triple)
    patch_overlap: float = 0.0
    free_overlap: float = 1.0
    query_steps: int = 1
    annotated: tuple[Patch, ...] = attrs.field(default=(), converter=tuple)
    device: str = "cpu"

    def rng(self, *stream: int | str) -> np.random.Generator:
        """A generator seeded from (seed, loop, stream): the same inputs give the same draws in any
        process, and different streams are independent."""
        keys = [self.seed, self.loop] + [
            zlib.crc32(part.encode()) if isinstance(part, str) else int(part) for part in stream
        ]
        return np.random.default_rng(np.random.SeedSequence([k & 0xFFFFFFFF for k in keys]))

    @property
    def foreground_values(self) -> tuple[int, ...]:
        return tuple(v for v in self.label_values if v != self.background)


@attrs.frozen(kw_only=True)
class CandidateTable:
    """All candidates selected per case by the engine, as flat arrays (one row per candidate)."""

    cases: tuple[str, ...]
    case_index: np.ndarray
    start: np.ndarray
    size: np.ndarray
    score: np.ndarray
    pool: np.ndarray
    features: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.score)

    def patch(self, row: int) -> Patch:
        return Patch(file=self.cases[self.case_index[row]], start=self.start[row], size=self.size[row])


class ScoreStrategy:
    """Base class of probability-based strategies. Subclasses set ``name`` and ``description`` and
    implement :meth:`voxel_scores`; the other methods have the plain top-k behaviour."""

    kind: ClassVar[str] = "score"
    name: str = ""
    description: str = ""
    display_name: str = ""
    """How tables and plots name the strategy (``Predictive Entropy``); empty: its ``name``."""
    requires_features: bool = False
    accepts_numpy: ClassVar[bool] = False
    """True: :meth:`voxel_scores` also takes (and returns) numpy arrays. On the CPU the engine then
    hands it the stack as numpy, without importing torch, and the stack may be a read-only memory map
    (spilled to disk); walk it with :func:`nnactive_core.strategies.slabs.map_slabs`. The engine
    may then call :meth:`voxel_scores`, :meth:`perturb` and :meth:`pool_order` for several cases at
    once from different threads, so they must not change the strategy's own state. On other devices
    it always gets a torch tensor."""

    def pools(self, ctx: QueryContext) -> tuple[int, ...]:
        """One id per score channel. Label values for class pools, :data:`GLOBAL_POOL` for the
        unstratified pool. Pools of one case never overlap each other."""
        return (GLOBAL_POOL,)

    def voxel_scores(self, probs: torch.Tensor, ctx: QueryContext) -> torch.Tensor:
        """``probs``: members x classes x Z x Y x X (float16 or float32): a torch tensor on
        ``ctx.device``, or a numpy array on the CPU where the strategy sets :attr:`accepts_numpy`.
        Returns pools x Z x Y x X float32 scores of the same kind, higher = more informative, no NaN.
        It must not write into ``probs``."""
        raise NotImplementedError

    def perturb(self, patch_scores: np.ndarray, ctx: QueryContext, rng: np.random.Generator) -> np.ndarray:
        """Aggregated patch scores (pools x grid) -> the scores used for ranking. Identity here."""
        return patch_scores

    def pool_order(self, pools: Sequence[int], rng: np.random.Generator) -> list[int]:
        """The order in which one case's pools pick candidates (earlier pools win overlaps)."""
        return list(pools)

    def case_quotas(self, ctx: QueryContext) -> dict[int, int]:
        """Maximum number of candidates each pool keeps per case."""
        return {pool: ctx.patches_per_case for pool in self.pools(ctx)}

    def compose(self, candidates: CandidateTable, ctx: QueryContext, rng: np.random.Generator) -> np.ndarray:
        """Row indices of the ``ctx.query_size`` candidates that form the query. Top-k by score here."""
        order = np.argsort(-candidates.score, kind="stable")
        return order[: ctx.query_size]


class PlacementStrategy:
    """Base class of strategies that place patches from the oracle without a model."""

    kind: ClassVar[str] = "placement"
    name: str = ""
    description: str = ""
    display_name: str = ""
    """How tables and plots name the strategy (``Random 33% FG``); empty: its ``name``."""

    def place(self, oracle: Dataset, ctx: QueryContext) -> list[Patch]:
        """Return exactly ``ctx.query_size`` patches on pool cases of ``oracle`` that lie inside
        their case and overlap neither each other nor ``ctx.annotated``."""
        raise NotImplementedError


Strategy = ScoreStrategy | PlacementStrategy


def display_name(strategy: Strategy) -> str:
    """The strategy's display name, or its name where it has none."""
    return getattr(strategy, "display_name", "") or strategy.name
