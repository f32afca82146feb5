//! Screening commands: lookouts, travellers, `screen`, `manifest`, bulk
//! `ingest` and `gen`. Records on disk are the domain types of
//! `lookout-screening` in their serde JSON form; `lookout-wire` converts them to
//! and from the protobuf messages the client sends. Printing is in `output`.

use std::future::Future;
use std::io::BufRead;
use std::io::BufReader;
use std::io::Read;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::task::Context as TaskContext;
use std::task::Poll;
use std::time::Duration;
use std::time::Instant;

use futures::Stream;
use lookout_client::Client;
use lookout_client::ClientError;
use lookout_client::LookoutFilter;
use lookout_client::MAX_MANIFEST_PASSENGERS;
use lookout_client::proto;
use lookout_screening as domain;
use lookout_wire as wire;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;
use tonic::Code;

use crate::CategoryArg;
use crate::CtlError;
use crate::EXIT_CAS_FAILED;
use crate::EXIT_REJECTED;
use crate::GenArgs;
use crate::IngestArgs;
use crate::IngestCommand;
use crate::LookoutCommand;
use crate::ManifestArgs;
use crate::ReadArgs;
use crate::ScreenArgs;
use crate::TravellerCommand;
use crate::commands::Context;
use crate::commands::read_opts;
use crate::output;
use crate::output::Output;

fn read(args: &ReadArgs) -> Result<lookout_client::ReadOpts, CtlError> {
    read_opts(args.consistency, args.max_staleness_ms)
}

fn category(c: CategoryArg) -> proto::Category {
    match c {
        CategoryArg::NoBoard => proto::Category::NoBoard,
        CategoryArg::ReferSecondary => proto::Category::ReferSecondary,
        CategoryArg::AlertOnly => proto::Category::AlertOnly,
    }
}

/// How a path is named in messages (`-` is stdin).
fn shown(path: &Path) -> String {
    if path == Path::new("-") {
        "stdin".to_string()
    } else {
        path.display().to_string()
    }
}

/// The file's contents, or stdin's for `-`.
fn read_all(path: &Path) -> Result<String, CtlError> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| CtlError::Other(format!("cannot read {}: {e}", path.display())))
}

fn open_lines(path: &Path) -> Result<Box<dyn BufRead + Send>, CtlError> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
}

// ---------------------------------------------------------------- parsing records

/// Fields a record may leave out, and the value each then takes.
type Defaults = &'static [(&'static str, fn() -> Value)];

/// Store-owned fields a hand-written record may leave out.
const LOOKOUT_DEFAULTS: Defaults = &[
    ("version", || Value::from(0)),
    ("created_by", || Value::from("")),
    ("updated_by", || Value::from("")),
    ("retired", || Value::from(false)),
    ("documents", || Value::Array(vec![])),
    ("reason", || Value::from("")),
    ("source_agency", || Value::from("")),
];
const TRAVELLER_DEFAULTS: Defaults = &[("version", || Value::from(0))];
const IDENTITY_DEFAULTS: Defaults = &[
    ("names", || Value::Array(vec![])),
    ("documents", || Value::Array(vec![])),
    ("sex", || Value::from("Unknown")),
];

fn describe_json_error(e: &serde_json::Error, what: &str) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => format!("not valid JSON: {e}"),
        Category::Data => format!("not a {what}: {e}"),
        Category::Io => format!("cannot read: {e}"),
    }
}

/// Parses one domain record, filling in any missing fields named in `defaults`.
/// The error says whether the text is not JSON at all or not such a record.
fn parse_record<T: DeserializeOwned>(
    text: &str,
    defaults: Defaults,
    what: &str,
) -> Result<T, String> {
    let first = match serde_json::from_str::<T>(text) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let Ok(Value::Object(mut o)) = serde_json::from_str::<Value>(text) else {
        return Err(describe_json_error(&first, what));
    };
    let mut filled = false;
    for (k, v) in defaults {
        if !o.contains_key(*k) {
            o.insert(k.to_string(), v());
            filled = true;
        }
    }
    if !filled {
        return Err(describe_json_error(&first, what));
    }
    serde_json::from_value(Value::Object(o)).map_err(|e| describe_json_error(&e, what))
}

// ---------------------------------------------------------------- lookouts

pub async fn lookout(ctx: &Context, cmd: &LookoutCommand, out: Output) -> Result<u8, CtlError> {
    match cmd {
        LookoutCommand::Put {
            file,
            expected_version,
            actor,
        } => {
            let text = read_all(file)?;
            let l: domain::Lookout = parse_record(text.trim(), LOOKOUT_DEFAULTS, "lookout")
                .map_err(|e| format!("{}: {e}", shown(file)))?;
            let msg = wire::lookout_to_pb(&l, 0);
            match ctx.client.put_lookout(msg, *expected_version, actor).await {
                Ok(r) => {
                    output::lookout_written(out, "put", &l.id, r.index, r.version);
                    Ok(0)
                }
                Err(e) => conflict_or_error(out, e),
            }
        }
        LookoutCommand::Get {
            id,
            history,
            read: r,
        } => {
            let r = ctx.client.get_lookout(id, *history, read(r)?).await?;
            output::lookout_get(out, &r);
            Ok(0)
        }
        LookoutCommand::Retire {
            id,
            actor,
            expected_version,
        } => match ctx
            .client
            .retire_lookout(id, *expected_version, actor)
            .await
        {
            Ok(r) => {
                output::lookout_written(out, "retired", id, r.index, r.version);
                Ok(0)
            }
            Err(e) => conflict_or_error(out, e),
        },
        LookoutCommand::List {
            category: categories,
            valid_at_ms,
            include_retired,
            limit,
            all,
            continuation,
            read: r,
        } => {
            let read = read(r)?;
            let filter = LookoutFilter {
                categories: categories.iter().map(|c| category(*c)).collect(),
                valid_at_ms: *valid_at_ms,
                include_retired: *include_retired,
            };
            let mut token = match continuation {
                Some(h) => output::unhex(h).map_err(|e| format!("--continuation: {e}"))?,
                None => Vec::new(),
            };
            let mut lookouts = Vec::new();
            loop {
                let page = ctx
                    .client
                    .list_lookouts(&filter, limit.unwrap_or(0), token, read)
                    .await?;
                lookouts.extend(page.lookouts);
                token = page.continuation;
                if !*all || token.is_empty() {
                    output::lookout_list(out, &lookouts, page.header.as_ref(), &token);
                    return Ok(0);
                }
            }
        }
    }
}

/// A version conflict is exit status 3 (like a failed compare-and-swap); other
/// errors are ordinary failures.
fn conflict_or_error(out: Output, e: ClientError) -> Result<u8, CtlError> {
    if e.is_version_conflict() {
        output::error(out, &CtlError::Client(e));
        Ok(EXIT_CAS_FAILED)
    } else {
        Err(e.into())
    }
}

pub async fn traveller(ctx: &Context, cmd: &TravellerCommand, out: Output) -> Result<u8, CtlError> {
    match cmd {
        TravellerCommand::Get { id, read: r } => {
            let r = ctx.client.get_traveller(id, read(r)?).await?;
            output::traveller_get(out, &r);
            Ok(0)
        }
    }
}

// ---------------------------------------------------------------- screen

fn parse_sex(s: &str) -> Result<domain::Sex, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "m" | "male" => Ok(domain::Sex::Male),
        "f" | "female" => Ok(domain::Sex::Female),
        "x" | "u" | "unknown" | "" => Ok(domain::Sex::Unknown),
        other => Err(format!("--sex {other:?}: expected M, F or X")),
    }
}

/// `TYPE:CCC:NUMBER`.
pub fn parse_doc(s: &str) -> Result<domain::Document, String> {
    let mut parts = s.splitn(3, ':');
    let (Some(t), Some(c), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "--doc {s:?}: expected TYPE:CCC:NUMBER, e.g. passport:GBR:123456789"
        ));
    };
    let doc_type = match t.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "passport" | "p" => domain::DocType::Passport,
        "national-id" | "id" | "i" => domain::DocType::NationalId,
        "visa" | "v" => domain::DocType::Visa,
        "other" | "o" => domain::DocType::Other,
        other => {
            return Err(format!(
                "--doc {s:?}: unknown document type {other:?} (passport, national-id, visa, other)"
            ));
        }
    };
    let country = domain::CountryCode::parse(c).map_err(|e| format!("--doc {s:?}: {e}"))?;
    let number = n.trim();
    if number.is_empty() {
        return Err(format!("--doc {s:?}: the number is empty"));
    }
    Ok(domain::Document {
        doc_type,
        country,
        number: number.to_string(),
        expiry: None,
    })
}

fn identity_from_args(a: &ScreenArgs) -> Result<domain::Identity, String> {
    let mut names = Vec::new();
    if a.surname.is_some() || a.given.is_some() {
        names.push(domain::PersonName::new(
            a.given.clone().unwrap_or_default(),
            a.surname.clone().unwrap_or_default(),
        ));
    }
    Ok(domain::Identity {
        names,
        dob: a
            .dob
            .as_deref()
            .map(|d| domain::PartialDate::parse(d.trim()).map_err(|e| format!("--dob: {e}")))
            .transpose()?,
        sex: a
            .sex
            .as_deref()
            .map(parse_sex)
            .transpose()?
            .unwrap_or_default(),
        nationality: a
            .nationality
            .as_deref()
            .map(|c| domain::CountryCode::parse(c).map_err(|e| format!("--nationality: {e}")))
            .transpose()?,
        documents: a
            .doc
            .iter()
            .map(|d| parse_doc(d))
            .collect::<Result<_, _>>()?,
    })
}

pub async fn screen(ctx: &Context, args: &ScreenArgs, out: Output) -> Result<u8, CtlError> {
    let identity = identity_from_args(args)?;
    let r = ctx
        .client
        .screen(wire::identity_to_pb(&identity), read(&args.read)?)
        .await?;
    output::screen(out, &r);
    Ok(0)
}

// ---------------------------------------------------------------- manifest

/// `AC870` -> carrier `AC`, flight `870`.
pub fn parse_flight(s: &str) -> Result<domain::Itinerary, String> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let chars: Vec<char> = compact.chars().collect();
    if chars.len() < 3 || !chars[..2].iter().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "--flight {s:?}: expected a carrier and a number, e.g. AC870"
        ));
    }
    let number: String = chars[2..].iter().collect();
    if !number.chars().all(|c| c.is_ascii_alphanumeric())
        || !number.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(format!(
            "--flight {s:?}: expected a carrier and a number, e.g. AC870"
        ));
    }
    Ok(domain::Itinerary {
        carrier: chars[..2].iter().collect::<String>().to_ascii_uppercase(),
        flight_number: number.to_ascii_uppercase(),
        ..domain::Itinerary::default()
    })
}

/// One manifest line: a domain `Traveller` or any object with an `identity`.
fn parse_passenger(
    line: &str,
) -> Result<(Option<String>, domain::Identity, Option<domain::Itinerary>), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| describe_json_error(&e, "traveller"))?;
    let Value::Object(o) = v else {
        return Err("not a traveller: expected a JSON object with an \"identity\"".into());
    };
    let Some(identity) = o.get("identity") else {
        return Err(
            "not a traveller: no \"identity\" (expected a Traveller or an object with an identity)"
                .into(),
        );
    };
    let identity: domain::Identity =
        parse_record(&identity.to_string(), IDENTITY_DEFAULTS, "identity")
            .map_err(|e| format!("identity: {e}"))?;
    let reference = ["reference", "id"].iter().find_map(|k| {
        o.get(*k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    });
    let itinerary = o
        .get("itinerary")
        .and_then(|i| serde_json::from_value::<domain::Itinerary>(i.clone()).ok());
    Ok((reference, identity, itinerary))
}

/// Deadline of one ScreenManifest call unless `--timeout` is given: screening a
/// thousand passengers can take seconds on a busy node.
pub const MANIFEST_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn manifest(
    ctx: &Context,
    args: &ManifestArgs,
    default_timeout: bool,
    out: Output,
) -> Result<u8, CtlError> {
    let read = read(&args.read)?;
    let client = if default_timeout {
        ctx.client.with_options(lookout_client::ClientOptions {
            deadline: MANIFEST_TIMEOUT,
            ..ctx.client.options().clone()
        })
    } else {
        ctx.client.clone()
    };
    let mut flight = args.flight.as_deref().map(parse_flight).transpose()?;
    let text = read_all(&args.file)?;
    let mut passengers = Vec::new(); // (line, passenger)
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        match parse_passenger(line) {
            Ok((reference, identity, itinerary)) => {
                if flight.is_none() {
                    flight = itinerary
                        .filter(|it| !it.carrier.is_empty() || !it.flight_number.is_empty());
                }
                passengers.push((
                    n,
                    proto::ManifestPassenger {
                        reference: reference.unwrap_or_else(|| format!("line {n}")),
                        identity: Some(wire::identity_to_pb(&identity)),
                    },
                ));
            }
            Err(reason) => bad.push(output::BadLine { line: n, reason }),
        }
    }
    if passengers.is_empty() {
        return Err(CtlError::Other(format!(
            "{}: no passengers to screen ({} bad lines)",
            shown(&args.file),
            bad.len()
        )));
    }
    let flight_pb = flight.as_ref().map(wire::itinerary_to_pb);
    let mut report = output::ManifestReport {
        flight: flight.map(|f| format!("{}{}", f.carrier, f.flight_number)),
        show_clear: args.all,
        bad,
        ..Default::default()
    };
    let per_call = usize::try_from(args.chunk)
        .unwrap_or(MAX_MANIFEST_PASSENGERS)
        .min(MAX_MANIFEST_PASSENGERS);
    let mut progress = output::Progress::tty_only();
    let started = Instant::now();
    for chunk in passengers.chunks(per_call) {
        if passengers.len() > per_call {
            progress.update(&output::manifest_progress_text(
                report.rows.len(),
                passengers.len(),
                started.elapsed(),
            ));
        }
        let list: Vec<_> = chunk.iter().map(|(_, p)| p.clone()).collect();
        let r = match client.screen_manifest(flight_pb.clone(), list, read).await {
            Ok(r) => r,
            Err(e) if e.code() == Some(Code::InvalidArgument) => {
                return Err(CtlError::Other(manifest_invalid(&e, chunk)));
            }
            Err(e) => return Err(e.into()),
        };
        report.calls += 1;
        if let Some(h) = r.header {
            report.min_index = Some(
                report
                    .min_index
                    .map_or(h.applied_index, |m| m.min(h.applied_index)),
            );
            report.header = Some(h);
        }
        for ((line, p), d) in chunk.iter().zip(r.passengers) {
            report.rows.push(output::ManifestRow {
                line: *line,
                reference: d.reference,
                name: p
                    .identity
                    .as_ref()
                    .and_then(|i| i.names.first())
                    .map(output::name_text)
                    .unwrap_or_default(),
                decision: d.decision,
                matches: d.matches,
            });
        }
    }
    progress.finish();
    output::manifest(out, &report);
    Ok(0)
}

/// An `InvalidArgument` for `passengers[i]...` names the input line instead.
fn manifest_invalid(e: &ClientError, chunk: &[(u64, proto::ManifestPassenger)]) -> String {
    let msg = e.message();
    let line = msg
        .strip_prefix("passengers[")
        .and_then(|rest| rest.split(']').next())
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| chunk.get(i))
        .map(|(line, _)| *line);
    match line {
        Some(line) => format!("line {line}: rejected by the server: {msg}"),
        None => e.to_string(),
    }
}

// ---------------------------------------------------------------- ingest

/// One line of an ingest file, parsed on the reader thread.
enum Parsed<T> {
    Record {
        line: u64,
        msg: T,
    },
    Bad {
        line: u64,
        reason: String,
    },
    /// The input could not be read any further.
    Fatal(String),
}

/// Local bad lines: the first few kept, all counted.
struct BadLines {
    keep: usize,
    count: u64,
    kept: Vec<output::BadLine>,
}

/// What one ingest call took from the input.
struct Chunk {
    /// Line number of each record sent, by stream position.
    lines: Vec<u64>,
    fatal: Option<String>,
    /// Everything of this call has been handed to the transport.
    ended: bool,
}

struct Shared<T> {
    rx: Mutex<mpsc::Receiver<Parsed<T>>>,
    bad: Mutex<BadLines>,
    sent: AtomicU64,
}

impl<T> Shared<T> {
    /// The next record, skipping (and recording) bad lines; `None` at the end.
    fn poll_record(&self, cx: &mut TaskContext<'_>) -> Poll<Option<Result<(u64, T), String>>> {
        let mut rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match rx.poll_recv(cx) {
                Poll::Ready(Some(Parsed::Record { line, msg })) => {
                    return Poll::Ready(Some(Ok((line, msg))));
                }
                Poll::Ready(Some(Parsed::Bad { line, reason })) => {
                    let mut bad = self.bad.lock().unwrap_or_else(|p| p.into_inner());
                    bad.count += 1;
                    if bad.kept.len() < bad.keep {
                        bad.kept.push(output::BadLine { line, reason });
                    }
                }
                Poll::Ready(Some(Parsed::Fatal(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn bad_count(&self) -> u64 {
        self.bad.lock().unwrap_or_else(|p| p.into_inner()).count
    }
}

/// The records of one ingest call: `first`, then up to `limit` in all from the input.
pub struct ChunkFeed<T> {
    first: Option<(u64, T)>,
    shared: Arc<Shared<T>>,
    chunk: Arc<Mutex<Chunk>>,
    limit: usize,
}

impl<T> Unpin for ChunkFeed<T> {}

impl<T> Stream for ChunkFeed<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        let mut chunk = this.chunk.lock().unwrap_or_else(|p| p.into_inner());
        if chunk.lines.len() >= this.limit || chunk.fatal.is_some() {
            chunk.ended = true;
            return Poll::Ready(None);
        }
        let next = match this.first.take() {
            Some(first) => Poll::Ready(Some(Ok(first))),
            None => this.shared.poll_record(cx),
        };
        match next {
            Poll::Ready(Some(Ok((line, msg)))) => {
                chunk.lines.push(line);
                this.shared.sent.fetch_add(1, Ordering::Relaxed);
                Poll::Ready(Some(msg))
            }
            Poll::Ready(Some(Err(e))) => {
                chunk.fatal = Some(e);
                chunk.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                chunk.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Reads `input` from line `from_line` on, parsing each non-blank line.
fn read_lines<T>(
    mut input: Box<dyn BufRead + Send>,
    from_line: u64,
    parse: impl Fn(&str) -> Result<T, String>,
    tx: mpsc::Sender<Parsed<T>>,
) -> u64 {
    let mut buf = Vec::new();
    let mut n = 0u64;
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => return n,
            Ok(_) => {}
            Err(e) => {
                let _ = tx.blocking_send(Parsed::Fatal(format!("reading line {}: {e}", n + 1)));
                return n;
            }
        }
        n += 1;
        if n < from_line {
            continue;
        }
        let item = match std::str::from_utf8(&buf) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => match parse(text.trim_end_matches(['\n', '\r'])) {
                Ok(msg) => Parsed::Record { line: n, msg },
                Err(reason) => Parsed::Bad { line: n, reason },
            },
            Err(e) => Parsed::Bad {
                line: n,
                reason: format!("not UTF-8: {e}"),
            },
        };
        if tx.blocking_send(item).is_err() {
            return n; // the ingest stopped
        }
    }
}

pub async fn ingest(ctx: &Context, cmd: &IngestCommand, out: Output) -> Result<u8, CtlError> {
    match cmd {
        IngestCommand::Lookouts { args, actor } => {
            let actor = actor.clone();
            let parse = move |line: &str| {
                let l: domain::Lookout = parse_record(line, LOOKOUT_DEFAULTS, "lookout")?;
                Ok(proto::IngestLookoutsRequest {
                    lookout: Some(wire::lookout_to_pb(&l, 0)),
                    actor: actor.clone(),
                })
            };
            run_ingest(
                &ctx.client,
                args,
                "lookouts",
                out,
                parse,
                |client, feed| async move { client.ingest_lookouts(feed).await },
            )
            .await
        }
        IngestCommand::Travellers { args } => {
            let parse = |line: &str| {
                let t: domain::Traveller = parse_record(line, TRAVELLER_DEFAULTS, "traveller")?;
                Ok(proto::IngestTravellersRequest {
                    traveller: Some(wire::traveller_to_pb(&t)),
                })
            };
            run_ingest(
                &ctx.client,
                args,
                "travellers",
                out,
                parse,
                |client, feed| async move { client.ingest_travellers(feed).await },
            )
            .await
        }
    }
}

/// Streams the file in calls of `args.chunk` records, with a live progress line,
/// and prints the summary.
async fn run_ingest<T, P, C, Fut>(
    client: &Client,
    args: &IngestArgs,
    kind: &'static str,
    out: Output,
    parse: P,
    call: C,
) -> Result<u8, CtlError>
where
    T: Send + 'static,
    P: Fn(&str) -> Result<T, String> + Send + 'static,
    C: Fn(Client, ChunkFeed<T>) -> Fut,
    Fut: Future<Output = Result<proto::IngestResponse, ClientError>>,
{
    let input = open_lines(&args.file)?;
    let (tx, rx) = mpsc::channel(8192);
    let from_line = args.from_line;
    let reader = std::thread::Builder::new()
        .name("ingest-reader".into())
        .spawn(move || read_lines(input, from_line, parse, tx))
        .map_err(|e| format!("cannot start the reader thread: {e}"))?;
    let shared = Arc::new(Shared {
        rx: Mutex::new(rx),
        bad: Mutex::new(BadLines {
            keep: args.errors,
            count: 0,
            kept: Vec::new(),
        }),
        sent: AtomicU64::new(0),
    });
    let limit = usize::try_from(args.chunk).unwrap_or(usize::MAX);
    let started = Instant::now();
    let mut summary = output::IngestSummary {
        kind,
        file: shown(&args.file),
        from_line,
        ..Default::default()
    };
    let mut server_errors: Vec<output::IngestErrorRow> = Vec::new();
    let mut progress = output::Progress::tty_only();
    let mut position_base = 0u64;
    loop {
        let first = futures::future::poll_fn(|cx| shared.poll_record(cx)).await;
        let first = match first {
            None => break,
            Some(Err(fatal)) => {
                summary.failure = Some(CtlError::Other(fatal));
                break;
            }
            Some(Ok(first)) => first,
        };
        let first_line = first.0;
        let chunk = Arc::new(Mutex::new(Chunk {
            lines: Vec::new(),
            fatal: None,
            ended: false,
        }));
        let feed = ChunkFeed {
            first: Some(first),
            shared: shared.clone(),
            chunk: chunk.clone(),
            limit,
        };
        let fut = call(client.clone(), feed);
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let result = loop {
            tokio::select! {
                r = &mut fut => break r,
                _ = tick.tick() => progress.update(&output::ingest_progress_text(
                    &summary,
                    shared.sent.load(Ordering::Relaxed),
                    shared.bad_count(),
                    chunk.lock().unwrap_or_else(|p| p.into_inner()).ended,
                    started.elapsed(),
                )),
            }
        };
        summary.calls += 1;
        let chunk = std::mem::replace(
            &mut *chunk.lock().unwrap_or_else(|p| p.into_inner()),
            Chunk {
                lines: Vec::new(),
                fatal: None,
                ended: false,
            },
        );
        match result {
            Ok(r) => {
                summary.accepted += r.accepted;
                summary.rejected += r.rejected;
                summary.index = summary.index.max(r.index);
                for e in r.errors {
                    if server_errors.len() >= args.errors {
                        break;
                    }
                    server_errors.push(output::IngestErrorRow {
                        line: chunk.lines.get(e.position as usize).copied(),
                        position: position_base + e.position,
                        id: e.id,
                        field: e.field,
                        reason: e.reason,
                    });
                }
                position_base += chunk.lines.len() as u64;
                summary.sent = position_base;
                if let Some(fatal) = chunk.fatal {
                    summary.failure = Some(CtlError::Other(fatal));
                    break;
                }
                if !progress.is_tty() && (summary.calls > 1 || chunk.lines.len() >= limit) {
                    output::note(&output::ingest_call_text(
                        kind,
                        &summary,
                        chunk.lines.len(),
                        started.elapsed(),
                    ));
                }
            }
            Err(e) => {
                summary.sent = position_base;
                summary.failure = Some(CtlError::Client(e));
                summary.resume_from_line = Some(first_line);
                break;
            }
        }
    }
    progress.finish();
    summary.elapsed = started.elapsed();
    let bad = {
        let mut b = shared.bad.lock().unwrap_or_else(|p| p.into_inner());
        summary.bad_lines = b.count;
        std::mem::take(&mut b.kept)
    };
    // Stop the reader (if the ingest ended early) and learn how far it read.
    drop(shared);
    if summary.failure.is_none() {
        summary.lines_read = reader.join().ok();
    }
    let mut errors: Vec<output::IngestErrorRow> = bad
        .into_iter()
        .map(|b| output::IngestErrorRow {
            line: Some(b.line),
            position: u64::MAX,
            id: String::new(),
            field: String::new(),
            reason: b.reason,
        })
        .chain(server_errors)
        .collect();
    errors.sort_by_key(|e| e.line.unwrap_or(u64::MAX));
    errors.truncate(args.errors);
    summary.errors = errors;
    output::ingest_summary(out, &summary);
    Ok(if summary.failure.is_some() {
        crate::EXIT_ERROR
    } else if summary.rejected > 0 || summary.bad_lines > 0 {
        EXIT_REJECTED
    } else {
        0
    })
}

// ---------------------------------------------------------------- gen

/// Counts the lines written through it.
struct CountingWriter<W> {
    inner: W,
    lines: Arc<AtomicU64>,
}

impl<W: std::io::Write> std::io::Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        let newlines = buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        self.lines.fetch_add(newlines, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

type GenWriter =
    fn(&lookout_gen::GenConfig, CountingWriter<&std::fs::File>) -> std::io::Result<u64>;

/// Writes lookouts.jsonl, travellers.jsonl and truth.jsonl (one thread each),
/// each first under a `.partial` name, renamed when complete.
pub fn generate(args: &GenArgs, out: Output) -> Result<u8, CtlError> {
    let mut cfg = lookout_gen::GenConfig::new(args.seed, args.lookouts, args.travellers);
    if let Some(rate) = args.plant_rate {
        if !(0.0..=1.0).contains(&rate) {
            return Err(CtlError::Other(format!(
                "--plant-rate {rate}: expected a fraction from 0 to 1"
            )));
        }
        cfg = cfg.with_plant_rate(rate);
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let started = Instant::now();
    let jobs: [(&str, Option<u64>, GenWriter); 3] = [
        ("lookouts.jsonl", Some(cfg.lookouts), |c, w| {
            lookout_gen::write_lookouts_jsonl(c, w)
        }),
        ("travellers.jsonl", Some(cfg.travellers), |c, w| {
            lookout_gen::write_travellers_jsonl(c, w)
        }),
        ("truth.jsonl", None, |c, w| {
            lookout_gen::write_truth_jsonl(c, w)
        }),
    ];
    let mut running = Vec::new();
    for (name, expected, write) in jobs {
        let path = args.out.join(name);
        let partial = args.out.join(format!("{name}.partial"));
        let file = std::fs::File::create(&partial)
            .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
        let lines = Arc::new(AtomicU64::new(0));
        let counter = lines.clone();
        let cfg = cfg.clone();
        let handle = std::thread::Builder::new()
            .name(format!("gen-{name}"))
            .spawn(move || -> Result<(u64, u64), String> {
                let failed = |e: std::io::Error| format!("writing {}: {e}", partial.display());
                let n = write(
                    &cfg,
                    CountingWriter {
                        inner: &file,
                        lines: counter,
                    },
                )
                .map_err(failed)?;
                file.sync_all().map_err(failed)?;
                let bytes = file.metadata().map_err(failed)?.len();
                std::fs::rename(&partial, &path).map_err(|e| {
                    format!("renaming {} to {}: {e}", partial.display(), path.display())
                })?;
                Ok((n, bytes))
            })
            .map_err(|e| format!("cannot start a generator thread: {e}"))?;
        running.push((name, expected, lines, handle));
    }
    let mut progress = output::Progress::tty_only();
    while running.iter().any(|(_, _, _, h)| !h.is_finished()) {
        let parts: Vec<(&str, u64, Option<u64>)> = running
            .iter()
            .map(|(name, expected, lines, _)| (*name, lines.load(Ordering::Relaxed), *expected))
            .collect();
        progress.update(&output::gen_progress_text(&parts, started.elapsed()));
        std::thread::sleep(Duration::from_millis(200));
    }
    progress.finish();
    let mut files = Vec::new();
    for (name, _, _, handle) in running {
        let (records, bytes) = handle
            .join()
            .map_err(|_| CtlError::Other(format!("the {name} generator panicked")))??;
        files.push(output::GenFile {
            name,
            path: args.out.join(name).display().to_string(),
            records,
            bytes,
        });
    }
    output::gen_summary(
        out,
        &output::GenReport {
            seed: args.seed,
            plant_rate: cfg.plant_rate,
            dir: args.out.display().to_string(),
            files,
            elapsed: started.elapsed(),
        },
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_parse() {
        let d = parse_doc("passport:gbr:123456789").unwrap();
        assert_eq!(d.doc_type, domain::DocType::Passport);
        assert_eq!(d.country.as_str(), "GBR");
        assert_eq!(d.number, "123456789");
        assert_eq!(parse_doc("national-id:FRA:AB:12").unwrap().number, "AB:12");
        assert_eq!(
            parse_doc("NATIONAL_ID:FRA:X1").unwrap().doc_type,
            domain::DocType::NationalId
        );
        assert!(parse_doc("passport:GBR").is_err());
        assert!(parse_doc("licence:GBR:1").is_err());
        assert!(parse_doc("passport:QQQ:1").is_err());
        assert!(parse_doc("passport:GBR: ").is_err());
    }

    #[test]
    fn flights_parse() {
        let f = parse_flight("AC870").unwrap();
        assert_eq!(
            (f.carrier.as_str(), f.flight_number.as_str()),
            ("AC", "870")
        );
        let f = parse_flight("u2 1234").unwrap();
        assert_eq!(
            (f.carrier.as_str(), f.flight_number.as_str()),
            ("U2", "1234")
        );
        assert!(parse_flight("AC").is_err());
        assert!(parse_flight("ACX").is_err());
    }

    #[test]
    fn records_parse_with_store_fields_omitted() {
        let line = r#"{"id":"L-1","subject":{"name":{"given":"Ana","surname":"Lima"},"aliases":[],
            "dob":{"year":1980,"month":7,"day":null},"sex":"Female","nationalities":["BRA"]},
            "category":"NoBoard"}"#;
        let l: domain::Lookout = parse_record(line, LOOKOUT_DEFAULTS, "lookout").unwrap();
        assert_eq!(l.id, "L-1");
        assert_eq!(l.version, 0);
        assert!(l.documents.is_empty());
        let e =
            parse_record::<domain::Lookout>("{not json", LOOKOUT_DEFAULTS, "lookout").unwrap_err();
        assert!(e.starts_with("not valid JSON"), "{e}");
        let e = parse_record::<domain::Lookout>(r#"{"id":"x"}"#, LOOKOUT_DEFAULTS, "lookout")
            .unwrap_err();
        assert!(e.starts_with("not a lookout"), "{e}");
        let e = parse_record::<domain::Lookout>(
            &line.replace("BRA", "QQQ"),
            LOOKOUT_DEFAULTS,
            "lookout",
        )
        .unwrap_err();
        assert!(e.contains("QQQ"), "{e}");
    }

    #[test]
    fn passengers_parse() {
        let (r, i, it) = parse_passenger(
            r#"{"reference":"12A","identity":{"names":[{"given":"A","surname":"B"}],"dob":null,"sex":"Male","nationality":null,"documents":[]}}"#,
        )
        .unwrap();
        assert_eq!(r.as_deref(), Some("12A"));
        assert_eq!(i.names[0].surname, "B");
        assert!(it.is_none());
        let (r, i, _) =
            parse_passenger(r#"{"id":"T-9","identity":{"names":[{"given":"","surname":"Z"}]}}"#)
                .unwrap();
        assert_eq!(r.as_deref(), Some("T-9"));
        assert_eq!(i.sex, domain::Sex::Unknown);
        assert!(parse_passenger(r#"{"names":[]}"#).is_err());
        assert!(parse_passenger("[1]").is_err());
    }
}
