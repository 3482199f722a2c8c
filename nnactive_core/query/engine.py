"""The streaming patch query engine: voxel scores -> patch scores -> per-case candidates -> query.

Cases stream through (:func:`run_score_query`): a case's probabilities are loaded, scored by the
strategy, aggregated, perturbed and reduced to a handful of non-overlapping candidates, then dropped,
so peak memory does not grow with the size of the pool. On the CPU, small cases of a numpy strategy
whose loaders read files go through side by side, one thread each (:data:`PARALLEL_CASE_BYTES`);
others one at a time. The candidates of all cases form a :class:`CandidateTable`, from which the
strategy composes the query. Everything the strategy returns is checked
(:mod:`nnactive_core.query.checks`); a violation stops the query before anything is written.

Where the maths runs: on the CPU a strategy that sets ``accepts_numpy`` scores the stack as numpy (a
memory map stays one; see :mod:`nnactive_core.strategies.slabs`) and torch is never imported; the
box filter and the selection are numpy. Otherwise the stack goes to ``ctx.device`` as a torch tensor
(:mod:`nnactive_core.query.device`: one host-to-device copy per case), and on an accelerator the
scores are checked and aggregated there, only the patch-score grid coming back. The box filter's
float64 scratch is one :class:`~nnactive_core.patches.aggregate.BoxWorkspace` per query, so cases do
not allocate (and fragment) big temporaries one after the other.

Random streams (all from ``ctx.rng``): ``("perturb", file)`` and ``("pool_order", file)`` per case,
``("compose",)`` for the composition, so a case's draws do not depend on the order of the pool.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import numpy as np

from nnactive_core.datasets.api import NOT_FREE
from nnactive_core.patches.aggregate import BoxWorkspace, box_means, box_sums, grid_shape, kernel_size
from nnactive_core.patches.boxes import BlockedStarts, overlap_limit
from nnactive_core.patches.patch import Patch
from nnactive_core.patches.select import select_greedy
from nnactive_core.query.budget import Budget, Offer, fill
from nnactive_core.query.checks import (
    QueryCheckError,
    check_composition,
    check_patch_scores,
    check_placement,
    check_pool_order,
    check_pools,
    check_quotas,
    check_voxel_scores,
    who,
)
from nnactive_core.strategies.api import (
    GLOBAL_POOL,
    CandidateTable,
    PlacementStrategy,
    QueryContext,
    ScoreStrategy,
)
from nnactive_core.threads import limited, thread_budget

if TYPE_CHECKING:
    import torch

    from nnactive_core.datasets.api import Dataset


class StrategyError(RuntimeError):
    """A strategy plugin raised while the engine called it."""


@attrs.frozen(kw_only=True)
class CaseInput:
    """One pool case for :func:`run_score_query`; the loaders are called once, when its turn comes."""

    file: str
    shape: tuple[int, int, int] = attrs.field(converter=lambda s: tuple(int(v) for v in s))
    load_probabilities: Callable[[], np.ndarray | torch.Tensor]
    """members x classes x Z x Y x X. A writable numpy array is used without a copy on the CPU."""
    load_features: Callable[[], tuple[np.ndarray, tuple[int, int, int]]] | None = None
    """(F x z' x y' x x' feature map, downsampling factor per axis); NaN marks unseen cells."""
    load_free_mask: Callable[[], np.ndarray | None] | None = None
    """bool Z x Y x X, True = cost-free voxel."""
    concurrent_loads: bool = False
    """True: the loaders may run in several threads at once (files read by path). Only such cases go
    through the engine side by side; a loader that advances a shared stream (pool prediction) must
    not."""


@attrs.frozen(kw_only=True)
class QueryResult:
    patches: list[Patch]
    candidates: CandidateTable
    chosen: np.ndarray
    estimates: np.ndarray | None = None
    """Budgeted queries: each candidate's estimated cost in the budget's column (table order)."""
    planned: float | None = None
    """Budgeted queries: the budget this query could spend."""


@contextmanager
def calling(strategy, owner: str, method: str, case: str = "") -> Iterator[None]:
    """Name the plugin when one of its methods raises."""
    try:
        yield
    except QueryCheckError:
        raise
    except Exception as error:
        where = f" on {case}" if case else ""
        raise StrategyError(
            f"{who(strategy, owner)}: {method} failed{where}: {type(error).__name__}: {error}"
        ) from error


def default_device() -> str:
    """``cuda`` where torch can use a GPU, else ``cpu``. Torch is imported only when the machine shows
    a GPU device node, so a CPU-only query never pays for importing it."""
    if not any(Path("/dev").glob("nvidia[0-9]*")) and not Path("/dev/kfd").exists():
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def scores_in_numpy(strategy: ScoreStrategy, ctx: QueryContext) -> bool:
    """Whether the strategy scores numpy arrays here: on the CPU, when it accepts them. Otherwise the
    stack goes to ``ctx.device`` as a torch tensor."""
    device = str(ctx.device)
    return bool(getattr(strategy, "accepts_numpy", False)) and (device == "cpu" or device.startswith("cpu:"))


def score_case(
    strategy: ScoreStrategy, probabilities, ctx: QueryContext, *, owner: str = "", case: str = ""
) -> np.ndarray | torch.Tensor:
    """Voxel scores (pools x Z x Y x X float32, checked) of one case's probabilities, in their own
    dtype: a numpy array where :func:`scores_in_numpy`, else a tensor on ``ctx.device`` (the strategy
    runs under ``torch.no_grad()``; scores on an accelerator stay there for :func:`aggregate_case`)."""
    pools = check_pools(strategy.pools(ctx), strategy, owner)
    shape = tuple(int(s) for s in probabilities.shape)
    if len(shape) != 5:
        raise ValueError(
            f"probabilities of {case or 'the case'} have shape {shape}; "
            "expected members x classes x Z x Y x X"
        )
    if scores_in_numpy(strategy, ctx):
        if not isinstance(probabilities, np.ndarray):
            probabilities = probabilities.detach().cpu().numpy()
        with calling(strategy, owner, "voxel_scores", case):
            scores = strategy.voxel_scores(probabilities, ctx)
    else:
        import torch

        from nnactive_core.query.device import to_device

        tensor = to_device(probabilities, ctx.device)
        with calling(strategy, owner, "voxel_scores", case), torch.no_grad():
            scores = strategy.voxel_scores(tensor, ctx)
        del tensor
    return check_voxel_scores(scores, pools, shape[2:], strategy, owner, case)


def aggregate_case(
    scores: np.ndarray | torch.Tensor, ctx: QueryContext, workspace: BoxWorkspace | None = None
) -> np.ndarray:
    """Patch-score map (pools x grid, float32 numpy): the mean voxel score of every grid box, computed
    where the scores are (on the CPU in ``workspace``, which one query reuses for all its cases)."""
    if isinstance(scores, np.ndarray):
        return box_means(scores, ctx.patch_size, ctx.stride, workspace)
    from nnactive_core.query import device

    return device.box_means(scores, ctx.patch_size, ctx.stride)


def _allowed_starts(
    case: CaseInput, ctx: QueryContext, workspace: BoxWorkspace | None = None
) -> np.ndarray | None:
    """Grid starts whose box is at most ``free_overlap`` cost-free; None when all are allowed."""
    if case.load_free_mask is None or ctx.free_overlap >= 1.0:
        return None
    mask = case.load_free_mask()
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != case.shape:
        raise ValueError(f"free mask of {case.file} has shape {mask.shape}; the case has {case.shape}")
    counts = box_sums(mask, ctx.patch_size, ctx.stride, workspace)
    return counts <= overlap_limit(kernel_size(case.shape, ctx.patch_size), ctx.free_overlap)


def candidate_features(feature_map: np.ndarray, factor, starts: np.ndarray, size) -> np.ndarray:
    """Per candidate box the NaN-mean of ``feature_map`` (F x z' x y' x x') over the low-resolution
    cells ``start // factor .. stop // factor`` (at least one cell). A box whose cells were all unseen
    gets NaN features."""
    feature_map = np.asarray(feature_map)
    factor = np.asarray(factor, dtype=np.int64)
    low = np.asarray(feature_map.shape[1:], dtype=np.int64)
    out = np.empty((len(starts), feature_map.shape[0]), dtype=np.float32)
    for row, start in enumerate(np.asarray(starts, dtype=np.int64)):
        lo = np.minimum(start // factor, low - 1)
        hi = np.minimum(np.maximum((start + np.asarray(size)) // factor, lo + 1), low)
        cells = feature_map[:, lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].reshape(feature_map.shape[0], -1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[row] = np.nanmean(cells.astype(np.float64), axis=1)
    return out


@attrs.frozen(kw_only=True)
class _CaseCandidates:
    start: np.ndarray
    size: np.ndarray
    score: np.ndarray
    pool: np.ndarray
    features: np.ndarray | None
    estimates: np.ndarray | None = None


def _estimates(budget: Budget, file: str, probabilities, starts: np.ndarray, kernel) -> np.ndarray:
    """Each candidate's estimated cost from the ensemble's mean probabilities inside its box."""
    values = np.empty(len(starts), dtype=np.float64)
    for row, start in enumerate(np.asarray(starts, dtype=np.int64)):
        patch = Patch(file=file, start=start, size=kernel)
        inside = probabilities[(slice(None), slice(None), *patch.slices)]
        if not isinstance(inside, np.ndarray):
            inside = inside.detach().cpu().numpy()
        values[row] = budget.estimate(patch, np.asarray(inside, dtype=np.float32).mean(axis=0))
    return values


def query_case(
    strategy: ScoreStrategy,
    case: CaseInput,
    ctx: QueryContext,
    *,
    pools: tuple[int, ...],
    quotas: dict[int, int],
    annotated: Iterable[Patch],
    owner: str = "",
    workspace: BoxWorkspace | None = None,
    budget: Budget | None = None,
) -> _CaseCandidates:
    """The non-overlapping candidates of one case, every pool with its quota, pools in the
    strategy's order (earlier pools win). ``workspace`` holds the aggregation's scratch. With a
    ``budget`` each candidate's cost is estimated while the case's probabilities are loaded."""
    if strategy.requires_features and case.load_features is None:
        raise ValueError(f"{who(strategy, owner)} requires features, but none were captured for {case.file}")
    probabilities = case.load_probabilities()
    full_shape = tuple(int(s) for s in probabilities.shape)
    if len(full_shape) != 5 or full_shape[2:] != case.shape:
        raise ValueError(
            f"probabilities of {case.file} have shape {full_shape}; expected members x classes x {case.shape}"
        )
    scores = score_case(strategy, probabilities, ctx, owner=owner, case=case.file)
    if budget is None:
        del probabilities
    patch_scores = aggregate_case(scores, ctx, workspace)
    del scores
    with calling(strategy, owner, "perturb", case.file):
        ranked = strategy.perturb(patch_scores, ctx, ctx.rng("perturb", case.file))
    ranked = check_patch_scores(ranked, patch_scores.shape, strategy, owner, case.file)
    del patch_scores
    with calling(strategy, owner, "pool_order", case.file):
        order = strategy.pool_order(pools, ctx.rng("pool_order", case.file))
    order = check_pool_order(order, pools, strategy, owner)
    kernel = kernel_size(case.shape, ctx.patch_size)
    allowed = _allowed_starts(case, ctx, workspace)
    blocked = BlockedStarts(
        grid_shape(case.shape, ctx.patch_size, ctx.stride),
        ctx.stride,
        kernel,
        ctx.patch_overlap,
        excluded=None if allowed is None else ~allowed,
    )
    blocked.occupy_patches(annotated)
    starts, values, pool_ids = [], [], []
    for pool in order:
        found, found_scores = select_greedy(ranked[pools.index(pool)], quota=quotas[pool], blocked=blocked)
        starts.append(found)
        values.append(found_scores)
        pool_ids.append(np.full(len(found), pool, dtype=np.int64))
    start = np.concatenate(starts)
    estimates = None
    if budget is not None:
        estimates = _estimates(budget, case.file, probabilities, start, kernel)
        del probabilities
    features = None
    if strategy.requires_features:
        feature_map, factor = case.load_features()
        if np.ndim(feature_map) != 4 or len(factor) != 3:
            raise ValueError(
                f"features of {case.file}: expected an F x z x y x x map and 3 factors, got shape "
                f"{np.shape(feature_map)} and factors {factor}"
            )
        features = candidate_features(feature_map, factor, start, kernel)
    return _CaseCandidates(
        start=start,
        size=np.tile(np.asarray(kernel, dtype=np.int64), (len(start), 1)),
        score=np.concatenate(values),
        pool=np.concatenate(pool_ids),
        features=features,
        estimates=estimates,
    )


def _table(files: list[str], found: list[_CaseCandidates]) -> CandidateTable:
    features = None
    if found and found[0].features is not None:
        features = np.concatenate([f.features for f in found]).astype(np.float32)
    return CandidateTable(
        cases=tuple(files),
        case_index=np.concatenate(
            [np.full(len(f.score), i, dtype=np.int64) for i, f in enumerate(found)]
            or [np.zeros(0, dtype=np.int64)]
        ),
        start=np.concatenate([f.start for f in found] or [np.zeros((0, 3), dtype=np.int64)]),
        size=np.concatenate([f.size for f in found] or [np.zeros((0, 3), dtype=np.int64)]),
        score=np.concatenate([f.score for f in found] or [np.zeros(0)]),
        pool=np.concatenate([f.pool for f in found] or [np.zeros(0, dtype=np.int64)]),
        features=features,
    )


def compose_query(
    strategy: ScoreStrategy, table: CandidateTable, ctx: QueryContext, owner: str = ""
) -> np.ndarray:
    """Rows of the query, checked: exactly ``query_size`` distinct candidates."""
    if len(table) < ctx.query_size:
        raise QueryCheckError(
            f"{who(strategy, owner)}: only {len(table)} non-overlapping candidates exist over "
            f"{len(table.cases)} cases, the query needs {ctx.query_size}; lower query_size, raise "
            f"patches_per_case (now {ctx.patches_per_case}) or use a smaller patch size"
        )
    with calling(strategy, owner, "compose"):
        rows = strategy.compose(table, ctx, ctx.rng("compose"))
    return check_composition(rows, len(table), ctx.query_size, strategy, owner)


def compose_budgeted(
    strategy: ScoreStrategy,
    table: CandidateTable,
    ctx: QueryContext,
    estimates: np.ndarray,
    budget: Budget,
    owner: str = "",
) -> np.ndarray:
    """Rows of a budgeted query: compositions of ``ctx.query_size`` rows, then more (up to the whole
    table), until the next row in the composition's order no longer fits the budget."""

    def request(size: int) -> Offer[np.ndarray]:
        size = min(size, len(table))
        rows = compose_query(strategy, table, attrs.evolve(ctx, query_size=size), owner)
        return Offer(rows, estimates[rows], complete=size == len(table))

    rows, taken = fill(request, budget.available, min(ctx.query_size, max(len(table), 1)))
    return rows[:taken]


PARALLEL_CASE_BYTES = 256 * 2**20
"""Cases go through the engine side by side while their query scratch (:func:`case_scratch_bytes`)
together stays below this; a larger case goes alone, its steps on every thread. So a query holds the
scratch of at most this much of small cases, or of one large case."""


def case_scratch_bytes(shape: tuple[int, int, int], pools: int) -> int:
    """About what one case needs beyond its probabilities: float32 voxel scores per pool and the box
    filter's float64 sums."""
    voxels = int(np.prod(shape, dtype=np.int64))
    return voxels * (4 * pools + 8 * 3)


def _cases_in_order(
    cases: Iterable[CaseInput],
    query_one: Callable[[CaseInput, BoxWorkspace], _CaseCandidates],
    workers: int,
    pools: int,
) -> list[_CaseCandidates]:
    """``query_one`` of every case, in the order of ``cases``.

    With ``workers > 1``, cases whose loaders allow it (``concurrent_loads``) run up to ``workers`` at
    once within :data:`PARALLEL_CASE_BYTES`, each on one thread with its own workspace: on the CPU a
    case's steps are a chain of numpy passes too short to split well over threads, and cases side by
    side keep every core busy. Each case draws from its own random streams, so the result is the
    same for any number of workers."""
    found: list[_CaseCandidates] = []
    if workers <= 1:
        workspace = BoxWorkspace()
        for case in cases:
            found.append(query_one(case, workspace))
        return found
    from concurrent.futures import ThreadPoolExecutor

    free = [BoxWorkspace() for _ in range(workers)]
    running: deque = deque()
    in_flight_bytes = 0  # scratch of the running cases

    def on_one_thread(case: CaseInput, workspace: BoxWorkspace) -> _CaseCandidates:
        with limited(1):
            return query_one(case, workspace)

    def collect_oldest() -> None:
        nonlocal in_flight_bytes
        future, workspace, need = running.popleft()
        in_flight_bytes -= need
        found.append(future.result())
        free.append(workspace)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nnactive-case") as pool:
        try:
            for case in cases:
                need = case_scratch_bytes(case.shape, pools)
                if not case.concurrent_loads or need > PARALLEL_CASE_BYTES:
                    while running:
                        collect_oldest()
                    found.append(query_one(case, free[0]))
                    continue
                while running and (not free or in_flight_bytes + need > PARALLEL_CASE_BYTES):
                    collect_oldest()
                workspace = free.pop()
                in_flight_bytes += need
                running.append((pool.submit(on_one_thread, case, workspace), workspace, need))
            while running:
                collect_oldest()
        finally:
            for future, _, _ in running:
                future.cancel()
    return found


def run_score_query(
    strategy: ScoreStrategy,
    cases: Iterable[CaseInput],
    ctx: QueryContext,
    owner: str = "",
    budget: Budget | None = None,
) -> QueryResult:
    """Stream ``cases`` through the strategy and the engine and compose the query: ``ctx.query_size``
    patches, or with a ``budget`` as many as it pays for (:mod:`nnactive_core.query.budget`)."""
    pools = check_pools(strategy.pools(ctx), strategy, owner)
    with calling(strategy, owner, "case_quotas"):
        quotas = strategy.case_quotas(ctx)
    quotas = check_quotas(quotas, pools, strategy, owner)
    annotated: dict[str, list[Patch]] = {}
    for patch in ctx.annotated:
        annotated.setdefault(patch.file, []).append(patch)
    files: list[str] = []

    def query_one(case: CaseInput, workspace: BoxWorkspace) -> _CaseCandidates:
        return query_case(
            strategy,
            case,
            ctx,
            pools=pools,
            quotas=quotas,
            annotated=annotated.get(case.file, ()),
            owner=owner,
            workspace=workspace,
            budget=budget,
        )

    def named(stream: Iterable[CaseInput]) -> Iterator[CaseInput]:
        for case in stream:
            if case.file in files:
                raise ValueError(f"case {case.file} appears twice in the query pool")
            files.append(case.file)
            yield case

    workers = thread_budget() if scores_in_numpy(strategy, ctx) else 1
    found = _cases_in_order(named(cases), query_one, workers, len(pools))
    table = _table(files, found)
    if budget is None:
        rows = compose_query(strategy, table, ctx, owner)
        return QueryResult(patches=[table.patch(int(row)) for row in rows], candidates=table, chosen=rows)
    estimates = np.concatenate([f.estimates for f in found] or [np.zeros(0)])
    rows = compose_budgeted(strategy, table, ctx, estimates, budget, owner)
    return QueryResult(
        patches=[table.patch(int(row)) for row in rows],
        candidates=table,
        chosen=rows,
        estimates=estimates,
        planned=budget.available,
    )


def place_checked(
    strategy: PlacementStrategy, oracle: Dataset, ctx: QueryContext, owner: str = ""
) -> list[Patch]:
    """The strategy's ``ctx.query_size`` patches on ``oracle``, checked."""
    with calling(strategy, owner, "place"):
        patches = strategy.place(oracle, ctx)

    def free_mask_of(file: str) -> np.ndarray | None:
        labels = oracle.read_free_labels(oracle.case_of_file(file))
        return None if labels is None else labels != NOT_FREE

    return check_placement(
        patches,
        ctx,
        shape_of=lambda file: oracle.shape(oracle.case_of_file(file)),
        pool_files={case + oracle.file_ending for case in oracle.pool_cases()},
        strategy=strategy,
        owner=owner,
        free_mask_of=free_mask_of,
    )


def pool_capacity(oracle: Dataset, ctx: QueryContext) -> int:
    """An upper bound of how many patches fit into the pool: its voxels over a patch's."""
    voxels = sum(int(np.prod(oracle.shape(case))) for case in oracle.pool_cases())
    return max(voxels // int(np.prod(ctx.patch_size)), 1)


def place_budgeted(
    strategy: PlacementStrategy, oracle: Dataset, ctx: QueryContext, budget: Budget, owner: str = ""
) -> tuple[list[Patch], list[float]]:
    """A placement strategy's patches, as many as ``budget`` pays for: placements of
    ``ctx.query_size`` patches, then twice as many while all fit (up to the pool's capacity),
    priced at their measured cost (a placement strategy works from the oracle)."""
    from nnactive_core.costs.accounting import measure_patches

    capacity = pool_capacity(oracle, ctx)
    first = min(ctx.query_size, capacity)

    def request(size: int) -> Offer[list[Patch]] | None:
        size = min(size, capacity)
        try:
            patches = place_checked(strategy, oracle, attrs.evolve(ctx, query_size=size), owner)
        except (QueryCheckError, StrategyError):
            if size == first:
                raise
            return None
        costs = [row[budget.column] for row in measure_patches(patches, oracle, [budget.metric])]
        return Offer((patches, costs), costs, complete=size == capacity)

    (patches, costs), taken = fill(request, budget.available, first)
    return patches[:taken], costs


def run_placement_query(
    strategy: PlacementStrategy,
    oracle: Dataset,
    ctx: QueryContext,
    owner: str = "",
    budget: Budget | None = None,
) -> QueryResult:
    """Let a placement strategy place the query on ``oracle`` and check what it returns: ``ctx.query_size``
    patches, or with a ``budget`` as many as it pays for (:func:`place_budgeted`)."""
    estimates = None
    if budget is None:
        patches = place_checked(strategy, oracle, ctx, owner)
    else:
        placed, costs = place_budgeted(strategy, oracle, ctx, budget, owner)
        patches, estimates = placed, np.asarray(costs[: len(placed)], dtype=np.float64)
    files = list(dict.fromkeys(p.file for p in patches))
    table = CandidateTable(
        cases=tuple(files),
        case_index=np.asarray([files.index(p.file) for p in patches], dtype=np.int64),
        start=np.asarray([p.start for p in patches], dtype=np.int64).reshape(-1, 3),
        size=np.asarray([p.size for p in patches], dtype=np.int64).reshape(-1, 3),
        score=np.full(len(patches), np.nan),
        pool=np.full(len(patches), GLOBAL_POOL, dtype=np.int64),
    )
    return QueryResult(
        patches=patches,
        candidates=table,
        chosen=np.arange(len(patches), dtype=np.int64),
        estimates=estimates,
        planned=None if budget is None else budget.available,
    )


def candidate_records(
    table: CandidateTable, chosen: np.ndarray | None = None, estimates: np.ndarray | None = None
) -> list[dict]:
    """JSON records of every candidate (``query.json``): file, coords, size, score (None where a
    placement strategy gave none), pool, whether it was chosen and, in a budgeted query, its
    estimated cost."""
    picked = np.zeros(len(table), dtype=bool)
    if chosen is not None:
        picked[np.asarray(chosen, dtype=np.int64)] = True
    records = []
    for row in range(len(table)):
        score = float(table.score[row])
        records.append(
            {
                **table.patch(row).to_json(),
                "score": score if np.isfinite(score) else None,
                "pool": int(table.pool[row]),
                "chosen": bool(picked[row]),
            }
        )
        if estimates is not None:
            records[-1]["estimate"] = float(estimates[row])
    return records
