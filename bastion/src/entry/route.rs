//! `identity@target`: the name only routes; the proof is separate.

/// A parsed routing name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Claimed identity.
    pub identity: String,
    /// Target name.
    pub target: String,
}

/// Splits at the *last* `@` (`alice@prod-db`); both halves must be non-empty.
pub fn parse_route(name: &str) -> Option<Route> {
    let (identity, target) = name.rsplit_once('@')?;
    if identity.is_empty() || target.is_empty() || identity.contains('@') {
        return None;
    }
    Some(Route {
        identity: identity.to_string(),
        target: target.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            parse_route("alice@prod-db"),
            Some(Route {
                identity: "alice".into(),
                target: "prod-db".into()
            })
        );
        assert_eq!(parse_route("alice"), None);
        assert_eq!(parse_route("@prod-db"), None);
        assert_eq!(parse_route("alice@"), None);
        assert_eq!(parse_route("a@b@c"), None);
    }
}
