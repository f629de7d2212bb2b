//! What `rvsadm` does with a parsed command line: talk to rvsd, print ipvsadm's output and
//! return ipvsadm's exit status.
//!
//! Exit statuses, as ipvsadm's: 0 success; 2 a bad command line (`fail(2, ...)`) or no
//! connection to rvsd (ipvsadm's "Can't initialize ipvs"); 255 a popt error, the try-help
//! line, or a change rvsd refused (ipvsadm returns -1 from `main`); 1 a listing that failed.
//!
//! `-R` reads all of stdin first, parses every line as ipvsadm would (words split on
//! whitespace, the word `ipvsadm` or `rvsadm` ignored, `#` starting a comment), and sends
//! the changes as one batch that rvsd applies all or nothing. The first bad line stops it
//! with ipvsadm's message prefixed by `line N: `.

use std::io::{BufRead, Write};
use std::path::Path;

use conf::proto::{ConnEntry, Request, Response, ServiceKey};

use crate::cli::{self, Command, Format};
use crate::client::Client;
use crate::listing;
use crate::names::Names;

/// The process's standard streams (or a test's buffers).
pub struct Streams<'a> {
    /// Read by `-R`.
    pub stdin: &'a mut dyn BufRead,
    /// Listings.
    pub out: &'a mut dyn Write,
    /// Error messages.
    pub err: &'a mut dyn Write,
}

/// Exit status of a refused change (ipvsadm returns -1 from `main`).
const CHANGE_FAILED: i32 = 255;
/// Exit status of a failed listing (ipvsadm's `exit(1)`).
const LIST_FAILED: i32 = 1;
/// Exit status when rvsd cannot be reached (ipvsadm's "Can't initialize ipvs").
const NO_RVSD: i32 = 2;

const UNEXPECTED: &str = "rvsd gave an unexpected answer";

/// Why a command failed: the message for stderr and the exit status.
struct Failed {
    message: String,
    code: i32,
}

/// The connection to rvsd, made when the first request needs it, so that `-h` or a bad
/// command line never touch the socket.
struct Session<'a> {
    socket: &'a Path,
    client: Option<Client>,
}

impl Session<'_> {
    /// Sends `request`. An error answer fails with exit status `code` (and the batch index
    /// it names); an unreachable rvsd with [`NO_RVSD`].
    fn call(&mut self, request: &Request, code: i32) -> Result<Response, (Failed, Option<usize>)> {
        let client = match &mut self.client {
            Some(c) => c,
            None => {
                let c = Client::connect(self.socket).map_err(|e| {
                    let message = format!(
                        "Can't initialize ipvs: {e}\nAre you sure that rvsd is running and listening on {}?",
                        self.socket.display()
                    );
                    (Failed { message, code: NO_RVSD }, None)
                })?;
                self.client.insert(c)
            }
        };
        match client.call(request) {
            Ok(Response::Error { message, index }) => Err((Failed { message, code }, index)),
            Ok(r) => Ok(r),
            Err(e) => Err((
                Failed {
                    message: format!("rvsd: {e}"),
                    code,
                },
                None,
            )),
        }
    }

    /// [`Session::call`] for requests that are not batches.
    fn ask(&mut self, request: &Request, code: i32) -> Result<Response, Failed> {
        self.call(request, code).map_err(|(f, _)| f)
    }
}

fn unexpected(code: i32) -> Failed {
    Failed {
        message: UNEXPECTED.to_string(),
        code,
    }
}

/// Runs `rvsadm` with `args` (after the program name) and returns the exit status.
pub fn run(program: &str, args: &[String], names: &Names, io: &mut Streams) -> i32 {
    let invocation = match cli::parse(args, names) {
        Ok(i) => i,
        Err(e) => return fail(io, &e.message(program), e.exit_code()),
    };
    let mut session = Session {
        socket: &invocation.socket,
        client: None,
    };
    let s = &mut session;
    let outcome = match invocation.command {
        Command::Help => Ok(cli::usage(program)),
        Command::Version => Ok(cli::version()),
        Command::Change(request) | Command::Daemon(request) => match s.ask(&request, CHANGE_FAILED)
        {
            Ok(Response::Done) => Ok(String::new()),
            Ok(_) => Err(unexpected(CHANGE_FAILED)),
            Err(f) => Err(f),
        },
        Command::Restore => restore(program, s, io.stdin, names),
        Command::List { service, format } => list(s, service, &format, names),
        Command::ListConns { format } => return list_conns(s, io, &format, names),
        Command::ListTimeouts => match s.ask(&Request::GetTimeouts, LIST_FAILED) {
            Ok(Response::Timeouts { timeouts }) => Ok(listing::timeouts(&timeouts)),
            Ok(_) => Err(unexpected(LIST_FAILED)),
            Err(f) => Err(f),
        },
        Command::ListDaemons => match s.ask(&Request::GetDaemons, LIST_FAILED) {
            Ok(Response::Daemons { daemons }) => Ok(listing::daemons(&daemons)),
            Ok(_) => Err(unexpected(LIST_FAILED)),
            Err(f) => Err(f),
        },
        Command::Save { format } => {
            match s.ask(&Request::ListServices { service: None }, LIST_FAILED) {
                Ok(Response::Services { services }) => Ok(listing::save(&services, &format, names)),
                Ok(_) => Err(unexpected(LIST_FAILED)),
                Err(f) => Err(f),
            }
        }
        Command::GetLaddrs { service } => {
            match s.ask(&Request::GetLaddrs { service }, CHANGE_FAILED) {
                Ok(Response::Laddrs { services }) => Ok(listing::laddrs(&services)),
                Ok(_) => Err(unexpected(CHANGE_FAILED)),
                Err(f) => Err(f),
            }
        }
        Command::ListHealth => match s.ask(&Request::GetHealth, LIST_FAILED) {
            Ok(Response::Health { services }) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                Ok(listing::health(&services, now))
            }
            Ok(_) => Err(unexpected(LIST_FAILED)),
            Err(f) => Err(f),
        },
        Command::Drops { format } => match s.ask(&Request::GetWorkers, LIST_FAILED) {
            Ok(Response::Workers {
                workers,
                twins,
                owned,
                sync,
            }) => Ok(listing::workers(&workers, &twins, &owned, &sync, &format)),
            Ok(_) => Err(unexpected(LIST_FAILED)),
            Err(f) => Err(f),
        },
    };
    match outcome {
        Ok(text) => print(io, &text),
        Err(f) => fail(io, &f.message, f.code),
    }
}

fn print(io: &mut Streams, text: &str) -> i32 {
    // A closed pipe (`rvsadm -S | head`) ends the output; there is nobody to tell.
    match io
        .out
        .write_all(text.as_bytes())
        .and_then(|()| io.out.flush())
    {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn fail(io: &mut Streams, message: &str, code: i32) -> i32 {
    let _ = writeln!(io.err, "{message}");
    code
}

fn list(
    s: &mut Session,
    service: Option<ServiceKey>,
    format: &Format,
    names: &Names,
) -> Result<String, Failed> {
    let Response::Services { services } = s.ask(&Request::ListServices { service }, LIST_FAILED)?
    else {
        return Err(unexpected(LIST_FAILED));
    };
    if service.is_some() {
        return Ok(listing::list_services(&services, format, names));
    }
    match s.ask(&Request::Info, LIST_FAILED)? {
        Response::Info { info } => Ok(listing::list_all(&info, &services, format, names)),
        _ => Err(unexpected(LIST_FAILED)),
    }
}

/// `-L -c`, page by page so that a large table is never held whole.
fn list_conns(s: &mut Session, io: &mut Streams, format: &Format, names: &Names) -> i32 {
    let mut cursor = 0;
    let mut text = listing::conns_title();
    loop {
        let (conns, next): (Vec<ConnEntry>, Option<u64>) =
            match s.ask(&Request::ListConns { cursor }, LIST_FAILED) {
                Ok(Response::Conns { conns, next }) => (conns, next),
                Ok(_) => return fail(io, UNEXPECTED, LIST_FAILED),
                Err(f) => return fail(io, &f.message, f.code),
            };
        for c in &conns {
            text.push_str(&listing::conn(c, format, names));
        }
        if print(io, &text) != 0 {
            return 1;
        }
        text.clear();
        match next {
            None => return 0,
            Some(n) if n > cursor => cursor = n,
            Some(_) => {
                return fail(
                    io,
                    "rvsd: the connection listing went backwards",
                    LIST_FAILED,
                )
            }
        }
    }
}

/// The changes of a restore file with their line numbers, or the message and exit status of
/// the first bad line.
fn read_restore(
    program: &str,
    stdin: &mut dyn BufRead,
    names: &Names,
) -> Result<Vec<(usize, Request)>, (String, i32)> {
    let mut changes = Vec::new();
    for (i, line) in stdin.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| (format!("line {n}: cannot read: {e}"), 2))?;
        let words: Vec<String> = line
            .split_ascii_whitespace()
            .take_while(|w| !w.starts_with('#'))
            .filter(|w| *w != "ipvsadm" && *w != "rvsadm")
            .map(str::to_string)
            .collect();
        if words.is_empty() {
            continue;
        }
        match cli::parse_restore(&words, names) {
            Ok(r) => changes.push((n, r)),
            Err(e) => return Err((format!("line {n}: {}", e.message(program)), e.exit_code())),
        }
    }
    Ok(changes)
}

fn restore(
    program: &str,
    s: &mut Session,
    stdin: &mut dyn BufRead,
    names: &Names,
) -> Result<String, Failed> {
    let lines =
        read_restore(program, stdin, names).map_err(|(message, code)| Failed { message, code })?;
    if lines.is_empty() {
        return Ok(String::new());
    }
    let (numbers, requests): (Vec<usize>, Vec<Request>) = lines.into_iter().unzip();
    match s.call(&Request::Batch { requests }, CHANGE_FAILED) {
        Ok(Response::Done) => Ok(String::new()),
        Ok(_) => Err(unexpected(CHANGE_FAILED)),
        Err((mut f, Some(i))) if i < numbers.len() => {
            f.message = format!("line {}: {}", numbers[i], f.message);
            Err(f)
        }
        Err((f, _)) => Err(f),
    }
}
