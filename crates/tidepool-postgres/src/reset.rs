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
/// | `Fast` | undo what the dirty bits saw touched, else nothing | rollback, then the same | none |
/// | `Verified` | the same, else one round trip (Sync) | rollback, then the same | one round trip |
/// | `Clean` | session reset if it ran anything | rollback, then session reset | one round trip per used checkout |
///
/// `Fast` is the default: the next borrower is never inside a transaction
/// (tracked state, rollback when dirty) and never gets session state the
/// connection saw a statement change, at no cost on the common return
/// that changed none. Its dirty bits read every statement sent through the
/// connection's own methods (tidepool-sql's session detection, once per
/// text: a statement-cache hit reads it from the cache entry) and undo
/// exactly what was touched, in one batch after the rollback: `RESET ALL`
/// for `SET` and `set_config(.., false)`; `SET SESSION AUTHORIZATION
/// DEFAULT; RESET ROLE` for `SET ROLE` / `SET SESSION AUTHORIZATION`;
/// `UNLISTEN *`; `DEALLOCATE` of each SQL-level prepared statement (the
/// statement cache's own are kept); `DISCARD TEMP`; `SELECT
/// pg_advisory_unlock_all()`; `CLOSE ALL` for cursors `WITH HOLD`. A `DO`
/// block, `CALL` or native use of the client through `Deref` counts as
/// touching everything ([`CLEAN_SQL`]). What the bits cannot see: state a
/// function, procedure or trigger changes from inside a statement that
/// does not look like it (`SELECT f()` where `f` runs `SET`), and
/// sequences' `currval`; use `Clean` for code that relies on those. In
/// transaction-pooler mode neither `Fast` nor `Clean` resets the session:
/// the next statement may run on another backend, so there is no session
/// of our own to clean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResetPolicy {
    /// Roll back when the tracked state says the connection is dirty, and
    /// undo the session state the dirty bits saw touched.
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
