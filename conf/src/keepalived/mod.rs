//! `rvsd --import-keepalived`: keepalived.conf's `virtual_server` blocks as rvs TOML.
//!
//! keepalived 2.2's syntax is read as keepalived reads it ([`lexer`]: comments, quoting,
//! braces, `include` globs relative to the including file), made a tree ([`parser`]) and
//! converted ([`convert`]) into `[[service]]`, `[[service.real]]` and
//! `[[service.real.check]]` tables with keepalived's keywords (the health-check schema). What
//! keepalived would derive from a default or an inherited value (a real server's port, its
//! forwarding method, the `retry` a checker takes from its real or virtual server) is written
//! out, so the TOML means what keepalived would have run. From `global_defs`, `lvs_timeouts`
//! becomes `[timeouts]` and `lvs_sync_daemon` `[sync]` (both roles at once, see
//! [`convert`]).
//!
//! IPv6 virtual and real servers convert as keepalived writes them (`virtual_server
//! 2001:db8::100 80`, `persistence_granularity 64` as a prefix length), and so does DPVS's
//! NAT64 (an IPv6 `FNAT` virtual server with IPv4 real servers and local addresses).
//!
//! Everything not converted is named with `file:line`:
//! - `note`: left to keepalived, which keeps running VRRP next to rvs (`global_defs`,
//!   `vrrp_instance`, `vrrp_sync_group`, `vrrp_script`, static addresses and routes, ...);
//! - `warning`: converted as keepalived itself would run it, but the file has something
//!   keepalived corrects or ignores (no `protocol`, mismatched ports, a bad value, ...);
//! - `error`: not converted: a refused `virtual_server` (`fwmark`, `group`, SCTP, a
//!   scheduler rvs lacks, an IPv6 address in brackets, which keepalived does not read), or a checker or keyword inside one rvs cannot express (SMTP_CHECK,
//!   DNS_CHECK, BFD_CHECK, `notify_up`, unknown keywords, ...).
//!
//! [`Import::exit_code`]: 0 when there is no error, 1 otherwise; the TOML of what converted is
//! printed either way. A main file that cannot be read is exit 2 with nothing printed.

mod convert;
mod lexer;
mod parser;

use std::fmt;
use std::path::Path;
use std::rc::Rc;

/// Where a keepalived.conf line is: the file as it was reached (the main file as given,
/// included files as the include's directory joined with the match) and its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: Rc<str>,
    pub line: usize,
    /// Position of the line in the whole input, includes expanded: diagnostics come in this
    /// order.
    order: usize,
}

/// How much a diagnostic matters (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Note,
    Warning,
    Error,
}

/// One thing the import says about a line: `file:line: severity: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub loc: Loc,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(loc: &Loc, severity: Severity, message: String) -> Self {
        Diagnostic {
            loc: loc.clone(),
            severity,
            message,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(
            f,
            "{}:{}: {severity}: {}",
            self.loc.file, self.loc.line, self.message
        )
    }
}

/// The result of an import: the TOML text and what was said about the input, in input order.
#[derive(Debug, Clone)]
pub struct Import {
    pub toml: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl Import {
    /// 0 when nothing inside a `virtual_server` was refused or dropped, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        u8::from(
            self.diagnostics
                .iter()
                .any(|d| d.severity == Severity::Error),
        )
    }
}

/// Imports the keepalived.conf at `path` and what it includes. `Err` (a message naming the
/// file) only when `path` itself cannot be read.
pub fn import(path: &Path) -> Result<Import, String> {
    let mut diagnostics = Vec::new();
    let items = lexer::read(path, &mut diagnostics)?;
    let tree = parser::parse(items, &mut diagnostics);
    let toml = convert::convert(&path.display().to_string(), &tree, &mut diagnostics);
    diagnostics.sort_by_key(|d| d.loc.order);
    Ok(Import { toml, diagnostics })
}
