//! Adapters for wholesale provider APIs, one module per API.
