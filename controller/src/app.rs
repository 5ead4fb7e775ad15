//! Starting and stopping the controller: binds the OpenFlow and API
//! listeners, builds the control plane, and spawns every long-lived task
//! (connections, discovery, remote lookups, OVSDB queues, the Redis
//! writer, the CRM follower, idle media, the API). The one place that
//! spawns them: each is tracked, and on shutdown one cancellation token
//! stops them all and `Running::stop` waits for them.

use crate::cluster;
use crate::config::{Config, CrmMode};
use crate::control::ControlPlane;
use crate::crm::{
    ChangeKind, RedisTls, Replica, ReplicaOptions, ReplicaScope, Store, StoreOptions,
};
use crate::net::{ofconn, tls};
use crate::sessions::Crm;
use crate::sessions::writer::Stored;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A running controller.
#[derive(Debug)]
pub struct Running {
    pub ctl: Arc<ControlPlane>,
    /// The address the plain OpenFlow listener is bound to (useful with
    /// port 0); the TLS listener's when plain OpenFlow is `off`.
    pub openflow_addr: SocketAddr,
    /// The address the OpenFlow-over-TLS listener is bound to, if any.
    pub openflow_tls_addr: Option<SocketAddr>,
    /// The address the REST API is bound to (useful with port 0).
    pub api_addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// How long the first read of remembered sessions may take before the
/// controller starts without them (a task keeps trying).
const REMEMBERED_FIRST_TRY: Duration = Duration::from_secs(2);

/// Binds and starts everything; returns once the listeners are up.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    // The certificate files are read (and checked) before anything binds.
    let tls = config
        .openflow_tls
        .map(|_| tls::acceptor(&config.tls))
        .transpose()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let redis_tls =
        RedisTls::load(&config.redis_tls).map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let listener = match config.openflow.0 {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for OpenFlow on {addr}: {e}"))?,
        ),
        None => None,
    };
    let tls_listener =
        match config.openflow_tls {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!("cannot listen for OpenFlow over TLS on {addr}: {e}")
            })?),
            None => None,
        };
    let openflow_tls_addr = tls_listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let openflow_addr = match (&listener, openflow_tls_addr) {
        (Some(l), _) => l.local_addr()?,
        (None, Some(a)) => a,
        (None, None) => anyhow::bail!("configuration: no OpenFlow listener"),
    };
    let api_listener = TcpListener::bind(config.api)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for the REST API on {}: {e}", config.api))?;
    let api_addr = api_listener.local_addr()?;
    let timers = config.timers;
    let hold_config = config.hold;
    let api_token = config.api_token.clone();
    let api_read_token = config.api_read_token.clone();
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();

    // The CRM. Redis being down is no reason not to start: switches still
    // get forwarding, the replica follows Redis from empty, and decisions
    // fall back to the default tier until it answers.
    let scope = match config.crm_mode {
        CrmMode::Replica => ReplicaScope::Full,
        CrmMode::Remote => ReplicaScope::ConfigOnly,
    };
    let replica = Replica::start_or_follow(
        &config.redis,
        scope,
        ReplicaOptions {
            tasks: Some(tracker.clone()),
            tls: redis_tls.clone(),
            ..ReplicaOptions::default()
        },
        shutdown.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("Redis {}: {e}", crate::crm::redacted(&config.redis)))?;
    let store = Store::connect_with(
        &config.redis,
        &StoreOptions {
            op_timeout: Duration::from_millis(500),
            lazy: true,
            tasks: Some(tracker.clone()),
            tls: redis_tls,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("Redis {}: {e}", crate::crm::redacted(&config.redis)))?;
    let crm = Crm {
        mode: config.crm_mode,
        replica: replica.clone(),
        store: store.clone(),
    };
    // phonenumber loads its numbering plans on first use (seconds in a
    // debug build): load them now, not on the first INVITE's task.
    tracker.spawn_blocking(crate::sip::preload_numbering_plans);
    let advertise_api = config.advertise_api.clone().unwrap_or_else(|| {
        let mut a = api_addr;
        if a.ip().is_unspecified() {
            a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        a.to_string()
    });
    let (ctl, workers) = ControlPlane::new(config, crm);
    let me = Me {
        api: advertise_api,
        openflow: openflow_addr.to_string(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };

    // The cluster's first word, before any switch is listened for: lead
    // (as a lone controller always does), or follow another instance.
    let first = tokio::time::timeout(REMEMBERED_FIRST_TRY, me.beat(&ctl, &store))
        .await
        .ok()
        .and_then(Result::ok);
    let leads = match cluster::verdict(
        &cluster::Role::Starting,
        first.as_ref(),
        &cluster::Memory::default(),
    ) {
        cluster::Step::Follow { leader, term } => {
            follow(&ctl, leader, term, first.as_ref());
            false
        }
        cluster::Step::Lead { term, .. } => {
            tracing::info!("instance {} leads (term {term})", ctl.cluster().id);
            ctl.lead(term, false, Vec::new()).await;
            true
        }
        _ => {
            tracing::warn!(
                "instance {}: Redis did not answer; acting as the one controller",
                ctl.cluster().id
            );
            ctl.act_alone();
            true
        }
    };
    {
        let (ctl, store, shutdown) = (ctl.clone(), store.clone(), shutdown.clone());
        tracker.spawn(async move { me.run(&ctl, &store, shutdown).await });
    }

    // Sessions Redis remembers (a restart): re-admitted by their next
    // packet with the same id, override and hold. Retried until Redis
    // answers; one unreadable record is skipped and reported. A follower
    // leaves them to the leader.
    let remembered = if leads {
        tokio::time::timeout(REMEMBERED_FIRST_TRY, remember(&ctl, &store)).await
    } else {
        Ok(true)
    };
    match remembered {
        Ok(true) => {}
        _ => {
            let (ctl, store, shutdown) = (ctl.clone(), store.clone(), shutdown.clone());
            tracker.spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    if remember(&ctl, &store).await {
                        break;
                    }
                }
            });
        }
    }

    {
        let (ctl, shutdown) = (ctl.clone(), shutdown.clone());
        tracker.spawn(async move { ctl.run_writer(shutdown).await });
    }
    {
        let (ctl, shutdown) = (ctl.clone(), shutdown.clone());
        tracker.spawn(async move { ctl.run_lookups(workers.lookups, shutdown).await });
    }
    {
        let (ctl, shutdown) = (ctl.clone(), shutdown.clone());
        tracker.spawn(async move { ctl.run_queue_sync(shutdown).await });
    }
    {
        let (ctl, shutdown) = (ctl.clone(), shutdown.clone());
        tracker.spawn(async move { ctl.run_idle_monitor(hold_config, shutdown).await });
    }
    {
        let (ctl, shutdown) = (ctl.clone(), shutdown.clone());
        tracker.spawn(async move { ctl.run_discovery(shutdown).await });
    }
    {
        // Every second: what the API shows is at most 2 s old.
        let (ctl, shutdown) = (ctl.clone(), shutdown.clone());
        tracker.spawn(async move { ctl.run_measure(Duration::from_secs(1), shutdown).await });
    }
    {
        let (ctl, shutdown) = (ctl.clone(), shutdown.clone());
        let mut changes = replica.subscribe_changes();
        tracker.spawn(async move {
            loop {
                let change = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    c = changes.recv() => c,
                };
                match change {
                    Ok(c) => ctl.crm_changed(c.kind, &c.name).await,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        ctl.crm_changed(ChangeKind::Everything, "-").await;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }
    if let Some(listener) = listener {
        tracing::info!("OpenFlow listener on {openflow_addr}");
        tracker.spawn(ofconn::serve(
            listener,
            None,
            ctl.clone(),
            timers,
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    if let (Some(listener), Some(tls)) = (tls_listener, tls) {
        if let Ok(a) = listener.local_addr() {
            tracing::info!("OpenFlow over TLS listener on {a} (switch certificates checked)");
        }
        tracker.spawn(ofconn::serve(
            listener,
            Some(tls),
            ctl.clone(),
            timers,
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    {
        let router = tierflow_api::router(
            Arc::new(crate::backend::ControlBackend::new(ctl.clone())),
            tierflow_api::ApiConfig {
                token: api_token,
                read_token: api_read_token,
            },
        );
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            if let Err(e) = tierflow_api::serve(api_listener, router, shutdown).await {
                tracing::error!("REST API stopped: {e}");
            }
        });
        tracing::info!("REST API on http://{api_addr}");
    }
    Ok(Running {
        ctl,
        openflow_addr,
        openflow_tls_addr,
        api_addr,
        shutdown,
        tracker,
    })
}

/// What this instance tells the others about itself.
struct Me {
    api: String,
    openflow: String,
    started_at: String,
}

impl Me {
    async fn beat(
        &self,
        ctl: &ControlPlane,
        store: &Store,
    ) -> crate::crm::store::Result<crate::crm::cluster::Beat> {
        let c = ctl.cluster();
        let role = c.role();
        let info = cluster::Info {
            id: c.id.clone(),
            api: self.api.clone(),
            openflow: self.openflow.clone(),
            role: role.name().to_owned(),
            switches: ctl
                .switch_ids()
                .iter()
                .map(|d| format!("{d:016x}"))
                .collect(),
            started_at: self.started_at.clone(),
        };
        let json = serde_json::to_string(&info).unwrap_or_default();
        store
            .heartbeat(&c.id, cluster::LEASE.as_millis() as u64, &json, role.term())
            .await
    }

    /// Beats until `shutdown`, acting on what each answer means; then
    /// resigns, so that another instance takes over at once.
    async fn run(&self, ctl: &ControlPlane, store: &Store, shutdown: CancellationToken) {
        let mut answered = std::time::Instant::now();
        let mut peers = 0;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(cluster::BEAT) => {}
            }
            let beat = match self.beat(ctl, store).await {
                Ok(b) => {
                    answered = std::time::Instant::now();
                    peers = b.members.saturating_sub(1);
                    Some(b)
                }
                Err(e) => {
                    tracing::debug!("cluster heartbeat failed: {e}");
                    None
                }
            };
            let mem = cluster::Memory {
                peers,
                unanswered_for: answered.elapsed(),
            };
            match cluster::verdict(&ctl.cluster().role(), beat.as_ref(), &mem) {
                cluster::Step::Fence { term } => ctl.fence(term),
                cluster::Step::Stay | cluster::Step::ActAlone => {
                    if let Some(b) = &beat
                        && !b.leads
                    {
                        ctl.cluster().set_leader_api(leader_api(&b.leader_info));
                    }
                }
                cluster::Step::Lead { term, takeover } => {
                    let records = if takeover {
                        match store.list_session_records::<Stored>().await {
                            Ok((records, bad)) => {
                                for (key, why) in &bad {
                                    tracing::warn!("session {key} not adopted: unreadable ({why})");
                                }
                                records
                            }
                            Err(e) => {
                                tracing::warn!("sessions not adopted: Redis: {e}");
                                Vec::new()
                            }
                        }
                    } else {
                        Vec::new()
                    };
                    tracing::info!(
                        "instance {} leads (term {term}){}",
                        ctl.cluster().id,
                        if takeover {
                            ", taking the switches over"
                        } else {
                            ""
                        }
                    );
                    ctl.lead(term, takeover, records).await;
                }
                cluster::Step::Follow { leader, term } => follow(ctl, leader, term, beat.as_ref()),
                cluster::Step::StepDown { leader } => {
                    // The switches already refuse this instance's writes
                    // (the new leader's generation id is higher); its
                    // memory of sessions is the old leader's. Stop, and
                    // let the supervisor start it again as a follower.
                    tracing::error!(
                        "instance {}: {leader} leads the cluster now; this instance stops",
                        ctl.cluster().id
                    );
                    std::process::exit(3);
                }
            }
        }
        let _ =
            tokio::time::timeout(Duration::from_millis(500), store.resign(&ctl.cluster().id)).await;
    }
}

/// Follows `leader`, whose API address the heartbeat's answer gave.
fn follow(ctl: &ControlPlane, leader: String, term: u64, beat: Option<&crate::crm::cluster::Beat>) {
    let api = beat.and_then(|b| leader_api(&b.leader_info));
    tracing::info!(
        "instance {} follows {leader} (term {term})",
        ctl.cluster().id
    );
    ctl.follow(leader, term, api);
}

/// The API address in a leader's description.
fn leader_api(info: &str) -> Option<String> {
    serde_json::from_str::<cluster::Info>(info)
        .ok()
        .map(|i| i.api)
        .filter(|a| !a.is_empty())
}

/// Reads the sessions Redis remembers and parks them; false if Redis
/// could not be read (try again).
async fn remember(ctl: &ControlPlane, store: &Store) -> bool {
    match store.list_session_records::<Stored>().await {
        Ok((records, bad)) => {
            for (key, why) in &bad {
                tracing::warn!("remembered session {key} skipped: unreadable ({why})");
            }
            ctl.stats().sessions_unreadable.add(bad.len() as u64);
            let n = ctl.park_remembered(records);
            if n > 0 {
                tracing::info!("{n} sessions remembered from Redis");
            }
            true
        }
        Err(e) => {
            tracing::warn!("cannot read remembered sessions yet: {e}");
            false
        }
    }
}

impl Running {
    /// Cancels every task and waits (bounded) for them to finish.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(5), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not stop within 5 s");
        }
    }

    /// A token that stops the controller when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn signalled() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
