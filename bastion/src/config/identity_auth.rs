//! Per-identity entry settings: which proofs an identity may use (`auth`), and the hours in which
//! it normally logs in (`allowed_hours`, a risk signal, not a refusal).
use std::fmt;

/// One way of proving an identity at entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthMethod {
    /// PostgreSQL SCRAM-SHA-256 against `scram_verifier`.
    Scram,
    /// SSH public key from `public_keys`.
    PublicKey,
    /// SSH user certificate from a trusted user CA.
    Certificate,
    /// SSH keyboard-interactive: password (`password_verifier`) and one-time code (`totp`).
    PasswordTotp,
    /// A short-lived login token (`bastion token issue`) given as the password.
    Token,
}

impl AuthMethod {
    /// Every method, in the order documented.
    pub const ALL: [AuthMethod; 5] = [
        AuthMethod::Scram,
        AuthMethod::PublicKey,
        AuthMethod::Certificate,
        AuthMethod::PasswordTotp,
        AuthMethod::Token,
    ];

    /// The name used in `auth = [...]` and in the `entries` table's `method` column.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Scram => "scram",
            AuthMethod::PublicKey => "publickey",
            AuthMethod::Certificate => "certificate",
            AuthMethod::PasswordTotp => "password_totp",
            AuthMethod::Token => "token",
        }
    }

    /// Parses a config name; `None` for anything else.
    pub fn parse(name: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// The methods an identity without an `auth` key may use: all but tokens, which an
    /// identity must opt into.
    pub fn defaults() -> Vec<AuthMethod> {
        AuthMethod::ALL
            .into_iter()
            .filter(|m| *m != AuthMethod::Token)
            .collect()
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A daily window of UTC wall-clock time, `start` inclusive, `end` exclusive, in minutes after
/// midnight. `start > end` wraps past midnight (`22:00-06:00`); `start == end` is the whole day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourWindow {
    /// Minutes after midnight UTC at which the window opens.
    pub start: u16,
    /// Minutes after midnight UTC at which it closes.
    pub end: u16,
}

impl HourWindow {
    /// Parses `HH:MM-HH:MM` (or `HH-HH`), 24-hour clock, UTC.
    pub fn parse(text: &str) -> Result<HourWindow, String> {
        let bad = || {
            format!("{text:?} is not a window of hours; expected HH:MM-HH:MM in UTC, e.g. \"07:00-19:00\"")
        };
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let minute = |t: &str| -> Option<u16> {
            let t = t.trim();
            let (h, m) = t.split_once(':').unwrap_or((t, "0"));
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            // 24:00 is allowed as an end of day.
            (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
        };
        Ok(HourWindow {
            start: minute(a).ok_or_else(bad)? % (24 * 60),
            end: minute(b).ok_or_else(bad)? % (24 * 60),
        })
    }

    /// True when `unix_secs` (UTC) falls inside the window.
    pub fn contains(&self, unix_secs: i64) -> bool {
        let minute = u16::try_from(unix_secs.rem_euclid(86_400) / 60).unwrap_or(0);
        match self.start.cmp(&self.end) {
            std::cmp::Ordering::Equal => true,
            std::cmp::Ordering::Less => (self.start..self.end).contains(&minute),
            std::cmp::Ordering::Greater => minute >= self.start || minute < self.end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip_and_token_is_opt_in() {
        for m in AuthMethod::ALL {
            assert_eq!(AuthMethod::parse(m.as_str()), Some(m));
        }
        assert_eq!(AuthMethod::parse("password"), None);
        assert_eq!(AuthMethod::parse("Token"), None);
        assert!(!AuthMethod::defaults().contains(&AuthMethod::Token));
        assert_eq!(AuthMethod::defaults().len(), 4);
    }

    #[test]
    fn hour_windows() {
        let day = HourWindow::parse("07:00-19:00").unwrap();
        let at = |h: i64, m: i64| 1_700_000_000 / 86_400 * 86_400 + h * 3600 + m * 60;
        assert!(day.contains(at(7, 0)));
        assert!(day.contains(at(18, 59)));
        assert!(!day.contains(at(19, 0)));
        assert!(!day.contains(at(3, 0)));
        let night = HourWindow::parse("22-06").unwrap();
        assert!(night.contains(at(23, 30)) && night.contains(at(5, 59)));
        assert!(!night.contains(at(6, 0)) && !night.contains(at(12, 0)));
        assert!(HourWindow::parse("00:00-24:00")
            .unwrap()
            .contains(at(12, 0)));
        for bad in [
            "",
            "7",
            "07:00",
            "25:00-26:00",
            "07:60-08:00",
            "a-b",
            "07:00-19:00-20:00",
        ] {
            assert!(HourWindow::parse(bad).is_err(), "{bad:?}");
        }
    }
}
