//! The seam between the engine and its sibling modules: fact extraction (`crate::sql`,
//! `crate::shell`), redaction (`crate::redact`) and fingerprints (`crate::fingerprint`).
//! Everything the engine calls from them goes through here, so a change of their signatures
//! touches one file.
use crate::shell::ShellLineFacts;
use crate::sql::{SqlMessageFacts, SqlSession};

pub use crate::shell::ShellLimits;
pub use crate::sql::SqlLimits;

/// Facts for one SQL message.
pub(crate) fn sql_facts(
    text: &str,
    session: &mut SqlSession,
    limits: &SqlLimits,
) -> SqlMessageFacts {
    crate::sql::extract(text, session, limits)
}

/// Facts for one shell line.
pub(crate) fn shell_facts(line: &str, limits: &ShellLimits) -> ShellLineFacts {
    crate::shell::extract(line, limits)
}

/// SQL text with secrets redacted.
pub(crate) fn redact_sql(text: &str) -> String {
    crate::redact::redact_sql(text)
}

/// A shell line with secrets redacted.
pub(crate) fn redact_shell(line: &str) -> String {
    crate::redact::redact_shell(line)
}

/// Fingerprint of a SQL message (literals replaced, whitespace and case normalised).
pub(crate) fn fingerprint_sql(text: &str) -> String {
    crate::fingerprint::fingerprint_sql(text)
}
