//! Why a config file was rejected.

use std::fmt;

use crate::echo;

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line; `None` only when the file could not be read.
    pub line: Option<usize>,
    /// Path of the offending value, e.g. `service[0].real[1].weight`; empty when no single value
    /// is at fault (a TOML syntax error).
    pub field: String,
    /// What is wrong, in a sentence without the location.
    pub message: String,
}

/// A rejected config file: every problem found, in line order. Syntax and type errors stop the
/// parse, so they come alone; semantic checks report all they find.
///
/// `Display` prints one problem per line as `file:line: field: message`, e.g.
/// `rvsd.toml:14: service[0].real[1].weight: 70000 is out of range 0..=65535`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    file: String,
    problems: Vec<Problem>,
}

impl ConfError {
    /// Every bad value echoed in a message (or named in a field path, as an unknown key is)
    /// is cut to [`echo::ECHO_MAX`] characters.
    pub(crate) fn new(file: &str, mut problems: Vec<Problem>) -> Self {
        for p in &mut problems {
            p.message = echo::shorten_quoted(&p.message);
            p.field = echo::cut(&p.field);
        }
        problems.sort_by_key(|p| p.line);
        ConfError {
            file: file.to_string(),
            problems,
        }
    }

    /// The file name as given to [`Config::parse`](crate::Config::parse) or
    /// [`Config::load`](crate::Config::load).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The problems, at least one, ordered by line.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&self.file)?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            if !p.field.is_empty() {
                write!(f, ": {}", p.field)?;
            }
            write!(f, ": {}", p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfError {}
