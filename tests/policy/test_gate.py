"""The per-connection gate: every action, whole and byte by byte."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realip.policy import Action, Gate, Policy, RefusalLog, decide, peer_address
from realip.proxyproto import V2_SIGNATURE, Command, build_v1, build_v2

PEER = ("10.0.0.5", 40000)
CLIENT = ("192.0.2.7", 51000)
SERVER = ("198.51.100.1", 443)
V1 = build_v1(CLIENT, SERVER)
V2 = build_v2(Command.PROXY, CLIENT, SERVER)
LOCAL = build_v2(Command.LOCAL, None, None)
HTTP = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def gate(action: Action, peer: tuple[str, int] = PEER) -> Gate:
    return Gate(Policy([("10.0.0.0/8", action)], default=Action.DENY), peer, None)


def feed_bytewise(g: Gate, data: bytes):  # type: ignore[no-untyped-def]
    for index in range(len(data)):
        decision = g.feed(data[index : index + 1])
        if decision is not None:
            return decision, index + 1
    return None, len(data)


@pytest.mark.parametrize("header", [V1, V2], ids=["v1", "v2"])
@pytest.mark.parametrize("action", [Action.REQUIRE, Action.OPTIONAL])
def test_header_gives_client_and_leaves_data(action: Action, header: bytes) -> None:
    decision = gate(action).feed(header + HTTP)
    assert decision is not None and decision.accepted
    assert decision.client == CLIENT
    assert decision.header is not None and decision.header.source == CLIENT
    assert decision.remaining == HTTP


@pytest.mark.parametrize("header", [V1, V2], ids=["v1", "v2"])
@pytest.mark.parametrize("action", [Action.REQUIRE, Action.OPTIONAL, Action.IGNORE])
def test_one_byte_at_a_time_decides_at_the_last_header_byte(
    action: Action, header: bytes
) -> None:
    decision, used = feed_bytewise(gate(action), header + HTTP)
    assert decision is not None and decision.accepted
    assert used == len(header)
    assert decision.remaining == b""
    expected = PEER if action is Action.IGNORE else CLIENT
    assert decision.client == expected


def test_require_refuses_plain_http_naming_the_hairpin() -> None:
    decision = gate(Action.REQUIRE).feed(HTTP)
    assert decision is not None and not decision.accepted
    assert decision.reason is not None
    assert "plain HTTP from 10.0.0.5" in decision.reason
    assert "Kubernetes hairpin" in decision.reason
    assert "action require" in decision.reason
    assert "'GET / HTTP/1.1" in decision.reason


@pytest.mark.parametrize("action", [Action.OPTIONAL, Action.IGNORE, Action.REJECT])
def test_client_data_is_decided_at_its_first_byte(action: Action) -> None:
    decision = gate(action).feed(b"G")
    assert decision is not None and decision.accepted
    assert decision.client == PEER and decision.remaining == b"G"


def test_reject_refuses_a_header() -> None:
    decision = gate(Action.REJECT).feed(V2)
    assert decision is not None and not decision.accepted
    assert "PROXY header from 10.0.0.5, which is not a trusted proxy" in str(
        decision.reason
    )


def test_local_header_uses_the_real_endpoints() -> None:
    decision = gate(Action.REQUIRE).feed(LOCAL + HTTP)
    assert decision is not None and decision.accepted
    assert decision.client == PEER and decision.remaining == HTTP


def test_deny_and_default() -> None:
    denied = gate(Action.REQUIRE, peer=("203.0.113.1", 1))
    assert denied.action is Action.DENY
    decision = denied.at_connect()
    assert decision is not None and not decision.accepted


def test_mapped_ipv6_peer_matches_ipv4_rule() -> None:
    assert gate(Action.OPTIONAL, peer=("::ffff:10.1.2.3", 1)).action is Action.OPTIONAL


@given(st.binary(min_size=1, max_size=40))
def test_optional_never_waits_past_a_ruled_out_prefix(data: bytes) -> None:
    """Byte by byte, ``optional`` decides at the first byte that leaves both
    signatures, and hands every byte to the client untouched."""
    g = gate(Action.OPTIONAL)
    got = None
    for index in range(len(data)):
        got = g.feed(data[index : index + 1])
        if got is not None:
            break
    if got is None:
        signature = data.startswith((V2_SIGNATURE, b"PROXY "))
        prefix = V2_SIGNATURE.startswith(data) or b"PROXY ".startswith(data)
        assert signature or prefix  # waiting only on a signature or its prefix
        got = g.eof()
        # A strict prefix cannot be a header once the peer closed: client data.
        assert got.accepted == (not signature)
        assert not got.accepted or got.remaining == data
        return
    if data.startswith((V2_SIGNATURE, b"PROXY ")):
        return  # a header (valid or not): decided by the codec
    assert got.accepted and got.client == PEER
    assert data.startswith(got.remaining) and len(got.remaining) == index + 1


def test_timeout_and_eof_reasons() -> None:
    g = gate(Action.REQUIRE)
    assert g.feed(V2[:20]) is None
    reason = g.expired().reason or ""
    assert "sent 20 byte(s) then nothing for 5 s" in reason
    assert "'\\r\\n\\r\\n\\x00\\r\\nQUIT\\n" in reason  # escaped first bytes
    assert "health check" in (gate(Action.REQUIRE).eof().reason or "")
    truncated = gate(Action.OPTIONAL)
    assert truncated.feed(V1[:10]) is None
    assert not truncated.eof().accepted


def test_invalid_header_reason_carries_the_codec_message() -> None:
    decision = gate(Action.REQUIRE).feed(b"PROXY TCP4 1.2.3.4 5.6.7.8 080 80\r\n")
    assert decision is not None and not decision.accepted
    assert "invalid PROXY header from 10.0.0.5: " in (decision.reason or "")


def test_refusal_log_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RefusalLog(rate=1.0, burst=3, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="realip.policy"):
        logged = [log.refused(f"line {n}") for n in range(10)]
        now[0] = 2.0
        log.refused("after")
    assert logged == [True] * 3 + [False] * 7
    messages = [record.getMessage() for record in caplog.records]
    assert messages[-2:] == [
        "7 more refused connection(s) not logged (rate limit)",
        "after",
    ]


def test_dual_stack_peer_is_reported_as_ipv4() -> None:
    g = gate(Action.OPTIONAL, peer=("::ffff:10.1.2.3", 7, 0, 0))  # type: ignore[arg-type]
    decision = g.feed(HTTP)
    assert decision is not None and decision.client == ("10.1.2.3", 7)


@pytest.mark.parametrize("header", [V1, V2], ids=["v1", "v2"])
def test_ignore_keeps_the_discarded_header_apart(header: bytes) -> None:
    decision = gate(Action.IGNORE).feed(header + HTTP)
    assert decision is not None and decision.accepted
    assert decision.header is None  # nothing downstream may trust it
    assert decision.ignored_header is not None
    assert decision.ignored_header.source == CLIENT  # all its fields, for display
    assert decision.ignored_header.destination == SERVER
    assert decision.client == PEER and decision.remaining == HTTP


@pytest.mark.parametrize("action", [Action.REQUIRE, Action.OPTIONAL])
def test_a_used_header_is_not_reported_as_ignored(action: Action) -> None:
    decision = gate(action).feed(V2 + HTTP)
    assert decision is not None and decision.header is not None
    assert decision.ignored_header is None


def test_ignore_without_a_header_has_neither() -> None:
    decision = gate(Action.IGNORE).feed(HTTP)
    assert decision is not None and decision.accepted
    assert decision.header is None and decision.ignored_header is None


@pytest.mark.parametrize(
    "action", [Action.REQUIRE, Action.OPTIONAL, Action.IGNORE, Action.REJECT]
)
@pytest.mark.parametrize("data", [HTTP, V1 + HTTP, V2 + HTTP, LOCAL, b"\x16\x03\x01"])
def test_decide_agrees_with_the_gate(action: Action, data: bytes) -> None:
    """The stateless fast path servers use gives the gate's own verdict."""
    policy = Policy([("10.0.0.0/8", action)], default=Action.DENY)
    expected = Gate(policy, PEER).feed(data)
    got = decide(policy, peer_address(PEER), policy.action_for(PEER[0]), data)
    assert got == expected


def test_decide_waits_on_a_split_header() -> None:
    policy = Policy([("10.0.0.0/8", Action.REQUIRE)])
    assert decide(policy, PEER, Action.REQUIRE, V2[:20]) is None
    assert decide(policy, PEER, Action.REQUIRE, b"") is None


def test_peer_address_forms() -> None:
    assert peer_address(("192.0.2.1", 80)) == ("192.0.2.1", 80)
    assert peer_address(("::ffff:192.0.2.1", 80, 0, 0)) == ("192.0.2.1", 80)
    assert peer_address(("2001:db8::1", 80, 0, 0)) == ("2001:db8::1", 80)
    assert peer_address("") == ("unix", 0)
    assert peer_address(None) == ("unix", 0)


def test_action_cache_is_what_action_for_answered() -> None:
    policy = Policy([("10.0.0.0/8", Action.OPTIONAL)], default=Action.REJECT)
    assert policy.action_cache.get("10.1.2.3") is None
    assert policy.action_for("10.1.2.3") is Action.OPTIONAL
    assert policy.action_cache["10.1.2.3"] is Action.OPTIONAL
    assert policy.action_for("not an address") is Action.REJECT
