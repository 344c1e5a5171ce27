//! What a check reports: a status, a one-line detail and, when something
//! needs attention, what to do; and the printed list with its verdict.

use std::fmt::Write;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Info,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Info => "info",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }

    fn needs_attention(self) -> bool {
        matches!(self, Status::Warn | Status::Fail)
    }
}

/// One finding.
#[derive(Debug, Clone)]
pub struct Finding {
    pub status: Status,
    pub check: &'static str,
    pub detail: String,
    pub advice: Option<String>,
}

impl Finding {
    pub fn new(status: Status, check: &'static str, detail: impl Into<String>) -> Self {
        Finding {
            status,
            check,
            detail: detail.into(),
            advice: None,
        }
    }

    /// The same, with what to do about it.
    pub fn advise(mut self, advice: impl Into<String>) -> Self {
        self.advice = Some(advice.into());
        self
    }
}

/// Renders the findings under a title line, ending with the verdict.
pub fn render(shown: &str, findings: &[Finding]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "tidepool doctor: {shown}");
    for finding in findings {
        let _ = writeln!(
            out,
            "  {:<5} {:<9} {}",
            finding.status.label(),
            finding.check,
            finding.detail
        );
        if let Some(a) = &finding.advice {
            let _ = writeln!(out, "  {:<5} {:<9} -> {a}", "", "");
        }
    }
    let attention = attention(findings);
    if attention == 0 {
        let _ = writeln!(out, "all good");
    } else {
        let _ = writeln!(out, "{attention} finding(s) need attention");
    }
    out
}

/// How many findings are warnings or failures.
pub fn attention(findings: &[Finding]) -> usize {
    findings
        .iter()
        .filter(|f| f.status.needs_attention())
        .count()
}
