import pandas as pd

from nnactive_core.analysis.curves import curve_table
from nnactive_core.analysis.plots import display_name, learning_curves, strategy_colors

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_display_names():
    assert display_name("mutual_information") == "BALD"
    assert display_name("random-label") == "Random 66% FG"
    assert display_name("random-label2") == "Random 33% FG"
    assert display_name("class_power_pe66_exp") == "ClaSP PE"
    assert display_name("my-plugin-strategy") == "my-plugin-strategy"


def test_colors_do_not_depend_on_order():
    assert strategy_colors(["b", "a"]) == strategy_colors(["a", "b", "a"])


def test_single_seed_curves_without_band(tmp_path):
    import matplotlib.image

    table = pd.DataFrame(
        {"strategy": ["a", "a"], "seed": [1, 1], "budget_patches": [5, 9], "dice_mean": [0.2, 0.4]}
    )
    curves = curve_table(table, ["dice_mean"])
    path = learning_curves(
        curves, ["dice_mean"], tmp_path / "c.png", "title", strategy_colors(["a"]), reference=0.8
    )
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert matplotlib.image.imread(path).shape[0] > 100
