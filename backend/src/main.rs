//! The `vl-backend` binary: `serve` (default) or `healthcheck`.
fn main() -> std::process::ExitCode {
    vl_backend::run()
}
