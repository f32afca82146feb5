//! # lookout-screening
//!
//! This crate answers one question: **does this traveller identity match a
//! lookout (a watch-list record), how strongly, and why?** It defines the
//! replicated record types ([`Lookout`], [`Subject`], [`Identity`], …),
//! normalises names and document numbers, derives the **index keys** under
//! which the replicated state machine files each lookout when it applies a
//! record ([`index_keys`]) and the keys the screening handler looks up for a
//! traveller ([`identity_probe_keys`]), and scores each candidate found that
//! way ([`score()`], [`screen`], [`decide`]).
//!
//! **Invariants.** The crate is pure: no I/O, no clock, no randomness, no
//! threads, no environment or locale (case mapping is the Unicode default
//! mapping built into `char`), and no hash-map iteration anywhere in its
//! outputs. Every function is a deterministic function of its arguments, so
//! index keys are byte-identical on every replica for the same record and
//! crate version; the time needed for validity windows is passed in
//! ([`MatchConfig::now_ms`]). Key outputs are sorted and deduplicated. The
//! string forms of keys, the document-type codes and the normalisation rules
//! are part of the persisted index: changing any of them requires
//! re-indexing.
//!
//! ## Normalisation
//!
//! See [`normalise`] (names: NFKD, marks stripped, upper case, Latin/
//! Cyrillic/Greek transliteration, apostrophes join, other punctuation
//! splits, `O`/`MC`/`MAC` glued to the next token, particles such as `AL`,
//! `BIN`, `VAN`, `DE`, `Y` dropped when other tokens remain, order ignored;
//! documents: alphanumerics only, upper case, letter `O` read as digit `0`)
//! and [`phonetic`] (romanisation folds and Double Metaphone codes).
//!
//! ## Index-key scheme
//!
//! A lookout is a **candidate** for a traveller when the two share at least
//! one key; every candidate is then [`score()`]d, so keys trade bucket size
//! for recall but never decide a match. Each key is a string whose first
//! letter is its kind:
//!
//! * **`D:<TYPE>:<CCC>:<NUMBER>`** — one per document with a non-empty
//!   normalised number, e.g. `D:PASSPORT:GBR:L898902C3` ([`document_key`]).
//! * **`T:<code>:<yyyy|*>`** — one per Double Metaphone code (primary and
//!   alternate, of the spelling-folded token and of its glued-article-free
//!   form) of every token of the primary name and of every alias, joined
//!   with the lookout's birth year, or `*` when the lookout has no DOB
//!   ([`name_keys`] lists the codes of one name). Because each token is keyed
//!   on its own, a candidate needs only **one** token in common: token
//!   order swaps (`ZHANG WEI` / `WEI ZHANG`), a missing middle name or second
//!   surname, and a typo in one token of a multi-token name all still share
//!   the keys of the other tokens; transliteration variants usually share
//!   even the altered token's code (`MOHAMMED`/`MUHAMMAD`/`MOHAMAD` → `MHMT`,
//!   `YUSUF`/`YOUSSEF` → `ASF`, `ALEKSANDR`/`ALEXANDER` → `ALKS`).
//! * **`F:<code>+<code>…`** — the sorted primary codes of the whole name, no
//!   year: lets a traveller *without* a DOB find lookouts *with* one, by
//!   whole name (exact, order-swapped or transliterated), without putting
//!   every lookout into a year-less bucket per token.
//! * **`S:<code>:<yyyy|*>`** — single-token names only (mononyms, or names
//!   whose other tokens were particles): the primary code and each of its
//!   one-character deletions (codes of 3+ characters). Two codes within one
//!   edit of each other share such a key (symmetric deletion), so a typo in
//!   the only token of a name, which has no other token to fall back on,
//!   still yields a candidate.
//!
//! **Stored vs probed.** A lookout stores its keys with its own birth year
//! only (or `*`), so a record has few keys: typically 3–15, never more than
//! [`MAX_INDEX_KEYS`] (documents first, then the primary name, then aliases
//! in order, before the cap). A traveller with a DOB in year `y` probes the
//! `T`/`S` keys for `y−1`, `y`, `y+1` **and** `*`: the `*` probes find
//! lookouts with no DOB, the same-year probes find lookouts with a full,
//! year-month or year-only DOB (all stored under the year), and `y±1`
//! absorbs a birth-year typo on either side. A traveller with no DOB probes
//! only `*` and the `F` keys, so it finds lookouts without a DOB by any
//! shared token, and lookouts with a DOB only by whole-name code set or by
//! document. A lookout whose birth year is two or more years from the
//! traveller's is never a candidate by name: it would score as a DOB
//! conflict anyway.
//!
//! Scores are `f32` and are computed only by the screening handler, never
//! replicated; nothing derived from floating point enters a key.
//!
//! ## Scoring
//!
//! [`score()`] returns `None` for retired lookouts and outside
//! `valid_from_ms <= now_ms < valid_until_ms`. Otherwise:
//!
//! * an exact normalised document (type, issuing state, number) gives 1.0
//!   and [`Reason::DocumentExact`];
//! * else the name similarity is the best, over the traveller's names × the
//!   lookout's primary name and aliases, of an order-independent token-set
//!   similarity: tokens are paired by an optimal assignment maximising
//!   Σ weight × similarity (surname tokens weigh 1.5, given 1.0), token
//!   similarity being 1 for equal tokens, 0.97 for spellings equal after the
//!   romanisation fold, at least 0.92 for tokens sharing a metaphone code
//!   (when Jaro-Winkler ≥ 0.7), 0.75 for an initial, else a sharpened
//!   Jaro-Winkler; tokens present on one side only cost 0.06 each (×0.92
//!   more if one side is a single token), a name whose surname tokens all
//!   pair below 0.75 is multiplied by 0.9 (shared given names must not carry
//!   a different surname), and a whole-name concatenation comparison catches
//!   `ABDUL RAHMAN` vs `ABDULRAHMAN`;
//! * the DOB comparison ([`DobAgreement`]) then adds 0.05 (exact) or 0.02
//!   (partial agreement), leaves it (unknown), multiplies by 0.93 (close:
//!   year off by one or day/month swapped) or by 0.6 (conflict, so a
//!   conflicting DOB alone keeps any name below the default threshold);
//!   differing known sexes multiply by 0.9;
//! * the result is a [`Match`] if it reaches [`MatchConfig::threshold`]
//!   (default 0.85), with [`Reason`]s explaining it.
//!
//! [`decide`] turns matches into a [`Decision`]: `NoBoard` beats
//! `ReferSecondary` beats `Clear`; `AlertOnly` lookouts are listed but leave
//! the decision `Clear`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod country;
pub mod date;
pub mod keys;
pub mod normalise;
pub mod phonetic;
pub mod score;
pub mod types;

pub use country::{CountryCode, CountryCodeError};
pub use date::{DateError, PartialDate};
pub use keys::{
    IndexKey, IndexKeyKind, MAX_INDEX_KEYS, document_key, identity_probe_keys, index_keys,
    name_keys, subject_index_keys,
};
pub use normalise::{
    NormalisedName, normalise_document_number, normalise_name_part, normalise_person_name,
    normalise_text,
};
pub use score::{
    DEFAULT_THRESHOLD, DobAgreement, Match, MatchConfig, Reason, decide, dob_agreement, evaluate,
    name_similarity, score, screen,
};
pub use types::{
    Category, Decision, DocType, Document, Identity, Itinerary, Lookout, LookoutError, PersonName, Sex,
    Subject, Traveller,
};
