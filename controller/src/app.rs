//! Starting and stopping the controller: binds the OpenFlow listener,
//! spawns the connection acceptor and the periodic discovery task, and on
//! shutdown drains every task through one cancellation token.

use crate::config::{Config, Timers};
use crate::control::ControlPlane;
use crate::crm::{ChangeKind, Replica, ReplicaOptions, ReplicaScope, Store, StoreOptions};
use crate::ofconn;
use crate::session::{Crm, CrmMode};
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
    /// The address the OpenFlow listener is bound to (useful with port 0).
    pub openflow_addr: SocketAddr,
    /// The address the REST API is bound to (useful with port 0).
    pub api_addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// Binds and starts everything; returns once the listener is up.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(config.openflow)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for OpenFlow on {}: {e}", config.openflow))?;
    let openflow_addr = listener.local_addr()?;
    let lldp_every = Timers::secs(config.timers.lldp_interval);
    let (config_api, api_token) = (config.api, config.api_token.clone());
    let hold_config = config.hold;
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
        ReplicaOptions::default(),
        shutdown.clone(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("Redis {}: {e}", config.redis))?;
    let store = Store::connect_with(
        &config.redis,
        &StoreOptions {
            op_timeout: Duration::from_millis(500),
            lazy: true,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("Redis {}: {e}", config.redis))?;
    let crm = Crm {
        mode: config.crm_mode,
        replica: replica.clone(),
        store: store.clone(),
    };
    // phonenumber loads its numbering plans on first use (seconds in a
    // debug build): load them now, not on the first INVITE's task.
    tokio::task::spawn_blocking(crate::sip::preload_numbering_plans);
    let ctl = Arc::new(ControlPlane::new(config, crm));
    // Sessions Redis remembers (a restart): re-admitted by their next
    // packet with the same id and override.
    match store.list_sessions().await {
        Ok(v) if !v.is_empty() => {
            tracing::info!("{} sessions remembered from Redis", v.len());
            ctl.park_remembered(v);
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot read remembered sessions: {e}"),
    }
    {
        let ctl = ctl.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move { ctl.sessions_writer(shutdown).await });
    }
    {
        let ctl = ctl.clone();
        let shutdown = shutdown.clone();
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

    tracker.spawn(
        ctl.clone()
            .idle_media_monitor(hold_config, shutdown.clone()),
    );
    tracker.spawn(ofconn::serve(
        listener,
        ctl.clone(),
        shutdown.clone(),
        tracker.clone(),
    ));
    {
        let ctl = ctl.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(lldp_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => ctl.lldp_round(),
                }
            }
        });
    }

    // ---- REST API (issue 5) ----
    let api_addr = {
        let api = match TcpListener::bind(config_api).await {
            Ok(l) => l,
            Err(e) => {
                shutdown.cancel();
                return Err(anyhow::anyhow!(
                    "cannot listen for the REST API on {config_api}: {e}"
                ));
            }
        };
        let api_addr = api.local_addr()?;
        let router = tierflow_api::router(
            Arc::new(crate::backend::ControlBackend::new(ctl.clone())),
            tierflow_api::ApiConfig { token: api_token },
        );
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            if let Err(e) = tierflow_api::serve(api, router, shutdown).await {
                tracing::error!("REST API stopped: {e}");
            }
        });
        tracing::info!("REST API on http://{api_addr}");
        api_addr
    };
    // ---- end REST API ----

    tracing::info!("OpenFlow listener on {openflow_addr}");
    Ok(Running {
        ctl,
        openflow_addr,
        api_addr,
        shutdown,
        tracker,
    })
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
