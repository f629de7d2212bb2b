//! The packet buffer the pipeline works on. Pipeline stages see a [`Frame`], never an mbuf, so
//! they run unchanged on DPDK mbufs in `rvsd` and on [`VecFrame`]s in tests and benchmarks.

/// A contiguous Ethernet frame that can be read, rewritten in place, and grown or shrunk at
/// either end within the buffer's headroom and tailroom.
pub trait Frame {
    /// The frame bytes, from the Ethernet header on.
    fn data(&self) -> &[u8];
    /// The frame's length: `data().len()`, which a buffer may know more cheaply.
    #[inline]
    fn len(&self) -> usize {
        self.data().len()
    }
    /// Whether the frame is empty.
    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The frame bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Replaces the whole frame with `bytes`; false (frame unchanged) if it does not fit.
    fn set_data(&mut self, bytes: &[u8]) -> bool;
    /// Grows the frame by `len` bytes at the front (encapsulation); the new bytes are
    /// unspecified. False (frame unchanged) without enough headroom.
    fn prepend(&mut self, len: usize) -> bool;
    /// Removes `len` bytes from the front (decapsulation). False (unchanged) if shorter.
    fn adj(&mut self, len: usize) -> bool;
    /// Grows the frame by `len` bytes at the end; the new bytes are unspecified. False
    /// (unchanged) without enough tailroom.
    fn append(&mut self, len: usize) -> bool;
    /// Removes `len` bytes from the end. False (unchanged) if shorter.
    fn trim(&mut self, len: usize) -> bool;
}

/// A heap-backed frame for tests and benchmarks, with headroom and tailroom like an mbuf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VecFrame {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl VecFrame {
    /// Headroom of a fresh frame, DPDK's `RTE_PKTMBUF_HEADROOM`.
    pub const HEADROOM: usize = 128;
    /// Total buffer size of a fresh frame (data room of a default DPDK mbuf, headroom included).
    pub const BUF_LEN: usize = 2176;

    /// A frame holding `bytes` with [`Self::HEADROOM`] in front and the rest of
    /// [`Self::BUF_LEN`] (at least none) behind.
    pub fn new(bytes: impl AsRef<[u8]>) -> Self {
        let bytes = bytes.as_ref();
        let len = (Self::HEADROOM + bytes.len()).max(Self::BUF_LEN);
        let mut buf = vec![0; len];
        buf[Self::HEADROOM..Self::HEADROOM + bytes.len()].copy_from_slice(bytes);
        VecFrame {
            buf,
            start: Self::HEADROOM,
            end: Self::HEADROOM + bytes.len(),
        }
    }

    /// Replaces the frame with `bytes` at the fresh frame's offset, as a newly received mbuf
    /// has it: the headroom an earlier encapsulation used is back (a benchmark reuses one
    /// frame for every packet). False (frame unchanged) if it does not fit.
    pub fn reset(&mut self, bytes: &[u8]) -> bool {
        let start = self.start;
        self.start = Self::HEADROOM;
        if self.set_data(bytes) {
            return true;
        }
        self.start = start;
        false
    }

    /// The frame's bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf[self.start..self.end].to_vec()
    }
}

impl Frame for VecFrame {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    #[inline]
    fn len(&self) -> usize {
        self.end - self.start
    }

    fn set_data(&mut self, bytes: &[u8]) -> bool {
        if self.start + bytes.len() > self.buf.len() {
            return false;
        }
        self.end = self.start + bytes.len();
        self.buf[self.start..self.end].copy_from_slice(bytes);
        true
    }

    fn prepend(&mut self, len: usize) -> bool {
        match self.start.checked_sub(len) {
            Some(start) => {
                self.start = start;
                true
            }
            None => false,
        }
    }

    fn adj(&mut self, len: usize) -> bool {
        if len > self.end - self.start {
            return false;
        }
        self.start += len;
        true
    }

    fn append(&mut self, len: usize) -> bool {
        if self.end + len > self.buf.len() {
            return false;
        }
        self.end += len;
        true
    }

    fn trim(&mut self, len: usize) -> bool {
        if len > self.end - self.start {
            return false;
        }
        self.end -= len;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_and_tailroom_bound_growth() {
        let mut f = VecFrame::new([1, 2, 3]);
        assert!(f.prepend(VecFrame::HEADROOM));
        assert!(!f.prepend(1));
        assert_eq!(f.data().len(), VecFrame::HEADROOM + 3);
        assert!(f.adj(VecFrame::HEADROOM));
        assert_eq!(f.data(), &[1, 2, 3]);
        assert!(f.append(VecFrame::BUF_LEN - VecFrame::HEADROOM - 3));
        assert!(!f.append(1));
        assert!(f.trim(VecFrame::BUF_LEN - VecFrame::HEADROOM - 3));
        assert!(!f.trim(4));
        assert!(!f.adj(4));
        assert_eq!(f.clone().into_bytes(), vec![1, 2, 3]);
        assert!(f.set_data(&[9; 10]));
        assert_eq!(f.data(), &[9; 10]);
        // reset: the headroom is back after a prepend.
        assert!(f.prepend(20));
        assert!(f.reset(&[7; 4]));
        assert_eq!(f.data(), &[7; 4]);
        assert!(f.prepend(VecFrame::HEADROOM));
        assert!(!f.prepend(1));
    }
}
