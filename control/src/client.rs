//! The client side of the control socket.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use conf::proto::{self, FrameError, Request, Response, MAX_RESPONSE};

/// How long the client waits for rvsd to take a request or answer it.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to rvsd.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> io::Result<Client> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        Ok(Client { stream })
    }

    /// Sends `request` and reads its response.
    pub fn call(&mut self, request: &Request) -> Result<Response, FrameError> {
        proto::write_frame(&mut self.stream, request).map_err(FrameError::Io)?;
        match proto::read_frame(&mut self.stream, MAX_RESPONSE) {
            Err(FrameError::Closed) => Err(FrameError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "rvsd closed the connection without answering",
            ))),
            r => r,
        }
    }
}
