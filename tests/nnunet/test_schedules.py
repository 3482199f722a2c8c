"""Learning-rate schedules of warm-started and snapshot trainings."""

from __future__ import annotations

import pytest

from nnactive_core.nnunet.profiles import get_profile
from nnactive_core.nnunet.schedules import LearningRateSchedule, ScheduledLR, training_schedule


def test_one_cycle_without_warm_up_is_nnunets_poly_decay():
    schedule = LearningRateSchedule(initial=0.01, epochs=10)
    assert [schedule.rate(e) for e in range(10)] == [0.01 * (1 - e / 10) ** 0.9 for e in range(10)]
    assert schedule.cycle_ends == (9,)


def test_warm_up_ramps_linearly_to_the_initial_rate_then_decays():
    schedule = LearningRateSchedule(initial=0.02, epochs=6, warmup=2)
    rates = [schedule.rate(e) for e in range(6)]
    assert rates[:3] == pytest.approx([0.02 / 3, 0.04 / 3, 0.02])
    assert rates[2:] == sorted(rates[2:], reverse=True)
    assert rates[-1] > 0


def test_cycles_restart_at_the_initial_rate_and_the_remainder_goes_to_the_first_cycle():
    schedule = LearningRateSchedule(initial=0.01, epochs=11, warmup=1, cycles=3)
    assert schedule.cycle_starts == (1, 5, 8)
    assert schedule.cycle_ends == (4, 7, 10)
    for start in schedule.cycle_starts:
        assert schedule.rate(start) == 0.01
    # each cycle ends at its lowest rate: the snapshot points
    for start, end in zip(schedule.cycle_starts, schedule.cycle_ends, strict=True):
        rates = [schedule.rate(e) for e in range(start, end + 1)]
        assert rates == sorted(rates, reverse=True) and len(set(rates)) == len(rates)


def test_a_schedule_too_short_for_its_cycles_is_refused():
    with pytest.raises(ValueError, match="3 epochs cannot hold 1 warm-up epochs and 3 cycles"):
        LearningRateSchedule(initial=0.01, epochs=3, warmup=1, cycles=3)


def test_the_optimizer_follows_the_schedule():
    class Optimizer:
        param_groups = [{"lr": 1.0}, {"lr": 1.0}]

    optimizer = Optimizer()
    scheduler = ScheduledLR(optimizer, LearningRateSchedule(initial=0.1, epochs=4, warmup=1))
    scheduler.step(0)
    assert [g["lr"] for g in optimizer.param_groups] == [0.05, 0.05] == scheduler.get_last_lr()


def test_training_schedules_from_the_profile():
    profile = get_profile("tiny", epochs=12, warm_epochs=5, warm_up_epochs=1, warm_learning_rate=0.005)
    assert training_schedule(profile) is None
    assert training_schedule(profile, snapshots=3) == LearningRateSchedule(initial=0.01, epochs=12, cycles=3)
    assert training_schedule(profile, warm=True, snapshots=2) == LearningRateSchedule(
        initial=0.005, epochs=5, warmup=1, cycles=2
    )


def test_warm_epochs_default_to_a_third_of_the_epochs():
    assert get_profile("tiny").warm_training_epochs == 4
    assert get_profile("default").warm_training_epochs == 66
    assert get_profile("tiny", epochs=3).warm_training_epochs == 2
    assert get_profile("tiny", warm_epochs=7).warm_training_epochs == 7
