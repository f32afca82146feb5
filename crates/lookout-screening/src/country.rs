//! ISO 3166-1 alpha-3 country codes, plus the ICAO Doc 9303 codes that appear
//! in travel documents but are not ISO country codes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every officially assigned ISO 3166-1 alpha-3 code (249 entries), sorted so
/// that look-ups can binary-search.
pub const ISO_ALPHA3: [&str; 249] = [
    "ABW", "AFG", "AGO", "AIA", "ALA", "ALB", "AND", "ARE", "ARG", "ARM", "ASM", "ATA", "ATF",
    "ATG", "AUS", "AUT", "AZE", "BDI", "BEL", "BEN", "BES", "BFA", "BGD", "BGR", "BHR", "BHS",
    "BIH", "BLM", "BLR", "BLZ", "BMU", "BOL", "BRA", "BRB", "BRN", "BTN", "BVT", "BWA", "CAF",
    "CAN", "CCK", "CHE", "CHL", "CHN", "CIV", "CMR", "COD", "COG", "COK", "COL", "COM", "CPV",
    "CRI", "CUB", "CUW", "CXR", "CYM", "CYP", "CZE", "DEU", "DJI", "DMA", "DNK", "DOM", "DZA",
    "ECU", "EGY", "ERI", "ESH", "ESP", "EST", "ETH", "FIN", "FJI", "FLK", "FRA", "FRO", "FSM",
    "GAB", "GBR", "GEO", "GGY", "GHA", "GIB", "GIN", "GLP", "GMB", "GNB", "GNQ", "GRC", "GRD",
    "GRL", "GTM", "GUF", "GUM", "GUY", "HKG", "HMD", "HND", "HRV", "HTI", "HUN", "IDN", "IMN",
    "IND", "IOT", "IRL", "IRN", "IRQ", "ISL", "ISR", "ITA", "JAM", "JEY", "JOR", "JPN", "KAZ",
    "KEN", "KGZ", "KHM", "KIR", "KNA", "KOR", "KWT", "LAO", "LBN", "LBR", "LBY", "LCA", "LIE",
    "LKA", "LSO", "LTU", "LUX", "LVA", "MAC", "MAF", "MAR", "MCO", "MDA", "MDG", "MDV", "MEX",
    "MHL", "MKD", "MLI", "MLT", "MMR", "MNE", "MNG", "MNP", "MOZ", "MRT", "MSR", "MTQ", "MUS",
    "MWI", "MYS", "MYT", "NAM", "NCL", "NER", "NFK", "NGA", "NIC", "NIU", "NLD", "NOR", "NPL",
    "NRU", "NZL", "OMN", "PAK", "PAN", "PCN", "PER", "PHL", "PLW", "PNG", "POL", "PRI", "PRK",
    "PRT", "PRY", "PSE", "PYF", "QAT", "REU", "ROU", "RUS", "RWA", "SAU", "SDN", "SEN", "SGP",
    "SGS", "SHN", "SJM", "SLB", "SLE", "SLV", "SMR", "SOM", "SPM", "SRB", "SSD", "STP", "SUR",
    "SVK", "SVN", "SWE", "SWZ", "SXM", "SYC", "SYR", "TCA", "TCD", "TGO", "THA", "TJK", "TKL",
    "TKM", "TLS", "TON", "TTO", "TUN", "TUR", "TUV", "TWN", "TZA", "UGA", "UKR", "UMI", "URY",
    "USA", "UZB", "VAT", "VCT", "VEN", "VGB", "VIR", "VNM", "VUT", "WLF", "WSM", "YEM", "ZAF",
    "ZMB", "ZWE",
];

/// ICAO Doc 9303 codes that are valid in machine-readable travel documents but
/// are not ISO 3166-1 country codes, sorted.
///
/// * `EUE` — European Union
/// * `GBD`, `GBN`, `GBO`, `GBP`, `GBS` — British nationality classes other than citizen
/// * `UNA`, `UNK`, `UNO` — United Nations agency / Kosovo (UNMIK) / organisation
/// * `XXA` stateless, `XXB` refugee (1951 Convention), `XXC` refugee (other), `XXX` unspecified
///
/// The one-letter German code `D` (written `D<<` in the MRZ) is deliberately
/// **not** accepted: records must use `DEU`.
pub const ICAO_SPECIAL: [&str; 13] = [
    "EUE", "GBD", "GBN", "GBO", "GBP", "GBS", "UNA", "UNK", "UNO", "XXA", "XXB", "XXC", "XXX",
];

/// Why a string is not an acceptable [`CountryCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountryCodeError {
    /// Not three ASCII letters.
    #[error(
        "country code {0:?} is not three letters (expected an ISO 3166-1 alpha-3 code such as \"GBR\")"
    )]
    Malformed(String),
    /// Three letters, but neither an ISO 3166-1 alpha-3 code nor an accepted ICAO 9303 code.
    #[error("country code {0:?} is not an ISO 3166-1 alpha-3 code or an accepted ICAO 9303 code")]
    Unknown(String),
}

/// A validated ISO 3166-1 alpha-3 code (or one of the ICAO 9303 codes listed
/// in [`CountryCode::is_icao_special`]), always stored in upper case.
///
/// Serialises as its three-letter string; deserialisation validates.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(String);

impl CountryCode {
    /// Parses a code. Surrounding ASCII whitespace is ignored and ASCII letters
    /// are upper-cased (`"gbr"` → `GBR`); anything else is an error naming the
    /// value. Never panics.
    pub fn parse(value: &str) -> Result<Self, CountryCodeError> {
        let trimmed = value.trim_matches(|c: char| c.is_ascii_whitespace());
        if trimmed.len() != 3 || !trimmed.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(CountryCodeError::Malformed(value.to_string()));
        }
        let upper = trimmed.to_ascii_uppercase();
        if ISO_ALPHA3.binary_search(&upper.as_str()).is_ok()
            || ICAO_SPECIAL.binary_search(&upper.as_str()).is_ok()
        {
            Ok(CountryCode(upper))
        } else {
            Err(CountryCodeError::Unknown(value.to_string()))
        }
    }

    /// The three upper-case letters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the ICAO 9303 codes that are not ISO 3166-1 countries
    /// (`XXA`, `XXB`, `XXC`, `XXX`, `UNO`, `UNA`, `UNK`, `EUE`, `GBD`, `GBN`,
    /// `GBO`, `GBP`, `GBS`).
    pub fn is_icao_special(&self) -> bool {
        ICAO_SPECIAL.binary_search(&self.0.as_str()).is_ok()
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for CountryCode {
    type Err = CountryCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CountryCode::parse(s)
    }
}

impl TryFrom<String> for CountryCode {
    type Error = CountryCodeError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CountryCode::parse(&value)
    }
}

impl From<CountryCode> for String {
    fn from(value: CountryCode) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_unique_and_disjoint() {
        assert!(ISO_ALPHA3.windows(2).all(|w| w[0] < w[1]));
        assert!(ICAO_SPECIAL.windows(2).all(|w| w[0] < w[1]));
        for c in ICAO_SPECIAL {
            assert!(ISO_ALPHA3.binary_search(&c).is_err(), "{c} is also ISO");
        }
        for c in ISO_ALPHA3.iter().chain(ICAO_SPECIAL.iter()) {
            assert_eq!(c.len(), 3);
            assert!(c.bytes().all(|b| b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn parses_known_codes_case_insensitively() {
        assert_eq!(CountryCode::parse("GBR").unwrap().as_str(), "GBR");
        assert_eq!(CountryCode::parse(" deu ").unwrap().as_str(), "DEU");
        assert_eq!(CountryCode::parse("ssd").unwrap().as_str(), "SSD");
        assert_eq!(CountryCode::parse("XXA").unwrap().as_str(), "XXA");
        assert!(CountryCode::parse("XXA").unwrap().is_icao_special());
        assert!(!CountryCode::parse("FRA").unwrap().is_icao_special());
        for c in [
            "UNO", "UNA", "UNK", "EUE", "GBD", "GBN", "GBO", "GBP", "GBS", "XXB", "XXC", "XXX",
        ] {
            assert!(CountryCode::parse(c).is_ok(), "{c}");
        }
    }

    #[test]
    fn rejects_unknown_and_malformed_naming_the_value() {
        let e = CountryCode::parse("ZZZ").unwrap_err();
        assert_eq!(e, CountryCodeError::Unknown("ZZZ".into()));
        assert!(e.to_string().contains("\"ZZZ\""));
        // Former / non-current and two-letter codes.
        assert!(matches!(
            CountryCode::parse("YUG"),
            Err(CountryCodeError::Unknown(_))
        ));
        assert!(matches!(
            CountryCode::parse("GB"),
            Err(CountryCodeError::Malformed(_))
        ));
        assert!(matches!(
            CountryCode::parse("D<<"),
            Err(CountryCodeError::Malformed(_))
        ));
        assert!(matches!(
            CountryCode::parse("D"),
            Err(CountryCodeError::Malformed(_))
        ));
        assert!(matches!(
            CountryCode::parse("GBRX"),
            Err(CountryCodeError::Malformed(_))
        ));
        assert!(matches!(
            CountryCode::parse("ГБР"),
            Err(CountryCodeError::Malformed(_))
        ));
        assert!(matches!(
            CountryCode::parse(""),
            Err(CountryCodeError::Malformed(_))
        ));
    }

    #[test]
    fn serde_round_trip_validates() {
        let c = CountryCode::parse("nzl").unwrap();
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, "\"NZL\"");
        assert_eq!(serde_json::from_str::<CountryCode>(&j).unwrap(), c);
        assert!(serde_json::from_str::<CountryCode>("\"QQQ\"").is_err());
    }
}
