//! Scoring a traveller identity against one lookout, and deciding.
//!
//! See the crate documentation for the rules; the constants below are the
//! tuning and are covered by the recall/precision test in `tests/recall.rs`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::country::CountryCode;
use crate::date::PartialDate;
use crate::keys::numbered_document_key;
use crate::normalise::{NormalisedName, normalise_person_name};
use crate::phonetic::{article_stripped, phonetic_codes, spelling_fold};
use crate::types::{Category, Decision, DocType, Identity, Lookout, PersonName};

/// Default [`MatchConfig::threshold`].
pub const DEFAULT_THRESHOLD: f32 = 0.85;

/// Weight of a surname token relative to a given-name token (a matched pair
/// weighs the mean of its two tokens' weights).
pub const SURNAME_WEIGHT: f32 = 1.5;
/// Similarity floor for two tokens that share a Double Metaphone code and are
/// not wildly different in spelling (Jaro-Winkler ≥ [`PHONETIC_MIN_JW`]).
pub const PHONETIC_SIM: f32 = 0.92;
/// Minimum raw Jaro-Winkler for phonetic equality to count.
pub const PHONETIC_MIN_JW: f32 = 0.70;
/// Similarity of tokens that differ only by the spelling fold (e.g. `SERGEY` / `SERGEI`).
pub const FOLD_EQUAL_SIM: f32 = 0.97;
/// Similarity of an initial and a name starting with that letter.
pub const INITIAL_SIM: f32 = 0.75;
/// Penalty applied to a comparison that needed a glued-article variant (`ALHASSAN` ~ `HASSAN`).
pub const ARTICLE_PENALTY: f32 = 0.06;
/// Per-token penalty for tokens present on one side only (missing middle name, second surname).
pub const MISSING_TOKEN_PENALTY: f32 = 0.06;
/// Extra factor when one side has a single token and the other several.
pub const SINGLE_TOKEN_FACTOR: f32 = 0.92;
/// If no surname token (on either side) is paired with similarity at least
/// this, the name similarity is multiplied by [`SURNAME_MISMATCH_FACTOR`]:
/// agreeing given names must not carry a clearly different surname.
pub const SURNAME_GUARD_MIN: f32 = 0.75;
/// See [`SURNAME_GUARD_MIN`].
pub const SURNAME_MISMATCH_FACTOR: f32 = 0.90;
/// Factor applied to the whole-name (concatenated) comparison.
pub const CONCAT_FACTOR: f32 = 0.97;
/// Minimum raw Jaro-Winkler of the concatenated names for that comparison to count.
pub const CONCAT_MIN_JW: f32 = 0.95;
/// Added to the name similarity on an exact full DOB match.
pub const DOB_EXACT_BONUS: f32 = 0.05;
/// Added to the name similarity when a partial DOB agrees.
pub const DOB_PARTIAL_BONUS: f32 = 0.02;
/// Factor for a near-miss DOB (year off by one, or day/month transposed).
pub const DOB_CLOSE_FACTOR: f32 = 0.93;
/// Factor for a conflicting DOB.
pub const DOB_CONFLICT_FACTOR: f32 = 0.60;
/// Factor when both sexes are known and differ.
pub const SEX_CONFLICT_FACTOR: f32 = 0.90;

/// Scoring configuration. There is deliberately no `Default`: the caller must
/// supply the clock (`now_ms`) so that the function stays pure.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchConfig {
    /// Minimum score for a [`Match`]. Default [`DEFAULT_THRESHOLD`].
    pub threshold: f32,
    /// Current time, unix milliseconds, for lookout validity windows.
    pub now_ms: u64,
}

impl MatchConfig {
    /// Default threshold at the given time.
    pub fn new(now_ms: u64) -> Self {
        MatchConfig {
            threshold: DEFAULT_THRESHOLD,
            now_ms,
        }
    }

    /// Same configuration with another threshold.
    pub fn with_threshold(self, threshold: f32) -> Self {
        MatchConfig { threshold, ..self }
    }
}

/// How two dates of birth relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DobAgreement {
    /// Both full dates, equal.
    Exact,
    /// Every field both sides give agrees, but at least one side is partial
    /// (e.g. the lookout has only the year).
    PartialMatch,
    /// A likely data-entry slip: year off by one with every other shared
    /// field equal, or day and month transposed in an otherwise equal date.
    Close,
    /// At least one side has no DOB.
    Unknown,
    /// A shared field differs.
    Conflict,
}

impl fmt::Display for DobAgreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DobAgreement::Exact => "date of birth identical",
            DobAgreement::PartialMatch => {
                "date of birth consistent with the partial date on record"
            }
            DobAgreement::Close => {
                "date of birth nearly identical (year off by one or day/month swapped)"
            }
            DobAgreement::Unknown => "date of birth not comparable (missing)",
            DobAgreement::Conflict => "date of birth conflicts",
        })
    }
}

/// Compares a traveller's DOB with a lookout's.
pub fn dob_agreement(traveller: Option<PartialDate>, lookout: Option<PartialDate>) -> DobAgreement {
    let (Some(a), Some(b)) = (traveller, lookout) else {
        return DobAgreement::Unknown;
    };
    let field_ok = |x: Option<u8>, y: Option<u8>| !matches!((x, y), (Some(p), Some(q)) if p != q);
    let rest_agrees = field_ok(a.month, b.month) && field_ok(a.day, b.day);
    if a.year == b.year && rest_agrees {
        if a.is_full() && b.is_full() {
            DobAgreement::Exact
        } else {
            DobAgreement::PartialMatch
        }
    } else if (a.year.abs_diff(b.year) == 1 && rest_agrees)
        || (a.year == b.year && a.is_full() && b.is_full() && a.month == b.day && a.day == b.month)
    {
        DobAgreement::Close
    } else {
        DobAgreement::Conflict
    }
}

/// Why a lookout matched (or how its score was shaped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reason {
    /// A presented document equals a lookout document after normalisation
    /// (type, issuing state and number). Forces the score to 1.0.
    DocumentExact {
        /// Document type.
        doc_type: DocType,
        /// Issuing state.
        country: CountryCode,
    },
    /// Best name similarity (0..=1, before DOB/sex adjustment) and the DOB comparison.
    NameDob {
        /// Name similarity.
        name_similarity: f32,
        /// DOB agreement.
        dob: DobAgreement,
    },
    /// The best name match was against the lookout's alias at this index
    /// (into `subject.aliases`), not its primary name.
    Alias {
        /// Index into `Subject::aliases`.
        alias_index: usize,
        /// Name similarity against that alias.
        similarity: f32,
    },
    /// At least one name token matched by sound (shared Double Metaphone
    /// code or spelling fold) rather than spelling.
    Phonetic,
    /// Both records give a sex and they differ (score reduced).
    SexMismatch,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::DocumentExact { doc_type, country } => {
                write!(
                    f,
                    "{doc_type} issued by {country} matches a document on the lookout"
                )
            }
            Reason::NameDob {
                name_similarity,
                dob,
            } => {
                write!(f, "name similarity {:.0}%, {dob}", name_similarity * 100.0)
            }
            Reason::Alias {
                alias_index,
                similarity,
            } => {
                write!(
                    f,
                    "matched alias #{} ({:.0}% similar)",
                    alias_index + 1,
                    similarity * 100.0
                )
            }
            Reason::Phonetic => {
                f.write_str("name matched by sound (spelling or transliteration variant)")
            }
            Reason::SexMismatch => f.write_str("recorded sex differs"),
        }
    }
}

/// A scored lookout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Match {
    /// The lookout's id.
    pub lookout_id: String,
    /// The lookout's category (for [`decide`]).
    pub category: Category,
    /// 0.0..=1.0.
    pub score: f32,
    /// Why, most decisive first.
    pub reasons: Vec<Reason>,
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "lookout {} ({}) score {:.2}",
            self.lookout_id, self.category, self.score
        )?;
        for (i, r) in self.reasons.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Name similarity

/// One spelling of a token: as normalised, spelling-folded, and its codes.
struct Form {
    raw: String,
    folded: String,
    codes: Vec<String>,
}

impl Form {
    fn new(raw: &str) -> Self {
        Form {
            raw: raw.to_string(),
            folded: spelling_fold(raw),
            codes: phonetic_codes(raw),
        }
    }
}

struct PreparedToken {
    form: Form,
    /// The glued-article-free form (`ALHASSAN` → `HASSAN`), if any.
    stripped: Option<Form>,
    surname: bool,
    weight: f32,
}

struct PreparedName {
    tokens: Vec<PreparedToken>,
    /// Folded tokens concatenated, given then surname / surname then given.
    concat: [String; 2],
}

fn prepare(n: &NormalisedName) -> PreparedName {
    let tokens: Vec<PreparedToken> = n
        .tagged_tokens()
        .map(|(t, surname)| PreparedToken {
            form: Form::new(t),
            stripped: article_stripped(t).map(|s| Form::new(&s)),
            surname,
            weight: if surname { SURNAME_WEIGHT } else { 1.0 },
        })
        .collect();
    let fold_all = |v: &[String]| v.iter().map(|t| spelling_fold(t)).collect::<String>();
    let (g, s) = (fold_all(&n.given), fold_all(&n.surname));
    PreparedName {
        concat: [format!("{g}{s}"), format!("{s}{g}")],
        tokens,
    }
}

/// Piecewise-linear sharpening of raw Jaro-Winkler: unrelated names
/// (JW ≲ 0.5–0.7) fall towards 0, one-typo variants (JW ≈ 0.88–0.97) map to
/// ≈ 0.8–0.95.
fn jw_curve(jw: f32) -> f32 {
    const PTS: [(f32, f32); 4] = [(0.5, 0.0), (0.7, 0.3), (0.85, 0.75), (1.0, 1.0)];
    if jw <= PTS[0].0 {
        return 0.0;
    }
    for w in PTS.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if jw <= x1 {
            return y0 + (jw - x0) / (x1 - x0) * (y1 - y0);
        }
    }
    1.0
}

fn shares_code(a: &[String], b: &[String]) -> bool {
    a.iter().any(|c| b.binary_search(c).is_ok())
}

/// (similarity, phonetic_used) of two token forms.
fn basic_token_sim(a: &Form, b: &Form) -> (f32, bool) {
    if a.raw == b.raw {
        return (1.0, false);
    }
    if a.folded == b.folded {
        return (FOLD_EQUAL_SIM, true);
    }
    let (la, lb) = (a.raw.chars().count(), b.raw.chars().count());
    if la == 1 || lb == 1 {
        let same_initial = a.raw.chars().next() == b.raw.chars().next();
        return (if same_initial { INITIAL_SIM } else { 0.0 }, false);
    }
    // Best of the folded and the unfolded spelling: the fold merges
    // romanisations but can move a typo'd spelling further away.
    let jw =
        strsim::jaro_winkler(&a.folded, &b.folded).max(strsim::jaro_winkler(&a.raw, &b.raw)) as f32;
    let s = jw_curve(jw);
    if jw >= PHONETIC_MIN_JW && s < PHONETIC_SIM && shares_code(&a.codes, &b.codes) {
        (PHONETIC_SIM, true)
    } else {
        (s, false)
    }
}

fn token_sim(a: &PreparedToken, b: &PreparedToken) -> (f32, bool) {
    let mut best = basic_token_sim(&a.form, &b.form);
    let mut consider = |x: &Form, y: &Form| {
        let (s, p) = basic_token_sim(x, y);
        let s = s - ARTICLE_PENALTY;
        if s > best.0 {
            best = (s, p);
        }
    };
    if let Some(sa) = &a.stripped {
        consider(sa, &b.form);
        if let Some(sb) = &b.stripped {
            consider(sa, sb);
        }
    }
    if let Some(sb) = &b.stripped {
        consider(&a.form, sb);
    }
    (best.0.clamp(0.0, 1.0), best.1)
}

/// Result of pairing two names' tokens.
struct Assignment {
    /// Weighted mean similarity over the assigned pairs.
    mean: f32,
    /// Some pair was matched by sound.
    phonetic: bool,
    /// Best similarity among pairs involving a surname token on either side
    /// (`None` if no such pair).
    surname_best: Option<f32>,
}

/// Optimal assignment maximising Σ weight·similarity.
fn assign(a: &PreparedName, b: &PreparedName) -> Assignment {
    // Rows = smaller side.
    let (rows, cols) = if a.tokens.len() <= b.tokens.len() {
        (a, b)
    } else {
        (b, a)
    };
    let (n, m) = (rows.tokens.len(), cols.tokens.len());
    let cell: Vec<Vec<(f32, bool, f32, bool)>> = rows
        .tokens
        .iter()
        .map(|r| {
            cols.tokens
                .iter()
                .map(|c| {
                    let (s, p) = token_sim(r, c);
                    let w = (r.weight + c.weight) / 2.0;
                    (s, p, w, r.surname || c.surname)
                })
                .collect()
        })
        .collect();

    let mut chosen: Vec<usize> = Vec::with_capacity(n);
    if m <= 12 {
        // DP over subsets of used columns; row i is assigned when popcount == i.
        let size = 1usize << m;
        let mut dp = vec![f32::NEG_INFINITY; size];
        let mut parent = vec![(usize::MAX, usize::MAX); size];
        dp[0] = 0.0;
        for mask in 0..size {
            let i = mask.count_ones() as usize;
            if i >= n || dp[mask] == f32::NEG_INFINITY {
                continue;
            }
            for (j, &(s, _, w, _)) in cell[i].iter().enumerate() {
                if mask & (1 << j) != 0 {
                    continue;
                }
                let v = dp[mask] + s * w;
                let next = mask | (1 << j);
                if v > dp[next] {
                    dp[next] = v;
                    parent[next] = (mask, j);
                }
            }
        }
        let mut best_mask = None;
        for mask in 0..size {
            if mask.count_ones() as usize == n
                && dp[mask] > f32::NEG_INFINITY
                && best_mask.is_none_or(|b: usize| dp[mask] > dp[b])
            {
                best_mask = Some(mask);
            }
        }
        let mut mask = best_mask.unwrap_or(0);
        let mut cols_rev = Vec::with_capacity(n);
        while mask != 0 {
            let (prev, j) = parent[mask];
            cols_rev.push(j);
            mask = prev;
        }
        cols_rev.reverse();
        chosen = cols_rev;
    } else {
        // Greedy fallback for very long names (not reachable with the
        // per-part token cap of 8 unless both parts are full).
        let mut used = vec![false; m];
        for row in &cell {
            let mut best: Option<usize> = None;
            for (j, c) in row.iter().enumerate() {
                if !used[j] && best.is_none_or(|b| c.0 * c.2 > row[b].0 * row[b].2) {
                    best = Some(j);
                }
            }
            if let Some(j) = best {
                used[j] = true;
                chosen.push(j);
            }
        }
    }
    let (mut num, mut den, mut phonetic) = (0.0f32, 0.0f32, false);
    let mut surname_best: Option<f32> = None;
    for (i, &j) in chosen.iter().enumerate() {
        let (s, p, w, involves_surname) = cell[i][j];
        num += s * w;
        den += w;
        phonetic |= p;
        if involves_surname {
            surname_best = Some(surname_best.map_or(s, |b| b.max(s)));
        }
    }
    let mean = if den == 0.0 { 0.0 } else { num / den };
    Assignment {
        mean,
        phonetic: phonetic && den > 0.0,
        surname_best,
    }
}

/// (similarity 0..=1, phonetic_used) between two prepared names.
fn prepared_similarity(a: &PreparedName, b: &PreparedName) -> (f32, bool) {
    let (n, m) = (a.tokens.len(), b.tokens.len());
    if n == 0 || m == 0 {
        return (0.0, false);
    }
    let assignment = assign(a, b);
    let missing = n.abs_diff(m) as f32;
    let mut factor = (1.0 - MISSING_TOKEN_PENALTY * missing).max(0.6);
    if n.min(m) == 1 && n.max(m) > 1 {
        factor *= SINGLE_TOKEN_FACTOR;
    }
    if assignment
        .surname_best
        .is_some_and(|s| s < SURNAME_GUARD_MIN)
    {
        factor *= SURNAME_MISMATCH_FACTOR;
    }
    let mut sim = assignment.mean * factor;
    let mut used_phonetic = assignment.phonetic;
    if n != m {
        // Split vs joined compound names: ABDUL RAHMAN ~ ABDULRAHMAN.
        // All four order combinations, so the result is symmetric.
        let concat = a
            .concat
            .iter()
            .flat_map(|x| b.concat.iter().map(move |y| (x, y)))
            .map(|(x, y)| strsim::jaro_winkler(x, y) as f32)
            .fold(0.0f32, f32::max);
        // Only near-identical concatenations count: a shared long surname
        // prefix alone must not make different given names look alike.
        let concat = if concat >= CONCAT_MIN_JW {
            jw_curve(concat) * CONCAT_FACTOR
        } else {
            0.0
        };
        if concat > sim {
            sim = concat;
            used_phonetic = false;
        }
    }
    (sim.clamp(0.0, 1.0), used_phonetic)
}

/// Order-independent similarity of two names in 0..=1 (1.0 for names that
/// normalise identically; 0.0 when either has no tokens). Symmetric up to
/// floating-point rounding.
pub fn name_similarity(a: &PersonName, b: &PersonName) -> f32 {
    let pa = prepare(&normalise_person_name(a));
    let pb = prepare(&normalise_person_name(b));
    prepared_similarity(&pa, &pb).0
}

// ---------------------------------------------------------------------------
// Scoring

fn adjust_for_dob(name_sim: f32, dob: DobAgreement) -> f32 {
    match dob {
        DobAgreement::Exact => name_sim + DOB_EXACT_BONUS,
        DobAgreement::PartialMatch => name_sim + DOB_PARTIAL_BONUS,
        DobAgreement::Unknown => name_sim,
        DobAgreement::Close => name_sim * DOB_CLOSE_FACTOR,
        DobAgreement::Conflict => name_sim * DOB_CONFLICT_FACTOR,
    }
}

/// What a screen computes once about the identity rather than once per candidate.
struct PreparedIdentity {
    names: Vec<PreparedName>,
    /// Document keys of the identity's documents that have a number, in order.
    doc_keys: Vec<String>,
}

fn prepare_identity(identity: &Identity) -> PreparedIdentity {
    PreparedIdentity {
        names: identity.names.iter().map(|n| prepare(&normalise_person_name(n))).collect(),
        doc_keys: identity.documents.iter().filter_map(numbered_document_key).collect(),
    }
}

/// The lookout's document matching the first of the identity's documents that matches
/// one exactly on (type, country, normalised number).
fn document_hit<'l>(p: &PreparedIdentity, lookout: &'l Lookout) -> Option<&'l crate::types::Document> {
    if p.doc_keys.is_empty() || lookout.documents.is_empty() {
        return None;
    }
    let lookout_docs: Vec<(String, &crate::types::Document)> =
        lookout.documents.iter().filter_map(|d| Some((numbered_document_key(d)?, d))).collect();
    p.doc_keys
        .iter()
        .find_map(|k| lookout_docs.iter().find(|(lk, _)| lk == k).map(|(_, ld)| *ld))
}

/// The highest score `lookout` could reach against `identity` whatever the names:
/// 1.0 on a document hit, else a perfect name adjusted for date of birth and sex.
/// Exact, since the name similarity is at most 1.0 and every adjustment is monotone.
fn score_bound(identity: &Identity, doc_hit: bool, lookout: &Lookout) -> f32 {
    if doc_hit {
        return 1.0;
    }
    let mut bound = adjust_for_dob(1.0, dob_agreement(identity.dob, lookout.subject.dob));
    if identity.sex.conflicts_with(lookout.subject.sex) {
        bound *= SEX_CONFLICT_FACTOR;
    }
    bound.clamp(0.0, 1.0)
}

/// Scores `identity` against `lookout` ignoring the threshold, retirement and
/// the validity window (use [`score`] for screening). Always returns a
/// [`Match`] whose score is in 0.0..=1.0.
pub fn evaluate(identity: &Identity, lookout: &Lookout) -> Match {
    let p = prepare_identity(identity);
    evaluate_prepared(identity, &p, document_hit(&p, lookout), lookout)
}

fn evaluate_prepared(
    identity: &Identity,
    p: &PreparedIdentity,
    doc_hit: Option<&crate::types::Document>,
    lookout: &Lookout,
) -> Match {
    let mut reasons = Vec::new();

    // 1. Exact document.
    if let Some(d) = doc_hit {
        reasons.push(Reason::DocumentExact {
            doc_type: d.doc_type,
            country: d.country.clone(),
        });
    }

    // 2. Best name over identity names × (primary name, aliases).
    let lookout_names: Vec<PreparedName> = std::iter::once(&lookout.subject.name)
        .chain(lookout.subject.aliases.iter())
        .map(|n| prepare(&normalise_person_name(n)))
        .collect();
    let mut best: Option<(f32, bool, usize)> = None; // (sim, phonetic, lookout name index)
    for name in &p.names {
        for (idx, ln) in lookout_names.iter().enumerate() {
            let (s, ph) = prepared_similarity(name, ln);
            if best.is_none_or(|(b, _, _)| s > b) {
                best = Some((s, ph, idx));
            }
        }
    }
    let dob = dob_agreement(identity.dob, lookout.subject.dob);
    let sex_conflict = identity.sex.conflicts_with(lookout.subject.sex);

    let mut name_score = 0.0f32;
    if let Some((sim, phonetic, idx)) = best {
        if idx > 0 {
            reasons.push(Reason::Alias {
                alias_index: idx - 1,
                similarity: sim,
            });
        }
        reasons.push(Reason::NameDob {
            name_similarity: sim,
            dob,
        });
        if phonetic {
            reasons.push(Reason::Phonetic);
        }
        name_score = adjust_for_dob(sim, dob);
    }
    if sex_conflict {
        reasons.push(Reason::SexMismatch);
        name_score *= SEX_CONFLICT_FACTOR;
    }
    let score = if doc_hit.is_some() {
        1.0
    } else {
        name_score.clamp(0.0, 1.0)
    };

    Match {
        lookout_id: lookout.id.clone(),
        category: lookout.category,
        score,
        reasons,
    }
}

/// Screens `identity` against one candidate lookout. `None` if the lookout is
/// retired, outside its validity window at `config.now_ms`, or scores below
/// `config.threshold`.
pub fn score(identity: &Identity, lookout: &Lookout, config: &MatchConfig) -> Option<Match> {
    score_prepared(identity, &prepare_identity(identity), lookout, config)
}

fn score_prepared(identity: &Identity, p: &PreparedIdentity, lookout: &Lookout, config: &MatchConfig) -> Option<Match> {
    if !lookout.is_active_at(config.now_ms) {
        return None;
    }
    // Most candidates found under a name key and a neighbouring birth year have a
    // conflicting date of birth, which caps them below the threshold: skip the names.
    let doc_hit = document_hit(p, lookout);
    if score_bound(identity, doc_hit.is_some(), lookout) < config.threshold {
        return None;
    }
    let m = evaluate_prepared(identity, p, doc_hit, lookout);
    (m.score >= config.threshold).then_some(m)
}

/// Scores every candidate and returns the matches, highest score first
/// (ties by lookout id), each lookout id at most once.
pub fn screen<'a>(
    identity: &Identity,
    candidates: impl IntoIterator<Item = &'a Lookout>,
    config: &MatchConfig,
) -> Vec<Match> {
    let p = prepare_identity(identity);
    let mut out: Vec<Match> = candidates
        .into_iter()
        .filter_map(|l| score_prepared(identity, &p, l, config))
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.lookout_id.cmp(&b.lookout_id))
    });
    out.dedup_by(|later, earlier| later.lookout_id == earlier.lookout_id);
    out
}

/// The decision for a set of matches: `NoBoard` if any is a no-board lookout,
/// else `ReferSecondary` if any is refer-secondary, else `Clear`.
/// `AlertOnly` matches never change the decision (it stays `Clear`) but are
/// still returned to the caller, who lists them to the officer.
pub fn decide(matches: &[Match]) -> Decision {
    matches
        .iter()
        .map(|m| match m.category {
            Category::NoBoard => Decision::NoBoard,
            Category::ReferSecondary => Decision::ReferSecondary,
            Category::AlertOnly => Decision::Clear,
        })
        .max()
        .unwrap_or(Decision::Clear)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Option<PartialDate> {
        Some(PartialDate::parse(s).unwrap())
    }

    #[test]
    fn dob_agreement_cases() {
        use DobAgreement::*;
        assert_eq!(dob_agreement(d("1980-07-14"), d("1980-07-14")), Exact);
        assert_eq!(dob_agreement(d("1980-07-14"), d("1980")), PartialMatch);
        assert_eq!(dob_agreement(d("1980-07-14"), d("1980-07")), PartialMatch);
        assert_eq!(dob_agreement(d("1980"), d("1980-07-14")), PartialMatch);
        assert_eq!(dob_agreement(None, d("1980-07-14")), Unknown);
        assert_eq!(dob_agreement(d("1980-07-14"), None), Unknown);
        assert_eq!(dob_agreement(d("1981-07-14"), d("1980-07-14")), Close);
        assert_eq!(dob_agreement(d("1980-07-04"), d("1980-04-07")), Close);
        assert_eq!(dob_agreement(d("1982-07-14"), d("1980-07-14")), Conflict);
        assert_eq!(dob_agreement(d("1980-07-15"), d("1980-07-14")), Conflict);
        assert_eq!(dob_agreement(d("1980-08-14"), d("1980")), PartialMatch);
        assert_eq!(dob_agreement(d("1980-08-14"), d("1980-07")), Conflict);
        assert_eq!(dob_agreement(d("1981-08-14"), d("1980-07")), Conflict);
    }

    #[test]
    fn jw_curve_is_monotone_and_bounded() {
        let mut prev = 0.0;
        for i in 0..=1000 {
            let v = jw_curve(i as f32 / 1000.0);
            assert!((0.0..=1.0).contains(&v));
            assert!(v >= prev);
            prev = v;
        }
        assert_eq!(jw_curve(1.0), 1.0);
    }

    #[test]
    fn decide_by_severity() {
        let m = |c| Match {
            lookout_id: "x".into(),
            category: c,
            score: 0.9,
            reasons: vec![],
        };
        assert_eq!(decide(&[]), Decision::Clear);
        assert_eq!(decide(&[m(Category::AlertOnly)]), Decision::Clear);
        assert_eq!(
            decide(&[m(Category::AlertOnly), m(Category::ReferSecondary)]),
            Decision::ReferSecondary
        );
        assert_eq!(
            decide(&[
                m(Category::ReferSecondary),
                m(Category::NoBoard),
                m(Category::AlertOnly)
            ]),
            Decision::NoBoard
        );
        assert!(
            Category::NoBoard > Category::ReferSecondary
                && Category::ReferSecondary > Category::AlertOnly
        );
    }
}
