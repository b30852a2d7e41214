"""Remembered Telnyx signatures: a replay within the tolerance is refused, and the storage sweep
removes whole past hours with one range query, keeping the hour a signature can still verify in."""

from __future__ import annotations

import uuid

import pytest

from shared.app import App
from shared.carriers.callbacks import REPLAYS_KEPT_SECONDS, SeenSignature, SignatureReplays
from shared.errors import Conflict
from shared.tables import Table

T0 = 1_800_000_000  # a whole hour: 2027-01-15T08:00:00Z


@pytest.fixture
def replays(app: App) -> SignatureReplays:
    return SignatureReplays(Table.of(app.storage, f"sigs{uuid.uuid4().hex[:12]}", SeenSignature))


def test_the_same_signature_with_its_timestamp_is_a_replay(replays: SignatureReplays) -> None:
    replays.claim("telnyx", "sig-a", T0 + 10)
    with pytest.raises(Conflict) as raised:
        replays.claim("telnyx", "sig-a", T0 + 10)
    assert raised.value.code == "replayed"


def test_a_released_signature_can_be_claimed_again(replays: SignatureReplays) -> None:
    seen = replays.claim("telnyx", "sig-b", T0)
    replays.release(seen)
    replays.claim("telnyx", "sig-b", T0)


def test_the_sweep_removes_hours_that_can_no_longer_verify_and_keeps_the_rest(
    replays: SignatureReplays,
) -> None:
    replays.claim("telnyx", "old-1", T0)
    replays.claim("telnyx", "old-2", T0 + 1800)
    replays.claim("telnyx", "recent", T0 + 3 * 3600 + 60)
    now = T0 + 3 * 3600 + 120
    assert now - REPLAYS_KEPT_SECONDS > T0 + 3600  # both old hours are past the cutoff
    assert replays.remove_expired(now) == 2
    with pytest.raises(Conflict):
        replays.claim("telnyx", "recent", T0 + 3 * 3600 + 60)  # still remembered
    assert replays.remove_expired(now) == 0
