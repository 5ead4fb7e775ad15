//! Test support: the shared behaviour suite and the in-memory reference
//! backend it runs against here.

pub mod memory;
pub mod suite;
