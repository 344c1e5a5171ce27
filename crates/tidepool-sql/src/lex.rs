//! From SQL text to the canonical token stream every other module reads:
//! sqlparser's tokenizer does the lexing (strings, E-strings, dollar
//! quotes, nested comments, quoted identifiers, placeholders, per dialect);
//! this module drops whitespace and comments, lower-cases unquoted words,
//! folds literals (with a leading unary minus) into one token, keeps
//! placeholders and positional `ORDER BY` / `GROUP BY` numbers, and turns a
//! tokenizer error into a documented lossy tail instead of a failure.
//!
//! It must never panic on any input, and its output is at most a small
//! multiple of the input's length.

use sqlparser::tokenizer::{Token, Tokenizer, Word};

use crate::Dialect;

/// What kind of literal was folded (the text is gone; the kind is kept for
/// the classifiers, e.g. `set_config(.., .., false)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lit {
    Number,
    String,
    True,
    False,
    Null,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An unquoted word (keyword or identifier), lower-cased.
    Word(String),
    /// A quoted identifier that cannot be written unquoted, as its content.
    Quoted(String),
    /// A folded literal, rendered `?`.
    Lit(Lit),
    /// A placeholder as written: `$1`, `?`, `?3`, `:name`, `@name`.
    Param(String),
    /// Punctuation or an operator, in canonical spelling.
    Punct(&'static str),
    /// Any other operator, as sqlparser spells it.
    Op(String),
    /// A folded list, rendered `...`.
    Folded,
    /// The rest of a statement the tokenizer could not read.
    Unparsed,
}

impl Tok {
    pub(crate) fn is_word(&self, w: &str) -> bool {
        matches!(self, Tok::Word(x) if x == w)
    }

    pub(crate) fn is_punct(&self, p: &str) -> bool {
        matches!(self, Tok::Punct(x) if *x == p)
    }
}

/// Words after which an expression starts, so a `-` that follows them is a
/// sign, not a subtraction (sqlparser's keyword list is no help here: it
/// counts `id`, `name` and `value` as keywords).
const EXPRESSION_STARTERS: &[&str] = &[
    "all",
    "and",
    "any",
    "between",
    "by",
    "case",
    "default",
    "distinct",
    "do",
    "else",
    "escape",
    "having",
    "ilike",
    "in",
    "is",
    "like",
    "limit",
    "not",
    "offset",
    "on",
    "or",
    "return",
    "returning",
    "select",
    "set",
    "similar",
    "some",
    "then",
    "to",
    "values",
    "when",
    "where",
    "with",
];

/// Words that end an `ORDER BY` / `GROUP BY` list at their depth.
const CLAUSE_WORDS: &[&str] = &[
    "except",
    "fetch",
    "for",
    "from",
    "having",
    "intersect",
    "into",
    "limit",
    "offset",
    "on",
    "returning",
    "select",
    "union",
    "where",
    "window",
];

pub(crate) fn sqlparser_dialect(dialect: Dialect) -> &'static dyn sqlparser::dialect::Dialect {
    use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect, SQLiteDialect};
    match dialect {
        Dialect::Postgres => &PostgreSqlDialect {},
        Dialect::MySql => &MySqlDialect {},
        Dialect::Sqlite => &SQLiteDialect {},
    }
}

/// Lexes `sql` into canonical tokens. A tokenizer error (an unterminated
/// string, quoted identifier or comment) keeps the tokens read before the
/// offending one and ends the stream with [`Tok::Unparsed`].
pub(crate) fn lex(sql: &str, dialect: Dialect) -> Vec<Tok> {
    let mut raw = Vec::new();
    // The tokenizer pushes each token as it reads it, so on an error the
    // buffer holds everything before the unreadable token.
    let outcome =
        Tokenizer::new(sqlparser_dialect(dialect), sql).tokenize_with_location_into_buf(&mut raw);
    let mut toks = convert(raw.into_iter().map(|t| t.token), dialect);
    if outcome.is_err() {
        toks.push(Tok::Unparsed);
    }
    toks
}

fn is_operand(tok: Option<&Tok>) -> bool {
    match tok {
        Some(Tok::Word(w)) => !EXPRESSION_STARTERS.contains(&w.as_str()),
        Some(Tok::Quoted(_) | Tok::Lit(_) | Tok::Param(_)) => true,
        Some(Tok::Punct(p)) => *p == ")" || *p == "]",
        _ => false,
    }
}

/// PostgreSQL's reserved words (those that cannot name a column unquoted),
/// sorted: a quoted identifier spelling one of them stays quoted.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// Whether a quoted identifier means the same as the same text unquoted
/// (`"users"` is `users`; `"Users"` and `"user"` are not).
fn unquotable(value: &str) -> bool {
    let mut chars = value.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && RESERVED.binary_search(&value).is_err()
}

fn punct(token: &Token) -> Option<&'static str> {
    Some(match token {
        Token::Comma => ",",
        Token::Eq | Token::DoubleEq => "=",
        Token::Neq => "<>",
        Token::Lt => "<",
        Token::Gt => ">",
        Token::LtEq => "<=",
        Token::GtEq => ">=",
        Token::Plus => "+",
        Token::Minus => "-",
        Token::Mul => "*",
        Token::Div => "/",
        Token::Mod => "%",
        Token::StringConcat => "||",
        Token::LParen => "(",
        Token::RParen => ")",
        Token::Period => ".",
        Token::Colon => ":",
        Token::DoubleColon => "::",
        Token::SemiColon => ";",
        Token::LBracket => "[",
        Token::RBracket => "]",
        Token::Assignment => ":=",
        Token::Arrow => "->",
        Token::LongArrow => "->>",
        Token::Question => "?",
        _ => return None,
    })
}

struct Lexer {
    out: Vec<Tok>,
    /// Per open parenthesis (and the top level): inside an `ORDER BY` /
    /// `GROUP BY` list at that depth.
    by_list: Vec<bool>,
    brackets: usize,
}

impl Lexer {
    fn by_list(&mut self) -> &mut bool {
        if self.by_list.is_empty() {
            self.by_list.push(false);
        }
        let last = self.by_list.len() - 1;
        &mut self.by_list[last]
    }

    fn word(&mut self, mut value: String) {
        value.make_ascii_lowercase();
        if value.bytes().any(|b| b >= 0x80) {
            value = value.to_lowercase();
        }
        let prev = self.out.last();
        let after_is = prev.is_some_and(|t| t.is_word("is"))
            || (prev.is_some_and(|t| t.is_word("not"))
                && self
                    .out
                    .len()
                    .checked_sub(2)
                    .is_some_and(|i| self.out[i].is_word("is")));
        let lit = match value.as_str() {
            "true" if !after_is => Some(Lit::True),
            "false" if !after_is => Some(Lit::False),
            // `NOT NULL` is a constraint or a test, never a value.
            "null" if !after_is && !prev.is_some_and(|t| t.is_word("not")) => Some(Lit::Null),
            _ => None,
        };
        if let Some(lit) = lit {
            self.literal(lit, false);
            return;
        }
        if value == "by" && prev.is_some_and(|t| t.is_word("order") || t.is_word("group")) {
            *self.by_list() = true;
        } else if CLAUSE_WORDS.contains(&value.as_str()) {
            *self.by_list() = false;
        }
        self.out.push(Tok::Word(value));
    }

    /// Pushes a literal, taking a sign in front of it along — unless a cast
    /// follows: `-5::int` is `-(5::int)`, a minus applied to a cast.
    fn literal(&mut self, lit: Lit, cast_follows: bool) {
        let n = self.out.len();
        if lit == Lit::Number
            && !cast_follows
            && self.out.last().is_some_and(|t| t.is_punct("-"))
            && !is_operand(n.checked_sub(2).map(|i| &self.out[i]))
        {
            self.out.pop();
        }
        self.out.push(Tok::Lit(lit));
    }

    fn number(&mut self, text: String, next: Option<&Token>) {
        let in_by_list = *self.by_list();
        let prev = self.out.last();
        let positional = in_by_list
            && prev.is_some_and(|t| t.is_word("by") || t.is_punct(","))
            && text.bytes().all(|b| b.is_ascii_digit())
            && matches!(
                next,
                None | Some(Token::Comma | Token::RParen | Token::SemiColon | Token::Word(_))
            );
        if positional {
            // `ORDER BY 2` names the second output column: part of the shape.
            self.out.push(Tok::Word(text));
        } else {
            self.literal(Lit::Number, matches!(next, Some(Token::DoubleColon)));
        }
    }

    fn punct(&mut self, p: &'static str) {
        match p {
            "(" => self.by_list.push(false),
            ")" => {
                self.by_list.pop();
            }
            "[" => self.brackets += 1,
            "]" => self.brackets = self.brackets.saturating_sub(1),
            _ => {}
        }
        self.out.push(Tok::Punct(p));
    }
}

fn convert(raw: impl ExactSizeIterator<Item = Token>, dialect: Dialect) -> Vec<Tok> {
    let mut lx = Lexer {
        out: Vec::with_capacity(raw.len()),
        by_list: vec![false],
        brackets: 0,
    };
    let mut it = raw.peekable();
    while let Some(token) = it.next() {
        if let Some(p) = punct(&token) {
            // `:name` written together is a named placeholder (outside an
            // array slice `a[1:n]`), as is SQLite's `@name`.
            let named = (p == ":" && lx.brackets == 0)
                || (dialect == Dialect::Sqlite && matches!(token, Token::AtSign));
            if named {
                if let Some(Token::Word(Word {
                    quote_style: None, ..
                })) = it.peek()
                {
                    if let Some(Token::Word(w)) = it.next() {
                        lx.out.push(Tok::Param(format!("{p}{}", w.value)));
                        continue;
                    }
                }
            }
            lx.punct(p);
            continue;
        }
        match token {
            Token::Whitespace(_) | Token::EOF => {}
            Token::AtSign if dialect == Dialect::Sqlite => {
                if let Some(Token::Word(Word {
                    quote_style: None, ..
                })) = it.peek()
                {
                    if let Some(Token::Word(w)) = it.next() {
                        lx.out.push(Tok::Param(format!("@{}", w.value)));
                        continue;
                    }
                }
                lx.out.push(Tok::Op("@".into()));
            }
            Token::Word(w) => match w.quote_style {
                None => lx.word(w.value),
                Some(_) if unquotable(&w.value) => lx.word(w.value),
                Some(_) => lx.out.push(Tok::Quoted(w.value)),
            },
            Token::Number(text, _) => {
                let next = loop {
                    match it.peek() {
                        Some(Token::Whitespace(_)) => {
                            it.next();
                        }
                        other => break other,
                    }
                };
                lx.number(text, next);
            }
            Token::Placeholder(p) => lx.out.push(Tok::Param(p)),
            Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::TripleSingleQuotedByteStringLiteral(_)
            | Token::TripleDoubleQuotedByteStringLiteral(_)
            | Token::SingleQuotedRawStringLiteral(_)
            | Token::DoubleQuotedRawStringLiteral(_)
            | Token::TripleSingleQuotedRawStringLiteral(_)
            | Token::TripleDoubleQuotedRawStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::QuoteDelimitedStringLiteral(_)
            | Token::NationalQuoteDelimitedStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            // A `COPY .. FROM STDIN` payload is data, never shape.
            | Token::CopyData { .. } => lx.literal(Lit::String, false),
            other => lx.out.push(Tok::Op(other.to_string())),
        }
    }
    lx.out
}
