"""Parts of the schema kept as plain data (cnet.db.schema builds the tables from them): the
constraint naming convention, and the IPv6 columns of `networks` (dual-stack networks,
`net create --ipv6`), nullable String columns (NULL on an IPv4-only network).

Addresses IPAM compares are stored as 32 lower-case hex digits: text order is numeric order, so
the primary key and range checks work as they do on IPv4's integers (128 bits do not fit SQLite's
64-bit integers)."""

from __future__ import annotations

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# (column, length, comment)
IPV6_NETWORK_COLUMNS: tuple[tuple[str, int, str], ...] = (
    ("subnet6", 43, "IPv6 subnet in CIDR form (--ipv6), NULL = IPv4 only"),
    ("subnet6_first", 32, "first address of subnet6 as 32 hex digits (overlap checks)"),
    ("subnet6_last", 32, "last address of subnet6 as 32 hex digits (overlap checks)"),
    ("gateway6", 39, "IPv6 gateway address, held by the bridge"),
    ("ip_range6", 43, "IPv6 sub-range for dynamic allocation (CIDR), NULL = whole subnet6"),
    ("range6_first", 32, "first IPv6 address IPAM may hand out dynamically, 32 hex digits"),
    ("range6_last", 32, "last IPv6 address IPAM may hand out dynamically, 32 hex digits"),
    ("alloc6_cursor", 32, "IPv6 next-fit cursor: the address handed out last, 32 hex digits"),
)
