"""Seeded bugs shared by the tests that show a check catches them."""

from __future__ import annotations

import weakref

import pytest

from refpool.roster import Roster, WorkerRecord


def forget_one_sentinel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each roster never sends the first worker due a sentinel its sentinel (SHUT-2).

    Forgetting it only once would not do: the roster asks again, whenever it
    serves its workers, whether each one is due its sentinel.
    """
    real = Roster._send_sentinel
    forgotten: weakref.WeakKeyDictionary[Roster, WorkerRecord] = weakref.WeakKeyDictionary()

    def forgetful(self: Roster, record: WorkerRecord, touched: list[WorkerRecord]) -> None:
        if forgotten.setdefault(self, record) is not record:
            real(self, record, touched)

    monkeypatch.setattr(Roster, "_send_sentinel", forgetful)
