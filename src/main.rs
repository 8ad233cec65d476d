fn main() {
    std::process::exit(vldeploy::run());
}
