//! `vldeploy status`: the stack's containers with state, health, image and uptime.

use super::{CommandError, Context};
use crate::cli::Output;

pub(crate) async fn status(ctx: &Context) -> Result<i32, CommandError> {
    let c = ctx.connect().await?;
    let containers = c.engine.stack_containers(&ctx.stack.name).await?;
    let mut rows = Vec::new();
    for o in &containers {
        let info = c
            .engine
            .docker
            .inspect_container(
                &o.name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .ok();
        let started = info
            .as_ref()
            .and_then(|i| i.state.as_ref())
            .and_then(|s| s.started_at.clone())
            .unwrap_or_default();
        let image = info
            .as_ref()
            .and_then(|i| i.config.as_ref())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        rows.push(serde_json::json!({
            "service": o.service,
            "container": o.name,
            "state": o.state,
            "health": o.health,
            "image": image,
            "image_id": o.image_id,
            "started_at": started,
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
            println!("{} on {}", ctx.stack.name, ctx.target_name());
            println!(
                "{:<10} {:<14} {:<9} {:<10} {:<34} STARTED",
                "SERVICE", "CONTAINER", "STATE", "HEALTH", "IMAGE"
            );
            for r in &rows {
                println!(
                    "{:<10} {:<14} {:<9} {:<10} {:<34} {}",
                    r["service"].as_str().unwrap_or("-"),
                    r["container"].as_str().unwrap_or("-"),
                    r["state"].as_str().unwrap_or("-"),
                    r["health"].as_str().unwrap_or("-"),
                    r["image"].as_str().unwrap_or("-"),
                    r["started_at"].as_str().unwrap_or("-"),
                );
            }
        }
    }
    Ok(0)
}
