//! Where an interpreter takes its code from: a string on the command line (`python -c`,
//! `perl -e`), standard input (`sh` with no script, `python3 -`), a script operand (a file, or a
//! process substitution like `bash <(curl ..)`), or nowhere because it is not an interpreter.
//! Shell `-c` strings are handled in `wrappers` (they are parsed, not just flagged).
use super::words::ShellWord;

/// The program source of one command.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum CodeSource {
    /// Not an interpreter, or an interpreter running a literal script file or module.
    NotCode,
    /// A shell running a `-c` string (judged by parsing the string).
    ShellString,
    /// Non-shell code given inline (`python -c`, `perl -e`, `node -e`, an `awk` program that
    /// runs commands): never known statically.
    Inline,
    /// The program is read from standard input.
    Stdin,
    /// The program is an operand that is not a literal file: a process substitution or a
    /// variable. `download` is set when that operand came from a downloader.
    DynamicOperand {
        /// The operand's content came from a downloader.
        download: bool,
    },
}

/// Classifies `argv` (name first) whose normalised name is `name`.
pub(super) fn code_source(name: &str, argv: &[ShellWord]) -> CodeSource {
    let args = argv.get(1..).unwrap_or(&[]);
    if is_shell(name) {
        return shell(args);
    }
    if name == "source" || name == "." {
        return match args.first() {
            Some(path) => operand_source(path),
            None => CodeSource::NotCode,
        };
    }
    if let Some(inline) = inline_option(name) {
        return scripting(args, inline);
    }
    if matches!(name, "awk" | "gawk" | "mawk" | "nawk" | "busybox-awk") {
        let program = args.iter().find(|w| !w.text.starts_with('-'));
        return match program {
            Some(p) if !p.is_static() => CodeSource::Inline,
            Some(p)
                if p.text.contains("system")
                    || p.text.contains('|')
                    || p.text.contains("getline") =>
            {
                CodeSource::Inline
            }
            _ => CodeSource::NotCode,
        };
    }
    CodeSource::NotCode
}

/// Shells that run `-c` strings and read scripts from standard input.
pub(super) fn is_shell(name: &str) -> bool {
    matches!(
        name,
        "sh" | "bash"
            | "zsh"
            | "dash"
            | "ksh"
            | "ash"
            | "mksh"
            | "yash"
            | "posh"
            | "fish"
            | "csh"
            | "tcsh"
    )
}

/// Interpreters SH-3 names besides shells (`python*`, `perl`, `ruby`, `node`, ...).
pub(super) fn is_interpreter(name: &str) -> bool {
    is_shell(name) || inline_option(name).is_some() || matches!(name, "eval" | "source" | ".")
}

/// The option letters that take inline code, for scripting languages.
fn inline_option(name: &str) -> Option<&'static [char]> {
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    match base {
        "python" | "pypy" => Some(&['c']),
        "perl" | "ruby" | "node" | "nodejs" | "lua" | "luajit" | "Rscript" => Some(&['e', 'E']),
        "php" => Some(&['r']),
        "tclsh" | "wish" | "jshell" | "deno" | "bun" | "osascript" => Some(&['e']),
        _ => None,
    }
}

fn shell(args: &[ShellWord]) -> CodeSource {
    let mut i = 0;
    while let Some(word) = args.get(i) {
        let arg = word.text.as_str();
        if arg == "-" || arg == "--" {
            i += 1;
            break;
        }
        if matches!(arg, "--rcfile" | "--init-file") {
            i += 2;
            continue;
        }
        if arg.starts_with("--") {
            i += 1;
            continue;
        }
        if (arg.starts_with('-') || arg.starts_with('+')) && arg.len() > 1 {
            if arg.starts_with('-') && arg.contains('c') {
                return CodeSource::ShellString;
            }
            if arg.starts_with('-') && arg.contains('s') {
                return CodeSource::Stdin;
            }
            i += if arg.ends_with(['o', 'O']) { 2 } else { 1 };
            continue;
        }
        break;
    }
    match args.get(i) {
        Some(script) => operand_source(script),
        None => CodeSource::Stdin,
    }
}

fn scripting(args: &[ShellWord], inline: &[char]) -> CodeSource {
    for word in args {
        let arg = word.text.as_str();
        if arg == "-" {
            return CodeSource::Stdin;
        }
        if arg == "--" {
            break;
        }
        if matches!(arg, "--eval" | "--print" | "--command") || arg.starts_with("--eval=") {
            return CodeSource::Inline;
        }
        if arg.starts_with('-') && !arg.starts_with("--") && arg.len() > 1 {
            if arg.chars().skip(1).any(|c| inline.contains(&c)) {
                return CodeSource::Inline;
            }
            // `python -m module` runs installed code; `-W x`, `-X x` take values.
            if arg == "-m" {
                return CodeSource::NotCode;
            }
            continue;
        }
        return operand_source(word);
    }
    CodeSource::Stdin
}

fn operand_source(word: &ShellWord) -> CodeSource {
    if word.process_substitution || !word.is_static() {
        return CodeSource::DynamicOperand {
            download: word.download,
        };
    }
    if matches!(
        word.text.as_str(),
        "/dev/stdin" | "/dev/fd/0" | "/proc/self/fd/0" | "-"
    ) {
        return CodeSource::Stdin;
    }
    CodeSource::NotCode
}
