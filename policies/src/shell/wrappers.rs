//! Commands that run other commands: wrappers whose remaining arguments are a command
//! (`sudo -u root rm ...`, `nice -n 5 rm ...`, `xargs rm`, `find ... -exec rm {} ;`) and
//! commands that run a string as shell code (`sh -c '...'`, `su -c`, `watch '...'`, `eval`).
//! Each wrapper is one row of a table: its options that take a value, the operands it takes
//! before the command, and the options whose value is shell code.
use std::ops::Range;

use super::words::ShellWord;

/// What a command runs besides itself.
#[derive(Debug)]
pub(super) enum Inner {
    /// `argv[range]` is a command (its name first).
    Argv(Range<usize>),
    /// Shell code in a string, to be parsed as if typed.
    Code(CodeText),
}

/// A string that a command runs as shell code.
#[derive(Debug, Clone, Default)]
pub(super) struct CodeText {
    /// The code, quotes of the outer line removed.
    pub text: String,
    /// Every word making up the code is static, so the code is known before the line runs.
    pub literal: bool,
    /// A substitution inside the code's words ran a downloader.
    pub download: bool,
}

impl CodeText {
    fn from_words(words: &[ShellWord]) -> Self {
        let text = words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            text,
            literal: words.iter().all(ShellWord::is_static),
            download: words.iter().any(|w| w.download),
        }
    }
}

/// How a wrapper reads its arguments.
struct Spec {
    /// Command names (basename) this row applies to.
    names: &'static [&'static str],
    /// Options that take the next argument (or the rest of a short cluster) as their value.
    value_options: &'static [&'static str],
    /// Options whose value is shell code (`su -c CMD`, `flock FILE -c CMD`).
    code_options: &'static [&'static str],
    /// Options after which no command runs (`command -v`, `taskset -p`).
    inert_options: &'static [&'static str],
    /// Operands before the command (`timeout DURATION`, `flock FILE`, `chrt PRIORITY`).
    operands: usize,
    /// `NAME=VALUE` words before the command are environment settings (`env`, `sudo`).
    assignments: bool,
    /// The remaining arguments are not a command (`su user -c CMD`: only the code options run).
    code_only: bool,
}

const fn spec(names: &'static [&'static str], value_options: &'static [&'static str]) -> Spec {
    Spec {
        names,
        value_options,
        code_options: &[],
        inert_options: &[],
        operands: 0,
        assignments: false,
        code_only: false,
    }
}

/// `su [-] [USER] -c CMD`: only the `-c` string runs as a command.
const SU: Spec = Spec {
    code_only: true,
    code_options: &["-c", "--command", "--session-command"],
    ..spec(
        &["su"],
        &[
            "-s",
            "--shell",
            "-g",
            "--group",
            "-G",
            "--supp-group",
            "-w",
            "--whitelist-environment",
        ],
    )
};

/// `script -c CMD [FILE]`.
const SCRIPT: Spec = Spec {
    code_only: true,
    code_options: &["-c", "--command"],
    ..spec(
        &["script"],
        &[
            "-E",
            "--echo",
            "-I",
            "--log-in",
            "-O",
            "--log-out",
            "-T",
            "--log-timing",
            "-B",
            "--log-io",
            "-m",
            "--logging-format",
        ],
    )
};

const WRAPPERS: &[Spec] = &[
    Spec {
        inert_options: &["-v", "-V"],
        ..spec(&["command"], &[])
    },
    spec(
        &[
            "builtin",
            "nohup",
            "setsid",
            "busybox",
            "unbuffer",
            "fakeroot",
            "catchsegv",
        ],
        &[],
    ),
    Spec {
        assignments: true,
        code_options: &["-S", "--split-string"],
        ..spec(&["env"], &["-u", "--unset", "-C", "--chdir", "-P"])
    },
    spec(&["nice"], &["-n", "--adjustment"]),
    spec(&["time"], &["-f", "--format", "-o", "--output"]),
    Spec {
        operands: 1,
        ..spec(&["timeout"], &["-s", "--signal", "-k", "--kill-after"])
    },
    spec(
        &["stdbuf"],
        &["-i", "--input", "-o", "--output", "-e", "--error"],
    ),
    spec(&["exec"], &["-a"]),
    spec(
        &["xargs"],
        &[
            "-a",
            "--arg-file",
            "-d",
            "--delimiter",
            "-E",
            "-e",
            "--eof",
            "-I",
            "--replace",
            "-L",
            "--max-lines",
            "-n",
            "--max-args",
            "-P",
            "--max-procs",
            "-s",
            "--max-chars",
            "--process-slot-var",
        ],
    ),
    Spec {
        operands: 1,
        code_options: &["-c", "--command"],
        ..spec(
            &["flock"],
            &["-w", "--timeout", "--wait", "-E", "--conflict-exit-code"],
        )
    },
    Spec {
        inert_options: &["-p", "--pid", "-P", "--pgid", "-u", "--uid"],
        ..spec(&["ionice"], &["-c", "--class", "-n", "--classdata"])
    },
    Spec {
        operands: 1,
        inert_options: &["-p", "--pid", "-m", "--max"],
        ..spec(
            &["chrt"],
            &[
                "-T",
                "--sched-runtime",
                "-P",
                "--sched-period",
                "-D",
                "--sched-deadline",
            ],
        )
    },
    Spec {
        operands: 1,
        inert_options: &["-p", "--pid"],
        ..spec(&["taskset"], &[])
    },
    Spec {
        assignments: true,
        inert_options: &[
            "-l",
            "--list",
            "-e",
            "--edit",
            "-v",
            "--validate",
            "-k",
            "-K",
            "-V",
        ],
        ..spec(
            &["sudo"],
            &[
                "-u",
                "--user",
                "-g",
                "--group",
                "-C",
                "--close-from",
                "-D",
                "--chdir",
                "-h",
                "--host",
                "-p",
                "--prompt",
                "-r",
                "--role",
                "-t",
                "--type",
                "-T",
                "--command-timeout",
                "-U",
                "--other-user",
                "-R",
                "--chroot",
            ],
        )
    },
    spec(&["doas"], &["-u", "-C"]),
    spec(&["pkexec"], &["--user", "-u"]),
    Spec {
        operands: 1,
        ..spec(&["chroot"], &["--userspec", "--groups"])
    },
    SU,
    SCRIPT,
];

/// Options of `runuser` in its `-u USER CMD` form (its other form is `su`'s).
const RUNUSER_VALUE_OPTIONS: &[&str] = &[
    "-u",
    "--user",
    "-g",
    "--group",
    "-G",
    "--supp-group",
    "-s",
    "--shell",
    "-w",
    "--whitelist-environment",
];

/// What `argv` (name first) runs besides itself. `name` is the normalised command name.
pub(super) fn inner_commands(name: &str, argv: &[ShellWord]) -> Vec<Inner> {
    match name {
        "sh" | "bash" | "zsh" | "dash" | "ksh" | "ash" | "mksh" | "yash" | "posh" => {
            shell_code(argv).into_iter().collect()
        }
        "eval" => {
            let words = argv.get(1..).unwrap_or(&[]);
            if words.is_empty() {
                Vec::new()
            } else {
                vec![Inner::Code(CodeText::from_words(words))]
            }
        }
        "watch" => watch(argv),
        "find" => find_exec(argv),
        "runuser" => {
            let uses_user = argv
                .iter()
                .skip(1)
                .any(|w| w.text == "-u" || w.text.starts_with("--user"));
            if uses_user {
                let spec = spec(&["runuser"], RUNUSER_VALUE_OPTIONS);
                read_wrapper(&spec, argv)
            } else {
                read_wrapper(&SU, argv)
            }
        }
        "alias" => argv
            .iter()
            .skip(1)
            .filter_map(|w| {
                let (_, value) = w.text.split_once('=')?;
                Some(Inner::Code(CodeText {
                    text: value.to_owned(),
                    literal: w.is_static(),
                    download: w.download,
                }))
            })
            .collect(),
        "trap" => argv
            .get(1)
            .filter(|w| !w.text.starts_with('-') && argv.len() > 2)
            .map(|w| Inner::Code(CodeText::from_words(std::slice::from_ref(w))))
            .into_iter()
            .collect(),
        _ => match WRAPPERS.iter().find(|s| s.names.contains(&name)) {
            Some(spec) => read_wrapper(spec, argv),
            None => Vec::new(),
        },
    }
}

/// Whether `name` is a wrapper this module sees through (used for the `flags` of wrappers).
pub(super) fn is_wrapper(name: &str) -> bool {
    WRAPPERS.iter().any(|s| s.names.contains(&name)) || matches!(name, "runuser" | "watch" | "eval")
}

fn read_wrapper(spec: &Spec, argv: &[ShellWord]) -> Vec<Inner> {
    let mut found = Vec::new();
    let mut operands = spec.operands;
    let mut i = 1;
    let mut options_done = false;
    while let Some(word) = argv.get(i) {
        let arg = word.text.as_str();
        if !options_done && arg == "--" {
            options_done = true;
            i += 1;
            continue;
        }
        if !options_done && arg.starts_with("--") && arg.len() > 2 {
            let (option, attached) = match arg.split_once('=') {
                Some((o, v)) => (o, Some(v)),
                None => (arg, None),
            };
            if spec.inert_options.contains(&option) {
                return found;
            }
            let takes_value =
                spec.value_options.contains(&option) || spec.code_options.contains(&option);
            let value_index = if attached.is_some() {
                None
            } else {
                Some(i + 1)
            };
            if spec.code_options.contains(&option) {
                push_code_value(&mut found, argv, word, attached, value_index);
            }
            i += if takes_value && attached.is_none() {
                2
            } else {
                1
            };
            continue;
        }
        if !options_done && arg.starts_with('-') && arg.len() > 1 {
            let mut skip_next = false;
            for (at, c) in arg.char_indices().skip(1) {
                let option = format!("-{c}");
                if spec.inert_options.contains(&option.as_str()) {
                    return found;
                }
                let is_code = spec.code_options.contains(&option.as_str());
                if spec.value_options.contains(&option.as_str()) || is_code {
                    let rest = arg.get(at + c.len_utf8()..).unwrap_or("");
                    if is_code {
                        let attached = (!rest.is_empty()).then_some(rest);
                        push_code_value(&mut found, argv, word, attached, Some(i + 1));
                    }
                    skip_next = rest.is_empty();
                    break;
                }
            }
            i += if skip_next { 2 } else { 1 };
            continue;
        }
        if spec.assignments && is_assignment(arg) {
            i += 1;
            continue;
        }
        if operands > 0 || arg == "-" {
            operands = operands.saturating_sub(usize::from(arg != "-"));
            i += 1;
            continue;
        }
        if spec.code_only {
            // `su user -c CMD`: later words are options of su (or arguments of the shell).
            options_done = false;
            operands = 0;
            i += 1;
            continue;
        }
        found.push(Inner::Argv(i..argv.len()));
        return found;
    }
    found
}

fn push_code_value(
    found: &mut Vec<Inner>,
    argv: &[ShellWord],
    word: &ShellWord,
    attached: Option<&str>,
    value_index: Option<usize>,
) {
    match attached {
        Some(text) => found.push(Inner::Code(CodeText {
            text: text.to_owned(),
            literal: word.is_static(),
            download: word.download,
        })),
        None => {
            if let Some(value) = value_index.and_then(|at| argv.get(at)) {
                found.push(Inner::Code(CodeText::from_words(std::slice::from_ref(
                    value,
                ))));
            }
        }
    }
}

fn is_assignment(arg: &str) -> bool {
    match arg.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

/// `sh -c CODE`, `bash -lc CODE`, `bash -o pipefail -c CODE`: the first operand after the
/// options is the code.
fn shell_code(argv: &[ShellWord]) -> Option<Inner> {
    let mut has_c = false;
    let mut i = 1;
    while let Some(word) = argv.get(i) {
        let arg = word.text.as_str();
        if arg == "--" || arg == "-" {
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
            if arg.contains('c') && arg.starts_with('-') {
                has_c = true;
            }
            // `-o OPTION` / `-O SHOPT` take a value.
            i += if arg.ends_with(['o', 'O']) { 2 } else { 1 };
            continue;
        }
        break;
    }
    if !has_c {
        return None;
    }
    argv.get(i)
        .map(|code| Inner::Code(CodeText::from_words(std::slice::from_ref(code))))
}

/// `watch [options] CMD...` runs `sh -c "CMD..."`; with `-x` it runs the words as a command.
fn watch(argv: &[ShellWord]) -> Vec<Inner> {
    let mut exec = false;
    let mut i = 1;
    while let Some(word) = argv.get(i) {
        let arg = word.text.as_str();
        if arg == "--" {
            i += 1;
            break;
        }
        if !arg.starts_with('-') || arg.len() < 2 {
            break;
        }
        if arg == "--exec" || (!arg.starts_with("--") && arg.contains('x')) {
            exec = true;
        }
        let takes_value = matches!(arg, "-n" | "--interval" | "-q" | "--equexit")
            || (!arg.starts_with("--") && (arg.ends_with('n') || arg.ends_with('q')));
        i += if takes_value { 2 } else { 1 };
    }
    let rest = argv.get(i..).unwrap_or(&[]);
    if rest.is_empty() {
        Vec::new()
    } else if exec {
        vec![Inner::Argv(i..argv.len())]
    } else {
        vec![Inner::Code(CodeText::from_words(rest))]
    }
}

/// `find ... -exec CMD ... ;` (also `+`, `-execdir`, `-ok`, `-okdir`), each one a command.
fn find_exec(argv: &[ShellWord]) -> Vec<Inner> {
    let mut found = Vec::new();
    let mut i = 1;
    while let Some(word) = argv.get(i) {
        if matches!(word.text.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
            let start = i + 1;
            let mut end = start;
            while let Some(w) = argv.get(end) {
                if w.text == ";" || (w.text == "+" && end > start) {
                    break;
                }
                end += 1;
            }
            if end > start {
                found.push(Inner::Argv(start..end));
            }
            i = end + 1;
        } else {
            i += 1;
        }
    }
    found
}
