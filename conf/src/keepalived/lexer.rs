//! keepalived.conf as keepalived 2.2 reads it, line by line: comments, quoting, braces and
//! `include`, flattened into one stream of items across every included file.
//!
//! What keepalived does (lib/parser.c, read for behaviour): a `!` or `#` outside double quotes
//! starts a comment (`\!` and `\#` are the characters themselves); `{` and `}` outside double
//! quotes stand alone wherever they are written, so `real_server 10.0.0.1 80 {` and a `{` on
//! the next line are the same; a double-quoted string is one word without its quotes; a line
//! whose first word is `include` names a glob (with `{a,b}` braces) relative to the directory of
//! the file that includes it, and the matching files are read in sorted order in its place.
//! Parameter definitions (`$NAME=`), `~SEQ`/`~LST` and `@id` conditional lines are not
//! followed: they are reported and their line skipped.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::{Diagnostic, Loc, Severity};

/// Nesting beyond this many includes is taken for an include loop.
const MAX_INCLUDE_DEPTH: usize = 16;
/// Files read in all (the main file and every inclusion): a file that includes a glob matching
/// itself and its siblings several times would otherwise be read exponentially often.
const MAX_FILES_READ: usize = 10_000;

/// One piece of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// The words of a line up to (not including) a brace, and its raw text for the few
    /// keywords (`misc_path`, `quorum_up`) that keepalived re-reads with escapes and quotes.
    /// No words: a skipped line (already reported).
    Stmt {
        loc: Loc,
        words: Vec<String>,
        raw: String,
    },
    Open(Loc),
    Close(Loc),
}

/// Reads `main` and every file it includes. `Err` only when `main` itself cannot be read.
pub(crate) fn read(main: &Path, diags: &mut Vec<Diagnostic>) -> Result<Vec<Item>, String> {
    let text = std::fs::read(main).map_err(|e| format!("{}: cannot read: {e}", main.display()))?;
    let mut items = Vec::new();
    let mut lexer = Lexer {
        items: &mut items,
        diags,
        defined: false,
        lines: 0,
        reading: vec![canonical(main)],
        files_read: 1,
    };
    lexer.file(main, &text, 0);
    Ok(items)
}

struct Lexer<'a> {
    items: &'a mut Vec<Item>,
    diags: &'a mut Vec<Diagnostic>,
    /// A `$NAME=` definition was seen: from then on `$` may be a substitution.
    defined: bool,
    /// Lines read so far, in every file.
    lines: usize,
    /// The files being read, outermost first: an include of one of them is a loop.
    reading: Vec<PathBuf>,
    /// Files read so far, the main file included.
    files_read: usize,
}

/// `path` made absolute with links resolved, to tell whether two includes name one file;
/// as given when that fails.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

impl Lexer<'_> {
    fn file(&mut self, path: &Path, bytes: &[u8], depth: usize) {
        let name: Rc<str> = Rc::from(path.display().to_string());
        let text = String::from_utf8_lossy(bytes);
        for (index, physical) in text.split('\n').enumerate() {
            self.lines += 1;
            let loc = Loc {
                file: Rc::clone(&name),
                line: index + 1,
                order: self.lines,
            };
            let line = decomment(physical.trim_end_matches('\r'));
            if line.is_empty() {
                continue;
            }
            if self.special(&loc, &line) {
                // Its braces still count, so the blocks around it stay whole.
                self.split(&loc, &line, false);
                continue;
            }
            if let Some(pattern) = include_pattern(&line) {
                self.include(path, &loc, pattern, depth);
                continue;
            }
            self.split(&loc, &line, true);
        }
    }

    /// The keepalived preprocessor constructs this importer does not expand.
    fn special(&mut self, loc: &Loc, line: &str) -> bool {
        let reason = if line.starts_with('@') {
            "conditional line (@id) is not followed: keep or drop it by hand for this host"
        } else if line.starts_with('$') && line.contains('=') {
            self.defined = true;
            "parameter definition ($NAME=...) is not followed: expand the parameters by hand"
        } else if line.starts_with("~SEQ") || line.starts_with("~LST") {
            "~SEQ/~LST is not followed: write the lines out by hand"
        } else if self.defined && line.contains('$') {
            "parameter substitution ($NAME) is not followed: expand the parameters by hand"
        } else {
            return false;
        };
        self.diags.push(Diagnostic::new(
            loc,
            Severity::Error,
            format!("line skipped: {reason}"),
        ));
        true
    }

    fn include(&mut self, from: &Path, loc: &Loc, pattern: &str, depth: usize) {
        if depth >= MAX_INCLUDE_DEPTH {
            self.diags.push(Diagnostic::new(
                loc,
                Severity::Error,
                format!("include {pattern}: more than {MAX_INCLUDE_DEPTH} nested includes (an include loop?), not followed"),
            ));
            return;
        }
        let dir = from.parent().unwrap_or(Path::new(""));
        let mut files: Vec<PathBuf> = Vec::new();
        let Some(alternatives) = expand_braces(pattern) else {
            self.diags.push(Diagnostic::new(
                loc,
                Severity::Error,
                format!(
                    "include {pattern}: its braces make more than {MAX_BRACE_ALTERNATIVES} \
                     patterns, not followed"
                ),
            ));
            return;
        };
        for alternative in alternatives {
            let full = dir.join(single_stars(&alternative));
            match glob::glob(&full.to_string_lossy()) {
                Ok(paths) => files.extend(paths.flatten().filter(|p| p.is_file())),
                Err(e) => {
                    self.diags.push(Diagnostic::new(
                        loc,
                        Severity::Error,
                        format!("include {pattern}: bad pattern: {}", e.msg),
                    ));
                    return;
                }
            }
        }
        if files.is_empty() {
            self.diags.push(Diagnostic::new(
                loc,
                Severity::Error,
                format!(
                    "include {pattern}: no file matches {} (keepalived skips it too)",
                    dir.join(pattern).display()
                ),
            ));
            return;
        }
        for file in files {
            let key = canonical(&file);
            if self.reading.contains(&key) {
                self.diags.push(Diagnostic::new(
                    loc,
                    Severity::Error,
                    format!(
                        "include {}: an include loop (the file is already being read), not followed",
                        file.display()
                    ),
                ));
                continue;
            }
            if self.files_read >= MAX_FILES_READ {
                self.diags.push(Diagnostic::new(
                    loc,
                    Severity::Error,
                    format!(
                        "include {}: more than {MAX_FILES_READ} files read in all, not followed",
                        file.display()
                    ),
                ));
                return;
            }
            self.files_read += 1;
            match std::fs::read(&file) {
                Ok(bytes) => {
                    self.reading.push(key);
                    self.file(&file, &bytes, depth + 1);
                    self.reading.pop();
                }
                Err(e) => self.diags.push(Diagnostic::new(
                    loc,
                    Severity::Error,
                    format!("include {}: cannot read: {e}", file.display()),
                )),
            }
        }
    }

    /// Cuts a decommented line at every brace outside double quotes. The statements of a
    /// line that is not `kept` have no words: they hold their block's place and are ignored.
    fn split(&mut self, loc: &Loc, line: &str, kept: bool) {
        let mut rest = line;
        while !rest.is_empty() {
            match find_brace(rest) {
                Some(at) => {
                    self.stmt(loc, &rest[..at], kept);
                    self.items.push(if rest.as_bytes()[at] == b'{' {
                        Item::Open(loc.clone())
                    } else {
                        Item::Close(loc.clone())
                    });
                    rest = &rest[at + 1..];
                }
                None => {
                    self.stmt(loc, rest, kept);
                    rest = "";
                }
            }
        }
    }

    fn stmt(&mut self, loc: &Loc, raw: &str, kept: bool) {
        let raw = raw.trim();
        if raw.is_empty() {
            return;
        }
        if !kept {
            self.items.push(Item::Stmt {
                loc: loc.clone(),
                words: Vec::new(),
                raw: String::new(),
            });
            return;
        }
        let (words, unmatched) = words(raw);
        if unmatched {
            self.diags.push(Diagnostic::new(
                loc,
                Severity::Warning,
                "unmatched '\"': the quoted text runs to the end of the line".to_string(),
            ));
        }
        self.items.push(Item::Stmt {
            loc: loc.clone(),
            words,
            raw: raw.to_string(),
        });
    }
}

/// keepalived's comment rule: `!` or `#` outside double quotes ends the line, a backslash
/// before either keeps it as a character. Leading and trailing blanks go.
fn decomment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            '\\' if !quoted && matches!(chars.peek(), Some('#' | '!')) => {
                out.extend(chars.next());
            }
            '!' | '#' if !quoted => break,
            _ => out.push(c),
        }
    }
    out.trim().to_string()
}

/// `include`, or keepalived 2.2's `includer`/`includem`/`includew`/`includeb`/`includea`
/// (which only differ in how loudly a missing file is reported), then the pattern.
fn include_pattern(line: &str) -> Option<&str> {
    let (first, rest) = line.split_once([' ', '\t'])?;
    matches!(
        first,
        "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
    )
    .then(|| rest.trim())
    .filter(|p| !p.is_empty())
}

/// The first `{` or `}` outside double quotes.
fn find_brace(s: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'{' | b'}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// Words separated by blanks; a double-quoted string is one word without its quotes, and a
/// quote also ends the word before it, as keepalived splits. Also says whether a quote was
/// left open.
fn words(s: &str) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return (out, false);
        }
        if let Some(body) = rest.strip_prefix('"') {
            match body.find('"') {
                Some(end) => {
                    out.push(body[..end].to_string());
                    rest = &body[end + 1..];
                }
                None => {
                    out.push(body.to_string());
                    return (out, true);
                }
            }
        } else {
            let end = rest.find([' ', '\t', '"']).unwrap_or(rest.len());
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
}

/// keepalived's reading of a script's line (`misc_path`, `quorum_up`, ...): words split on
/// blanks, single and double quotes keep blanks, backslash escapes; or `Err` with the reason.
/// keepalived then splits the first word after the keyword the same way again to get the
/// command and its arguments, so a command line with arguments is written in quotes.
pub(crate) fn command_words(raw: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.peek() {
            if quote.is_none() && (c == ' ' || c == '\t') {
                break;
            }
            chars.next();
            match (c, quote) {
                ('\\', _) => match chars.next() {
                    Some(e) => word.push(unescape(e)),
                    None => return Err("a backslash ends the line".to_string()),
                },
                (q, Some(open)) if q == open => quote = None,
                ('"' | '\'', None) => quote = Some(c),
                _ => word.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(format!("missing closing {q}"));
        }
        out.push(word);
    }
}

fn unescape(c: char) -> char {
    match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        other => other,
    }
}

/// `pattern` with every run of `*` made one `*`: in glob(3), which keepalived uses, `**` is
/// `*`; the glob crate would read `/**/` as every directory of the file system, recursively.
fn single_stars(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        if !(c == '*' && out.ends_with('*')) {
            out.push(c);
        }
    }
    out
}

/// Most patterns one include's braces may expand to: each `{a,b}` doubles them, so a line of
/// twenty would be read a million times over.
const MAX_BRACE_ALTERNATIVES: usize = 1024;

/// glob(3)'s GLOB_BRACE, which keepalived turns on for include patterns with braces:
/// `a{b,c}d` is `abd` then `acd`, nested braces included. `None` when the braces make more
/// than [`MAX_BRACE_ALTERNATIVES`] patterns.
fn expand_braces(pattern: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    expand_into(pattern, &mut out).then_some(out)
}

/// Appends the expansions of `pattern` to `out`; false once there would be too many.
fn expand_into(pattern: &str, out: &mut Vec<String>) -> bool {
    let Some(open) = pattern.find('{') else {
        out.push(pattern.to_string());
        return out.len() <= MAX_BRACE_ALTERNATIVES;
    };
    let mut depth = 0usize;
    let mut close = None;
    let mut commas = Vec::new();
    for (i, c) in pattern[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            ',' if depth == 1 => commas.push(open + i),
            _ => {}
        }
    }
    let Some(close) = close else {
        out.push(pattern.to_string());
        return out.len() <= MAX_BRACE_ALTERNATIVES;
    };
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(commas);
    bounds.push(close);
    for pair in bounds.windows(2) {
        let choice = &pattern[pair[0] + 1..pair[1]];
        if !expand_into(&format!("{head}{choice}{tail}"), out) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_quotes_and_escapes() {
        assert_eq!(decomment("  weight 3 ! three"), "weight 3");
        assert_eq!(decomment("path \"/a#b\" # c"), "path \"/a#b\"");
        assert_eq!(decomment("x \\#y"), "x #y");
        assert_eq!(decomment("# all"), "");
        assert_eq!(
            words("a \"b c\" d\"e\""),
            (
                vec!["a".into(), "b c".into(), "d".into(), "e".into()],
                false
            )
        );
        assert_eq!(words("a \"b"), (vec!["a".into(), "b".into()], true));
    }

    #[test]
    fn command_lines() {
        assert_eq!(
            command_words(r#"misc_path "/bin/check -x" 'a b' c\ d"#),
            Ok(vec![
                "misc_path".into(),
                "/bin/check -x".into(),
                "a b".into(),
                "c d".into()
            ])
        );
        assert_eq!(
            command_words("misc_path 'a"),
            Err("missing closing '".to_string())
        );
    }

    #[test]
    fn braces() {
        assert_eq!(expand_braces("a{b,c}d").unwrap(), ["abd", "acd"]);
        assert_eq!(expand_braces("{x,y{1,2}}").unwrap(), ["x", "y1", "y2"]);
        assert_eq!(expand_braces("plain*.conf").unwrap(), ["plain*.conf"]);
        // Each pair of braces doubles the patterns: ten make 1024, eleven too many (found by
        // the keepalived_conf fuzz target as a hang: a line of braces globbed 2^20 times).
        assert_eq!(expand_braces(&"{a,b}".repeat(10)).unwrap().len(), 1024);
        assert_eq!(expand_braces(&"{a,b}".repeat(11)), None);
        assert_eq!(expand_braces(&"{a,b}".repeat(40)), None);
        // glob(3) has no recursive `**` (found by the keepalived_conf fuzz target as a hang:
        // `include /**/x` walked the whole file system).
        assert_eq!(single_stars("/**/a***b*"), "/*/a*b*");
        assert_eq!(find_brace("a \"{\" {"), Some(6));
        assert_eq!(
            include_pattern("include  conf.d/*.conf"),
            Some("conf.d/*.conf")
        );
        assert_eq!(include_pattern("included x"), None);
    }
}
