//! A generic TOML value tree that remembers, for every value, the byte range
//! it occupies in the source text.
//!
//! `toml::Spanned<T>` alone is not enough: it fails on tables that have no
//! span of their own (implicit tables such as the `raft` in `[raft.x]` or in a
//! top-level dotted key `raft.heartbeat_ms = 50`), and on datetimes. So this
//! module speaks the same serde protocol `toml::Spanned` does (a struct with
//! the private name below, which the `toml` deserializer answers with
//! start/end/value entries) but falls back to "no span" instead of failing.
//! The parser then walks this tree by hand, which is what lets every error
//! carry both a line and a field path.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

pub(crate) type Span = Range<usize>;

// The protocol constants of `serde_spanned` (re-exported by `toml` as
// `toml::Spanned`) and of `toml_datetime`. They are `#[doc(hidden)]` there;
// the unit tests below fail loudly if a `toml` upgrade changes them.
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];
const DATETIME_FIELD: &str = "$__toml_private_datetime";

/// One TOML value and where it is in the text (`None` if the deserializer
/// did not say, e.g. for implicit tables).
#[derive(Debug, Clone)]
pub(crate) struct Val {
    pub span: Option<Span>,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Val>),
    /// Entries in document order.
    Table(Vec<(String, Val)>),
}

impl Kind {
    /// "a string \"50\"", "an integer 5", "a table", ... for type-mismatch
    /// messages.
    pub fn describe(&self) -> String {
        match self {
            Kind::Str(s) => format!("a string {}", toml::Value::String(s.clone())),
            Kind::Int(i) => format!("an integer {i}"),
            Kind::Float(f) => format!("a float {f}"),
            Kind::Bool(b) => format!("a boolean {b}"),
            Kind::Datetime(d) => format!("a datetime {d}"),
            Kind::Array(_) => "an array".to_owned(),
            Kind::Table(_) => "a table".to_owned(),
        }
    }
}

impl Val {
    /// This value's span, or else the first span found among its children.
    pub fn best_span(&self) -> Option<Span> {
        if let Some(s) = &self.span {
            return Some(s.clone());
        }
        match &self.kind {
            Kind::Array(items) => items.iter().find_map(Val::best_span),
            Kind::Table(entries) => entries.iter().find_map(|(_, v)| v.best_span()),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Val {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Val, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, ValVisitor)
    }
}

/// The value inside the spanned wrapper: asking for the spanned struct again
/// would recurse forever, so this asks for "anything".
struct Inner(Val);

impl<'de> Deserialize<'de> for Inner {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Inner, D::Error> {
        d.deserialize_any(ValVisitor).map(Inner)
    }
}

struct ValVisitor;

fn unspanned(kind: Kind) -> Val {
    Val { span: None, kind }
}

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Val, E> {
        Ok(unspanned(Kind::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Val, E> {
        Ok(unspanned(Kind::Int(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Val, E> {
        i64::try_from(v)
            .map(|v| unspanned(Kind::Int(v)))
            .map_err(|_| E::custom(format!("integer {v} is out of range")))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Val, E> {
        Ok(unspanned(Kind::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Val, E> {
        Ok(unspanned(Kind::Str(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Val, E> {
        Ok(unspanned(Kind::Str(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Val>()? {
            items.push(v);
        }
        Ok(unspanned(Kind::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(unspanned(Kind::Table(Vec::new())));
        };
        if first == SPANNED_START {
            let start: usize = map.next_value()?;
            expect_key(&mut map, SPANNED_END)?;
            let end: usize = map.next_value()?;
            expect_key(&mut map, SPANNED_VALUE)?;
            let Inner(mut val) = map.next_value()?;
            val.span = Some(start..end);
            return Ok(val);
        }
        if first == DATETIME_FIELD {
            let text: String = map.next_value()?;
            return Ok(unspanned(Kind::Datetime(text)));
        }
        let mut entries = vec![(first, map.next_value::<Val>()?)];
        while let Some((k, v)) = map.next_entry::<String, Val>()? {
            entries.push((k, v));
        }
        Ok(unspanned(Kind::Table(entries)))
    }
}

fn expect_key<'de, A: MapAccess<'de>>(map: &mut A, want: &str) -> Result<(), A::Error> {
    match map.next_key::<String>()? {
        Some(k) if k == want => Ok(()),
        other => Err(de::Error::custom(format!(
            "internal: expected spanned field {want}, got {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Val {
        toml::from_str(text).expect("parses")
    }

    fn get<'a>(v: &'a Val, key: &str) -> &'a Val {
        match &v.kind {
            Kind::Table(e) => &e.iter().find(|(k, _)| k == key).expect("key").1,
            other => panic!("not a table: {other:?}"),
        }
    }

    #[test]
    fn leaves_carry_spans() {
        let text = "a = 1\n[t]\nb = \"x\"\n";
        let v = parse(text);
        let a = get(&v, "a");
        assert_eq!(&text[a.span.clone().unwrap()], "1");
        let b = get(get(&v, "t"), "b");
        assert_eq!(&text[b.span.clone().unwrap()], "\"x\"");
        assert!(matches!(b.kind, Kind::Str(ref s) if s == "x"));
    }

    #[test]
    fn implicit_tables_and_datetimes_do_not_fail() {
        let text = "when = 1979-05-27T07:32:00Z\n[x.y]\nz = 3\n";
        let v = parse(text);
        assert!(matches!(get(&v, "when").kind, Kind::Datetime(_)));
        assert!(get(&v, "when").span.is_some());
        let x = get(&v, "x");
        let z = get(get(x, "y"), "z");
        assert_eq!(&text[z.span.clone().unwrap()], "3");
        assert!(x.best_span().is_some());
        let text = "a.b = 1\n";
        let v = parse(text);
        let b = get(get(&v, "a"), "b");
        assert_eq!(&text[b.span.clone().unwrap()], "1");
        assert!(get(&v, "a").best_span().is_some());
    }

    #[test]
    fn array_of_tables_elements_have_spans() {
        let text = "[[n]]\nid = 1\n\n[[n]]\nid = 2\n";
        let v = parse(text);
        let Kind::Array(items) = &get(&v, "n").kind else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        let second = items[1].best_span().unwrap();
        // the element's span starts on line 4 (its header or first key)
        let line = text[..second.start].matches('\n').count() + 1;
        assert!(line == 4 || line == 5, "line {line}");
    }
}
