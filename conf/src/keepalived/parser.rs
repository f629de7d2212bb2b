//! The item stream as a tree: a statement owns the block that follows it, as keepalived
//! attaches a `{ }` to the keyword before it (on the same line or the next).

use super::lexer::Item;
use super::{Diagnostic, Loc, Severity};

/// A keyword line and, when a block follows it, the block's statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub loc: Loc,
    /// The keyword and its arguments; empty for a skipped line (already reported), which the
    /// conversion passes over with its block.
    pub words: Vec<String>,
    /// The line's text, for command lines.
    pub raw: String,
    pub block: Option<Vec<Node>>,
    /// Where the block's `{` is.
    pub open: Option<Loc>,
}

impl Node {
    /// The keyword; empty for a skipped line.
    pub fn keyword(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    /// The arguments after the keyword.
    pub fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or_default()
    }
}

/// Builds the tree. Stray and missing braces are reported; the tree is still whole (a missing
/// `}` closes at the end of input, a stray `{` opens an anonymous block that is ignored).
pub(crate) fn parse(items: Vec<Item>, diags: &mut Vec<Diagnostic>) -> Vec<Node> {
    // The open blocks: the node that owns each (None for the root and anonymous blocks),
    // where it opened, and its statements so far.
    let mut stack: Vec<(Option<Node>, Option<Loc>, Vec<Node>)> = vec![(None, None, Vec::new())];
    for item in items {
        match item {
            Item::Stmt { loc, words, raw } => {
                if let Some(top) = stack.last_mut() {
                    top.2.push(Node {
                        loc,
                        words,
                        raw,
                        block: None,
                        open: None,
                    });
                }
            }
            Item::Open(loc) => {
                let owner = stack.last_mut().and_then(|top| match top.2.last() {
                    Some(last) if last.block.is_none() => top.2.pop(),
                    _ => None,
                });
                if owner.is_none() {
                    diags.push(Diagnostic::new(
                        &loc,
                        Severity::Error,
                        "'{' without a keyword before it: its block is ignored".to_string(),
                    ));
                }
                stack.push((owner, Some(loc), Vec::new()));
            }
            Item::Close(loc) => {
                if stack.len() == 1 {
                    diags.push(Diagnostic::new(
                        &loc,
                        Severity::Error,
                        "extra '}' ignored".to_string(),
                    ));
                    continue;
                }
                close(&mut stack);
            }
        }
    }
    while stack.len() > 1 {
        if let Some((owner, Some(open), _)) = stack.last() {
            let what = owner.as_ref().map_or("block", |o| o.keyword());
            diags.push(Diagnostic::new(
                open,
                Severity::Error,
                format!("'{{' of {what} is never closed: closed at the end of the file"),
            ));
        }
        close(&mut stack);
    }
    stack.pop().map(|(_, _, nodes)| nodes).unwrap_or_default()
}

fn close(stack: &mut Vec<(Option<Node>, Option<Loc>, Vec<Node>)>) {
    if let Some((owner, open, children)) = stack.pop() {
        if let (Some(mut owner), Some(parent)) = (owner, stack.last_mut()) {
            owner.block = Some(children);
            owner.open = open;
            parent.2.push(owner);
        }
    }
}
