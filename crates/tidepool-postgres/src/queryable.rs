//! The uniform query face on [`PgConnection`]: [`tidepool::Queryable`] with
//! [`Value`] parameters converted to each statement's declared parameter
//! types (see `params`) and rows read into [`Row`]s (see `rows`). Every call
//! goes through the connection's tracking, so transaction state and
//! in-flight queries are always known.

use tidepool::{Queryable, Row, Value};
use tokio_postgres::types::{ToSql, Type};

use crate::connection::PgConnection;
use crate::error::PgError;
use crate::params;
use crate::rows;
use crate::txstate::{statement_effect, Effect};

impl PgConnection {
    async fn rows_inner(
        &self,
        sql: &str,
        values: &[Value],
    ) -> Result<Vec<tokio_postgres::Row>, PgError> {
        if self.is_transaction_pooler() {
            let typed = params::self_typed(values)?;
            let refs: Vec<(&(dyn ToSql + Sync), Type)> = typed
                .iter()
                .map(|(p, t)| (p as &(dyn ToSql + Sync), t.clone()))
                .collect();
            return self.typed_rows(sql, &refs).await;
        }
        let stmt = self.tracked().statement(sql).await?;
        let ps = params::for_declared(values, stmt.params())?;
        let refs: Vec<&(dyn ToSql + Sync)> = ps.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        Ok(self.raw().query(&stmt, &refs).await?)
    }

    async fn execute_inner(&self, sql: &str, values: &[Value]) -> Result<u64, PgError> {
        if self.is_transaction_pooler() {
            let typed = params::self_typed(values)?;
            let refs: Vec<(&(dyn ToSql + Sync), Type)> = typed
                .iter()
                .map(|(p, t)| (p as &(dyn ToSql + Sync), t.clone()))
                .collect();
            return Ok(self.raw().execute_typed(sql, &refs).await?);
        }
        let stmt = self.tracked().statement(sql).await?;
        let ps = params::for_declared(values, stmt.params())?;
        let refs: Vec<&(dyn ToSql + Sync)> = ps.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        Ok(self.raw().execute(&stmt, &refs).await?)
    }

    async fn control(&self, sql: &'static str, effect: Effect) -> Result<(), PgError> {
        let round = self.start()?;
        let result = self.raw().batch_execute(sql).await.map_err(PgError::from);
        self.finish(round, effect, sql, result)
    }
}

impl Queryable for PgConnection {
    type Error = PgError;

    async fn execute_values(&mut self, sql: &str, params: &[Value]) -> Result<u64, PgError> {
        let round = self.start()?;
        let result = self.execute_inner(sql, params).await;
        self.finish(round, statement_effect(sql), sql, result)
    }

    async fn query_values(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, PgError> {
        let round = self.start()?;
        let result = self.rows_inner(sql, params).await;
        let rows = self.finish(round, statement_effect(sql), sql, result)?;
        rows::convert(rows)
    }

    async fn query_one_values(&mut self, sql: &str, params: &[Value]) -> Result<Row, PgError> {
        let mut rows = self.query_values(sql, params).await?;
        match rows.len() {
            1 => rows.pop().ok_or(PgError::RowCount {
                expected: "exactly one",
                got: 0,
            }),
            got => Err(PgError::RowCount {
                expected: "exactly one",
                got,
            }),
        }
    }

    async fn begin(&mut self) -> Result<(), PgError> {
        self.control("BEGIN", Effect::Begin).await
    }

    async fn commit(&mut self) -> Result<(), PgError> {
        self.control("COMMIT", Effect::End).await
    }

    async fn rollback(&mut self) -> Result<(), PgError> {
        let result = self.control("ROLLBACK", Effect::End).await;
        if result.is_err() && !self.is_broken() {
            // A failed ROLLBACK leaves the state unknown; the pool resets or
            // discards the connection on return.
            self.set_state(crate::TxState::Unknown);
        }
        result
    }

    fn in_transaction(&self) -> bool {
        self.tx_state().is_dirty()
    }
}
