//! Concrete normalisation, key and scoring cases across naming traditions.

mod common;

use common::*;
use lookout_screening::*;

const NOW: u64 = 1_750_000_000_000;

fn cfg() -> MatchConfig {
    MatchConfig::new(NOW)
}

fn tokens(given: &str, surname: &str) -> Vec<String> {
    normalise_person_name(&name(given, surname)).sorted_tokens()
}

fn common_keys(a: &PersonName, b: &PersonName) -> Vec<String> {
    let ka = name_keys(a);
    let kb = name_keys(b);
    ka.into_iter().filter(|k| kb.contains(k)).collect()
}

/// Asserts the traveller is a candidate (shares an index key) and matches.
fn assert_matches(l: &Lookout, t: &Identity) -> Match {
    assert!(
        shares_key(t, l),
        "no shared key:\n lookout {:?}\n probe {:?}",
        index_keys(l),
        identity_probe_keys(t)
    );
    let m = evaluate(t, l);
    assert!(
        score(t, l, &cfg()).is_some(),
        "below threshold: {m}\n {:?} vs {:?}",
        t.names,
        l.subject.name
    );
    m
}

fn assert_no_match(l: &Lookout, t: &Identity) -> Match {
    let m = evaluate(t, l);
    assert!(score(t, l, &cfg()).is_none(), "unexpected match: {m}");
    m
}

// ---------------------------------------------------------------- Anglo

#[test]
fn anglo_obrien_mcdonald() {
    assert_eq!(tokens("Seán", "O'Brien"), vec!["OBRIEN", "SEAN"]);
    assert_eq!(tokens("Sean", "O Brien"), vec!["OBRIEN", "SEAN"]);
    assert_eq!(tokens("Sean", "OBrien"), vec!["OBRIEN", "SEAN"]);
    assert_eq!(tokens("Ronald", "McDonald"), tokens("Ronald", "Mc Donald"));
    assert!(
        common_keys(&name("Ronald", "McDonald"), &name("Ronald", "MacDonald"))
            .contains(&"MKTN".to_string())
    );

    let l = lookout(
        "a1",
        name("Seán Patrick", "O'Brien"),
        vec![],
        Some("1970-03-17"),
        Sex::Male,
    );
    assert_matches(
        &l,
        &traveller(vec![name("SEAN", "OBRIEN")], Some("1970-03-17"), Sex::Male),
    );
    // Missing middle name still matches.
    assert_matches(
        &l,
        &traveller(vec![name("Sean", "O Brien")], Some("1970-03-17"), Sex::Male),
    );
    let l = lookout(
        "a2",
        name("Ronald", "MacDonald"),
        vec![],
        Some("1955-01-02"),
        Sex::Male,
    );
    let m = assert_matches(
        &l,
        &traveller(
            vec![name("Ronald", "McDonald")],
            Some("1955-01-02"),
            Sex::Male,
        ),
    );
    assert!(m.score >= 0.95, "{m}");
}

// ---------------------------------------------------------------- Hispanic

#[test]
fn hispanic_two_surnames_and_particles() {
    assert_eq!(
        tokens("José María", "García-López"),
        vec!["GARCIA", "JOSE", "LOPEZ", "MARIA"]
    );
    assert_eq!(
        tokens("Jose Maria", "Garcia y Lopez"),
        vec!["GARCIA", "JOSE", "LOPEZ", "MARIA"]
    );
    assert_eq!(tokens("María", "de la Cruz"), vec!["CRUZ", "MARIA"]);

    let l = lookout(
        "h1",
        name("José María", "García-López"),
        vec![],
        Some("1965-11-30"),
        Sex::Male,
    );
    // Exact with diacritics dropped and hyphen → space.
    let m = assert_matches(
        &l,
        &traveller(
            vec![name("JOSE MARIA", "GARCIA LOPEZ")],
            Some("1965-11-30"),
            Sex::Male,
        ),
    );
    assert_eq!(m.score, 1.0);
    // Only the paternal surname, as on many foreign documents.
    assert_matches(
        &l,
        &traveller(
            vec![name("Jose Maria", "Garcia")],
            Some("1965-11-30"),
            Sex::Male,
        ),
    );
    // Only first given name and paternal surname.
    assert_matches(
        &l,
        &traveller(vec![name("Jose", "Garcia")], Some("1965-11-30"), Sex::Male),
    );
    // Same surnames, different person (different given name and DOB).
    assert_no_match(
        &l,
        &traveller(
            vec![name("Carmen", "Garcia Lopez")],
            Some("1971-02-03"),
            Sex::Female,
        ),
    );
}

// ---------------------------------------------------------------- Arabic

#[test]
fn arabic_transliterations() {
    let variants = [
        name("Mohammed", "bin Abdullah"),
        name("Muhammad", "Abdallah"),
        name("Mohamad", "Ibn Abdulla"),
        name("MOHAMMAD", "BIN ABDALLAH"),
    ];
    for v in &variants[1..] {
        let shared = common_keys(&variants[0], v);
        assert!(
            shared.contains(&"MHMT".to_string()) && shared.contains(&"APTL".to_string()),
            "{v:?}: {shared:?}"
        );
    }
    let hassan = [
        name("Omar", "Al-Hassan"),
        name("Omar", "Alhassan"),
        name("Omar", "El Hassan"),
        name("Umar", "al Hasan"),
    ];
    for v in &hassan[1..] {
        let shared = common_keys(&hassan[0], v);
        assert!(shared.contains(&"HSN".to_string()), "{v:?}: {shared:?}");
    }

    let l = lookout(
        "ar1",
        name("Mohammed", "bin Abdullah"),
        vec![],
        Some("1979-05-05"),
        Sex::Male,
    );
    for v in &variants {
        let m = assert_matches(
            &l,
            &traveller(vec![v.clone()], Some("1979-05-05"), Sex::Male),
        );
        assert!(m.score >= 0.95, "{m}");
    }
    let l = lookout(
        "ar2",
        name("Omar", "Al-Hassan"),
        vec![],
        Some("1985"),
        Sex::Male,
    );
    for v in &hassan {
        assert_matches(
            &l,
            &traveller(vec![v.clone()], Some("1985-09-09"), Sex::Male),
        );
    }
    // Same common given name, different family, conflicting DOB: no match.
    assert_no_match(
        &l,
        &traveller(vec![name("Omar", "Haddad")], Some("1990-01-01"), Sex::Male),
    );
    // Same common given name, different family, same year: still no match.
    assert_no_match(
        &l,
        &traveller(vec![name("Omar", "Haddad")], Some("1985-01-01"), Sex::Male),
    );
    // Compound name split vs joined.
    let l = lookout(
        "ar3",
        name("Abdul Rahman", "Khalil"),
        vec![],
        Some("1970-01-01"),
        Sex::Male,
    );
    assert_matches(
        &l,
        &traveller(
            vec![name("Abdulrahman", "Khalil")],
            Some("1970-01-01"),
            Sex::Male,
        ),
    );
}

// ---------------------------------------------------------------- Slavic

#[test]
fn slavic_transliterations() {
    assert!(
        common_keys(&name("Aleksandr", "Ivanov"), &name("Alexander", "Ivanov"))
            .contains(&"ALKS".to_string())
    );
    assert_eq!(
        tokens("Łukasz", "Żółkiewski"),
        tokens("Lukasz", "Zolkiewski")
    );
    assert_eq!(normalise_text("Čajkovskij"), "CAJKOVSKIJ");
    assert_eq!(normalise_text("Чайковский"), "CHAIKOVSKII");
    // Tchaikovsky / Chaikovskii (and Cyrillic) share the surname code.
    let shared = common_keys(&name("Pyotr", "Tchaikovsky"), &name("Petr", "Chaikovskii"));
    assert!(shared.contains(&"XKFS".to_string()), "{shared:?}");
    assert!(
        common_keys(&name("Pyotr", "Tchaikovsky"), &name("Пётр", "Чайковский"))
            .contains(&"XKFS".to_string())
    );

    let l = lookout(
        "s1",
        name("Pyotr Ilyich", "Tchaikovsky"),
        vec![],
        Some("1840-05-07"),
        Sex::Male,
    );
    assert_matches(
        &l,
        &traveller(
            vec![name("Petr Ilich", "Chaikovskii")],
            Some("1840-05-07"),
            Sex::Male,
        ),
    );
    assert_matches(
        &l,
        &traveller(
            vec![name("Пётр Ильич", "Чайковский")],
            Some("1840-05-07"),
            Sex::Male,
        ),
    );
    // Scholarly (Czech-style) romanisation: surname code differs (C vs CH),
    // found via the given names and accepted on similarity + exact DOB.
    assert_matches(
        &l,
        &traveller(
            vec![name("Pëtr Il'ič", "Čajkovskij")],
            Some("1840-05-07"),
            Sex::Male,
        ),
    );

    let l = lookout(
        "s2",
        name("Aleksandr Sergeyevich", "Pushkin"),
        vec![],
        Some("1799-06-06"),
        Sex::Male,
    );
    assert_matches(
        &l,
        &traveller(
            vec![name("Alexander", "Pushkin")],
            Some("1799-06-06"),
            Sex::Male,
        ),
    );
    let l = lookout(
        "s3",
        name("Łukasz", "Kowalski"),
        vec![],
        Some("1990-02-02"),
        Sex::Male,
    );
    let m = assert_matches(
        &l,
        &traveller(
            vec![name("Lukasz", "Kowalski")],
            Some("1990-02-02"),
            Sex::Male,
        ),
    );
    assert_eq!(m.score, 1.0);
}

// ---------------------------------------------------------------- East Asian

#[test]
fn east_asian_order_and_particles() {
    assert_eq!(tokens("Wei", "Zhang"), tokens("Zhang", "Wei"));
    assert_eq!(
        name_keys(&name("Wei", "Zhang")),
        name_keys(&name("Zhang", "Wei"))
    );
    // "Van" is dropped from the Vietnamese middle name; "Le" survives as a lone surname.
    assert_eq!(tokens("Van An", "Nguyen"), vec!["AN", "NGUYEN"]);
    assert_eq!(tokens("Van An", "Le"), vec!["AN", "LE"]);

    let l = lookout(
        "e1",
        name("Wei", "Zhang"),
        vec![],
        Some("1982-08-08"),
        Sex::Male,
    );
    let m = assert_matches(
        &l,
        &traveller(vec![name("Zhang", "Wei")], Some("1982-08-08"), Sex::Male),
    );
    assert!(m.score >= 0.99, "{m}");
    // Wade-Giles spelling of the surname, given name exact.
    assert_matches(
        &l,
        &traveller(vec![name("Wei", "Chang")], Some("1982-08-08"), Sex::Male),
    );
    // Different given name, same common surname, different DOB: no.
    assert_no_match(
        &l,
        &traveller(vec![name("Li", "Zhang")], Some("1975-01-20"), Sex::Male),
    );

    let l = lookout(
        "e2",
        name("Van An", "Nguyen"),
        vec![],
        Some("1960"),
        Sex::Male,
    );
    assert_matches(
        &l,
        &traveller(vec![name("An", "Nguyen")], Some("1960-04-30"), Sex::Male),
    );
    assert_matches(
        &l,
        &traveller(
            vec![name("Nguyen Van", "An")],
            Some("1960-04-30"),
            Sex::Male,
        ),
    );
    assert_no_match(
        &l,
        &traveller(
            vec![name("Van Binh", "Nguyen")],
            Some("1960-04-30"),
            Sex::Male,
        ),
    );
}

// ---------------------------------------------------------------- South Asian

#[test]
fn south_asian_variants() {
    let shared = common_keys(&name("Mohammed", "Iqbal"), &name("Muhammad", "Iqubal"));
    assert!(
        shared.contains(&"MHMT".to_string()) && shared.contains(&"AKPL".to_string()),
        "{shared:?}"
    );
    let shared = common_keys(
        &name("Venkat", "Srinivasan"),
        &name("Venkat", "Shrinivasan"),
    );
    assert!(shared.contains(&"SRNF".to_string()), "{shared:?}");

    let l = lookout(
        "sa1",
        name("Mohammed", "Iqbal"),
        vec![],
        Some("1988-12-01"),
        Sex::Male,
    );
    let m = assert_matches(
        &l,
        &traveller(
            vec![name("Muhammad", "Iqubal")],
            Some("1988-12-01"),
            Sex::Male,
        ),
    );
    assert!(m.reasons.contains(&Reason::Phonetic), "{m}");
    let l = lookout(
        "sa2",
        name("Venkatesh", "Srinivasan"),
        vec![],
        None,
        Sex::Male,
    );
    assert_matches(
        &l,
        &traveller(
            vec![name("Venkatesh", "Shrinivasan")],
            Some("1970-10-10"),
            Sex::Male,
        ),
    );
}

// ---------------------------------------------------------------- Aliases, documents, DOB, validity

#[test]
fn alias_match_reports_alias() {
    let l = lookout(
        "al1",
        name("John", "Smith"),
        vec![name("Ivan", "Kuznetsov"), name("Juan", "Herrero")],
        Some("1977-07-07"),
        Sex::Male,
    );
    let t = traveller(vec![name("Juan", "Herrero")], Some("1977-07-07"), Sex::Male);
    let m = assert_matches(&l, &t);
    assert!(
        m.reasons
            .iter()
            .any(|r| matches!(r, Reason::Alias { alias_index: 1, .. })),
        "{m}"
    );
    assert!(m.to_string().contains("alias #2"), "{m}");
}

#[test]
fn document_exact_match_overrides_name() {
    let mut l = lookout(
        "d1",
        name("Jane", "Doe"),
        vec![],
        Some("1980-01-01"),
        Sex::Female,
    );
    l.documents.push(Document {
        doc_type: DocType::Passport,
        country: CountryCode::parse("CAN").unwrap(),
        number: "AB-0123 456".into(),
        expiry: None,
    });
    let mut t = traveller(vec![name("Someone", "Else")], Some("1999-09-09"), Sex::Male);
    t.documents.push(Document {
        doc_type: DocType::Passport,
        country: CountryCode::parse("can").unwrap(),
        number: "abo123456".into(),
        expiry: Some(date("2030-01-01")),
    });
    assert!(shares_key(&t, &l));
    let m = score(&t, &l, &cfg()).expect("document match");
    assert_eq!(m.score, 1.0);
    assert!(
        matches!(&m.reasons[0], Reason::DocumentExact { doc_type: DocType::Passport, country } if country.as_str() == "CAN")
    );
    assert!(m.to_string().contains("passport issued by CAN"), "{m}");
    // Same number, other issuing state: no document match.
    t.documents[0].country = CountryCode::parse("USA").unwrap();
    assert!(score(&t, &l, &cfg()).is_none());
}

#[test]
fn dob_effects() {
    let l = lookout(
        "b1",
        name("Maria", "Rossi"),
        vec![],
        Some("1950-06-15"),
        Sex::Female,
    );
    let exact = evaluate(
        &traveller(
            vec![name("Maria", "Rossi")],
            Some("1950-06-15"),
            Sex::Female,
        ),
        &l,
    );
    let unknown = evaluate(
        &traveller(vec![name("Maria", "Rossi")], None, Sex::Female),
        &l,
    );
    let close = evaluate(
        &traveller(
            vec![name("Maria", "Rossi")],
            Some("1951-06-15"),
            Sex::Female,
        ),
        &l,
    );
    let conflict = evaluate(
        &traveller(
            vec![name("Maria", "Rossi")],
            Some("1950-06-16"),
            Sex::Female,
        ),
        &l,
    );
    assert!(
        exact.score >= unknown.score && unknown.score > close.score && close.score > conflict.score
    );
    assert!(
        close.score >= DEFAULT_THRESHOLD,
        "a year typo only mildly penalises: {close}"
    );
    assert!(conflict.score < DEFAULT_THRESHOLD, "{conflict}");
    assert!(conflict.reasons.contains(&Reason::NameDob {
        name_similarity: 1.0,
        dob: DobAgreement::Conflict
    }));
    // Partial DOB on the lookout is consistent with the traveller's full DOB.
    let l2 = lookout(
        "b2",
        name("Maria", "Rossi"),
        vec![],
        Some("1950"),
        Sex::Female,
    );
    let p = evaluate(
        &traveller(
            vec![name("Maria", "Rossi")],
            Some("1950-06-15"),
            Sex::Female,
        ),
        &l2,
    );
    assert!(p.reasons.contains(&Reason::NameDob {
        name_similarity: 1.0,
        dob: DobAgreement::PartialMatch
    }));
    // Sex conflict reduces and is explained.
    let s = evaluate(
        &traveller(vec![name("Maria", "Rossi")], Some("1950-06-15"), Sex::Male),
        &l,
    );
    assert!(s.reasons.contains(&Reason::SexMismatch) && s.score < exact.score);
}

#[test]
fn retired_and_validity_window() {
    let t = traveller(
        vec![name("Maria", "Rossi")],
        Some("1950-06-15"),
        Sex::Female,
    );
    let mut l = lookout(
        "v1",
        name("Maria", "Rossi"),
        vec![],
        Some("1950-06-15"),
        Sex::Female,
    );
    assert!(score(&t, &l, &cfg()).is_some());
    l.retired = true;
    assert!(score(&t, &l, &cfg()).is_none());
    l.retired = false;
    l.valid_from_ms = Some(NOW + 1);
    assert!(score(&t, &l, &cfg()).is_none());
    l.valid_from_ms = Some(NOW);
    assert!(score(&t, &l, &cfg()).is_some());
    l.valid_until_ms = Some(NOW);
    assert!(score(&t, &l, &cfg()).is_none(), "until is exclusive");
    l.valid_until_ms = Some(NOW + 1);
    assert!(score(&t, &l, &cfg()).is_some());
}

#[test]
fn screen_and_decide() {
    let t = traveller(
        vec![name("Maria", "Rossi")],
        Some("1950-06-15"),
        Sex::Female,
    );
    let mut a = lookout(
        "z-alert",
        name("Maria", "Rossi"),
        vec![],
        Some("1950"),
        Sex::Female,
    );
    a.category = Category::AlertOnly;
    let mut b = lookout(
        "a-refer",
        name("Maria", "Rossi"),
        vec![],
        None,
        Sex::Unknown,
    );
    b.category = Category::ReferSecondary;
    let mut c = lookout(
        "c-noboard",
        name("Mario", "Bianchi"),
        vec![],
        Some("1940-01-01"),
        Sex::Male,
    );
    c.category = Category::NoBoard;
    let matches = screen(&t, [&a, &b, &c, &a], &cfg());
    let ids: Vec<&str> = matches.iter().map(|m| m.lookout_id.as_str()).collect();
    // Both score 1.0 (clamped); ties are ordered by id; duplicates removed.
    assert_eq!(ids, vec!["a-refer", "z-alert"]);
    assert_eq!(decide(&matches), Decision::ReferSecondary);
    assert_eq!(
        decide(&matches[1..]),
        Decision::Clear,
        "alert-only does not change the decision"
    );
}

#[test]
fn lookout_validation() {
    let l = lookout("ok", name("A", "B"), vec![], None, Sex::Unknown);
    assert!(l.validate().is_ok());
    let l = lookout("", name("A", "B"), vec![], None, Sex::Unknown);
    assert_eq!(l.validate(), Err(LookoutError::EmptyId));
    let l = lookout("x", name("-", "'"), vec![], None, Sex::Unknown);
    assert!(matches!(l.validate(), Err(LookoutError::Unmatchable(_))));
    let mut l = lookout("w", name("A", "B"), vec![], None, Sex::Unknown);
    l.valid_from_ms = Some(5);
    l.valid_until_ms = Some(5);
    assert!(matches!(
        l.validate(),
        Err(LookoutError::EmptyWindow { .. })
    ));
}

#[test]
fn records_round_trip_through_serde() {
    let mut l = lookout(
        "rt",
        name("José", "García"),
        vec![name("Pepe", "García")],
        Some("1960-02"),
        Sex::Male,
    );
    l.subject
        .nationalities
        .push(CountryCode::parse("ESP").unwrap());
    l.documents.push(Document {
        doc_type: DocType::NationalId,
        country: CountryCode::parse("ESP").unwrap(),
        number: "12345678Z".into(),
        expiry: Some(date("2031-12-31")),
    });
    let json = serde_json::to_string(&l).unwrap();
    assert_eq!(serde_json::from_str::<Lookout>(&json).unwrap(), l);
    let bytes = postcard::to_allocvec(&l).unwrap();
    assert_eq!(postcard::from_bytes::<Lookout>(&bytes).unwrap(), l);
    // Invalid country in a stored record is rejected on load.
    let bad = json.replace("\"ESP\"", "\"XYZ\"");
    assert!(serde_json::from_str::<Lookout>(&bad).is_err());
}
