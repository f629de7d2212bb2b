//! The client side of the control socket.
//!
//! rvsd closes a connection that stays idle for a few seconds between requests and refuses
//! one when all its client slots are taken, answering "too many control clients" and closing.
//! So a client reads an answer even when its own write failed (the refusal is waiting in its
//! receive buffer), and reconnects once when a connection it had already used was closed
//! before rvsd took the next request.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use conf::proto::{self, FrameError, Request, Response, MAX_RESPONSE};

/// How long the client waits for rvsd to take a request or answer it.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to rvsd.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    stream: UnixStream,
    /// Whether a request was answered on `stream` (so rvsd may since have closed it as idle).
    used: bool,
}

/// Why an exchange got no answer.
enum Unanswered {
    /// rvsd had closed the connection before the request was written: it never saw it.
    NotSent(io::Error),
    /// rvsd closed the connection after the request was written, without answering.
    Closed,
    /// Anything else.
    Failed(FrameError),
}

fn open(path: &Path) -> io::Result<UnixStream> {
    let stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    Ok(stream)
}

/// The peer is gone: what writing to a connection rvsd has closed reports.
fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> io::Result<Client> {
        Ok(Client {
            path: path.to_path_buf(),
            stream: open(path)?,
            used: false,
        })
    }

    /// Sends `request` and reads its response.
    pub fn call(&mut self, request: &Request) -> Result<Response, FrameError> {
        let answer = match self.exchange(request) {
            // Closed while idle. A request that was written may have been carried out before
            // the connection broke, so only one rvsd never saw, or one that is harmless to
            // repeat (a query, not a batch or a daemon start), is sent again.
            Err(Unanswered::NotSent(_)) if self.used => self.reconnect(request),
            Err(Unanswered::Closed) if self.used && request.is_idempotent() => {
                self.reconnect(request)
            }
            other => other,
        };
        match answer {
            Ok(r) => {
                self.used = true;
                Ok(r)
            }
            Err(Unanswered::NotSent(e)) => Err(FrameError::Io(e)),
            Err(Unanswered::Closed) => Err(FrameError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "rvsd closed the connection without answering",
            ))),
            Err(Unanswered::Failed(e)) => Err(e),
        }
    }

    fn reconnect(&mut self, request: &Request) -> Result<Response, Unanswered> {
        self.stream = open(&self.path).map_err(|e| Unanswered::Failed(FrameError::Io(e)))?;
        self.used = false;
        self.exchange(request)
    }

    fn exchange(&mut self, request: &Request) -> Result<Response, Unanswered> {
        // The write error, when rvsd had closed the connection.
        let unsent = match proto::write_frame(&mut self.stream, request) {
            Ok(()) => None,
            Err(e) if peer_gone(&e) => Some(e),
            Err(e) => return Err(Unanswered::Failed(FrameError::Io(e))),
        };
        let no_answer = |unsent: Option<io::Error>| match unsent {
            Some(e) => Unanswered::NotSent(e),
            None => Unanswered::Closed,
        };
        // Even when the write failed, rvsd may have answered before it closed (a refusal).
        match proto::read_frame(&mut self.stream, MAX_RESPONSE) {
            Ok(r) => Ok(r),
            Err(FrameError::Closed) => Err(no_answer(unsent)),
            Err(FrameError::Io(e)) if peer_gone(&e) => Err(no_answer(unsent)),
            Err(e) => Err(Unanswered::Failed(e)),
        }
    }
}
