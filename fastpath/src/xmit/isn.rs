//! Initial sequence numbers of FULLNAT connections towards the real servers (RFC 6528), and
//! their secret.

use siphasher::sip::SipHasher24;
use std::hash::Hasher;
use std::net::SocketAddrV4;

/// The secret of [`initial_seq`]: 128 random bits, chosen once at start-up and shared by
/// every worker (so a retransmitted SYN handed to another worker would get the same ISN).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IsnKey(pub [u64; 2]);

impl core::fmt::Debug for IsnKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IsnKey(..)")
    }
}

/// Return the initial sequence number of a FULLNAT connection towards the real server, from
/// `local` (`LIP:lport`) to `real` (`RIP:rport`), at time `now_ns` (nanoseconds of any
/// monotonic clock the caller reads once per burst).
///
/// RFC 6528, as Linux `secure_tcp_seq` and DPVS `tcp_secure_sequence_number` do:
/// `ISN = F(LIP, RIP, lport, rport, key) + now_ns / 64`, with F = SipHash-2-4 (Linux's
/// choice; DPVS uses one byte of a SHA-1) truncated to 32 bits, and the 64 ns clock of both.
/// Pure: no clock, no random source inside; equal inputs give equal results.
///
/// The client's ISN is deliberately not an input: for a given `LIP:lport → RIP:rport` the
/// ISN must grow with time, because the real server may still hold that four-tuple in
/// TIME_WAIT when the pool hands the pair out again, and (timestamps being removed from the
/// SYN) Linux accepts the new SYN there only if its sequence number is after the old
/// connection's (`tcp_timewait_state_process`). Mixing in the client's random ISN would make
/// that a coin toss. The delta to the client's ISN is
/// [`TcpSeq::new`](crate::conn::TcpSeq::new)'s business.
pub fn initial_seq(local: SocketAddrV4, real: SocketAddrV4, key: &IsnKey, now_ns: u64) -> u32 {
    let [l0, l1, l2, l3] = local.ip().octets();
    let [r0, r1, r2, r3] = real.ip().octets();
    let [lp0, lp1] = local.port().to_be_bytes();
    let [rp0, rp1] = real.port().to_be_bytes();
    let message = [l0, l1, l2, l3, r0, r1, r2, r3, lp0, lp1, rp0, rp1];
    // Truncations intended: the low 32 bits of the hash, the clock modulo 2^32 ticks.
    (siphash(key, &message) as u32).wrapping_add((now_ns >> 6) as u32)
}

impl IsnKey {
    /// A fresh key from the operating system's random source (`getrandom`).
    ///
    /// # Errors
    /// The random source's, when it cannot be read.
    pub fn random() -> Result<IsnKey, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        let (k0, k1) = bytes.split_at(8);
        let word = |b: &[u8]| <[u8; 8]>::try_from(b).map_or(0, u64::from_le_bytes);
        Ok(IsnKey([word(k0), word(k1)]))
    }
}

/// SipHash-2-4 of `message` with `key`, the 64-bit output.
fn siphash(key: &IsnKey, message: &[u8]) -> u64 {
    let mut hasher = SipHasher24::new_with_keys(key.0[0], key.0[1]);
    hasher.write(message);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 100), 5003);
    const REAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 3), 8080);

    #[test]
    fn initial_seq_is_deterministic_and_keyed() {
        let key = IsnKey([0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908]);
        let isn = initial_seq(LOCAL, REAL, &key, 1_000_000);
        assert_eq!(isn, initial_seq(LOCAL, REAL, &key, 1_000_000));
        // Every input matters.
        let other_port = SocketAddrV4::new(*LOCAL.ip(), LOCAL.port() + 1);
        let other_ip = SocketAddrV4::new(Ipv4Addr::new(10, 1, 0, 101), LOCAL.port());
        let other_real = SocketAddrV4::new(*REAL.ip(), REAL.port() + 1);
        for (name, value) in [
            ("lport", initial_seq(other_port, REAL, &key, 1_000_000)),
            ("lip", initial_seq(other_ip, REAL, &key, 1_000_000)),
            ("rport", initial_seq(LOCAL, other_real, &key, 1_000_000)),
            ("key", initial_seq(LOCAL, REAL, &IsnKey([1, 2]), 1_000_000)),
        ] {
            assert_ne!(value, isn, "{name}");
        }
        // The clock: + 1 per 64 ns, for the same four-tuple.
        assert_eq!(
            initial_seq(LOCAL, REAL, &key, 1_000_000 + 64 * 1000),
            isn.wrapping_add(1000)
        );
        assert_eq!(initial_seq(LOCAL, REAL, &key, 1_000_000 + 63), isn);
        assert_eq!(format!("{key:?}"), "IsnKey(..)");
    }

    #[test]
    #[allow(deprecated)]
    fn siphash_matches_the_reference() {
        use std::hash::{Hasher, SipHasher};
        // The SipHash paper's test vector: key 00..0f, message 00..0e.
        let key = IsnKey([0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908]);
        let message: Vec<u8> = (0..15).collect();
        assert_eq!(siphash(&key, &message), 0xa129_ca61_49be_45e5);
        // And std's SipHasher (SipHash-2-4) on every length up to 24.
        for len in 0..=24 {
            let message: Vec<u8> = (0..len).map(|i| i * 7 + 3).collect();
            let mut std = SipHasher::new_with_keys(key.0[0], key.0[1]);
            std.write(&message);
            assert_eq!(siphash(&key, &message), std.finish(), "length {len}");
        }
    }

    #[test]
    fn random_keys_differ() {
        let (a, b) = (IsnKey::random().unwrap(), IsnKey::random().unwrap());
        assert_ne!(a, b);
    }
}
