//! Screening at scale against the default 5-node topology.

use std::path::Path;
use std::time::Duration;
use std::time::Instant;

use hdrhistogram::Histogram;
use lookout_gen::GenConfig;
use lookout_proto::v1 as pb;
use lookout_proto::v1::screening_client::ScreeningClient;
use lookout_testkit::ClusterSpec;
use lookout_testkit::TestCluster;

/// Records per ingest call.
const INGEST_CHUNK: u64 = 50_000;

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub async fn run(
    bin: &Path,
    lookouts: u64,
    seed: u64,
    screens: u64,
    manifests: u64,
    streams: u64,
    json: bool,
) -> anyhow::Result<()> {
    let c = TestCluster::start(&ClusterSpec::five(), bin)?;
    let leader = c.wait_leader(Duration::from_secs(20)).await?;
    let cfg = GenConfig::new(seed, lookouts, screens.max(1));

    let ing = ingest(&c, leader, &cfg, lookouts, streams, !json).await?;
    let (accepted, rejected, ingest_secs) = (ing.accepted, ing.rejected, ing.secs);

    // 2. Screen latency, one client, linearizable, on the leader.
    let mut client = ScreeningClient::new(c.channel(leader));
    let mut hist = Histogram::<u64>::new(3)?;
    let (mut planted, mut found) = (0u64, 0u64);
    for j in 0..screens {
        let t = lookout_gen::traveller(&cfg, j);
        let req = pb::ScreenRequest { read: None, identity: Some(lookout_wire::identity_to_pb(&t.identity)) };
        let t0 = Instant::now();
        let r = client.screen(req).await?.into_inner();
        hist.record(t0.elapsed().as_micros() as u64)?;
        if let Some(p) = &t.truth.planted {
            if p.class != lookout_gen::PlantClass::NearMiss {
                planted += 1;
                if r.matches.iter().any(|m| m.lookout.as_ref().is_some_and(|l| l.id == p.lookout_id)) {
                    found += 1;
                }
            }
        }
    }

    // 3. Manifests of 300 with 3 planted each.
    let mut mhist = Histogram::<u64>::new(3)?;
    let mut flagged_planted = 0u64;
    for f in 0..manifests {
        let (pax, req) = crate::workload::manifest_request(&cfg, f);
        let t0 = Instant::now();
        let r = client.screen_manifest(req).await?.into_inner();
        mhist.record(t0.elapsed().as_micros() as u64)?;
        for (p, d) in pax.iter().zip(&r.passengers) {
            if let Some(plant) = &p.truth.planted {
                if d.matches.iter().any(|m| m.lookout.as_ref().is_some_and(|l| l.id == plant.lookout_id)) {
                    flagged_planted += 1;
                }
            }
        }
    }

    let q = |h: &Histogram<u64>, x: f64| ms(h.value_at_quantile(x));
    if json {
        println!(
            "{}",
            serde_json::json!({
                "lookouts": lookouts, "ingest_accepted": accepted, "ingest_rejected": rejected,
                "ingest_records_per_s": accepted as f64 / ingest_secs,
                "screen_p50_ms": q(&hist, 0.5), "screen_p99_ms": q(&hist, 0.99), "screens": screens,
                "planted_recall": if planted == 0 { 1.0 } else { found as f64 / planted as f64 },
                "manifest_p50_ms": q(&mhist, 0.5), "manifest_p99_ms": q(&mhist, 0.99), "manifests": manifests,
                "manifest_planted_found": flagged_planted, "manifest_planted": manifests * 3,
            })
        );
    } else {
        println!("screening bench: 5 nodes, {lookouts} generated lookouts (seed {seed})");
        println!(
            "  ingest: {accepted} accepted, {rejected} rejected in {ingest_secs:.1} s = {:.0} records/s ({streams} streams)",
            accepted as f64 / ingest_secs
        );
        println!(
            "  Screen (linearizable, 1 client, {screens} travellers): p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms; planted matches found {found}/{planted}",
            q(&hist, 0.5),
            q(&hist, 0.99),
            q(&hist, 0.999)
        );
        println!(
            "  ScreenManifest (300 passengers, {manifests} flights): p50 {:.1} ms  p99 {:.1} ms; planted found {flagged_planted}/{}",
            q(&mhist, 0.5),
            q(&mhist, 0.99),
            manifests * 3
        );
    }
    Ok(())
}

pub struct Ingest {
    pub accepted: u64,
    pub rejected: u64,
    pub secs: f64,
}

/// Bulk-loads generated lookouts `0..lookouts` through `streams` concurrent
/// `IngestLookouts` streams of INGEST_CHUNK records each, following leader changes.
pub async fn ingest(c: &TestCluster, leader: u64, cfg: &GenConfig, lookouts: u64, streams: u64, progress: bool) -> anyhow::Result<Ingest> {
    let started = Instant::now();
    let mut accepted = 0u64;
    let mut rejected = 0u64;
    let mut next = 0u64;
    while next < lookouts {
        let mut calls = vec![];
        for _ in 0..streams {
            if next >= lookouts {
                break;
            }
            let range = next..(next + INGEST_CHUNK).min(lookouts);
            next = range.end;
            let cfg = cfg.clone();
            let channels: Vec<_> = c.ids.iter().map(|id| (*id, c.channel(*id))).collect();
            calls.push(tokio::spawn(async move {
                // Upserts are idempotent: a chunk cut short by a leader change is resent
                // whole to the new leader.
                let mut target = leader;
                let mut last = None;
                for _attempt in 0..10 {
                    let ch = channels.iter().find(|(id, _)| *id == target).map(|(_, ch)| ch.clone()).expect("known node");
                    let rows = lookout_gen::lookouts_range(&cfg, range.clone()).map(|l| pb::IngestLookoutsRequest {
                        lookout: Some(lookout_wire::lookout_to_pb(&l, 0)),
                        actor: "bench".into(),
                    });
                    match ScreeningClient::new(ch).ingest_lookouts(tokio_stream::iter(rows)).await {
                        Ok(r) => return Ok(r.into_inner()),
                        Err(s) if s.code() == tonic::Code::Unavailable => {
                            if let Some(l) = s.metadata().get("lookout-leader-id").and_then(|v| v.to_str().ok()?.parse().ok()) {
                                target = l;
                            }
                            last = Some(s);
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        Err(s) => return Err(s),
                    }
                }
                Err(last.expect("retried"))
            }));
        }
        for call in calls {
            let r = match call.await? {
                Ok(r) => r,
                Err(e) => {
                    for &id in &c.ids {
                        let log = c.log(id);
                        let tail: Vec<&str> = log.lines().rev().take(12).collect();
                        eprintln!("---- node {id} ----");
                        for l in tail.iter().rev() {
                            eprintln!("{l}");
                        }
                    }
                    return Err(e.into());
                }
            };
            accepted += r.accepted;
            rejected += r.rejected;
        }
        if progress {
            eprint!("\ringested {accepted} lookouts ({:.0}/s)   ", accepted as f64 / started.elapsed().as_secs_f64());
        }
    }
    if progress {
        eprintln!();
    }
    Ok(Ingest { accepted, rejected, secs: started.elapsed().as_secs_f64() })

}
