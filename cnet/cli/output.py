"""`--format` for `ps` and `inspect`: `json` (typed values, one object per line for ps, as
Docker's `ps --format json`) or a Go template (cnet.cli.gotemplate), with Docker's field names
mapped onto cnet's where they have a counterpart."""

from __future__ import annotations

import json
from typing import Any

from . import gotemplate


def format_rows(rows: list[dict[str, Any]], fmt: str) -> list[str]:
    """One line per row: `json`, or the template applied to each row."""
    if fmt == "json":
        return [json.dumps(r, default=str) for r in rows]
    nodes = gotemplate.parse(fmt)
    return [gotemplate.render(nodes, ps_view(r)) for r in rows]


def ps_view(row: dict[str, Any]) -> dict[str, Any]:
    """A ps row plus Docker's names for its fields (`.Names`, `.Networks` as Docker prints them)."""
    return row | {
        "ID": row["id"],
        "Names": row["name"],
        "Status": row["state"],
        "State": row.get("status", row["state"]),
        "Networks": ",".join(row.get("networks", [])),
        "Ports": ", ".join(row["ports"]),
        "Command": " ".join(row["command"]),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(row.get("labels", {}).items())),
        "CreatedAt": row.get("created"),
    }


def inspect_view(item: dict[str, Any]) -> dict[str, Any]:
    """An inspect document plus the Docker-shaped parts a template may ask for: `.State.Status`,
    `.State.Pid`, `.State.ExitCode`, `.NetworkSettings.Networks.NET.IPAddress`, `.Config.Hostname`,
    `.Config.Labels`, `.Config.Cmd`, `.HostsPath`, `.ResolvConfPath`. A network's document is
    returned as it is (`.Name`, `.Subnet`, `.Containers`...)."""
    if "networks" not in item:
        return item
    networks = {
        n["network"]: n
        | {
            "IPAddress": n["ip"],
            "IPPrefixLen": n["prefix_len"],
            "Gateway": n["gateway"],
            "GlobalIPv6Address": n.get("ip6") or "",
            "GlobalIPv6PrefixLen": n.get("prefix6_len") or 0,
            "IPv6Gateway": n.get("gateway6") or "",
            "MacAddress": n["mac"],
            "Aliases": n["aliases"],
            "DNSNames": n["dns_names"],
        }
        for n in item["networks"]
    }
    return item | {
        "ID": item["id"],
        "Id": item["id"],
        "Name": item["name"],
        "State": {
            "Status": item["state"],
            "Running": item["state"] == "running",
            "Pid": item["pid"] or 0,
            "ExitCode": item["exit_code"] or 0,
            "StartedAt": item["started"],
            "FinishedAt": item["finished"],
        },
        "NetworkSettings": {"Networks": networks},
        "Config": {"Hostname": item["hostname"], "Labels": item["labels"], "Cmd": item["command"]},
        "HostsPath": item.get("hosts_path"),
        "ResolvConfPath": item.get("resolv_conf_path"),
    }
