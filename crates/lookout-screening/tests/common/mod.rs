//! Shared builders for the integration tests.
#![allow(dead_code)]

use lookout_screening::*;

pub fn date(s: &str) -> PartialDate {
    PartialDate::parse(s).unwrap()
}

pub fn name(given: &str, surname: &str) -> PersonName {
    PersonName::new(given, surname)
}

pub fn lookout(
    id: &str,
    n: PersonName,
    aliases: Vec<PersonName>,
    dob: Option<&str>,
    sex: Sex,
) -> Lookout {
    Lookout {
        id: id.to_string(),
        subject: Subject {
            name: n,
            aliases,
            dob: dob.map(date),
            sex,
            nationalities: vec![],
        },
        documents: vec![],
        category: Category::ReferSecondary,
        reason: "test".into(),
        source_agency: "TEST".into(),
        valid_from_ms: None,
        valid_until_ms: None,
        version: 1,
        created_by: "tester".into(),
        updated_by: "tester".into(),
        retired: false,
    }
}

pub fn traveller(names: Vec<PersonName>, dob: Option<&str>, sex: Sex) -> Identity {
    Identity {
        names,
        dob: dob.map(date),
        sex,
        nationality: None,
        documents: vec![],
    }
}

pub fn shares_key(identity: &Identity, lookout: &Lookout) -> bool {
    let probes = identity_probe_keys(identity);
    index_keys(lookout)
        .iter()
        .any(|k| probes.binary_search(k).is_ok())
}

/// Deterministic SplitMix64 generator (no external RNG: test figures are reproducible).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 1.0 < p
    }
}
