import subprocess
import sys

import pytest

from nnactive_core.plugins import load_registry
from nnactive_strategies_bald.class_stratified import ClassStratifiedEntropy
from nnactive_strategies_bald.kmeans import KMeansStrategy
from nnactive_strategies_bald.plugin import all_strategies
from nnactive_strategies_bald.power import ConstantBeta, ExponentialBeta, PowerStrategy, SigmoidBeta
from nnactive_strategies_bald.softrank import SoftRankStrategy

ESTABLISHED_NAMES = {
    "pred_entropy", "exp_entropy", "mutual_information",
    "power_pe", "power_bald", "power_bald_b5", "power_bald_b10", "power_bald_b20", "power_bald_b40",
    "softrank_bald", "kmeans_bald",
    "class_pe66", "class_pe33", "class_power_pe66", "class_power_pe33",
    "class_power_pe66_exp", "class_power_pe33_exp",
    "class_power_pe66_smooth_sigmoid", "class_power_pe33_smooth_sigmoid",
    "class_power_pe66_sharp_sigmoid", "class_power_pe33_sharp_sigmoid",
}  # fmt: skip


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_registers_the_established_names(registry):
    assert {strategy.name for strategy in all_strategies()} == ESTABLISHED_NAMES
    for name in ESTABLISHED_NAMES:
        assert registry.owner("strategy", name).name == "nnactive-strategies-bald"
    assert not [p for p in registry.problems if p.distribution.name == "nnactive-strategies-bald"]


def test_parameters_of_the_registered_strategies(registry):
    def get(name):
        return registry.strategy(name)

    assert isinstance(get("power_pe"), PowerStrategy) and get("power_pe").measure == "pred_entropy"
    for beta in (5, 10, 20, 40):
        assert get(f"power_bald_b{beta}").beta == ConstantBeta(beta=beta)
    assert get("power_bald").beta == ConstantBeta(beta=1.0)
    assert isinstance(get("softrank_bald"), SoftRankStrategy)
    assert isinstance(get("kmeans_bald"), KMeansStrategy) and get("kmeans_bald").requires_features
    for suffix, ratio in (("66", 0.66), ("33", 0.33)):
        shown = get(f"class_pe{suffix}")
        assert shown == ClassStratifiedEntropy(
            name=f"class_pe{suffix}",
            description=shown.description,
            display_name=shown.display_name,
            ratio=ratio,
        )
        assert shown.display_name.startswith("Cla PE")
        assert get(f"class_power_pe{suffix}").beta == ConstantBeta(beta=1.0)
        assert get(f"class_power_pe{suffix}_exp").beta == ExponentialBeta(start=1.0, end=100.0)
        assert get(f"class_power_pe{suffix}_smooth_sigmoid").beta == SigmoidBeta(temperature=2.0)
        assert get(f"class_power_pe{suffix}_sharp_sigmoid").beta == SigmoidBeta(temperature=0.5)
        assert {get(n).ratio for n in ESTABLISHED_NAMES if n.startswith("class") and suffix in n} == {ratio}


def test_registering_does_not_import_torch():
    # `nnactive plugins` loads every plugin; torch must wait until a strategy scores something
    code = (
        "import sys\n"
        "from nnactive_strategies_bald.plugin import nnactive_register_strategies\n"
        "found = []\n"
        "nnactive_register_strategies(register=found.append)\n"
        "assert len(found) == 21, len(found)\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
