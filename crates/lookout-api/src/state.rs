//! What every handler can reach. Cheap to clone; nothing in it does I/O on the request path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use lookout_probe::docker::ContainerControl;
use lookout_probe::Snapshot;

use crate::auth::SharedTokens;
use crate::error::ApiError;
use crate::metrics::HttpMetrics;

/// Knobs of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Off only when the operator turned auth off on purpose.
    pub auth_enabled: bool,
    /// Serve `/docs` and `/openapi.json` without a token.
    pub public_docs: bool,
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            auth_enabled: true,
            public_docs: false,
            request_timeout: Duration::from_secs(30),
            body_limit_bytes: 64 * 1024,
        }
    }
}

pub struct Inner {
    pub snapshot: watch::Receiver<Option<Arc<Snapshot>>>,
    pub tokens: SharedTokens,
    pub control: Arc<dyn ContainerControl>,
    pub metrics: HttpMetrics,
    pub config: ApiConfig,
    /// Wakes the sampler for an early tick, so a control action shows at once.
    pub resample: Arc<Notify>,
    pub started: Instant,
    /// The hedged upstream of `/api/smart`; `None` answers 503.
    pub smart: Option<crate::smart::SmartService>,
    /// History; `None` when it could not be opened (history routes answer 503).
    pub store: Option<lookout_store::Store>,
    /// Browser sessions and the live stream of the web dashboard.
    pub dashboard: crate::dashboard::session::Dashboard,
    /// Failed authentication attempts per client address (wrong tokens get 429 past a burst).
    pub auth_failures: crate::throttle::FailureThrottle,
    /// Alert rules, states and silences; `None` when alerting is off (alert routes answer 503).
    pub alerts: Option<lookout_alert::AlertService>,
    /// The fleet view's PromQL engine; `None` when `[fleet] query_url` is unset (503).
    pub fleet: Option<lookout_fleet::Fleet>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        snapshot: watch::Receiver<Option<Arc<Snapshot>>>,
        tokens: SharedTokens,
        control: Arc<dyn ContainerControl>,
        config: ApiConfig,
        resample: Arc<Notify>,
    ) -> Self {
        Self(Arc::new(Inner {
            snapshot,
            tokens,
            control,
            metrics: HttpMetrics::new(),
            config,
            resample,
            started: Instant::now(),
            smart: None,
            store: None,
            dashboard: Default::default(),
            auth_failures: Default::default(),
            alerts: None,
            fleet: None,
        }))
    }

    /// Adds the hedged upstream of `/api/smart` (its metrics join this state's registry).
    /// Call right after [`AppState::new`], before the state is shared.
    pub fn with_smart(
        mut self,
        upstream: &str,
        policy: lookout_hedge::HedgePolicy,
    ) -> Result<Self, lookout_hedge::HedgeError> {
        let inner = Arc::get_mut(&mut self.0).ok_or_else(|| {
            lookout_hedge::HedgeError::InvalidPolicy("state already shared".into())
        })?;
        inner.smart = Some(crate::smart::SmartService::new(
            upstream,
            policy,
            &inner.metrics,
        )?);
        Ok(self)
    }

    /// Adds the history store (its health joins `/readyz` and `/metrics`).
    /// Call right after [`AppState::new`], before the state is shared.
    pub fn with_store(mut self, store: lookout_store::Store) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner
                .metrics
                .register_collector(crate::metrics::StoreCollector(store.clone()));
            inner.store = Some(store);
        }
        self
    }

    /// Adds the alert service (its states join `/metrics` as `lookout_alerts`).
    /// Call right after [`AppState::new`], before the state is shared.
    pub fn with_alerts(mut self, alerts: lookout_alert::AlertService) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner
                .metrics
                .register_collector(crate::metrics::AlertsCollector(alerts.clone()));
            inner.alerts = Some(alerts);
        }
        self
    }

    /// Adds the fleet view's engine. Call right after [`AppState::new`], before sharing.
    pub fn with_fleet(mut self, fleet: lookout_fleet::Fleet) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.fleet = Some(fleet);
        }
        self
    }

    /// Swaps in a new token set (the token file changed) and ends the dashboard sessions of
    /// tokens that are gone.
    pub fn replace_tokens(&self, set: crate::auth::TokenSet) {
        let ended = self.dashboard.sessions.retain_tokens(&set);
        if ended > 0 {
            tracing::info!(
                sessions = ended,
                "ended dashboard sessions of revoked tokens"
            );
        }
        self.tokens.replace(set);
    }

    /// Ends the dashboard sessions of tokens no longer in the current set (frees memory:
    /// each use of a session already checks its token against the current set).
    pub fn sweep_revoked_sessions(&self) -> usize {
        let ended = self
            .dashboard
            .sessions
            .retain_tokens(&self.tokens.current());
        if ended > 0 {
            tracing::info!(
                sessions = ended,
                "ended dashboard sessions of revoked tokens"
            );
        }
        ended
    }

    /// The latest snapshot, or 503 before the first tick.
    pub fn latest(&self) -> Result<Arc<Snapshot>, ApiError> {
        self.snapshot.borrow().clone().ok_or(ApiError::WarmingUp)
    }
}
