//! Bad values echoed in error messages are cut to [`ECHO_MAX`] characters, so that a 1 MB
//! string in a config file, a control request or a command line does not come back whole.

/// Characters of a bad value an error message repeats; longer values end in `…`.
pub const ECHO_MAX: usize = 64;

/// Longest error message built from a serde error; past it the message is cut (a safety net
/// for values [`shorten_quoted`] cannot delimit).
const MESSAGE_MAX: usize = 1024;

/// `s` cut to [`ECHO_MAX`] characters, with `…` when something was cut.
pub fn cut(s: &str) -> String {
    match s.char_indices().nth(ECHO_MAX) {
        None => s.to_string(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

/// `s` quoted as `{:?}` writes it, cut as [`cut`] does.
pub fn quote(s: &str) -> String {
    format!("{:?}", cut(s))
}

/// A message written by a library (serde, toml), with every quoted value in it (between
/// backquotes or double quotes, as serde writes them) cut as [`cut`] does, and the whole
/// limited to [`MESSAGE_MAX`] characters.
pub fn shorten_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MESSAGE_MAX));
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest.as_bytes()[open];
        out.push_str(&rest[..=open]);
        let body = &rest[open + 1..];
        let close = closing(body, quote);
        let Some(close) = close else {
            out.push_str(&cut(body));
            rest = "";
            break;
        };
        out.push_str(&cut(&body[..close]));
        out.push(char::from(quote));
        rest = &body[close + 1..];
    }
    out.push_str(rest);
    match out.char_indices().nth(MESSAGE_MAX) {
        None => out,
        Some((end, _)) => format!("{}…", &out[..end]),
    }
}

/// Offset of the quote that closes `body`: the next backquote, or the next double quote not
/// escaped with a backslash.
fn closing(body: &str, quote: u8) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b if b == quote => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_cut() {
        assert_eq!(cut("short"), "short");
        let exact = "x".repeat(ECHO_MAX);
        assert_eq!(cut(&exact), exact);
        assert_eq!(cut(&"é".repeat(100)), format!("{}…", "é".repeat(ECHO_MAX)));
        assert_eq!(
            quote(&"a".repeat(1 << 20)),
            format!("\"{}…\"", "a".repeat(64))
        );
        assert_eq!(quote("a\"b"), r#""a\"b""#);
    }

    #[test]
    fn test_shorten_quoted() {
        let long = "v".repeat(1000);
        assert_eq!(
            shorten_quoted(&format!("unknown variant `{long}`, expected `nat` or `dr`")),
            format!(
                "unknown variant `{}…`, expected `nat` or `dr`",
                "v".repeat(64)
            )
        );
        assert_eq!(
            shorten_quoted(&format!(
                r#"invalid type: string "a\"{long}", expected u32"#
            )),
            format!(
                r#"invalid type: string "a\"{}…", expected u32"#,
                "v".repeat(61)
            )
        );
        assert_eq!(
            shorten_quoted(&format!("unterminated `{long}")),
            format!("unterminated `{}…", "v".repeat(64))
        );
        assert_eq!(shorten_quoted("no quotes"), "no quotes");
        // Text outside quotes is cut only by the overall limit.
        let bare = shorten_quoted(&format!("`a`{}", "b".repeat(5000)));
        assert_eq!(bare.chars().count(), MESSAGE_MAX + 1);
        assert!(bare.ends_with("b…"));
    }
}
