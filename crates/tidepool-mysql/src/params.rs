//! PostgreSQL-style `$N` placeholders for MySQL, which only knows `?`:
//! rewrites `$N` (outside string literals, quoted identifiers and comments)
//! to `?` and reports the parameter order, so portable SQL runs unchanged.

use std::borrow::Cow;

use crate::error::MysqlError;

/// Rewrites `$N` placeholders to `?`. Returns the SQL and, when it had
/// `$N` placeholders, the one-based parameter number for each `?` in order.
///
/// ```
/// use tidepool_mysql::rewrite_dollar_placeholders;
/// let (sql, order) = rewrite_dollar_placeholders("SELECT $2, '$1', $1").unwrap();
/// assert_eq!(sql, "SELECT ?, '$1', ?");
/// assert_eq!(order, Some(vec![2, 1]));
/// let (sql, order) = rewrite_dollar_placeholders("SELECT ?").unwrap();
/// assert_eq!((sql.as_ref(), order), ("SELECT ?", None));
/// ```
pub fn rewrite_dollar_placeholders(
    sql: &str,
) -> Result<(Cow<'_, str>, Option<Vec<usize>>), MysqlError> {
    if !sql.contains('$') {
        return Ok((Cow::Borrowed(sql), None));
    }
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut order = Vec::new();
    let mut question_marks = false;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == quote {
                        // A doubled quote is an escaped quote.
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'#' => i = skip_to_line_end(bytes, i),
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = skip_to_line_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'?' => {
                question_marks = true;
                i += 1;
            }
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let n: usize = sql[start + 1..i]
                    .parse()
                    .map_err(|_| MysqlError::Parameters {
                        reason: format!("placeholder {} is too large", &sql[start..i]),
                    })?;
                if n == 0 {
                    return Err(MysqlError::Parameters {
                        reason: "placeholders are numbered from $1".into(),
                    });
                }
                out.push_str(&sql[copied..start]);
                out.push('?');
                copied = i;
                order.push(n);
            }
            _ => i += 1,
        }
    }
    if order.is_empty() {
        return Ok((Cow::Borrowed(sql), None));
    }
    if question_marks {
        return Err(MysqlError::Parameters {
            reason: "the statement mixes `?` and `$N` placeholders".into(),
        });
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    Ok((Cow::Owned(out), Some(order)))
}

fn skip_to_line_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i] != b'\n' {
        i += 1;
    }
    i
}
