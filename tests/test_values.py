"""One syntax for integer lists and KEY=VALUE assignments, on the command line and in files."""

import pytest

from nnactive_core.values import parse_ints, parse_key_values, parse_triple, parse_value


@pytest.mark.parametrize("text", ["20,20,20", "20 20 20", "20, 20, 20", "20_20_20", "20x20x20", " 20 ", "20"])
def test_every_spelling_of_a_patch_size_is_the_same(text):
    assert parse_triple(text) == (20, 20, 20)


def test_triples_keep_their_order_and_lists_any_length():
    assert parse_triple("4,8 16") == (4, 8, 16)
    assert parse_ints("0,1,2,3") == (0, 1, 2, 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [("4,4", "expected 1 or 3 integer"), ("a,b,c", "expected integers"), ("", "expected 1 or 3 integer")],
)
def test_bad_triples_name_what_and_the_value(text, message):
    with pytest.raises(ValueError, match=f"--patch-size: {message}"):
        parse_triple(text, "--patch-size")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5),
        ("-2", -2),
        ("0.5", 0.5),
        ("1e-3", 0.001),
        ("true", True),
        ("[16, 16, 16]", [16, 16, 16]),
        ('{"a": 1}', {"a": 1}),
        ("{epochs = 2}", {"epochs": 2}),
        ("['a', 'b']", ["a", "b"]),
        ('"quoted"', "quoted"),
        ("20_20_20", "20_20_20"),
        ("random-label", "random-label"),
        ("cuda:0", "cuda:0"),
    ],
)
def test_values_are_typed_as_json_then_toml_else_text(text, value):
    assert parse_value(text) == value


def test_key_values_split_at_the_first_equals_and_later_keys_win():
    parsed = parse_key_values(["a=1", "b=x=y", " c =[1, 2]", "a=2"], "--set")
    assert parsed == {"a": 2, "b": "x=y", "c": [1, 2]}
    assert parse_key_values(["parallel=2"], "--option", typed=False) == {"parallel": "2"}


@pytest.mark.parametrize("item", ["novalue", "=1", "a=[1, "])
def test_bad_assignments_are_named(item):
    with pytest.raises(ValueError, match=r"--set .*" + item.split("=")[0][:3]):
        parse_key_values([item], "--set")
