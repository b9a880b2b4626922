fn main() -> std::process::ExitCode {
    gitinit::main()
}
