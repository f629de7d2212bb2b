//! The control socket: a UNIX stream socket that answers framed requests
//! ([`conf::proto`]) with a [`Handler`].
//!
//! - Start: the parent directory is created if missing; a socket file nobody listens on
//!   (left by a crash) is replaced, but a live one (another rvsd) or a file that is not a
//!   socket makes the start fail. The socket is bound under a temporary name, made mode 0600
//!   and renamed into place, so it is never reachable with wider permissions.
//! - Clients: one thread each, up to [`Options::max_clients`] at a time; one more gets the
//!   error reply "too many control clients" and is closed (the reply waits in its receive
//!   buffer, so a client can read it even when its own write failed). A client may send many
//!   requests on one connection.
//! - Idle clients: a connection on which no request starts within [`Options::idle`] (after
//!   connecting or after its last answer) is closed without a reply, so clients that connect
//!   and wait cannot hold the slots for long. Clients reconnect for their next request.
//! - Bad input: a frame, once started, must arrive within [`Options::timeout`]. A malformed
//!   message or one of another protocol version gets an error reply and the connection stays
//!   usable; an oversized length prefix gets an error reply and the connection is closed (the
//!   stream cannot be resynchronised); a client that stalls inside a frame gets "request timed
//!   out" and is closed, one that disconnects is dropped. In none of these cases is the
//!   handler called, so nothing changes. The time the handler takes is not limited.
//! - Stop: [`Server::stop`] (or drop) stops accepting and removes the socket file if it is
//!   still the one this server created. Requests already being handled finish.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use conf::proto::{self, FrameError, Request, Response, MAX_REQUEST, MAX_RESPONSE};

/// What rvsd does with a request. Called from the client threads, concurrently.
pub trait Handler: Send + Sync + 'static {
    /// Answers `request`. A change that fails must leave everything as it was.
    fn handle(&self, request: Request) -> Response;
}

/// Limits of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Time a client may stay connected without starting a request.
    pub idle: Duration,
    /// Time a client has to send the rest of a request once its first byte came (and to
    /// take each write of a response).
    pub timeout: Duration,
    /// Clients connected at once.
    pub max_clients: usize,
    /// Largest request body.
    pub max_request: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            idle: Duration::from_secs(3),
            timeout: Duration::from_secs(5),
            max_clients: 64,
            max_request: MAX_REQUEST,
        }
    }
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// Another process accepts connections on the path.
    Live(PathBuf),
    /// The path exists and is not a socket; it is left alone.
    NotSocket(PathBuf),
    /// A file system or socket call failed.
    Io {
        /// What was being done.
        action: String,
        /// The error.
        source: io::Error,
    },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Live(p) => write!(
                f,
                "{} is in use: another rvsd is running (stop it or choose another [control] socket)",
                p.display()
            ),
            StartError::NotSocket(p) => write!(
                f,
                "{} exists and is not a socket; not replacing it",
                p.display()
            ),
            StartError::Io { action, source } => write!(f, "{action}: {source}"),
        }
    }
}

impl std::error::Error for StartError {}

fn io_err(action: impl Into<String>) -> impl FnOnce(io::Error) -> StartError {
    let action = action.into();
    move |source| StartError::Io { action, source }
}

/// A running control socket.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    /// Device and inode of the socket file, to remove only our own at stop.
    id: (u64, u64),
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `path` with `handler` and the default [`Options`].
    pub fn start(path: impl AsRef<Path>, handler: Arc<dyn Handler>) -> Result<Server, StartError> {
        Server::start_with(path, handler, Options::default())
    }

    /// Serves `path` with `handler` within `options`.
    pub fn start_with(
        path: impl AsRef<Path>,
        handler: Arc<dyn Handler>,
        options: Options,
    ) -> Result<Server, StartError> {
        let path = path.as_ref().to_path_buf();
        let listener = bind(&path)?;
        let meta =
            fs::symlink_metadata(&path).map_err(io_err(format!("stat {}", path.display())))?;
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("rvs-control".into())
                .spawn(move || accept_loop(listener, handler, options, &stop))
                .map_err(io_err("start the control thread"))?
        };
        Ok(Server {
            path,
            id: (meta.dev(), meta.ino()),
            stop,
            accept: Some(accept),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting and removes the socket file.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        let ours = fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if !ours {
            // Someone replaced the file: nothing can reach our accept() any more, so its
            // thread stays blocked until the process ends; the file is not ours to remove.
            return;
        }
        // accept() blocks; a connection of our own wakes it to see the flag.
        if UnixStream::connect(&self.path).is_ok() {
            let _ = accept.join();
        }
        let _ = fs::remove_file(&self.path);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Creates the socket at `path` as the module docs describe.
fn bind(path: &Path) -> Result<UnixListener, StartError> {
    let shown = path.display();
    let name = path
        .file_name()
        .ok_or_else(|| StartError::Io {
            action: format!("socket path {shown}"),
            source: io::Error::new(io::ErrorKind::InvalidInput, "no file name"),
        })?
        .to_string_lossy()
        .into_owned();
    let dir = path.parent().unwrap_or(Path::new(""));
    if !dir.as_os_str().is_empty() && !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(io_err(format!("create {}", dir.display())))?;
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => return Err(StartError::Live(path.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                fs::remove_file(path).map_err(io_err(format!("remove stale socket {shown}")))?
            }
            Err(e) => return Err(io_err(format!("probe {shown}"))(e)),
        },
        Ok(_) => return Err(StartError::NotSocket(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("stat {shown}"))(e)),
    }
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    if fs::symlink_metadata(&tmp).is_ok_and(|m| m.file_type().is_socket()) {
        fs::remove_file(&tmp).map_err(io_err(format!("remove {}", tmp.display())))?;
    }
    let listener = UnixListener::bind(&tmp).map_err(io_err(format!("bind {}", tmp.display())))?;
    let placed = fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
        .map_err(io_err(format!("chmod 0600 {}", tmp.display())))
        .and_then(|()| fs::rename(&tmp, path).map_err(io_err(format!("rename to {shown}"))));
    if let Err(e) = placed {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(listener)
}

fn accept_loop(
    listener: UnixListener,
    handler: Arc<dyn Handler>,
    options: Options,
    stop: &AtomicBool,
) {
    let clients = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(_) => {
                // Out of descriptors or similar: give the clients time to finish.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if clients.load(Ordering::SeqCst) >= options.max_clients {
            let _ = stream.set_write_timeout(Some(options.timeout));
            let _ = proto::write_frame(
                &mut &stream,
                &Response::error(format!(
                    "too many control clients ({} connected); try again",
                    options.max_clients
                )),
            );
            continue;
        }
        clients.fetch_add(1, Ordering::SeqCst);
        let guard = ClientSlot(Arc::clone(&clients));
        let handler = Arc::clone(&handler);
        let spawned = thread::Builder::new()
            .name("rvs-control-client".into())
            .spawn(move || {
                let _guard = guard;
                serve_client(&stream, handler.as_ref(), options);
            });
        if spawned.is_err() {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Frees a client slot when its thread ends, however it ends.
struct ClientSlot(Arc<AtomicUsize>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reads one frame with two deadlines: [`Options::idle`] until its first byte, then
/// [`Options::timeout`] for the rest, so a client can neither wait long nor hold a thread by
/// sending a byte at a time.
struct DeadlineReader<'a> {
    stream: &'a UnixStream,
    options: Options,
    waiting_since: Instant,
    /// When the first byte of the frame came.
    started: Option<Instant>,
}

impl DeadlineReader<'_> {
    fn deadline(&self) -> Instant {
        match self.started {
            None => self.waiting_since + self.options.idle,
            Some(t) => t + self.options.timeout,
        }
    }
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "request timed out");
        let left = self.deadline().saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut s = self.stream;
        match s.read(buf) {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(timed_out())
            }
            Ok(n) => {
                if n > 0 && self.started.is_none() {
                    self.started = Some(Instant::now());
                }
                Ok(n)
            }
            r => r,
        }
    }
}

fn serve_client(stream: &UnixStream, handler: &dyn Handler, options: Options) {
    if stream.set_write_timeout(Some(options.timeout)).is_err() {
        return;
    }
    loop {
        let mut reader = DeadlineReader {
            stream,
            options,
            waiting_since: Instant::now(),
            started: None,
        };
        let read = proto::read_frame::<_, Request>(&mut reader, options.max_request);
        let (response, keep) = match read {
            Ok(request) => (handler.handle(request), true),
            Err(FrameError::Closed) => return,
            // Idle: no request is under way, so there is nothing to answer.
            Err(FrameError::Io(_)) if reader.started.is_none() => return,
            Err(e @ (FrameError::Malformed(_) | FrameError::Version(_))) => {
                (Response::error(e.to_string()), true)
            }
            // Oversized, cut short or stalled: the stream is out of step, so answer (if the
            // client still listens) and close.
            Err(e @ (FrameError::TooLarge { .. } | FrameError::Io(_))) => {
                (Response::error(e.to_string()), false)
            }
        };
        if send(stream, &response).is_err() || !keep {
            return;
        }
    }
}

fn send(stream: &UnixStream, response: &Response) -> io::Result<()> {
    let frame = proto::encode_frame(response)?;
    let frame = if frame.len() - 4 > MAX_RESPONSE {
        proto::encode_frame(&Response::error(format!(
            "the answer of {} bytes exceeds the protocol limit of {MAX_RESPONSE} bytes",
            frame.len() - 4
        )))?
    } else {
        frame
    };
    io::Write::write_all(&mut &*stream, &frame)
}
