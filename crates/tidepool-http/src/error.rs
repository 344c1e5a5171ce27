//! The crate's one error type: what building a set of pools can be refused
//! for. Request errors (an unknown pool, a malformed query) are answered as
//! HTTP 404 / 400 with a JSON body, never as a Rust error.

/// Why a [`Pools`](crate::Pools) set could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Two pools have the same name, so `/pools/{name}` and the
    /// `pool_name` label could not tell them apart.
    #[error("two pools are named `{name}`; give one another name with Builder::name or Pools::add_named")]
    DuplicateName {
        /// The name both pools have.
        name: String,
    },
    /// A pool name that cannot be a URL path segment and a label value
    /// both.
    #[error("pool name `{name}` is not usable: {reason}")]
    BadName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A gauge given to [`Pools::gauge`](crate::Pools::gauge) that cannot
    /// be exported under its name.
    #[error("metric name `{name}` is not usable: {reason}")]
    BadMetricName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}
