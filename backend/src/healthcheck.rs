//! `vl-backend healthcheck`: the container's health probe, so the image needs no curl.
use std::{process::ExitCode, time::Duration};

/// Exit 0 when `url` answers 200 within a few seconds, 1 otherwise.
pub async fn probe(url: &str) -> ExitCode {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(4))
        .build()
    {
        Ok(client) => client,
        Err(_) => return ExitCode::FAILURE,
    };
    match client.get(url).send().await {
        Ok(response) if response.status() == reqwest::StatusCode::OK => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("unhealthy: status {}", response.status().as_u16());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("unhealthy: {}", error.without_url());
            ExitCode::FAILURE
        }
    }
}
