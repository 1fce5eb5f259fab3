"""The dedup decision of DESIGN §2.3, unit and property tests."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.dedup import LedgerEntry, Verdict, decide

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def entry(rev: int = 1, digest: str = "a", at: datetime = T0) -> LedgerEntry:
    return LedgerEntry(rev, digest, at, "m1")


def test_first_sighting_is_new() -> None:
    d = decide(None, revision=1, content_hash="a", business_time=T0)
    assert d.verdict == Verdict.new and d.relay and d.revision == 1


def test_same_content_is_a_duplicate_linked_to_the_original() -> None:
    d = decide(entry(), revision=1, content_hash="a", business_time=T0)
    assert d.verdict == Verdict.duplicate and not d.relay and d.original_message_id == "m1"


def test_same_content_with_a_higher_revision_number_is_still_a_duplicate() -> None:
    assert decide(entry(), revision=2, content_hash="a", business_time=T0).verdict == Verdict.duplicate


def test_higher_revision_with_new_content_is_a_revision() -> None:
    d = decide(entry(), revision=2, content_hash="b", business_time=T0)
    assert d.verdict == Verdict.revision and d.revision == 2


def test_lower_revision_is_stale() -> None:
    d = decide(entry(rev=3), revision=2, content_hash="b", business_time=T0 + timedelta(days=1))
    assert d.verdict == Verdict.stale and not d.relay


def test_unnumbered_correction_with_later_business_time_is_bumped() -> None:
    d = decide(entry(rev=2), revision=2, content_hash="b", business_time=T0 + timedelta(hours=1))
    assert d.verdict == Verdict.revision and d.revision == 3


def test_same_revision_not_later_is_stale() -> None:
    assert decide(entry(rev=2), revision=2, content_hash="b", business_time=T0).verdict == Verdict.stale


versions = st.lists(st.tuples(st.integers(1, 5), st.sampled_from("abcde"), st.integers(0, 10)), min_size=1, max_size=30)


@given(versions)
def test_replaying_any_sequence_relays_each_content_at_most_once_per_ledger_state(seq) -> None:
    """Feed versions through the ledger: the relayed revisions strictly increase, and a second pass of
    the same sequence relays nothing (every repeat is recognised)."""
    ledger: LedgerEntry | None = None
    relayed: list[int] = []
    for rev, digest, hours in seq:
        d = decide(ledger, revision=rev, content_hash=digest, business_time=T0 + timedelta(hours=hours))
        if d.relay:
            relayed.append(d.revision)
            ledger = LedgerEntry(d.revision, digest, T0 + timedelta(hours=hours), "m")
    assert relayed == sorted(set(relayed)), "relayed revisions must strictly increase"
    assert relayed, "the first version is always relayed"
    for rev, digest, hours in seq:
        d = decide(ledger, revision=rev, content_hash=digest, business_time=T0 + timedelta(hours=hours))
        if d.relay:
            # only versions newer than the last relayed one can still be relayed
            assert rev > ledger.revision or (
                rev == ledger.revision and T0 + timedelta(hours=hours) > ledger.business_time
            )


@given(st.integers(1, 50), st.sampled_from("ab"), st.integers(1, 50), st.sampled_from("ab"))
def test_decision_never_relays_identical_content(r1, h1, r2, h2) -> None:
    d = decide(entry(rev=r1, digest=h1), revision=r2, content_hash=h2, business_time=T0)
    if h1 == h2:
        assert not d.relay
