//! # lookout-gen
//!
//! Deterministic synthetic data for Lookout tests and benchmarks: a
//! watch-list of [`Lookout`]s and a population of travellers, some of whom
//! are **planted** matches against known lookouts, with ground truth.
//!
//! * **Pure and deterministic.** No I/O except the JSON Lines writers (which
//!   write to the `Write` they are given), no clock, no network, no global
//!   state. Every record is a function of the [`GenConfig`] and its index:
//!   lookout `i` uses a generator seeded from `(seed, "lookout", i)`,
//!   traveller `j` one seeded from `(seed, "traveller", j)`, so any record can
//!   be produced on its own ([`lookout`], [`traveller`]), in any order, on
//!   any thread, and a range can be produced without the rest
//!   ([`lookouts_range`], [`travellers_range`]). The generator (xoshiro256**
//!   seeded through SplitMix64) is implemented in this crate, so output
//!   does not change with dependency upgrades.
//! * **Streaming.** [`lookouts`] and [`travellers`] are lazy iterators; a
//!   million lookouts or ten million travellers never have to be in memory.
//!   A planted traveller regenerates its target lookout by index.
//! * **Realistic names.** Twelve naming cultures in six traditions
//!   ([`Tradition`]): Anglo; Hispanic (two surnames, `DE`/`DEL`/`LA`
//!   particles); Arabic (`AL-`/`EL-`/glued article, `BIN`/`IBN`,
//!   transliteration variants such as `MOHAMMED`/`MUHAMMAD`/`MOHAMAD`);
//!   Slavic (Russian/Ukrainian transliterations, Polish/Czech/Croatian
//!   diacritics and feminine surname forms); East Asian (Chinese pinyin and
//!   Wade-Giles, Vietnamese `NGUYEN VAN AN`, Korean romanisations, order
//!   swaps); South Asian (Hindu, Sikh, Tamil, Pakistani, Bangladeshi). The
//!   name tables are static and written for this crate.
//!
//! ## Plants
//!
//! A fraction [`GenConfig::plant_rate`] of travellers is built from a
//! randomly chosen active lookout, in one of the [`PlantClass`]es (weights
//! [`GenConfig::class_weights`]). All classes but [`PlantClass::NearMiss`]
//! are the same person and should match; `NearMiss` is a different person
//! who must not. Unplanted travellers are random people and can still
//! collide with a lookout by chance: ground truth only asserts plants.
//!
//! See [`manifest`] for a flight's passenger list with an exact number of
//! actionable true matches.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod data;
mod names;
mod rng;
mod tables;

use std::io::{self, Write};
use std::ops::Range;

use lookout_screening::date::days_in_month;
use lookout_screening::{
    Category, CountryCode, DocType, Document, Identity, Lookout, PartialDate, PersonName, Sex,
    Subject,
};
use serde::{Deserialize, Serialize};

pub use names::Tradition;
use names::{CULTURES, Culture, NameParts, Style, gen_name};
use rng::Rng;

/// Default reference time: 2026-01-01T00:00:00Z in unix milliseconds.
pub const DEFAULT_NOW_MS: u64 = 1_767_225_600_000;

const STREAM_LOOKOUT: u64 = 0x4C4F_4F4B_4F55_5401; // "LOOKOUT"+1
const STREAM_TRAVELLER: u64 = 0x5452_4156_454C_0002;
const STREAM_FLIGHT: u64 = 0x464C_4947_4854_0003;
const STREAM_MANIFEST: u64 = 0x4D41_4E49_4645_0004;
const STREAM_MANIFEST_SLOTS: u64 = 0x534C_4F54_5300_0005;

/// How many random lookouts a plant tries before giving up.
const PLANT_ATTEMPTS: usize = 256;

const DAY_MS: u64 = 86_400_000;
const YEAR_MS: u64 = 365 * DAY_MS;

/// Generation parameters. Everything generated is a pure function of this
/// value and the record index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenConfig {
    /// Master seed.
    pub seed: u64,
    /// Number of lookouts ([`lookouts`] yields indices `0..lookouts`).
    pub lookouts: u64,
    /// Number of travellers ([`travellers`] yields indices `0..travellers`).
    pub travellers: u64,
    /// Fraction of travellers planted against a lookout (default 0.01).
    pub plant_rate: f64,
    /// Relative weights of the plant classes, in [`PlantClass::ALL`] order.
    pub class_weights: [u32; 7],
    /// Reference "now" (unix ms): validity windows are generated around it,
    /// plants target lookouts active at it, flights arrive around it.
    pub now_ms: u64,
    /// Travellers `j` with the same `j / passengers_per_flight` share a flight.
    pub passengers_per_flight: u32,
}

impl GenConfig {
    /// Defaults for everything but the seed and the sizes.
    pub fn new(seed: u64, lookouts: u64, travellers: u64) -> Self {
        GenConfig {
            seed,
            lookouts,
            travellers,
            plant_rate: 0.01,
            class_weights: [15, 15, 12, 15, 15, 10, 18],
            now_ms: DEFAULT_NOW_MS,
            passengers_per_flight: 180,
        }
    }

    /// Same configuration with another plant rate.
    pub fn with_plant_rate(self, plant_rate: f64) -> Self {
        GenConfig { plant_rate, ..self }
    }
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig::new(0, 1_000, 10_000)
    }
}

/// How a planted traveller relates to its lookout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PlantClass {
    /// Presents the lookout's passport (same type, issuer and number); the
    /// name may be the same, respelt, or someone else's.
    ExactDocument,
    /// Same primary name (MRZ rendering) and the same full date of birth.
    ExactNameDob,
    /// Travels under one of the lookout's aliases.
    Alias,
    /// One or two name pieces in another recorded spelling (variant tables,
    /// Slavic suffix rules, Arabic article styles).
    Transliteration,
    /// One keyboard/OCR-style edit (substitution, insertion, deletion or
    /// transposition) in a given name or surname word; same full DOB.
    OneTypo,
    /// The lookout has only a birth year or year and month; the traveller
    /// has a full DOB consistent with it.
    PartialDob,
    /// A different person who must **not** match: same surname, different
    /// given name and a conflicting DOB; or a similar name with a birth year
    /// three or more years away.
    NearMiss,
}

impl PlantClass {
    /// All classes, in [`GenConfig::class_weights`] order.
    pub const ALL: [PlantClass; 7] = [
        PlantClass::ExactDocument,
        PlantClass::ExactNameDob,
        PlantClass::Alias,
        PlantClass::Transliteration,
        PlantClass::OneTypo,
        PlantClass::PartialDob,
        PlantClass::NearMiss,
    ];

    /// True for the classes that are the lookout's subject (all but `NearMiss`).
    pub fn is_true_match(self) -> bool {
        self != PlantClass::NearMiss
    }
}

/// A planted relation to a lookout.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Plant {
    /// The lookout the traveller was built from.
    pub lookout_id: String,
    /// How.
    pub class: PlantClass,
}

/// Ground truth of one traveller.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Truth {
    /// The plant, if any. `None` = a random person (who may still collide
    /// with some lookout by chance).
    pub planted: Option<Plant>,
}

/// The flight a generated traveller is on (the domain type).
pub use lookout_screening::Itinerary;

/// A generated traveller with its flight and ground truth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedTraveller {
    /// Stable id (`T0000000042`, or `M000007-012` in manifests).
    pub id: String,
    /// The identity to screen.
    pub identity: Identity,
    /// The flight.
    pub itinerary: Itinerary,
    /// Ground truth.
    pub truth: Truth,
}

/// One line of [`write_truth_jsonl`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TruthRecord {
    /// Traveller id.
    pub traveller_id: String,
    /// Planted lookout id.
    pub lookout_id: String,
    /// Plant class.
    pub class: PlantClass,
}

/// Id of lookout `i`: `L` and nine digits.
pub fn lookout_id(i: u64) -> String {
    format!("L{i:09}")
}

/// Index of a lookout id made by [`lookout_id`].
pub fn lookout_index(id: &str) -> Option<u64> {
    id.strip_prefix('L')?.parse().ok()
}

/// Id of traveller `j`: `T` and ten digits.
pub fn traveller_id(j: u64) -> String {
    format!("T{j:010}")
}

// ---------------------------------------------------------------------------
// Dates

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's algorithm). The one date conversion of the workspace: lookoutctl and the
/// bench use it too.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn current_year(cfg: &GenConfig) -> u16 {
    civil_from_days((cfg.now_ms / DAY_MS) as i64).0 as u16
}

fn random_day(rng: &mut Rng, year: u16) -> PartialDate {
    let m = rng.range(1, 12) as u8;
    let d = rng.range(1, u64::from(days_in_month(year, m))) as u8;
    PartialDate::ymd(year, m, d).expect("valid by construction")
}

/// Birth-year distribution by decade (1940s … 2000–2008), per mille.
const LOOKOUT_DECADES: [u32; 7] = [20, 50, 120, 200, 280, 250, 80];
const TRAVELLER_DECADES: [u32; 7] = [50, 100, 150, 180, 200, 200, 120];

fn random_dob(rng: &mut Rng, decades: &[u32; 7], culture: Culture) -> PartialDate {
    let dec = rng.weighted(decades) as u64;
    let year = if dec == 6 {
        2000 + rng.range(0, 8)
    } else {
        1940 + 10 * dec + rng.range(0, 9)
    } as u16;
    if rng.permille(culture.placeholder_dob_permille()) {
        return PartialDate::ymd(year, 1, 1).expect("valid");
    }
    random_day(rng, year)
}

/// A DOB that conflicts with `l` under any reasonable reading: a different
/// month in the same year (when `l` has a month and `min_gap < 3`) or a
/// birth year at least `min_gap` years away.
fn conflicting_dob(rng: &mut Rng, l: PartialDate, min_gap: u16) -> PartialDate {
    if min_gap < 3 && l.month.is_some() && rng.permille(500) {
        let lm = l.month.unwrap_or(1);
        loop {
            let m = rng.range(1, 12) as u8;
            if m == lm {
                continue;
            }
            let d = rng.range(1, u64::from(days_in_month(l.year, m))) as u8;
            // Not a day/month transposition of a full lookout DOB.
            if l.day == Some(m) && d == lm {
                continue;
            }
            return PartialDate::ymd(l.year, m, d).expect("valid");
        }
    }
    let gap = rng.range(u64::from(min_gap), 12) as u16;
    let up = l.year + gap;
    let down = l.year.saturating_sub(gap);
    let go_up = if up > 2010 {
        false
    } else {
        down < 1930 || rng.permille(500)
    };
    let year = if go_up { up } else { down };
    random_day(rng, year)
}

// ---------------------------------------------------------------------------
// Lookouts

/// A lookout together with how it was built (for plants).
#[derive(Clone, Debug)]
pub(crate) struct GenLookout {
    pub lookout: Lookout,
    pub culture: Culture,
    pub primary: NameParts,
    /// Aliases as parts, with whether the alias is a given/surname swap.
    pub aliases: Vec<(NameParts, bool)>,
    /// Whether the names were drawn from the female tables.
    pub female: bool,
    /// The subject's actual full birth date (the lookout may record less).
    pub full_dob: PartialDate,
}

const SECOND_NATIONALITIES: &[&str] = &["USA", "GBR", "CAN", "FRA", "DEU", "AUS", "ESP", "TUR"];

fn country(code: &str) -> CountryCode {
    CountryCode::parse(code).expect("generator tables hold valid country codes")
}

fn make_alias(
    rng: &mut Rng,
    g_culture: Culture,
    female: bool,
    primary: &NameParts,
) -> (NameParts, bool) {
    let different = |rng: &mut Rng| {
        let c = if rng.permille(150) {
            *rng.weighted_pick(&CULTURES)
        } else {
            g_culture
        };
        (gen_name(rng, c, female), false)
    };
    let (alias, swapped) = match rng.weighted(&[40, 25, 15, 10, 10]) {
        0 => different(rng),
        1 => {
            let mut n = primary.clone();
            if n.respell(rng, 1) {
                (n, false)
            } else {
                different(rng)
            }
        }
        2 => {
            let mut n = primary.clone();
            n.surname = gen_name(rng, g_culture, female).surname;
            (n, false)
        }
        3 => {
            let mut n = primary.clone();
            if n.given.pieces.len() >= 2 {
                n.given.pieces.truncate(1);
                (n, false)
            } else if n.surname.pieces.len() >= 2 {
                let keep = if g_culture == Culture::Arabic {
                    *n.surname.pieces.last().expect("non-empty")
                } else {
                    n.surname.pieces[0]
                };
                n.surname.pieces = vec![keep];
                (n, false)
            } else {
                different(rng)
            }
        }
        _ if g_culture.order_swap_prone() => (primary.clone(), true),
        _ => different(rng),
    };
    if !swapped && alias.tokens() == primary.tokens() {
        return different(rng);
    }
    (alias, swapped)
}

pub(crate) fn gen_lookout(cfg: &GenConfig, i: u64) -> GenLookout {
    let mut r = Rng::for_record(cfg.seed, STREAM_LOOKOUT, i);
    let culture = *r.weighted_pick(&CULTURES);
    let sex = [Sex::Male, Sex::Female, Sex::Unknown][r.weighted(&[80, 18, 2])];
    let female = match sex {
        Sex::Female => true,
        Sex::Male => false,
        Sex::Unknown => r.permille(300),
    };
    let primary = gen_name(&mut r, culture, female);
    let style = Style {
        upper: r.permille(800),
        mrz: r.permille(400),
        swapped: if culture.order_swap_prone() {
            r.permille(150)
        } else {
            r.permille(15)
        },
    };
    let full_dob = random_dob(&mut r, &LOOKOUT_DECADES, culture);
    let dob = match r.weighted(&[80, 10, 5, 5]) {
        0 => Some(full_dob),
        1 => Some(PartialDate::year_only(full_dob.year).expect("valid")),
        2 => Some(PartialDate::new(full_dob.year, full_dob.month, None).expect("valid")),
        _ => None,
    };
    let nat0: &&str = r.weighted_pick(culture.nationalities());
    let mut nationalities = vec![country(nat0)];
    if r.permille(50) {
        let second = *r.pick(SECOND_NATIONALITIES);
        if second != nationalities[0].as_str() {
            nationalities.push(country(second));
        }
    }

    let mut aliases = Vec::new();
    if r.permille(300) {
        let n = [1, 2, 3][r.weighted(&[60, 30, 10])];
        for _ in 0..n {
            let a = make_alias(&mut r, culture, female, &primary);
            if !aliases
                .iter()
                .any(|(b, s): &(NameParts, bool)| *b == a.0 && *s == a.1)
            {
                aliases.push(a);
            }
        }
    }

    let this_year = current_year(cfg);
    let expiry = |r: &mut Rng| {
        if r.permille(500) {
            let y = this_year.saturating_sub(3) + r.below(14) as u16;
            Some(random_day(r, y))
        } else {
            None
        }
    };
    let mut documents = Vec::new();
    if r.permille(900) {
        let c = nationalities[0].clone();
        documents.push(Document {
            doc_type: DocType::Passport,
            number: data::passport_number(&mut r, c.as_str()),
            country: c,
            expiry: expiry(&mut r),
        });
    }
    if let Some(c2) = nationalities.get(1).cloned()
        && r.permille(700)
    {
        documents.push(Document {
            doc_type: DocType::Passport,
            number: data::passport_number(&mut r, c2.as_str()),
            country: c2,
            expiry: expiry(&mut r),
        });
    }
    if r.permille(80) {
        let c = nationalities[0].clone();
        documents.push(Document {
            doc_type: DocType::NationalId,
            number: data::national_id_number(&mut r, c.as_str()),
            country: c,
            expiry: None,
        });
    }

    let category = [
        Category::NoBoard,
        Category::ReferSecondary,
        Category::AlertOnly,
    ][r.weighted(&[10, 60, 30])];
    let reason = data::reason(&mut r, category);
    let source_agency = r.weighted_pick(data::AGENCIES).to_string();

    let now = cfg.now_ms;
    let mut valid_from_ms = match r.weighted(&[80, 19, 1]) {
        0 => Some(now.saturating_sub(r.range(DAY_MS, 8 * YEAR_MS))),
        1 => None,
        _ => Some(now + r.range(DAY_MS, 90 * DAY_MS)),
    };
    let valid_until_ms = match r.weighted(&[88, 6, 6]) {
        0 => None,
        1 => Some(now.saturating_sub(r.range(DAY_MS, 3 * YEAR_MS)).max(2)),
        _ => Some(now + r.range(30 * DAY_MS, 5 * YEAR_MS)),
    };
    if let (Some(from), Some(until)) = (valid_from_ms, valid_until_ms)
        && from >= until
    {
        valid_from_ms = Some(
            until
                .saturating_sub(r.range(30 * DAY_MS, 5 * YEAR_MS))
                .min(until - 1),
        );
    }

    let version = if r.permille(700) { 1 } else { r.range(2, 5) };
    let created_by = if r.permille(600) {
        format!("analyst.{:03}", r.below(400))
    } else {
        format!("svc.import.{}", source_agency.to_ascii_lowercase())
    };
    let updated_by = if version == 1 {
        created_by.clone()
    } else {
        format!("analyst.{:03}", r.below(400))
    };

    let lookout = Lookout {
        id: lookout_id(i),
        subject: Subject {
            name: primary.render(style),
            aliases: aliases
                .iter()
                .map(|(a, swapped)| {
                    a.render(Style {
                        swapped: *swapped != style.swapped,
                        ..style
                    })
                })
                .collect(),
            dob,
            sex,
            nationalities,
        },
        documents,
        category,
        reason,
        source_agency,
        valid_from_ms,
        valid_until_ms,
        version,
        created_by,
        updated_by,
        retired: false,
    };
    GenLookout {
        lookout,
        culture,
        primary,
        aliases,
        female,
        full_dob,
    }
}

/// Lookout `i` (any `i`, also beyond `cfg.lookouts`).
pub fn lookout(cfg: &GenConfig, i: u64) -> Lookout {
    gen_lookout(cfg, i).lookout
}

/// The naming tradition lookout `i` was generated from.
pub fn lookout_tradition(cfg: &GenConfig, i: u64) -> Tradition {
    gen_lookout(cfg, i).culture.tradition()
}

/// Lookouts `0..cfg.lookouts`, lazily.
pub fn lookouts(cfg: &GenConfig) -> impl Iterator<Item = Lookout> + use<> {
    lookouts_range(cfg, 0..cfg.lookouts)
}

/// Lookouts with indices in `range`, lazily (for chunked / parallel generation).
pub fn lookouts_range(cfg: &GenConfig, range: Range<u64>) -> impl Iterator<Item = Lookout> + use<> {
    let cfg = cfg.clone();
    range.map(move |i| lookout(&cfg, i))
}

// ---------------------------------------------------------------------------
// Travellers

fn traveller_style(rng: &mut Rng) -> Style {
    Style {
        upper: rng.permille(970),
        mrz: rng.permille(850),
        swapped: rng.permille(10),
    }
}

fn future_expiry(rng: &mut Rng, cfg: &GenConfig) -> PartialDate {
    let year = current_year(cfg) + 1 + rng.below(9) as u16;
    random_day(rng, year)
}

fn fresh_passport(rng: &mut Rng, cfg: &GenConfig, nationality: &CountryCode) -> Document {
    Document {
        doc_type: DocType::Passport,
        country: nationality.clone(),
        number: data::passport_number(rng, nationality.as_str()),
        expiry: Some(future_expiry(rng, cfg)),
    }
}

fn random_identity(cfg: &GenConfig, rng: &mut Rng) -> Identity {
    let culture = *rng.weighted_pick(&CULTURES);
    let sex = [Sex::Male, Sex::Female, Sex::Unknown][rng.weighted(&[495, 495, 10])];
    let female = match sex {
        Sex::Female => true,
        Sex::Male => false,
        Sex::Unknown => rng.permille(500),
    };
    let name = gen_name(rng, culture, female).render(traveller_style(rng));
    let dob = random_dob(rng, &TRAVELLER_DECADES, culture);
    let nat: &&str = rng.weighted_pick(culture.nationalities());
    let nationality = country(nat);
    let passport = fresh_passport(rng, cfg, &nationality);
    Identity {
        names: vec![name],
        dob: Some(dob),
        sex,
        nationality: Some(nationality),
        documents: vec![passport],
    }
}

/// The flight `flight_index`.
pub fn itinerary(cfg: &GenConfig, flight_index: u64) -> Itinerary {
    let mut r = Rng::for_record(cfg.seed, STREAM_FLIGHT, flight_index);
    let carrier = r.pick(data::CARRIERS).to_string();
    let flight_number = r.range(1, 2999).to_string();
    let arrival = *r.pick(data::ARRIVAL_PORTS);
    let departure = loop {
        let d = *r.pick(data::DEPARTURE_PORTS);
        if d != arrival {
            break d;
        }
    };
    let window = 72 * 3_600_000;
    let t = cfg.now_ms.saturating_sub(6 * 3_600_000) + r.below(window);
    Itinerary {
        carrier,
        flight_number,
        departure_port: departure.to_string(),
        arrival_port: arrival.to_string(),
        scheduled_arrival_ms: t - t % 300_000,
    }
}

fn suitable(cfg: &GenConfig, g: &GenLookout, class: PlantClass, actionable: bool) -> bool {
    let l = &g.lookout;
    if !l.is_active_at(cfg.now_ms) || (actionable && l.category == Category::AlertOnly) {
        return false;
    }
    let dob = l.subject.dob;
    match class {
        PlantClass::ExactDocument => l.documents.iter().any(|d| d.doc_type == DocType::Passport),
        PlantClass::ExactNameDob | PlantClass::OneTypo => dob.is_some_and(|d| d.is_full()),
        PlantClass::Alias => !g.aliases.is_empty(),
        PlantClass::Transliteration => !g.primary.spelling_edits().is_empty(),
        PlantClass::PartialDob => dob.is_some_and(|d| !d.is_full()),
        PlantClass::NearMiss => dob.is_some(),
    }
}

const QWERTY: [&str; 3] = ["QWERTYUIOP", "ASDFGHJKL", "ZXCVBNM"];

fn keyboard_neighbour(rng: &mut Rng, c: char) -> char {
    let up = c.to_ascii_uppercase();
    for (ri, row) in QWERTY.iter().enumerate() {
        if let Some(ci) = row.find(up) {
            let mut opts: Vec<char> = Vec::new();
            let row_b = row.as_bytes();
            if ci > 0 {
                opts.push(char::from(row_b[ci - 1]));
            }
            if ci + 1 < row_b.len() {
                opts.push(char::from(row_b[ci + 1]));
            }
            for adj in [ri.wrapping_sub(1), ri + 1] {
                if let Some(other) = QWERTY.get(adj) {
                    let ob = other.as_bytes();
                    for k in [ci.wrapping_sub(1), ci, ci + 1] {
                        if let Some(&b) = ob.get(k) {
                            opts.push(char::from(b));
                        }
                    }
                }
            }
            return *rng.pick(&opts);
        }
    }
    random_letter(rng)
}

fn random_letter(rng: &mut Rng) -> char {
    char::from(b'A' + rng.below(26) as u8)
}

fn match_case(like: char, c: char) -> char {
    if like.is_lowercase() {
        c.to_ascii_lowercase()
    } else {
        c
    }
}

/// One realistic edit of `w` (≥ 3 letters). `None` if the result would be
/// unchanged.
fn typo_word(rng: &mut Rng, w: &[char]) -> Option<Vec<char>> {
    let n = w.len();
    let pos = |rng: &mut Rng, hi: usize| -> usize {
        // Typos in the first letter are rarer.
        if rng.permille(100) {
            0
        } else {
            1 + rng.index(hi - 1)
        }
    };
    let mut out = w.to_vec();
    match rng.weighted(&[35, 20, 20, 25]) {
        0 => {
            let p = pos(rng, n);
            let c = if rng.permille(700) {
                keyboard_neighbour(rng, out[p])
            } else {
                random_letter(rng)
            };
            out[p] = match_case(out[p], c);
        }
        1 => {
            let p = pos(rng, n);
            out.remove(p);
        }
        2 => {
            let p = 1 + rng.index(n);
            let prev = out[p - 1];
            let c = match rng.weighted(&[40, 40, 20]) {
                0 => prev,
                1 => match_case(prev, keyboard_neighbour(rng, prev)),
                _ => match_case(prev, random_letter(rng)),
            };
            out.insert(p, c);
        }
        _ => {
            let starts: Vec<usize> = (0..n - 1).filter(|&i| w[i] != w[i + 1]).collect();
            if starts.is_empty() {
                return None;
            }
            let p = if starts.len() > 1 && !rng.permille(100) {
                starts[1 + rng.index(starts.len() - 1)]
            } else {
                starts[0]
            };
            out.swap(p, p + 1);
        }
    }
    (out != w).then_some(out)
}

/// Applies one typo to a word of the given name or surname of `name`.
fn typo_name(rng: &mut Rng, name: &PersonName) -> Option<PersonName> {
    // Candidate words: (in surname, char start, char len).
    let words = |s: &str| -> Vec<(usize, usize)> {
        let chars: Vec<char> = s.chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_alphabetic() {
                let st = i;
                while i < chars.len() && chars[i].is_alphabetic() {
                    i += 1;
                }
                out.push((st, i - st));
            } else {
                i += 1;
            }
        }
        out
    };
    let is_particle = |chars: &[char]| {
        let s: String = chars.iter().collect::<String>().to_uppercase();
        lookout_screening::normalise::is_particle(&s)
    };
    let mut cands: Vec<(bool, usize, usize)> = Vec::new();
    for min in [4usize, 3] {
        for (surname, text) in [(false, &name.given), (true, &name.surname)] {
            let chars: Vec<char> = text.chars().collect();
            for (st, len) in words(text) {
                if len >= min && !is_particle(&chars[st..st + len]) {
                    cands.push((surname, st, len));
                }
            }
        }
        if !cands.is_empty() {
            break;
        }
    }
    if cands.is_empty() {
        return None;
    }
    // Prefer the surname 60:40 when both parts have candidates.
    let in_surname: Vec<_> = cands.iter().filter(|c| c.0).copied().collect();
    let in_given: Vec<_> = cands.iter().filter(|c| !c.0).copied().collect();
    let pool = if in_given.is_empty() || (!in_surname.is_empty() && rng.permille(600)) {
        in_surname
    } else {
        in_given
    };
    let (surname, st, len) = *rng.pick(&pool);
    let text = if surname { &name.surname } else { &name.given };
    let chars: Vec<char> = text.chars().collect();
    for _ in 0..8 {
        let Some(w) = typo_word(rng, &chars[st..st + len]) else {
            continue;
        };
        if is_particle(&w) {
            continue;
        }
        let mut new: Vec<char> = chars[..st].to_vec();
        new.extend(w);
        new.extend(&chars[st + len..]);
        let new: String = new.into_iter().collect();
        let mut out = name.clone();
        if surname {
            out.surname = new;
        } else {
            out.given = new;
        }
        return Some(out);
    }
    None
}

fn lookout_passport(l: &Lookout) -> Option<&Document> {
    l.documents.iter().find(|d| d.doc_type == DocType::Passport)
}

/// Builds the traveller identity of a plant of `class` on `g`.
fn build_plant(
    cfg: &GenConfig,
    r: &mut Rng,
    class: PlantClass,
    g: &GenLookout,
) -> Option<Identity> {
    let l = &g.lookout;
    let sex = match l.subject.sex {
        Sex::Unknown => {
            if g.female {
                Sex::Female
            } else {
                Sex::Male
            }
        }
        s => s,
    };
    let nationality = l
        .subject
        .nationalities
        .first()
        .cloned()
        .unwrap_or_else(|| country("XXX"));
    let style = traveller_style(r);
    let primary = || {
        g.primary.render(Style {
            swapped: style.swapped,
            ..style
        })
    };
    // The traveller's (full) DOB when it should agree with the lookout's.
    let consistent_dob = match l.subject.dob {
        Some(d) if d.is_full() => d,
        _ => g.full_dob,
    };
    let mut documents = None;
    let (name, dob, sex) = match class {
        PlantClass::ExactDocument => {
            let mut doc = lookout_passport(l)?.clone();
            if r.permille(100) {
                // Keyed in by hand: spaced or lower case.
                let n: Vec<char> = doc.number.chars().collect();
                let mid = n.len() / 2;
                doc.number = if r.permille(500) {
                    format!(
                        "{} {}",
                        n[..mid].iter().collect::<String>(),
                        n[mid..].iter().collect::<String>()
                    )
                } else {
                    doc.number.to_lowercase()
                };
            }
            if doc.expiry.is_none() {
                doc.expiry = Some(future_expiry(r, cfg));
            }
            documents = Some(vec![doc]);
            let name = match r.weighted(&[60, 15, 25]) {
                0 => primary(),
                1 => {
                    let mut n = g.primary.clone();
                    if n.respell(r, 1) {
                        n.render(style)
                    } else if let Some((a, sw)) = g.aliases.first() {
                        a.render(Style {
                            swapped: *sw,
                            ..style
                        })
                    } else {
                        primary()
                    }
                }
                _ => gen_name(r, g.culture, g.female).render(style),
            };
            let dob = if r.permille(750) {
                consistent_dob
            } else {
                random_dob(r, &TRAVELLER_DECADES, g.culture)
            };
            (name, dob, sex)
        }
        PlantClass::ExactNameDob => (primary(), l.subject.dob?, sex),
        PlantClass::Alias => {
            let (a, sw) = r.pick(&g.aliases);
            (
                a.render(Style {
                    swapped: *sw,
                    ..style
                }),
                consistent_dob,
                sex,
            )
        }
        PlantClass::Transliteration => {
            let mut n = g.primary.clone();
            let count = if r.permille(300) { 2 } else { 1 };
            if !n.respell(r, count) {
                return None;
            }
            (
                n.render(Style {
                    swapped: style.swapped,
                    ..style
                }),
                consistent_dob,
                sex,
            )
        }
        PlantClass::OneTypo => (typo_name(r, &primary())?, l.subject.dob?, sex),
        PlantClass::PartialDob => (primary(), g.full_dob, sex),
        PlantClass::NearMiss => {
            let ldob = l.subject.dob?;
            if r.permille(600) {
                // Same surname, another given name, conflicting DOB; maybe a relative.
                let female = r.permille(500);
                let mut n = g.primary.clone();
                if !n.replace_given(r, female) {
                    return None;
                }
                let sex = if female { Sex::Female } else { Sex::Male };
                (n.render(style), conflicting_dob(r, ldob, 2), sex)
            } else {
                // Similar name, born three or more years apart.
                let name = match r.weighted(&[40, 30, 30]) {
                    0 => primary(),
                    1 => {
                        let mut n = g.primary.clone();
                        n.respell(r, 1);
                        n.render(style)
                    }
                    _ => {
                        let p = primary();
                        typo_name(r, &p).unwrap_or(p)
                    }
                };
                (name, conflicting_dob(r, ldob, 3), sex)
            }
        }
    };
    let documents = match documents {
        Some(d) => d,
        None => vec![fresh_passport(r, cfg, &nationality)],
    };
    Some(Identity {
        names: vec![name],
        dob: Some(dob),
        sex,
        nationality: Some(nationality),
        documents,
    })
}

/// Tries random lookouts until one suits `class`; `None` after
/// [`PLANT_ATTEMPTS`] failures.
fn plant(
    cfg: &GenConfig,
    r: &mut Rng,
    class: PlantClass,
    actionable: bool,
) -> Option<(Identity, Plant)> {
    if cfg.lookouts == 0 {
        return None;
    }
    for _ in 0..PLANT_ATTEMPTS {
        let li = r.below(cfg.lookouts);
        let g = gen_lookout(cfg, li);
        if !suitable(cfg, &g, class, actionable) {
            continue;
        }
        if let Some(identity) = build_plant(cfg, r, class, &g) {
            return Some((
                identity,
                Plant {
                    lookout_id: g.lookout.id,
                    class,
                },
            ));
        }
    }
    None
}

/// Traveller `j` (any `j`). Planted with probability `cfg.plant_rate`;
/// a plant for which no suitable lookout is found among
/// 256 random tries is replaced by a random person (only happens
/// with tiny or unusual watch-lists).
pub fn traveller(cfg: &GenConfig, j: u64) -> GeneratedTraveller {
    let mut r = Rng::for_record(cfg.seed, STREAM_TRAVELLER, j);
    let flight = j / u64::from(cfg.passengers_per_flight.max(1));
    let itinerary = itinerary(cfg, flight);
    let wants_plant =
        cfg.lookouts > 0 && cfg.class_weights.iter().any(|&w| w > 0) && r.chance(cfg.plant_rate);
    let mut planted = None;
    if wants_plant {
        let class = PlantClass::ALL[r.weighted(&cfg.class_weights)];
        planted = plant(cfg, &mut r, class, false);
    }
    let (identity, truth) = match planted {
        Some((identity, p)) => (identity, Truth { planted: Some(p) }),
        None => (random_identity(cfg, &mut r), Truth::default()),
    };
    GeneratedTraveller {
        id: traveller_id(j),
        identity,
        itinerary,
        truth,
    }
}

/// Travellers `0..cfg.travellers`, lazily.
pub fn travellers(cfg: &GenConfig) -> impl Iterator<Item = GeneratedTraveller> + use<> {
    travellers_range(cfg, 0..cfg.travellers)
}

/// Travellers with indices in `range`, lazily.
pub fn travellers_range(
    cfg: &GenConfig,
    range: Range<u64>,
) -> impl Iterator<Item = GeneratedTraveller> + use<> {
    let cfg = cfg.clone();
    range.map(move |j| traveller(&cfg, j))
}

/// The passenger list of flight `flight_index` (see [`itinerary`]):
/// `passengers` travellers of whom exactly `planted`, at deterministic
/// random positions, are planted **true** matches (never `NearMiss`;
/// classes by `cfg.class_weights`) against **active, non-`AlertOnly`**
/// lookouts, so that screening them should yield `ReferSecondary` or
/// `NoBoard`. The others are random people (not planted; as everywhere, a
/// chance collision with some lookout is possible). Ids are
/// `M<flight:06>-<seat:03>`.
///
/// # Panics
///
/// If `planted > passengers`, or if `planted > 0` and no active actionable
/// lookout exists among `0..cfg.lookouts`.
pub fn manifest(
    cfg: &GenConfig,
    flight_index: u64,
    passengers: usize,
    planted: usize,
) -> (Itinerary, Vec<GeneratedTraveller>) {
    assert!(
        planted <= passengers,
        "manifest: planted ({planted}) exceeds passengers ({passengers})"
    );
    let itin = itinerary(cfg, flight_index);
    let mut slots_rng = Rng::from_parts(&[cfg.seed, STREAM_MANIFEST_SLOTS, flight_index]);
    let mut order: Vec<usize> = (0..passengers).collect();
    for k in 0..planted {
        let j = k + slots_rng.index(passengers - k);
        order.swap(k, j);
    }
    let mut is_planted = vec![false; passengers];
    for &p in &order[..planted] {
        is_planted[p] = true;
    }
    let mut weights = cfg.class_weights;
    weights[6] = 0; // NearMiss
    if weights.iter().all(|&w| w == 0) {
        weights = [1, 1, 1, 1, 1, 1, 0];
    }
    let travellers = (0..passengers)
        .map(|p| {
            let mut r = Rng::from_parts(&[cfg.seed, STREAM_MANIFEST, flight_index, p as u64]);
            let (identity, truth) = if is_planted[p] {
                let class = PlantClass::ALL[r.weighted(&weights)];
                let (identity, plant) = plant(cfg, &mut r, class, true)
                    .or_else(|| plant_scan(cfg, &mut r, &weights))
                    .unwrap_or_else(|| {
                        panic!(
                            "manifest: no active, actionable lookout among {} to plant against",
                            cfg.lookouts
                        )
                    });
                (
                    identity,
                    Truth {
                        planted: Some(plant),
                    },
                )
            } else {
                (random_identity(cfg, &mut r), Truth::default())
            };
            GeneratedTraveller {
                id: format!("M{flight_index:06}-{p:03}"),
                identity,
                itinerary: itin.clone(),
                truth,
            }
        })
        .collect();
    (itin, travellers)
}

/// Exhaustive fallback for [`manifest`]: scans lookouts (from a random
/// start, at most 1,000,000) for any class with a positive weight.
fn plant_scan(cfg: &GenConfig, r: &mut Rng, weights: &[u32; 7]) -> Option<(Identity, Plant)> {
    if cfg.lookouts == 0 {
        return None;
    }
    let start = r.below(cfg.lookouts);
    for k in 0..cfg.lookouts.min(1_000_000) {
        let g = gen_lookout(cfg, (start + k) % cfg.lookouts);
        for (ci, &class) in PlantClass::ALL.iter().enumerate() {
            if weights[ci] == 0 || !suitable(cfg, &g, class, true) {
                continue;
            }
            if let Some(identity) = build_plant(cfg, r, class, &g) {
                return Some((
                    identity,
                    Plant {
                        lookout_id: g.lookout.id,
                        class,
                    },
                ));
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------
// JSON Lines

fn json_err(e: serde_json::Error) -> io::Error {
    io::Error::other(e)
}

/// Writes every lookout as one JSON object per line (serde form of
/// [`Lookout`]). Returns the number of lines.
pub fn write_lookouts_jsonl<W: Write>(cfg: &GenConfig, w: W) -> io::Result<u64> {
    let mut w = io::BufWriter::with_capacity(1 << 16, w);
    let mut n = 0;
    for l in lookouts(cfg) {
        serde_json::to_writer(&mut w, &l).map_err(json_err)?;
        w.write_all(b"\n")?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

#[derive(Serialize)]
struct TravellerLine<'a> {
    id: &'a str,
    identity: &'a Identity,
    itinerary: &'a Itinerary,
}

/// Writes every traveller as `{"id", "identity", "itinerary"}` per line,
/// **without** the ground truth (see [`write_truth_jsonl`]). Returns the
/// number of lines.
pub fn write_travellers_jsonl<W: Write>(cfg: &GenConfig, w: W) -> io::Result<u64> {
    let mut w = io::BufWriter::with_capacity(1 << 16, w);
    let mut n = 0;
    for t in travellers(cfg) {
        let line = TravellerLine {
            id: &t.id,
            identity: &t.identity,
            itinerary: &t.itinerary,
        };
        serde_json::to_writer(&mut w, &line).map_err(json_err)?;
        w.write_all(b"\n")?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}

/// Writes one [`TruthRecord`] per **planted** traveller (unplanted
/// travellers have no line). Returns the number of lines.
pub fn write_truth_jsonl<W: Write>(cfg: &GenConfig, w: W) -> io::Result<u64> {
    let mut w = io::BufWriter::with_capacity(1 << 16, w);
    let mut n = 0;
    for t in travellers(cfg) {
        if let Some(p) = t.truth.planted {
            let rec = TruthRecord {
                traveller_id: t.id,
                lookout_id: p.lookout_id,
                class: p.class,
            };
            serde_json::to_writer(&mut w, &rec).map_err(json_err)?;
            w.write_all(b"\n")?;
            n += 1;
        }
    }
    w.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests;
