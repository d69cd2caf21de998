//! Facts the engine derives from the extractors' output so policies can stay simple Cedar
//! (Cedar has no "any element matches a pattern"): the first non-flag argument, `dd`'s output,
//! whether a redirection writes a file, and which named paths are credential stores.
use crate::shell::ShellCommandFacts;

/// Credential stores and SSH private key names: one list, shared with the shell extractor.
use crate::shell::paths::{
    normalize as normalize_path, PRIVATE_KEY_NAMES as KEY_NAMES, PROTECTED as SENSITIVE_FILES,
};

/// Glob match where `*` matches any run of characters (also `/`) and `?` or a `[...]` class
/// matches any one character: wider than the shell, so a glob that *could* name a path does.
pub(crate) fn glob_could_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = squash_classes(pattern);
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == '?' || Some(c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

/// Replace each `[...]` class by `?`.
fn squash_classes(pattern: &str) -> Vec<char> {
    let mut out = Vec::new();
    let mut in_class = false;
    for c in pattern.chars() {
        match (in_class, c) {
            (false, '[') => {
                in_class = true;
                out.push('?');
            }
            (true, ']') => in_class = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Whether a concrete normalised path is a credential store.
fn is_sensitive(path: &str) -> bool {
    if SENSITIVE_FILES.contains(&path) || path == "/root/.ssh" || path.starts_with("/root/.ssh/") {
        return true;
    }
    let mut components = path.rsplit('/');
    let file = components.next().unwrap_or("");
    let dir = components.next().unwrap_or("");
    dir == ".ssh" && file.starts_with("id_") && !file.ends_with(".pub")
}

/// Whether a path (maybe a glob) names or could name a credential store.
fn names_sensitive(path: &str) -> bool {
    let path = normalize_path(path);
    if !is_glob(&path) {
        return is_sensitive(&path);
    }
    let mut candidates: Vec<String> = Vec::new();
    if path.starts_with('/') {
        // A relative glob (`*`) is not judged against absolute paths: that would deny `ls *`.
        candidates.extend(SENSITIVE_FILES.iter().map(|s| s.to_string()));
        candidates.push("/root/.ssh/authorized_keys".to_string());
    }
    // Something under /root/.ssh named like the pattern's last component would be.
    let last: String = squash_classes(path.rsplit('/').next().unwrap_or(""))
        .into_iter()
        .filter(|c| *c != '*')
        .map(|c| if c == '?' { 'a' } else { c })
        .collect();
    if path.starts_with('/') {
        candidates.push(format!("/root/.ssh/{last}"));
    }
    if let Some(pos) = path.find(".ssh/") {
        let dir = path.get(..pos + 5).unwrap_or("");
        candidates.extend(KEY_NAMES.iter().map(|k| format!("{dir}{k}")));
    }
    candidates
        .iter()
        .any(|c| glob_could_match(&path, c) && is_sensitive(&normalize_path(c)))
}

/// Extra per-command facts for the shell context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DerivedShellFacts {
    /// First argument that is not a flag.
    pub subcommand: String,
    /// `dd`'s `of=` operand, normalised.
    pub dd_output: String,
    /// Some redirection writes a file other than the harmless devices.
    pub writes_file: bool,
    /// Named paths (arguments, `x=/path` operands, redirections) that are credential stores.
    pub sensitive_paths: Vec<String>,
}

const HARMLESS_SINKS: &[&str] = &["/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"];

/// Derive the extra facts of one command.
pub(crate) fn derive(command: &ShellCommandFacts) -> DerivedShellFacts {
    let subcommand = command
        .args
        .iter()
        .find(|a| !a.starts_with('-'))
        .cloned()
        .unwrap_or_default();
    let dd_output = if command.name == "dd" {
        command
            .args
            .iter()
            .rev()
            .find_map(|a| a.strip_prefix("of="))
            .map(normalize_path)
            .unwrap_or_default()
    } else {
        String::new()
    };
    let writes_file = command.redirects.iter().any(|(op, target)| {
        let writes = op.contains('>') && !(op.ends_with('&') || op == ">&");
        let fd_dup = op.contains('&') && target.chars().all(|c| c.is_ascii_digit() || c == '-');
        writes && !fd_dup && !HARMLESS_SINKS.contains(&normalize_path(target).as_str())
    });
    let mut named: Vec<&str> = Vec::new();
    named.extend(command.paths.iter().map(String::as_str));
    named.extend(command.redirects.iter().map(|(_, t)| t.as_str()));
    for arg in &command.args {
        named.push(arg.as_str());
        if let Some((_, value)) = arg.split_once('=') {
            named.push(value);
        }
    }
    let mut sensitive_paths: Vec<String> = named
        .into_iter()
        .filter(|p| names_sensitive(p))
        .map(normalize_path)
        .collect();
    sensitive_paths.sort();
    sensitive_paths.dedup();
    DerivedShellFacts {
        subcommand,
        dd_output,
        writes_file,
        sensitive_paths,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise() {
        assert_eq!(normalize_path("/etc//shadow"), "/etc/shadow");
        assert_eq!(normalize_path("/etc/./shadow"), "/etc/shadow");
        assert_eq!(normalize_path("/etc/../etc/shadow"), "/etc/shadow");
        assert_eq!(normalize_path("/../../etc/shadow"), "/etc/shadow");
        assert_eq!(normalize_path("~/.ssh/id_rsa"), "~/.ssh/id_rsa");
    }

    #[test]
    fn sensitive_paths_and_their_globs() {
        for p in [
            "/etc/shadow",
            "/etc//gshadow",
            "/etc/sha*",
            "/etc/*",
            "/e?c/shado[w]",
            "~/.ssh/id_rsa",
            ".ssh/id_ed25519",
            "/home/bob/.ssh/id_*",
            "/root/.ssh/authorized_keys",
            "/root/.ssh",
            "/r*/.ssh/x",
        ] {
            assert!(names_sensitive(p), "{p} should be sensitive");
        }
        for p in [
            "/etc/passwd",
            "~/.ssh/id_rsa.pub",
            "/home/bob/.ssh/known_hosts",
            "/etc/shadowsocks.conf",
            "/tmp/*.log",
            "*",
            "*.txt",
            "~/.ssh/*.pub",
        ] {
            assert!(!names_sensitive(p), "{p} should not be sensitive");
        }
    }

    #[test]
    fn derived_facts_of_dd_and_redirects() {
        let cmd = ShellCommandFacts {
            name: "dd".into(),
            args: vec!["if=/dev/zero".into(), "of=/dev//sda".into()],
            redirects: vec![("2>&".into(), "1".into()), (">".into(), "/dev/null".into())],
            ..Default::default()
        };
        let d = derive(&cmd);
        assert_eq!(d.dd_output, "/dev/sda");
        assert!(!d.writes_file);
        let cmd = ShellCommandFacts {
            name: "apt-get".into(),
            args: vec!["-y".into(), "install".into(), "x".into()],
            redirects: vec![(">>".into(), "/tmp/log".into())],
            ..Default::default()
        };
        let d = derive(&cmd);
        assert_eq!(d.subcommand, "install");
        assert!(d.writes_file);
    }
}
