//! The facts the engine receives for one shell command line (the contract between `shell` and `engine`).
use serde::Serialize;

/// Facts for one command line.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ShellLineFacts {
    /// Every simple command that the line would run, including those inside pipelines, lists,
    /// subshells, brace groups, function bodies, command substitutions, process substitutions,
    /// and strings run as shell code (`sh -c '...'`, `bash -c`, `su -c`, `watch '...'`),
    /// recursively, and the inner command of wrappers (`sudo rm ...` yields `sudo` *and* `rm`).
    pub commands: Vec<ShellCommandFacts>,
    /// Set when the line does not parse or is incomplete (open quote, trailing `|`, here-doc
    /// without terminator, too long, too deep): the parser's message. The engine denies it (ANY-0).
    pub unparsed: Option<String>,
}

/// One simple command.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ShellCommandFacts {
    /// Command name normalised through quoting and paths: `\rm`, `"rm"`, `r''m`, `$'rm'`,
    /// `/bin/rm` all give `rm`. Empty when the name is dynamic.
    pub name: String,
    /// The name as a path if it was written with a slash (`/bin/rm`), else `None`.
    pub path: Option<String>,
    /// Arguments after the name, quotes removed (literal words as the shell would pass them).
    /// Non-literal parts (`$x`, `$(..)`) are kept as written.
    pub args: Vec<String>,
    /// Flags: short clusters split (`-rf` -> `-r`, `-f`), long flags kept with their value
    /// stripped (`--recursive`, `--force`); only from arguments before `--`.
    pub flags: Vec<String>,
    /// Paths named by arguments and redirections, normalised (`/etc//shadow`, `/etc/./shadow`,
    /// `/etc/../etc/shadow` -> `/etc/shadow`); `~` is kept as `~`.
    pub paths: Vec<String>,
    /// Redirection targets (normalised paths) with their operator, e.g. `(">", "/dev/sda")`.
    pub redirects: Vec<(String, String)>,
    /// Names of the wrappers this command was found under, outermost first
    /// (`sudo nice rm` -> `rm` with `["sudo", "nice"]`).
    pub wrappers: Vec<String>,
    /// The command name, or code an interpreter runs, cannot be known statically: name is not a
    /// literal word (`$x`, `$(...)`, backticks, `rm${IFS}-rf`), `eval`, `source`/`.` of a
    /// non-literal path, an interpreter reading code from a pipe / here-doc / non-literal `-c`
    /// string, `python -c`, `perl -e`, `ruby -e`, `node -e` and the like.
    pub dynamic: bool,
    /// This command reads its input from a pipeline stage or substitution whose command is a
    /// downloader (`curl`, `wget`, `nc`, `ncat`, ...) — directly or through `tee` and the like.
    pub fed_by_download: bool,
    /// This command is a shell/interpreter (`sh`, `bash`, `zsh`, `dash`, `python*`, `perl`,
    /// `ruby`, `node`, `eval`, `source`) whose code comes from a download (pipe, `<(curl ..)`,
    /// `"$(curl ..)"`). SH-3.
    pub runs_download: bool,
    /// Position in the line (0-based order of discovery), for messages.
    pub index: usize,
    /// Arguments and redirection targets with unquoted glob characters (`/etc/sha*`),
    /// normalised like `paths`. Each is also in `paths`, together with every protected path it
    /// could match (`/etc/shadow`, `/etc/gshadow`, under `/root/.ssh/`, `.ssh/id_*` keys), so a
    /// rule written against `paths` judges a glob as the protected path it may expand to.
    pub globs: Vec<String>,
    /// This command is an interpreter that would read its program from standard input (`sh`,
    /// `bash -s`, `python3 -`, ...). When that input is a pipe, here-document or here-string,
    /// `dynamic` is set too; when it is the session's own input (an exec channel's stdin), the
    /// bastion never sees the program, so callers may treat this as dynamic on exec requests.
    pub interpreter_stdin: bool,
}
