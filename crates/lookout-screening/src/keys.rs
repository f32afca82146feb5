//! Index keys: which lookouts a traveller must be scored against.
//!
//! The scheme is described in the crate documentation ([`crate`]); in short
//! every key is a string starting with a one-letter kind:
//!
//! | kind | stored for a lookout | probed for a traveller |
//! |------|----------------------|------------------------|
//! | `D:<TYPE>:<CCC>:<NUMBER>` | each document with a non-empty number | each document |
//! | `T:<code>:<yyyy or *>` | each phonetic code of each name token, with the birth year (or `*` without a DOB) | each code × {year−1, year, year+1, `*`} (only `*` without a DOB) |
//! | `F:<code>+<code>…` | sorted primary codes of the whole name | same, only for a traveller without a DOB |
//! | `S:<code>:<yyyy or *>` | single-token names only: the primary code and each one-character deletion of it | same, × the years above |

use serde::{Deserialize, Serialize};

use crate::date::PartialDate;
use crate::normalise::{NormalisedName, normalise_document_number, normalise_person_name};
use crate::phonetic::{phonetic_codes, primary_code};
use crate::types::{Document, Identity, Lookout, PersonName, Subject};

/// Hard cap on the number of keys [`index_keys`] returns for one lookout.
/// Keys are taken in priority order (documents, primary name, then aliases
/// in order) before the cap is applied, so only keys of late aliases can be
/// lost, and only for lookouts with many long, dissimilar aliases.
pub const MAX_INDEX_KEYS: usize = 24;

/// Minimum primary-code length for which one-deletion neighbours are emitted
/// (shorter codes would make buckets far too broad).
pub const SOLO_DELETION_MIN_CODE_LEN: usize = 3;

/// An index key. Ordered and compared as its string; the string form is
/// stable and may be persisted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IndexKey(String);

/// The kind of an [`IndexKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexKeyKind {
    /// `D:` exact normalised document.
    Document,
    /// `T:` one name token's phonetic code plus birth year.
    Token,
    /// `F:` the whole name's phonetic codes, no year.
    FullName,
    /// `S:` single-token-name typo neighbourhood plus birth year.
    Solo,
}

impl IndexKey {
    /// The string form (e.g. `T:MHMT:1980`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the key, returning its string form.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The key's kind, from its prefix. Keys built by this crate always have
    /// one; a foreign string (e.g. deserialised) yields `None`.
    pub fn kind(&self) -> Option<IndexKeyKind> {
        match self.0.get(..2) {
            Some("D:") => Some(IndexKeyKind::Document),
            Some("T:") => Some(IndexKeyKind::Token),
            Some("F:") => Some(IndexKeyKind::FullName),
            Some("S:") => Some(IndexKeyKind::Solo),
            _ => None,
        }
    }

    fn document(doc_key: String) -> Self {
        IndexKey(format!("D:{doc_key}"))
    }

    fn token(code: &str, year: YearSlot) -> Self {
        IndexKey(format!("T:{code}:{year}"))
    }

    fn full(codes: &[String]) -> Self {
        IndexKey(format!("F:{}", codes.join("+")))
    }

    fn solo(code: &str, year: YearSlot) -> Self {
        IndexKey(format!("S:{code}:{year}"))
    }
}

impl std::fmt::Display for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for IndexKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum YearSlot {
    Year(u16),
    Any,
}

impl std::fmt::Display for YearSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            YearSlot::Year(y) => write!(f, "{y:04}"),
            YearSlot::Any => f.write_str("*"),
        }
    }
}

/// Deterministic document key: `<TYPE>:<COUNTRY>:<normalised number>`, e.g.
/// `PASSPORT:GBR:L898902C3`. A document whose number normalises to the empty
/// string is never indexed or matched (its key would collide with every other
/// number-less document).
pub fn document_key(doc: &Document) -> String {
    key_with_number(doc, &normalise_document_number(&doc.number))
}

/// [`document_key`], or `None` when the number normalises to nothing (such a document
/// matches nothing).
pub(crate) fn numbered_document_key(doc: &Document) -> Option<String> {
    let n = normalise_document_number(&doc.number);
    (!n.is_empty()).then(|| key_with_number(doc, &n))
}

fn key_with_number(doc: &Document, normalised: &str) -> String {
    format!("{}:{}:{}", doc.doc_type.code(), doc.country.as_str(), normalised)
}

fn document_index_key(doc: &Document) -> Option<IndexKey> {
    if normalise_document_number(&doc.number).is_empty() {
        None
    } else {
        Some(IndexKey::document(document_key(doc)))
    }
}

/// All phonetic codes of all tokens of a name (both parts, order ignored):
/// Double Metaphone primary and alternate, including those of glued-article
/// variants. Sorted and deduplicated. Transliteration variants such as
/// MOHAMMED / MUHAMMAD / MOHAMAD share `MHMT`; ALEKSANDR / ALEXANDER share `ALKS`.
pub fn name_keys(name: &PersonName) -> Vec<String> {
    normalised_name_codes(&normalise_person_name(name))
}

fn normalised_name_codes(n: &NormalisedName) -> Vec<String> {
    let mut codes: Vec<String> = n
        .tagged_tokens()
        .flat_map(|(t, _)| phonetic_codes(t))
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

fn full_name_codes(n: &NormalisedName) -> Vec<String> {
    let mut codes: Vec<String> = n.tagged_tokens().map(|(t, _)| primary_code(t)).collect();
    codes.sort();
    codes.dedup();
    codes
}

/// The primary code and each of its one-character deletions (for
/// single-token names; symmetric-deletion typo tolerance).
fn solo_codes(n: &NormalisedName) -> Vec<String> {
    if n.len() != 1 {
        return Vec::new();
    }
    let Some((token, _)) = n.tagged_tokens().next() else {
        return Vec::new();
    };
    let code = primary_code(token);
    let mut out = vec![code.clone()];
    if !code.starts_with('~') && code.len() >= SOLO_DELETION_MIN_CODE_LEN {
        for i in 0..code.len() {
            let mut d = code.clone();
            d.remove(i);
            out.push(d);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Keys for one name, in priority order (token keys, full key, solo keys).
/// The full-name key is included only when `with_full` is set.
fn name_index_keys(
    name: &PersonName,
    years: &[YearSlot],
    with_full: bool,
    out: &mut Vec<IndexKey>,
) {
    let n = normalise_person_name(name);
    if n.is_empty() {
        return;
    }
    for code in normalised_name_codes(&n) {
        for &y in years {
            out.push(IndexKey::token(&code, y));
        }
    }
    if with_full {
        out.push(IndexKey::full(&full_name_codes(&n)));
    }
    for code in solo_codes(&n) {
        for &y in years {
            out.push(IndexKey::solo(&code, y));
        }
    }
}

fn stored_year(dob: Option<PartialDate>) -> YearSlot {
    dob.map_or(YearSlot::Any, |d| YearSlot::Year(d.year))
}

fn probe_years(dob: Option<PartialDate>) -> Vec<YearSlot> {
    match dob {
        None => vec![YearSlot::Any],
        Some(d) => {
            let mut v = Vec::with_capacity(4);
            if d.year > 1 {
                v.push(YearSlot::Year(d.year - 1));
            }
            v.push(YearSlot::Year(d.year));
            if d.year < 9999 {
                v.push(YearSlot::Year(d.year + 1));
            }
            v.push(YearSlot::Any);
            v
        }
    }
}

fn dedup_in_order(keys: Vec<IndexKey>) -> Vec<IndexKey> {
    let mut seen = std::collections::BTreeSet::new();
    keys.into_iter()
        .filter(|k| seen.insert(k.clone()))
        .collect()
}

fn finish(keys: Vec<IndexKey>, cap: Option<usize>) -> Vec<IndexKey> {
    let mut keys = dedup_in_order(keys);
    if let Some(cap) = cap {
        keys.truncate(cap);
    }
    keys.sort();
    keys
}

/// Name keys of a subject (primary name, then aliases), sorted and
/// deduplicated, capped at [`MAX_INDEX_KEYS`].
pub fn subject_index_keys(subject: &Subject) -> Vec<IndexKey> {
    let mut keys = Vec::new();
    push_subject_keys(subject, &mut keys);
    finish(keys, Some(MAX_INDEX_KEYS))
}

fn push_subject_keys(subject: &Subject, keys: &mut Vec<IndexKey>) {
    let years = [stored_year(subject.dob)];
    name_index_keys(&subject.name, &years, true, keys);
    for alias in &subject.aliases {
        name_index_keys(alias, &years, true, keys);
    }
}

/// The keys under which a lookout is stored: its documents' keys, then the
/// name keys of its subject. Sorted, deduplicated, at most
/// [`MAX_INDEX_KEYS`]. Identical on every replica for the same record. Does
/// not look at `retired` or the validity window: scoring enforces those.
pub fn index_keys(lookout: &Lookout) -> Vec<IndexKey> {
    let mut keys: Vec<IndexKey> = lookout
        .documents
        .iter()
        .filter_map(document_index_key)
        .collect();
    push_subject_keys(&lookout.subject, &mut keys);
    finish(keys, Some(MAX_INDEX_KEYS))
}

/// The keys to look up for a traveller: every document key, and for every
/// name the token keys for birth years `y−1`, `y`, `y+1` and `*` (only `*`
/// without a DOB), the full-name key (only without a DOB), and
/// (single-token names) the solo keys.
/// Any lookout sharing at least one key is a candidate to [`crate::score()`].
/// Sorted and deduplicated; not capped.
pub fn identity_probe_keys(identity: &Identity) -> Vec<IndexKey> {
    let mut keys: Vec<IndexKey> = identity
        .documents
        .iter()
        .filter_map(document_index_key)
        .collect();
    let years = probe_years(identity.dob);
    // Full-name keys carry no year; a traveller with a DOB gains nothing from
    // them (every lookout they add has a DOB at least two years off, a
    // conflict), so they are probed only for travellers without one.
    let with_full = identity.dob.is_none();
    for name in &identity.names {
        name_index_keys(name, &years, with_full, &mut keys);
    }
    finish(keys, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::country::CountryCode;
    use crate::types::{Category, DocType, Sex};

    fn subject(given: &str, surname: &str, dob: Option<&str>) -> Subject {
        Subject {
            name: PersonName::new(given, surname),
            aliases: vec![],
            dob: dob.map(|d| PartialDate::parse(d).unwrap()),
            sex: Sex::Unknown,
            nationalities: vec![],
        }
    }

    fn lookout(subject: Subject, docs: Vec<Document>) -> Lookout {
        Lookout {
            id: "L1".into(),
            subject,
            documents: docs,
            category: Category::ReferSecondary,
            reason: String::new(),
            source_agency: String::new(),
            valid_from_ms: None,
            valid_until_ms: None,
            version: 1,
            created_by: String::new(),
            updated_by: String::new(),
            retired: false,
        }
    }

    fn strs(keys: &[IndexKey]) -> Vec<&str> {
        keys.iter().map(|k| k.as_str()).collect()
    }

    #[test]
    fn concrete_keys_for_a_simple_lookout() {
        let doc = Document {
            doc_type: DocType::Passport,
            country: CountryCode::parse("GBR").unwrap(),
            number: "l898-902 c3".into(),
            expiry: None,
        };
        let l = lookout(
            subject("Aleksandr", "Petrov", Some("1980-07-14")),
            vec![doc],
        );
        let keys = index_keys(&l);
        assert_eq!(
            strs(&keys),
            vec![
                "D:PASSPORT:GBR:L898902C3",
                "F:ALKS+PTRF",
                "T:ALKS:1980",
                "T:PTRF:1980"
            ]
        );
        for k in &keys {
            assert!(k.kind().is_some());
        }
    }

    #[test]
    fn variants_share_keys() {
        let a = name_keys(&PersonName::new("Mohammed", "Al-Hassan"));
        let b = name_keys(&PersonName::new("Muhammad", "Alhassan"));
        let c = name_keys(&PersonName::new("Mohamad", "El Hassan"));
        for k in ["MHMT", "HSN"] {
            assert!(
                a.contains(&k.to_string())
                    && b.contains(&k.to_string())
                    && c.contains(&k.to_string()),
                "{k}: {a:?} {b:?} {c:?}"
            );
        }
    }

    #[test]
    fn probes_cover_partial_and_missing_dob() {
        let year_only = lookout(subject("Wei", "Zhang", Some("1975")), vec![]);
        let no_dob = lookout(subject("Wei", "Zhang", None), vec![]);
        let traveller = Identity {
            names: vec![PersonName::new("Zhang", "Wei")],
            dob: Some(PartialDate::parse("1975-03-02").unwrap()),
            ..Identity::default()
        };
        let probes = identity_probe_keys(&traveller);
        for l in [&year_only, &no_dob] {
            let stored = index_keys(l);
            assert!(
                stored.iter().any(|k| probes.binary_search(k).is_ok()),
                "{stored:?} vs {probes:?}"
            );
        }
        // A birth-year typo (off by one) is still probed.
        let off = lookout(subject("Wei", "Zhang", Some("1976-03-02")), vec![]);
        assert!(
            index_keys(&off)
                .iter()
                .any(|k| probes.binary_search(k).is_ok())
        );
        // Two years off is not.
        let far = lookout(subject("Wei", "Zhang", Some("1977-03-02")), vec![]);
        assert!(
            !index_keys(&far)
                .iter()
                .any(|k| probes.binary_search(k).is_ok())
        );
        // A traveller without a DOB still finds lookouts by full-name key.
        let no_dob_traveller = Identity {
            dob: None,
            ..traveller
        };
        let probes = identity_probe_keys(&no_dob_traveller);
        let full_dob = lookout(subject("Wei", "Zhang", Some("1975-03-02")), vec![]);
        assert!(
            index_keys(&full_dob)
                .iter()
                .any(|k| probes.binary_search(k).is_ok())
        );
    }

    #[test]
    fn single_token_names_tolerate_a_typo() {
        let l = lookout(subject("", "Suharto", Some("1921")), vec![]);
        let t = Identity {
            names: vec![PersonName::new("", "Suhartp")],
            dob: Some(PartialDate::parse("1921-06-08").unwrap()),
            ..Identity::default()
        };
        let probes = identity_probe_keys(&t);
        let stored = index_keys(&l);
        assert!(
            stored
                .iter()
                .any(|k| k.kind() == Some(IndexKeyKind::Solo) && probes.binary_search(k).is_ok()),
            "{stored:?} {probes:?}"
        );
    }

    #[test]
    fn cap_and_priority() {
        let mut s = subject(
            "Alpha Bravo Charlie Delta",
            "Echo Foxtrot Golf Hotel",
            Some("1990"),
        );
        s.aliases = (0..10)
            .map(|i| PersonName::new(format!("Kilo{i}x Lima{i}y"), format!("Mike{i}z")))
            .collect();
        let keys = index_keys(&lookout(s, vec![]));
        assert!(keys.len() <= MAX_INDEX_KEYS);
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        // The primary name's full key survives the cap.
        assert!(
            keys.iter()
                .any(|k| k.as_str().starts_with("F:") && k.as_str().contains("ALF")),
            "{keys:?}"
        );
    }

    #[test]
    fn empty_numbers_are_not_indexed() {
        let doc = Document {
            doc_type: DocType::Passport,
            country: CountryCode::parse("FRA").unwrap(),
            number: " - ".into(),
            expiry: None,
        };
        let keys = index_keys(&lookout(subject("Jean", "Dupont", None), vec![doc]));
        assert!(
            keys.iter()
                .all(|k| k.kind() != Some(IndexKeyKind::Document))
        );
    }
}
