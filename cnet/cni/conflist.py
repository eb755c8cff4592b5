"""The network configuration list a runtime reads to put containers on a cnet network. Pure."""

from __future__ import annotations

# podman 4.3's libcni (1.1.2) rejects a 1.1.0 result, and a 1.0.0 list works for every runtime
# that speaks spec 1.x.
CONFLIST_VERSION = "1.0.0"
PLUGIN_TYPE = "cnet"
CAPABILITIES = {"portMappings": True, "ips": True, "mac": True, "dns": True}


def conflist(network: str, state_dir: str | None = None) -> dict:
    """One plugin, `cnet`, naming the cnet network; the state dir only when it is not the default
    (the plugin also reads CNET_STATE_DIR, but runtimes pass little of their environment on)."""
    plugin: dict = {"type": PLUGIN_TYPE, "network": network, "capabilities": dict(CAPABILITIES)}
    if state_dir is not None:
        plugin["stateDir"] = state_dir
    return {"cniVersion": CONFLIST_VERSION, "name": network, "plugins": [plugin]}
