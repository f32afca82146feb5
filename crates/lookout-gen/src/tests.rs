//! Distribution and consistency checks with access to generator internals.

use std::collections::{BTreeMap, HashSet};

use lookout_screening::{
    DobAgreement, PartialDate, dob_agreement, normalise_document_number, normalise_person_name,
};

use super::*;
use crate::names::mrz_fold;

const N: u64 = 20_000;

fn cfg() -> GenConfig {
    GenConfig::new(20_260_101, N, 40_000).with_plant_rate(0.2)
}

fn pct(n: usize, d: usize) -> f64 {
    100.0 * n as f64 / d as f64
}

fn assert_near(label: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol,
        "{label}: {got:.2}% (want {want}% ± {tol})"
    );
}

#[test]
fn lookouts_validate_and_follow_the_distributions() {
    let cfg = cfg();
    let now = cfg.now_ms;
    let mut cats = [0usize; 3];
    let mut with_alias = 0;
    let mut dob_kind = [0usize; 4]; // full, year, year-month, none
    let mut trad: BTreeMap<Tradition, usize> = BTreeMap::new();
    let mut sex = [0usize; 3];
    let (mut expired, mut open_ended, mut inactive, mut with_passport) = (0, 0, 0, 0);
    let mut diacritics = 0;
    let mut ids = HashSet::new();
    for i in 0..N {
        let g = gen_lookout(&cfg, i);
        let l = &g.lookout;
        l.validate().unwrap_or_else(|e| panic!("{e}: {l:?}"));
        assert!(ids.insert(l.id.clone()));
        assert_eq!(lookout_index(&l.id), Some(i));
        for c in l
            .subject
            .nationalities
            .iter()
            .chain(l.documents.iter().map(|d| &d.country))
        {
            assert_eq!(CountryCode::parse(c.as_str()).as_ref(), Ok(c));
        }
        // Nationality matches the tradition (or a listed second nationality).
        let nat0 = l.subject.nationalities[0].as_str();
        assert!(
            g.culture.nationalities().iter().any(|(c, _)| *c == nat0),
            "{nat0} not a {:?} nationality",
            g.culture
        );
        for d in &l.documents {
            assert!(!normalise_document_number(&d.number).is_empty());
        }
        assert!(!normalise_person_name(&l.subject.name).is_empty(), "{l:?}");
        for a in &l.subject.aliases {
            assert!(!normalise_person_name(a).is_empty(), "{l:?}");
        }
        cats[match l.category {
            Category::NoBoard => 0,
            Category::ReferSecondary => 1,
            Category::AlertOnly => 2,
        }] += 1;
        with_alias += usize::from(!l.subject.aliases.is_empty());
        dob_kind[match l.subject.dob {
            Some(d) if d.is_full() => 0,
            Some(PartialDate { month: None, .. }) => 1,
            Some(_) => 2,
            None => 3,
        }] += 1;
        if let Some(d) = l.subject.dob {
            assert!((1940..=2008).contains(&d.year), "{d}");
        }
        assert!((1940..=2008).contains(&g.full_dob.year));
        *trad.entry(g.culture.tradition()).or_default() += 1;
        sex[match l.subject.sex {
            Sex::Male => 0,
            Sex::Female => 1,
            Sex::Unknown => 2,
        }] += 1;
        expired += usize::from(l.valid_until_ms.is_some_and(|u| u <= now));
        open_ended += usize::from(l.valid_until_ms.is_none());
        inactive += usize::from(!l.is_active_at(now));
        with_passport += usize::from(l.documents.iter().any(|d| d.doc_type == DocType::Passport));
        let text = format!("{}", l.subject.name);
        diacritics += usize::from(!text.is_ascii());
        assert_eq!(l.id, lookout(&cfg, i).id);
    }
    let n = N as usize;
    assert_near("NO_BOARD", pct(cats[0], n), 10.0, 1.5);
    assert_near("REFER_SECONDARY", pct(cats[1], n), 60.0, 2.0);
    assert_near("ALERT_ONLY", pct(cats[2], n), 30.0, 2.0);
    assert_near("aliases", pct(with_alias, n), 30.0, 2.5);
    assert_near("full DOB", pct(dob_kind[0], n), 80.0, 2.0);
    assert_near("year-only DOB", pct(dob_kind[1], n), 10.0, 1.5);
    assert_near("year-month DOB", pct(dob_kind[2], n), 5.0, 1.0);
    assert_near("no DOB", pct(dob_kind[3], n), 5.0, 1.0);
    assert_near("male", pct(sex[0], n), 80.0, 2.0);
    assert_near("expired", pct(expired, n), 6.0, 1.0);
    assert_near("open-ended", pct(open_ended, n), 88.0, 1.5);
    assert_near("with passport", pct(with_passport, n), 90.0, 1.5);
    for (t, want) in [
        (Tradition::Anglo, 32.0),
        (Tradition::Hispanic, 20.0),
        (Tradition::Arabic, 11.0),
        (Tradition::Slavic, 10.0),
        (Tradition::EastAsian, 15.0),
        (Tradition::SouthAsian, 12.0),
    ] {
        assert_near(&format!("{t:?}"), pct(trad[&t], n), want, 1.5);
    }
    assert!(pct(diacritics, n) > 5.0, "diacritics {diacritics}");
    assert!(pct(inactive, n) < 10.0, "inactive {inactive}");
}

#[test]
fn names_show_their_traditions() {
    let cfg = cfg();
    let mut arabic = (0, 0, 0); // total, with article/particle, with a known variant spelling
    let mut hispanic = (0, 0);
    let mut east_asian_swapped = (0, 0);
    for i in 0..N {
        let g = gen_lookout(&cfg, i);
        let n = mrz_fold(&format!(
            "{} {}",
            g.lookout.subject.name.given, g.lookout.subject.name.surname
        ));
        let toks: Vec<&str> = n.split(' ').collect();
        match g.culture {
            Culture::Arabic => {
                arabic.0 += 1;
                if toks
                    .iter()
                    .any(|t| ["AL", "EL", "BIN", "IBN", "BINT"].contains(t) || t.starts_with("AL"))
                {
                    arabic.1 += 1;
                }
                if !g.primary.spelling_edits().is_empty() {
                    arabic.2 += 1;
                }
            }
            Culture::Hispanic => {
                hispanic.0 += 1;
                if g.primary.surname.pieces.len() >= 2 {
                    hispanic.1 += 1;
                }
            }
            Culture::Chinese | Culture::Korean | Culture::Vietnamese => {
                east_asian_swapped.0 += 1;
                let s = mrz_fold(&g.lookout.subject.name.surname);
                if s != mrz_fold(&g.primary.surname_text()) {
                    east_asian_swapped.1 += 1;
                }
            }
            _ => {}
        }
    }
    assert!(pct(arabic.1, arabic.0) > 40.0, "{arabic:?}");
    assert!(pct(arabic.2, arabic.0) > 60.0, "{arabic:?}");
    assert!(pct(hispanic.1, hispanic.0) > 70.0, "{hispanic:?}");
    let sw = pct(east_asian_swapped.1, east_asian_swapped.0);
    assert!((10.0..20.0).contains(&sw), "{east_asian_swapped:?}");
}

/// Optimal string alignment distance (Damerau-Levenshtein, adjacent transpositions).
fn osa(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[test]
fn plants_honour_their_class() {
    let cfg = cfg();
    let mut per_class: BTreeMap<PlantClass, usize> = BTreeMap::new();
    let mut planted = 0usize;
    let total = 40_000u64;
    for t in travellers_range(&cfg, 0..total) {
        let Some(p) = &t.truth.planted else {
            continue;
        };
        planted += 1;
        *per_class.entry(p.class).or_default() += 1;
        let li = lookout_index(&p.lookout_id).expect("lookout id");
        assert!(li < cfg.lookouts);
        let g = gen_lookout(&cfg, li);
        let l = &g.lookout;
        assert!(l.is_active_at(cfg.now_ms), "plant on inactive lookout");
        let id = &t.identity;
        let tdob = id.dob.expect("travellers have a DOB");
        let tname = &id.names[0];
        let same_name = normalise_person_name(tname).sorted_tokens()
            == normalise_person_name(&g.primary.render(Style::MRZ)).sorted_tokens();
        match p.class {
            PlantClass::ExactDocument => {
                let ld = lookout_passport(l).expect("passport");
                let td = &id.documents[0];
                assert_eq!(td.country, ld.country);
                assert_eq!(
                    normalise_document_number(&td.number),
                    normalise_document_number(&ld.number)
                );
            }
            PlantClass::ExactNameDob => {
                assert!(same_name, "{tname:?} vs {:?}", l.subject.name);
                assert_eq!(Some(tdob), l.subject.dob);
            }
            PlantClass::Alias => {
                assert!(g.aliases.iter().any(|(a, _)| {
                    normalise_person_name(&a.render(Style::MRZ)).sorted_tokens()
                        == normalise_person_name(tname).sorted_tokens()
                }));
            }
            PlantClass::Transliteration => {
                assert!(!same_name, "respelling changed nothing: {tname:?}");
                assert_ne!(
                    dob_agreement(Some(tdob), l.subject.dob),
                    DobAgreement::Conflict
                );
            }
            PlantClass::OneTypo => {
                assert_eq!(Some(tdob), l.subject.dob);
                let a = mrz_fold(&format!("{} {}", tname.given, tname.surname));
                let b = mrz_fold(&format!(
                    "{} {}",
                    g.primary.given_text(),
                    g.primary.surname_text()
                ));
                let b_sw = mrz_fold(&format!(
                    "{} {}",
                    g.primary.surname_text(),
                    g.primary.given_text()
                ));
                let d = osa(&a, &b).min(osa(&a, &b_sw));
                assert_eq!(d, 1, "{a:?} vs {b:?}");
            }
            PlantClass::PartialDob => {
                let ld = l.subject.dob.expect("partial DOB");
                assert!(!ld.is_full());
                assert!(tdob.is_full());
                assert_eq!(
                    dob_agreement(Some(tdob), Some(ld)),
                    DobAgreement::PartialMatch
                );
                assert!(same_name);
            }
            PlantClass::NearMiss => {
                assert_eq!(
                    dob_agreement(Some(tdob), l.subject.dob),
                    DobAgreement::Conflict
                );
                for d in &id.documents {
                    assert!(!l.documents.iter().any(|ld| ld.number == d.number));
                }
            }
        }
    }
    assert_near("planted", pct(planted, total as usize), 20.0, 1.0);
    let wsum: u32 = cfg.class_weights.iter().sum();
    for (ci, class) in PlantClass::ALL.iter().enumerate() {
        let want = 100.0 * f64::from(cfg.class_weights[ci]) / f64::from(wsum);
        let got = pct(per_class.get(class).copied().unwrap_or(0), planted);
        assert_near(&format!("{class:?}"), got, want, 2.0);
    }
}

#[test]
fn civil_dates() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(
        civil_from_days((DEFAULT_NOW_MS / DAY_MS) as i64),
        (2026, 1, 1)
    );
    assert_eq!(civil_from_days(11_016), (2000, 2, 29));
}

#[test]
fn typos_are_single_edits() {
    let name = PersonName::new("MOHAMMED", "AL-RASHID");
    for i in 0..2_000 {
        let mut r = Rng::for_record(1, 99, i);
        let t = typo_name(&mut r, &name).expect("typo");
        let d = osa(&format!("{} {}", t.given, t.surname), "MOHAMMED AL-RASHID");
        assert_eq!(d, 1, "{t:?}");
    }
}
