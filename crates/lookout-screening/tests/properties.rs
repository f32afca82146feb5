//! Property tests of the normalisers, keys and scorer.

mod common;

use common::*;
use lookout_screening::normalise::{GLUED_PREFIXES, is_particle};
use lookout_screening::*;
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

/// A name-ish token of ASCII letters, mixed case, never a particle or a glued prefix.
fn ascii_token() -> impl Strategy<Value = String> {
    "[A-Za-z]{2,10}".prop_filter("not a particle / prefix", |t| {
        let u = t.to_ascii_uppercase();
        !is_particle(&u) && !GLUED_PREFIXES.contains(&u.as_str())
    })
}

fn ascii_tokens(max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(ascii_token(), 1..=max)
}

/// Free text mixing scripts, punctuation, marks, apostrophes and odd characters.
fn messy_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z .,'’\\-/ßæøłđþıÆŒØŁÐÞĦŊƏ]{0,30}",
        "[\\p{Cyrillic}\\p{Greek} \\-]{0,20}",
        "[a-zA-Z\\u{0300}-\\u{036F}\\u{00C0}-\\u{024F}\\u{1E00}-\\u{1EFF} '\\-]{0,30}",
        "[\\u{0000}-\\u{FFFF}]{0,12}",
    ]
}

fn part(tokens: &[String]) -> String {
    tokens.join(" ")
}

/// Inserts combining diacritics after letters (deterministically from `seed`),
/// and NFC-composes the result where a precomposed letter exists.
fn add_diacritics(s: &str, seed: u64) -> String {
    const MARKS: [char; 10] = [
        '\u{0301}', '\u{0300}', '\u{0308}', '\u{030C}', '\u{0303}', '\u{0327}', '\u{0302}',
        '\u{030A}', '\u{0328}', '\u{0304}',
    ];
    let mut rng = Rng(seed);
    let mut out = String::new();
    for c in s.chars() {
        out.push(c);
        if c.is_ascii_alphabetic() && rng.chance(0.5) {
            out.push(*rng.pick(&MARKS));
            if rng.chance(0.2) {
                out.push(*rng.pick(&MARKS));
            }
        }
    }
    if seed.is_multiple_of(2) {
        out.nfc().collect()
    } else {
        out
    }
}

fn arb_sex() -> impl Strategy<Value = Sex> {
    prop_oneof![Just(Sex::Male), Just(Sex::Female), Just(Sex::Unknown)]
}

fn arb_date() -> impl Strategy<Value = PartialDate> {
    (
        1900u16..2020,
        prop::option::of(1u8..=12),
        1u8..=31,
        any::<bool>(),
    )
        .prop_map(|(y, m, d, with_day)| {
            let day = match m {
                Some(m) if with_day => Some(d.min(lookout_screening::date::days_in_month(y, m))),
                _ => None,
            };
            PartialDate::new(y, m, day).unwrap()
        })
}

fn arb_name() -> impl Strategy<Value = PersonName> {
    prop_oneof![
        3 => (ascii_tokens(3), ascii_tokens(2)).prop_map(|(g, s)| name(&part(&g), &part(&s))),
        1 => (messy_text(), messy_text()).prop_map(|(g, s)| name(&g, &s)),
    ]
}

fn arb_lookout() -> impl Strategy<Value = Lookout> {
    (
        arb_name(),
        prop::collection::vec(arb_name(), 0..4),
        prop::option::of(arb_date()),
        arb_sex(),
    )
        .prop_map(|(n, aliases, dob, sex)| {
            let mut l = lookout("p", n, aliases, None, sex);
            l.subject.dob = dob;
            l
        })
}

fn arb_identity() -> impl Strategy<Value = Identity> {
    (
        prop::collection::vec(arb_name(), 1..3),
        prop::option::of(arb_date()),
        arb_sex(),
    )
        .prop_map(|(names, dob, sex)| {
            let mut t = traveller(names, None, sex);
            t.dob = dob;
            t
        })
}

proptest! {
    // 256 cases per property by default; set PROPTEST_CASES to run more.

    #[test]
    fn normalise_text_is_idempotent(s in messy_text()) {
        let once = normalise_text(&s);
        prop_assert_eq!(normalise_text(&once), once.clone());
        // Output is single-space separated, upper case where case exists.
        prop_assert!(!once.starts_with(' ') && !once.ends_with(' ') && !once.contains("  "));
        prop_assert!(once.chars().all(|c| c == ' ' || c.is_alphanumeric()));
        prop_assert!(!once.chars().any(|c| c.is_lowercase() && c.to_uppercase().next() != Some(c)));
    }

    #[test]
    fn normalise_person_name_is_idempotent(g in messy_text(), s in messy_text()) {
        let n = normalise_person_name(&name(&g, &s));
        let again = normalise_person_name(&name(&n.given.join(" "), &n.surname.join(" ")));
        prop_assert_eq!(again, n);
    }

    #[test]
    fn token_order_does_not_change_keys(g in ascii_tokens(3), s in ascii_tokens(3), seed in any::<u64>()) {
        let original = name(&part(&g), &part(&s));
        // Shuffle all tokens and re-split them between the two parts.
        let mut all: Vec<String> = g.iter().chain(s.iter()).cloned().collect();
        let mut rng = Rng(seed);
        for i in (1..all.len()).rev() {
            let j = rng.below(i + 1);
            all.swap(i, j);
        }
        let cut = rng.below(all.len() + 1);
        let shuffled = name(&part(&all[..cut]), &part(&all[cut..]));
        prop_assert_eq!(name_keys(&original), name_keys(&shuffled));
        prop_assert_eq!(
            normalise_person_name(&original).sorted_tokens(),
            normalise_person_name(&shuffled).sorted_tokens()
        );
        let mut a = lookout("o", original, vec![], Some("1970-01-01"), Sex::Unknown);
        let ka = index_keys(&a);
        a.subject.name = shuffled;
        prop_assert_eq!(ka, index_keys(&a));
    }

    #[test]
    fn diacritics_do_not_change_keys(g in ascii_tokens(3), s in ascii_tokens(2), seed in any::<u64>()) {
        let plain = name(&part(&g), &part(&s));
        let marked = name(&add_diacritics(&plain.given, seed), &add_diacritics(&plain.surname, seed.rotate_left(7)));
        prop_assert_eq!(normalise_person_name(&plain), normalise_person_name(&marked));
        prop_assert_eq!(name_keys(&plain), name_keys(&marked));
        let lp = lookout("x", plain, vec![], Some("1980"), Sex::Unknown);
        let lm = lookout("x", marked, vec![], Some("1980"), Sex::Unknown);
        prop_assert_eq!(index_keys(&lp), index_keys(&lm));
    }

    #[test]
    fn document_numbers_ignore_separators_and_case(core in "[A-Za-z0-9]{1,12}", seed in any::<u64>()) {
        const SEPS: [&str; 6] = [" ", "-", ".", "/", "  ", " - "];
        let mut rng = Rng(seed);
        let mut noisy = String::new();
        for c in core.chars() {
            if rng.chance(0.3) {
                noisy.push_str(SEPS[rng.below(SEPS.len())]);
            }
            noisy.push(if rng.chance(0.5) { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() });
        }
        if rng.chance(0.5) { noisy.push_str(SEPS[rng.below(SEPS.len())]); }
        let a = normalise_document_number(&core);
        prop_assert_eq!(&normalise_document_number(&noisy), &a);
        prop_assert_eq!(normalise_document_number(&a), a.clone());
        prop_assert!(!a.contains('O') && a.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        // O and 0 are the same; the rest of the number still matters.
        prop_assert_eq!(normalise_document_number(&core.replace(['O', 'o'], "0")), a.clone());
    }

    #[test]
    fn document_normalisation_never_panics_and_is_idempotent(s in any::<String>()) {
        let a = normalise_document_number(&s);
        prop_assert_eq!(normalise_document_number(&a), a);
    }

    #[test]
    fn index_keys_are_deterministic_sorted_deduped(l in arb_lookout(), t in arb_identity()) {
        let k1 = index_keys(&l);
        let k2 = index_keys(&l.clone());
        prop_assert_eq!(&k1, &k2);
        prop_assert!(k1.windows(2).all(|w| w[0] < w[1]), "not strictly sorted: {:?}", k1);
        prop_assert!(k1.len() <= MAX_INDEX_KEYS);
        prop_assert!(k1.iter().all(|k| k.kind().is_some()));
        let p1 = identity_probe_keys(&t);
        prop_assert_eq!(&p1, &identity_probe_keys(&t.clone()));
        prop_assert!(p1.windows(2).all(|w| w[0] < w[1]));
        // Serialised form is stable too.
        prop_assert_eq!(serde_json::to_string(&k1).unwrap(), serde_json::to_string(&k2).unwrap());
    }

    #[test]
    fn score_is_within_unit_interval(l in arb_lookout(), t in arb_identity()) {
        let m = evaluate(&t, &l);
        prop_assert!((0.0..=1.0).contains(&m.score), "{}", m);
        for r in &m.reasons {
            if let Reason::NameDob { name_similarity, .. } | Reason::Alias { similarity: name_similarity, .. } = r {
                prop_assert!((0.0..=1.0).contains(name_similarity));
            }
        }
        match score(&t, &l, &MatchConfig::new(0)) {
            Some(s) => prop_assert!(s.score >= DEFAULT_THRESHOLD && s.score == m.score),
            None => prop_assert!(m.score < DEFAULT_THRESHOLD),
        }
    }

    #[test]
    fn own_name_and_dob_match(l in arb_lookout()) {
        prop_assume!(!normalise_person_name(&l.subject.name).is_empty());
        let t = Identity {
            names: vec![l.subject.name.clone()],
            dob: l.subject.dob,
            sex: l.subject.sex,
            nationality: None,
            documents: vec![],
        };
        let m = score(&t, &l, &MatchConfig::new(0));
        prop_assert!(m.is_some(), "{}", evaluate(&t, &l));
        prop_assert!(shares_key(&t, &l), "{:?} / {:?}", index_keys(&l), identity_probe_keys(&t));
        // And via any alias, too.
        for alias in &l.subject.aliases {
            if normalise_person_name(alias).is_empty() { continue; }
            let ta = Identity { names: vec![alias.clone()], ..t.clone() };
            prop_assert!(score(&ta, &l, &MatchConfig::new(0)).is_some(), "{}", evaluate(&ta, &l));
        }
    }

    /// `score` skips the name comparison when the date of birth or sex caps the score
    /// below the threshold; that shortcut never changes the answer. The identity shares
    /// the lookout's name (so scores land near any threshold) with a random DOB and sex.
    #[test]
    fn score_agrees_with_evaluate_at_every_threshold(
        l in arb_lookout(), dob in prop::option::of(arb_date()), sex in arb_sex(), th in 0.0f32..1.0,
    ) {
        let t = Identity { names: vec![l.subject.name.clone()], dob, sex, nationality: None, documents: vec![] };
        let cfg = MatchConfig::new(0).with_threshold(th);
        let full = evaluate(&t, &l);
        prop_assert_eq!(score(&t, &l, &cfg).map(|m| m.score), (full.score >= th).then_some(full.score));
        prop_assert_eq!(screen(&t, [&l], &cfg).len(), usize::from(full.score >= th));
    }

    #[test]
    fn name_similarity_is_symmetric_and_reflexive(a in arb_name(), b in arb_name()) {
        let ab = name_similarity(&a, &b);
        let ba = name_similarity(&b, &a);
        prop_assert!((ab - ba).abs() < 1e-4, "{} vs {}", ab, ba);
        if !normalise_person_name(&a).is_empty() {
            prop_assert_eq!(name_similarity(&a, &a), 1.0);
        }
    }

    #[test]
    fn partial_date_parse_never_panics(s in any::<String>()) {
        let _ = PartialDate::parse(&s);
    }

    #[test]
    fn partial_date_parse_accepts_exactly_valid_dates(s in "[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?") {
        let parts: Vec<u32> = s.split('-').map(|p| p.parse().unwrap()).collect();
        let valid = parts[0] >= 1
            && parts.get(1).is_none_or(|&m| (1..=12).contains(&m))
            && parts.get(2).is_none_or(|&d| d >= 1 && d <= u32::from(lookout_screening::date::days_in_month(parts[0] as u16, parts[1] as u8)));
        match PartialDate::parse(&s) {
            Ok(d) => { prop_assert!(valid); prop_assert_eq!(d.to_string(), s); }
            Err(_) => prop_assert!(!valid),
        }
    }

    #[test]
    fn country_code_parse_never_panics(s in any::<String>()) {
        if let Ok(c) = CountryCode::parse(&s) {
            prop_assert_eq!(c.as_str().len(), 3);
            prop_assert_eq!(CountryCode::parse(c.as_str()).unwrap(), c);
        }
    }

    #[test]
    fn country_code_accepts_exactly_the_table(s in "[A-Za-z]{3}") {
        let upper = s.to_ascii_uppercase();
        let iso = lookout_screening::country::ISO_ALPHA3.contains(&upper.as_str());
        let icao = ["XXA", "XXB", "XXC", "XXX", "UNO", "UNA", "UNK", "EUE", "GBD", "GBN", "GBO", "GBP", "GBS"].contains(&upper.as_str());
        prop_assert_eq!(CountryCode::parse(&s).is_ok(), iso || icao);
    }
}
