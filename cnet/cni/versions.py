"""The CNI versions cnet speaks, and the VERSION reply: all VERSION needs, so it imports nothing.

Runtimes ask VERSION often (podman once per configuration list on nearly every command), so this
path stays as light as the interpreter allows.
"""

from __future__ import annotations

import json

# 0.1.0/0.2.0 results had no interface list; libcni 1.1.2 (podman 4.3) accepts up to 1.0.0.
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = "1.1.0"


def requested_version(data: bytes | str) -> str | None:
    """The cniVersion a document asks for, if it can be read at all (for replies and errors)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    v = doc.get("cniVersion") if isinstance(doc, dict) else None
    return v if isinstance(v, str) else None


def version_report(data: bytes | str) -> dict:
    """VERSION never fails: it answers in the version asked for when cnet speaks it."""
    asked = requested_version(data)
    return {
        "cniVersion": asked if asked in SUPPORTED_VERSIONS else LATEST,
        "supportedVersions": list(SUPPORTED_VERSIONS),
    }
