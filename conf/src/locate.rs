//! Field paths (`service[0].real[1].weight`) and where they are in the file. Validation works on
//! plain serde structs and names the field it rejects; the span-preserving parse of the same
//! text turns that name back into a line.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

#[derive(Debug, Clone, Copy)]
enum Seg {
    Key(&'static str),
    Index(usize),
}

/// A path from the document root to a value.
#[derive(Debug, Clone, Default)]
pub(crate) struct Field(Vec<Seg>);

impl Field {
    /// `self.key`.
    pub fn key(&self, key: &'static str) -> Field {
        let mut f = self.clone();
        f.0.push(Seg::Key(key));
        f
    }

    /// `self.key[index]`: element `index` of an array (or array of tables) `key`.
    pub fn item(&self, key: &'static str, index: usize) -> Field {
        let mut f = self.key(key);
        f.0.push(Seg::Index(index));
        f
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) if i == 0 => f.write_str(key)?,
                Seg::Key(key) => write!(f, ".{key}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The text of a config file with its span-preserving parse.
pub(crate) struct Source<'i> {
    text: &'i str,
    root: Spanned<DeTable<'i>>,
}

impl<'i> Source<'i> {
    pub fn new(text: &'i str, root: Spanned<DeTable<'i>>) -> Self {
        Source { text, root }
    }

    pub fn root(&self) -> &Spanned<DeTable<'i>> {
        &self.root
    }

    /// Line of the value at `field`. A field the file leaves out (a default) is reported at the
    /// nearest enclosing value that is there: its table header, or line 1 for the document.
    pub fn line_of(&self, field: &Field) -> usize {
        line_at(self.text, self.span_of(field).start)
    }

    fn span_of(&self, field: &Field) -> Range<usize> {
        let mut span = self.root.span();
        let mut table: Option<&DeTable<'i>> = Some(self.root.get_ref());
        let mut value: Option<&DeValue<'i>> = None;
        for seg in &field.0 {
            let next = match (seg, table, value) {
                (Seg::Key(key), Some(t), _) => {
                    t.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v)
                }
                (Seg::Index(i), _, Some(DeValue::Array(a))) => a.get(*i),
                _ => None,
            };
            let Some(next) = next else { break };
            span = next.span();
            value = Some(next.get_ref());
            table = match next.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            };
        }
        span
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_display() {
        let f = Field::default()
            .item("service", 0)
            .item("real", 1)
            .key("weight");
        assert_eq!(f.to_string(), "service[0].real[1].weight");
        assert_eq!(
            Field::default().key("eal").key("args").to_string(),
            "eal.args"
        );
        assert_eq!(Field::default().to_string(), "");
    }

    #[test]
    fn test_line_of() {
        let text = "[eal]\nargs = []\n\n[[service]]\nvip = \"x\"\nladdrs = [\n  \"a\",\n  \"b\",\n]\n\
                    [[service.real]]\naddr = \"y\"\n[[service]]\nvip = \"z\"\nreal = [{ addr = \"q\" }]\n";
        let src = Source::new(text, DeTable::parse(text).unwrap());
        let svc = |i| Field::default().item("service", i);
        assert_eq!(src.line_of(&Field::default().key("eal").key("args")), 2);
        assert_eq!(src.line_of(&svc(0)), 4);
        assert_eq!(src.line_of(&svc(0).key("vip")), 5);
        assert_eq!(src.line_of(&svc(0).item("laddrs", 1)), 8);
        assert_eq!(src.line_of(&svc(0).item("real", 0).key("addr")), 11);
        // Left out: the enclosing table's header.
        assert_eq!(src.line_of(&svc(0).item("real", 0).key("weight")), 10);
        assert_eq!(src.line_of(&svc(1).item("real", 0).key("addr")), 14);
        assert_eq!(src.line_of(&svc(1).key("sched")), 12);
        assert_eq!(src.line_of(&Field::default().key("timeouts")), 1);
    }
}
