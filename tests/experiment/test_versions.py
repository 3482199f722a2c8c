import json

import pytest

from nnactive_core.experiment.versions import (
    VersionChangeError,
    check_versions,
    read_versions,
    used_distributions,
    version_changes,
)
from nnactive_core.plugins import CORE_DISTRIBUTION, Distribution, Registry
from nnactive_core.strategies.api import PlacementStrategy


class Place(PlacementStrategy):
    name = "place"
    description = "places"


def test_used_distributions_are_the_core_and_the_owners_of_what_is_used():
    registry = Registry()
    core = Distribution(name=CORE_DISTRIBUTION, version="0.1.0")
    plugin = Distribution(name="nnactive-other", version="2.0")
    unused = Distribution(name="nnactive-unused", version="9")
    registry.distributions += [core, plugin, unused]
    registry.entries["strategy"]["place"] = (Place(), plugin)
    assert used_distributions(registry, [("strategy", "place")]) == {
        CORE_DISTRIBUTION: "0.1.0",
        "nnactive-other": "2.0",
    }


def test_first_use_records_then_a_change_stops_unless_allowed(tmp_path):
    check_versions(tmp_path, {"a": "1", "b": "1"}, allow_change=False)
    recorded = read_versions(tmp_path)
    assert recorded["distributions"] == {"a": "1", "b": "1"}
    assert "python" in recorded["environment"]
    check_versions(tmp_path, {"a": "1", "b": "1"}, allow_change=False)
    with pytest.raises(VersionChangeError, match=r"b 1 -> 2.*--allow-version-change"):
        check_versions(tmp_path, {"a": "1", "b": "2"}, allow_change=False)
    check_versions(tmp_path, {"a": "1", "b": "2"}, allow_change=True)
    payload = json.loads((tmp_path / "versions.json").read_text())
    assert payload["distributions"]["b"] == "2"
    assert payload["history"][0]["distributions"]["b"] == "1"


def test_changes_list_added_and_removed_distributions():
    assert version_changes({"a": "1"}, {"b": "2"}) == ["a 1 -> (not installed)", "b (not used) -> 2"]
