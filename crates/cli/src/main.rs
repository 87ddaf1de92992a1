fn main() {
    std::process::exit(shipline::run());
}
