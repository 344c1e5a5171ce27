//! The pool builder: one setter per knob, each stating its default, and
//! three ways to finish — `build()` (async, opens `initial_size`
//! connections and fails with the cause if it cannot), `build_lazy()`
//! (returns at once and warms up in the background, so it succeeds while
//! the database is down), and `build_blocking()` (for plain threads).

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle as RuntimeHandle;

use crate::config::{Config, QueueMode};
use crate::error::BuildError;
use crate::events::{Event, Listener};
use crate::manager::Manager;
use crate::pool::{Handle, Pool};
use crate::shared::Shared;

/// Configures and builds a [`Pool`]. Made by [`Pool::builder`].
#[must_use = "a builder does nothing until built"]
pub struct Builder<M: Manager> {
    manager: M,
    config: Config,
    listeners: Vec<Listener>,
    after_connect: Option<crate::shared::AfterConnect<M>>,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $t:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $t) -> Self {
            self.config.$name = value;
            self
        }
    };
}

impl<M: Manager> Builder<M> {
    pub(crate) fn new(manager: M) -> Self {
        Builder {
            manager,
            config: Config::default(),
            listeners: Vec::new(),
            after_connect: None,
        }
    }

    /// Replaces the whole configuration (for example one read from a file).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Names the pool: the `pool.name` label in logs, metrics and health
    /// reports. Defaults to the manager's [`describe`](Manager::describe)
    /// (its target without credentials).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = Some(name.into());
        self
    }

    setter!(
        /// Connections kept open even when idle. Defaults to 0.
        min_size: u32
    );
    setter!(
        /// Hard limit on open connections. Defaults to 10.
        max_size: u32
    );
    setter!(
        /// Connections opened at build time. Defaults to 0.
        initial_size: u32
    );
    setter!(
        /// Longest `get()` waits, connection creation included. Defaults to 30 s.
        acquire_timeout: Duration
    );
    setter!(
        /// Longest one connection attempt may take. Defaults to 10 s.
        connect_timeout: Duration
    );
    setter!(
        /// Longest a validation may take. Defaults to 5 s.
        validation_timeout: Duration
    );
    setter!(
        /// Longest cleaning a returned connection may take. Defaults to 5 s.
        reset_timeout: Duration
    );
    setter!(
        /// Idle connections above `min_size` close after this long; `None`
        /// keeps them. Defaults to 10 min.
        idle_timeout: Option<Duration>
    );
    setter!(
        /// Connections retire after about this long (minus up to
        /// `max_lifetime_jitter` of it); `None` keeps them. Defaults to 30 min.
        max_lifetime: Option<Duration>
    );
    setter!(
        /// Width of the lifetime window as a fraction of `max_lifetime`,
        /// 0.1 to 0.5. Defaults to 0.1.
        max_lifetime_jitter: f64
    );
    setter!(
        /// Validate before handing out, unless used or validated within
        /// `validation_interval`. Defaults to true.
        test_on_borrow: bool
    );
    setter!(
        /// Recent use or validation that excuses the check on borrow; zero
        /// checks every borrow. Defaults to 500 ms.
        validation_interval: Duration
    );
    setter!(
        /// Ping idle connections not checked for this long; `None`
        /// disables it. Defaults to 30 s.
        health_check_interval: Option<Duration>
    );
    setter!(
        /// How often the maintenance task runs. Defaults to 1 s.
        maintenance_interval: Duration
    );
    setter!(
        /// Extra connection attempts after a failure, within the acquire
        /// deadline. Defaults to 3.
        max_retries: u32
    );
    setter!(
        /// Delay before the first retry, doubled each time with jitter.
        /// Defaults to 100 ms.
        retry_delay: Duration
    );
    setter!(
        /// Cap on the delay between retries. Defaults to 5 s.
        max_retry_delay: Duration
    );
    setter!(
        /// Which idle connection a checkout takes. Defaults to LIFO.
        queue_mode: QueueMode
    );
    setter!(
        /// Report a connection held longer than this, once; `None`
        /// disables leak detection. Defaults to 5 min.
        leak_timeout: Option<Duration>
    );
    setter!(
        /// Capture the checkout backtrace for leak reports. Defaults to false.
        track_stack_trace: bool
    );
    setter!(
        /// Prefer an idle connection that has prepared the statement a
        /// checkout names ([`Pool::get_for`]). Defaults to true.
        statement_affinity: bool
    );
    setter!(
        /// Log acquires slower than this at warn; `None` disables it.
        /// Defaults to 1 s.
        slow_acquire_threshold: Option<Duration>
    );
    setter!(
        /// Keep per-shape query statistics and the slow-query log.
        /// Defaults to true.
        query_stats: bool
    );
    setter!(
        /// Log queries slower than this at warn (target
        /// `tidepool::slow_query`), once per shape per minute; `None`
        /// disables it. Defaults to 150 ms.
        slow_query_threshold: Option<Duration>
    );
    setter!(
        /// Put parameter values in slow-query log lines (they may hold
        /// personal data). Defaults to false.
        log_query_parameters: bool
    );

    /// Sizes the pool with a preset of the scaling knobs (see
    /// [`Strategy`](crate::Strategy) and the core README's tables).
    /// Replaces any scaling knobs set before; set individual knobs after
    /// it with [`scaling`](Builder::scaling). Defaults to
    /// [`Strategy::Fixed`](crate::Strategy::Fixed).
    pub fn strategy(mut self, strategy: crate::Strategy) -> Self {
        self.config.scaling = crate::ScalingConfig::preset(strategy);
        self
    }

    /// Sets every scaling knob (start from
    /// [`ScalingConfig::preset`](crate::ScalingConfig::preset)). Defaults
    /// to the `fixed` preset.
    pub fn scaling(mut self, scaling: crate::ScalingConfig) -> Self {
        self.config.scaling = scaling;
        self
    }

    /// Sets the circuit breaker;
    /// [`BreakerConfig::disabled`](crate::BreakerConfig::disabled) turns it
    /// off. Defaults to
    /// [`BreakerConfig::default`](crate::BreakerConfig::default).
    pub fn circuit_breaker(mut self, breaker: crate::BreakerConfig) -> Self {
        self.config.breaker = breaker;
        self
    }

    /// Runs `hook` on every new connection before it is handed out or
    /// pooled — deadpool's `post_create`, sqlx's `after_connect`,
    /// HikariCP's `connectionInitSql`: session settings, `SET ROLE`,
    /// statements every borrower expects prepared. It runs inside
    /// `connect_timeout`; an error fails the connection attempt like a
    /// connect error (classified by the manager, so a bad statement in the
    /// hook fails acquires at once with its cause). Defaults to none.
    ///
    /// ```
    /// # use tidepool::{Manager, Pool};
    /// # struct M;
    /// # impl Manager for M {
    /// #     type Connection = Vec<&'static str>;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> std::io::Result<Vec<&'static str>> { Ok(Vec::new()) }
    /// #     async fn validate(&self, _: &mut Vec<&'static str>) -> std::io::Result<()> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = Pool::builder(M)
    ///     .after_connect(|conn| {
    ///         Box::pin(async move {
    ///             conn.push("SET statement_timeout = '5s'"); // a real driver runs it
    ///             Ok(())
    ///         })
    ///     })
    ///     .build()
    ///     .await?;
    /// assert_eq!(*pool.get().await?, ["SET statement_timeout = '5s'"]);
    /// # Ok(()) }
    /// ```
    pub fn after_connect<F>(mut self, hook: F) -> Self
    where
        F: for<'c> Fn(&'c mut M::Connection) -> crate::BoxFuture<'c, Result<(), M::Error>>
            + Send
            + Sync
            + 'static,
    {
        self.after_connect = Some(Arc::new(hook));
        self
    }

    /// Calls `listener` for every [`Event`]. It runs inline on the pool's
    /// paths: keep it quick. Defaults to none.
    pub fn on_event(mut self, listener: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    fn assemble(
        self,
        runtime: RuntimeHandle,
        owned: Option<crate::blocking::OwnedRuntime>,
    ) -> Result<Pool<M>, BuildError> {
        self.config.validate()?;
        let mut shared = Shared::new(self.manager, self.config, self.listeners, runtime);
        shared.after_connect = self.after_connect;
        let shared = Arc::new(shared);
        crate::maintenance::spawn(&shared);
        crate::waiters::spawn_sweeper(&shared);
        Ok(Pool {
            handle: Arc::new(Handle {
                shared,
                _runtime: owned,
            }),
        })
    }

    /// Builds the pool and opens `initial_size` connections before
    /// returning; if one cannot be opened the error names the cause.
    /// Must run inside a tokio runtime.
    pub async fn build(self) -> Result<Pool<M>, BuildError> {
        let runtime = RuntimeHandle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let initial = self.config.initial_size;
        let pool = self.assemble(runtime, None)?;
        pool.shared()
            .warm_up(initial as usize)
            .await
            .map_err(BuildError::WarmUp)?;
        Ok(pool)
    }

    /// Builds the pool and returns at once; `initial_size` connections are
    /// opened in the background. Succeeds while the database is down.
    /// Must be called inside a tokio runtime.
    pub fn build_lazy(self) -> Result<Pool<M>, BuildError> {
        let runtime = RuntimeHandle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let initial = self.config.initial_size as usize;
        let pool = self.assemble(runtime, None)?;
        if initial > 0 {
            let weak = Arc::downgrade(pool.shared());
            pool.shared().runtime.spawn(async move {
                if let Some(shared) = weak.upgrade() {
                    if let Err(e) = shared.warm_up(initial).await {
                        tracing::warn!(target: "tidepool::pool", error = %e, "background warm-up failed; connections will be opened on demand");
                    }
                }
            });
        }
        Ok(pool)
    }

    /// Builds a pool for plain (non-async) threads. Inside a tokio runtime
    /// it uses that runtime; outside one it starts a small runtime of its
    /// own, which lives as long as the pool. Opens `initial_size`
    /// connections before returning, like [`build`](Builder::build).
    pub fn build_blocking(self) -> Result<Pool<M>, BuildError> {
        if RuntimeHandle::try_current().is_ok() {
            return Err(BuildError::InvalidConfig {
                field: "build_blocking",
                reason: "was called inside an async runtime; use build().await there".into(),
            });
        }
        let owned = crate::blocking::OwnedRuntime::start()?;
        let handle = owned.handle();
        let initial = self.config.initial_size as usize;
        let pool = self.assemble(handle.clone(), Some(owned))?;
        let shared = pool.shared().clone();
        handle
            .block_on(async move { shared.warm_up(initial).await })
            .map_err(BuildError::WarmUp)?;
        Ok(pool)
    }
}
