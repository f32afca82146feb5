//! Non-name reference data: passport number formats, national ID formats,
//! lookout reasons and agencies, carriers and airports.

use crate::rng::Rng;

/// Passport number patterns per issuing state. `#` digit, `@` letter (no
/// `I`, `O`, `Q`), `%` one of `CFGHJK`, `*` one of the German
/// document-number alphabet; anything else literal. Approximations of the
/// formats in circulation (current and recent series).
pub(crate) fn passport_patterns(country: &str) -> &'static [&'static str] {
    match country {
        "USA" => &["#########", "@########"],
        "GBR" => &["#########"],
        "CAN" => &["@@######"],
        "AUS" => &["@#######", "P@#######"],
        "IRL" => &["@@#######"],
        "NZL" => &["@@######"],
        "ZAF" => &["@########"],
        "JAM" => &["@########"],
        "MEX" => &["@########", "##########"],
        "COL" => &["@@######", "PE######"],
        "ESP" => &["@@@######"],
        "ARG" => &["@@@######"],
        "PER" => &["#########"],
        "VEN" => &["#########"],
        "CUB" => &["@######"],
        "DOM" => &["@@#######"],
        "GTM" => &["@########"],
        "CHL" => &["@########"],
        "ECU" => &["@#######"],
        "SLV" => &["@########"],
        "HND" => &["@######"],
        "BOL" => &["@#######"],
        "NIC" => &["@########"],
        "PRY" => &["@######"],
        "URY" => &["@@######"],
        "CRI" => &["#########"],
        "PAN" => &["PA#######"],
        "SAU" => &["@#######"],
        "EGY" => &["@########"],
        "JOR" => &["@#######"],
        "IRQ" => &["@########"],
        "SYR" => &["#########", "N########"],
        "LBN" => &["LR#######", "RL#######"],
        "MAR" => &["@@#######"],
        "DZA" => &["#########"],
        "TUN" => &["@######"],
        "ARE" => &["@#######"],
        "YEM" => &["########"],
        "PSE" => &["#######"],
        "FRA" => &["##@@#####"],
        "DEU" => &["%********"],
        "RUS" => &["7########", "6########"],
        "UKR" => &["@@######"],
        "BLR" => &["@@#######"],
        "KAZ" => &["N########"],
        "BGR" => &["#########"],
        "POL" => &["@@#######"],
        "CZE" => &["########"],
        "SVK" => &["@@######"],
        "SRB" => &["#########"],
        "HRV" => &["#########"],
        "BIH" => &["@#######"],
        "SVN" => &["P@#######"],
        "MNE" => &["#########"],
        "MKD" => &["@#######"],
        "CHN" => &["E########", "E@#######"],
        "TWN" => &["#########"],
        "HKG" => &["H########", "K########"],
        "SGP" => &["E#######@", "K#######@"],
        "MYS" => &["A########"],
        "VNM" => &["@#######"],
        "KOR" => &["M########", "M###@####"],
        "IND" => &["@#######"],
        "NPL" => &["@@#######"],
        "PAK" => &["@@#######"],
        "BGD" => &["@@#######"],
        "AFG" => &["P########"],
        _ => &["@########"],
    }
}

const LETTERS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ";
const DE_FIRST: &[u8] = b"CFGHJK";
const DE_ALPHABET: &[u8] = b"CFGHJKLMNPRTVWXYZ0123456789";

pub(crate) fn fill_pattern(rng: &mut Rng, pattern: &str) -> String {
    pattern
        .bytes()
        .map(|b| match b {
            b'#' => char::from(b'0' + rng.below(10) as u8),
            b'@' => char::from(*rng.pick(LETTERS)),
            b'%' => char::from(*rng.pick(DE_FIRST)),
            b'*' => char::from(*rng.pick(DE_ALPHABET)),
            other => char::from(other),
        })
        .collect()
}

pub(crate) fn passport_number(rng: &mut Rng, country: &str) -> String {
    let pats = passport_patterns(country);
    let p = *rng.pick(pats);
    fill_pattern(rng, p)
}

pub(crate) fn national_id_number(rng: &mut Rng, country: &str) -> String {
    let pattern = match country {
        "ESP" => "########@",
        "USA" => "###-##-####",
        "GBR" => "@@######@",
        "MEX" => "@@@@######@@@@@@##",
        "CHN" => "##################",
        "IND" => "#### #### ####",
        "PAK" => "#####-#######-#",
        "EGY" => "##############",
        "POL" => "@@@######",
        "ITA" => "@@#####@@",
        "FRA" => "############",
        _ => "##########",
    };
    fill_pattern(rng, pattern)
}

pub(crate) const AGENCIES: &[(&str, u32)] = &[
    ("CBP", 14),
    ("HSI", 6),
    ("FBI", 6),
    ("DEA", 4),
    ("USMS", 3),
    ("ICE", 4),
    ("INTERPOL", 12),
    ("EUROPOL", 5),
    ("UKBF", 8),
    ("NCA", 4),
    ("CBSA", 6),
    ("RCMP", 3),
    ("ABF", 5),
    ("AFP", 3),
    ("NZCS", 2),
    ("FRONTEX", 3),
    ("BKA", 3),
    ("DGSI", 2),
    ("OFAC", 3),
    ("UNSC", 2),
];

const CRIMES: &[&str] = &[
    "fraud",
    "money laundering",
    "narcotics trafficking",
    "human trafficking",
    "people smuggling",
    "firearms trafficking",
    "terrorism financing",
    "cybercrime",
    "counterfeit goods",
    "wildlife trafficking",
    "armed robbery",
    "tax evasion",
    "child exploitation",
    "organised crime",
];

const GOODS: &[&str] = &[
    "undeclared cash",
    "narcotics",
    "firearms",
    "counterfeit goods",
    "protected wildlife",
    "undeclared gold",
    "tobacco",
];

pub(crate) fn reason(rng: &mut Rng, category: lookout_screening::Category) -> String {
    use lookout_screening::Category;
    let crime = *rng.pick(CRIMES);
    match category {
        Category::NoBoard => match rng.below(6) {
            0 => format!("Interpol red notice: {crime}"),
            1 => "Court-ordered travel ban".to_string(),
            2 => "No-fly designation".to_string(),
            3 => "Sanctions designation: travel ban".to_string(),
            4 => format!("Outstanding arrest warrant: {crime}"),
            _ => "Deportation order in force".to_string(),
        },
        Category::ReferSecondary => match rng.below(9) {
            0 => format!("Suspected {crime}"),
            1 => format!("Person of interest in {crime} investigation"),
            2 => "Prior immigration violation (overstay)".to_string(),
            3 => "Previous refusal of entry".to_string(),
            4 => format!("Customs: prior seizure of {}", rng.pick(GOODS)),
            5 => "Travel document reported lost/stolen".to_string(),
            6 => "Identity fraud suspected".to_string(),
            7 => "Child abduction alert".to_string(),
            _ => format!("Irregular travel pattern; possible {crime}"),
        },
        Category::AlertOnly => match rng.below(4) {
            0 => format!("Intelligence interest ({crime}): notify originating agency"),
            1 => format!("Monitor travel: {crime} inquiry"),
            2 => "Witness sought; do not detain".to_string(),
            _ => "Missing person: welfare check".to_string(),
        },
    }
}

pub(crate) const CARRIERS: &[&str] = &[
    "AA", "UA", "DL", "B6", "AS", "AC", "WS", "BA", "VS", "EI", "AF", "KL", "LH", "LX", "OS", "IB",
    "UX", "TP", "AZ", "SK", "LO", "OK", "JU", "PS", "TK", "EK", "QR", "EY", "SV", "MS", "RJ", "ME",
    "AT", "QF", "VA", "NZ", "SQ", "CX", "CA", "MU", "CZ", "BR", "CI", "KE", "OZ", "JL", "NH", "VN",
    "TG", "MH", "PR", "AI", "6E", "PK", "BG", "AM", "AV", "CM", "LA", "AR", "CU",
];

/// Airports (IATA) travellers depart from.
pub(crate) const DEPARTURE_PORTS: &[&str] = &[
    "LHR", "CDG", "FRA", "AMS", "MAD", "DXB", "DOH", "IST", "JFK", "LAX", "ORD", "MIA", "YYZ",
    "YVR", "MEX", "BOG", "LIM", "GRU", "EZE", "SCL", "PTY", "SYD", "MEL", "AKL", "SIN", "HKG",
    "PEK", "PVG", "CAN", "ICN", "NRT", "HND", "BKK", "SGN", "HAN", "MNL", "KUL", "DEL", "BOM",
    "BLR", "MAA", "KHI", "LHE", "ISB", "DAC", "CAI", "AMM", "BEY", "RUH", "JED", "CMN", "ALG",
    "TUN", "WAW", "PRG", "BEG", "ZAG", "KBP", "IST", "MUC", "ZRH", "VIE", "FCO", "LIS", "DUB",
    "MAN", "BCN", "CUN", "SJO", "SAL", "HAV", "SDQ", "GUA", "TPE", "KTM", "CMB", "AUH", "BAH",
];

/// Airports (IATA) of the screening country's ports of entry.
pub(crate) const ARRIVAL_PORTS: &[&str] = &[
    "JFK", "EWR", "IAD", "ATL", "MIA", "ORD", "DFW", "IAH", "LAX", "SFO", "SEA", "BOS", "LHR",
    "LGW", "MAN", "YYZ", "YVR", "YUL", "SYD", "MEL", "BNE", "AKL",
];
