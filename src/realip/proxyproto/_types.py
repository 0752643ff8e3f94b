"""The values the codec produces and consumes: a header and its TLVs.

A decoded header's TLVs are checked by the decoder but turned into :class:`TLV`
objects only when ``header.tlvs`` is first read: most servers use the addresses
alone, and splitting is most of the cost of a header that carries TLVs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from realip.errors import ProxyProtocolError
from realip.proxyproto._constants import (
    SSL_CLIENT_CERT_CONN,
    SSL_CLIENT_CERT_SESS,
    SSL_CLIENT_SSL,
    Command,
    Family,
    Protocol,
    TLVType,
)

#: ``(host, port)`` for INET and INET6, like a socket's peername; a path for UNIX.
Address: TypeAlias = tuple[str, int] | str


class TLV(NamedTuple):
    """One type-length-value entry, as received (the value is raw bytes)."""

    type: int
    value: bytes


class SSLInfo(NamedTuple):
    """The decoded SSL TLV (section 2.2.5): client flags, verify result, sub-TLVs."""

    client: int
    verify: int
    tlvs: tuple[TLV, ...]

    @property
    def ssl(self) -> bool:
        """The client connected over SSL/TLS."""
        return bool(self.client & SSL_CLIENT_SSL)

    @property
    def cert_conn(self) -> bool:
        """The client sent a certificate on this connection."""
        return bool(self.client & SSL_CLIENT_CERT_CONN)

    @property
    def cert_sess(self) -> bool:
        """The client sent a certificate at least once in this TLS session."""
        return bool(self.client & SSL_CLIENT_CERT_SESS)

    @property
    def verified(self) -> bool:
        """The client presented a certificate and it was verified (verify == 0)."""
        return self.verify == 0

    def get(self, tlv_type: int) -> bytes | None:
        for tlv in self.tlvs:
            if tlv.type == tlv_type:
                return tlv.value
        return None


class _PendingTLVs:
    """The slot where a decoded header keeps its TLV bytes until they are read."""

    __slots__ = ("_tlv_bytes",)
    _tlv_bytes: bytes


@dataclass(slots=True)
class ProxyHeader(_PendingTLVs):
    """A decoded PROXY protocol header, v1 or v2.

    ``source`` and ``destination`` are ``(host, port)`` tuples for INET and INET6,
    a path string for UNIX, and ``None`` for UNSPEC, for v1 ``UNKNOWN`` and for
    LOCAL (whose address block the spec says to discard). ``length`` is how many
    bytes the header took on the wire; the bytes after it belong to the client.

    ``decode`` leaves the ``tlvs`` slot unset and keeps the raw TLV bytes, already
    checked; the first read of ``tlvs`` (directly, or through ``==``, ``repr``,
    :meth:`tlv` and the properties) splits them and fills the slot, so later reads
    are plain attribute reads.
    """

    version: int
    command: Command
    family: Family
    protocol: Protocol
    source: Address | None
    destination: Address | None
    tlvs: tuple[TLV, ...] = ()
    length: int = 0

    if not TYPE_CHECKING:  # mypy would let any attribute name through

        def __getattr__(self, name):
            # Reached only when a slot is unset: ``tlvs`` of a decoded header.
            if name != "tlvs":
                raise AttributeError(
                    f"{type(self).__name__!r} object has no attribute {name!r}"
                )
            tlvs = split_checked_tlvs(self._tlv_bytes)
            self.tlvs = tlvs
            del self._tlv_bytes
            return tlvs

    @property
    def is_local(self) -> bool:
        """A v2 LOCAL header: the sender speaks for itself (a health check)."""
        return self.command is Command.LOCAL

    @property
    def carries_address(self) -> bool:
        """True when the header names a client to use instead of the peer."""
        return self.source is not None

    def tlv(self, tlv_type: int) -> bytes | None:
        """The value of the first TLV of ``tlv_type``, or ``None``."""
        for tlv in self.tlvs:
            if tlv.type == tlv_type:
                return tlv.value
        return None

    def tlvs_of(self, tlv_type: int) -> list[bytes]:
        """Every value of ``tlv_type``, in received order (types may repeat)."""
        return [tlv.value for tlv in self.tlvs if tlv.type == tlv_type]

    @property
    def alpn(self) -> bytes | None:
        return self.tlv(TLVType.ALPN)

    @property
    def authority(self) -> str | None:
        value = self.tlv(TLVType.AUTHORITY)
        return None if value is None else value.decode("utf-8")

    @property
    def unique_id(self) -> bytes | None:
        return self.tlv(TLVType.UNIQUE_ID)

    @property
    def netns(self) -> str | None:
        value = self.tlv(TLVType.NETNS)
        return None if value is None else value.decode("ascii")

    @property
    def ssl(self) -> SSLInfo | None:
        value = self.tlv(TLVType.SSL)
        return None if value is None else parse_ssl(value)

    @property
    def aws_vpce_id(self) -> str | None:
        """The AWS VPC endpoint id (TLV 0xEA, sub-type 0x01), if present."""
        value = self.tlv(TLVType.AWS)
        if value is None:
            return None
        return decode_vendor(TLVType.AWS, value).get("vpce_id")  # type: ignore[return-value]

    @property
    def azure_link_id(self) -> int | None:
        """The Azure private endpoint LINKID (TLV 0xEE, sub-type 0x01), if present."""
        value = self.tlv(TLVType.AZURE)
        if value is None:
            return None
        return decode_vendor(TLVType.AZURE, value).get("link_id")  # type: ignore[return-value]

    @property
    def gcp_psc_connection_id(self) -> int | None:
        """The Google Private Service Connect connection id (TLV 0xE0), if present."""
        value = self.tlv(TLVType.GCP)
        if value is None:
            return None
        return decode_vendor(TLVType.GCP, value).get("psc_connection_id")  # type: ignore[return-value]


_SSL_HEAD = struct.Struct("!BI")
_TLV_HEAD = struct.Struct("!BH")


def check_tlv_run(data: bytes, start: int, end: int) -> str | None:
    """Why ``data[start:end]`` is not a run of whole TLVs, or ``None`` if it is.

    Validation only, so the decoder's hot path builds no objects it throws away.
    """
    unpack = _TLV_HEAD.unpack_from
    pos = start
    while pos < end:
        if end - pos < 3:
            return f"{end - pos} stray byte(s) at offset {pos}, too short for a TLV"
        tlv_type, length = unpack(data, pos)
        value_end = pos + 3 + length
        if value_end > end:
            return (
                f"TLV 0x{tlv_type:02X} at offset {pos} declares {length} bytes, "
                f"{value_end - end} more than the header holds"
            )
        pos = value_end
    return None


_new_tuple = tuple.__new__  # builds a TLV without NamedTuple.__new__'s extra call


def split_checked_tlvs(raw: bytes) -> tuple[TLV, ...]:
    """Split ``raw``, a run of whole TLVs that the decoder has already checked."""
    tlvs = []
    pos = 0
    end = len(raw)
    while pos < end:
        value_at = pos + 3
        pos = value_at + (raw[pos + 1] << 8 | raw[pos + 2])
        tlvs.append(_new_tuple(TLV, (raw[value_at - 3], raw[value_at:pos])))
    return tuple(tlvs)


def split_tlvs(data: bytes | memoryview, start: int, end: int) -> tuple[TLV, ...] | str:
    """Split ``data[start:end]`` into TLVs, or return why it cannot be split.

    Returning the reason instead of raising keeps the caller in charge of the
    error's wording (a header TLV and an SSL sub-TLV are reported differently).
    """
    problem = check_tlv_run(bytes(data), start, end)
    if problem is not None:
        return problem
    tlvs = []
    unpack = _TLV_HEAD.unpack_from
    pos = start
    while pos < end:
        tlv_type, length = unpack(data, pos)
        tlvs.append(TLV(tlv_type, bytes(data[pos + 3 : pos + 3 + length])))
        pos += 3 + length
    return tuple(tlvs)


def parse_ssl(value: bytes) -> SSLInfo:
    """Decode an SSL TLV value (section 2.2.5): ``client``, ``verify``, sub-TLVs."""
    if len(value) < 5:
        raise ProxyProtocolError(
            f"SSL TLV needs at least 5 bytes (client, verify), got {len(value)}",
            field="tlv 0x20",
        )
    client, verify = _SSL_HEAD.unpack_from(value)
    subs = split_tlvs(value, 5, len(value))
    if isinstance(subs, str):
        raise ProxyProtocolError(f"SSL TLV: {subs}", field="tlv 0x20")
    return SSLInfo(client, verify, subs)


def decode_vendor(tlv_type: int, value: bytes) -> dict[str, object]:
    """Decode the cloud vendors' TLVs realip knows; an empty dict when the shape is
    not the documented one (vendor TLVs are never an error, only opaque)."""
    if tlv_type == TLVType.AWS and len(value) >= 1:
        if value[0] == 0x01:
            return {"subtype": 1, "vpce_id": value[1:].decode("ascii", "replace")}
        return {"subtype": value[0]}
    if tlv_type == TLVType.AZURE and len(value) >= 1:
        if value[0] == 0x01 and len(value) == 5:
            return {"subtype": 1, "link_id": int.from_bytes(value[1:5], "little")}
        return {"subtype": value[0]}
    if tlv_type == TLVType.GCP and len(value) == 8:
        return {"psc_connection_id": int.from_bytes(value, "big")}
    return {}
