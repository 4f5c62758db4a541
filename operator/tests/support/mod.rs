//! Shared by the operator's integration tests.
#![allow(dead_code)]

pub mod rm_double;
