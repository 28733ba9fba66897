//! Connecting to the cluster's NATS servers with the settings' credentials and TLS, and
//! logging what the connection goes through.

use std::{path::Path, time::Duration};

use anyhow::{Context, bail};
use async_nats::{ConnectOptions, Event};

use crate::config::{cluster::ClusterSettings, secret};

/// Connects to the servers of `settings` (paths relative to `project_dir`), as node
/// `node`: fails, naming the servers, when none answers within `connect_timeout`. Once
/// connected, the client reconnects by itself for as long as the process runs.
pub async fn connect(
    settings: &ClusterSettings,
    project_dir: &Path,
    node: &str,
) -> anyhow::Result<async_nats::Client> {
    let nats = &settings.nats;
    let mut options = ConnectOptions::new()
        .name(format!("tern {node}"))
        .connection_timeout(nats.connect_timeout.0)
        .max_reconnects(None)
        // Quick retries: a node cut off from the bus delivers locally only until it is back.
        .reconnect_delay_callback(|attempt| {
            Duration::from_millis((100 * attempt as u64).clamp(100, 2000))
        })
        .event_callback(|event| async move { log_event(event) });
    let token = secret::read(
        "TERN_NATS_TOKEN",
        ("cluster.nats.token_file", nats.token_file.as_deref()),
        project_dir,
        1,
    )
    .map_err(anyhow::Error::msg)?;
    if let Some(token) = token {
        options = options.token(token.value);
    }
    if let Some(user) = &nats.user {
        let password = secret::read(
            "TERN_NATS_PASSWORD",
            ("cluster.nats.password_file", nats.password_file.as_deref()),
            project_dir,
            1,
        )
        .map_err(anyhow::Error::msg)?;
        let Some(password) = password else {
            bail!(
                "cluster.nats.user `{user}` needs a password: TERN_NATS_PASSWORD or cluster.nats.password_file"
            );
        };
        options = options.user_and_password(user.clone(), password.value);
    }
    if let Some(creds) = &nats.credentials_file {
        let path = project_dir.join(creds);
        options = options.credentials_file(&path).await.with_context(|| {
            format!("cluster.nats.credentials_file: cannot read {}", path.display())
        })?;
    }
    if let Some(tls) = &nats.tls {
        options = options.require_tls(tls.required);
        if let Some(ca) = &tls.ca_file {
            options = options.add_root_certificates(project_dir.join(ca));
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            options = options.add_client_certificate(project_dir.join(cert), project_dir.join(key));
        }
    }
    let urls: Vec<String> = nats.urls.iter().map(|u| crate::config::cluster::redact(u)).collect();
    let urls = urls.join(", ");
    let addrs: Vec<async_nats::ServerAddr> = nats
        .urls
        .iter()
        .map(|u| {
            u.parse().with_context(|| {
                format!("cluster.nats.urls: `{}`", crate::config::cluster::redact(u))
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let client = options.connect(addrs).await.with_context(|| {
        format!(
            "cannot reach the cluster's NATS at {urls} within {} (cluster.nats.urls)",
            humantime::format_duration(nats.connect_timeout.0)
        )
    })?;
    tracing::info!(servers = %urls, node, "joined the cluster");
    Ok(client)
}

fn log_event(event: Event) {
    match event {
        Event::Connected => tracing::info!("cluster: connected to NATS"),
        Event::Disconnected => tracing::warn!(
            "cluster: lost NATS; publications reach this node's subscribers only until it is back"
        ),
        Event::LameDuckMode => {
            tracing::warn!("cluster: the NATS server is shutting down (lame duck mode)")
        }
        Event::SlowConsumer(sid) => {
            tracing::warn!(
                sid,
                "cluster: NATS dropped messages of a subscription this node read too slowly"
            )
        }
        other => tracing::warn!("cluster: NATS {other}"),
    }
}
