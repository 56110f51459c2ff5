"""Field readers for Kubernetes manifests: each raises InputError naming source, field and value.

The manifest parsers (`manifest`, `service_manifest`) share them, so every bad value, whatever the
kind, is reported the same one-line way: `file: field.path: what is wrong, not <value>`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from svcwatch.model.errors import InputError

PROTOCOLS = ("TCP", "UDP", "SCTP")


def metadata(doc: Mapping[str, Any], source: str) -> tuple[str, str, dict[str, str]]:
    """namespace (default "default"), name and labels."""
    meta = mapping(doc, "metadata", source)
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(f"needs a name, got {name!r}", source=source, field="metadata.name")
    namespace = meta.get("namespace") or "default"
    labels = meta.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise InputError("expected a mapping", source=source, field="metadata.labels")
    return str(namespace), name, {str(k): str(v) for k, v in labels.items()}


def mapping(
    doc: Mapping[str, Any], key: str, source: str, path: str | None = None
) -> Mapping[str, Any]:
    value = doc.get(key)
    if not isinstance(value, Mapping):
        raise InputError(f"expected a mapping, got {value!r}", source=source, field=path or key)
    return value


def listing(
    doc: Mapping[str, Any],
    key: str,
    source: str,
    path: str | None = None,
    *,
    optional: bool = False,
) -> list[Any]:
    value = doc.get(key)
    if value is None and optional:
        return []
    if not isinstance(value, list):
        raise InputError(f"expected a list, got {value!r}", source=source, field=path or key)
    return value


def port(value: Any, source: str, path: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InputError(f"port must be 1-65535, not {value!r}", source=source, field=path)
    return value


def protocol(value: Any, source: str, path: str) -> str:
    if value not in PROTOCOLS:
        raise InputError(
            f"protocol must be one of {', '.join(PROTOCOLS)}, not {value!r}",
            source=source,
            field=path,
        )
    return str(value)


def one_of(
    doc: Mapping[str, Any], key: str, choices: tuple[str, ...], source: str, path: str
) -> str:
    """An enum field; absent means the first choice (the API's default)."""
    value = doc.get(key, choices[0])
    if value not in choices:
        raise InputError(
            f"must be one of {', '.join(choices)}, not {value!r}", source=source, field=path
        )
    return str(value)


def ip(value: Any, version: int | None, source: str, path: str) -> str:
    """An IP address (of this version, if given), in its canonical form."""
    try:
        addr = ipaddress.ip_address(str(value))
    except ValueError:
        addr = None
    if addr is None or (version is not None and addr.version != version):
        kind = f"IPv{version}" if version else "IP"
        raise InputError(f"{value!r} is not an {kind} address", source=source, field=path)
    return str(addr)


def cidr(value: Any, source: str, path: str) -> str:
    """A CIDR such as `203.0.113.0/25`; surrounding spaces are ignored, host bits cleared."""
    try:
        return str(ipaddress.ip_network(str(value).strip(), strict=False))
    except ValueError:
        raise InputError(f"{value!r} is not a CIDR", source=source, field=path) from None


def opt_bool(doc: Mapping[str, Any], key: str, source: str, path: str) -> bool | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, bool):
        raise InputError(
            f"must be true or false, not {value!r}", source=source, field=f"{path}.{key}"
        )
    return value
