//! `vldeploy status`: the stack's containers with state, health, image and uptime.

use std::time::{Duration, SystemTime};

use super::{CommandError, Context};
use crate::cli::Output;

pub(crate) async fn status(ctx: &Context) -> Result<i32, CommandError> {
    if !ctx.stack.hosts.is_empty() {
        return super::swarm_status::status(ctx).await;
    }
    let c = ctx.connect().await?;
    let containers = c.engine.stack_containers(&ctx.stack.name).await?;
    let mut rows = Vec::new();
    for o in &containers {
        let started = c
            .engine
            .inspect(&o.name)
            .await
            .ok()
            .flatten()
            .map(|i| i.started_at)
            .unwrap_or_default();
        let uptime_s = humantime::parse_rfc3339_weak(started.split('.').next().unwrap_or(""))
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .filter(|_| o.is_running())
            .map(|d| d.as_secs());
        let tags = c.engine.image_tags(&o.image_id).await.unwrap_or_default();
        let image = tags
            .first()
            .cloned()
            .unwrap_or_else(|| crate::layout::short_id(&o.image_id).to_string());
        rows.push(serde_json::json!({
            "service": o.service,
            "container": o.name,
            "state": o.state,
            "health": o.health,
            "image": image,
            "image_id": o.image_id,
            "started_at": started,
            "uptime_s": uptime_s,
        }));
    }
    match ctx.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"stack": ctx.stack.name, "host": ctx.target_name(), "containers": rows})
        ),
        Output::Human => {
            if rows.is_empty() {
                println!(
                    "{} on {}: no containers (run `vldeploy up`)",
                    ctx.stack.name,
                    ctx.target_name()
                );
                return Ok(0);
            }
            println!(
                "{} ({}) on {}",
                ctx.stack.name,
                ctx.stack.environment,
                ctx.target_name()
            );
            println!(
                "{:<9} {:<13} {:<8} {:<10} {:<34} UPTIME",
                "SERVICE", "CONTAINER", "STATE", "HEALTH", "IMAGE"
            );
            for r in &rows {
                let uptime = r["uptime_s"].as_u64().map_or_else(
                    || "-".to_string(),
                    |s| humantime::format_duration(Duration::from_secs(s)).to_string(),
                );
                println!(
                    "{:<9} {:<13} {:<8} {:<10} {:<34} {uptime}",
                    r["service"].as_str().unwrap_or("-"),
                    r["container"].as_str().unwrap_or("-"),
                    r["state"].as_str().unwrap_or("-"),
                    r["health"].as_str().unwrap_or("-"),
                    r["image"].as_str().unwrap_or("-"),
                );
            }
        }
    }
    Ok(0)
}
