fn main() -> std::process::ExitCode {
    account_scanner::cli::main()
}
