"""Training profiles."""

from __future__ import annotations

import attrs
import pytest

from nnactive_core.nnunet.profiles import PROFILES, TrainingProfile, get_profile


def test_default_is_the_established_training():
    default = PROFILES["default"]
    assert (default.epochs, default.iterations_per_epoch) == (200, 250)
    assert default.batch_size is None and default.patch_size is None and default.base_features is None


def test_tiny_is_small_and_cpu_friendly():
    tiny = PROFILES["tiny"]
    assert tiny.patch_size == (32, 32, 32) and tiny.batch_size == 2 and tiny.base_features == 8
    assert tiny.epochs * tiny.iterations_per_epoch < 1000


def test_small_trains_the_tiny_network_longer_with_patches_inside_their_case():
    small, tiny = PROFILES["small"], PROFILES["tiny"]
    network = ("patch_size", "batch_size", "base_features", "max_features", "n_stages", "mirroring")
    assert all(getattr(small, field) == getattr(tiny, field) for field in network)
    assert small.epochs * small.iterations_per_epoch == 2000 and small.val_iterations_per_epoch == 0
    assert small.warm_training_epochs == 26
    assert small.patch_inside and not tiny.patch_inside and not PROFILES["default"].patch_inside


def test_overrides_replace_fields_and_keep_the_rest():
    profile = get_profile("tiny", epochs=2, iterations_per_epoch=5, patch_size=24)
    assert (profile.epochs, profile.iterations_per_epoch, profile.patch_size) == (2, 5, (24, 24, 24))
    assert profile.base_features == PROFILES["tiny"].base_features
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        profile.epochs = 3


def test_unknown_profile_or_field_is_named():
    with pytest.raises(ValueError, match="unknown training profile 'huge'.*default, small, tiny"):
        get_profile("huge")
    with pytest.raises(ValueError, match="epoch_count"):
        get_profile("tiny", epoch_count=3)


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("batch_size", -1),
        ("oversample_foreground", 1.5),
        ("val_iterations_per_epoch", -1),
        ("patch_size", (32, 32)),
        ("patch_size", (0, 32, 32)),
    ],
)
def test_invalid_values_are_rejected_with_the_field_name(field, value):
    with pytest.raises(ValueError, match=field):
        get_profile("tiny", **{field: value})


def test_keyword_only():
    with pytest.raises(TypeError):
        TrainingProfile(2, 5)
