//! Several tern nodes as one system, on NATS: every publication made on a node is
//! published on its channel's subject ([`subject`]), and every node subscribes to the
//! subjects of the channels it has subscribers for, delivering what other nodes publish
//! to its own subscribers. Without `cluster:` none of this runs.
//!
//! Triggers run on the node a message was published on, so once in the cluster; a node
//! ignores its own publications when NATS hands them back, so a client never gets its own
//! message twice and every other subscriber of that node gets it once.

pub mod connect;
mod gossip;
mod relay;
pub mod subject;
pub mod wire;

pub use relay::{ClusterStats, NatsRelay};

use std::{path::Path, sync::Arc};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{config::cluster::ClusterSettings, server::App};

/// Connects `app` to the cluster of `settings` (paths relative to `project_dir`) and starts
/// relaying; its tasks run on `tasks` until `shutdown`. Fails when NATS cannot be reached:
/// a node that silently served alone would split the cluster without anyone noticing.
pub async fn join(
    app: &App,
    settings: &ClusterSettings,
    project_dir: &Path,
    (tasks, shutdown): (&TaskTracker, CancellationToken),
) -> anyhow::Result<Arc<NatsRelay>> {
    let problems = settings.problems();
    if let Some((field, why)) = problems.first() {
        anyhow::bail!("{field}: {why}");
    }
    // The id in headers is the process's own, random: two nodes given the same `node`
    // name by mistake must still not take each other's publications for their own.
    let node = app.node_id.clone();
    let name = settings.node.as_deref().unwrap_or(&node);
    let key = bus_key(app, project_dir)?;
    let client = connect::connect(settings, project_dir, name).await?;
    let stats = app.metrics.cluster_stats();
    let prefix = settings.nats.subject_prefix.as_str();
    Ok(NatsRelay::start(client, (node, prefix, key), &app.broker, stats, (tasks, shutdown)))
}

/// The key the nodes sign their messages with, from the token secret they share; none
/// (with a warning) on a host without one.
fn bus_key(app: &App, project_dir: &Path) -> anyhow::Result<wire::BusKey> {
    let auth = &app.settings.auth;
    let field = ("auth.secret_file", auth.secret_file.as_deref());
    match crate::config::secret::read("TERN_AUTH_SECRET", field, project_dir, 1) {
        Ok(Some(secret)) => Ok(wire::BusKey::from_secret(&secret.value)),
        Ok(None) => {
            tracing::warn!(
                "cluster: no TERN_AUTH_SECRET: messages between nodes are not signed, so anyone who may publish on this NATS can speak for a node (restrict its permissions)"
            );
            Ok(wire::BusKey::default())
        }
        Err(e) => Err(anyhow::Error::msg(e)),
    }
}
