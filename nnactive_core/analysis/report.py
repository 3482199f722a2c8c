"""The whole analysis of a results folder: tables and figures per setting, merged penalty matrices,
cross-setting rankings and the list of what is missing.

Output layout (``OUT`` is the output folder)::

    OUT/summary.csv, summary.txt        main table: one row per (base, setting, strategy)
    OUT/summary.json                    the main table's rows, the settings, every plot written,
                                        what is missing and the warnings, for scripts
    OUT/missing.txt                     unfinished experiments, missing files, skipped analyses
    OUT/warnings.{json,txt}             what the results warn about: the loops' recorded warnings
                                        (classes not learned or absent, Dice falling) and poor
                                        FG-efficiency fits
    OUT/ppm_merged.{json,csv,png}       PPM summed over all settings (% of settings' budgets)
    OUT/rankings/                       Friedman + Nemenyi over settings (AUBC and final Dice)
    OUT/<base>/ppm_merged.*             PPM summed over the base dataset's settings
    OUT/<base>/<setting>/               setting.json, results.csv, learning_curves.csv,
                                        dice_vs_budget.png, dice_vs_fg_voxels.png, aubc.csv,
                                        aubc_runs.csv, fg_efficiency.{csv,png}, ppm.{json,csv,png},
                                        ranking_seeds.csv, stability.{csv,png}, stopping.csv,
                                        per x metric (AnalysisOptions.x_metrics,
                                        default annotation_seconds) dice_vs_<metric>.{csv,png} and
                                        aubc_<metric>.csv (equal-cost ranking), and for budgeted
                                        runs budget_gap.{csv,png} (estimated vs charged per loop)

``ppm.csv`` starts with one ``#`` line that states the matrix's orientation (read it with
``pandas.read_csv(..., comment="#")``). A setting with one strategy has no PPM (noted in
``missing.txt``). ``warnings.json`` is a list of ``{"experiment", "setting", "loop", "kind",
"classes", "message"}`` (``experiment`` and ``loop`` are null for a setting's warning); the loop
warnings are read from each loop's ``warnings.json`` (:mod:`nnactive_core.experiment.loop_warnings`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import attrs

from nnactive_core.analysis import aubc as aubc_mod
from nnactive_core.analysis import cost_axis, plots, rankings
from nnactive_core.analysis import stopping as stopping_mod
from nnactive_core.analysis.collect import (
    FG_PERCENT,
    MEAN_DICE,
    dice_columns,
    find_experiments,
    read_experiment,
    results_table,
)
from nnactive_core.analysis.curves import curve_table
from nnactive_core.analysis.fg_efficiency import efficiency_table
from nnactive_core.analysis.ppm import PairwisePenaltyMatrix
from nnactive_core.analysis.settings import Setting, differing_fields, group_settings
from nnactive_core.experiment.loop_warnings import mean_dice
from nnactive_core.experiment.stopping import StopRule
from nnactive_core.io import JsonFileError, atomic_write_json, atomic_write_text, read_json

ALL_BASES = "*"
DEFAULT_X_METRICS = ("annotation_seconds",)
POOR_FIT = "poor_fg_efficiency_fit"


class AnalysisError(ValueError):
    """Nothing to analyse, or an unusable input file (the message names it)."""


@attrs.frozen(kw_only=True)
class AnalysisOptions:
    alpha: float = 0.05
    holm: bool = False
    references: Mapping[str, float] = attrs.field(factory=dict)
    """Full-data reference mean Dice per base dataset (``*`` for all)."""
    x_metrics: tuple[str, ...] = attrs.field(default=DEFAULT_X_METRICS, converter=tuple)
    """Cost columns drawn as x axes beside the patches, with AUBC and ranking at equal cost
    (:mod:`nnactive_core.analysis.cost_axis`); runs without the column are noted and skipped."""
    stop_rule: StopRule = attrs.field(factory=StopRule)
    """The rule ``stopping.csv`` applies to every run's recorded signal."""


@attrs.frozen(kw_only=True)
class AnalysisOutput:
    main_table: Path
    summary_text: Path | None
    """``summary.txt``: the main table for reading (None when no setting has results)."""
    summary_json: Path
    missing: Path
    learning_curves: tuple[Path, ...]
    plots: tuple[Path, ...]
    """Every figure written, learning curves first."""
    settings: tuple[Path, ...]
    problems: int
    warnings_file: Path
    warnings: tuple[str, ...]
    """One line per warning, as in ``warnings.txt``."""


def _reference_value(entry, source: str) -> float:
    if isinstance(entry, int | float) and not isinstance(entry, bool):
        return float(entry)
    if isinstance(entry, dict) and isinstance(entry.get("foreground_mean"), dict):
        return mean_dice(entry, {}).reported
    raise AnalysisError(f"{source}: expected a number or an nnU-Net summary with foreground_mean.Dice")


def load_references(path: Path) -> dict[str, float]:
    """``{"DatasetXXX_Name": dice | nnU-Net summary, ...}``, or one nnU-Net summary for every base."""
    try:
        payload = read_json(Path(path), expect=dict)
    except JsonFileError as error:
        raise AnalysisError(f"reference Dice: {error}") from None
    if "foreground_mean" in payload:
        return {ALL_BASES: _reference_value(payload, str(path))}
    return {base: _reference_value(entry, f"{path}: {base}") for base, entry in payload.items()}


def _csv(frame, path: Path) -> Path:
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.10g"))
    return path


def _title(setting: Setting) -> str:
    return f"{setting.base}  |  {setting.slug}"


@attrs.define
class _Collected:
    rows: list = attrs.field(factory=list)
    ppms: dict = attrs.field(factory=dict)
    scores: dict = attrs.field(factory=lambda: {"aubc": {}, "final": {}})
    curves: list = attrs.field(factory=list)
    plots: list = attrs.field(factory=list)
    notes: list = attrs.field(factory=list)
    warnings: list = attrs.field(factory=list)


def _curves(table, setting: Setting, folder: Path, colors, reference: float | None, has_fg: bool, written):
    columns = dice_columns(table)
    curves = curve_table(table, columns, positions=[FG_PERCENT] if has_fg else [])
    _csv(curves, folder / "learning_curves.csv")
    if has_fg:
        written.append(
            plots.learning_curves(
                curves,
                columns,
                folder / "dice_vs_fg_voxels.png",
                _title(setting),
                colors,
                x=f"{FG_PERCENT}_mean",
                x_label="Annotated foreground voxels (% of pool)",
                reference=reference,
            )
        )
    return plots.learning_curves(
        curves, columns, folder / "dice_vs_budget.png", _title(setting), colors, reference=reference
    )


def _aubc(table, setting: Setting, folder: Path, notes: list):
    runs = aubc_mod.run_table(table, dice_columns(table))
    _csv(runs, folder / "aubc_runs.csv")
    summary = aubc_mod.strategy_table(runs, dice_columns(table))
    _csv(summary, folder / "aubc.csv")
    for _, run in runs[~runs["complete"]].iterrows():
        notes.append(
            f"{setting.label}: {run['experiment']} left out of AUBC/final aggregates (incomplete: "
            f"{run['loops']} of {runs['loops'].max()} loops)"
        )
    return runs, summary


def _cost_axes(table, setting: Setting, folder: Path, metrics, colors, collected: _Collected) -> None:
    """Per metric of ``metrics``: ``dice_vs_<metric>.{csv,png}`` on the common cost grid and
    ``aubc_<metric>.csv`` (the ranking at equal cost); the budget gap of budgeted runs."""
    for metric in metrics:
        column = cost_axis.x_column(metric)
        if column not in table.columns or table[column].isna().all():
            collected.notes.append(f"{setting.label}: no recorded cost {metric!r}: no Dice against it")
            continue
        points = cost_axis.interpolated(table, metric)
        if points.empty:
            collected.notes.append(f"{setting.label}: the runs share no range of {metric!r}: no common grid")
            continue
        curves = cost_axis.cost_curves(points)
        divisor = cost_axis.SCALES.get(metric, (1.0, ""))[0]
        curves["x"] = curves["cost"] / divisor
        _csv(curves, folder / f"dice_vs_{metric}.csv")
        _csv(cost_axis.equal_cost_ranking(points, metric), folder / f"aubc_{metric}.csv")
        collected.plots.append(
            plots.learning_curves(
                curves,
                [MEAN_DICE],
                folder / f"dice_vs_{metric}.png",
                _title(setting),
                colors,
                x="x",
                x_label=cost_axis.axis_label(metric),
            )
        )
    gaps = cost_axis.budget_gaps(setting.experiments)
    if not gaps.empty:
        _csv(gaps, folder / "budget_gap.csv")
        if gaps["estimated"].notna().any():
            collected.plots.append(plots.budget_gap(gaps, folder / "budget_gap.png", _title(setting), colors))


def _summary_row(setting: Setting, row, fits, ppm_frame, tau: float) -> dict:
    strategy = row["strategy"]
    fit = fits.set_index("strategy").reindex([strategy]).iloc[0]
    no_ppm = ppm_frame is None
    return {
        "base": setting.base,
        "setting": setting.slug,
        "strategy": strategy,
        "display_name": plots.display_name(strategy),
        "runs": row["runs"],
        "runs_excluded": row["runs_excluded"],
        **{k: row[k] for k in row.index if k.startswith(("aubc_dice_mean", "final_dice_mean"))},
        "fg_gamma": fit["gamma"],
        "fg_gamma_std": fit["gamma_std"],
        "fg_r2": fit["r2"],
        "ppm_loss_rate": math.nan if no_ppm else ppm_frame.loc[strategy, "mean"],
        "ppm_win_rate": math.nan if no_ppm else ppm_frame.loc["mean", strategy],
        "seed_ranking_tau": tau,
    }


def _analyse_setting(
    setting: Setting, folder: Path, options: AnalysisOptions, colors, collected: _Collected, differing
) -> None:
    table = results_table(list(setting.experiments))
    atomic_write_json(
        folder / "setting.json",
        {
            "base": setting.base,
            "fields": setting.fields,
            "differs_from_other_settings_in": differing,
            "experiments": [e.name for e in setting.experiments],
        },
    )
    if table.empty:
        collected.notes.append(f"{setting.label}: no loop with a summary.json and a known budget")
        return
    _csv(table, folder / "results.csv")
    has_fg = FG_PERCENT in table.columns and table[FG_PERCENT].notna().any()
    reference = options.references.get(setting.base, options.references.get(ALL_BASES))
    collected.curves.append(_curves(table, setting, folder, colors, reference, has_fg, collected.plots))
    _cost_axes(table, setting, folder, options.x_metrics, colors, collected)
    runs, summary = _aubc(table, setting, folder, collected.notes)
    fits = efficiency_table(table, reference)
    if has_fg:
        _csv(fits, folder / "fg_efficiency.csv")
        collected.plots.append(
            plots.fg_efficiency(
                table, fits, folder / "fg_efficiency.png", _title(setting), colors, x=FG_PERCENT
            )
        )
        for _, fit in fits[fits["poor_fit"].astype(bool)].iterrows():
            collected.warnings.append(
                _warning(
                    setting=setting.label,
                    kind=POOR_FIT,
                    message=f"FG efficiency of {fit['strategy']}: {fit['note']}; its gamma says little",
                )
            )
    else:
        collected.notes.append(
            f"{setting.label}: no costs.json with pool totals: no % foreground plots, no FG efficiency"
        )
    _stopping(table, setting, folder, options, colors, collected)
    strategies = sorted(table["strategy"].unique())
    ppm_frame = None
    if len(strategies) > 1:
        ppm = PairwisePenaltyMatrix.compute(table, alpha=options.alpha, holm=options.holm)
        collected.plots.append(_save_ppm(ppm, folder / "ppm", _title(setting)))
        collected.ppms[setting.label] = (setting.base, ppm)
        ppm_frame = ppm.to_frame()
    else:
        collected.notes.append(
            f"{setting.label}: no pairwise penalty matrix: one strategy ({strategies[0]}), nothing to compare"
        )
    stability = rankings.leave_one_seed_out(runs[runs["complete"]], f"aubc_{MEAN_DICE}")
    if not stability.ranks.empty:
        atomic_write_text(folder / "ranking_seeds.csv", stability.ranks.to_csv())
    if stability.note:
        collected.notes.append(f"{setting.label}: leave-one-seed-out: {stability.note}")
    for _, row in summary.iterrows():
        collected.rows.append(_summary_row(setting, row, fits, ppm_frame, stability.mean_tau))
        for kind in ("aubc", "final"):
            per_setting = collected.scores[kind].setdefault(setting.label, {})
            per_setting[row["strategy"]] = row[f"{kind}_{MEAN_DICE}_mean"]


def _stopping(table, setting: Setting, folder: Path, options: AnalysisOptions, colors, collected) -> None:
    """The stopping signal's table and plot, and where the rule would have stopped each run."""
    if not stopping_mod.has_signal(table):
        collected.notes.append(f"{setting.label}: no stability.json: no stopping signal")
        return
    _csv(stopping_mod.signal_table(table), folder / "stability.csv")
    _csv(stopping_mod.stopping_table(table, options.stop_rule), folder / "stopping.csv")
    collected.plots.append(
        stopping_mod.signal_plot(table, folder / "stability.png", _title(setting), colors, options.stop_rule)
    )


def _warning(
    *,
    kind: str,
    message: str,
    experiment: str | None = None,
    setting: str | None = None,
    loop: int | None = None,
    classes=(),
) -> dict:
    return {
        "experiment": experiment,
        "setting": setting,
        "loop": loop,
        "kind": kind,
        "classes": list(classes),
        "message": message,
    }


def _loop_warnings(experiments) -> list[dict]:
    return [
        _warning(experiment=experiment.name, **warning.to_json())
        for experiment in experiments
        for loop in experiment.loops
        for warning in loop.warnings
    ]


def _warning_line(warning: dict) -> str:
    return f"{warning['experiment'] or warning['setting']}: {warning['message']}"


def _save_ppm(ppm: PairwisePenaltyMatrix, stem: Path, title: str) -> Path:
    ppm.save(stem.with_suffix(".json"))
    names = {m: plots.display_name(m) for m in ppm.methods}
    frame = ppm.to_frame(names=names)
    atomic_write_text(
        stem.with_suffix(".csv"), "# " + _ppm_note(ppm) + "\n" + frame.to_csv(float_format="%.4g")
    )
    return plots.ppm_heatmap(frame, stem.with_suffix(".png"), title, _ppm_note(ppm))


def _ppm_note(ppm: PairwisePenaltyMatrix) -> str:
    correction = "Holm-corrected" if ppm.holm else "uncorrected"
    return (
        f"rows i = worse, columns j = better; paired t-test by seed, alpha = {ppm.alpha} ({correction}); "
        f"{ppm.settings} setting(s)"
    )


def _rankings(
    scores: dict, folder: Path, options: AnalysisOptions, colors, notes: list, written: list
) -> None:
    import pandas as pd

    for kind, per_setting in scores.items():
        frame = pd.DataFrame(per_setting).T
        result = rankings.friedman_nemenyi(frame, options.alpha)
        if result.note:
            notes.append(f"rankings by {kind}: {result.note}")
        if result.ranks.empty:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / f"ranks_{kind}.csv", result.ranks.to_csv())
        atomic_write_text(folder / f"nemenyi_p_{kind}.csv", result.nemenyi_p.to_csv())
        atomic_write_json(
            folder / f"friedman_{kind}.json",
            {
                "statistic": result.statistic,
                "p_value": result.p_value,
                "critical_difference": result.critical_difference,
                "alpha": result.alpha,
                "mean_ranks": result.mean_ranks.to_dict(),
                "settings": list(frame.index),
            },
        )
        written.append(
            plots.mean_ranks(
                result,
                folder / f"ranks_{kind}.png",
                f"Mean rank by {'AUBC' if kind == 'aubc' else 'final'} mean Dice",
                colors,
            )
        )


def _percent(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{100 * mean:.2f}" + ("" if math.isnan(std) else f" ± {100 * std:.2f}")


def _summary_text(frame) -> str:
    lines = []
    for (base, setting), group in frame.groupby(["base", "setting"], sort=True):
        lines.append(f"{base} / {setting}")
        for _, row in group.iterrows():
            aubc = _percent(row["aubc_dice_mean_mean"], row["aubc_dice_mean_std"])
            final = _percent(row["final_dice_mean_mean"], row["final_dice_mean_std"])
            lines.append(
                f"  {row['display_name']:<22} AUBC {aubc}  Final {final}  "
                f"(n = {int(row['aubc_dice_mean_count'])}; mean Dice in %, ± std over seeds)"
            )
    return "\n".join(lines) + "\n"


def analyze(results: Path, output: Path, options: AnalysisOptions | None = None) -> AnalysisOutput:
    """Analyse every experiment below ``results`` into ``output``."""
    import pandas as pd

    options = options or AnalysisOptions()
    folders = find_experiments(results)
    if not folders:
        raise AnalysisError(f"{results}: no experiment results (folders with config.json and state.json)")
    experiments, problems = [], []
    for folder in folders:
        try:
            experiment = read_experiment(folder)
        except (OSError, ValueError) as error:
            problems.append(f"{folder}: skipped: {error}")
            continue
        experiments.append(experiment)
        problems.extend(f"{experiment.name}: {problem}" for problem in experiment.problems)
    settings = group_settings(experiments)
    colors = plots.strategy_colors([str(e.config["strategy"]) for e in experiments])
    differing = differing_fields(settings)
    collected = _Collected()
    setting_folders = []
    for setting in settings:
        folder = Path(output) / setting.base / setting.slug
        folder.mkdir(parents=True, exist_ok=True)
        _analyse_setting(setting, folder, options, colors, collected, differing[setting.label])
        setting_folders.append(folder)
    for base in sorted({base for base, _ in collected.ppms.values()}):
        merged = [ppm for owner, ppm in collected.ppms.values() if owner == base]
        collected.plots.append(
            _save_ppm(
                merged[0].merge(*merged[1:]), Path(output) / base / "ppm_merged", f"{base}: all settings"
            )
        )
    if len(collected.ppms) > 1:
        ppms = [ppm for _, ppm in collected.ppms.values()]
        collected.plots.append(
            _save_ppm(ppms[0].merge(*ppms[1:]), Path(output) / "ppm_merged", "All settings")
        )
    _rankings(collected.scores, Path(output) / "rankings", options, colors, collected.notes, collected.plots)
    main = Path(output) / "summary.csv"
    frame = pd.DataFrame(collected.rows)
    _csv(frame, main)
    summary_text = None
    if not frame.empty:
        summary_text = Path(output) / "summary.txt"
        atomic_write_text(summary_text, _summary_text(frame))
    missing = Path(output) / "missing.txt"
    lines = problems + collected.notes
    atomic_write_text(missing, "\n".join(lines) + "\n" if lines else "nothing missing\n")
    warnings = _loop_warnings(experiments) + collected.warnings
    warning_lines = [_warning_line(warning) for warning in warnings]
    atomic_write_json(Path(output) / "warnings.json", warnings)
    atomic_write_text(
        Path(output) / "warnings.txt", "\n".join(warning_lines) + "\n" if warnings else "no warnings\n"
    )
    figures = (*collected.curves, *collected.plots)
    summary_json = Path(output) / "summary.json"
    atomic_write_json(
        summary_json,
        {
            "results": str(results),
            "experiments": len(experiments),
            "rows": _json_rows(frame),
            "settings": [str(folder) for folder in setting_folders],
            "plots": [str(path) for path in figures],
            "missing": lines,
            "warnings": warnings,
        },
    )
    return AnalysisOutput(
        main_table=main,
        summary_text=summary_text,
        summary_json=summary_json,
        missing=missing,
        learning_curves=tuple(collected.curves),
        plots=figures,
        settings=tuple(setting_folders),
        problems=len(lines),
        warnings_file=Path(output) / "warnings.txt",
        warnings=tuple(warning_lines),
    )


def _json_rows(frame) -> list[dict]:
    """The main table's rows as JSON records (pandas writes numbers that are not finite as null)."""
    return json.loads(frame.to_json(orient="records")) if not frame.empty else []
