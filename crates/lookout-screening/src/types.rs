//! Domain records. These are the replicated record format: other crates store
//! and ship them (serde), so field names and variant names are part of the
//! wire/storage contract.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::country::CountryCode;
use crate::date::PartialDate;

/// A person's name as recorded: given name(s) and surname(s), free text in any
/// script. Matching never relies on the split being right (see
/// [`crate::normalise`]), but surname tokens weigh more in scoring.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct PersonName {
    /// Given name(s), e.g. `"José María"`.
    pub given: String,
    /// Surname(s) / family name(s), e.g. `"García-López"`.
    pub surname: String,
}

impl PersonName {
    /// Convenience constructor.
    pub fn new(given: impl Into<String>, surname: impl Into<String>) -> Self {
        PersonName {
            given: given.into(),
            surname: surname.into(),
        }
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.given.is_empty(), self.surname.is_empty()) {
            (false, false) => write!(f, "{} {}", self.given, self.surname),
            (true, _) => f.write_str(&self.surname),
            (false, true) => f.write_str(&self.given),
        }
    }
}

/// Sex as recorded on a travel document. ICAO 9303 `X` (unspecified) and a
/// blank field both map to [`Sex::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Sex {
    /// `M`.
    Male,
    /// `F`.
    Female,
    /// `X`, `<` or not recorded.
    #[default]
    Unknown,
}

impl Sex {
    /// Maps an MRZ/ICAO sex code (`M`, `F`, `X`, `<`, empty; case-insensitive).
    /// Anything unrecognised is `Unknown`.
    pub fn from_code(code: &str) -> Sex {
        match code.trim() {
            "M" | "m" => Sex::Male,
            "F" | "f" => Sex::Female,
            _ => Sex::Unknown,
        }
    }

    /// True when both are known and differ.
    pub fn conflicts_with(self, other: Sex) -> bool {
        matches!(
            (self, other),
            (Sex::Male, Sex::Female) | (Sex::Female, Sex::Male)
        )
    }
}

/// Kind of identity document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DocType {
    /// Passport (ICAO `P`).
    Passport,
    /// National identity card.
    NationalId,
    /// Visa.
    Visa,
    /// Any other document.
    Other,
}

impl DocType {
    /// Stable upper-case code used in document keys. Never change these: they
    /// are part of persisted index keys.
    pub fn code(self) -> &'static str {
        match self {
            DocType::Passport => "PASSPORT",
            DocType::NationalId => "NATIONAL_ID",
            DocType::Visa => "VISA",
            DocType::Other => "OTHER",
        }
    }
}

impl fmt::Display for DocType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DocType::Passport => "passport",
            DocType::NationalId => "national ID",
            DocType::Visa => "visa",
            DocType::Other => "document",
        })
    }
}

/// An identity document. `number` is stored as given; matching uses
/// [`crate::normalise_document_number`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Document {
    /// Document kind.
    pub doc_type: DocType,
    /// Issuing state.
    pub country: CountryCode,
    /// Number as written on the document.
    pub number: String,
    /// Expiry, if known. Not used for matching (an expired passport is still
    /// the same person's passport).
    pub expiry: Option<PartialDate>,
}

/// The person a lookout is about.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Subject {
    /// Primary name.
    pub name: PersonName,
    /// Known aliases / alternative spellings, in the order recorded.
    pub aliases: Vec<PersonName>,
    /// Date of birth, possibly partial.
    pub dob: Option<PartialDate>,
    /// Recorded sex.
    pub sex: Sex,
    /// Nationalities (informational; not used in scoring).
    pub nationalities: Vec<CountryCode>,
}

/// What a lookout asks the officer to do. Declaration order is **not** the
/// severity order; use [`Category::severity`] or `Ord`, under which
/// `AlertOnly < ReferSecondary < NoBoard`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Category {
    /// Deny boarding.
    NoBoard,
    /// Refer the traveller to secondary inspection.
    ReferSecondary,
    /// Record/alert only; does not change the decision.
    AlertOnly,
}

impl Category {
    /// 0 = least severe.
    pub fn severity(self) -> u8 {
        match self {
            Category::AlertOnly => 0,
            Category::ReferSecondary => 1,
            Category::NoBoard => 2,
        }
    }
}

impl PartialOrd for Category {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Category {
    fn cmp(&self, other: &Self) -> Ordering {
        self.severity().cmp(&other.severity())
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Category::NoBoard => "no-board",
            Category::ReferSecondary => "refer to secondary",
            Category::AlertOnly => "alert only",
        })
    }
}

/// A watch-list record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookout {
    /// Stable identifier.
    pub id: String,
    /// Who it is about.
    pub subject: Subject,
    /// Documents known to belong to the subject.
    pub documents: Vec<Document>,
    /// Action category.
    pub category: Category,
    /// Free-text reason (shown to officers; not used in matching).
    pub reason: String,
    /// Originating agency.
    pub source_agency: String,
    /// Start of validity, unix milliseconds, inclusive. `None` = always.
    pub valid_from_ms: Option<u64>,
    /// End of validity, unix milliseconds, exclusive. `None` = forever.
    pub valid_until_ms: Option<u64>,
    /// Record version (monotonic per id, maintained by the store).
    pub version: u64,
    /// Creator principal.
    pub created_by: String,
    /// Last updater principal.
    pub updated_by: String,
    /// Retired lookouts never match.
    pub retired: bool,
}

/// Why a [`Lookout`] is not acceptable as a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookoutError {
    /// Empty id.
    #[error("lookout id is empty")]
    EmptyId,
    /// Neither a usable name nor a usable document number: nothing could match it.
    #[error("lookout {0:?} has no name tokens and no document number, so it could never match")]
    Unmatchable(String),
    /// `valid_from_ms >= valid_until_ms`.
    #[error("lookout {id:?} validity window is empty ({from} >= {until})")]
    EmptyWindow {
        /// Lookout id.
        id: String,
        /// `valid_from_ms`.
        from: u64,
        /// `valid_until_ms`.
        until: u64,
    },
}

impl Lookout {
    /// Whether the lookout may match at `now_ms`: not retired, and
    /// `valid_from_ms <= now_ms < valid_until_ms` (missing bounds are open).
    pub fn is_active_at(&self, now_ms: u64) -> bool {
        !self.retired
            && self.valid_from_ms.is_none_or(|from| from <= now_ms)
            && self.valid_until_ms.is_none_or(|until| now_ms < until)
    }

    /// Structural checks a state machine may apply before accepting a record.
    pub fn validate(&self) -> Result<(), LookoutError> {
        if self.id.trim().is_empty() {
            return Err(LookoutError::EmptyId);
        }
        if let (Some(from), Some(until)) = (self.valid_from_ms, self.valid_until_ms)
            && from >= until
        {
            return Err(LookoutError::EmptyWindow {
                id: self.id.clone(),
                from,
                until,
            });
        }
        let has_name = std::iter::once(&self.subject.name)
            .chain(self.subject.aliases.iter())
            .any(|n| !crate::normalise::normalise_person_name(n).is_empty());
        let has_doc = self
            .documents
            .iter()
            .any(|d| !crate::normalise::normalise_document_number(&d.number).is_empty());
        if !has_name && !has_doc {
            return Err(LookoutError::Unmatchable(self.id.clone()));
        }
        Ok(())
    }
}

/// The traveller being screened.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identity {
    /// Names to screen; the first is the primary (document) name, others are
    /// e.g. names from a visa or booking.
    pub names: Vec<PersonName>,
    /// Date of birth, if known.
    pub dob: Option<PartialDate>,
    /// Sex.
    pub sex: Sex,
    /// Nationality (informational; not used in scoring).
    pub nationality: Option<CountryCode>,
    /// Documents presented.
    pub documents: Vec<Document>,
}

/// A flight leg a traveller is booked on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Itinerary {
    /// Airline designator, e.g. "AC".
    pub carrier: String,
    /// Flight number without the carrier, e.g. "870".
    pub flight_number: String,
    /// IATA airport code of departure.
    pub departure_port: String,
    /// IATA airport code of arrival.
    pub arrival_port: String,
    /// Unix milliseconds.
    pub scheduled_arrival_ms: u64,
}

/// A traveller record: who, and on which flight.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Traveller {
    /// Stable identifier.
    pub id: String,
    /// Who travels.
    pub identity: Identity,
    /// On which flight.
    pub itinerary: Itinerary,
    /// Record version (maintained by the store).
    pub version: u64,
}

/// Outcome of screening one identity against its matches. Ordered by
/// severity: `Clear < ReferSecondary < NoBoard`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Decision {
    /// No action (possibly with alert-only matches listed).
    Clear,
    /// Send to secondary inspection.
    ReferSecondary,
    /// Deny boarding.
    NoBoard,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decision::Clear => "clear",
            Decision::ReferSecondary => "refer to secondary",
            Decision::NoBoard => "no-board",
        })
    }
}
