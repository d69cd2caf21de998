//! The AST walk: every simple command a line would run, in pipelines, and-or lists,
//! subshells, brace groups, `if`/`while`/`until`/`for`/`case` bodies, function definitions,
//! coprocesses, command and process substitutions, here-documents, and code strings run by
//! wrappers (`sh -c`, `eval`, `su -c`, `watch`), with what feeds each command's standard input
//! (so `curl x | sh` and `bash <<EOF` are seen for what they are).
use brush_parser::ast::{
    self, Command, CommandPrefixOrSuffixItem, CompoundCommand, CompoundList, ExtendedTestExpr,
    IoFileRedirectKind, IoFileRedirectTarget, IoRedirect, Pipeline, ProcessSubstitutionKind,
    RedirectList, SimpleCommand,
};
use brush_parser::ParserOptions;

use super::command_facts;
use super::download;
use super::facts::ShellCommandFacts;
use super::interpreters::{self, CodeSource};
use super::parse::{self, ShellLimits};
use super::paths;
use super::words::{self, ShellWord};
use super::wrappers::{self, Inner};

/// Where a command's standard input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StdinKind {
    /// Whatever the line's own input is (the terminal, or an exec channel).
    Inherited,
    /// A pipe, here-document, here-string or process substitution: data written on the line.
    Stream,
    /// A literal file (`< script.sh`).
    File,
}

/// What feeds standard input, and whether it carries downloaded data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stdin {
    kind: StdinKind,
    download: bool,
}

const INHERITED: Stdin = Stdin {
    kind: StdinKind::Inherited,
    download: false,
};

/// Context that nested commands inherit.
#[derive(Debug, Clone)]
struct Scope {
    /// Wrappers the commands are found under, outermost first.
    wrappers: Vec<String>,
    /// Standard input of the commands.
    stdin: Stdin,
    /// Nesting of code strings and substitutions.
    depth: usize,
}

/// Why the walk stopped early.
#[derive(Debug, thiserror::Error)]
pub(super) enum WalkError {
    /// A parse failure in the line or in nested code.
    #[error(transparent)]
    Parse(#[from] parse::ParseFailure),
    /// A word the word parser refused.
    #[error("command line does not parse: {0}")]
    Word(String),
    /// Too many commands.
    #[error("command line runs more than {0} commands")]
    TooManyCommands(usize),
    /// Too deep.
    #[error("command line nests code strings or substitutions more than {0} levels deep")]
    TooDeep(usize),
    /// A `[[ ]]` expression with too many operators.
    #[error("conditional expression nests more than {0} operators deep")]
    TestTooDeep(usize),
}

/// Deepest `[[ ]]` operator nesting walked (the walk over it recurses).
const MAX_TEST_NESTING: usize = 64;

/// Collects the facts of every command of one line.
pub(super) struct Walker<'a> {
    limits: &'a ShellLimits,
    options: ParserOptions,
    commands: Vec<ShellCommandFacts>,
}

impl<'a> Walker<'a> {
    /// A walker bounded by `limits`.
    pub(super) fn new(limits: &'a ShellLimits) -> Self {
        Self {
            limits,
            options: parse::options(),
            commands: Vec::new(),
        }
    }

    /// Walks a whole line.
    pub(super) fn walk_line(mut self, line: &str) -> Result<Vec<ShellCommandFacts>, WalkError> {
        let scope = Scope {
            wrappers: Vec::new(),
            stdin: INHERITED,
            depth: 0,
        };
        self.walk_code(line, &scope)?;
        Ok(self.commands)
    }

    /// Parses and walks shell code (the line, a substitution body, a `-c` string).
    fn walk_code(&mut self, code: &str, scope: &Scope) -> Result<(), WalkError> {
        if scope.depth > self.limits.max_depth {
            return Err(WalkError::TooDeep(self.limits.max_depth));
        }
        let program = parse::parse_program(code, self.limits, &self.options)?;
        for list in &program.complete_commands {
            self.walk_list(list, scope)?;
        }
        Ok(())
    }

    /// Walks nested code and tells whether any command in it touched downloaded data.
    fn walk_nested(&mut self, code: &str, scope: &Scope) -> Result<bool, WalkError> {
        let nested = Scope {
            depth: scope.depth + 1,
            ..scope.clone()
        };
        let before = self.commands.len();
        self.walk_code(code, &nested)?;
        Ok(self.tainted_since(before))
    }

    fn tainted_since(&self, before: usize) -> bool {
        self.commands
            .get(before..)
            .unwrap_or(&[])
            .iter()
            .any(|c| c.fed_by_download || c.runs_download || is_download_source(c))
    }

    fn walk_list(&mut self, list: &CompoundList, scope: &Scope) -> Result<(), WalkError> {
        for item in &list.0 {
            for (_, pipeline) in item.0.iter() {
                self.walk_pipeline(pipeline, scope)?;
            }
        }
        Ok(())
    }

    fn walk_pipeline(&mut self, pipeline: &Pipeline, scope: &Scope) -> Result<(), WalkError> {
        let mut tainted = scope.stdin.download;
        for (stage, command) in pipeline.seq.iter().enumerate() {
            let stdin = if stage == 0 {
                scope.stdin
            } else {
                Stdin {
                    kind: StdinKind::Stream,
                    download: tainted,
                }
            };
            let stage_scope = Scope {
                stdin,
                ..scope.clone()
            };
            let before = self.commands.len();
            self.walk_command(command, &stage_scope)?;
            tainted |= self.tainted_since(before);
        }
        Ok(())
    }

    fn walk_command(&mut self, command: &Command, scope: &Scope) -> Result<(), WalkError> {
        match command {
            Command::Simple(simple) => self.walk_simple(simple, scope),
            Command::Compound(compound, redirects) => {
                self.walk_with_redirects(redirects.as_ref(), scope, |w, s| {
                    w.walk_compound(compound, s)
                })
            }
            Command::Function(definition) => {
                let body = &definition.body;
                self.walk_with_redirects(body.1.as_ref(), scope, |w, s| w.walk_compound(&body.0, s))
            }
            Command::ExtendedTest(test, redirects) => {
                self.walk_with_redirects(redirects.as_ref(), scope, |w, s| {
                    w.walk_test_expr(&test.expr, s, 0)
                })
            }
        }
    }

    /// Applies a compound command's redirections to every command found inside it.
    fn walk_with_redirects(
        &mut self,
        redirects: Option<&RedirectList>,
        scope: &Scope,
        body: impl FnOnce(&mut Self, &Scope) -> Result<(), WalkError>,
    ) -> Result<(), WalkError> {
        let mut io = Io::new(scope.stdin);
        if let Some(list) = redirects {
            for redirect in &list.0 {
                self.add_redirect(redirect, scope, &mut io)?;
            }
        }
        let inner = Scope {
            stdin: io.stdin,
            ..scope.clone()
        };
        let before = self.commands.len();
        body(self, &inner)?;
        for facts in self.commands.get_mut(before..).unwrap_or(&mut []) {
            io.apply(facts);
        }
        Ok(())
    }

    fn walk_compound(
        &mut self,
        compound: &CompoundCommand,
        scope: &Scope,
    ) -> Result<(), WalkError> {
        match compound {
            CompoundCommand::Arithmetic(arith) => self.walk_arithmetic(&arith.expr.value, scope),
            CompoundCommand::ArithmeticForClause(clause) => {
                for expr in [&clause.initializer, &clause.condition, &clause.updater]
                    .into_iter()
                    .flatten()
                {
                    self.walk_arithmetic(&expr.value, scope)?;
                }
                self.walk_list(&clause.body.list, scope)
            }
            CompoundCommand::BraceGroup(group) => self.walk_list(&group.list, scope),
            CompoundCommand::Subshell(subshell) => self.walk_list(&subshell.list, scope),
            CompoundCommand::ForClause(clause) => {
                for value in clause.values.iter().flatten() {
                    self.read_word(&value.value, scope)?;
                }
                self.walk_list(&clause.body.list, scope)
            }
            CompoundCommand::CaseClause(clause) => {
                self.read_word(&clause.value.value, scope)?;
                for item in &clause.cases {
                    for pattern in &item.patterns {
                        self.read_word(&pattern.value, scope)?;
                    }
                    if let Some(list) = &item.cmd {
                        self.walk_list(list, scope)?;
                    }
                }
                Ok(())
            }
            CompoundCommand::IfClause(clause) => {
                self.walk_list(&clause.condition, scope)?;
                self.walk_list(&clause.then, scope)?;
                for branch in clause.elses.iter().flatten() {
                    if let Some(condition) = &branch.condition {
                        self.walk_list(condition, scope)?;
                    }
                    self.walk_list(&branch.body, scope)?;
                }
                Ok(())
            }
            CompoundCommand::WhileClause(clause) | CompoundCommand::UntilClause(clause) => {
                self.walk_list(&clause.0, scope)?;
                self.walk_list(&clause.1.list, scope)
            }
            CompoundCommand::Coprocess(coprocess) => self.walk_command(&coprocess.body, scope),
        }
    }

    fn walk_arithmetic(&mut self, expr: &str, scope: &Scope) -> Result<(), WalkError> {
        self.read_word(expr, scope).map(|_| ())
    }

    fn walk_test_expr(
        &mut self,
        expr: &ExtendedTestExpr,
        scope: &Scope,
        depth: usize,
    ) -> Result<(), WalkError> {
        if depth > MAX_TEST_NESTING {
            return Err(WalkError::TestTooDeep(MAX_TEST_NESTING));
        }
        match expr {
            ExtendedTestExpr::And(a, b) | ExtendedTestExpr::Or(a, b) => {
                self.walk_test_expr(a, scope, depth + 1)?;
                self.walk_test_expr(b, scope, depth + 1)
            }
            ExtendedTestExpr::Not(a) | ExtendedTestExpr::Parenthesized(a) => {
                self.walk_test_expr(a, scope, depth + 1)
            }
            ExtendedTestExpr::UnaryTest(_, word) => self.read_word(&word.value, scope).map(|_| ()),
            ExtendedTestExpr::BinaryTest(_, left, right) => {
                self.read_word(&left.value, scope)?;
                self.read_word(&right.value, scope).map(|_| ())
            }
        }
    }

    /// Reads a word and walks the substitutions inside it (they run before the command).
    fn read_word(&mut self, raw: &str, scope: &Scope) -> Result<ShellWord, WalkError> {
        let mut word =
            words::read_word(raw, &self.options).map_err(|e| WalkError::Word(e.to_string()))?;
        self.walk_substitutions(&mut word, scope)?;
        Ok(word)
    }

    fn walk_substitutions(&mut self, word: &mut ShellWord, scope: &Scope) -> Result<(), WalkError> {
        for body in std::mem::take(&mut word.substitutions) {
            word.download |= self.walk_nested(&body, scope)?;
        }
        Ok(())
    }

    fn walk_simple(&mut self, simple: &SimpleCommand, scope: &Scope) -> Result<(), WalkError> {
        let mut argv: Vec<ShellWord> = Vec::new();
        let mut io = Io::new(scope.stdin);
        let prefix = simple.prefix.iter().flat_map(|p| p.0.iter());
        let suffix = simple.suffix.iter().flat_map(|s| s.0.iter());
        for item in prefix {
            match item {
                CommandPrefixOrSuffixItem::AssignmentWord(_, word) => {
                    // `FOO=$(cmd) name`: the assignment is not the name, its substitution runs.
                    self.read_word(&word.value, scope)?;
                }
                other => self.add_item(other, scope, &mut argv, &mut io)?,
            }
        }
        if let Some(name) = &simple.word_or_name {
            argv.push(self.read_word(&name.value, scope)?);
        }
        for item in suffix {
            self.add_item(item, scope, &mut argv, &mut io)?;
        }
        if argv.is_empty() {
            if io.redirects.is_empty() {
                return Ok(());
            }
            // A redirection alone (`> /etc/shadow`) still opens its file: report it.
            let mut facts = ShellCommandFacts::default();
            io.apply(&mut facts);
            return self.push(facts);
        }
        let command_scope = Scope {
            stdin: io.stdin,
            ..scope.clone()
        };
        self.emit(&argv, &io, &command_scope)
    }

    /// Adds one word, redirection or process substitution of a simple command.
    fn add_item(
        &mut self,
        item: &CommandPrefixOrSuffixItem,
        scope: &Scope,
        argv: &mut Vec<ShellWord>,
        io: &mut Io,
    ) -> Result<(), WalkError> {
        match item {
            CommandPrefixOrSuffixItem::Word(word)
            | CommandPrefixOrSuffixItem::AssignmentWord(_, word) => {
                argv.push(self.read_word(&word.value, scope)?);
            }
            CommandPrefixOrSuffixItem::IoRedirect(redirect) => {
                self.add_redirect(redirect, scope, io)?
            }
            CommandPrefixOrSuffixItem::ProcessSubstitution(kind, subshell) => {
                argv.push(self.process_substitution(kind, subshell, scope)?);
            }
        }
        Ok(())
    }

    /// Walks `<(..)` / `>(..)`; returns the argument word that stands for it.
    fn process_substitution(
        &mut self,
        kind: &ProcessSubstitutionKind,
        subshell: &ast::SubshellCommand,
        scope: &Scope,
    ) -> Result<ShellWord, WalkError> {
        if scope.depth >= self.limits.max_depth {
            return Err(WalkError::TooDeep(self.limits.max_depth));
        }
        let nested = Scope {
            depth: scope.depth + 1,
            stdin: match kind {
                // `tee >(sh)`: the substitution reads what the command writes.
                ProcessSubstitutionKind::Write => Stdin {
                    kind: StdinKind::Stream,
                    download: scope.stdin.download,
                },
                ProcessSubstitutionKind::Read => scope.stdin,
            },
            ..scope.clone()
        };
        let before = self.commands.len();
        self.walk_list(&subshell.list, &nested)?;
        let download = self.tainted_since(before);
        Ok(ShellWord {
            text: format!("{kind}({})", subshell.list),
            process_substitution: true,
            download,
            ..ShellWord::default()
        })
    }

    fn add_redirect(
        &mut self,
        redirect: &IoRedirect,
        scope: &Scope,
        io: &mut Io,
    ) -> Result<(), WalkError> {
        match redirect {
            IoRedirect::File(fd, kind, target) => {
                let op = format!("{}{kind}", fd.map(|n| n.to_string()).unwrap_or_default());
                let reads_stdin = matches!(
                    kind,
                    IoFileRedirectKind::Read | IoFileRedirectKind::ReadAndWrite
                ) && fd.is_none_or(|n| n == 0);
                match target {
                    IoFileRedirectTarget::Filename(word)
                    | IoFileRedirectTarget::Duplicate(word) => {
                        let read = self.read_word(&word.value, scope)?;
                        let is_fd = matches!(target, IoFileRedirectTarget::Duplicate(_))
                            && (read.text == "-" || read.text.chars().all(|c| c.is_ascii_digit()));
                        if is_fd {
                            io.redirects.push((op, read.text));
                            return Ok(());
                        }
                        let normalized = paths::normalize(&read.text);
                        if reads_stdin {
                            io.stdin = Stdin {
                                kind: StdinKind::File,
                                download: download::is_network_path(&normalized) || read.download,
                            };
                        }
                        io.redirects.push((op, normalized));
                        io.words.push(read);
                    }
                    IoFileRedirectTarget::Fd(n) => io.redirects.push((op, n.to_string())),
                    IoFileRedirectTarget::ProcessSubstitution(kind, subshell) => {
                        let word = self.process_substitution(kind, subshell, scope)?;
                        if reads_stdin {
                            io.stdin = Stdin {
                                kind: StdinKind::Stream,
                                download: word.download,
                            };
                        }
                        io.redirects.push((op, word.text));
                    }
                }
            }
            IoRedirect::HereDocument(fd, doc) => {
                let download = if doc.requires_expansion {
                    let mut body = words::read_heredoc(&doc.doc.value, &self.options)
                        .map_err(|e| WalkError::Word(e.to_string()))?;
                    self.walk_substitutions(&mut body, scope)?;
                    body.download
                } else {
                    false
                };
                if fd.is_none_or(|n| n == 0) {
                    io.stdin = Stdin {
                        kind: StdinKind::Stream,
                        download,
                    };
                }
                io.redirects
                    .push(("<<".to_owned(), doc.here_end.value.clone()));
            }
            IoRedirect::HereString(fd, word) => {
                let read = self.read_word(&word.value, scope)?;
                if fd.is_none_or(|n| n == 0) {
                    io.stdin = Stdin {
                        kind: StdinKind::Stream,
                        download: read.download,
                    };
                }
                io.redirects.push(("<<<".to_owned(), read.text));
            }
            IoRedirect::OutputAndError(word, append) => {
                let read = self.read_word(&word.value, scope)?;
                let op = if *append { "&>>" } else { "&>" };
                io.redirects
                    .push((op.to_owned(), paths::normalize(&read.text)));
                io.words.push(read);
            }
        }
        Ok(())
    }

    /// Reports the command `argv` and everything it runs (wrapped commands, code strings).
    fn emit(&mut self, argv: &[ShellWord], io: &Io, scope: &Scope) -> Result<(), WalkError> {
        let Some(name_word) = argv.first() else {
            return Ok(());
        };
        let probe = command_facts::build(std::slice::from_ref(name_word), 0);
        let inner = if probe.dynamic {
            Vec::new()
        } else {
            wrappers::inner_commands(&probe.name, argv)
        };
        let own_args = inner
            .iter()
            .filter_map(|i| match i {
                Inner::Argv(range) => Some(range.start.saturating_sub(1)),
                Inner::Code(_) => None,
            })
            .min()
            .unwrap_or(argv.len());
        let own_args = if wrappers::is_wrapper(&probe.name) {
            own_args
        } else {
            argv.len()
        };
        let mut facts = command_facts::build(argv, own_args);
        facts.wrappers = scope.wrappers.clone();
        facts.fed_by_download = scope.stdin.download;
        if name_word.download {
            // The command name itself is downloaded text (`$(curl ..) args`).
            facts.runs_download = true;
        }
        io.apply(&mut facts);
        if !facts.dynamic {
            self.judge_code_source(argv, scope, &mut facts);
        }
        let name = facts.name.clone();
        let index = self.commands.len();
        self.push(facts)?;

        let mut nested = scope.clone();
        nested.wrappers.push(name);
        for item in inner {
            match item {
                Inner::Argv(range) => {
                    if let Some(words) = argv.get(range) {
                        self.emit(words, io, &nested)?;
                    }
                }
                Inner::Code(code) => {
                    if code.literal {
                        let download = self.walk_nested(&code.text, &nested)?;
                        if download {
                            self.mark(index, |f| f.runs_download = true);
                        }
                    } else {
                        self.mark(index, |f| {
                            f.dynamic = true;
                            f.runs_download |= code.download;
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Sets `dynamic`, `runs_download` and `interpreter_stdin` from where the program comes.
    fn judge_code_source(&self, argv: &[ShellWord], scope: &Scope, facts: &mut ShellCommandFacts) {
        match interpreters::code_source(&facts.name, argv) {
            CodeSource::NotCode | CodeSource::ShellString => {}
            CodeSource::Inline => facts.dynamic = true,
            CodeSource::DynamicOperand { download } => {
                facts.dynamic = true;
                facts.runs_download |= download;
            }
            CodeSource::Stdin => {
                facts.interpreter_stdin = true;
                match scope.stdin.kind {
                    StdinKind::Stream => facts.dynamic = true,
                    StdinKind::File if scope.stdin.download => facts.dynamic = true,
                    StdinKind::File | StdinKind::Inherited => {}
                }
                facts.runs_download |= scope.stdin.download;
            }
        }
        // Under `xargs`, the arguments (and so a `-c` string's operands) are read from stdin.
        let args_from_stdin = scope.wrappers.last().is_some_and(|w| w == "xargs");
        if interpreters::is_interpreter(&facts.name)
            && scope.stdin.download
            && (facts.interpreter_stdin || args_from_stdin)
        {
            facts.runs_download = true;
        }
    }

    fn mark(&mut self, index: usize, change: impl FnOnce(&mut ShellCommandFacts)) {
        if let Some(facts) = self.commands.get_mut(index) {
            change(facts);
        }
    }

    fn push(&mut self, mut facts: ShellCommandFacts) -> Result<(), WalkError> {
        if self.commands.len() >= self.limits.max_commands {
            return Err(WalkError::TooManyCommands(self.limits.max_commands));
        }
        facts.index = self.commands.len();
        self.commands.push(facts);
        Ok(())
    }
}

/// A command whose output is downloaded data.
fn is_download_source(facts: &ShellCommandFacts) -> bool {
    download::is_downloader(&facts.name)
        || facts
            .redirects
            .iter()
            .any(|(op, target)| op.contains('<') && download::is_network_path(target))
}

/// The redirections of one command and the standard input they give it.
struct Io {
    stdin: Stdin,
    redirects: Vec<(String, String)>,
    words: Vec<ShellWord>,
}

impl Io {
    fn new(stdin: Stdin) -> Self {
        Self {
            stdin,
            redirects: Vec::new(),
            words: Vec::new(),
        }
    }

    /// Adds the redirections and the paths they name to a command's facts.
    fn apply(&self, facts: &mut ShellCommandFacts) {
        for redirect in &self.redirects {
            if !facts.redirects.contains(redirect) {
                facts.redirects.push(redirect.clone());
            }
        }
        for word in &self.words {
            let texts = if word.brace {
                words::expand_braces(&word.text, 64)
            } else {
                vec![word.text.clone()]
            };
            for text in texts {
                command_facts::add_path(&text, word.glob, facts);
            }
        }
    }
}
