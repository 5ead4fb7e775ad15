//! The switches' side of the controller: the OpenFlow listeners and one
//! task per connection (`ofconn`), TLS with switch certificates checked
//! against a CA (`tls`), the handle the rest of the controller holds for
//! a connected switch (`switch`), and the one place that sends plans to
//! switches (`installer`: the registry of connected switches, the
//! barrier-gated release of packets).
//!
//! Knows nothing of topology, forwarding, sessions or the CRM: what a
//! connection reports goes to an [`Events`] implementation (the control
//! plane), which `app` wires in.

pub mod installer;
pub mod ofconn;
pub mod switch;
pub mod tls;

pub use installer::Installer;
pub use switch::{Batch, RequestError, Switch};

use bytes::Bytes;
use openflow::{ErrorMsg, FlowRemoved, PacketIn, PortStatus};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

/// What a switch connection reports, in its own task. Implementations
/// must not block: a slow handler stalls that switch only, but every
/// packet-in of it.
pub trait Events: Send + Sync + 'static {
    /// The connection registered for `dpid`, if any: a newcomer claiming
    /// that datapath checks whether it is alive before `switch_connected`.
    fn holder(&self, dpid: u64) -> Option<Arc<Switch>>;
    /// The handshake finished. `Err` refuses the connection (it is closed
    /// with the reason logged), as when a live connection holds its
    /// datapath id.
    fn switch_connected(&self, sw: &Arc<Switch>) -> Result<(), String>;
    /// A peer of the TLS listener failed its handshake or showed a
    /// certificate the switch CA did not sign (it was closed).
    fn tls_refused(&self, peer: SocketAddr, why: &tls::TlsRefusal);
    /// Learning the switch (ports, description, meter features, what
    /// goes on it): runs in the connection's task, alongside its reads.
    fn switch_learn<'a>(&'a self, sw: Arc<Switch>)
    -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
    /// The connection ended (after `switch_connected` accepted it).
    fn switch_disconnected(&self, sw: &Arc<Switch>);
    fn packet_in(&self, sw: &Arc<Switch>, frame: &Bytes, pi: &PacketIn<'_>);
    /// The reply to a barrier of a plan (xid with `SETUP_XID_BIT`).
    fn setup_barrier(&self, sw: &Switch, xid: u32);
    fn port_status(&self, sw: &Switch, ps: &PortStatus);
    fn flow_removed(&self, sw: &Switch, fr: &FlowRemoved<'_>);
    fn switch_error(&self, sw: &Switch, xid: u32, e: &ErrorMsg<'_>);
    /// A message that could not be decoded (it was answered with an
    /// OFPT_ERROR; the connection lives).
    fn decode_error(&self, sw: &Switch);
}
