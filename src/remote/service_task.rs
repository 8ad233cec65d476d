//! What a swarm node is asked of a service's tasks: the container of the running task on that node, the
//! service's replica count, and scaling it while waiting for its tasks to converge.

use super::Command;

/// The IDs of the running containers of `service`'s tasks on this node, one a line: Swarm labels each task's
/// container with its service's name, and names the container anew for each task.
pub fn running_container(service: &str) -> Command {
    Command::argv([
        "docker",
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
        "--filter",
        "status=running",
    ])
}

/// The replica count in `service`'s spec (asked of a manager), one number.
pub fn replicas(service: &str) -> Command {
    Command::argv([
        "docker",
        "service",
        "inspect",
        "--format",
        "{{.Spec.Mode.Replicated.Replicas}}",
    ])
    .operands(&[service])
}

/// Scales `service` to `replicas` on a manager and waits (at most `limit_s` seconds) until its tasks converged:
/// none left at 0, else that many running (a task with a health check runs once healthy).
pub fn scale(service: &str, replicas: u32, limit_s: u64) -> Command {
    Command::argv([
        "timeout",
        &limit_s.to_string(),
        "docker",
        "service",
        "scale",
        "--detach=false",
        &format!("{service}={replicas}"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_task_is_found_by_its_service_label() {
        assert_eq!(
            running_container("shop_postgres").text(),
            "docker ps -q --filter label=com.docker.swarm.service.name=shop_postgres --filter status=running"
        );
        assert_eq!(
            running_container("a b").text(),
            "docker ps -q --filter 'label=com.docker.swarm.service.name=a b' --filter status=running"
        );
    }

    #[test]
    fn replicas_are_read_from_the_spec_and_scaling_waits() {
        assert_eq!(
            replicas("shop_backend").text(),
            "docker service inspect --format '{{.Spec.Mode.Replicated.Replicas}}' shop_backend"
        );
        assert_eq!(
            scale("shop_backend", 0, 300).text(),
            "timeout 300 docker service scale --detach=false shop_backend=0"
        );
    }
}
