//! Facts from shell command lines (brush-parser). `facts` is the contract with the engine;
//! `extract` produces it:
//! - `parse`: limits (size, NUL, nesting) and brush-parser; `ShellLimits`.
//! - `words`: quote removal (`r''m`, `\rm`, `"rm"`, `$'rm'`), non-literal parts, braces, globs.
//! - `walk`: the AST walk over every construct that runs commands, and what feeds stdin.
//! - `wrappers`: commands that run other commands or strings of shell code.
//! - `interpreters`: where an interpreter's program comes from (`-c`, stdin, a file).
//! - `download`: downloaders and network redirections (SH-3).
//! - `paths`: path normalisation and the protected paths a glob could match.
//! - `command_facts`: one command's name, flags and paths.
//!
//! ```
//! use policies::shell::{extract, ShellLimits};
//! let facts = extract("sudo -u root rm -rf /", &ShellLimits::default());
//! let names: Vec<&str> = facts.commands.iter().map(|c| c.name.as_str()).collect();
//! assert_eq!(names, ["sudo", "rm"]);
//! assert_eq!(facts.commands[1].wrappers, ["sudo"]);
//! assert_eq!(facts.commands[1].flags, ["-r", "-f"]);
//! ```
mod command_facts;
mod download;
pub mod facts;
mod interpreters;
mod parse;
pub(crate) mod paths;
mod walk;
mod words;
mod wrappers;

#[cfg(test)]
mod tests;

pub use facts::*;
pub use parse::ShellLimits;

/// Extracts the facts of one command line. Never fails: a line that cannot be judged comes
/// back with `unparsed` set (and no commands), which the engine denies (ANY-0).
pub fn extract(line: &str, limits: &ShellLimits) -> ShellLineFacts {
    match walk::Walker::new(limits).walk_line(line) {
        Ok(commands) => ShellLineFacts {
            commands,
            unparsed: None,
        },
        Err(error) => ShellLineFacts {
            commands: Vec::new(),
            unparsed: Some(shorten(error.to_string())),
        },
    }
}

/// Longest `unparsed` message kept (parser messages can list every open here-document).
const MAX_MESSAGE_CHARS: usize = 300;

fn shorten(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}...", message.get(..cut).unwrap_or_default()),
        None => message,
    }
}
