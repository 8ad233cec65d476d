//! What a manager's CLI is asked of a Swarm service that its API model here lacks: the spec it had before.

use super::Command;

/// The service `name`'s `PreviousSpec` as JSON, `null` when it has none.
pub fn previous_spec(name: &str) -> Command {
    Command::argv([
        "docker",
        "service",
        "inspect",
        "--format",
        "{{json .PreviousSpec}}",
        name,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_spec_is_asked_of_one_quoted_service_name() {
        assert_eq!(
            previous_spec("shop_backend").text(),
            "docker service inspect --format '{{json .PreviousSpec}}' shop_backend"
        );
        assert_eq!(
            previous_spec("shop_backend; rm -rf /").text(),
            "docker service inspect --format '{{json .PreviousSpec}}' 'shop_backend; rm -rf /'"
        );
    }
}
