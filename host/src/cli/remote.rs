//! `tern deploy` and `tern rollback`: the admin API's client.

use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::{admin::key::KEY_VAR, bundle, config::Project};

/// Options of `tern deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The project directory to deploy.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The admin URL of the running tern (`http://127.0.0.1:9090`).
    #[arg(long, value_name = "ADMIN_URL")]
    to: String,
    /// Show what would change, and any problem, without deploying.
    #[arg(long)]
    dry_run: bool,
}

/// Options of `tern rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The admin URL of the running tern.
    #[arg(long, value_name = "ADMIN_URL")]
    to: String,
    /// The deployed version to return to [default: the one before the current].
    #[arg(long)]
    version: Option<u64>,
}

/// `tern deploy DIR --to URL`.
pub async fn deploy(args: &DeployArgs) -> anyhow::Result<()> {
    let (project, _) = Project::read(&args.dir);
    let bundle = bundle::pack(&args.dir, &project)?;
    let mut url = format!("{}/deploy", args.to.trim_end_matches('/'));
    if args.dry_run {
        url.push_str("?dry_run=true");
    }
    eprintln!("uploading {} ({} bytes) to {url}", args.dir.display(), bundle.len());
    let answer = post(&url, bundle).await?;
    report(&answer, if args.dry_run { "would change" } else { "deployed" })
}

/// `tern rollback --to URL`.
pub async fn rollback(args: &RollbackArgs) -> anyhow::Result<()> {
    let mut url = format!("{}/rollback", args.to.trim_end_matches('/'));
    if let Some(v) = args.version {
        url.push_str(&format!("?version={v}"));
    }
    let answer = post(&url, Vec::new()).await?;
    report(&answer, "rolled back")
}

async fn post(url: &str, body: Vec<u8>) -> anyhow::Result<(u16, serde_json::Value)> {
    let key = std::env::var(KEY_VAR)
        .with_context(|| format!("set {KEY_VAR} to the admin key of the tern at {url}"))?;
    let resp = reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/gzip")
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.with_context(|| format!("cannot read the answer of {url}"))?;
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Ok((status, json))
}

/// Prints what the host answered; an error status is the command's error.
fn report((status, answer): &(u16, serde_json::Value), done: &str) -> anyhow::Result<()> {
    if *status == 200 {
        let changes = answer.get("changes").cloned().unwrap_or_default();
        let version = answer.get("version").and_then(|v| v.as_u64());
        match version {
            Some(v) => println!("{done}: version {v}"),
            None => println!("{done}:"),
        }
        println!("{}", serde_json::to_string_pretty(&changes).unwrap_or_default());
        if let Some(warning) = answer.get("warning").and_then(|w| w.as_str()) {
            eprintln!("warning: {warning}");
        }
        return Ok(());
    }
    let error = answer.get("error").and_then(|e| e.as_str()).unwrap_or("refused");
    let mut message = format!("{error} (HTTP {status})");
    for problem in answer.get("problems").and_then(|p| p.as_array()).into_iter().flatten() {
        message.push_str(&format!("\n{}", problem.as_str().unwrap_or_default()));
    }
    if !answer.is_object() {
        message.push_str(&format!("\n{answer}"));
    }
    bail!(message)
}
