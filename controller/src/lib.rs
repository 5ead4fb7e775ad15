//! `tierflow`: the control plane of the Tierflow controller (switch
//! connections, topology, forwarding) and its command-line tools. The
//! binary in `main.rs` is a thin CLI over this library.

pub mod app;
pub mod backend;
pub mod bench;
pub mod config;
pub mod control;
pub mod cookie;
pub mod crm;
pub mod decode;
pub mod forwarding;
pub mod hold;
pub mod lldp;
pub mod ofconn;
pub mod ovsdb;
pub mod policy;
pub mod qos;
pub mod session;
pub mod sip;
pub mod stats;
pub mod switch;
pub mod topology;
