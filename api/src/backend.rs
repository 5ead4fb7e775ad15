//! The seam between the REST API and the control plane: the `Backend`
//! trait the control plane implements and the errors it answers with.
//! The API validates request bodies (`model::*::validate`) before calling
//! it; the backend owns the rules that need state (existence, conflicts,
//! references between resources) and must change nothing when it
//! returns an error.

use crate::model::{
    ClientData, Customer, FieldError, Policy, PortConfig, Promotion, Service, Session,
    SessionState, Tier, Vlan,
};
use crate::views::{
    Alarm, ClusterView, CustomerFilter, FlowView, Health, MeterView, Page, QueueView,
    SessionFilter, SessionRequest, SwitchView, TopologyView,
};

/// Why the backend refused or failed a request. Each maps to one HTTP
/// status (`ApiError`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// 404: `kind` is the resource (`tier`, `customer`, `switch`, ...).
    #[error("no {kind} {id:?}")]
    NotFound { kind: &'static str, id: String },
    /// 409: it exists already, or something still uses it.
    #[error("{0}")]
    Conflict(String),
    /// 422: a field refers to something that does not exist, or breaks a
    /// rule that needs state to check.
    #[error("{0}")]
    Invalid(FieldError),
    /// 503: a dependency (Redis, a switch) cannot be reached now.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected answer; the text is shown to the client.
    #[error("{0}")]
    Internal(String),
}

impl BackendError {
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        BackendError::NotFound {
            kind,
            id: id.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        BackendError::Invalid(FieldError::new(field, reason))
    }
}

/// What the REST API needs from the control plane.
///
/// Contract for implementors (the shared test suite in
/// `api/tests/support/suite.rs` checks it):
/// - `create_*` answer `Conflict` when the key exists; `update_*` and
///   `delete_*` answer `NotFound` when it does not. The API has already
///   checked that an update's body names the resource of the path.
/// - `delete_tier` answers `Conflict` while a live (not ended) session
///   has the tier (in force or as override), a promotion grants it, or it
///   is the policy's default tier.
/// - A promotion naming a tier that does not exist, a policy whose
///   `default_tier` does not exist and `set_session_tier` with an unknown
///   tier answer `Invalid` naming the field (`tier`, `default_tier`).
/// - Session actions on an ended session answer `Conflict`; deleting an
///   ended session succeeds and changes nothing.
/// - `update_tier` takes effect on every live session of the tier;
///   `client_data` re-scores and re-tiers the session.
/// - `create_vlan` and `update_vlan` answer `Invalid` naming the gateway
///   (`gateways[0]`) when its subnet overlaps another VLAN's;
///   `delete_vlan` answers `Conflict` while a port carries the VLAN
///   (VLAN 1 always exists: deleting its record only takes its gateways).
/// - `put_port` answers `Invalid` naming the field (`native_vlan`,
///   `tagged_vlans[1]`) for a VLAN that does not exist; it creates or
///   replaces (`true`: created). A port without a record carries VLAN 1
///   untagged.
/// - A VLAN or port change takes effect on the live network: the flows it
///   made wrong are removed.
/// - When Redis is down, calls that need it answer `Unavailable`.
/// - An error changes nothing.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Status of Redis, OVSDB and the switch connections.
    async fn health(&self) -> Health;
    /// The instances sharing this Redis. A backend that is no cluster
    /// answers with itself alone.
    async fn cluster(&self) -> Result<ClusterView, BackendError> {
        let h = self.health().await;
        Ok(ClusterView {
            instance: h.instance.clone(),
            leader: Some(h.instance.clone()),
            term: 0,
            instances: Vec::new(),
        })
    }
    /// Where API calls go instead of this instance: the cluster's
    /// leader's API address while another instance leads. `/health`,
    /// `/cluster` and `/metrics` always answer here.
    fn forward_to(&self) -> Option<String> {
        None
    }

    async fn switches(&self) -> Vec<SwitchView>;
    async fn switch(&self, dpid: u64) -> Option<SwitchView>;
    /// Read live from the switch (flow stats multipart).
    async fn switch_flows(&self, dpid: u64) -> Result<Vec<FlowView>, BackendError>;
    /// Read live from the switch (meter stats and config multiparts).
    async fn switch_meters(&self, dpid: u64) -> Result<Vec<MeterView>, BackendError>;
    /// Read live from the switch (queue stats), with OVSDB's rates.
    async fn switch_queues(&self, dpid: u64) -> Result<Vec<QueueView>, BackendError>;
    async fn topology(&self) -> TopologyView;

    async fn list_tiers(&self) -> Result<Vec<Tier>, BackendError>;
    async fn get_tier(&self, name: &str) -> Result<Tier, BackendError>;
    async fn create_tier(&self, t: Tier) -> Result<Tier, BackendError>;
    async fn update_tier(&self, name: &str, t: Tier) -> Result<Tier, BackendError>;
    async fn delete_tier(&self, name: &str) -> Result<(), BackendError>;

    /// Ordered by id; `f.limit` is at most `views::MAX_LIMIT`.
    async fn list_customers(&self, f: CustomerFilter) -> Result<Page<Customer>, BackendError>;
    async fn get_customer(&self, id: &str) -> Result<Customer, BackendError>;
    async fn create_customer(&self, c: Customer) -> Result<Customer, BackendError>;
    async fn update_customer(&self, id: &str, c: Customer) -> Result<Customer, BackendError>;
    async fn delete_customer(&self, id: &str) -> Result<(), BackendError>;

    async fn list_promotions(&self) -> Result<Vec<Promotion>, BackendError>;
    async fn get_promotion(&self, code: &str) -> Result<Promotion, BackendError>;
    async fn create_promotion(&self, p: Promotion) -> Result<Promotion, BackendError>;
    async fn update_promotion(&self, code: &str, p: Promotion) -> Result<Promotion, BackendError>;
    async fn delete_promotion(&self, code: &str) -> Result<(), BackendError>;

    async fn list_services(&self) -> Result<Vec<Service>, BackendError>;
    async fn get_service(&self, name: &str) -> Result<Service, BackendError>;
    async fn create_service(&self, s: Service) -> Result<Service, BackendError>;
    async fn update_service(&self, name: &str, s: Service) -> Result<Service, BackendError>;
    async fn delete_service(&self, name: &str) -> Result<(), BackendError>;

    async fn get_policy(&self) -> Result<Policy, BackendError>;
    async fn put_policy(&self, p: Policy) -> Result<Policy, BackendError>;

    /// Ordered by vid.
    async fn list_vlans(&self) -> Result<Vec<Vlan>, BackendError>;
    async fn get_vlan(&self, vid: u16) -> Result<Vlan, BackendError>;
    async fn create_vlan(&self, v: Vlan) -> Result<Vlan, BackendError>;
    async fn update_vlan(&self, vid: u16, v: Vlan) -> Result<Vlan, BackendError>;
    async fn delete_vlan(&self, vid: u16) -> Result<(), BackendError>;

    /// Ordered by datapath id, then port; datapath ids as 16 hex digits.
    async fn list_ports(&self) -> Result<Vec<PortConfig>, BackendError>;
    async fn get_port(&self, dpid: u64, port: u32) -> Result<PortConfig, BackendError>;
    /// Creates or replaces (the API checked the body names the path's
    /// port, and made its dpid canonical). `true`: it was created.
    async fn put_port(&self, p: PortConfig) -> Result<(PortConfig, bool), BackendError>;
    async fn delete_port(&self, dpid: u64, port: u32) -> Result<(), BackendError>;

    /// Ordered by id; `f.limit` is at most `views::MAX_LIMIT`.
    async fn list_sessions(&self, f: SessionFilter) -> Result<Page<Session>, BackendError>;
    async fn get_session(&self, id: &str) -> Result<Session, BackendError>;
    /// Ends the session (its flows go); it stays readable as `ended`.
    async fn delete_session(&self, id: &str) -> Result<(), BackendError>;
    /// Manual override: wins over the automatic choice until cleared.
    async fn set_session_tier(&self, id: &str, tier: &str) -> Result<Session, BackendError>;
    /// Back to the automatic choice.
    async fn clear_session_tier(&self, id: &str) -> Result<Session, BackendError>;
    /// Merge `d` into the session's client data, re-score, re-tier.
    async fn client_data(&self, id: &str, d: ClientData) -> Result<Session, BackendError>;
    /// `Active` or `Hold` (the API refuses `Ended` before calling).
    async fn set_session_state(&self, id: &str, s: SessionState) -> Result<Session, BackendError>;
    /// A session an application server requests (the API validated it):
    /// scored like any other, its tier on every switch of its path (both
    /// directions, confirmed) before this returns; or waiting for hosts
    /// not located yet. The same `external_id` again answers the same
    /// session (`false`: not created now); the same `external_id` for
    /// other endpoints is a `Conflict`; an address no session can have
    /// is `Invalid` naming it.
    async fn request_session(&self, r: SessionRequest) -> Result<(Session, bool), BackendError>;

    /// The alarms active now (`switch_error`, `redis_down`, `meter_pool`),
    /// in any order. The default has none, for a control plane that does
    /// not raise them yet.
    async fn alarms(&self) -> Vec<Alarm> {
        Vec::new()
    }

    /// The control plane's metrics in Prometheus text format, appended
    /// to the API's own on `/metrics`.
    fn metrics(&self) -> String;
}
