//! The packet buffer the pipeline works on. Pipeline stages see a [`Frame`], never an mbuf, so
//! they run unchanged on DPDK mbufs in `rvsd` and on [`VecFrame`]s in tests and benchmarks.

/// A contiguous Ethernet frame that can be read and rewritten in place.
pub trait Frame {
    /// The frame bytes, from the Ethernet header on.
    fn data(&self) -> &[u8];
    /// The frame bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Replaces the whole frame with `bytes`; false (frame unchanged) if it does not fit.
    fn set_data(&mut self, bytes: &[u8]) -> bool;
}

/// A heap-backed frame for tests and benchmarks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VecFrame {
    bytes: Vec<u8>,
}

impl VecFrame {
    /// A frame holding `bytes`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        VecFrame {
            bytes: bytes.into(),
        }
    }

    /// The frame's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl Frame for VecFrame {
    fn data(&self) -> &[u8] {
        &self.bytes
    }

    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    fn set_data(&mut self, bytes: &[u8]) -> bool {
        self.bytes.clear();
        self.bytes.extend_from_slice(bytes);
        true
    }
}
