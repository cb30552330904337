"""Deadlines kept by one periodic check, in memory: each expires once, a cleared one never, and a
task past its Deadline gets TimeoutError while a cancellation from elsewhere goes on up."""

from __future__ import annotations

import asyncio

import pytest

from service.front.deadlines import Deadline, Deadlines


def test_each_deadline_expires_once_and_a_cleared_one_never() -> None:
    async def scenario() -> list[str]:
        deadlines, expired = Deadlines(0.01), []
        done = asyncio.Event()
        deadlines.set("kept", 0.0, lambda: expired.append("kept"))
        deadlines.set("cleared", 0.0, lambda: expired.append("cleared"))
        deadlines.set("last", 0.05, done.set)
        deadlines.clear("cleared")
        await asyncio.wait_for(done.wait(), 30)
        return expired

    assert asyncio.run(scenario()) == ["kept"]


def test_deadlines_work_on_a_new_loop_after_the_first_closed() -> None:
    deadlines = Deadlines(0.01)

    async def expires() -> None:
        done = asyncio.Event()
        deadlines.set(object(), 0.0, done.set)
        await asyncio.wait_for(done.wait(), 30)

    asyncio.run(expires())
    asyncio.run(expires())  # the first loop's timer is gone with its loop


def test_a_task_past_its_deadline_gets_timeout_and_one_within_it_its_result() -> None:
    async def scenario() -> None:
        deadlines = Deadlines(0.01)
        with pytest.raises(TimeoutError):
            async with Deadline(deadlines, 0.02):
                await asyncio.Event().wait()  # never set: only the deadline ends it
        async with Deadline(deadlines, 30):
            await asyncio.sleep(0)
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_a_cancellation_from_elsewhere_is_no_timeout() -> None:
    async def waits(deadlines: Deadlines, started: asyncio.Event) -> None:
        async with Deadline(deadlines, 30):
            started.set()
            await asyncio.Event().wait()

    async def scenario() -> None:
        started = asyncio.Event()
        task = asyncio.create_task(waits(Deadlines(0.01), started))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_failing_expiry_neither_stops_the_others_nor_later_deadlines() -> None:
    async def scenario() -> list[str]:
        deadlines, expired = Deadlines(0.01), []
        done = asyncio.Event()

        def fails() -> None:
            raise RuntimeError("a waiter's bug")

        deadlines.set("fails", 0.0, fails)
        deadlines.set("clears the next", 0.0, lambda: deadlines.clear("cleared"))
        deadlines.set("cleared", 0.0, lambda: expired.append("cleared"))
        deadlines.set("kept", 0.0, lambda: expired.append("kept"))
        await asyncio.wait_for(asyncio.sleep(0.05), 30)  # the time the deadlines pass: what is tested
        deadlines.set("later", 0.0, done.set)
        await asyncio.wait_for(done.wait(), 30)
        return expired

    assert asyncio.run(scenario()) == ["kept"]


def test_a_deadline_left_on_a_closed_loop_never_fires_on_the_next() -> None:
    deadlines, fired = Deadlines(0.01), []

    async def left_behind() -> None:
        deadlines.set("old", 30, lambda: fired.append("old"))

    async def next_loop() -> None:
        done = asyncio.Event()
        deadlines.set("new", 0.0, done.set)
        await asyncio.wait_for(done.wait(), 30)
        deadlines.set("late", 0.0, lambda: None)
        await asyncio.sleep(0.05)  # ticks pass: "old" (due in 30 s) would stay, but it is gone

    asyncio.run(left_behind())
    asyncio.run(next_loop())
    assert fired == [] and "old" not in deadlines._due
