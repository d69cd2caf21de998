//! Redaction of secrets in recorded SQL and shell text, before it leaves this crate. Every
//! secret is replaced by `[REDACTED]`; the text around it is kept so the trail stays readable.
//!
//! - [`redact_sql`]: `PASSWORD '...'` (CREATE/ALTER ROLE/USER), the value of `SET bastion.otp`
//!   (also via `set_config`), then [`redact_tokens`].
//! - [`redact_shell`]: `--password=x` / `--password x`, mysql `-pSECRET`, `PGPASSWORD=` and
//!   `*_TOKEN=` / `*_SECRET=` / `*_PASSWORD=` assignments, curl `Authorization:` headers and
//!   `-u user:pass`, then [`redact_tokens`].
//! - [`redact_tokens`]: secrets recognisable by their shape wherever they appear: AWS access
//!   keys, JWTs, GitHub and Slack tokens, PEM private key blocks, `password=` in connection
//!   strings and `user:pass@` in URLs.
//!
//! ```
//! use policies::redact::{redact_sql, redact_shell};
//! assert_eq!(redact_sql("ALTER ROLE bob PASSWORD 'hunter2'"), "ALTER ROLE bob PASSWORD '[REDACTED]'");
//! assert_eq!(redact_shell("PGPASSWORD=hunter2 psql"), "PGPASSWORD=[REDACTED] psql");
//! ```
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// The replacement text for every secret.
pub const REDACTED: &str = "[REDACTED]";

fn re(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

static SQL_PASSWORD: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)\b(?:encrypted\s+)?password\s+"));
static SQL_OTP_SET: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r#"(?i)\bbastion\s*\.\s*otp"?\s*(?:=|\bto\b)\s*"#));
static SQL_OTP_SET_CONFIG: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)'bastion\.otp'\s*,\s*"));

static SHELL_LONG_OPTION: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r#"(?i)(--(?:password|passwd|pass|token|secret|api-key|apikey|access-key|secret-key|client-secret)(?:=|\s+))('[^']*'|"(?:[^"\\]|\\.)*"|[^\s'"]+)"#,
    )
});
static SHELL_ASSIGNMENT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r#"(?i)\b([A-Za-z_][A-Za-z0-9_]*(?:PASSWORD|PASSWD|TOKEN|SECRET|_KEY)=)('[^']*'|"(?:[^"\\]|\\.)*"|[^\s'"]+)"#,
    )
});
static SHELL_MYSQL: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mariadb|mariadb-dump)\b")
});
static SHELL_MYSQL_P: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r#"(\s-p)('[^']*'|"(?:[^"\\]|\\.)*"|[^\s'"]+)"#));
static SHELL_HEADER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r#"(?i)((?:proxy-)?authorization|x-api-key|api-key|x-auth-token|cookie)(\s*:\s*)([^'"\r\n]+)"#,
    )
});
static SHELL_USER_PASS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r#"((?:^|\s)(?:-u|--user|--proxy-user)(?:\s+|=)['"]?)([^:\s'"]+):([^\s'"]+)"#)
});

static TOKEN_PEM: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)")
});
static TOKEN_AWS: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"));
static TOKEN_AWS_SECRET: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r#"(?i)(aws_secret_access_key\s*[=:]\s*['"]?)([A-Za-z0-9/+=]{20,})"#));
static TOKEN_JWT: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"));
static TOKEN_GITHUB: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b"));
static TOKEN_SLACK: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"));
static TOKEN_CONNINFO: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r#"(?i)\b(password\s*=\s*)([^\s'"&;,)]+)"#));
static TOKEN_URL_CREDENTIALS: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/\s@]+):([^@\s/]+)@"));

fn replace_all(text: String, regex: &LazyLock<Option<Regex>>, with: &str) -> String {
    match regex.as_ref() {
        Some(r) => r.replace_all(&text, with).into_owned(),
        None => text,
    }
}

fn replace_with(
    text: String,
    regex: &LazyLock<Option<Regex>>,
    f: impl Fn(&Captures<'_>) -> String,
) -> String {
    match regex.as_ref() {
        Some(r) => r.replace_all(&text, |c: &Captures<'_>| f(c)).into_owned(),
        None => text,
    }
}

/// Redacts secrets in SQL text: role passwords, the one-time code of `SET bastion.otp`, and
/// everything [`redact_tokens`] finds.
pub fn redact_sql(text: &str) -> String {
    let mut out = redact_literal_after(text, &SQL_PASSWORD, false);
    out = redact_literal_after(&out, &SQL_OTP_SET, true);
    out = redact_literal_after(&out, &SQL_OTP_SET_CONFIG, false);
    redact_tokens(&out)
}

/// Redacts secrets in a shell command line: password options and assignments, mysql `-p`,
/// curl credentials, and everything [`redact_tokens`] finds.
pub fn redact_shell(line: &str) -> String {
    let mut out = line.to_owned();
    out = replace_with(out, &SHELL_LONG_OPTION, |c| format!("{}{REDACTED}", &c[1]));
    out = replace_with(out, &SHELL_ASSIGNMENT, |c| format!("{}{REDACTED}", &c[1]));
    if SHELL_MYSQL.as_ref().is_some_and(|r| r.is_match(&out)) {
        out = replace_with(out, &SHELL_MYSQL_P, |c| format!("{}{REDACTED}", &c[1]));
    }
    out = replace_with(out, &SHELL_HEADER, |c| {
        let value = &c[3];
        // Keep the scheme (`Bearer`, `Basic`) so the trail says what kind of credential it was.
        let kept = match value.split_once(' ') {
            Some((scheme, _)) if c[1].to_ascii_lowercase().contains("authorization") => {
                format!("{scheme} ")
            }
            _ => String::new(),
        };
        format!("{}{}{kept}{REDACTED}", &c[1], &c[2])
    });
    out = replace_with(out, &SHELL_USER_PASS, |c| {
        format!("{}{}:{REDACTED}", &c[1], &c[2])
    });
    redact_tokens(&out)
}

/// Redacts secrets recognisable by their shape alone, in any text.
pub fn redact_tokens(text: &str) -> String {
    let mut out = text.to_owned();
    out = replace_all(out, &TOKEN_PEM, REDACTED);
    out = replace_all(out, &TOKEN_AWS, REDACTED);
    out = replace_with(out, &TOKEN_AWS_SECRET, |c| format!("{}{REDACTED}", &c[1]));
    out = replace_all(out, &TOKEN_JWT, REDACTED);
    out = replace_all(out, &TOKEN_GITHUB, REDACTED);
    out = replace_all(out, &TOKEN_SLACK, REDACTED);
    out = replace_with(out, &TOKEN_CONNINFO, |c| format!("{}{REDACTED}", &c[1]));
    out = replace_with(out, &TOKEN_URL_CREDENTIALS, |c| {
        format!("{}:{REDACTED}@", &c[1])
    });
    out
}

/// Replaces the SQL literal that follows each match of `lead`: `'...'` (with `''`), `E'...'`
/// (with backslash escapes), `U&'...'`, `$tag$...$tag$`; with `bare`, also an unquoted word or
/// number (`SET bastion.otp = 123456`).
fn redact_literal_after(text: &str, lead: &LazyLock<Option<Regex>>, bare: bool) -> String {
    let Some(lead) = lead.as_ref() else {
        return text.to_owned();
    };
    let mut out = String::with_capacity(text.len());
    let mut rest_start = 0;
    for m in lead.find_iter(text) {
        if m.start() < rest_start {
            continue;
        }
        let Some(after) = text.get(m.end()..) else {
            continue;
        };
        let Some((open, body_len, close)) = literal_at(after, bare) else {
            continue;
        };
        out.push_str(text.get(rest_start..m.end()).unwrap_or_default());
        out.push_str(open);
        out.push_str(REDACTED);
        out.push_str(close);
        rest_start = m.end() + open.len() + body_len + close.len();
    }
    out.push_str(text.get(rest_start..).unwrap_or_default());
    out
}

/// Finds a literal at the start of `s`: (opening delimiter, body length, closing delimiter).
fn literal_at(s: &str, bare: bool) -> Option<(&str, usize, &str)> {
    let (prefix_len, backslash) = if s.starts_with("E'") || s.starts_with("e'") {
        (1, true)
    } else if s.len() >= 3 && s.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("u&'")) {
        (2, false)
    } else {
        (0, false)
    };
    let quoted = s.get(prefix_len..)?;
    if quoted.starts_with('\'') {
        let bytes = quoted.as_bytes();
        let mut i = 1;
        let end = loop {
            match bytes.get(i) {
                None => break quoted.len(),
                Some(b'\\') if backslash => i += 2,
                Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                Some(b'\'') => break i,
                Some(_) => i += 1,
            }
        };
        let open = s.get(..prefix_len + 1)?;
        let body = end.saturating_sub(1).min(quoted.len().saturating_sub(1));
        let close = if end < quoted.len() { "'" } else { "" };
        return Some((open, body, close));
    }
    if let Some(tag_end) = s.strip_prefix('$').and_then(|r| r.find('$')) {
        let tag = s.get(..tag_end + 2)?;
        if tag
            .trim_matches('$')
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_')
        {
            let body_start = tag.len();
            let body_len = s
                .get(body_start..)?
                .find(tag)
                .unwrap_or(s.len() - body_start);
            let close = if body_start + body_len < s.len() {
                tag
            } else {
                ""
            };
            return Some((tag, body_len, close));
        }
    }
    if bare {
        let len = s
            .find(|c: char| c.is_whitespace() || c == ';')
            .unwrap_or(s.len());
        if len > 0 {
            return Some(("", len, ""));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn sql_secrets_are_redacted() {
        let cases = [
            (
                "CREATE ROLE bob WITH LOGIN PASSWORD 'hunter2'",
                "CREATE ROLE bob WITH LOGIN PASSWORD '[REDACTED]'",
            ),
            (
                "create user bob password 'it''s'",
                "create user bob password '[REDACTED]'",
            ),
            (
                "ALTER USER bob WITH ENCRYPTED PASSWORD E'a\\'b' VALID UNTIL 'x'",
                "ALTER USER bob WITH ENCRYPTED PASSWORD E'[REDACTED]' VALID UNTIL 'x'",
            ),
            (
                "ALTER ROLE bob PASSWORD $p$secret$p$",
                "ALTER ROLE bob PASSWORD $p$[REDACTED]$p$",
            ),
            (
                "SET bastion.otp = '123456'",
                "SET bastion.otp = '[REDACTED]'",
            ),
            (
                "set BASTION.OTP to 123456;",
                "set BASTION.OTP to [REDACTED];",
            ),
            (
                "SELECT set_config('bastion.otp', '654321', false)",
                "SELECT set_config('bastion.otp', '[REDACTED]', false)",
            ),
            (
                "SELECT dblink('host=db password=s3cret', 'select 1')",
                "SELECT dblink('host=db password=[REDACTED]', 'select 1')",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact_sql(input), want, "{input}");
        }
    }

    #[test]
    fn sql_without_secrets_is_unchanged() {
        for sql in [
            "SELECT password FROM users WHERE id = 1",
            "ALTER ROLE bob PASSWORD NULL",
            "SET search_path = app",
            "SELECT 'AKIA' || 'x'",
        ] {
            assert_eq!(redact_sql(sql), sql);
        }
    }

    #[test]
    fn shell_secrets_are_redacted() {
        let cases = [
            (
                "mysqldump --password=hunter2 db",
                "mysqldump --password=[REDACTED] db",
            ),
            (
                "tool --password hunter2 -v",
                "tool --password [REDACTED] -v",
            ),
            (
                "mysql -u root -phunter2 db",
                "mysql -u root -p[REDACTED] db",
            ),
            (
                "PGPASSWORD=hunter2 psql -h db",
                "PGPASSWORD=[REDACTED] psql -h db",
            ),
            (
                "export GITHUB_TOKEN='abc def'",
                "export GITHUB_TOKEN=[REDACTED]",
            ),
            (
                "APP_SECRET=x DB_PASSWORD=\"y z\" run",
                "APP_SECRET=[REDACTED] DB_PASSWORD=[REDACTED] run",
            ),
            (
                "curl -H 'Authorization: Bearer abc.def' https://x",
                "curl -H 'Authorization: Bearer [REDACTED]' https://x",
            ),
            (
                "curl -H \"X-Api-Key: k123\" https://x",
                "curl -H \"X-Api-Key: [REDACTED]\" https://x",
            ),
            (
                "curl -u admin:hunter2 https://x",
                "curl -u admin:[REDACTED] https://x",
            ),
            (
                "git clone https://bob:hunter2@github.com/x.git",
                "git clone https://bob:[REDACTED]@github.com/x.git",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact_shell(input), want, "{input}");
        }
    }

    #[test]
    fn shell_without_secrets_is_unchanged() {
        for line in [
            "ls -la /tmp",
            "ssh -p 2222 host",
            "grep -r password .",
            "psql -U app -d db",
            "curl -u admin https://x",
            "echo TOKEN",
        ] {
            assert_eq!(redact_shell(line), line);
        }
    }

    #[test]
    fn token_shapes_are_redacted() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJl";
        let cases = [
            (
                "key AKIAIOSFODNN7EXAMPLE end".to_owned(),
                "key [REDACTED] end".to_owned(),
            ),
            (format!("auth {jwt} end"), "auth [REDACTED] end".to_owned()),
            (
                "t ghp_0123456789abcdefghijABCDEFGHIJ0123 x".to_owned(),
                "t [REDACTED] x".to_owned(),
            ),
            (
                "t github_pat_11ABCDEFG0123456789_abcdefghij x".to_owned(),
                "t [REDACTED] x".to_owned(),
            ),
            (
                "t xoxb-1234567890-abcdefghij x".to_owned(),
                "t [REDACTED] x".to_owned(),
            ),
            (
                "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nb"
                    .to_owned(),
                "a\n[REDACTED]\nb".to_owned(),
            ),
            (
                "cut -----BEGIN OPENSSH PRIVATE KEY-----\nabc".to_owned(),
                "cut [REDACTED]".to_owned(),
            ),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
                "aws_secret_access_key = [REDACTED]".to_owned(),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact_tokens(&input), want, "{input}");
        }
    }

    #[test]
    fn token_lookalikes_are_kept() {
        for text in [
            "AKIA123",
            "ghp_short",
            "-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----",
            "eyJhbGc only",
            "xoxb-",
        ] {
            assert_eq!(redact_tokens(text), text);
        }
    }
}
