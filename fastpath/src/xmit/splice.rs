//! Changing a frame's length: growing or shrinking it at either end ([`resize`], for
//! encapsulation and the ICMP answers) and opening or closing a gap inside it ([`splice`], for
//! TOA options and PROXY protocol headers). All or nothing: on failure the frame is unchanged.

use crate::frame::Frame;
use crate::verdict::DropReason;

/// Grow `frame` by `front` bytes at the front and shrink it by `back` bytes at the end, or
/// leave it unchanged.
pub(crate) fn resize<F: Frame + ?Sized>(
    frame: &mut F,
    front: usize,
    back: usize,
) -> Result<(), DropReason> {
    if !frame.prepend(front) {
        return Err(DropReason::NoHeadroom);
    }
    if !frame.trim(back) {
        // Not reached when `back` was computed from the frame's length; undo the prepend.
        frame.adj(front);
        return Err(DropReason::Truncated);
    }
    Ok(())
}

/// Replace the `remove` bytes at offset `at` of `frame` with a gap of `insert` bytes (content
/// unspecified, for the caller to write), moving the bytes from `at + remove` to `end` (the
/// packet's end) along; the frame then ends at the moved bytes' end (Ethernet padding after
/// `end` is dropped, see [`xmit`](super)). For TOA and the PROXY protocol.
///
/// Growth uses the headroom (moving the bytes before `at` to the front) or the tailroom
/// (moving the bytes after the gap to the back), whichever moves fewer bytes first, the other
/// if that fails; padding is used before any tailroom. Shrinking moves the tail back. False,
/// and the frame unchanged, if neither has room or the offsets do not fit the frame.
pub(crate) fn splice<F: Frame + ?Sized>(
    frame: &mut F,
    at: usize,
    end: usize,
    remove: usize,
    insert: usize,
) -> bool {
    let len = frame.data().len();
    let (Some(tail), Some(new_end)) = (
        at.checked_add(remove),
        end.checked_sub(remove).and_then(|e| e.checked_add(insert)),
    ) else {
        return false;
    };
    let (Some(tail_len), Some(gap_end)) = (end.checked_sub(tail), at.checked_add(insert)) else {
        return false;
    };
    if end > len {
        return false;
    }
    let Some(grow) = insert.checked_sub(remove).filter(|&grow| grow > 0) else {
        // Shrinking (or the same size): the tail moves back within the frame.
        return move_within(frame.data_mut(), tail..end, gap_end) && trim_to(frame, new_end);
    };
    let front_first = at <= tail_len;
    for front in [front_first, !front_first] {
        if front {
            if frame.prepend(grow) {
                // Every old byte is now `grow` further: bring the head back to the start.
                let Some(head_end) = grow.checked_add(at) else {
                    return false;
                };
                return move_within(frame.data_mut(), grow..head_end, 0) && trim_to(frame, new_end);
            }
        } else {
            let padding = len.saturating_sub(end);
            if padding < grow && !frame.append(grow.saturating_sub(padding)) {
                continue;
            }
            return move_within(frame.data_mut(), tail..end, gap_end) && trim_to(frame, new_end);
        }
    }
    false
}

/// Copy `src` to `dst` within `buf` (overlap allowed); false, nothing copied, if either does
/// not fit.
fn move_within(buf: &mut [u8], src: core::ops::Range<usize>, dst: usize) -> bool {
    let fits = src.start <= src.end
        && src.end <= buf.len()
        && dst
            .checked_add(src.end.saturating_sub(src.start))
            .is_some_and(|end| end <= buf.len());
    if fits {
        buf.copy_within(src, dst);
    }
    fits
}

/// Trim `frame` to `len` bytes (no-op if not longer).
fn trim_to<F: Frame + ?Sized>(frame: &mut F, len: usize) -> bool {
    let excess = frame.data().len().saturating_sub(len);
    excess == 0 || frame.trim(excess)
}

/// The frame offset of the TCP header of the checked IPv4 packet `ip`, and of its end.
pub(crate) fn tcp_offsets(ip: &crate::wire::ipv4::Packet<&[u8]>) -> Option<(usize, usize)> {
    let start = crate::wire::ether::HEADER_LEN.checked_add(ip.header_len())?;
    let end = crate::wire::ether::HEADER_LEN.checked_add(usize::from(ip.total_len()))?;
    Some((start, end))
}

/// A frame with chosen headroom and tailroom, for the tests of the rewrites that resize.
#[cfg(test)]
pub(crate) mod test_frame {
    use crate::frame::Frame;

    /// A frame over a buffer with `start` bytes of headroom and `buf.len() - end` of
    /// tailroom.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RoomFrame {
        buf: Vec<u8>,
        start: usize,
        end: usize,
    }

    impl RoomFrame {
        pub fn new(bytes: &[u8], headroom: usize, tailroom: usize) -> RoomFrame {
            let mut buf = vec![0xcc; headroom + bytes.len() + tailroom];
            buf[headroom..headroom + bytes.len()].copy_from_slice(bytes);
            RoomFrame {
                buf,
                start: headroom,
                end: headroom + bytes.len(),
            }
        }

        pub fn headroom(&self) -> usize {
            self.start
        }

        pub fn tailroom(&self) -> usize {
            self.buf.len() - self.end
        }
    }

    impl Frame for RoomFrame {
        fn data(&self) -> &[u8] {
            &self.buf[self.start..self.end]
        }
        fn data_mut(&mut self) -> &mut [u8] {
            &mut self.buf[self.start..self.end]
        }
        fn set_data(&mut self, _: &[u8]) -> bool {
            unreachable!("not used by the rewrites")
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
}

#[cfg(test)]
mod tests {
    use super::test_frame::RoomFrame;
    use super::*;

    #[test]
    fn splice_uses_headroom_or_tailroom() {
        let bytes: Vec<u8> = (0..40).collect();
        let expected: Vec<u8> = (0..10).chain([0xcc; 4]).chain(11..30).collect();
        // Insert 4 bytes at 10 in place of byte 10, the packet ending at 30 (10 bytes of
        // padding). The head (10 bytes) is shorter than the tail (16): headroom first.
        for (headroom, tailroom, via) in [(8, 8, "headroom"), (0, 8, "padding"), (8, 0, "headroom")]
        {
            let mut frame = RoomFrame::new(&bytes, headroom, tailroom);
            assert!(splice(&mut frame, 10, 30, 1, 4), "{via}");
            let mut got = frame.data().to_vec();
            got[10..14].fill(0xcc);
            assert_eq!(got, expected, "{via}");
        }
        // No padding: the tailroom is used when there is no headroom; nothing when neither.
        let mut frame = RoomFrame::new(&bytes, 0, 3);
        assert!(splice(&mut frame, 10, 40, 1, 4));
        assert_eq!(frame.data().len(), 43);
        assert_eq!(frame.tailroom(), 0);
        assert_eq!(&frame.data()[14..], &bytes[11..]);
        let mut frame = RoomFrame::new(&bytes, 2, 2);
        let before = frame.clone();
        assert!(!splice(&mut frame, 10, 40, 1, 4));
        assert_eq!(frame, before);
        // A long head: tailroom first, headroom untouched.
        let mut frame = RoomFrame::new(&bytes, 8, 8);
        assert!(splice(&mut frame, 30, 40, 0, 4));
        assert_eq!(frame.headroom(), 8);
        assert_eq!(&frame.data()[34..], &bytes[30..]);
        assert_eq!(&frame.data()[..30], &bytes[..30]);
        // Shrinking: the tail moves back, the padding goes.
        let mut frame = RoomFrame::new(&bytes, 0, 0);
        assert!(splice(&mut frame, 10, 30, 8, 4));
        let want: Vec<u8> = (0..10).chain(10..14).chain(18..30).collect();
        assert_eq!(frame.data(), &want[..]);
        // Offsets outside the frame.
        let mut frame = RoomFrame::new(&bytes, 8, 8);
        assert!(!splice(&mut frame, 10, 41, 0, 4));
        assert!(!splice(&mut frame, 30, 20, 0, 4));
        assert!(!splice(&mut frame, 10, 20, 11, 4));
        assert_eq!(frame, RoomFrame::new(&bytes, 8, 8));
    }
}
