//! Provider simulator (not built yet).
