from nnactive_core.testing.contract import StrategyContract
from nnactive_strategies_bald.plugin import all_strategies


class TestBaldContract(StrategyContract):
    strategy_names = [strategy.name for strategy in all_strategies()]
