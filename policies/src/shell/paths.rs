//! Paths named on a command line: which arguments name paths, lexical normalisation
//! (`/etc//shadow`, `/etc/./shadow`, `/etc/../etc/shadow` are `/etc/shadow`; `~` stays `~`),
//! and the protected paths a glob could match (`/etc/sha*` could be `/etc/shadow`), so the
//! engine can judge a glob as the protected path it may expand to.

/// Concrete protected paths a glob is tested against, segment by segment (also SH-2's
/// credential stores in `engine::derived`).
pub(crate) const PROTECTED: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/gshadow-",
];

/// File names of SSH private keys (a glob matching one of them under `.ssh/` is reported).
pub(crate) const PRIVATE_KEY_NAMES: &[&str] = &[
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "id_ecdsa_sk",
    "id_ed25519_sk",
];

/// Normalises a path lexically: repeated slashes and `.` segments go, `..` removes the segment
/// before it (never above `/`; kept at the start of a relative path or after `~`).
pub(crate) fn normalize(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let absolute = path.starts_with('/');
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => match segments.last() {
                Some(&last) if last != ".." && !last.starts_with('~') => {
                    segments.pop();
                }
                _ if absolute => {}
                _ => segments.push(".."),
            },
            other => segments.push(other),
        }
    }
    let joined = segments.join("/");
    if absolute {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_owned()
    } else {
        joined
    }
}

/// The part of an argument that names a path, if any: the argument itself when it has a `/`
/// or starts with `~`; the value of `key=value` (`of=/dev/sda`, `--file=/x`); the tail of an
/// attached short option (`-f/etc/shadow`); the remote part of `host:/path`.
pub(super) fn path_in_argument(arg: &str) -> Option<&str> {
    if arg.starts_with('/')
        || arg.starts_with('~')
        || arg.starts_with("./")
        || arg.starts_with("../")
    {
        return Some(arg);
    }
    if !arg.contains('/') {
        return None;
    }
    if let Some((_, value)) = arg.split_once('=') {
        if value.contains('/') || value.starts_with('~') {
            return Some(value);
        }
    }
    if arg.starts_with('-') {
        return arg.find(['/', '~']).and_then(|at| arg.get(at..));
    }
    if let Some((host, remote)) = arg.split_once(':') {
        if !host.contains('/') && (remote.starts_with('/') || remote.starts_with('~')) {
            return Some(remote);
        }
    }
    Some(arg)
}

/// Absolute protected paths that a relative path may name from an unknown working directory:
/// `../../etc/shadow` and `etc/shadow` are reported as `/etc/shadow` too.
pub(super) fn rooted_guess(normalized: &str) -> Option<String> {
    if normalized.starts_with('/') || normalized.starts_with('~') {
        return None;
    }
    let mut rest = normalized;
    while let Some(stripped) = rest.strip_prefix("../") {
        rest = stripped;
    }
    let rooted = format!("/{rest}");
    let protected = PROTECTED.contains(&rooted.as_str())
        || rooted == "/root/.ssh"
        || rooted.starts_with("/root/.ssh/");
    protected.then_some(rooted)
}

/// The protected paths a (normalised) glob could match. Tested segment by segment against
/// `/etc/shadow`, `/etc/gshadow`, anything under `/root/.ssh/`, and SSH private key names
/// under any `.ssh` directory (the key is reported with the glob's own directory part, e.g.
/// `~/.ssh/id_*` gives `~/.ssh/id_rsa`).
pub(super) fn protected_matches(glob: &str) -> Vec<String> {
    let mut found = Vec::new();
    let segments: Vec<&str> = glob.split('/').collect();
    for candidate in PROTECTED {
        let wanted: Vec<&str> = candidate.split('/').collect();
        if segments.len() == wanted.len()
            && segments
                .iter()
                .zip(&wanted)
                .all(|(pattern, name)| segment_matches(pattern, name))
        {
            found.push((*candidate).to_owned());
        }
    }
    // `/r*/.ss?/anything`: under /root/.ssh/
    if let [first, root, ssh, rest @ ..] = segments.as_slice() {
        if first.is_empty() && segment_matches(root, "root") && segment_matches(ssh, ".ssh") {
            let tail = if rest.is_empty() {
                String::new()
            } else {
                format!("/{}", rest.join("/"))
            };
            found.push(format!("/root/.ssh{tail}"));
        }
    }
    // `<dir>/.ss*/id_*`: a private key under any .ssh directory.
    if let [dirs @ .., ssh, key] = segments.as_slice() {
        if segment_matches(ssh, ".ssh") && !key.ends_with(".pub") {
            if let Some(name) = PRIVATE_KEY_NAMES.iter().find(|n| segment_matches(key, n)) {
                let mut path = dirs.join("/");
                path.push_str("/.ssh/");
                path.push_str(name);
                found.push(path);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Whether one path segment pattern (`*`, `?`, `[...]`) matches a name. A leading dot is not
/// special here: an admin's rule must not be evaded by `dotglob`.
pub(super) fn segment_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    match_from(&pattern, &name)
}

fn match_from(pattern: &[char], name: &[char]) -> bool {
    // Iterative wildcard matching with single backtrack point for `*`.
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match class_matches(pattern, p, name.get(n).copied()) {
                Some((true, len)) => Some(len),
                _ => None,
            },
            Some(c) if Some(c) == name.get(n) => Some(1),
            _ => None,
        };
        match step {
            Some(len) => {
                p += len;
                n += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

/// Matches a `[...]` class at `pattern[start]`; returns (matched, pattern length of the class).
/// An unterminated `[` is a literal character.
fn class_matches(pattern: &[char], start: usize, c: Option<char>) -> Option<(bool, usize)> {
    let c = c?;
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let current = *pattern.get(i)?;
        if current == ']' && !first {
            break;
        }
        first = false;
        if pattern.get(i + 1) == Some(&'-') && pattern.get(i + 2).is_some_and(|e| *e != ']') {
            let end = *pattern.get(i + 2)?;
            if current <= c && c <= end {
                matched = true;
            }
            i += 3;
        } else {
            if current == c {
                matched = true;
            }
            i += 1;
        }
    }
    Some((matched != negate, i + 1 - start))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn normalizes_lexically() {
        for (raw, want) in [
            ("/etc//shadow", "/etc/shadow"),
            ("/etc/./shadow", "/etc/shadow"),
            ("/etc/../etc/shadow", "/etc/shadow"),
            ("/../../etc/shadow", "/etc/shadow"),
            ("/root/.ssh/", "/root/.ssh"),
            ("~/.ssh/./id_rsa", "~/.ssh/id_rsa"),
            ("~/../x", "~/../x"),
            ("./a/../b", "b"),
            ("../../etc/shadow", "../../etc/shadow"),
            ("/", "/"),
        ] {
            assert_eq!(normalize(raw), want, "{raw}");
        }
    }

    #[test]
    fn finds_paths_in_arguments() {
        assert_eq!(path_in_argument("of=/dev/sda"), Some("/dev/sda"));
        assert_eq!(path_in_argument("--file=/etc/shadow"), Some("/etc/shadow"));
        assert_eq!(path_in_argument("-f/etc/shadow"), Some("/etc/shadow"));
        assert_eq!(
            path_in_argument("host:/root/.ssh/id_rsa"),
            Some("/root/.ssh/id_rsa")
        );
        assert_eq!(path_in_argument("-rf"), None);
        assert_eq!(path_in_argument("a/b"), Some("a/b"));
        assert_eq!(
            rooted_guess("../../etc/shadow").as_deref(),
            Some("/etc/shadow")
        );
        assert_eq!(rooted_guess("etc/passwd"), None);
    }

    #[test]
    fn globs_match_protected_paths() {
        assert_eq!(
            protected_matches("/etc/sha*"),
            vec!["/etc/shadow", "/etc/shadow-"]
        );
        assert_eq!(protected_matches("/e?c/[gs]shado[w]"), vec!["/etc/gshadow"]);
        assert_eq!(
            protected_matches("/etc/*"),
            vec![
                "/etc/gshadow",
                "/etc/gshadow-",
                "/etc/shadow",
                "/etc/shadow-"
            ]
        );
        assert_eq!(protected_matches("~/.ssh/id_*"), vec!["~/.ssh/id_rsa"]);
        assert_eq!(
            protected_matches("/r*/.ssh/*"),
            vec!["/r*/.ssh/id_rsa", "/root/.ssh/*"]
        );
        assert!(protected_matches("~/.ssh/*.pub").is_empty());
        assert!(protected_matches("/var/log/*.log").is_empty());
        assert!(protected_matches("/etc/pass*").is_empty());
    }
}
