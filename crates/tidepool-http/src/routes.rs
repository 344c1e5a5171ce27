//! The endpoints. Each handler reads the pools and answers; bad input (an
//! unknown pool, a malformed query) is a 4xx with a JSON body saying what
//! was wrong, never a panic.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tidepool::{BreakerState, HealthStatus};

use crate::json::{CheckBody, ErrorBody, HealthBody, PoolHealth, PoolReport, ReadyBody};
use crate::pools::Pools;

/// The window `/pools` and `/health` judge when none is asked for.
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
const MIN_WINDOW: Duration = Duration::from_secs(1);
const MAX_WINDOW: Duration = Duration::from_secs(600);

#[derive(Clone)]
struct AppState {
    pools: Arc<Pools>,
    registry: Arc<Registry>,
}

pub(crate) fn router(pools: Pools) -> Router {
    let pools = Arc::new(pools);
    let state = AppState {
        registry: Arc::new(crate::export::registry(pools.clone())),
        pools,
    };
    Router::new()
        .route("/health", get(health))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/pools", get(list))
        // A catch-all, so a name holding `/` (a pool named by its target,
        // `postgres://app@db:5432/orders`) works raw or percent-encoded.
        // `POST /pools/{name}/check` shares the catch-all: the handler
        // takes the `/check` off the end (a pool named `a/check` is checked
        // at `/pools/a/check/check`).
        .route("/pools/{*name}", get(one).post(check))
        .route("/dashboard", get(dashboard))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>, known: Option<Vec<String>>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
            known_pools: known,
        }),
    )
        .into_response()
}

/// The query parameters every reading endpoint takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// How far back to judge: a human duration, 1s to 10m.
    window: Option<String>,
    /// Whether `/pools` lists each connection: true or false.
    connections: Option<String>,
}

struct Parsed {
    window: Duration,
    connections: bool,
}

/// A 400, with what was wrong.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, self.0, None)
    }
}

fn parse(query: Result<Query<Params>, QueryRejection>) -> Result<Parsed, BadRequest> {
    let bad = BadRequest;
    let Query(p) = query.map_err(|e| {
        bad(format!(
            "{}; the parameters are window (a duration such as 30s, 1s to 10m) and connections (true or false)",
            e.body_text()
        ))
    })?;
    let window = match p.window.as_deref() {
        None => DEFAULT_WINDOW,
        Some(text) => {
            let w = humantime::parse_duration(text.trim()).map_err(|e| {
                bad(format!(
                    "window `{}` is not a duration ({e}); write it like 30s or 5m",
                    clip(text)
                ))
            })?;
            if !(MIN_WINDOW..=MAX_WINDOW).contains(&w) {
                return Err(bad(format!(
                    "window `{}` is out of range; it must be between 1s and 10m",
                    clip(text)
                )));
            }
            w
        }
    };
    let connections = match p.connections.as_deref() {
        None | Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        Some(other) => {
            return Err(bad(format!(
                "connections `{}` is not true or false",
                clip(other)
            )))
        }
    };
    Ok(Parsed {
        window,
        connections,
    })
}

/// Echoes at most 64 characters of user input.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

async fn health(
    State(state): State<AppState>,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    let p = match parse(query) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let pools: Vec<PoolHealth> = state
        .pools
        .entries()
        .iter()
        .map(|e| PoolHealth {
            name: e.name.clone(),
            report: e.health(p.window).2,
        })
        .collect();
    let worst = pools
        .iter()
        .map(|p| p.report.status)
        .max()
        .unwrap_or(HealthStatus::Healthy);
    let score = pools.iter().map(|p| p.report.score).min().unwrap_or(100);
    let code = if worst == HealthStatus::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        Json(HealthBody {
            status: worst.as_str(),
            score,
            pools,
        }),
    )
        .into_response()
}

async fn ready(State(state): State<AppState>) -> Response {
    let not_ready: Vec<String> = state
        .pools
        .entries()
        .iter()
        .filter_map(|e| {
            if e.pool.is_closed() {
                Some(format!("{}: the pool is closed", e.name))
            } else {
                match e.pool.breaker_state() {
                    BreakerState::Failed => Some(format!(
                        "{}: the circuit is open (the database is down or unreachable)",
                        e.name
                    )),
                    BreakerState::HalfOpen => Some(format!(
                        "{}: the circuit is half-open (probing whether the database is back)",
                        e.name
                    )),
                    _ => None,
                }
            }
        })
        .collect();
    let code = if not_ready.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(ReadyBody {
            ready: not_ready.is_empty(),
            not_ready,
        }),
    )
        .into_response()
}

/// OpenMetrics for scrapers that accept it (Prometheus says so in its
/// Accept header), the classic text format for everyone else.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    match crate::export::render(&state.registry) {
        Ok(text) if openmetrics => {
            ([(header::CONTENT_TYPE, crate::export::CONTENT_TYPE)], text).into_response()
        }
        Ok(text) => (
            [(header::CONTENT_TYPE, crate::export::CLASSIC_CONTENT_TYPE)],
            crate::export::classic(&text),
        )
            .into_response(),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding the metrics failed",
            None,
        ),
    }
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    let p = match parse(query) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let reports: Vec<PoolReport> = state
        .pools
        .entries()
        .iter()
        .map(|e| PoolReport::of(e, p.window, p.connections, state.pools.query_limit))
        .collect();
    Json(reports).into_response()
}

async fn one(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    let p = match parse(query) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    match state.pools.get(&name) {
        Some(e) => Json(PoolReport::of(
            &e,
            p.window,
            p.connections,
            state.pools.query_limit,
        ))
        .into_response(),
        None if name
            .strip_suffix("/check")
            .is_some_and(|n| state.pools.get(n).is_some()) =>
        {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("`/pools/{}` checks the pool now: use POST", clip(&name)),
                None,
            )
        }
        None => error(
            StatusCode::NOT_FOUND,
            format!("no pool named `{}`", clip(&name)),
            Some(state.pools.names()),
        ),
    }
}

/// `POST /pools/{name}/check`: pings the pool's idle connections now. One
/// check per pool runs at a time; a second request waits for the first
/// and then runs its own.
async fn check(State(state): State<AppState>, Path(path): Path<String>) -> Response {
    let Some(name) = path.strip_suffix("/check") else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "POST `/pools/{}` is not an action; to check a pool now, POST /pools/{{name}}/check",
                clip(&path)
            ),
            Some(state.pools.names()),
        );
    };
    let Some(entry) = state.pools.get(name) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no pool named `{}`", clip(name)),
            Some(state.pools.names()),
        );
    };
    let _one_at_a_time = entry.checking.lock().await;
    let started = std::time::Instant::now();
    let result = entry.pool.check_health().await;
    Json(CheckBody::of(entry.name.clone(), result, started.elapsed())).into_response()
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}
