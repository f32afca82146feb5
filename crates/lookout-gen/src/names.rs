//! Naming cultures and the structured name model.
//!
//! A generated name is kept as [`NameParts`]: for the given-name part and the
//! surname part, a list of [`Piece`]s, each one entry of a culture's table
//! plus the chosen spelling variant, an optional Arabic article style and a
//! feminine-inflection flag. Plants derive the traveller's name from the
//! lookout's parts (swap a spelling variant, change the article style,
//! render in MRZ form), and [`NameParts::render`] turns parts into a
//! [`PersonName`] in a given [`Style`].

use std::sync::OnceLock;

use lookout_screening::PersonName;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::rng::Rng;
use crate::tables::*;

/// Broad naming tradition of a generated person (reporting / statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Tradition {
    /// English-speaking countries.
    Anglo,
    /// Spanish-speaking countries (two surnames, particles DE/DEL/LA).
    Hispanic,
    /// Arabic names in Latin transliteration (AL-/EL-, BIN/IBN).
    Arabic,
    /// East, West and South Slavic (transliterated Cyrillic, diacritics).
    Slavic,
    /// Chinese, Vietnamese, Korean.
    EastAsian,
    /// Indian (Hindu, Sikh, Tamil), Nepali, Pakistani and Bangladeshi.
    SouthAsian,
}

impl Tradition {
    /// All traditions, in declaration order.
    pub const ALL: [Tradition; 6] = [
        Tradition::Anglo,
        Tradition::Hispanic,
        Tradition::Arabic,
        Tradition::Slavic,
        Tradition::EastAsian,
        Tradition::SouthAsian,
    ];
}

/// A naming culture: one set of tables, structure rules and nationalities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Culture {
    Anglo,
    Hispanic,
    Arabic,
    EastSlavic,
    Polish,
    Czech,
    SouthSlavic,
    Chinese,
    Vietnamese,
    Korean,
    Hindu,
    SaMuslim,
}

/// Cultures with their share of the population, per mille.
pub(crate) const CULTURES: [(Culture, u32); 12] = [
    (Culture::Anglo, 320),
    (Culture::Hispanic, 200),
    (Culture::Arabic, 110),
    (Culture::EastSlavic, 45),
    (Culture::Polish, 25),
    (Culture::Czech, 10),
    (Culture::SouthSlavic, 20),
    (Culture::Chinese, 90),
    (Culture::Vietnamese, 30),
    (Culture::Korean, 30),
    (Culture::Hindu, 70),
    (Culture::SaMuslim, 50),
];

impl Culture {
    pub(crate) fn index(self) -> usize {
        CULTURES
            .iter()
            .position(|(c, _)| *c == self)
            .expect("every culture is listed")
    }

    pub(crate) fn tradition(self) -> Tradition {
        match self {
            Culture::Anglo => Tradition::Anglo,
            Culture::Hispanic => Tradition::Hispanic,
            Culture::Arabic => Tradition::Arabic,
            Culture::EastSlavic | Culture::Polish | Culture::Czech | Culture::SouthSlavic => {
                Tradition::Slavic
            }
            Culture::Chinese | Culture::Vietnamese | Culture::Korean => Tradition::EastAsian,
            Culture::Hindu | Culture::SaMuslim => Tradition::SouthAsian,
        }
    }

    /// Nationalities (ISO alpha-3) with weights.
    pub(crate) fn nationalities(self) -> &'static [(&'static str, u32)] {
        match self {
            Culture::Anglo => &[
                ("USA", 40),
                ("GBR", 25),
                ("CAN", 12),
                ("AUS", 10),
                ("IRL", 6),
                ("NZL", 4),
                ("ZAF", 2),
                ("JAM", 1),
            ],
            Culture::Hispanic => &[
                ("MEX", 28),
                ("COL", 10),
                ("ESP", 10),
                ("ARG", 7),
                ("PER", 6),
                ("VEN", 7),
                ("CUB", 4),
                ("DOM", 5),
                ("GTM", 5),
                ("CHL", 4),
                ("ECU", 4),
                ("SLV", 3),
                ("HND", 3),
                ("BOL", 2),
                ("NIC", 2),
                ("USA", 5),
                ("PRY", 1),
                ("URY", 1),
                ("CRI", 1),
                ("PAN", 1),
            ],
            Culture::Arabic => &[
                ("EGY", 15),
                ("SAU", 12),
                ("MAR", 10),
                ("SYR", 9),
                ("IRQ", 8),
                ("JOR", 7),
                ("DZA", 7),
                ("LBN", 6),
                ("TUN", 4),
                ("ARE", 4),
                ("YEM", 4),
                ("LBY", 3),
                ("SDN", 3),
                ("PSE", 3),
                ("KWT", 2),
                ("QAT", 1),
                ("OMN", 1),
                ("BHR", 1),
                ("FRA", 3),
                ("GBR", 2),
                ("DEU", 2),
                ("USA", 2),
            ],
            Culture::EastSlavic => &[("RUS", 55), ("UKR", 30), ("BLR", 8), ("KAZ", 4), ("BGR", 3)],
            Culture::Polish => &[("POL", 90), ("GBR", 5), ("DEU", 5)],
            Culture::Czech => &[("CZE", 70), ("SVK", 30)],
            Culture::SouthSlavic => &[
                ("SRB", 35),
                ("HRV", 30),
                ("BIH", 20),
                ("SVN", 5),
                ("MNE", 5),
                ("MKD", 5),
            ],
            Culture::Chinese => &[
                ("CHN", 75),
                ("TWN", 8),
                ("HKG", 7),
                ("SGP", 5),
                ("MYS", 3),
                ("USA", 1),
                ("CAN", 1),
            ],
            Culture::Vietnamese => &[("VNM", 92), ("USA", 5), ("AUS", 3)],
            Culture::Korean => &[("KOR", 95), ("USA", 5)],
            Culture::Hindu => &[("IND", 85), ("NPL", 5), ("GBR", 4), ("USA", 4), ("CAN", 2)],
            Culture::SaMuslim => &[("PAK", 55), ("BGD", 30), ("IND", 8), ("GBR", 5), ("AFG", 2)],
        }
    }

    /// Whether a share of this culture's records carry 1 January as a
    /// placeholder birth date (common where birth dates were not registered).
    pub(crate) fn placeholder_dob_permille(self) -> u64 {
        match self {
            Culture::Arabic | Culture::SaMuslim => 25,
            Culture::Vietnamese => 10,
            _ => 0,
        }
    }

    /// Whether lookouts of this culture often have given/surname swapped.
    pub(crate) fn order_swap_prone(self) -> bool {
        matches!(
            self,
            Culture::Chinese | Culture::Korean | Culture::Vietnamese
        )
    }
}

// ---------------------------------------------------------------------------
// Parsed tables

pub(crate) struct Tables {
    pub male: Vec<&'static str>,
    pub female: Vec<&'static str>,
    pub surnames: Vec<&'static str>,
    /// Arabic only: family names taking the article.
    pub article_surnames: Vec<&'static str>,
    /// Vietnamese only: middle names.
    pub middle_male: Vec<&'static str>,
    pub middle_female: Vec<&'static str>,
}

fn parse(list: &'static str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for e in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

pub(crate) fn tables(c: Culture) -> &'static Tables {
    static T: OnceLock<Vec<Tables>> = OnceLock::new();
    &T.get_or_init(|| {
        CULTURES
            .iter()
            .map(|(c, _)| {
                let (m, f, s) = match c {
                    Culture::Anglo => (ANGLO_MALE, ANGLO_FEMALE, ANGLO_SURNAMES),
                    Culture::Hispanic => (HISPANIC_MALE, HISPANIC_FEMALE, HISPANIC_SURNAMES),
                    Culture::Arabic => (ARABIC_MALE, ARABIC_FEMALE, ARABIC_PLAIN_SURNAMES),
                    Culture::EastSlavic => {
                        (EAST_SLAVIC_MALE, EAST_SLAVIC_FEMALE, EAST_SLAVIC_SURNAMES)
                    }
                    Culture::Polish => (POLISH_MALE, POLISH_FEMALE, POLISH_SURNAMES),
                    Culture::Czech => (CZECH_MALE, CZECH_FEMALE, CZECH_SURNAMES),
                    Culture::SouthSlavic => (
                        SOUTH_SLAVIC_MALE,
                        SOUTH_SLAVIC_FEMALE,
                        SOUTH_SLAVIC_SURNAMES,
                    ),
                    Culture::Chinese => (CHINESE_MALE, CHINESE_FEMALE, CHINESE_SURNAMES),
                    Culture::Vietnamese => {
                        (VIETNAMESE_MALE, VIETNAMESE_FEMALE, VIETNAMESE_SURNAMES)
                    }
                    Culture::Korean => (KOREAN_MALE, KOREAN_FEMALE, KOREAN_SURNAMES),
                    Culture::Hindu => (HINDU_MALE, HINDU_FEMALE, HINDU_SURNAMES),
                    Culture::SaMuslim => (SA_MUSLIM_MALE, SA_MUSLIM_FEMALE, SA_MUSLIM_SURNAMES),
                };
                Tables {
                    male: parse(m),
                    female: parse(f),
                    surnames: parse(s),
                    article_surnames: if *c == Culture::Arabic {
                        parse(ARABIC_ARTICLE_SURNAMES)
                    } else {
                        Vec::new()
                    },
                    middle_male: if *c == Culture::Vietnamese {
                        parse(VIETNAMESE_MIDDLE_MALE)
                    } else {
                        Vec::new()
                    },
                    middle_female: if *c == Culture::Vietnamese {
                        parse(VIETNAMESE_MIDDLE_FEMALE)
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect()
    })[c.index()]
}

// ---------------------------------------------------------------------------
// Name model

/// How an Arabic article is attached to a family name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Article {
    None,
    AlHyphen,
    AlSpace,
    AlGlued,
    ElHyphen,
    ElSpace,
}

pub(crate) const ARTICLE_STYLES: [(Article, u32); 5] = [
    (Article::AlHyphen, 45),
    (Article::AlSpace, 20),
    (Article::AlGlued, 15),
    (Article::ElHyphen, 12),
    (Article::ElSpace, 8),
];

/// One table entry with its chosen spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub group: &'static str,
    pub var: u8,
    pub article: Article,
    /// Apply the culture's feminine surname inflection.
    pub fem: bool,
}

impl Piece {
    pub(crate) fn plain(group: &'static str) -> Piece {
        Piece {
            group,
            var: 0,
            article: Article::None,
            fem: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Joiner {
    Space,
    Hyphen,
    Glued,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    pub pieces: Vec<Piece>,
    pub joiner: Joiner,
}

impl Part {
    fn new(pieces: Vec<Piece>) -> Part {
        Part {
            pieces,
            joiner: Joiner::Space,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NameParts {
    pub culture: Culture,
    pub given: Part,
    pub surname: Part,
}

/// How a name is written down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Style {
    /// Upper case (else title case).
    pub upper: bool,
    /// MRZ form: diacritics folded to ASCII, hyphens as spaces, apostrophes dropped.
    pub mrz: bool,
    /// Given name and surname recorded in each other's field.
    pub swapped: bool,
}

impl Style {
    #[cfg(test)]
    pub(crate) const MRZ: Style = Style {
        upper: true,
        mrz: true,
        swapped: false,
    };
}

/// All spellings of an entry in `culture`: the listed variants, then
/// rule-derived ones (East Slavic `-SKY`/`-SKIY`/`-SKII`; South Slavic
/// `-IĆ`/`-ICH` and `Đ`/`DJ`).
pub(crate) fn variants(culture: Culture, group: &'static str) -> Vec<String> {
    let mut v: Vec<String> = group.split('/').map(str::to_string).collect();
    let base = v[0].clone();
    match culture {
        Culture::EastSlavic => {
            if let Some(stem) = base.strip_suffix("SKY") {
                v.push(format!("{stem}SKIY"));
                v.push(format!("{stem}SKII"));
            }
        }
        Culture::SouthSlavic => {
            if let Some(stem) = base.strip_suffix("IĆ") {
                v.push(format!("{stem}ICH"));
            }
            if base.contains('Đ') {
                v.push(base.replace('Đ', "DJ"));
            }
        }
        _ => {}
    }
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for s in v {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn variant_text(culture: Culture, p: &Piece) -> String {
    if p.var == 0 {
        return p.group.split('/').next().unwrap_or(p.group).to_string();
    }
    let all = variants(culture, p.group);
    all.get(usize::from(p.var))
        .cloned()
        .unwrap_or_else(|| all[0].clone())
}

fn is_czech_vowel(c: char) -> bool {
    "AEIOUYÁÉĚÍÓÚŮÝ".contains(c)
}

/// Feminine form of a surname in `culture` (unchanged where the culture
/// does not inflect or the ending does not take it).
pub(crate) fn feminise(culture: Culture, s: &str, var: u8) -> String {
    match culture {
        Culture::EastSlavic => {
            for suf in ["SKIY", "SKII", "SKY"] {
                if let Some(stem) = s.strip_suffix(suf) {
                    return format!("{stem}{}", if var % 2 == 1 { "SKAIA" } else { "SKAYA" });
                }
            }
            if ["OV", "EV", "YOV", "IN", "YN"]
                .iter()
                .any(|e| s.ends_with(e))
            {
                return format!("{s}A");
            }
            s.to_string()
        }
        Culture::Polish => {
            for (m, f) in [("SKI", "SKA"), ("CKI", "CKA"), ("DZKI", "DZKA")] {
                if let Some(stem) = s.strip_suffix(m) {
                    return format!("{stem}{f}");
                }
            }
            s.to_string()
        }
        Culture::Czech => {
            if let Some(stem) = s.strip_suffix('Ý') {
                return format!("{stem}Á");
            }
            if let Some(stem) = s.strip_suffix('A') {
                return format!("{stem}OVÁ");
            }
            let chars: Vec<char> = s.chars().collect();
            let n = chars.len();
            if n >= 3
                && chars[n - 2] == 'E'
                && matches!(chars[n - 1], 'K' | 'C')
                && !is_czech_vowel(chars[n - 3])
            {
                let stem: String = chars[..n - 2].iter().collect();
                return format!("{stem}{}OVÁ", chars[n - 1]);
            }
            match chars.last() {
                Some(&c) if !is_czech_vowel(c) => format!("{s}OVÁ"),
                _ => s.to_string(),
            }
        }
        _ => s.to_string(),
    }
}

fn piece_text(culture: Culture, p: &Piece) -> String {
    let mut t = variant_text(culture, p);
    if p.fem {
        t = feminise(culture, &t, p.var);
    }
    match p.article {
        Article::None => t,
        Article::AlHyphen => format!("AL-{t}"),
        Article::AlSpace => format!("AL {t}"),
        Article::AlGlued => format!("AL{t}"),
        Article::ElHyphen => format!("EL-{t}"),
        Article::ElSpace => format!("EL {t}"),
    }
}

fn part_text(culture: Culture, part: &Part) -> String {
    let mut joiner = part.joiner;
    // Wade-Giles (variant) syllables are hyphenated, not run together.
    if culture == Culture::Chinese
        && joiner == Joiner::Glued
        && part.pieces.iter().any(|p| p.var > 0)
    {
        joiner = Joiner::Hyphen;
    }
    let sep = match joiner {
        Joiner::Space => " ",
        Joiner::Hyphen => "-",
        Joiner::Glued => "",
    };
    let mut out = String::new();
    for (i, p) in part.pieces.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&piece_text(culture, p));
    }
    out
}

/// MRZ-style folding: diacritics removed, a few letters transliterated,
/// hyphens become spaces, apostrophes disappear, upper case.
pub(crate) fn mrz_fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'Ł' | 'ł' => out.push('L'),
            'Đ' | 'đ' | 'Ð' | 'ð' => out.push('D'),
            'Ø' | 'ø' => out.push('O'),
            'Æ' | 'æ' => out.push_str("AE"),
            'Œ' | 'œ' => out.push_str("OE"),
            'ß' => out.push_str("SS"),
            'ı' => out.push('I'),
            '-' => out.push(' '),
            '\'' | '’' => {}
            _ => out.extend(c.to_uppercase()),
        }
    }
    out
}

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if c.is_alphabetic() {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            start = false;
        } else {
            out.push(c);
            start = true;
        }
    }
    out
}

pub(crate) fn apply_style(s: &str, style: Style) -> String {
    let base = if style.mrz {
        mrz_fold(s)
    } else {
        s.to_string()
    };
    if style.upper { base } else { title_case(&base) }
}

impl NameParts {
    pub(crate) fn given_text(&self) -> String {
        part_text(self.culture, &self.given)
    }

    pub(crate) fn surname_text(&self) -> String {
        part_text(self.culture, &self.surname)
    }

    pub(crate) fn render(&self, style: Style) -> PersonName {
        let g = apply_style(&self.given_text(), style);
        let s = apply_style(&self.surname_text(), style);
        if style.swapped {
            PersonName::new(s, g)
        } else {
            PersonName::new(g, s)
        }
    }

    /// Canonical tokens (MRZ fold, split on non-alphanumerics) for comparisons.
    pub(crate) fn tokens(&self) -> Vec<String> {
        tokens_of(&format!("{} {}", self.given_text(), self.surname_text()))
    }
}

pub(crate) fn tokens_of(s: &str) -> Vec<String> {
    mrz_fold(s)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------
// Generation

fn pick_entry(rng: &mut Rng, list: &[&'static str]) -> &'static str {
    // Tables are roughly in frequency order; skew mildly towards the front.
    let i = if rng.permille(350) {
        rng.index(list.len()).min(rng.index(list.len()))
    } else {
        rng.index(list.len())
    };
    list[i]
}

pub(crate) fn piece_from(rng: &mut Rng, culture: Culture, list: &[&'static str]) -> Piece {
    let group = pick_entry(rng, list);
    let n = variants(culture, group).len();
    let var = if n > 1 && rng.permille(300) {
        1 + rng.index(n - 1) as u8
    } else {
        0
    };
    Piece::plain(group).with_var(var)
}

impl Piece {
    fn with_var(mut self, var: u8) -> Piece {
        self.var = var;
        self
    }
}

fn article_piece(rng: &mut Rng, culture: Culture) -> Piece {
    let t = tables(culture);
    let mut p = piece_from(rng, culture, &t.article_surnames);
    p.article = *rng.weighted_pick(&ARTICLE_STYLES);
    p
}

fn given_list(culture: Culture, female: bool) -> &'static [&'static str] {
    let t = tables(culture);
    if female { &t.female } else { &t.male }
}

/// A distinct-group sequence of `n` given-name pieces.
fn given_pieces(rng: &mut Rng, culture: Culture, female: bool, n: usize) -> Vec<Piece> {
    let list = given_list(culture, female);
    let mut out: Vec<Piece> = Vec::with_capacity(n);
    let mut guard = 0;
    while out.len() < n && guard < 20 {
        guard += 1;
        let p = piece_from(rng, culture, list);
        if !out.iter().any(|q| q.group == p.group) {
            out.push(p);
        }
    }
    out
}

/// Pieces that are particles in every spelling.
const PARTICLE_GROUPS: [&str; 3] = ["BIN/IBN", "BINT", "Y"];

const FEMALE_ONLY_SURNAMES: [&str; 4] = ["KAUR", "BEGUM", "KHATUN/KHATOON", "BINT"];

fn surname_piece(rng: &mut Rng, culture: Culture, female: bool) -> Piece {
    let t = tables(culture);
    loop {
        let mut p = piece_from(rng, culture, &t.surnames);
        if !female && FEMALE_ONLY_SURNAMES.contains(&p.group) {
            continue;
        }
        if female && p.group == "SINGH" && rng.permille(800) {
            p = Piece::plain("KAUR");
        }
        p.fem = female;
        return p;
    }
}

/// A random person's name in `culture`.
pub(crate) fn gen_name(rng: &mut Rng, culture: Culture, female: bool) -> NameParts {
    let t = tables(culture);
    let (given, surname) = match culture {
        Culture::Anglo => {
            let n = [1, 2, 3][rng.weighted(&[50, 45, 5])];
            let g = Part::new(given_pieces(rng, culture, female, n));
            let mut s = Part::new(vec![surname_piece(rng, culture, female)]);
            if rng.permille(50) {
                s.pieces.push(surname_piece(rng, culture, female));
                s.joiner = Joiner::Hyphen;
            }
            (g, s)
        }
        Culture::Hispanic => {
            let n = if rng.permille(400) { 2 } else { 1 };
            let g = Part::new(given_pieces(rng, culture, female, n));
            let mut s = Part::new(vec![surname_piece(rng, culture, female)]);
            if rng.permille(800) {
                let second = surname_piece(rng, culture, female);
                match rng.weighted(&[93, 5, 2]) {
                    0 => s.pieces.push(second),
                    1 => {
                        s.pieces.push(second);
                        s.joiner = Joiner::Hyphen;
                    }
                    _ => {
                        s.pieces.push(Piece::plain("Y"));
                        s.pieces.push(second);
                    }
                }
            }
            (g, s)
        }
        Culture::Arabic => {
            let n = if rng.permille(150) { 2 } else { 1 };
            let g = Part::new(given_pieces(rng, culture, female, n));
            let s = match rng.weighted(&[35, 25, 15, 15, 10]) {
                0 => vec![article_piece(rng, culture)],
                1 => vec![piece_from(rng, culture, &t.surnames)],
                2 => {
                    let f = piece_from(rng, culture, &t.male);
                    let fam = if rng.permille(500) {
                        article_piece(rng, culture)
                    } else {
                        piece_from(rng, culture, &t.surnames)
                    };
                    vec![f, fam]
                }
                3 => {
                    let bin = if female {
                        Piece::plain("BINT")
                    } else {
                        Piece::plain("BIN/IBN").with_var(if rng.permille(250) { 1 } else { 0 })
                    };
                    vec![
                        bin,
                        piece_from(rng, culture, &t.male),
                        article_piece(rng, culture),
                    ]
                }
                _ => vec![piece_from(rng, culture, &t.male)],
            };
            (g, Part::new(s))
        }
        Culture::EastSlavic | Culture::Czech | Culture::SouthSlavic => {
            let g = Part::new(given_pieces(rng, culture, female, 1));
            let s = Part::new(vec![surname_piece(rng, culture, female)]);
            (g, s)
        }
        Culture::Polish => {
            let n = if rng.permille(150) { 2 } else { 1 };
            let g = Part::new(given_pieces(rng, culture, female, n));
            let mut s = Part::new(vec![surname_piece(rng, culture, female)]);
            if female && rng.permille(60) {
                s.pieces.push(surname_piece(rng, culture, female));
                s.joiner = Joiner::Hyphen;
            }
            (g, s)
        }
        Culture::Chinese => {
            let n = if rng.permille(350) { 1 } else { 2 };
            let mut g = Part::new(given_pieces(rng, culture, female, n));
            g.joiner = [Joiner::Glued, Joiner::Hyphen, Joiner::Space][rng.weighted(&[60, 25, 15])];
            let s = Part::new(vec![piece_from(rng, culture, &t.surnames)]);
            (g, s)
        }
        Culture::Vietnamese => {
            let mut pieces = Vec::new();
            if rng.permille(850) {
                let mid = if female {
                    &t.middle_female
                } else {
                    &t.middle_male
                };
                pieces.push(piece_from(rng, culture, mid));
            }
            let n = if rng.permille(100) { 2 } else { 1 };
            for p in given_pieces(rng, culture, female, n) {
                if !pieces.iter().any(|q: &Piece| q.group == p.group) {
                    pieces.push(p);
                }
            }
            let s = Part::new(vec![piece_from(rng, culture, &t.surnames)]);
            (Part::new(pieces), s)
        }
        Culture::Korean => {
            let n = if rng.permille(100) { 1 } else { 2 };
            let mut g = Part::new(given_pieces(rng, culture, female, n));
            g.joiner = [Joiner::Glued, Joiner::Hyphen, Joiner::Space][rng.weighted(&[35, 45, 20])];
            let s = Part::new(vec![piece_from(rng, culture, &t.surnames)]);
            (g, s)
        }
        Culture::Hindu => {
            let n = if rng.permille(150) { 2 } else { 1 };
            let g = Part::new(given_pieces(rng, culture, female, n));
            let s = if rng.permille(30) {
                Part::new(Vec::new()) // mononym
            } else {
                Part::new(vec![surname_piece(rng, culture, female)])
            };
            (g, s)
        }
        Culture::SaMuslim => {
            let mut pieces = Vec::new();
            if !female && rng.permille(250) {
                pieces.push(Piece::plain(t.male[0]).with_var(rng.index(5) as u8));
            }
            let n = if rng.permille(150) { 2 } else { 1 };
            for p in given_pieces(rng, culture, female, n) {
                if !pieces.iter().any(|q: &Piece| q.group == p.group) {
                    pieces.push(p);
                }
            }
            let s = Part::new(vec![surname_piece(rng, culture, female)]);
            (Part::new(pieces), s)
        }
    };
    NameParts {
        culture,
        given,
        surname,
    }
}

/// A transliteration/spelling edit of one piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Edit {
    Var {
        surname: bool,
        idx: usize,
        var: u8,
    },
    Article {
        surname: bool,
        idx: usize,
        article: Article,
    },
}

impl NameParts {
    fn part(&self, surname: bool) -> &Part {
        if surname { &self.surname } else { &self.given }
    }

    fn part_mut(&mut self, surname: bool) -> &mut Part {
        if surname {
            &mut self.surname
        } else {
            &mut self.given
        }
    }

    /// Every edit that changes the written tokens of one piece to another
    /// recorded spelling (variant tables, rule variants, article style).
    /// Grouped per piece: `(surname, idx, edits)`.
    pub(crate) fn spelling_edits(&self) -> Vec<(bool, usize, Vec<Edit>)> {
        let mut out = Vec::new();
        for surname in [false, true] {
            for (idx, p) in self.part(surname).pieces.iter().enumerate() {
                if PARTICLE_GROUPS.contains(&p.group) {
                    continue; // BIN/IBN: a particle, dropped by any normaliser
                }
                let orig = tokens_of(&piece_text(self.culture, p));
                let mut edits = Vec::new();
                let n = variants(self.culture, p.group).len();
                for v in 0..n as u8 {
                    if v == p.var {
                        continue;
                    }
                    let q = Piece { var: v, ..*p };
                    if tokens_of(&piece_text(self.culture, &q)) != orig {
                        edits.push(Edit::Var {
                            surname,
                            idx,
                            var: v,
                        });
                    }
                }
                if p.article != Article::None {
                    for (a, _) in ARTICLE_STYLES {
                        let q = Piece { article: a, ..*p };
                        // AL-/AL /EL-/EL  are the same separate particle;
                        // only gluing/un-gluing changes the written tokens
                        // beyond the particle itself.
                        let glue_changes =
                            (a == Article::AlGlued) != (p.article == Article::AlGlued);
                        if a != p.article
                            && glue_changes
                            && tokens_of(&piece_text(self.culture, &q)) != orig
                        {
                            edits.push(Edit::Article {
                                surname,
                                idx,
                                article: a,
                            });
                        }
                    }
                }
                if !edits.is_empty() {
                    out.push((surname, idx, edits));
                }
            }
        }
        out
    }

    pub(crate) fn apply(&mut self, e: Edit) {
        match e {
            Edit::Var { surname, idx, var } => self.part_mut(surname).pieces[idx].var = var,
            Edit::Article {
                surname,
                idx,
                article,
            } => self.part_mut(surname).pieces[idx].article = article,
        }
    }

    /// Applies `count` spelling edits to distinct pieces; false if none possible.
    pub(crate) fn respell(&mut self, rng: &mut Rng, count: usize) -> bool {
        let mut groups = self.spelling_edits();
        if groups.is_empty() {
            return false;
        }
        for _ in 0..count.max(1) {
            if groups.is_empty() {
                break;
            }
            let gi = rng.index(groups.len());
            let (_, _, edits) = groups.swap_remove(gi);
            let e = *rng.pick(&edits);
            self.apply(e);
        }
        true
    }

    /// The given-name groups (for excluding them when choosing another name).
    pub(crate) fn given_groups(&self) -> Vec<&'static str> {
        self.given.pieces.iter().map(|p| p.group).collect()
    }

    /// Replaces the given names by other names of the same culture and sex
    /// (none of the previous groups). Returns false if impossible.
    pub(crate) fn replace_given(&mut self, rng: &mut Rng, female: bool) -> bool {
        let old = self.given_groups();
        let n = self.given.pieces.len().max(1);
        for _ in 0..50 {
            let cand = given_pieces(rng, self.culture, female, n);
            let old_tokens: Vec<String> = old
                .iter()
                .flat_map(|g| group_tokens(self.culture, g))
                .collect();
            let clash = cand.iter().any(|p| {
                old.contains(&p.group)
                    || group_tokens(self.culture, p.group)
                        .iter()
                        .any(|t| old_tokens.contains(t))
            });
            if !clash && !cand.is_empty() {
                self.given.pieces = cand;
                return true;
            }
        }
        false
    }
}

fn group_tokens(culture: Culture, group: &'static str) -> Vec<String> {
    variants(culture, group)
        .iter()
        .flat_map(|v| tokens_of(v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn weights_sum_to_1000() {
        assert_eq!(CULTURES.iter().map(|(_, w)| w).sum::<u32>(), 1000);
    }

    #[test]
    fn tables_are_consistent() {
        let mut problems = Vec::new();
        for (c, _) in CULTURES {
            let t = tables(c);
            assert!(t.male.len() >= 40, "{c:?} male {}", t.male.len());
            assert!(t.female.len() >= 30, "{c:?} female {}", t.female.len());
            assert!(
                t.surnames.len() >= 35,
                "{c:?} surnames {}",
                t.surnames.len()
            );
            let lists: [(&str, Vec<&'static str>); 2] = [
                (
                    "given",
                    t.male.iter().chain(t.female.iter()).copied().collect(),
                ),
                (
                    "surname",
                    t.surnames
                        .iter()
                        .chain(t.article_surnames.iter())
                        .copied()
                        .collect(),
                ),
            ];
            for (label, entries) in lists {
                let mut owner: HashMap<String, &'static str> = HashMap::new();
                for e in entries {
                    for v in variants(c, e) {
                        assert!(
                            v.chars().all(|ch| ch.is_alphabetic()
                                || ch == ' '
                                || ch == '\''
                                || ch == '-')
                                && v.chars()
                                    .filter(|ch| ch.is_alphabetic())
                                    .all(|ch| !ch.is_lowercase()),
                            "{c:?} {label}: bad spelling {v:?}"
                        );
                        let key = mrz_fold(&v);
                        if let Some(prev) = owner.insert(key.clone(), e)
                            && prev != e
                        {
                            problems.push(format!(
                                "{c:?} {label}: spelling {key:?} in two entries {prev:?} and {e:?}"
                            ));
                        }
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn feminine_forms() {
        assert_eq!(feminise(Culture::EastSlavic, "IVANOV", 0), "IVANOVA");
        assert_eq!(
            feminise(Culture::EastSlavic, "KOVALEVSKY", 0),
            "KOVALEVSKAYA"
        );
        assert_eq!(
            feminise(Culture::EastSlavic, "KOVALEVSKIY", 1),
            "KOVALEVSKAIA"
        );
        assert_eq!(feminise(Culture::EastSlavic, "SHEVCHENKO", 0), "SHEVCHENKO");
        assert_eq!(feminise(Culture::Polish, "KOWALSKI", 0), "KOWALSKA");
        assert_eq!(feminise(Culture::Polish, "ZAWADZKI", 0), "ZAWADZKA");
        assert_eq!(feminise(Culture::Czech, "NOVÁK", 0), "NOVÁKOVÁ");
        assert_eq!(feminise(Culture::Czech, "ČERNÝ", 0), "ČERNÁ");
        assert_eq!(feminise(Culture::Czech, "SVOBODA", 0), "SVOBODOVÁ");
        assert_eq!(feminise(Culture::Czech, "HÁJEK", 0), "HÁJKOVÁ");
        assert_eq!(feminise(Culture::Czech, "NĚMEC", 0), "NĚMCOVÁ");
    }

    #[test]
    fn rendering_styles() {
        assert_eq!(mrz_fold("Łukasz Wiśniewski"), "LUKASZ WISNIEWSKI");
        assert_eq!(mrz_fold("AL-HASSAN"), "AL HASSAN");
        assert_eq!(mrz_fold("O'BRIEN"), "OBRIEN");
        assert_eq!(mrz_fold("ĐORĐEVIĆ"), "DORDEVIC");
        assert_eq!(mrz_fold("NGUYỄN THỊ HƯƠNG"), "NGUYEN THI HUONG");
        assert_eq!(title_case("AL-HASSAN O'BRIEN"), "Al-Hassan O'Brien");
        assert_eq!(
            variants(Culture::SouthSlavic, "ĐORĐEVIĆ"),
            vec!["ĐORĐEVIĆ", "ĐORĐEVICH", "DJORDJEVIĆ"]
        );
        assert_eq!(
            variants(Culture::EastSlavic, "OSTROVSKY"),
            vec!["OSTROVSKY", "OSTROVSKIY", "OSTROVSKII"]
        );
    }

    #[test]
    fn every_culture_generates_names() {
        for (c, _) in CULTURES {
            for i in 0..300u64 {
                let mut r = Rng::for_record(7, 7, i);
                let n = gen_name(&mut r, c, i % 2 == 0);
                assert!(!n.given.pieces.is_empty(), "{c:?}");
                let pn = n.render(Style::MRZ);
                assert!(!pn.given.trim().is_empty(), "{c:?} {pn:?}");
                assert!(
                    pn.given
                        .chars()
                        .chain(pn.surname.chars())
                        .all(|ch| ch.is_ascii_uppercase() || ch == ' '),
                    "{c:?} {pn:?}"
                );
            }
        }
    }
}
