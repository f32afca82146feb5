//! Text normalisation for names and document numbers.
//!
//! Everything here is a pure function of its input: no locale (Rust's
//! `char::to_uppercase` uses the locale-independent Unicode default case
//! mapping), no tables loaded at run time, no hashing.
//!
//! # Names
//!
//! [`normalise_text`] folds a string character by character:
//!
//! 1. apostrophe-like characters (`'` `’` `‘` `ʼ` `ʻ` `ʾ` `ʿ` `` ` `` `´` `′` `·`)
//!    and invisible format characters (soft hyphen, zero-width joiners) are
//!    **removed**, joining the letters either side: `O'Brien` → `OBRIEN`;
//! 2. Unicode NFKD, then every combining mark is dropped (`José` → `JOSE`,
//!    `Čajkovskij` → `CAJKOVSKIJ`, full-width and ligature forms fold too);
//! 3. upper-casing with the default Unicode mapping, then transliteration of
//!    letters NFKD does not decompose (`ß`→`SS`, `Æ`→`AE`, `Œ`→`OE`, `Ø`→`O`,
//!    `Ł`→`L`, `Đ`/`Ð`→`D`, `Þ`→`TH`, `ı`→`I`, `Ħ`→`H`, `Ŋ`→`NG`, `Ə`→`E`, …),
//!    of Cyrillic (ICAO 9303 table: `Ж`→`ZH`, `Х`→`KH`, `Ц`→`TS`, `Щ`→`SHCH`,
//!    `Ю`→`IU`, `Я`→`IA`, `Й`→`I`, `Ь` dropped, …) and of Greek (ICAO 9303,
//!    with `ΟΥ`→`OU`);
//! 4. every other non-alphanumeric character (hyphens, dots, commas, slashes,
//!    brackets, …) becomes a token separator: `Al-Hassan` → `AL HASSAN`.
//!
//! Letters of other scripts (Arabic, Han, Devanagari, …) are kept, upper-cased
//! where the script has case, with combining marks stripped; they then only
//! match by (near-)identical spelling.
//!
//! [`normalise_person_name`] tokenises each part (given, surname) of a
//! [`PersonName`] and then, **within each part**:
//!
//! * glues the prefixes `O`, `MC`, `MAC` to the following token (`O BRIEN` →
//!   `OBRIEN`, `MC DONALD` → `MCDONALD`);
//! * drops particles ([`PARTICLES`]: `AL`, `EL`, `BIN`, `IBN`, `ABU`, `VAN`,
//!   `VON`, `DE`, `DA`, `DEL`, `LA`, `LE`, `Y`, …) **only if** a non-particle
//!   token remains in that part, so the Vietnamese surname `LE` or a given
//!   name `BEN` on its own survives;
//! * keeps at most [`MAX_TOKENS_PER_PART`] tokens.
//!
//! Token order is ignored by everything downstream ([`NormalisedName::sorted_tokens`]).
//!
//! # Document numbers
//!
//! [`normalise_document_number`]: NFKD, drop combining marks, upper-case, keep
//! only alphanumeric characters (so spaces, dashes, dots, slashes, MRZ `<`
//! fillers and any other punctuation disappear), and finally replace every
//! letter `O` with the digit `0` throughout the number. The `O`→`0` rule is
//! deliberate: the two are indistinguishable to officers and OCR alike, and
//! issuing states avoid relying on the difference, so `AB0123` and `ABO123`
//! are the same document number. No other look-alike pairs (`I`/`1`, `S`/`5`)
//! are folded.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::types::PersonName;

/// Particles dropped from a name part when another token remains in that part.
/// Sorted (binary-searched).
pub const PARTICLES: &[&str] = &[
    "ABU", "AL", "BEN", "BIN", "BINT", "BINTI", "DA", "DAS", "DE", "DEGLI", "DEI", "DEL", "DELLA",
    "DELLE", "DELLO", "DEN", "DER", "DI", "DO", "DOS", "DU", "EL", "IBN", "LA", "LAS", "LE", "LOS",
    "TEN", "TER", "UL", "VAN", "VON", "Y", "ZU", "ZUR",
];

/// Prefixes glued to the following token of the same part.
pub const GLUED_PREFIXES: &[&str] = &["MAC", "MC", "O"];

/// At most this many tokens are kept per name part (given / surname).
pub const MAX_TOKENS_PER_PART: usize = 8;

/// True if `token` (already normalised) is a particle.
pub fn is_particle(token: &str) -> bool {
    PARTICLES.binary_search(&token).is_ok()
}

fn is_apostrophe_like(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2018}'
            | '\u{2019}'
            | '\u{201B}'
            | '\u{02BC}'
            | '\u{02BB}'
            | '\u{02BD}'
            | '\u{02BE}'
            | '\u{02BF}'
            | '\u{02B9}'
            | '\u{02BA}'
            | '`'
            | '\u{00B4}'
            | '\u{2032}'
            | '\u{00B7}'
            | '\u{0387}'
            | '\u{FF07}'
            | '\u{02C8}'
    )
}

/// Invisible format characters that must not split a word.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

/// Transliteration of an upper-cased (post-NFKD, mark-free) character that
/// NFKD leaves alone. `Some("")` means "drop, joining neighbours".
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        // Latin letters without a canonical decomposition.
        'ß' | 'ẞ' => "SS",
        'Æ' | 'æ' => "AE",
        'Œ' | 'œ' => "OE",
        'Ø' | 'ø' => "O",
        'Ł' | 'ł' => "L",
        'Đ' | 'đ' | 'Ð' | 'ð' | 'Ɖ' | 'ɖ' => "D",
        'Þ' | 'þ' => "TH",
        'ı' => "I",
        'Ħ' | 'ħ' => "H",
        'Ŧ' | 'ŧ' => "T",
        'ĸ' => "K",
        'Ŋ' | 'ŋ' => "NG",
        'Ə' | 'ə' | 'Ǝ' | 'ǝ' | 'Ɛ' | 'ɛ' => "E",
        'Ɔ' | 'ɔ' => "O",
        'Ƒ' | 'ƒ' => "F",
        'ȷ' => "J",
        'Ɲ' | 'ɲ' => "N",
        'Ʒ' | 'ʒ' => "ZH",
        // Cyrillic (ICAO 9303 Part 3 table; Й/Ё/Ї/Ў arrive decomposed).
        'А' => "A",
        'Б' => "B",
        'В' => "V",
        'Г' | 'Ґ' => "G",
        'Д' => "D",
        'Е' | 'Э' => "E",
        'Ж' => "ZH",
        'З' => "Z",
        'И' | 'І' => "I",
        'К' => "K",
        'Л' => "L",
        'М' => "M",
        'Н' => "N",
        'О' => "O",
        'П' => "P",
        'Р' => "R",
        'С' => "S",
        'Т' => "T",
        'У' => "U",
        'Ф' => "F",
        'Х' => "KH",
        'Ц' => "TS",
        'Ч' => "CH",
        'Ш' => "SH",
        'Щ' => "SHCH",
        'Ъ' | 'Є' => "IE",
        'Ы' => "Y",
        'Ь' => "",
        'Ю' => "IU",
        'Я' => "IA",
        'Ђ' => "D",
        'Ј' => "J",
        'Љ' => "LJ",
        'Њ' => "NJ",
        'Ћ' => "C",
        'Џ' | 'Ѕ' => "DZ",
        // Greek (ICAO 9303; tonos/dialytika arrive decomposed).
        'Α' => "A",
        'Β' => "V",
        'Γ' => "G",
        'Δ' => "D",
        'Ε' => "E",
        'Ζ' => "Z",
        'Η' | 'Ι' => "I",
        'Θ' => "TH",
        'Κ' => "K",
        'Λ' => "L",
        'Μ' => "M",
        'Ν' => "N",
        'Ξ' => "X",
        'Ο' | 'Ω' => "O",
        'Π' => "P",
        'Ρ' => "R",
        'Σ' => "S",
        'Τ' => "T",
        'Υ' => "Y",
        'Φ' => "F",
        'Χ' => "CH",
        'Ψ' => "PS",
        _ => return None,
    })
}

fn fold_once(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let pre = input
        .chars()
        .filter(|&c| !is_apostrophe_like(c) && !is_invisible_format(c));
    let mut prev: Option<char> = None;
    for c in pre.nfkd() {
        if is_combining_mark(c) || is_apostrophe_like(c) || is_invisible_format(c) {
            continue;
        }
        for u in c.to_uppercase() {
            let after = prev.replace(u);
            if u == 'Υ' && after == Some('Ο') {
                // Greek digraph ΟΥ is OU (ICAO 9303), not OY.
                out.push('U');
            } else if let Some(rep) = transliterate(u) {
                out.push_str(rep);
            } else if u.is_alphanumeric() {
                out.push(u);
            } else {
                out.push(' ');
            }
        }
    }
    let mut joined = String::with_capacity(out.len());
    for (i, tok) in out.split_whitespace().enumerate() {
        if i > 0 {
            joined.push(' ');
        }
        joined.push_str(tok);
    }
    joined
}

/// Character-level name folding (see the module docs): returns upper-case,
/// diacritic-free, transliterated tokens separated by single spaces.
/// Idempotent: `normalise_text(&normalise_text(s)) == normalise_text(s)`.
pub fn normalise_text(input: &str) -> String {
    // A second pass catches the rare characters whose upper-case form is
    // itself decomposable; iterate to a fixed point (bounded).
    let mut s = fold_once(input);
    for _ in 0..4 {
        let next = fold_once(&s);
        if next == s {
            break;
        }
        s = next;
    }
    s
}

/// Tokens of one name part after [`normalise_text`], prefix gluing, particle
/// dropping and truncation (see the module docs). Token order is preserved.
pub fn normalise_name_part(part: &str) -> Vec<String> {
    let folded = normalise_text(part);
    let raw: Vec<&str> = folded.split(' ').filter(|t| !t.is_empty()).collect();
    let mut glued: Vec<String> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if i + 1 < raw.len() && GLUED_PREFIXES.contains(&raw[i]) {
            glued.push(format!("{}{}", raw[i], raw[i + 1]));
            i += 2;
        } else {
            glued.push(raw[i].to_string());
            i += 1;
        }
    }
    if glued.iter().any(|t| !is_particle(t)) {
        glued.retain(|t| !is_particle(t));
    }
    glued.truncate(MAX_TOKENS_PER_PART);
    glued
}

/// A person name reduced to comparable tokens, split by part, each part in
/// its original token order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct NormalisedName {
    /// Given-name tokens.
    pub given: Vec<String>,
    /// Surname tokens.
    pub surname: Vec<String>,
}

impl NormalisedName {
    /// No tokens at all.
    pub fn is_empty(&self) -> bool {
        self.given.is_empty() && self.surname.is_empty()
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.given.len() + self.surname.len()
    }

    /// All tokens, given then surname, each tagged `true` if it is a surname token.
    pub fn tagged_tokens(&self) -> impl Iterator<Item = (&str, bool)> {
        self.given
            .iter()
            .map(|t| (t.as_str(), false))
            .chain(self.surname.iter().map(|t| (t.as_str(), true)))
    }

    /// The canonical, order-independent form: all tokens sorted (byte order).
    pub fn sorted_tokens(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .given
            .iter()
            .chain(self.surname.iter())
            .cloned()
            .collect();
        v.sort();
        v
    }
}

impl std::fmt::Display for NormalisedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.given.join(" "), self.surname.join(" "))
    }
}

/// Normalises both parts of a name (see the module docs).
pub fn normalise_person_name(name: &PersonName) -> NormalisedName {
    NormalisedName {
        given: normalise_name_part(&name.given),
        surname: normalise_name_part(&name.surname),
    }
}

/// Normalises a document number: NFKD, drop combining marks, upper-case, keep
/// only alphanumerics, then `O` → `0` everywhere. Idempotent.
pub fn normalise_document_number(number: &str) -> String {
    let mut s = normalise_document_number_once(number);
    // Converge for the rare characters whose upper-case form decomposes.
    for _ in 0..4 {
        let next = normalise_document_number_once(&s);
        if next == s {
            break;
        }
        s = next;
    }
    s
}

fn normalise_document_number_once(number: &str) -> String {
    let mut out = String::with_capacity(number.len());
    for c in number.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        for u in c.to_uppercase() {
            if u.is_alphanumeric() {
                out.push(if u == 'O' { '0' } else { u });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(s: &str) -> Vec<String> {
        normalise_name_part(s)
    }

    #[test]
    fn particle_table_sorted() {
        assert!(PARTICLES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn folds_case_diacritics_and_special_latin() {
        assert_eq!(normalise_text("José María"), "JOSE MARIA");
        assert_eq!(normalise_text("Łukasz Żółć"), "LUKASZ ZOLC");
        assert_eq!(normalise_text("Straße"), "STRASSE");
        assert_eq!(normalise_text("Ærø Œuvre Øster"), "AERO OEUVRE OSTER");
        assert_eq!(normalise_text("Đorđević"), "DORDEVIC");
        assert_eq!(normalise_text("Þórður"), "THORDUR");
        assert_eq!(normalise_text("Yıldız"), "YILDIZ");
        assert_eq!(normalise_text("İstanbul"), "ISTANBUL");
        assert_eq!(normalise_text("Əliyev"), "ELIYEV");
        assert_eq!(normalise_text("Čajkovskij"), "CAJKOVSKIJ");
        assert_eq!(normalise_text("Nguyễn Văn Ân"), "NGUYEN VAN AN");
        assert_eq!(normalise_text("ＪＯＨＮ"), "JOHN"); // full-width
    }

    #[test]
    fn transliterates_cyrillic_and_greek() {
        assert_eq!(
            normalise_text("Пётр Ильич Чайковский"),
            "PETR ILICH CHAIKOVSKII"
        );
        assert_eq!(normalise_text("Александр"), "ALEKSANDR");
        assert_eq!(normalise_text("Юлия Щербакова"), "IULIIA SHCHERBAKOVA");
        assert_eq!(
            normalise_text("Γιώργος Παπαδόπουλος"),
            "GIORGOS PAPADOPOULOS"
        );
    }

    #[test]
    fn apostrophes_join_and_hyphens_split() {
        assert_eq!(normalise_text("O'Brien"), "OBRIEN");
        assert_eq!(normalise_text("O’Brien"), "OBRIEN");
        assert_eq!(normalise_text("D´Angelo"), "DANGELO");
        assert_eq!(normalise_text("Al-Hassan"), "AL HASSAN");
        assert_eq!(normalise_text("García-López"), "GARCIA LOPEZ");
        assert_eq!(normalise_text("  Smith,  John. "), "SMITH JOHN");
        assert_eq!(normalise_text("Mül\u{00AD}ler"), "MULLER");
        assert_eq!(normalise_text("Abd al-ʿAziz"), "ABD AL AZIZ");
    }

    #[test]
    fn anglo_prefixes_glue() {
        assert_eq!(part("O'Brien"), vec!["OBRIEN"]);
        assert_eq!(part("O Brien"), vec!["OBRIEN"]);
        assert_eq!(part("Mc Donald"), vec!["MCDONALD"]);
        assert_eq!(part("McDonald"), vec!["MCDONALD"]);
        assert_eq!(part("Mac Donald"), vec!["MACDONALD"]);
        // A trailing initial is not glued to anything.
        assert_eq!(part("John O"), vec!["JOHN", "O"]);
    }

    #[test]
    fn particles_dropped_only_when_something_remains() {
        assert_eq!(part("Al-Hassan"), vec!["HASSAN"]);
        assert_eq!(part("El Hassan"), vec!["HASSAN"]);
        assert_eq!(part("Alhassan"), vec!["ALHASSAN"]); // glued forms handled by phonetic variants
        assert_eq!(part("bin Abdullah"), vec!["ABDULLAH"]);
        assert_eq!(part("García de la Torre"), vec!["GARCIA", "TORRE"]);
        assert_eq!(part("García y López"), vec!["GARCIA", "LOPEZ"]);
        assert_eq!(part("van der Berg"), vec!["BERG"]);
        assert_eq!(part("Van An"), vec!["AN"]);
        assert_eq!(part("Le"), vec!["LE"]);
        assert_eq!(part("De La"), vec!["DE", "LA"]);
        assert_eq!(part(""), Vec::<String>::new());
        assert_eq!(part(" - "), Vec::<String>::new());
    }

    #[test]
    fn hispanic_two_surnames() {
        let n = normalise_person_name(&PersonName::new("José María", "García-López"));
        assert_eq!(n.given, vec!["JOSE", "MARIA"]);
        assert_eq!(n.surname, vec!["GARCIA", "LOPEZ"]);
        assert_eq!(n.sorted_tokens(), vec!["GARCIA", "JOSE", "LOPEZ", "MARIA"]);
    }

    #[test]
    fn token_order_is_irrelevant_in_sorted_form() {
        let a = normalise_person_name(&PersonName::new("Wei", "Zhang"));
        let b = normalise_person_name(&PersonName::new("Zhang", "Wei"));
        assert_eq!(a.sorted_tokens(), b.sorted_tokens());
    }

    #[test]
    fn document_numbers() {
        assert_eq!(normalise_document_number("ab 01-23.45/6"), "AB0123456");
        assert_eq!(
            normalise_document_number("ABO123"),
            normalise_document_number("AB0123")
        );
        assert_eq!(normalise_document_number("L898902C<3"), "L898902C3");
        assert_eq!(normalise_document_number("oO0"), "000");
        assert_eq!(normalise_document_number("ＡＢ１２３"), "AB123");
        assert_eq!(normalise_document_number(" -./ "), "");
        // I and 1 are not folded.
        assert_ne!(
            normalise_document_number("AI123"),
            normalise_document_number("A1123")
        );
    }
}
