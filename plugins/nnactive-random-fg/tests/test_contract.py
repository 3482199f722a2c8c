from nnactive_core.testing.contract import StrategyContract


class TestContract(StrategyContract):
    strategy_names = [
        "random-label",
        "random-label2",
        "random-all-classes",
        "random-label-all-classes",
        "random-label2-all-classes",
    ]
