//! Building one `ShellCommandFacts` from a command's words: the normalised name, flags
//! (short clusters split), and the paths named by its arguments (globs judged as the
//! protected paths they could match, brace expansions expanded).
use super::facts::ShellCommandFacts;
use super::paths;
use super::words::{expand_braces, ShellWord};

/// Most words one brace expansion is expanded into when looking for paths.
const BRACE_LIMIT: usize = 64;

/// Facts for the command `argv` (name first), without the walker's context fields.
/// `own_args` is how many arguments belong to this command itself rather than to a wrapped
/// command (flags are only read from those).
pub(super) fn build(argv: &[ShellWord], own_args: usize) -> ShellCommandFacts {
    let mut facts = ShellCommandFacts::default();
    let Some((name_word, args)) = argv.split_first() else {
        return facts;
    };
    if name_word.is_static() {
        let text = name_word.text.as_str();
        facts.name = text.rsplit('/').next().unwrap_or(text).to_owned();
        if text.contains('/') {
            facts.path = Some(text.to_owned());
        }
    } else {
        facts.dynamic = true;
    }
    facts.args = args.iter().map(|w| w.text.clone()).collect();
    facts.flags = flags(&facts.name, args.get(..own_args).unwrap_or(args));
    for word in args {
        add_paths(word, &mut facts);
    }
    facts
}

/// Flags before `--`: `-rf` gives `-r`, `-f`; `--force=yes` gives `--force`; a cluster of
/// digits (`-9`) stays one flag. `find` and `dd` style single-dash words stay whole.
fn flags(name: &str, args: &[ShellWord]) -> Vec<String> {
    let whole_words = matches!(name, "find" | "java" | "iptables" | "ip6tables" | "nft");
    let mut out = Vec::new();
    for word in args {
        let arg = word.text.as_str();
        if arg == "--" {
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            if !long.is_empty() {
                let option = long.split('=').next().unwrap_or(long);
                out.push(format!("--{option}"));
            }
            continue;
        }
        let Some(cluster) = arg.strip_prefix('-') else {
            continue;
        };
        if cluster.is_empty() {
            continue;
        }
        if whole_words || cluster.chars().all(|c| c.is_ascii_digit()) {
            out.push(arg.to_owned());
            continue;
        }
        for c in cluster.chars() {
            if !c.is_ascii_alphanumeric() {
                break;
            }
            out.push(format!("-{c}"));
        }
    }
    out
}

/// Adds the paths one argument names (with brace expansions and glob matches).
pub(super) fn add_paths(word: &ShellWord, facts: &mut ShellCommandFacts) {
    let texts = if word.brace {
        expand_braces(&word.text, BRACE_LIMIT)
    } else {
        vec![word.text.clone()]
    };
    for text in texts {
        let Some(raw) = paths::path_in_argument(&text) else {
            continue;
        };
        add_path(raw, word.glob, facts);
    }
}

/// Adds one path (normalised); a glob also adds the protected paths it could match.
pub(super) fn add_path(raw: &str, glob: bool, facts: &mut ShellCommandFacts) {
    let normalized = paths::normalize(raw);
    if let Some(rooted) = paths::rooted_guess(&normalized) {
        push_unique(&mut facts.paths, rooted);
    }
    if glob {
        for matched in paths::protected_matches(&normalized) {
            push_unique(&mut facts.paths, matched);
        }
        push_unique(&mut facts.globs, normalized.clone());
    }
    push_unique(&mut facts.paths, normalized);
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}
