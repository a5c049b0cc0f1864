//! Provider simulator entry point (not built yet).

fn main() {}
