//! What `[dataplane] conn_table_size` costs: the connection table is allocated whole at
//! start-up, once per worker, so its limit and its size in bytes are known before any
//! traffic. The data plane's table (`fastpath/src/conn/table.rs`) is built to these numbers
//! and its tests assert them.

/// Largest `conn_table_size`: the table keeps slab indices and a direction bit together in
/// the `u32` values of its index.
pub const MAX_CONN_TABLE_SIZE: u32 = 1 << 31;

/// Bytes of one entry: the slab entry (`Option<Conn<D>>` with an 8-byte `D`, one cache
/// line) and its slot in the array of FULLNAT sequence states (`TcpSeq`, 16).
pub const CONN_ENTRY_BYTES: u64 = 64 + 16;

/// Bytes of one IPv6 entry: two cache lines (the addresses take four times the room) and
/// its sequence state.
pub const CONN_ENTRY6_BYTES: u64 = 128 + 16;

/// `[dataplane] conn_table_size6` when the file gives none: a quarter of the IPv4 table's
/// entries (IPv6 traffic is the smaller share at most sites today), at least 1024, never
/// more than `conn_table_size`.
pub fn default_conn_table_size6(conn_table_size: u32) -> u32 {
    (conn_table_size / 4).max(conn_table_size.min(1024))
}

/// Bytes of one timer-wheel link; there is one per entry and one per wheel slot.
const WHEEL_LINK_BYTES: u64 = 8;

/// Wheel slots plus the due list, each with a sentinel link.
const WHEEL_SENTINELS: u64 = (1 << 16) + 1;

/// Keys the index holds per entry at most: a connection's in and out keys.
const INDEX_KEYS_PER_ENTRY: u64 = 2;

/// Slots of one index bucket, and the bucket's bytes (one cache line).
const INDEX_BUCKET_SLOTS: u64 = 10;
const INDEX_BUCKET_BYTES: u64 = 64;

/// Bytes one worker's connection table of `entries` entries allocates at start-up: slab
/// entries, wheel links and the index (`fastpath/src/conn/index.rs`: enough 10-slot buckets
/// for two keys per entry at most 80 % full, rounded up to a power of two, so 16 to 32 bytes
/// per entry).
pub fn conn_table_bytes(entries: u64) -> u64 {
    table_bytes(entries, CONN_ENTRY_BYTES)
}

/// [`conn_table_bytes`] for the IPv6 table.
pub fn conn_table6_bytes(entries: u64) -> u64 {
    table_bytes(entries, CONN_ENTRY6_BYTES)
}

fn table_bytes(entries: u64, entry_bytes: u64) -> u64 {
    let slab = entries.saturating_mul(entry_bytes);
    let wheel = entries
        .saturating_add(WHEEL_SENTINELS)
        .saturating_mul(WHEEL_LINK_BYTES);
    let slots = entries
        .saturating_mul(INDEX_KEYS_PER_ENTRY)
        .saturating_mul(10)
        .div_ceil(8)
        .max(INDEX_BUCKET_SLOTS);
    let buckets = slots.div_ceil(INDEX_BUCKET_SLOTS).next_power_of_two();
    let index = buckets.saturating_mul(INDEX_BUCKET_BYTES);
    slab.saturating_add(wheel).saturating_add(index)
}

/// `bytes` in the largest binary unit that keeps a number ≥ 1, with one decimal.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_conn_table_bytes() {
        // 2^20 entries: 2^18 buckets of 64 bytes, 16 bytes per entry; 104.5 bytes per entry
        // with the sentinels.
        let n = 1u64 << 20;
        assert_eq!(
            conn_table_bytes(n),
            n * 80 + (n + 65537) * 8 + (1 << 18) * 64
        );
        // Just above a power of two: twice the buckets, 32 bytes per entry.
        let n = (1u64 << 20) + 1;
        assert_eq!(
            conn_table_bytes(n),
            n * 80 + (n + 65537) * 8 + (1 << 19) * 64
        );
        assert_eq!(conn_table_bytes(1), 80 + 65538 * 8 + 64);
        assert_eq!(
            human_bytes(conn_table_bytes(u64::from(MAX_CONN_TABLE_SIZE))),
            "208.0 GiB"
        );
    }

    #[test]
    fn test_human_bytes() {
        assert_eq!(human_bytes(1000), "1000 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(100 << 20), "100.0 MiB");
        assert_eq!(human_bytes(u64::MAX), "16777216.0 TiB");
    }
}
