//! Transaction state as the wrapper tracks it, and what a statement does to
//! it. tokio-postgres does not expose the server's ReadyForQuery status, so
//! [`PgConnection`](crate::PgConnection) infers it from the statements it
//! runs. Where it cannot be sure (a multi-statement batch mentioning
//! transaction control, a failed COMMIT) the state becomes `Unknown`, which
//! counts as dirty: a needless ROLLBACK on return is cheap, a dirty
//! connection handed to the next borrower is not.

/// The tracked transaction state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TxState {
    /// No transaction open.
    Idle = 0,
    /// A transaction is open.
    Active = 1,
    /// A transaction is open and aborted by an error: only ROLLBACK works.
    Failed = 2,
    /// A transaction may be open; treated as dirty.
    Unknown = 3,
}

impl TxState {
    /// Whether a transaction is (or may be) open.
    pub fn is_dirty(self) -> bool {
        self != TxState::Idle
    }

    /// The state stored as `self as u8`; anything else reads as `Unknown`
    /// (dirty), never as clean.
    pub(crate) fn from_u8(v: u8) -> TxState {
        match v {
            0 => TxState::Idle,
            1 => TxState::Active,
            2 => TxState::Failed,
            _ => TxState::Unknown,
        }
    }
}

/// What a statement does to the transaction state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing.
    None,
    /// BEGIN / START TRANSACTION.
    Begin,
    /// COMMIT / END / ROLLBACK / ABORT / PREPARE TRANSACTION.
    End,
    /// ROLLBACK TO SAVEPOINT: leaves an aborted transaction usable.
    RollbackTo,
    /// COMMIT AND CHAIN / ROLLBACK AND CHAIN: ends one, opens the next.
    Chain,
    /// Could be anything.
    Unknown,
}

impl Effect {
    /// The state after a statement with this effect succeeded.
    pub(crate) fn after_success(self, state: TxState) -> TxState {
        match self {
            Effect::None => state,
            Effect::Begin => match state {
                TxState::Idle | TxState::Active => TxState::Active,
                other => other,
            },
            Effect::End => TxState::Idle,
            Effect::RollbackTo | Effect::Chain => match state {
                TxState::Unknown => TxState::Unknown,
                _ => TxState::Active,
            },
            Effect::Unknown => TxState::Unknown,
        }
    }

    /// The state after a statement with this effect failed on the server.
    pub(crate) fn after_error(self, state: TxState) -> TxState {
        match (self, state) {
            // An error ends nothing: an open transaction is now aborted.
            (Effect::None | Effect::Begin | Effect::RollbackTo, TxState::Active) => TxState::Failed,
            (Effect::None | Effect::Begin, s) => s,
            // A failed COMMIT or ROLLBACK usually ended the transaction, but
            // we cannot be sure.
            _ => TxState::Unknown,
        }
    }
}

/// The effect of one statement run through the extended protocol (which
/// allows only one statement).
pub(crate) fn statement_effect(sql: &str) -> Effect {
    let mut words = Words::new(sql);
    let Some(first) = words.next() else {
        return Effect::None;
    };
    // Runs on every tracked statement: compare in place, and allocate only
    // for the rare transaction-control statement.
    if !is_keyword(first, TRANSACTION_KEYWORDS) {
        return Effect::None;
    }
    match first.to_ascii_uppercase().as_str() {
        "BEGIN" | "START" => Effect::Begin,
        "COMMIT" | "END" | "ROLLBACK" | "ABORT" => {
            let rest: Vec<String> = words.take(4).map(str::to_ascii_uppercase).collect();
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            match rest.as_slice() {
                ["PREPARED", ..] => Effect::None,
                ["TO", ..] | ["WORK" | "TRANSACTION", "TO", ..] => Effect::RollbackTo,
                [.., "AND", "NO", "CHAIN"] | [.., "AND", "NO", "CHAIN", _] => Effect::End,
                r if r.windows(2).any(|w| w == ["AND", "CHAIN"]) => Effect::Chain,
                _ => Effect::End,
            }
        }
        "PREPARE" => match words.next() {
            Some(w) if w.eq_ignore_ascii_case("TRANSACTION") => Effect::End,
            _ => Effect::None,
        },
        _ => Effect::None,
    }
}

/// The effect of a simple-protocol batch, which may hold several
/// statements: any transaction keyword anywhere makes it `Unknown`.
pub(crate) fn batch_effect(sql: &str) -> Effect {
    let mut saw = false;
    for w in Words::new(sql) {
        if is_keyword(w, TRANSACTION_KEYWORDS) {
            saw = true;
            break;
        }
    }
    match (saw, sql.contains(';')) {
        (false, _) => Effect::None,
        (true, false) => statement_effect(sql),
        (true, true) => Effect::Unknown,
    }
}

/// The first words of every statement that changes the transaction state.
const TRANSACTION_KEYWORDS: &[&str] = &[
    "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "PREPARE",
];

fn is_keyword(word: &str, keywords: &[&str]) -> bool {
    keywords.iter().any(|k| word.eq_ignore_ascii_case(k))
}

/// The words of SQL text, as written, skipping comments, quoted strings and
/// identifiers. Dollar-quoted bodies are read as words, which only makes a
/// batch look more dangerous than it is (never less).
struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn new(sql: &'a str) -> Self {
        Words { rest: sql }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let s = self.rest.trim_start();
            if s.is_empty() {
                return None;
            }
            if let Some(r) = s.strip_prefix("--") {
                self.rest = r.find('\n').map_or("", |i| &r[i..]);
                continue;
            }
            if let Some(r) = s.strip_prefix("/*") {
                self.rest = r.find("*/").map_or("", |i| &r[i + 2..]);
                continue;
            }
            let c = s.chars().next()?;
            if c == '\'' || c == '"' {
                let r = &s[1..];
                self.rest = r.find(c).map_or("", |i| &r[i + 1..]);
                continue;
            }
            if c.is_alphabetic() || c == '_' {
                let end = s
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(s.len());
                self.rest = &s[end..];
                return Some(&s[..end]);
            }
            self.rest = &s[c.len_utf8()..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_keywords_decide_a_statements_effect() {
        assert_eq!(
            statement_effect("  begin isolation level serializable"),
            Effect::Begin
        );
        assert_eq!(statement_effect("/* x */ START TRANSACTION"), Effect::Begin);
        assert_eq!(statement_effect("commit"), Effect::End);
        assert_eq!(statement_effect("END"), Effect::End);
        assert_eq!(statement_effect("abort"), Effect::End);
        assert_eq!(
            statement_effect("ROLLBACK TO SAVEPOINT a"),
            Effect::RollbackTo
        );
        assert_eq!(statement_effect("rollback to a"), Effect::RollbackTo);
        assert_eq!(statement_effect("COMMIT AND CHAIN"), Effect::Chain);
        assert_eq!(statement_effect("COMMIT AND NO CHAIN"), Effect::End);
        assert_eq!(statement_effect("COMMIT PREPARED 'x'"), Effect::None);
        assert_eq!(statement_effect("PREPARE TRANSACTION 'x'"), Effect::End);
        assert_eq!(
            statement_effect("SELECT CASE WHEN true THEN 1 END"),
            Effect::None
        );
        assert_eq!(statement_effect("-- BEGIN\nSELECT 1"), Effect::None);
    }

    #[test]
    fn batches_mentioning_transaction_control_are_unknown() {
        assert_eq!(batch_effect("SET x = 1; SELECT 1"), Effect::None);
        assert_eq!(batch_effect("BEGIN"), Effect::Begin);
        assert_eq!(batch_effect("SELECT 1; BEGIN"), Effect::Unknown);
        assert_eq!(batch_effect("SELECT 'BEGIN'; SELECT 2"), Effect::None);
    }

    #[test]
    fn an_error_inside_a_transaction_aborts_it() {
        assert_eq!(Effect::None.after_error(TxState::Active), TxState::Failed);
        assert_eq!(Effect::None.after_error(TxState::Idle), TxState::Idle);
        assert_eq!(Effect::End.after_error(TxState::Active), TxState::Unknown);
        assert_eq!(
            Effect::RollbackTo.after_success(TxState::Failed),
            TxState::Active
        );
    }
}
