//! Which interactive program a command line starts in the foreground: a nested shell (`bash`,
//! `ssh host`, `sudo -i`) or an interpreter with its own prompt (`python3`, `node`, `psql`). The
//! session uses it to know what reads the next lines: a nested shell's lines are judged as
//! command lines like the login shell's; an interpreter's lines are recorded as its input.
//!
//! Best effort, by words: quoting, aliases and functions are not followed, and a line with shell
//! operators (`;`, `|`, `&&`, redirections) is not recognised. Not recognising a program is the
//! safe side: its lines are then judged as command lines.

/// What kind of prompt the started program shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramKind {
    /// A shell: its lines are command lines.
    Shell,
    /// An interpreter or other read-eval loop: its lines are its own language.
    Interpreter,
}

/// An interactive program a command line starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedProgram {
    /// The program's name as typed, without its directory (`python3`, `bash`, `ssh`).
    pub name: String,
    /// Shell or interpreter.
    pub kind: ProgramKind,
}

/// Shells, also reached through `ssh`, `su` or `sudo -i`.
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "pdksh", "yash", "ash", "fish", "tcsh", "csh",
];
/// Interpreters and other programs that read lines at their own prompt.
const INTERPRETERS: &[&str] = &[
    "ipython",
    "ipython3",
    "bpython",
    "pypy",
    "pypy3",
    "irb",
    "pry",
    "node",
    "nodejs",
    "lua",
    "luajit",
    "R",
    "julia",
    "ghci",
    "scala",
    "sqlite3",
    "psql",
    "mysql",
    "mariadb",
    "redis-cli",
    "mongo",
    "mongosh",
    "bc",
    "gdb",
    "lldb",
    "ftp",
    "tclsh",
    "guile",
    "racket",
    "ocaml",
    "erl",
    "iex",
];
/// Words that run the rest of the line as the command.
const WRAPPERS: &[&str] = &["exec", "command", "nice", "nohup", "time", "builtin"];
/// `sudo` options that take a value as the next word.
const SUDO_VALUE_OPTIONS: &[&str] = &["-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T"];
/// `ssh` options that take a value as the next word.
const SSH_VALUE_OPTIONS: &[char] = &[
    'B', 'b', 'c', 'D', 'E', 'e', 'F', 'I', 'i', 'J', 'L', 'l', 'm', 'O', 'o', 'p', 'Q', 'R', 'S',
    'W', 'w',
];

/// The interactive program `line` starts, if it starts one (see the module doc for the limits).
#[must_use]
pub fn started_program(line: &str) -> Option<StartedProgram> {
    if line
        .chars()
        .any(|c| matches!(c, ';' | '|' | '&' | '<' | '>' | '(' | ')' | '`' | '\n'))
    {
        return None;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    program_of(&words)
}

fn program_of(words: &[&str]) -> Option<StartedProgram> {
    let mut rest = words;
    // Leading assignments (`LANG=C python3`).
    while let Some((first, tail)) = rest.split_first() {
        if is_assignment(first) {
            rest = tail;
        } else {
            break;
        }
    }
    let (&first, args) = rest.split_first()?;
    let name = first.rsplit('/').next().unwrap_or(first);
    if WRAPPERS.contains(&name) {
        return program_of(without_options(args));
    }
    match name {
        "env" => {
            let mut tail = args;
            while let Some((word, more)) = tail.split_first() {
                if word.starts_with('-') || is_assignment(word) {
                    tail = more;
                } else {
                    break;
                }
            }
            program_of(tail)
        }
        "sudo" | "doas" => sudo(name, args),
        "su" => (!args
            .iter()
            .any(|a| *a == "-c" || a.starts_with("--command")))
        .then(|| shell("su")),
        "ssh" | "mosh" => remote_shell(name, args),
        _ if SHELLS.contains(&name) => interactive_shell(name, args),
        _ if is_python(name) => repl_without_script(name, args),
        "perl" | "ruby" | "php" | "deno" => interpreter_without_script(name, args),
        _ if INTERPRETERS.contains(&name) => (!args
            .iter()
            .any(|a| matches!(*a, "-c" | "-e" | "-f" | "--command" | "--file")))
        .then(|| interpreter(name)),
        _ => None,
    }
}

fn shell(name: &str) -> StartedProgram {
    StartedProgram {
        name: name.to_string(),
        kind: ProgramKind::Shell,
    }
}

fn interpreter(name: &str) -> StartedProgram {
    StartedProgram {
        name: name.to_string(),
        kind: ProgramKind::Interpreter,
    }
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

fn is_python(name: &str) -> bool {
    name.strip_prefix("python")
        .is_some_and(|version| version.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// Skips leading options (words starting with `-`).
fn without_options<'a, 'b>(args: &'a [&'b str]) -> &'a [&'b str] {
    let skip = args.iter().take_while(|a| a.starts_with('-')).count();
    args.get(skip..).unwrap_or_default()
}

/// `sudo -i`, `sudo -s`, `sudo su`, `sudo bash`, `sudo python3`...
fn sudo(name: &str, args: &[&str]) -> Option<StartedProgram> {
    let mut index = 0;
    let mut login_shell = false;
    while let Some(word) = args.get(index) {
        if *word == "--" {
            index += 1;
            break;
        }
        if !word.starts_with('-') {
            break;
        }
        if matches!(*word, "-i" | "-s" | "--login" | "--shell")
            || (word.len() > 2 && !word.starts_with("--") && word.contains(['i', 's']))
        {
            login_shell = true;
        }
        index += if SUDO_VALUE_OPTIONS.contains(word) {
            2
        } else {
            1
        };
    }
    match args.get(index..) {
        Some(command) if !command.is_empty() => program_of(command),
        _ if login_shell => Some(shell(name)),
        _ => None,
    }
}

/// `ssh host` (no remote command) opens a shell on `host`.
fn remote_shell(name: &str, args: &[&str]) -> Option<StartedProgram> {
    let mut index = 0;
    while let Some(word) = args.get(index) {
        let Some(flags) = word.strip_prefix('-') else {
            break;
        };
        // `-p 22` takes the next word; `-p22` and `-vt` do not.
        let takes_value = flags
            .chars()
            .last()
            .is_some_and(|c| SSH_VALUE_OPTIONS.contains(&c))
            && flags.chars().count() == 1;
        index += if takes_value { 2 } else { 1 };
    }
    let operands = args.get(index..).unwrap_or_default();
    (operands.len() == 1).then(|| shell(name))
}

/// A shell started with options only (`bash`, `bash -l`, `sh -i`), not with a script or `-c`.
fn interactive_shell(name: &str, args: &[&str]) -> Option<StartedProgram> {
    let runs_code = args
        .iter()
        .any(|a| (!a.starts_with('-') && !a.starts_with('+')) || *a == "-c");
    (!runs_code || args.contains(&"-i")).then(|| shell(name))
}

/// `python3` or `python3 -q` opens a prompt; `python3 script.py` or `-c`/`-m` does not (`-i`
/// always does).
fn repl_without_script(name: &str, args: &[&str]) -> Option<StartedProgram> {
    if args.contains(&"-i") {
        return Some(interpreter(name));
    }
    let runs_code = args
        .iter()
        .any(|a| !a.starts_with('-') || matches!(*a, "-c" | "-m" | "-"));
    (!runs_code).then(|| interpreter(name))
}

/// `perl`, `ruby`, `php -a`, `deno` with no script read their program from the terminal.
fn interpreter_without_script(name: &str, args: &[&str]) -> Option<StartedProgram> {
    if name == "php" {
        return args.contains(&"-a").then(|| interpreter(name));
    }
    let runs_code = args
        .iter()
        .any(|a| !a.starts_with('-') || matches!(*a, "-e" | "-E"));
    (!runs_code).then(|| interpreter(name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn kind(line: &str) -> Option<(String, ProgramKind)> {
        started_program(line).map(|p| (p.name, p.kind))
    }

    fn is_shell(line: &str) -> bool {
        kind(line).is_some_and(|(_, k)| k == ProgramKind::Shell)
    }

    fn is_interpreter(line: &str) -> bool {
        kind(line).is_some_and(|(_, k)| k == ProgramKind::Interpreter)
    }

    #[test]
    fn nested_shells() {
        for line in [
            "bash",
            "/bin/bash -l",
            "sh -i",
            "zsh",
            "exec bash",
            "env -i bash --norc",
            "sudo -i",
            "sudo -u postgres -s",
            "sudo su -",
            "sudo bash",
            "su - admin",
            "ssh db1",
            "ssh -p 2222 -i key admin@db1",
            "TERM=xterm bash",
        ] {
            assert!(is_shell(line), "{line}");
        }
    }

    #[test]
    fn commands_that_do_not_open_a_prompt() {
        for line in [
            "bash script.sh",
            "bash -c 'ls'",
            "ssh db1 uptime",
            "python3 script.py",
            "python3 -c 'print(1)'",
            "python3 -m http.server",
            "su -c id",
            "sudo ls",
            "perl -e 'print 1'",
            "ruby script.rb",
            "php index.php",
            "psql -c 'select 1'",
            "ls -l",
            "",
            "bash; rm -rf /x",
            "python3 | cat",
        ] {
            assert_eq!(kind(line), None, "{line}");
        }
    }

    #[test]
    fn interpreters() {
        for line in [
            "python3",
            "python3.12 -q",
            "python -i script.py",
            "/usr/bin/python3",
            "node",
            "psql -h db -U app",
            "sqlite3 data.db",
            "perl",
            "php -a",
            "sudo python3",
            "irb",
        ] {
            assert!(is_interpreter(line), "{line}");
        }
        assert_eq!(kind("python3").unwrap().0, "python3");
    }
}
