//! The one place where protobuf messages (`lookout-proto`) become domain records
//! (`lookout-screening`) and back.
//!
//! Every `*_from_pb` function validates as it converts and reports the first problem as
//! an [`Invalid`] naming the field by its path in the request (for example
//! `lookout.subject.nationalities[1]`), so the server can answer `InvalidArgument` with
//! it and the bulk ingest can report it per record. Nothing here panics on input.

use lookout_proto::v1 as pb;
use lookout_screening::Category;
use lookout_screening::CountryCode;
use lookout_screening::DocType;
use lookout_screening::Document;
use lookout_screening::Identity;
use lookout_screening::Itinerary;
use lookout_screening::Lookout;
use lookout_screening::Match;
use lookout_screening::PartialDate;
use lookout_screening::PersonName;
use lookout_screening::Reason;
use lookout_screening::Sex;
use lookout_screening::Subject;
use lookout_screening::Traveller;

/// A request field that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid { field: field.into(), reason: reason.into() }
}

/// Longest accepted record id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest accepted name part or free-text field, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Most aliases, documents or nationalities on one record.
pub const MAX_LIST: usize = 32;

pub fn id(field: &str, id: &str) -> Result<String, Invalid> {
    if id.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(invalid(field, format!("{} bytes exceeds {MAX_ID_BYTES}", id.len())));
    }
    if id.chars().any(|c| c.is_control()) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(id.to_string())
}

fn text(field: &str, s: &str) -> Result<String, Invalid> {
    if s.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid(field, format!("longer than {MAX_TEXT_CHARS} characters")));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(s.trim().to_string())
}

fn list_len<T>(field: &str, v: &[T]) -> Result<(), Invalid> {
    if v.len() > MAX_LIST {
        return Err(invalid(field, format!("{} entries exceeds {MAX_LIST}", v.len())));
    }
    Ok(())
}

pub fn name_from_pb(field: &str, n: &Option<pb::PersonName>) -> Result<PersonName, Invalid> {
    let Some(n) = n else { return Err(invalid(field, "is required")) };
    let given = text(&format!("{field}.given"), &n.given)?;
    let surname = text(&format!("{field}.surname"), &n.surname)?;
    if given.is_empty() && surname.is_empty() {
        return Err(invalid(field, "needs a surname or a given name"));
    }
    Ok(PersonName { given, surname })
}

pub fn names_from_pb(field: &str, names: &[pb::PersonName]) -> Result<Vec<PersonName>, Invalid> {
    list_len(field, names)?;
    names.iter().enumerate().map(|(i, n)| name_from_pb(&format!("{field}[{i}]"), &Some(n.clone()))).collect()
}

pub fn date_from_pb(field: &str, s: &str) -> Result<Option<PartialDate>, Invalid> {
    if s.is_empty() {
        return Ok(None);
    }
    PartialDate::parse(s).map(Some).map_err(|e| invalid(field, e.to_string()))
}

pub fn country_from_pb(field: &str, s: &str) -> Result<CountryCode, Invalid> {
    CountryCode::parse(s).map_err(|e| invalid(field, e.to_string()))
}

pub fn sex_from_pb(field: &str, v: i32) -> Result<Sex, Invalid> {
    match pb::Sex::try_from(v) {
        Ok(pb::Sex::Male) => Ok(Sex::Male),
        Ok(pb::Sex::Female) => Ok(Sex::Female),
        Ok(pb::Sex::Unspecified | pb::Sex::Other) => Ok(Sex::Unknown),
        Err(_) => Err(invalid(field, format!("unknown value {v}"))),
    }
}

pub fn sex_to_pb(s: Sex) -> i32 {
    match s {
        Sex::Male => pb::Sex::Male as i32,
        Sex::Female => pb::Sex::Female as i32,
        Sex::Unknown => pb::Sex::Unspecified as i32,
    }
}

pub fn document_from_pb(field: &str, d: &pb::Document) -> Result<Document, Invalid> {
    let doc_type = match pb::DocumentType::try_from(d.r#type) {
        Ok(pb::DocumentType::Passport) => DocType::Passport,
        Ok(pb::DocumentType::NationalId) => DocType::NationalId,
        Ok(pb::DocumentType::Visa) => DocType::Visa,
        Ok(pb::DocumentType::Other) => DocType::Other,
        Ok(pb::DocumentType::Unspecified) => return Err(invalid(format!("{field}.type"), "is required")),
        Err(_) => return Err(invalid(format!("{field}.type"), format!("unknown value {}", d.r#type))),
    };
    let number = text(&format!("{field}.number"), &d.number)?;
    if number.is_empty() {
        return Err(invalid(format!("{field}.number"), "must not be empty"));
    }
    Ok(Document {
        doc_type,
        country: country_from_pb(&format!("{field}.issuing_country"), &d.issuing_country)?,
        number,
        expiry: date_from_pb(&format!("{field}.expiry"), &d.expiry)?,
    })
}

pub fn document_to_pb(d: &Document) -> pb::Document {
    let t = match d.doc_type {
        DocType::Passport => pb::DocumentType::Passport,
        DocType::NationalId => pb::DocumentType::NationalId,
        DocType::Visa => pb::DocumentType::Visa,
        DocType::Other => pb::DocumentType::Other,
    };
    pb::Document {
        r#type: t as i32,
        issuing_country: d.country.as_str().to_string(),
        number: d.number.clone(),
        expiry: d.expiry.map(|e| e.to_string()).unwrap_or_default(),
    }
}

fn documents_from_pb(field: &str, docs: &[pb::Document]) -> Result<Vec<Document>, Invalid> {
    list_len(field, docs)?;
    docs.iter().enumerate().map(|(i, d)| document_from_pb(&format!("{field}[{i}]"), d)).collect()
}

pub fn category_from_pb(field: &str, v: i32) -> Result<Category, Invalid> {
    match pb::Category::try_from(v) {
        Ok(pb::Category::NoBoard) => Ok(Category::NoBoard),
        Ok(pb::Category::ReferSecondary) => Ok(Category::ReferSecondary),
        Ok(pb::Category::AlertOnly) => Ok(Category::AlertOnly),
        Ok(pb::Category::Unspecified) => Err(invalid(field, "is required")),
        Err(_) => Err(invalid(field, format!("unknown value {v}"))),
    }
}

pub fn category_to_pb(c: Category) -> i32 {
    (match c {
        Category::NoBoard => pb::Category::NoBoard,
        Category::ReferSecondary => pb::Category::ReferSecondary,
        Category::AlertOnly => pb::Category::AlertOnly,
    }) as i32
}

/// A lookout as submitted for writing. Version, authorship and retirement are the
/// store's to set and are ignored here.
pub fn lookout_from_pb(field: &str, l: &Option<pb::Lookout>) -> Result<Lookout, Invalid> {
    let Some(l) = l else { return Err(invalid(field, "is required")) };
    let Some(s) = &l.subject else { return Err(invalid(format!("{field}.subject"), "is required")) };
    let sf = format!("{field}.subject");
    list_len(&format!("{sf}.nationalities"), &s.nationalities)?;
    let subject = Subject {
        name: name_from_pb(&format!("{sf}.name"), &s.name)?,
        aliases: names_from_pb(&format!("{sf}.aliases"), &s.aliases)?,
        dob: date_from_pb(&format!("{sf}.date_of_birth"), &s.date_of_birth)?,
        sex: sex_from_pb(&format!("{sf}.sex"), s.sex)?,
        nationalities: s
            .nationalities
            .iter()
            .enumerate()
            .map(|(i, c)| country_from_pb(&format!("{sf}.nationalities[{i}]"), c))
            .collect::<Result<_, _>>()?,
    };
    let opt_ms = |v: u64| (v != 0).then_some(v);
    let lookout = Lookout {
        id: id(&format!("{field}.id"), &l.id)?,
        subject,
        documents: documents_from_pb(&format!("{field}.documents"), &l.documents)?,
        category: category_from_pb(&format!("{field}.category"), l.category)?,
        reason: text(&format!("{field}.reason"), &l.reason)?,
        source_agency: text(&format!("{field}.source_agency"), &l.source_agency)?,
        valid_from_ms: opt_ms(l.valid_from_ms),
        valid_until_ms: opt_ms(l.valid_until_ms),
        version: 0,
        created_by: String::new(),
        updated_by: String::new(),
        retired: false,
    };
    if let (Some(from), Some(until)) = (lookout.valid_from_ms, lookout.valid_until_ms) {
        if until <= from {
            return Err(invalid(format!("{field}.valid_until_ms"), "must be after valid_from_ms"));
        }
    }
    lookout.validate().map_err(|e| invalid(field, e.to_string()))?;
    Ok(lookout)
}

pub fn name_to_pb(n: &PersonName) -> pb::PersonName {
    pb::PersonName { given: n.given.clone(), surname: n.surname.clone() }
}

pub fn lookout_to_pb(l: &Lookout, mod_index: u64) -> pb::Lookout {
    pb::Lookout {
        id: l.id.clone(),
        subject: Some(pb::Subject {
            name: Some(name_to_pb(&l.subject.name)),
            aliases: l.subject.aliases.iter().map(name_to_pb).collect(),
            date_of_birth: l.subject.dob.map(|d| d.to_string()).unwrap_or_default(),
            sex: sex_to_pb(l.subject.sex),
            nationalities: l.subject.nationalities.iter().map(|c| c.as_str().to_string()).collect(),
        }),
        documents: l.documents.iter().map(document_to_pb).collect(),
        category: category_to_pb(l.category),
        reason: l.reason.clone(),
        source_agency: l.source_agency.clone(),
        valid_from_ms: l.valid_from_ms.unwrap_or(0),
        valid_until_ms: l.valid_until_ms.unwrap_or(0),
        version: l.version,
        created_by: l.created_by.clone(),
        updated_by: l.updated_by.clone(),
        retired: l.retired,
        mod_index,
    }
}

pub fn identity_from_pb(field: &str, i: &Option<pb::Identity>) -> Result<Identity, Invalid> {
    let Some(i) = i else { return Err(invalid(field, "is required")) };
    if i.names.is_empty() && i.documents.is_empty() {
        return Err(invalid(format!("{field}.names"), "a name or a document is required"));
    }
    Ok(Identity {
        names: names_from_pb(&format!("{field}.names"), &i.names)?,
        dob: date_from_pb(&format!("{field}.date_of_birth"), &i.date_of_birth)?,
        sex: sex_from_pb(&format!("{field}.sex"), i.sex)?,
        nationality: if i.nationality.is_empty() {
            None
        } else {
            Some(country_from_pb(&format!("{field}.nationality"), &i.nationality)?)
        },
        documents: documents_from_pb(&format!("{field}.documents"), &i.documents)?,
    })
}

pub fn identity_to_pb(i: &Identity) -> pb::Identity {
    pb::Identity {
        names: i.names.iter().map(name_to_pb).collect(),
        date_of_birth: i.dob.map(|d| d.to_string()).unwrap_or_default(),
        sex: sex_to_pb(i.sex),
        nationality: i.nationality.as_ref().map(|c| c.as_str().to_string()).unwrap_or_default(),
        documents: i.documents.iter().map(document_to_pb).collect(),
    }
}

pub fn itinerary_from_pb(field: &str, it: &Option<pb::Itinerary>) -> Result<Itinerary, Invalid> {
    let Some(it) = it else { return Ok(Itinerary::default()) };
    Ok(Itinerary {
        carrier: text(&format!("{field}.carrier"), &it.carrier)?,
        flight_number: text(&format!("{field}.flight_number"), &it.flight_number)?,
        departure_port: text(&format!("{field}.departure_port"), &it.departure_port)?,
        arrival_port: text(&format!("{field}.arrival_port"), &it.arrival_port)?,
        scheduled_arrival_ms: it.scheduled_arrival_ms,
    })
}

pub fn itinerary_to_pb(it: &Itinerary) -> pb::Itinerary {
    pb::Itinerary {
        carrier: it.carrier.clone(),
        flight_number: it.flight_number.clone(),
        departure_port: it.departure_port.clone(),
        arrival_port: it.arrival_port.clone(),
        scheduled_arrival_ms: it.scheduled_arrival_ms,
    }
}

pub fn traveller_from_pb(field: &str, t: &Option<pb::Traveller>) -> Result<Traveller, Invalid> {
    let Some(t) = t else { return Err(invalid(field, "is required")) };
    let identity = identity_from_pb(
        field,
        &Some(pb::Identity {
            names: t.names.clone(),
            date_of_birth: t.date_of_birth.clone(),
            sex: t.sex,
            nationality: t.nationality.clone(),
            documents: t.documents.clone(),
        }),
    )?;
    Ok(Traveller {
        id: id(&format!("{field}.id"), &t.id)?,
        identity,
        itinerary: itinerary_from_pb(&format!("{field}.itinerary"), &t.itinerary)?,
        version: 0,
    })
}

pub fn traveller_to_pb(t: &Traveller) -> pb::Traveller {
    let i = identity_to_pb(&t.identity);
    pb::Traveller {
        id: t.id.clone(),
        names: i.names,
        date_of_birth: i.date_of_birth,
        sex: i.sex,
        nationality: i.nationality,
        documents: i.documents,
        itinerary: Some(itinerary_to_pb(&t.itinerary)),
    }
}

pub fn reason_to_pb(r: &Reason) -> pb::MatchReason {
    let kind = match r {
        Reason::DocumentExact { .. } => "DOCUMENT_EXACT",
        Reason::NameDob { .. } => "NAME_DOB",
        Reason::Alias { .. } => "ALIAS",
        Reason::Phonetic => "PHONETIC",
        Reason::SexMismatch => "SEX_MISMATCH",
    };
    pb::MatchReason { kind: kind.to_string(), detail: r.to_string() }
}

pub fn match_to_pb(m: &Match, lookout: &Lookout, mod_index: u64) -> pb::LookoutMatch {
    pb::LookoutMatch {
        lookout: Some(lookout_to_pb(lookout, mod_index)),
        score: m.score,
        reasons: m.reasons.iter().map(reason_to_pb).collect(),
    }
}

pub fn decision_to_pb(d: lookout_screening::Decision) -> i32 {
    (match d {
        lookout_screening::Decision::Clear => pb::Decision::Clear,
        lookout_screening::Decision::ReferSecondary => pb::Decision::ReferSecondary,
        lookout_screening::Decision::NoBoard => pb::Decision::NoBoard,
    }) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> pb::Lookout {
        pb::Lookout {
            id: "L-1".into(),
            subject: Some(pb::Subject {
                name: Some(pb::PersonName { given: "Ana".into(), surname: "Lima".into() }),
                aliases: vec![],
                date_of_birth: "1980-07".into(),
                sex: pb::Sex::Female as i32,
                nationalities: vec!["BRA".into()],
            }),
            documents: vec![pb::Document {
                r#type: pb::DocumentType::Passport as i32,
                issuing_country: "BRA".into(),
                number: "FA123456".into(),
                expiry: "2030-01-01".into(),
            }],
            category: pb::Category::NoBoard as i32,
            ..Default::default()
        }
    }

    #[test]
    fn round_trip() {
        let l = lookout_from_pb("lookout", &Some(good())).unwrap();
        let back = lookout_from_pb("lookout", &Some(lookout_to_pb(&l, 7))).unwrap();
        assert_eq!(l, back);
    }

    #[test]
    fn errors_name_the_field() {
        let field = |m: pb::Lookout| lookout_from_pb("lookout", &Some(m)).unwrap_err().field;
        let mut m = good();
        m.subject.as_mut().unwrap().name = None;
        assert_eq!(field(m), "lookout.subject.name");
        let mut m = good();
        m.subject.as_mut().unwrap().date_of_birth = "1980-13-01".into();
        assert_eq!(field(m), "lookout.subject.date_of_birth");
        let mut m = good();
        m.subject.as_mut().unwrap().nationalities.push("XYZ".into());
        assert_eq!(field(m), "lookout.subject.nationalities[1]");
        let mut m = good();
        m.documents[0].issuing_country = "ZZZ".into();
        assert_eq!(field(m), "lookout.documents[0].issuing_country");
        let mut m = good();
        m.category = 0;
        assert_eq!(field(m), "lookout.category");
        let mut m = good();
        m.category = 99;
        assert_eq!(field(m), "lookout.category");
        let mut m = good();
        m.id = "a\0b".into();
        assert_eq!(field(m), "lookout.id");
        assert_eq!(lookout_from_pb("lookout", &None).unwrap_err().field, "lookout");
    }

    #[test]
    fn arbitrary_strings_never_panic() {
        let samples = ["", "\u{0}", "9999-99-99", "1980-02-30", "ÅÄÖ", "2024-02-29", "-1", "１９８０"];
        for s in samples {
            let _ = date_from_pb("d", s);
            let _ = country_from_pb("c", s);
            let _ = id("id", s);
        }
    }
}
