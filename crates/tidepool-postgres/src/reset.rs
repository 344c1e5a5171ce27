//! What happens to a connection when it comes back to the pool.
//!
//! Every policy first makes the transaction state clean: a query left in
//! flight (its future dropped) is cancelled on the server, and an open,
//! aborted or possibly-open transaction is rolled back — always with
//! `ROLLBACK` first, never running anything inside the open transaction.
//! The policies differ in what else they do.

/// How a returned connection is cleaned. Defaults to [`ResetPolicy::Fast`].
///
/// | policy | a clean connection | a dirty one | cost when clean |
/// |---|---|---|---|
/// | `Fast` | nothing | rollback | none |
/// | `Verified` | one round trip (Sync) | rollback | one round trip |
/// | `Clean` | session reset if it ran anything | rollback, then session reset | one round trip per used checkout |
///
/// `Fast` is the default: it guarantees the next borrower is never inside a
/// transaction (tracked state, rollback when dirty) at no cost on the
/// common clean return. Use `Clean` when code changes session state (`SET`,
/// `SET ROLE` or `SET SESSION AUTHORIZATION`, temporary tables, advisory
/// locks, `LISTEN`, cursors `WITH HOLD`, sequences' `currval`, `PREPARE`):
/// it runs [`CLEAN_SQL`] after the rollback. In transaction-pooler mode `Clean`
/// does only the rollback: the next statement may run on another backend,
/// so there is no session to clean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResetPolicy {
    /// Roll back only when the tracked state says the connection is dirty.
    #[default]
    Fast,
    /// Like `Fast`, plus a round trip on every return to prove the
    /// connection still answers.
    Verified,
    /// Like `Fast`, plus resetting session state ([`CLEAN_SQL`]) after any
    /// checkout that ran a statement.
    Clean,
}

/// The session reset run by [`ResetPolicy::Clean`], after the rollback and
/// never inside a transaction. It is `DISCARD ALL` minus `DISCARD PLANS`,
/// with `DEALLOCATE ALL` narrowed to the statements the borrower prepared
/// in SQL (`PREPARE p AS ...`): its last statement lists them
/// (`pg_prepared_statements.from_sql`), and the reset deallocates each by
/// name — a second round trip, only when there are any. The statement
/// cache's own (protocol-level) statements are kept, so the cache stays
/// valid.
pub const CLEAN_SQL: &str = "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; \
SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES; \
SELECT name FROM pg_prepared_statements WHERE from_sql";
