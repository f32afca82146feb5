//! `lookoutd`'s gRPC front: the client (`Kv`) and operator (`Admin`) services of one node,
//! plus gRPC health and reflection.
//!
//! Every request passes admission (a deadline and an in-flight slot, or
//! `ResourceExhausted`), then validation (`InvalidArgument` naming the field), then the
//! node. Errors become statuses in exactly one place, [`errors`].

pub mod admin_service;
pub mod admission;
pub mod errors;
pub mod kv_service;
pub mod screening_service;
pub mod validate;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lookout_config::ClusterConfig;
use lookout_config::Limits;
use lookout_node::LookoutNode;
use lookout_proto::v1::admin_server::AdminServer;
use lookout_proto::v1::kv_server::KvServer;
use lookout_proto::v1::screening_server::ScreeningServer;
use lookout_types::NodeId;

use crate::admission::Admission;

/// What every service handler shares.
#[derive(Clone)]
pub struct Ctx {
    pub node: LookoutNode,
    pub admission: Admission,
    pub limits: Limits,
}

/// Runs node `id` of `config` until `shutdown` resolves.
pub async fn run(config: Arc<ClusterConfig>, id: NodeId, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let me = config.node(id).with_context(|| format!("node {id} is not declared in {}", config.path.display()))?.clone();
    let node = LookoutNode::start(config.clone(), id).await?;
    let limits = config.limits.clone();
    let deadline = Duration::from_millis(limits.request_deadline_ms);
    let ctx = Ctx { node: node.clone(), admission: Admission::new(limits.max_in_flight, deadline), limits };

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_not_serving::<KvServer<kv_service::KvService>>().await;
    {
        // Serve reads as healthy only once the state machine has caught up with what the
        // cluster had committed (openraft issue #1511: no half-restored state).
        let node = node.clone();
        let health = health.clone();
        tokio::spawn(async move {
            match node.raft.wait_for_recovery(None).await {
                Ok(_) => {
                    tracing::info!(applied = node.reader.applied_index(), "recovered; serving");
                    health.set_serving::<KvServer<kv_service::KvService>>().await;
                }
                Err(e) => tracing::warn!(error = %e, "recovery wait ended"),
            }
        });
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(lookout_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let incoming = lookout_node::tcp_incoming(me.client_addr)
        .with_context(|| format!("binding client address {}", me.client_addr))?;
    tracing::info!(node = id, site = %me.site, client = %me.client_addr, peer = %me.peer_addr, "lookoutd started");
    let max_msg = (ctx.limits.max_value_bytes as usize + ctx.limits.max_key_bytes as usize) * 2 + 4096;
    tonic::transport::Server::builder()
        // No server-wide timeout: unary handlers enforce their own deadline (admission),
        // and a bulk ingest stream may run for minutes with a deadline per batch.
        .add_service(KvServer::new(kv_service::KvService { ctx: ctx.clone() }).max_decoding_message_size(max_msg))
        .add_service(AdminServer::new(admin_service::AdminService { ctx: ctx.clone() }))
        .add_service(
            ScreeningServer::new(screening_service::ScreeningService { ctx: ctx.clone() })
                .max_decoding_message_size(16 << 20)
                .max_encoding_message_size(64 << 20),
        )
        .add_service(health_service)
        .add_service(reflection)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    tracing::info!("shutting down raft");
    node.raft.shutdown().await.ok();
    Ok(())
}
