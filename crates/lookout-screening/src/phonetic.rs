//! Spelling folds and Double Metaphone codes for normalised name tokens.
//!
//! Tokens reaching this module come from [`crate::normalise`], so they are
//! upper case and diacritic-free. Two steps happen here:
//!
//! * [`spelling_fold`] rewrites common romanisation differences to one form,
//!   for plain `A`–`Z` tokens only: `TSCH`/`TCH` → `CH` (Tchaikovsky /
//!   Chaikovsky), a leading `SHR` → `SR` (Shrinivasan / Srinivasan), a
//!   leading `HS` → `X` and, in Chinese-syllable-shaped tokens (≤ 6 letters
//!   ending in a vowel or `N`), a leading `ZH` → `CH` (Wade-Giles Hsu, Chou,
//!   Chang vs pinyin Xu, Zhou, Zhang), `PH` →
//!   `F`, `OU` → `U` (Youssef / Yusuf), `J` between a vowel and a consonant
//!   or at the end → `I`, `Y` after a vowel or at the end → `I` (Sergej /
//!   Sergey / Sergei, Dmitrij / Dmitriy / Dmitrii, -sky / -ski), a final `H`
//!   after a vowel dropped
//!   (Abdullah / Abdulla), and runs of a repeated letter collapsed
//!   (Mohammed / Mohamed). The fold is applied identically to both sides of
//!   every comparison and to every key, so it can only merge spellings.
//! * [`phonetic_codes`] returns the Double Metaphone primary and alternate
//!   codes (maximum length 4, via the `rphonetic` crate) of the folded token,
//!   plus those of the token with a glued Arabic article removed
//!   (`ALHASSAN` → also `HASSAN`; see [`article_stripped`]). Tokens that are
//!   not plain `A`–`Z` (other scripts, digits), or whose code is empty, get
//!   the literal code `~TOKEN`, which cannot collide with a metaphone code.

use rphonetic::DoubleMetaphone;

/// Minimum length of what remains after removing a glued `AL`/`EL` article
/// for the stripped form to be considered (`ALHASSAN` → `HASSAN` yes,
/// `ALFRED` → `FRED` no).
pub const ARTICLE_REMAINDER_MIN: usize = 5;

fn is_vowel(b: u8) -> bool {
    matches!(b, b'A' | b'E' | b'I' | b'O' | b'U')
}

/// True if the token consists only of ASCII `A`–`Z`.
pub fn is_plain_latin(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_uppercase())
}

/// Romanisation fold (see the module docs). Non-plain tokens are returned unchanged.
pub fn spelling_fold(token: &str) -> String {
    if !is_plain_latin(token) {
        return token.to_string();
    }
    let mut s = token.replace("TSCH", "CH").replace("TCH", "CH");
    if s.starts_with("SHR") {
        s.replace_range(0..3, "SR");
    }
    // Wade-Giles vs pinyin for Chinese syllables: HSU/XU, HSIAO/XIAO;
    // CHOU/ZHOU, CHANG/ZHANG (ZH only in syllable-shaped tokens, so that
    // ZHUKOV keeps its ZH).
    if s.starts_with("HS") {
        s.replace_range(0..2, "X");
    }
    if s.starts_with("ZH")
        && s.len() <= 6
        && (s.ends_with('N') || s.ends_with("NG") || s.ends_with(|c: char| is_vowel(c as u8)))
    {
        s.replace_range(0..2, "CH");
    }
    s = s.replace("PH", "F").replace("OU", "U");
    let bytes = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        let prev_vowel = i > 0 && is_vowel(bytes[i - 1]);
        let next = bytes.get(i + 1).copied();
        let mapped = match b {
            b'J' if prev_vowel && next.is_none_or(|n| !is_vowel(n) && n != b'Y') => b'I',
            b'Y' if prev_vowel || (i > 0 && next.is_none()) => b'I',
            b'H' if next.is_none() && i > 1 && prev_vowel => continue,
            _ => b,
        };
        // Collapse runs of the same letter (after mapping).
        if out.last() == Some(&mapped) {
            continue;
        }
        out.push(mapped);
    }
    // Only ASCII bytes were produced.
    String::from_utf8(out).unwrap_or_default()
}

/// The token with a glued Arabic article (`AL`, `EL`) removed, when at least
/// [`ARTICLE_REMAINDER_MIN`] letters remain and the remainder starts with a
/// consonant. Plain `A`–`Z` tokens only.
pub fn article_stripped(token: &str) -> Option<String> {
    if !is_plain_latin(token) {
        return None;
    }
    let rest = token
        .strip_prefix("AL")
        .or_else(|| token.strip_prefix("EL"))?;
    let first = *rest.as_bytes().first()?;
    (rest.len() >= ARTICLE_REMAINDER_MIN && !is_vowel(first) && first != b'Y')
        .then(|| rest.to_string())
}

fn encoder() -> DoubleMetaphone {
    DoubleMetaphone::new(Some(4))
}

/// Double Metaphone `(primary, alternate)` of the folded token, or the
/// literal `~TOKEN` code (twice) for tokens metaphone cannot encode.
pub fn metaphone_pair(token: &str) -> (String, String) {
    let folded = spelling_fold(token);
    if is_plain_latin(&folded) {
        let r = encoder().double_metaphone(&folded);
        let primary = r.primary();
        if !primary.is_empty() {
            let alternate = r.alternate();
            let alternate = if alternate.is_empty() {
                primary.clone()
            } else {
                alternate
            };
            return (primary, alternate);
        }
    }
    let literal = format!("~{folded}");
    (literal.clone(), literal)
}

/// The primary code of a token (used for the full-name key).
pub fn primary_code(token: &str) -> String {
    metaphone_pair(token).0
}

/// All phonetic codes of a token: primary and alternate of the token and of
/// its [`article_stripped`] form. Sorted, deduplicated.
pub fn phonetic_codes(token: &str) -> Vec<String> {
    let mut codes = Vec::with_capacity(4);
    let (p, a) = metaphone_pair(token);
    codes.push(p);
    codes.push(a);
    if let Some(stripped) = article_stripped(token) {
        let (p, a) = metaphone_pair(&stripped);
        codes.push(p);
        codes.push(a);
    }
    codes.sort();
    codes.dedup();
    codes
}

/// True if the two tokens share any phonetic code.
pub fn phonetically_equal(a: &str, b: &str) -> bool {
    let ca = phonetic_codes(a);
    let cb = phonetic_codes(b);
    ca.iter().any(|c| cb.binary_search(c).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds() {
        assert_eq!(spelling_fold("TCHAIKOVSKY"), "CHAIKOVSKI");
        assert_eq!(spelling_fold("TSCHAIKOWSKI"), "CHAIKOWSKI");
        assert_eq!(spelling_fold("CAJKOVSKIJ"), "CAIKOVSKI");
        assert_eq!(spelling_fold("SHRINIVASAN"), "SRINIVASAN");
        assert_eq!(spelling_fold("YOUSSEF"), "YUSEF");
        assert_eq!(spelling_fold("MOHAMMED"), "MOHAMED");
        assert_eq!(spelling_fold("ABDULLAH"), "ABDULA");
        assert_eq!(spelling_fold("SERGEY"), spelling_fold("SERGEJ"));
        assert_eq!(spelling_fold("DMITRIY"), spelling_fold("DMITRII"));
        assert_eq!(spelling_fold("DMITRIJ"), spelling_fold("DMITRII"));
        assert_eq!(spelling_fold("JOSEPH"), "JOSEF");
        assert_eq!(spelling_fold("HSU"), spelling_fold("XU"));
        assert_eq!(spelling_fold("HSIAOMING"), spelling_fold("XIAOMING"));
        assert_eq!(spelling_fold("ZHOU"), spelling_fold("CHOU"));
        assert_eq!(spelling_fold("ZHANG"), spelling_fold("CHANG"));
        assert_eq!(spelling_fold("ZHUKOV"), "ZHUKOV");
        // Leading J/Y and J between vowels are consonants and stay.
        assert_eq!(spelling_fold("JUAN"), "JUAN");
        assert_eq!(spelling_fold("ALEJANDRO"), "ALEJANDRO");
        assert_eq!(spelling_fold("YUSUF"), "YUSUF");
        // Non-Latin tokens untouched.
        assert_eq!(spelling_fold("张伟"), "张伟");
    }

    #[test]
    fn transliteration_variants_share_codes() {
        for group in [
            &["MOHAMMED", "MUHAMMAD", "MOHAMAD", "MOHAMMAD", "MOHAMED"][..],
            &["YUSUF", "YOUSSEF", "YOUSEF", "YOUSUF"],
            &["ALEKSANDR", "ALEXANDER", "ALEXANDR"],
            &["ABDULLAH", "ABDALLAH", "ABDULLA"],
            &["HUSSEIN", "HUSSAIN", "HOSSEIN", "HUSAIN"],
            &["IQBAL", "IQUBAL"],
            &["SRINIVASAN", "SHRINIVASAN"],
            &["TCHAIKOVSKY", "CHAIKOVSKII", "TSCHAIKOWSKI"],
            &["PYOTR", "PETR", "PIOTR"],
            &["OMAR", "UMAR"],
            &["AHMED", "AHMAD"],
            &["MCDONALD", "MACDONALD"],
            &["HASSAN", "ALHASSAN", "ELHASSAN"],
        ] {
            for w in group.windows(2) {
                assert!(
                    phonetically_equal(w[0], w[1]),
                    "{} vs {}: {:?} {:?}",
                    w[0],
                    w[1],
                    phonetic_codes(w[0]),
                    phonetic_codes(w[1])
                );
            }
        }
        assert!(!phonetically_equal("SMITH", "JONES"));
        assert!(!phonetically_equal("ZHANG", "WANG"));
        assert!(phonetically_equal("ZHANG", "CHANG"));
        assert!(phonetically_equal("XU", "HSU"));
    }

    #[test]
    fn article_stripping_is_conservative() {
        assert_eq!(article_stripped("ALHASSAN").as_deref(), Some("HASSAN"));
        assert_eq!(article_stripped("ELSAYED").as_deref(), Some("SAYED"));
        assert_eq!(article_stripped("ALFRED"), None);
        assert_eq!(article_stripped("ALEXANDER"), None);
        assert_eq!(article_stripped("HASSAN"), None);
    }

    #[test]
    fn non_latin_tokens_get_literal_codes() {
        assert_eq!(phonetic_codes("张伟"), vec!["~张伟".to_string()]);
        assert_eq!(phonetic_codes("123"), vec!["~123".to_string()]);
        assert_eq!(
            phonetic_codes("WEI"),
            vec!["A".to_string(), "F".to_string()]
        );
    }
}
