//! Memory a request frame may cost to decode: at most a small multiple of the frame, whatever
//! its shape. A counting allocator records the peak of live heap bytes while `read_frame`
//! decodes frames at the size cap; this binary has only this test so nothing else allocates
//! meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use conf::proto::{self, FrameError, Request, MAX_REQUEST};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::SeqCst) + by;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (so from System) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc` for `ptr`, and the caller guarantees `new_size` is valid.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as if the old block stayed until the new one was filled: the worst case
            // of a moving realloc.
            grew(new_size);
            LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A frame of exactly `MAX_REQUEST` body bytes: `head`, then `item` repeated, then `tail`,
/// padded with spaces.
fn frame(head: &str, item: &str, tail: &str) -> Vec<u8> {
    let mut body = head.as_bytes().to_vec();
    while body.len() + item.len() + tail.len() <= MAX_REQUEST {
        body.extend_from_slice(item.as_bytes());
    }
    body.extend_from_slice(tail.as_bytes());
    body.resize(MAX_REQUEST, b' ');
    let mut f = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    f.extend_from_slice(&body);
    f
}

/// Peak bytes allocated while decoding `frame`, above what was live before, and the outcome.
fn decode(frame: &[u8]) -> (usize, Result<Request, FrameError>) {
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let r = proto::read_frame::<_, Request>(&mut &frame[..], MAX_REQUEST);
    (PEAK.load(Ordering::SeqCst) - before, r)
}

#[test]
fn test_decoding_cost_is_bounded_by_the_frame() {
    // The buffer holding the body is one frame; decoding may add at most two more.
    let limit = 3 * MAX_REQUEST;
    let hostile = [
        ("body", frame(r#"{"version":1,"body":["#, "0,", "0]}")),
        (
            "batch of numbers",
            frame(
                r#"{"version":1,"body":{"op":"batch","requests":["#,
                "0,",
                "0]}}",
            ),
        ),
        (
            "unknown member",
            frame(r#"{"version":1,"body":{"op":"info","x":["#, "0,", "0]}}"),
        ),
        (
            "unknown envelope member",
            frame(r#"{"x":["#, "0,", r#"0],"version":1,"body":{"op":"info"}}"#),
        ),
        (
            "op last",
            frame(r#"{"version":1,"body":{"x":["#, "0,", r#"0],"op":"info"}}"#),
        ),
        (
            "deep nesting",
            frame(r#"{"version":1,"body":{"op":"info","x":"#, "[", ""),
        ),
        (
            "nested batches",
            frame(
                r#"{"version":1,"body":"#,
                r#"{"op":"batch","requests":["#,
                "",
            ),
        ),
        (
            "batch of clears",
            frame(
                r#"{"version":1,"body":{"op":"batch","requests":["#,
                r#"{"op":"clear"},"#,
                r#"{"op":"clear"}]}}"#,
            ),
        ),
    ];
    for (shape, frame) in &hostile {
        let (peak, outcome) = decode(frame);
        let outcome = match outcome {
            Ok(Request::Batch { requests }) => format!("a batch of {}", requests.len()),
            Ok(r) => format!("{r:?}"),
            Err(e) => e.to_string().chars().take(100).collect(),
        };
        println!(
            "{shape}: peak {} bytes = {:.2} x the frame; {outcome}",
            peak,
            peak as f64 / MAX_REQUEST as f64
        );
        assert!(
            peak <= limit,
            "{shape}: decoding took {peak} bytes, more than {limit}: {outcome}"
        );
    }
    // A frame announced at the cap whose body never comes holds no frame-sized buffer (in
    // the same test: this binary must allocate nothing else meanwhile).
    let mut announced = u32::try_from(MAX_REQUEST).unwrap().to_be_bytes().to_vec();
    announced.extend_from_slice(br#"{"version":1,"body""#);
    let (peak, outcome) = decode(&announced);
    assert!(matches!(outcome, Err(FrameError::Io(_))), "{outcome:?}");
    assert!(peak <= 128 * 1024, "an unsent body took {peak} bytes");
}
