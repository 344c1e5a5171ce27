//! The tuned side's read path on PostgreSQL: the workload's reads (single
//! autocommit `SELECT`s, no session state) go through tidepool-postgres'
//! [`Multiplexer`], which pipelines them over a few connections checked
//! out of the same pool, while writes and transactions check out a
//! connection of their own as before. The other drivers have no
//! multiplexer: their managers take the default, no shared path.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tidepool::{FailureKind, Manager, Pool};
use tidepool_postgres::{MultiplexConfig, Multiplexer, PgManager};

/// A read sent without a checkout of its own.
pub trait ReadPath: Send + Sync {
    /// Runs `sql` with the user id as its one parameter, rows discarded.
    fn read<'a>(
        &'a self,
        sql: &'a str,
        user: i64,
    ) -> Pin<Box<dyn Future<Output = Result<(), FailureKind>> + Send + 'a>>;

    /// Gives back every connection held for reads (at the end of a run,
    /// before the pool closes).
    fn release(&self);
}

/// A manager whose connections reads can share.
pub trait SharesReads: Manager + Sized {
    /// A shared read path over `pool` using at most `connections` of its
    /// connections, or `None` when this driver cannot share them.
    fn shared_reads(_pool: &Pool<Self>, _connections: usize) -> Option<Arc<dyn ReadPath>> {
        None
    }
}

impl SharesReads for tidepool_sqlite::SqliteManager {}
impl SharesReads for tidepool_mysql::MysqlManager {}

impl SharesReads for PgManager {
    fn shared_reads(pool: &Pool<Self>, connections: usize) -> Option<Arc<dyn ReadPath>> {
        let config = MultiplexConfig::default().connections(connections.max(1));
        Multiplexer::new(pool.clone(), config)
            .ok()
            .map(|m| Arc::new(PgReads(m)) as Arc<dyn ReadPath>)
    }
}

struct PgReads(Multiplexer);

impl ReadPath for PgReads {
    fn read<'a>(
        &'a self,
        sql: &'a str,
        user: i64,
    ) -> Pin<Box<dyn Future<Output = Result<(), FailureKind>> + Send + 'a>> {
        Box::pin(async move {
            self.0
                .query(sql, &[&user])
                .await
                .map(drop)
                .map_err(|e| e.failure_kind())
        })
    }

    fn release(&self) {
        self.0.release();
    }
}

/// How many of a pool's connections the tuned side lends to shared reads:
/// a quarter of `max_size`, at least one and at most two. A server runs
/// one connection's statements one after another, so a shared connection
/// carries at most one server core's worth of reads however deep its
/// pipeline; two carry more reads than this workload's clients send, and
/// every connection lent to reads is one fewer for the writes and
/// transactions, which need one each.
pub fn lanes_for(max_size: u32) -> usize {
    ((max_size / 4) as usize).clamp(1, 2)
}

#[cfg(test)]
mod tests {
    use super::lanes_for;

    #[test]
    fn reads_get_a_quarter_of_the_pool_between_one_and_two_connections() {
        assert_eq!(lanes_for(1), 1);
        assert_eq!(lanes_for(5), 1);
        assert_eq!(lanes_for(8), 2);
        assert_eq!(lanes_for(50), 2);
    }
}
