//! The shape of a statement: folds lists whose length is data (`IN (...)`,
//! `ARRAY[...]`, the rows of `VALUES`), renders the canonical tokens with
//! deterministic spacing, and hashes that text into the fingerprint's id.
//!
//! Every step is linear in the number of tokens (parentheses are matched
//! once, up front) and recursion is capped, so hostile input costs time
//! and memory in proportion to its length and no more.

use crate::lex::Tok;

/// Deeper `VALUES` rows than this are copied, not folded: a cap on
/// recursion, far past anything a real statement nests.
const MAX_DEPTH: usize = 16;

/// Words after which `(` opens a list or subquery rather than a call's
/// arguments; rendered with a space before the parenthesis.
const PAREN_SPACED: &[&str] = &[
    "all",
    "and",
    "any",
    "as",
    "between",
    "by",
    "else",
    "exists",
    "filter",
    "from",
    "in",
    "is",
    "join",
    "like",
    "not",
    "on",
    "or",
    "over",
    "returning",
    "select",
    "set",
    "some",
    "then",
    "union",
    "using",
    "values",
    "when",
    "where",
    "with",
];

/// For each `(` or `[`, the index of its partner (and back); `usize::MAX`
/// when unbalanced.
fn partners(toks: &[Tok]) -> Vec<usize> {
    let mut partner = vec![usize::MAX; toks.len()];
    let mut stack: Vec<usize> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct("(" | "[") => stack.push(i),
            Tok::Punct(close @ (")" | "]")) => {
                // Only a partner of the same kind closes; a stray closer is
                // left unmatched rather than unwinding the stack.
                let open = if *close == ")" { "(" } else { "[" };
                if let Some(&top) = stack.last() {
                    if toks[top].is_punct(open) {
                        stack.pop();
                        partner[top] = i;
                        partner[i] = top;
                    }
                }
            }
            _ => {}
        }
    }
    partner
}

struct Folder<'a> {
    toks: &'a [Tok],
    partner: Vec<usize>,
}

impl Folder<'_> {
    fn close_of(&self, open: usize) -> Option<usize> {
        self.partner
            .get(open)
            .copied()
            .filter(|&c| c != usize::MAX && c > open)
    }

    /// Whether `toks[start..end]` is a non-empty comma-separated list of
    /// values: literals or placeholders (signed, cast), or tuples of them.
    fn simple_list(&self, start: usize, end: usize, nesting: usize) -> bool {
        // Tuples of tuples of values are real (`(a, b) IN ((1, 2))`); a
        // tower of parentheses is not, and must not recurse without end.
        if start >= end || nesting > 4 {
            return false;
        }
        let mut i = start;
        loop {
            match self.simple_element(i, end, nesting) {
                Some(next) if next == end => return true,
                Some(next) if self.toks[next].is_punct(",") => i = next + 1,
                _ => return false,
            }
        }
    }

    /// The index after one simple element starting at `i`, if there is one.
    fn simple_element(&self, mut i: usize, end: usize, nesting: usize) -> Option<usize> {
        let t = self.toks.get(i).filter(|_| i < end)?;
        if t.is_punct("(") {
            let close = self.close_of(i).filter(|&c| c < end)?;
            if !self.simple_list(i + 1, close, nesting + 1) {
                return None;
            }
            i = close + 1;
        } else {
            if t.is_punct("-") || t.is_punct("+") {
                i += 1;
            }
            match self.toks.get(i).filter(|_| i < end)? {
                Tok::Lit(_) | Tok::Param(_) => i += 1,
                _ => return None,
            }
        }
        // Casts: `::type`, `::type[]`.
        while i + 1 < end && self.toks[i].is_punct("::") {
            match &self.toks[i + 1] {
                Tok::Word(_) | Tok::Quoted(_) => i += 2,
                _ => return None,
            }
            while i + 1 < end && self.toks[i].is_punct("[") && self.toks[i + 1].is_punct("]") {
                i += 2;
            }
        }
        Some(i)
    }

    /// Whether a `VALUES` at this point lists rows (`INSERT .. VALUES`,
    /// `(VALUES ..)`), not MySQL's `VALUES(col)` function.
    fn values_lists_rows(out: &[Tok]) -> bool {
        match out.last() {
            None | Some(Tok::Word(_) | Tok::Quoted(_)) => true,
            Some(Tok::Punct(")")) => true,
            Some(Tok::Punct("(")) => match out.len().checked_sub(2).map(|i| &out[i]) {
                Some(Tok::Word(w)) => PAREN_SPACED.contains(&w.as_str()),
                Some(Tok::Quoted(_)) => false,
                _ => true,
            },
            _ => false,
        }
    }

    fn fold(&self, start: usize, end: usize, depth: usize, out: &mut Vec<Tok>) {
        let toks = self.toks;
        let mut i = start;
        while i < end {
            let t = &toks[i];
            let next_open = |p: &str| i + 1 < end && toks[i + 1].is_punct(p);
            if depth < MAX_DEPTH {
                if (t.is_word("in") && next_open("(")) || (t.is_word("array") && next_open("[")) {
                    if let Some(close) = self.close_of(i + 1).filter(|&c| c < end) {
                        if self.simple_list(i + 2, close, 0) {
                            out.extend([
                                t.clone(),
                                toks[i + 1].clone(),
                                Tok::Folded,
                                toks[close].clone(),
                            ]);
                            i = close + 1;
                            continue;
                        }
                    }
                }
                if t.is_word("values") && next_open("(") && Self::values_lists_rows(out) {
                    out.push(t.clone());
                    let mut rows = 0usize;
                    let mut last_row: Vec<Tok> = Vec::new();
                    let mut j = i + 1;
                    while j < end && toks[j].is_punct("(") {
                        let Some(close) = self.close_of(j).filter(|&c| c < end) else {
                            break;
                        };
                        let mut row = Vec::with_capacity(close + 1 - j);
                        self.fold(j, close + 1, depth + 1, &mut row);
                        // Runs of rows of one shape collapse into one.
                        if rows == 0 || !same_shape(&row, &last_row) {
                            if rows > 0 {
                                out.push(Tok::Punct(","));
                            }
                            out.extend(row.iter().cloned());
                            last_row = row;
                            rows += 1;
                        }
                        j = close + 1;
                        if j + 1 < end && toks[j].is_punct(",") && toks[j + 1].is_punct("(") {
                            j += 1;
                        } else {
                            break;
                        }
                    }
                    if rows > 0 {
                        out.extend([Tok::Punct(","), Tok::Folded]);
                    }
                    i = j.max(i + 1);
                    continue;
                }
            }
            out.push(t.clone());
            i += 1;
        }
    }
}

/// Whether two token runs render alike (a literal is a literal, whatever
/// its kind).
fn same_shape(a: &[Tok], b: &[Tok]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Tok::Lit(_), Tok::Lit(_)) => true,
            _ => x == y,
        })
}

/// Folds the lists whose length is data. Trailing semicolons go too: they
/// end a statement without changing it.
pub(crate) fn fold(toks: &[Tok]) -> Vec<Tok> {
    let mut end = toks.len();
    while end > 0 && toks[end - 1].is_punct(";") {
        end -= 1;
    }
    let toks = &toks[..end];
    let folder = Folder {
        toks,
        partner: partners(toks),
    };
    let mut out = Vec::with_capacity(toks.len());
    folder.fold(0, toks.len(), 0, &mut out);
    out
}

fn space_before(prev: &Tok, cur: &Tok) -> bool {
    if let Tok::Punct("," | ")" | "]" | "." | "::" | ";") = cur {
        return false;
    }
    if let Tok::Punct("(" | "[" | "." | "::") = prev {
        return false;
    }
    match (prev, cur) {
        (Tok::Word(w), Tok::Punct("(")) => PAREN_SPACED.contains(&w.as_str()),
        (Tok::Quoted(_) | Tok::Param(_), Tok::Punct("(")) => false,
        (Tok::Word(_) | Tok::Quoted(_) | Tok::Param(_), Tok::Punct("[")) => false,
        (Tok::Punct(")" | "]"), Tok::Punct("[")) => false,
        _ => true,
    }
}

/// Renders canonical tokens as normalized text.
pub(crate) fn render(toks: &[Tok], out: &mut String) {
    let mut prev: Option<&Tok> = None;
    for t in toks {
        if prev.is_some_and(|p| space_before(p, t)) {
            out.push(' ');
        }
        match t {
            Tok::Word(w) => out.push_str(w),
            Tok::Quoted(q) => {
                out.push('"');
                for ch in q.chars() {
                    if ch == '"' {
                        out.push('"');
                    }
                    out.push(ch);
                }
                out.push('"');
            }
            Tok::Lit(_) => out.push('?'),
            Tok::Param(p) => out.push_str(p),
            Tok::Punct(p) => out.push_str(p),
            Tok::Op(o) => out.push_str(o),
            Tok::Folded => out.push_str("..."),
            Tok::Unparsed => out.push_str("<unparsed>"),
        }
        prev = Some(t);
    }
}

const K0: u64 = 0x9E37_79B9_7F4A_7C15;
const K1: u64 = 0xD6E8_FEB8_6659_FD93;

fn mix(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// A 64-bit hash of the normalized text, fixed by this crate (no random
/// seed, no dependency's algorithm): the same text gets the same id in
/// every process, on every machine, for a given version of tidepool-sql.
pub(crate) fn hash(bytes: &[u8]) -> u64 {
    let mut h = K0 ^ (bytes.len() as u64).wrapping_mul(K1);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        h = mix(h ^ u64::from_le_bytes(word), K1);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = mix(h ^ u64::from_le_bytes(word), K1 ^ rest.len() as u64);
    }
    mix(h, K0)
}
