//! Placeholder: this crate is being built (see the issues).
#![forbid(unsafe_code)]
