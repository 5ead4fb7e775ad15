//! `tierflow`: the control plane of the Tierflow controller and its
//! command-line tools. The binary in `main.rs` is a thin CLI over this
//! library. ARCHITECTURE.md has the code map and what each module must
//! not know.

pub mod app;
pub mod backend;
pub mod bench;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod control;
pub mod crm;
pub mod decode;
pub mod forwarding;
pub mod frame;
pub mod lldp;
pub mod messages;
pub mod metrics;
pub mod net;
pub mod ovsdb;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod qos;
pub mod routing;
pub mod sessions;
pub mod sip;
pub mod stats;
pub mod topology;
pub mod vlan;
