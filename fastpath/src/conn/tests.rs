//! Tests of the connection table. `tests/cases.rs` holds the behaviour every family shares
//! and is compiled once per family, as `v4::cases` and `v6::cases`: each family module gives
//! it its addresses (`addr`, `sa`, `netmask`, …, IPv4 addresses `a.b.c.d` becoming
//! `2001:db8::a.b.c.d` in IPv6) and adds its own tests (entry size, bytes per connection;
//! IPv6: keys, prefix templates, NAT64).

mod v4;
mod v6;
