"""The plugin module (entry point ``strategies-bald`` in the group ``nnactive``): registers every
uncertainty strategy under its established name."""

from __future__ import annotations

from nnactive_core import hookimpl

POWER_BALD_BETAS = (5, 10, 20, 40)
SMOOTH_TEMPERATURE = 2.0
SHARP_TEMPERATURE = 0.5
CLASS_RATIOS = {"66": 0.66, "33": 0.33}
PUBLISHED_RATIO = "66"
"""The ratio of the published ClaP PE and ClaSP PE, shown without its percentage."""


def _uncertainty_strategies() -> list:
    from nnactive_strategies_bald.uncertainty import UncertaintyStrategy

    return [
        UncertaintyStrategy(
            name="pred_entropy",
            display_name="Predictive Entropy",
            measure="pred_entropy",
            description="Predictive entropy (PE) of the ensemble mean; top patches by mean PE.",
        ),
        UncertaintyStrategy(
            name="exp_entropy",
            display_name="Expected Entropy",
            measure="exp_entropy",
            description="Expected entropy (EE) of the ensemble members; top patches by mean EE.",
        ),
        UncertaintyStrategy(
            name="mutual_information",
            display_name="BALD",
            measure="mutual_information",
            description="BALD: mutual information PE - EE; top patches by mean MI.",
        ),
    ]


def _power_strategies() -> list:
    from nnactive_strategies_bald.power import PowerStrategy

    strategies = [
        PowerStrategy(
            name="power_pe",
            display_name="PowerPE",
            measure="pred_entropy",
            beta=1.0,
            description="PowerPE: patches sampled with probability proportional to mean PE (seeded).",
        ),
        PowerStrategy(
            name="power_bald",
            display_name="PowerBALD",
            measure="mutual_information",
            beta=1.0,
            description="PowerBALD: patches sampled with probability proportional to mean MI.",
        ),
    ]
    for beta in POWER_BALD_BETAS:
        strategies.append(
            PowerStrategy(
                name=f"power_bald_b{beta}",
                display_name=f"PowerBALD β={beta}",
                measure="mutual_information",
                beta=float(beta),
                description=f"PowerBALD, beta = {beta}: sampled with probability proportional to MI^{beta}.",
            )
        )
    return strategies


def _sampling_strategies() -> list:
    from nnactive_strategies_bald.kmeans import KMeansStrategy
    from nnactive_strategies_bald.softrank import SoftRankStrategy

    return [
        SoftRankStrategy(
            name="softrank_bald",
            display_name="SoftrankBALD",
            measure="mutual_information",
            description="SoftrankBALD: MI candidates sampled with probability proportional to 1/rank.",
        ),
        KMeansStrategy(
            name="kmeans_bald",
            display_name="KMeansBALD",
            measure="mutual_information",
            description="KMeansBALD: MI candidates, query by greedy k-center on encoder features.",
        ),
    ]


def _class_stratified_strategies() -> list:
    from nnactive_strategies_bald.class_stratified import ClassStratifiedEntropy
    from nnactive_strategies_bald.power import ExponentialBeta, SigmoidBeta

    variants = (
        (
            "class_pe{r}",
            None,
            "Cla PE {r}%",
            "Cla PE {r}%: {r}% of the query from class pools (PE * p_c), the rest by PE.",
        ),
        (
            "class_power_pe{r}",
            1.0,
            "ClaP PE{pct}",
            "ClaP PE {r}%: class-stratified PE with power noise, beta = 1.",
        ),
        (
            "class_power_pe{r}_exp",
            ExponentialBeta(),
            "ClaSP PE{pct}",
            "ClaSP PE {r}%: class-stratified PE with power noise, beta rising 1 -> 100 exponentially.",
        ),
        (
            "class_power_pe{r}_smooth_sigmoid",
            SigmoidBeta(temperature=SMOOTH_TEMPERATURE),
            "ClaSP PE{pct}, smooth sigmoid",
            "Class-stratified PE {r}% with power noise, beta rising 1 -> 100 on a smooth sigmoid.",
        ),
        (
            "class_power_pe{r}_sharp_sigmoid",
            SigmoidBeta(temperature=SHARP_TEMPERATURE),
            "ClaSP PE{pct}, sharp sigmoid",
            "Class-stratified PE {r}% with power noise, beta rising 1 -> 100 on a sharp sigmoid.",
        ),
    )
    return [
        ClassStratifiedEntropy(
            name=name.format(r=percent),
            ratio=ratio,
            beta=beta,
            description=description.format(r=percent),
            display_name=shown.format(r=percent, pct="" if percent == PUBLISHED_RATIO else f" {percent}%"),
        )
        for percent, ratio in CLASS_RATIOS.items()
        for name, beta, shown, description in variants
    ]


def all_strategies() -> list:
    """Every strategy this distribution provides, in registration order."""
    return (
        _uncertainty_strategies()
        + _power_strategies()
        + _sampling_strategies()
        + _class_stratified_strategies()
    )


@hookimpl
def nnactive_register_strategies(register):
    for strategy in all_strategies():
        register(strategy)
