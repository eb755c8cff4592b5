"""Reconciliation plans: what the kernel shows (`Kernel`) against what the database says
(`Desired`), turned into the steps that repair the difference. Pure: the observing and the
reading are done by cnet.services.reconcile, which explains what may ever be touched."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import naming
from ..commands import Plan, Step, cmd
from ..kernel import ebtables as eb
from ..kernel import ip as ipk
from ..kernel import ip6tables as ip6t
from ..kernel import iptables as ipt
from ..kernel import parse
from ..records import Container, ContainerState, Direction, Endpoint, Network, NetworkState, OpKind, PortMapping
from . import reconcile6
from .container import endpoint_steps, port_rules, release_steps, udp_conntrack_flushes
from .network import bridge_steps, network_rules, vxlan_step
from .spoof import spoof_diff

CNET_CHAIN_PREFIX = "CNET-"
COMMENT_PREFIX = "cnet:"
NETNS_PREFIX = "cnet-"
LINK_PREFIX = "cnet"


@dataclass
class Kernel:
    """What the kernel showed: links, netns and rules, plus the facts read from /proc."""

    links: dict[str, parse.Link]
    netns: set[str]
    rules: parse.Ruleset
    bridge_rules: parse.Ruleset = field(default_factory=parse.Ruleset)  # ebtables-save
    sysctl_writable: bool = True
    netns_pids: dict[str, list[int]] = field(default_factory=dict)
    netns_ids: dict[str, int] = field(default_factory=dict)  # name -> id, for veth peers' link_netnsid
    ip_forward: str | None = None
    route_localnet: dict[str, str | None] = field(default_factory=dict)  # bridge -> sysctl value
    live_containers: set[str] = field(default_factory=set)  # ids whose PID 1 is alive
    live_watchers: set[str] = field(default_factory=set)  # ids whose watcher is alive
    rules6: parse.Ruleset = field(default_factory=parse.Ruleset)  # ip6tables-save
    ip6_forward: str | None = None  # None: no IPv6 on this host (ipv6.disable=1)

    @property
    def ipv6(self) -> bool:
        return self.ip6_forward is not None


@dataclass
class Desired:
    networks: list[Network]
    containers: dict[str, Container]
    endpoints: list[Endpoint]
    ports_by_container: dict[str, list[PortMapping]]
    busy_containers: set[str]
    busy_networks: set[str]

    @property
    def ready_networks(self) -> list[Network]:
        return [n for n in self.networks if n.state == NetworkState.READY and n.id not in self.busy_networks]

    def stable_container(self, cid: str) -> bool:
        c = self.containers.get(cid)
        # A CNI attachment (attached) is as stable as a running container: gc restores its rules.
        return c is not None and (c.live or c.state == ContainerState.ATTACHED) and cid not in self.busy_containers

    def live_netns(self) -> set[str]:
        """Namespaces that belong to a container being created or running, or that an operation
        is working on."""
        return {
            c.netns
            for cid, c in self.containers.items()
            if c.state == ContainerState.CREATING or c.live or cid in self.busy_containers
        }


def busy(operations: list[tuple[str, str]]) -> tuple[set[str], set[str]]:
    """(container ids, network ids) that the given (kind, target) operations touch."""
    ctrs: set[str] = set()
    nets: set[str] = set()
    for kind, target in operations:
        if kind in (OpKind.NET_CREATE, OpKind.NET_RM):
            nets.add(target)
        elif kind in (
            OpKind.RUN,
            OpKind.START,
            OpKind.RELEASE,
            OpKind.NET_CONNECT,
            OpKind.NET_DISCONNECT,
            OpKind.CNI_ADD,
            OpKind.CNI_DEL,
        ):
            ctrs.add(target.split("/")[0])
    return ctrs, nets


# --- the expected firewall ------------------------------------------------------------------------
def expected_rules(d: Desired) -> dict[str, list[ipt.Rule]]:
    """owner comment -> the rules it should have, in order (only stable owners)."""
    out: dict[str, list[ipt.Rule]] = {}
    if d.networks:
        out[naming.BASE_COMMENT] = ipt.base_rules()
        out[naming.BASE_COMMENT + ":jumps"] = ipt.base_jumps()
    for net in d.ready_networks:
        out[naming.network_comment(net.name)] = network_rules(net)
    for cid, ports in d.ports_by_container.items():
        if d.stable_container(cid):
            out[naming.container_comment(cid)] = port_rules(cid, ports)
    return out


def owned_comments(d: Desired) -> set[str]:
    """Comments some row owns (stable or busy): anything else with a cnet: comment is an orphan."""
    owned = set()
    if d.networks:
        owned.add(naming.BASE_COMMENT)
    owned |= {naming.network_comment(n.name) for n in d.networks}
    owned |= {naming.container_comment(cid) for cid in d.ports_by_container}
    owned |= {naming.container_comment(cid) for cid in d.busy_containers}
    return owned


def is_cnet_rule(r: parse.SavedRule) -> bool:
    return r.chain.startswith(CNET_CHAIN_PREFIX) or (r.comment or "").startswith(COMMENT_PREFIX)


def firewall_diff(k: parse.Ruleset, d: Desired, *, clean: bool, ipv6: bool = False) -> tuple[str, list[str]]:
    """iptables-restore --noflush text that turns cnet's part of `k` into what `d` says, plus one
    summary line per change. Empty text: nothing to do. clean=False keeps orphans. `ipv6`: the
    same for ip6tables (`k` from ip6tables-save)."""
    expected = reconcile6.expected_rules(d) if ipv6 else expected_rules(d)
    owned = reconcile6.owned_comments(d) if ipv6 else owned_comments(d)
    want_chains = reconcile6.base_chains(d) if ipv6 else (ipt.BASE_CHAINS if d.networks else {})
    deletes: dict[str, list[str]] = {}
    adds: dict[str, list[str]] = {}
    new_chains: dict[str, list[str]] = {}
    drop_chains: dict[str, list[str]] = {}
    notes: list[str] = []

    for table, chains in want_chains.items():
        for chain in chains:
            if not k.has_chain(table, chain):
                new_chains.setdefault(table, []).append(chain)
                notes.append(f"create missing chain {table}/{chain}")
    if clean:
        for table, present in k.chains.items():
            for chain in present:
                if chain.startswith(CNET_CHAIN_PREFIX) and chain not in want_chains.get(table, ()):
                    drop_chains.setdefault(table, []).append(chain)
                    notes.append(f"remove orphan chain {table}/{chain}")

    # Group what is there by (table, chain, owner).
    actual: dict[tuple[str, str, str | None], list[parse.SavedRule]] = {}
    for r in k.rules:
        if is_cnet_rule(r):
            actual.setdefault((r.table, r.chain, r.comment), []).append(r)

    def dropped(table: str, chain: str) -> bool:
        return chain in drop_chains.get(table, ())

    # Orphans: cnet-commented rules no row owns, foreign rules inside cnet's chains, rules in chains
    # that go away (they must be emptied before -X), jumps into chains that go away.
    for (table, chain, comment), rules in actual.items():
        orphan = (
            comment is None
            or not comment.startswith(COMMENT_PREFIX)
            or comment not in owned
            or dropped(table, chain)
            or any(dropped(table, r.target or "") for r in rules)
        )
        if orphan and clean:
            deletes.setdefault(table, []).extend(r.delete_line() for r in rules)
            notes.append(f"remove {len(rules)} orphan rule(s) {comment or '(no comment)'} from {table}/{chain}")

    # Rules of a stable owner in a chain where it wants none (a layout from an earlier cnet, e.g.
    # the DNAT exception that used to sit in isolation stage 1): removed, or they would keep
    # their old effect.
    wanted_chains: dict[str, set[tuple[str, str]]] = {}
    for owner, owner_rules in expected.items():
        owner_comment = naming.BASE_COMMENT if owner.endswith(":jumps") else owner
        wanted_chains.setdefault(owner_comment, set()).update((r.table, r.chain) for r in owner_rules)
    for (table, chain, comment), rules in actual.items():
        if comment in wanted_chains and (table, chain) not in wanted_chains[comment] and not dropped(table, chain):
            deletes.setdefault(table, []).extend(r.delete_line() for r in rules)
            notes.append(f"remove {len(rules)} stale rule(s) {comment} from {table}/{chain}")

    # Missing or altered rules of stable owners: replace that owner's rules in that chain.
    for owner, owner_rules in expected.items():
        comment = naming.BASE_COMMENT if owner.endswith(":jumps") else owner
        by_chain: dict[tuple[str, str], list[ipt.Rule]] = {}
        for rule in owner_rules:
            by_chain.setdefault((rule.table, rule.chain), []).append(rule)
        for (table, chain), want in by_chain.items():
            have = actual.get((table, chain, comment), [])
            if [h.spec for h in have] == [w.spec for w in want]:
                continue
            if comment.startswith("cnet:ctr:") and sorted(h.spec for h in have) == sorted(w.spec for w in want):
                continue  # port mappings match disjoint traffic: their order does not matter
            if owner == naming.BASE_COMMENT + ":jumps" or comment == naming.BASE_COMMENT:
                # Jumps and base rules come first in their chains (the isolation jump must
                # precede every network's ACCEPT): insert at the top, in order.
                lines = [w.line("-I").replace(f"-I {w.chain} ", f"-I {w.chain} {i} ", 1) for i, w in enumerate(want, 1)]
            else:
                lines = [w.line("-A") for w in want]
            deletes.setdefault(table, []).extend(h.delete_line() for h in have)
            adds.setdefault(table, []).extend(lines)
            what = "restore" if not have else "rewrite"
            notes.append(f"{what} {len(want)} rule(s) {comment} in {table}/{chain}")

    out: list[str] = []
    for table in ipt.TABLE_ORDER:
        body = [f":{c} - [0:0]" for c in new_chains.get(table, ())]
        body += deletes.get(table, [])
        body += adds.get(table, [])
        body += [f"-F {c}" for c in drop_chains.get(table, ())]
        body += [f"-X {c}" for c in drop_chains.get(table, ())]
        if body:
            out += [f"*{table}", *body, "COMMIT"]
    return ("\n".join(out) + "\n") if out else "", notes


# --- the plan -------------------------------------------------------------------------------------
def kept_orphans(k: Kernel, d: Desired) -> tuple[set[str], set[str]]:
    """(namespaces, links) that no record owns but that carry live processes: a container whose
    record was lost (the database deleted or restored from an old copy) still runs there. Its
    namespace, the veths whose peers live in it and the bridges they are ports of are kept."""
    live_netns = d.live_netns()
    netns = {ns for ns in k.netns if ns.startswith(NETNS_PREFIX) and ns not in live_netns and k.netns_pids.get(ns)}
    ids = {k.netns_ids[ns] for ns in netns if ns in k.netns_ids}
    veths = {name for name, link in k.links.items() if link.link_netnsid is not None and link.link_netnsid in ids}
    bridges = {k.links[v].master for v in veths if k.links[v].master}
    return netns, veths | {b for b in bridges if b is not None}


def plan_reconcile(k: Kernel, d: Desired, *, clean: bool, force: bool = False) -> tuple[Plan, list[str]]:
    """gc (clean=True: orphans out, missing objects back) or net restore (clean=False: missing
    objects back only). A teardown-like plan: the journal goes past errors, so does the script.
    gc never kills a process unless forced: orphans that carry live processes are reported and
    kept (with their links and cnet's firewall orphans, which may be what they use)."""
    plan = Plan(direction=Direction.DESTROY)
    notes: list[str] = []
    bridges = {n.bridge for n in d.networks} | {naming.vxlan_name(n.id) for n in d.networks if n.overlay}
    veths = {e.host_veth for e in d.endpoints}
    live_netns = d.live_netns()
    kept_ns, kept_links = (set(), set()) if force or not clean else kept_orphans(k, d)
    for ns in sorted(kept_ns):
        pids = k.netns_pids.get(ns) or []
        notes.append(
            f"keep orphan network namespace {ns}: no record owns it but {len(pids)} process(es) live in it "
            f"(pids {' '.join(map(str, pids))}); `cnet gc --force` kills them and removes it"
        )
    if kept_links:
        notes.append(f"keep the links and firewall rules those processes may use: {' '.join(sorted(kept_links))}")

    if clean:
        # Orphan namespaces first (their processes killed, so the veths inside go too), then links.
        for ns in sorted(k.netns):
            if ns.startswith(NETNS_PREFIX) and ns not in live_netns and ns not in kept_ns:
                pids = k.netns_pids.get(ns) or []
                if pids:
                    plan.add(
                        Step(
                            summary=f"kill the {len(pids)} orphan process(es) in {ns}",
                            do=cmd("kill", "-KILL", *map(str, pids)),
                        )
                    )
                plan.add(Step(summary=f"remove orphan network namespace {ns}", do=ipk.netns_del(ns)))
        for name in sorted(k.links):
            if name.startswith(LINK_PREFIX) and name not in bridges and name not in veths and name not in kept_links:
                plan.add(Step(summary=f"remove orphan link {name}", do=ipk.link_del(name)))

    # Networks: bridge (with its own MAC), gateway address, up, route_localnet; forwarding for
    # all of them. Sysctls are written only when their value is wrong and /proc/sys is writable.
    ready = d.ready_networks
    if ready and k.ip_forward != "1":
        if k.sysctl_writable:
            plan.add(
                Step(
                    summary="enable IPv4 forwarding (cnet networks exist)",
                    do=ipk.sysctl_set("net.ipv4.ip_forward", "1"),
                )
            )
        else:
            notes.append("IPv4 forwarding is off and /proc/sys is read-only: cnet cannot turn it on")
    for net in ready:
        if net.overlay and naming.vxlan_name(net.id) not in k.links:
            plan.add(vxlan_step(net))  # its peers come back with the network's next peer sync
            notes.append(f"network {net.name}: vxlan device {naming.vxlan_name(net.id)} re-created")
        link = k.links.get(net.bridge)
        gw = f"{net.gateway}/{net.prefix_len}"
        if link is None:
            plan.extend(bridge_steps(net, route_localnet=k.sysctl_writable))  # its rules come with the diffs below
            notes.append(f"network {net.name}: bridge {net.bridge} re-created")
            if not k.sysctl_writable:
                notes.append(f"network {net.name}: /proc/sys is read-only, route_localnet stays off on {net.bridge}")
            continue
        if link.mac is not None and link.mac != net.bridge_mac:
            plan.add(ipk.bridge_set_mac(net.bridge, net.bridge_mac))
            notes.append(f"network {net.name}: bridge {net.bridge} given its own MAC {net.bridge_mac}")
        if gw not in link.addrs:
            plan.add(
                Step(
                    summary=f"restore gateway {gw} on {net.bridge}", do=cmd("ip", "addr", "add", gw, "dev", net.bridge)
                )
            )
        if not link.up:
            plan.add(Step(summary=f"bring {net.bridge} up", do=cmd("ip", "link", "set", net.bridge, "up")))
        if k.route_localnet.get(net.bridge) != "1":
            if k.sysctl_writable:
                plan.add(ipk.route_localnet(net.bridge))
            else:
                notes.append(f"network {net.name}: /proc/sys is read-only, route_localnet stays off on {net.bridge}")

    # Live containers whose namespace name or veth was removed by hand, or whose veth was detached
    # from its bridge (the bridge deleted and re-created, `nomaster`), set down or lost hairpin.
    by_id = {n.id: n for n in ready}
    for cid, c in d.containers.items():
        if not d.stable_container(cid) or not c.pid or cid not in k.live_containers:
            continue
        if c.netns not in k.netns:
            plan.add(
                Step(
                    summary=f"re-pin network namespace {c.netns} of container {c.name}",
                    do=cmd("ip", "netns", "attach", c.netns, str(c.pid)),
                )
            )
        for ep in (e for e in d.endpoints if e.container_id == cid):
            ep_net = by_id.get(ep.network_id)
            if ep_net is None:  # its network is busy or not ready: its operation owns it
                continue
            link = k.links.get(ep.host_veth)
            if link is None:
                plan.extend(
                    endpoint_steps(c.netns, ep, first=ep.is_default_route, create_netns=False, ipv6_host=k.ipv6)
                )
                notes.append(f"container {c.name}: endpoint on {ep.network} re-created (its veth was gone)")
                continue
            fixes = attachment_fixes(link, ep_net.bridge)
            if fixes:
                plan.add(
                    Step(
                        summary=f"re-attach {ep.host_veth} of container {c.name}: {', '.join(fixes)}",
                        do=ipk.batch(attach_lines(ep.host_veth, ep_net.bridge)),
                    )
                )
                notes.append(f"container {c.name}: veth {ep.host_veth} on {ep.network} repaired ({', '.join(fixes)})")

    text, fw_notes = firewall_diff(k.rules, d, clean=clean and not (kept_ns or kept_links))
    if text:
        plan.add(Step(summary="; ".join(fw_notes), do=ipt.restore(text)))
        # A UDP mapping put back clears the conntrack entries that kept its port elsewhere.
        plan.extend(udp_conntrack_flushes([p for cid in restored_ports(k.rules, d) for p in d.ports_by_container[cid]]))
    text6, fw6_notes = firewall_diff(k.rules6, d, clean=clean and not (kept_ns or kept_links), ipv6=True)
    if reconcile6.dual_stack(d) and k.ip6_forward not in ("1", None) and k.sysctl_writable:
        plan.add(Step(summary="enable IPv6 forwarding", do=ipk.sysctl_set("net.ipv6.conf.all.forwarding", "1")))
    if text6:
        plan.add(Step(summary="IPv6: " + "; ".join(fw6_notes), do=ip6t.restore(text6)))
    fw_notes += [f"IPv6: {n}" for n in fw6_notes]
    eb_text, eb_notes = spoof_diff(
        k.bridge_rules,
        base_wanted=bool(d.networks),
        expected={
            e.host_veth: eb.SpoofTarget(e.host_veth, e.mac, e.ip, e.ip6)
            for e in d.endpoints
            if d.stable_container(e.container_id)
        },
        owned=owned_veths(d),
        clean=clean,
    )
    if eb_text:
        plan.add(Step(summary="; ".join(eb_notes), do=eb.restore(eb_text)))
    return plan, notes + fw_notes + eb_notes


def owned_veths(d: Desired) -> set[str]:
    """Every endpoint's veth, and any veth a busy container may have on any network (an operation
    that started after the kernel was read may have removed its rows and rules already)."""
    owned = {e.host_veth for e in d.endpoints}
    owned |= {naming.host_veth_name(cid, n.id) for cid in d.busy_containers for n in d.networks}
    return owned


def restored_ports(rules: parse.Ruleset, d: Desired) -> list[str]:
    """Stable containers whose port rules the firewall diff puts back (missing or altered)."""
    out = []
    for cid, ports in sorted(d.ports_by_container.items()):
        if not d.stable_container(cid) or not ports:
            continue
        comment = naming.container_comment(cid)
        have = sorted(r.spec for r in rules.rules if r.comment == comment)
        if have != sorted(r.spec for r in port_rules(cid, ports)):
            out.append(cid)
    return out


def attachment_fixes(link: parse.Link, bridge: str) -> list[str]:
    """What is wrong with a container's host veth as a port of its bridge ([] = nothing)."""
    fixes = []
    if link.master != bridge:
        fixes.append(f"master {bridge} (was {link.master or 'none'})")
    if link.master != bridge or link.hairpin is not True:
        fixes.append("hairpin on")
    if not link.up:
        fixes.append("up")
    return fixes


def attach_lines(veth: str, bridge: str) -> list[str]:
    """The veth as `run` leaves it: a port of its bridge, hairpin on, up (each idempotent)."""
    return [
        f"link set {veth} master {bridge}",
        f"link set dev {veth} type bridge_slave hairpin on",
        f"link set {veth} up",
    ]


def dead_release_steps(k: Kernel, d: Desired) -> list[Step]:
    """--dry-run only (a real run has released them in recovery already): containers whose
    process and watcher are both gone."""
    steps: list[Step] = []
    for cid, c in d.containers.items():
        if d.stable_container(cid) and c.pid and cid not in k.live_containers and cid not in k.live_watchers:
            eps = [e for e in d.endpoints if e.container_id == cid]
            for s in release_steps(c, d.ports_by_container.get(cid, []), eps):
                steps.append(
                    Step(summary=f"release dead container {c.name}: {s.summary}", do=s.do, fallback=s.fallback)
                )
    return steps
