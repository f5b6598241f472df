//! Settings of the benchmark binaries from the environment.

/// The number in environment variable `name`, or `default` when it is unset; panics naming
/// the variable when it is not a number.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        })
        .unwrap_or(default)
}
