"""JSON-ready views of headers, shared by ``realip decode``, ``whoami`` and
``capture`` so that every command shows a header the same way."""

from __future__ import annotations

import contextlib
from typing import Any

from realip.errors import ProxyProtocolError
from realip.proxyproto._constants import Family, TLVType
from realip.proxyproto._types import TLV, Address, ProxyHeader, decode_vendor, parse_ssl

_SSL_SUB_NAMES = {
    TLVType.SSL_VERSION: "version",
    TLVType.SSL_CN: "cn",
    TLVType.SSL_CIPHER: "cipher",
    TLVType.SSL_SIG_ALG: "sig_alg",
    TLVType.SSL_KEY_ALG: "key_alg",
    TLVType.SSL_GROUP: "group",
    TLVType.SSL_SIG_SCHEME: "sig_scheme",
}


def address_to_json(family: Family, address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    if isinstance(address, str):
        return {"path": address}
    return {"address": address[0], "port": address[1]}


def header_to_json(header: ProxyHeader) -> dict[str, Any]:
    """The header as the JSON object ``realip decode`` prints."""
    return {
        "version": header.version,
        "command": header.command.name,
        "family": header.family.name,
        "protocol": header.protocol.name,
        "source": address_to_json(header.family, header.source),
        "destination": address_to_json(header.family, header.destination),
        "tlvs": [tlv_to_json(tlv) for tlv in header.tlvs],
        "length": header.length,
    }


def tlv_to_json(tlv: TLV) -> dict[str, Any]:
    """``type`` and hex ``value``, plus ``name`` and decoded fields when known."""
    out: dict[str, Any] = {"type": tlv.type, "value": tlv.value.hex()}
    try:
        kind = TLVType(tlv.type)
    except ValueError:
        return out
    out["name"] = kind.name
    value = tlv.value
    if kind is TLVType.ALPN:
        out["alpn"] = value.decode("ascii", "replace")
    elif kind is TLVType.AUTHORITY:
        out["authority"] = value.decode("utf-8", "replace")
    elif kind is TLVType.CRC32C:
        out["crc32c"] = f"0x{int.from_bytes(value, 'big'):08x}"
    elif kind is TLVType.UNIQUE_ID:
        out["unique_id"] = value.decode("ascii", "replace")
    elif kind is TLVType.NETNS:
        out["netns"] = value.decode("ascii", "replace")
    elif kind is TLVType.SSL:
        # decode() has checked the layout; a hand-built header may break it, and
        # a view must not fail on a value it can still show as hex.
        with contextlib.suppress(ProxyProtocolError):
            out["ssl"] = _ssl_to_json(value)
    elif kind in (TLVType.AWS, TLVType.AZURE, TLVType.GCP):
        out.update(decode_vendor(kind, value))
    return out


def _ssl_to_json(value: bytes) -> dict[str, Any]:
    info = parse_ssl(value)
    out: dict[str, Any] = {
        "client": info.client,
        "ssl": info.ssl,
        "cert_conn": info.cert_conn,
        "cert_sess": info.cert_sess,
        "verify": info.verify,
        "verified": info.verified,
    }
    for sub in info.tlvs:
        name = _SSL_SUB_NAMES.get(sub.type)  # type: ignore[call-overload]
        if name is not None:
            out[name] = sub.value.decode("utf-8", "replace")
        elif sub.type == TLVType.SSL_CLIENT_CERT:
            out["client_cert"] = sub.value.hex()
    # Sub-TLVs are shown flat: an SSL type nested inside SSL is not decoded again.
    out["tlvs"] = [_sub_tlv_to_json(sub) for sub in info.tlvs]
    return out


def _sub_tlv_to_json(tlv: TLV) -> dict[str, Any]:
    out: dict[str, Any] = {"type": tlv.type, "value": tlv.value.hex()}
    if tlv.type in _SSL_SUB_TYPES:
        out["name"] = TLVType(tlv.type).name
    return out


_SSL_SUB_TYPES = frozenset(range(TLVType.SSL_VERSION, TLVType.SSL_CLIENT_CERT + 1))
