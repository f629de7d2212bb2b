//! Peak memory of a control socket server fed hostile frames: the server runs in a child
//! process (this program with `--serve PATH`), N clients each send one frame of the chosen
//! shape at the frame cap, and the child's peak RSS (`VmHWM`) is printed.
//!
//!     cargo run -p control --example control_memory -- [clients] [shape]
//!
//! Shapes (each body is padded to [`MAX_REQUEST`] bytes): `body` = `{"version":1,"body":
//! [0,0,…]}`, `batch` = a batch whose requests are `[0,0,…]`, `unknown` = an info request with
//! an unknown member holding `[0,0,…]`, `clears` = a batch of `{"op":"clear"}` (legitimate
//! shape, largest parsed form per byte).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use conf::proto::{self, Request, Response, MAX_REQUEST, MAX_RESPONSE};
use control::server::{Handler, Options, Server};

struct Refuse;

impl Handler for Refuse {
    fn handle(&self, _: Request) -> Response {
        Response::error("handled")
    }
}

/// A frame of `shape` whose body is exactly `MAX_REQUEST` bytes.
fn frame(shape: &str) -> Vec<u8> {
    let (head, item, tail): (&str, &str, &str) = match shape {
        "body" => (r#"{"version":1,"body":["#, "0,", "0]}"),
        "batch" => (
            r#"{"version":1,"body":{"op":"batch","requests":["#,
            "0,",
            "0]}}",
        ),
        "unknown" => (r#"{"version":1,"body":{"op":"info","x":["#, "0,", "0]}}"),
        "clears" => (
            r#"{"version":1,"body":{"op":"batch","requests":["#,
            r#"{"op":"clear"},"#,
            r#"{"op":"clear"}]}}"#,
        ),
        other => panic!("unknown shape {other}"),
    };
    let mut body = head.as_bytes().to_vec();
    while body.len() + item.len() + tail.len() <= MAX_REQUEST {
        body.extend_from_slice(item.as_bytes());
    }
    body.extend_from_slice(tail.as_bytes());
    // Pad with whitespace, which JSON allows anywhere between tokens.
    body.resize(MAX_REQUEST, b' ');
    let mut f = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    f.extend_from_slice(&body);
    f
}

fn serve(path: &Path) {
    let options = Options {
        timeout: Duration::from_secs(120),
        ..Options::default()
    };
    let _server = Server::start_with(path, Arc::new(Refuse), options).unwrap();
    println!("ready");
    std::io::stdout().flush().unwrap();
    // Serve until the parent closes our stdin.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        return serve(Path::new(&args[2]));
    }
    let clients: usize = args.get(1).map_or(24, |n| n.parse().unwrap());
    let shape = args.get(2).map_or("body", String::as_str).to_string();
    let dir = std::env::temp_dir().join(format!("rvs-control-memory-{}", std::process::id()));
    let path = dir.join("rvsd.sock");
    let mut child = Command::new(&args[0])
        .arg("--serve")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let idle = peak_rss_kib(child.id());
    let frame = Arc::new(frame(&shape));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (frame, path) = (Arc::clone(&frame), path.clone());
            thread::spawn(move || {
                let mut s = UnixStream::connect(&path).unwrap();
                s.write_all(&frame).unwrap();
                match proto::read_frame::<_, Response>(&mut s, MAX_RESPONSE) {
                    Ok(Response::Error { message, .. }) => message,
                    other => format!("{other:?}"),
                }
            })
        })
        .collect();
    let answers: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let peak = peak_rss_kib(child.id());
    drop(child.stdin.take());
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{clients} clients x {} MiB frame ({shape}): server peak RSS {} MiB (idle {} MiB), {:.1} x the frames",
        MAX_REQUEST >> 20,
        peak >> 10,
        idle >> 10,
        (peak - idle) as f64 * 1024.0 / (clients * MAX_REQUEST) as f64
    );
    println!(
        "first answer: {}",
        answers[0].chars().take(120).collect::<String>()
    );
}
