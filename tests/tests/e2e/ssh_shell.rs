//! Interactive shells through the bastion (issue 8) end to end: a real sshd and the login user's
//! real bash, reached with `ssh -tt` running inside tmux, typed at with `send-keys` and read with
//! `capture-pane`. Each test asserts what the terminal shows, what the target did (a directory
//! that a denied `rm -rf` would have removed is still there), and what the audit trail and the
//! asciicast recording hold. Screen content is polled with generous deadlines.
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};
use tests::bastion::BastionProcess;
use tests::os;
use tests::ssh::{generate_key, KeyPair, SshServer, TmuxTerminal};

/// sshd, bastion, the users' keys, a work directory the login user owns, and the terminal.
struct Shell {
    sshd: SshServer,
    bastion: BastionProcess,
    /// alice's private key, for further clients.
    alice_key: PathBuf,
    _keys: tempfile::TempDir,
    work: tempfile::TempDir,
    term: TmuxTerminal,
}

fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// How the target's sshd treats the bastion's `PROMPT_COMMAND`.
#[derive(Clone, Copy, PartialEq)]
enum Markers {
    /// `AcceptEnv PROMPT_COMMAND`: bash prints the prompt marker.
    Accepted,
    /// The stock config refuses it: lines are found by their echo alone.
    Refused,
}

fn config(sshd: &SshServer, alice: &KeyPair, dana: &KeyPair) -> String {
    format!(
        r#"[server]
node = "t1"
ssh_listen = "127.0.0.1:{{SSH_PORT}}"
state_dir = "{{DIR}}/state"
audit_dir = "{{DIR}}/audit"

[[users]]
name = "alice"
kind = "human"
groups = ["engineers"]
public_keys = ["{alice}"]

[[users]]
name = "dana"
kind = "human"
groups = ["dba", "engineers"]
public_keys = ["{dana}"]

[[targets]]
name = "web1"
protocol = "ssh"
address = "127.0.0.1:{port}"
tags = {{ env = "prod" }}
upstream_user = "{user}"
credential = "bastion:key"
host_key = "{pin}"

[policies]
paths = ["{policies}"]

[recorder]
roll_max_age = "1s"
"#,
        alice = alice.public,
        dana = dana.public,
        port = sshd.port(),
        user = sshd.user(),
        pin = sshd.host_key().unwrap(),
        policies = policies_dir().display(),
    )
}

/// `ssh -tt` through the bastion to alice@web1 with `key`, no config, no host key checks.
fn client_args(key: &Path, port: u16) -> Vec<String> {
    [
        "-tt",
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "LogLevel=ERROR",
        "-i",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        key.display().to_string(),
        "-p".to_string(),
        port.to_string(),
        "alice@web1@127.0.0.1".to_string(),
    ])
    .collect()
}

impl Shell {
    /// Starts everything and waits until alice's shell on web1 runs a first command.
    fn start(markers: Markers) -> Shell {
        let sshd = match markers {
            Markers::Accepted => SshServer::start_accepting_env(&["PROMPT_COMMAND"]),
            Markers::Refused => SshServer::start(),
        }
        .expect("sshd starts");
        let keys = tempfile::tempdir().unwrap();
        let alice = generate_key(keys.path(), "alice").unwrap();
        let dana = generate_key(keys.path(), "dana").unwrap();
        let bastion = BastionProcess::start(&config(&sshd, &alice, &dana)).expect("bastion starts");
        let out = bastion.cli(&["keys", "client-public"]).unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        sshd.authorize(text(&out.stdout).trim()).unwrap();
        let work = tempfile::Builder::new()
            .prefix("bastion-shell-")
            .tempdir_in("/tmp")
            .unwrap();
        os::open_dir(work.path()).unwrap();
        os::chown_to(sshd.user(), work.path()).unwrap();
        let args = client_args(&alice.private, bastion.ssh_port);
        let term = TmuxTerminal::start_watched("ssh", &args, 120, 40).unwrap();
        let shell = Shell {
            sshd,
            bastion,
            alice_key: alice.private,
            _keys: keys,
            work,
            term,
        };
        // Keys typed before the first prompt would be read at a stale position: wait for it.
        shell.wait_for("$ ", 1);
        shell.run("echo ready-$((40+2))");
        shell.wait_for("ready-42", 1);
        shell
    }

    /// Types `line` and presses Enter.
    fn run(&self, line: &str) {
        self.term.type_text(line).unwrap();
        self.term.keys(&["Enter"]).unwrap();
    }

    /// Waits until the terminal shows `needle` at least `times` times.
    fn wait_for(&self, needle: &str, times: usize) -> String {
        match self.term.wait_for_text(needle, times) {
            Ok(screen) => screen,
            Err(e) => panic!("{e}\nbastion log:\n{}", self.bastion.log()),
        }
    }

    /// How many shell prompts the terminal shows so far.
    fn prompts(&self) -> usize {
        self.term.history().unwrap().matches("$ ").count()
    }

    /// Waits until the terminal shows more than `before` prompts (a program returned to the
    /// shell), so keys typed next go to the shell and not to the program.
    fn wait_for_prompt_after(&self, before: usize) {
        self.wait_for("$ ", before + 1);
    }

    /// A directory owned by the login user, so that a `rm -rf` that ran would remove it.
    fn victim_dir(&self, name: &str) -> PathBuf {
        let dir = self.work.path().join(name);
        std::fs::create_dir_all(dir.join("inside")).unwrap();
        std::fs::write(dir.join("inside/file"), "keep me").unwrap();
        os::chown_to(self.sshd.user(), &dir).unwrap();
        dir
    }

    /// `bastion audit query --format json`, polled until `done` accepts the rows (guard 30 s).
    fn audit_until(&self, sql: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        self.bastion.audit_until(sql, done)
    }

    /// The shell lines of the trail (kind `shell`, without the session's own `shell` row),
    /// polled until one has `text` (and, if given, an exit status).
    fn shell_rows_until(&self, text: &str, with_exit_status: bool) -> Vec<Value> {
        let rows = self.audit_until(
            "SELECT seq, text, decision, policy_ids, statement_class, exit_status, outcome, \
             message FROM actions WHERE kind = 'shell' AND text <> 'shell' ORDER BY seq",
            |rows| {
                rows.iter().any(|r| {
                    r["text"] == text && (!with_exit_status || !r["exit_status"].is_null())
                })
            },
        );
        assert!(
            rows.iter().any(|r| r["text"] == text),
            "no shell action {text:?} in {rows:#?}\nbastion log:\n{}",
            self.bastion.log()
        );
        rows
    }

    /// The text of the session's asciicast recording(s).
    fn recording(&self) -> String {
        let root = self.bastion.dir.path().join("audit/recordings");
        let mut casts = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "cast") {
                    casts.push(path);
                }
            }
        }
        assert!(!casts.is_empty(), "no .cast file under {}", root.display());
        casts
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    /// Ends the shell so the recording is closed, and waits for the session to end.
    fn exit(&self) {
        self.run("exit");
        self.audit_until("SELECT end_reason FROM sessions", |rows| {
            rows.iter().any(|r| !r["end_reason"].is_null())
        });
    }
}

fn row<'a>(rows: &'a [Value], text: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["text"] == text)
        .unwrap_or_else(|| panic!("no row {text:?} in {rows:#?}"))
}

#[test]
fn allowed_lines_run_and_a_denied_line_is_erased_with_a_red_notice() {
    let s = Shell::start(Markers::Accepted);
    s.run("echo hello-$((6*7))");
    s.wait_for("hello-42", 1);

    let victim = s.victim_dir("victim");
    let rm = format!("rm -rf {}", victim.display());
    s.run(&rm);
    let screen = s.wait_for("bastion: denied by policy SH-1", 1);
    assert!(
        screen.contains("destructive commands are not allowed on web1"),
        "{screen}"
    );
    // The shell is at a fresh prompt and still works.
    s.run("sh -c 'exit 3'");
    s.run("echo after-deny-$((1+1))");
    s.wait_for("after-deny-2", 1);
    assert!(victim.join("inside/file").exists(), "the denied rm ran");

    let rows = s.shell_rows_until("sh -c 'exit 3'", true);
    let hello = row(&rows, "echo hello-$((6*7))");
    assert_eq!(hello["decision"], "allow");
    assert_eq!(hello["exit_status"], 0);
    assert_eq!(row(&rows, "sh -c 'exit 3'")["exit_status"], 3);
    let denied = row(&rows, &rm);
    assert_eq!(denied["decision"], "deny");
    assert!(
        denied["policy_ids"].to_string().contains("SH-1"),
        "{denied}"
    );

    s.exit();
    let cast = s.recording();
    assert!(cast.starts_with("{\"version\":2"), "{cast}");
    assert!(cast.contains("hello-42"), "{cast}");
    assert!(cast.contains("bastion: denied by policy SH-1"), "{cast}");

    // The sessions row names the recording, and the auditor's replay commands read it back.
    let sessions = s.audit_until(
        "SELECT session_id, recording FROM sessions WHERE recording IS NOT NULL",
        |rows| !rows.is_empty(),
    );
    let session = sessions
        .first()
        .unwrap_or_else(|| panic!("no sessions row with a recording"));
    let recording = session["recording"].as_str().unwrap();
    assert!(
        s.bastion.dir.path().join("audit").join(recording).exists(),
        "{recording}"
    );
    let id = session["session_id"].as_str().unwrap();
    let played = s
        .bastion
        .cli(&["audit", "replay", id, "--speed", "0"])
        .unwrap();
    assert!(played.status.success(), "{}", text(&played.stderr));
    assert!(text(&played.stdout).contains("hello-42"));
    let listed = s
        .bastion
        .cli(&["audit", "replay", "--actions", id])
        .unwrap();
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listed = text(&listed.stdout);
    assert!(listed.contains("echo hello-$((6*7))"), "{listed}");
    assert!(listed.contains(&rm) && listed.contains("deny"), "{listed}");
}

#[test]
fn a_line_recalled_from_history_and_edited_or_completed_with_tab_is_judged_as_shown() {
    let s = Shell::start(Markers::Accepted);
    let victim = s.victim_dir("recalled");
    let rm = format!("rm -rf {}", victim.display());
    // Allowed: it only prints the command.
    s.run(&format!("echo {rm}"));
    s.wait_for(&rm, 2);
    // Up recalls it; Left moves back over the rm command and Backspace deletes "echo ".
    s.term.keys(&["Up"]).unwrap();
    s.wait_for(&format!("echo {rm}"), 2);
    let lefts = vec!["Left"; rm.chars().count()];
    s.term.keys(&lefts).unwrap();
    s.term.keys(&["BSpace"; 5]).unwrap();
    s.term.keys(&["Enter"]).unwrap();
    s.wait_for("bastion: denied by policy SH-1", 1);
    assert!(victim.join("inside/file").exists(), "the edited rm ran");

    // Tab completes /etc/sha to /etc/shadow: judged as completed (SH-2), so cat never runs.
    s.term.type_text("cat /etc/sha").unwrap();
    s.term.keys(&["Tab"]).unwrap();
    s.wait_for("cat /etc/shadow", 1);
    s.term.keys(&["Enter"]).unwrap();
    let screen = s.wait_for("bastion: denied by policy SH-2", 1);
    assert!(!screen.contains("Permission denied"), "cat ran:\n{screen}");

    let rows = s.shell_rows_until("cat /etc/shadow", false);
    assert_eq!(row(&rows, &format!("echo {rm}"))["decision"], "allow");
    assert_eq!(row(&rows, &rm)["decision"], "deny");
    assert_eq!(row(&rows, "cat /etc/shadow")["decision"], "deny");
}

#[test]
fn vim_is_one_action_and_a_secret_typed_without_echo_is_never_recorded() {
    let s = Shell::start(Markers::Accepted);
    let dir = s.victim_dir("notes");
    let note = dir.join("note.txt");
    let vim = format!("vim -u NONE -N {}", note.display());
    let prompts = s.prompts();
    s.run(&vim);
    s.wait_for("[New]", 1);
    s.term.type_text("ihello-from-vim").unwrap();
    s.term.keys(&["Escape"]).unwrap();
    s.term.type_text(":wq").unwrap();
    s.term.keys(&["Enter"]).unwrap();
    s.wait_for_prompt_after(prompts);
    s.run(&format!("tr a-z A-Z < {}", note.display()));
    s.wait_for("HELLO-FROM-VIM", 1);
    assert_eq!(
        std::fs::read_to_string(&note).unwrap().trim(),
        "hello-from-vim"
    );

    s.run("read -s -p 'Secret: ' pw; echo got-${#pw}");
    // Once in the echoed command line, once as read's prompt.
    s.wait_for("Secret: ", 2);
    s.term.type_text("hunter2-s3cret").unwrap();
    s.term.keys(&["Enter"]).unwrap();
    s.wait_for("got-14", 1);

    let rows = s.shell_rows_until("read -s -p 'Secret: ' pw; echo got-${#pw}", true);
    let vim_row = row(&rows, &vim);
    assert_eq!(vim_row["decision"], "allow");
    assert!(
        vim_row["message"]
            .as_str()
            .is_some_and(|m| m.contains("full-screen program")),
        "{vim_row}"
    );
    let all = serde_json::to_string(&rows).unwrap();
    for typed in ["hello-from-vim", ":wq", "hunter2"] {
        // Keys typed inside vim and the secret are no actions (cat's line names the file only).
        assert!(
            !rows
                .iter()
                .any(|r| r["text"].as_str().is_some_and(|t| t.contains(typed))),
            "{typed:?} recorded as an action: {all}"
        );
    }
    s.exit();
    let cast = s.recording();
    assert!(!cast.contains("hunter2"), "the secret is in the recording");
    assert!(cast.contains("got-14"), "{cast}");
}

#[test]
fn a_multi_line_paste_is_held_and_decided_line_by_line() {
    let s = Shell::start(Markers::Accepted);
    let victim = s.victim_dir("pasted");
    let rm = format!("rm -rf {}", victim.display());
    s.term
        .paste(&format!(
            "echo paste-one-$((1))\n{rm}\necho paste-three-$((3))\n"
        ))
        .unwrap();
    let screen = s.wait_for("paste-three-3", 1);
    let one = screen.find("paste-one-1").expect("the first line ran");
    let notice = screen
        .find("bastion: denied by policy SH-1")
        .expect("the second line was denied");
    let three = screen.rfind("paste-three-3").unwrap_or_default();
    assert!(one < notice && notice < three, "{screen}");
    assert!(victim.join("inside/file").exists(), "the pasted rm ran");
    let rows = s.shell_rows_until("echo paste-three-$((3))", false);
    assert_eq!(row(&rows, "echo paste-one-$((1))")["decision"], "allow");
    assert_eq!(row(&rows, &rm)["decision"], "deny");
}

/// Polls `approvals list` with `token` until a request appears; returns it.
fn wait_for_request(s: &Shell, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = s
            .bastion
            .cli(&["approvals", "list", "--format", "json", "--token", token])
            .unwrap();
        let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(first) = list.into_iter().next() {
            return first;
        }
        assert!(
            Instant::now() < deadline,
            "no approval request: {}\n{}",
            text(&out.stderr),
            s.bastion.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn approver_token(s: &Shell) -> String {
    let socket = s.bastion.dir.path().join("state/admin.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "admin socket never answered");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out: Output = s
        .bastion
        .cli(&["token", "issue", "--user", "dana", "--scope", "approve"])
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

#[test]
fn a_step_up_line_waits_for_approval_and_keys_typed_meanwhile_follow_it() {
    let s = Shell::start(Markers::Accepted);
    let token = approver_token(&s);
    s.run("eval echo approved-$((6*7))");
    s.wait_for("waiting for approval", 1);
    // Typed while the line waits: held, not sent ahead of it.
    s.run("echo typed-while-waiting-$((2+2))");
    let request = wait_for_request(&s, &token);
    assert_eq!(request["text"], "eval echo approved-$((6*7))");
    let screen = s.term.history().unwrap();
    assert!(
        !screen.contains("typed-while-waiting"),
        "keys were sent ahead of the held line:\n{screen}"
    );
    let id = request["id"].as_str().unwrap().to_string();
    let out = s
        .bastion
        .cli(&["approvals", "approve", &id, "--token", &token])
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let screen = s.wait_for("typed-while-waiting-4", 1);
    let approved = screen.find("approved-42").expect("the approved line ran");
    assert!(
        approved < screen.find("typed-while-waiting-4").unwrap_or_default(),
        "{screen}"
    );
    let rows = s.shell_rows_until("eval echo approved-$((6*7))", true);
    assert_eq!(
        row(&rows, "eval echo approved-$((6*7))")["decision"],
        "step_up"
    );
}

#[test]
fn a_step_up_line_cancelled_with_ctrl_c_never_runs() {
    let s = Shell::start(Markers::Accepted);
    s.run("eval echo never-$((6*7))");
    s.wait_for("waiting for approval", 1);
    s.term.keys(&["C-c"]).unwrap();
    s.wait_for("cancelled", 1);
    s.run("echo still-here-$((1+1))");
    let screen = s.wait_for("still-here-2", 1);
    assert!(
        !screen.contains("never-42"),
        "the cancelled line ran:\n{screen}"
    );
}

#[test]
fn lines_typed_to_an_interpreter_are_recorded_and_the_shell_is_judged_again_after_it() {
    let s = Shell::start(Markers::Accepted);
    s.run("python3 -q");
    s.wait_for(">>> ", 1);
    s.run("print('py-%d' % (6*7))");
    s.wait_for("py-42", 1);
    let prompts = s.prompts();
    s.run("exit()");
    s.wait_for_prompt_after(prompts);
    let victim = s.victim_dir("after-python");
    let rm = format!("rm -rf {}", victim.display());
    s.run(&rm);
    s.wait_for("bastion: denied by policy SH-1", 1);
    assert!(
        victim.join("inside/file").exists(),
        "the rm after python ran"
    );
    let rows = s.shell_rows_until(&rm, false);
    let print = row(&rows, "print('py-%d' % (6*7))");
    assert_eq!(print["decision"], "allow");
    assert_eq!(print["statement_class"], "input:python3");
    assert_eq!(row(&rows, &rm)["decision"], "deny");
}

#[test]
fn without_prompt_markers_lines_are_read_by_their_echo() {
    let s = Shell::start(Markers::Refused);
    let victim = s.victim_dir("no-markers");
    let rm = format!("rm -rf {}", victim.display());
    s.run(&rm);
    s.wait_for("bastion: denied by policy SH-1", 1);
    s.run("echo fine-$((3*3))");
    s.wait_for("fine-9", 1);
    assert!(victim.join("inside/file").exists(), "the denied rm ran");
    let rows = s.shell_rows_until("echo fine-$((3*3))", false);
    assert_eq!(row(&rows, &rm)["decision"], "deny");
    assert_eq!(row(&rows, "echo fine-$((3*3))")["decision"], "allow");
}

#[test]
fn keys_typed_ahead_while_a_command_runs_are_judged_before_the_shell_reads_them() {
    let s = Shell::start(Markers::Accepted);
    let victim = s.victim_dir("typed-ahead");
    let rm = format!("rm -rf {}", victim.display());
    // Typed while sleep runs: the shell would read the line when sleep ends. Its Enter is held
    // and the line judged (by its echo, or refused as unreadable if it was not echoed yet).
    let prompts = s.prompts();
    s.run("sleep 2");
    s.run(&rm);
    s.wait_for("bastion: denied by policy", 1);
    s.wait_for_prompt_after(prompts);
    // Whatever of the line the shell still holds is submitted again: denied again if there.
    s.term.keys(&["Enter"]).unwrap();
    s.run("echo awake-$((2*2))");
    s.wait_for("awake-4", 1);
    assert!(
        victim.join("inside/file").exists(),
        "the typed-ahead rm ran"
    );
}

#[test]
fn a_quoted_newline_cannot_hide_a_second_command_behind_an_allowed_first_line() {
    let s = Shell::start(Markers::Accepted);
    let victim = s.victim_dir("quoted-newline");
    // Ctrl-V Ctrl-J inserts a newline into the line; Enter would run both lines.
    s.term.type_text("echo hi").unwrap();
    s.term.keys(&["C-v", "C-j"]).unwrap();
    s.term
        .type_text(&format!("rm -rf {}", victim.display()))
        .unwrap();
    s.term.keys(&["Enter"]).unwrap();
    s.wait_for("bastion: denied by policy ANY-0", 1);
    s.run("echo next-$((5*5))");
    s.wait_for("next-25", 1);
    assert!(victim.join("inside/file").exists(), "the hidden rm ran");
}

// How a shell ends: the exit status reaches the client, a client that goes away ends the
// session and the command it left running on the target, and the ordinary ways out (`exit`,
// Ctrl-D) end the client without delay.

/// Deadlock guard for a client that should exit (a hang is the failure these tests look for).
const EXIT_GUARD: Duration = Duration::from_secs(30);

impl Shell {
    /// Waits for the ssh client in the terminal to exit; its exit status.
    fn client_exit_status(&self) -> i32 {
        match self.term.wait_for_exit(EXIT_GUARD) {
            Ok(status) => status,
            Err(e) => panic!("{e}\nbastion log:\n{}", self.bastion.log()),
        }
    }

    /// The session's `sessions` row once it has an end reason.
    fn ended_session(&self) -> Value {
        let rows = self.audit_until(
            "SELECT session_id, end_reason FROM sessions WHERE end_reason IS NOT NULL",
            |rows| !rows.is_empty(),
        );
        assert_eq!(
            rows.len(),
            1,
            "{rows:#?}\nbastion log:\n{}",
            self.bastion.log()
        );
        rows[0].clone()
    }

    /// Every `shell` action (the session's own `shell` row included), polled until `done`.
    fn shell_actions_until(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        self.audit_until(
            "SELECT seq, text, decision, exit_status, outcome, message FROM actions \
             WHERE kind = 'shell' ORDER BY seq",
            done,
        )
    }
}

/// Polls `pgrep -f pattern` until it answers `running`, at most [`EXIT_GUARD`]; false if not.
fn process_becomes(pattern: &str, running: bool) -> bool {
    let deadline = Instant::now() + EXIT_GUARD;
    loop {
        if tests::ssh::process_running(pattern).unwrap() == running {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn exit_with_a_status_ends_the_client_with_that_status_and_the_session_is_recorded() {
    let s = Shell::start(Markers::Accepted);
    s.run("exit 3");
    assert_eq!(s.client_exit_status(), 3, "{}", s.term.history().unwrap());
    let session = s.ended_session();
    assert_eq!(session["end_reason"], "client_closed", "{session}");
    let finished = |rows: &[Value], text: &str| {
        rows.iter()
            .any(|r| r["text"] == text && !r["outcome"].is_null())
    };
    let rows = s.shell_actions_until(|rows| finished(rows, "exit 3") && finished(rows, "shell"));
    let exit = row(&rows, "exit 3");
    assert_eq!(exit["decision"], "allow", "{rows:#?}");
    assert_eq!(exit["exit_status"], 3, "{rows:#?}");
    let shell = row(&rows, "shell");
    assert_eq!(shell["exit_status"], 3, "{rows:#?}");
    assert_eq!(shell["outcome"], "error", "{rows:#?}");
}

#[test]
fn a_client_killed_while_a_command_runs_ends_the_session_and_the_command_on_the_target() {
    let s = Shell::start(Markers::Accepted);
    // A number no other process on the machine has on its command line.
    let sleep = format!("sleep {}", 7_000_000 + std::process::id());
    s.run(&sleep);
    assert!(
        process_becomes(&sleep, true),
        "{sleep} never ran on the target"
    );
    let client = s.term.command_pid().unwrap();
    os::run(std::process::Command::new("kill").args(["-KILL", &client.to_string()])).unwrap();

    let session = s.ended_session();
    assert!(
        session["end_reason"].is_string(),
        "{session}\nbastion log:\n{}",
        s.bastion.log()
    );
    // The upstream channel was closed: the target's shell hung up and took its job with it.
    assert!(
        process_becomes(&sleep, false),
        "{sleep} still runs on the target after the client went away\nbastion log:\n{}",
        s.bastion.log()
    );
    // The shell action ended, as cancelled by the client (no exit status came).
    let rows = s.shell_actions_until(|rows| {
        rows.iter()
            .any(|r| r["text"] == "shell" && !r["outcome"].is_null())
    });
    let shell = row(&rows, "shell");
    assert_eq!(shell["outcome"], "cancelled", "{rows:#?}");
    assert_eq!(
        shell["message"], "the client closed the channel first",
        "{rows:#?}"
    );
    assert!(shell["exit_status"].is_null(), "{rows:#?}");
    assert_eq!(row(&rows, &sleep)["outcome"], "cancelled", "{rows:#?}");

    // The bastion goes on serving: a new shell runs a command.
    let args = client_args(&s.alice_key, s.bastion.ssh_port);
    let again = TmuxTerminal::start_watched("ssh", &args, 120, 40).unwrap();
    again.wait_for_text("$ ", 1).unwrap();
    again.type_text("echo again-$((3+4))").unwrap();
    again.keys(&["Enter"]).unwrap();
    if let Err(e) = again.wait_for_text("again-7", 1) {
        panic!("{e}\nbastion log:\n{}", s.bastion.log());
    }
}

#[test]
fn a_client_that_leaves_with_the_escape_sequence_ends_the_command_on_the_target() {
    let s = Shell::start(Markers::Accepted);
    let sleep = format!("sleep {}", 8_000_000 + std::process::id());
    s.run(&sleep);
    assert!(
        process_becomes(&sleep, true),
        "{sleep} never ran on the target"
    );
    // `~.` after a newline: the OpenSSH client closes its connection and exits.
    s.term.keys(&["Enter"]).unwrap();
    s.term.type_text("~.").unwrap();
    assert_eq!(s.client_exit_status(), 255, "{}", s.term.history().unwrap());
    s.ended_session();
    assert!(
        process_becomes(&sleep, false),
        "{sleep} still runs on the target after the client went away\nbastion log:\n{}",
        s.bastion.log()
    );
}

/// `cat`, a line for it, Ctrl-D right behind that line's Enter (what the keystroke benchmark
/// sends: the Ctrl-D reaches the bastion before the screen shows the Enter's newline), then
/// `exit` at the shell's next prompt: the client exits 0.
fn exit_after_cat_ended_with_ctrl_d(markers: Markers) {
    let s = Shell::start(markers);
    s.run("echo cat-runs-$((1+1)); cat");
    // Typed once cat reads the terminal (its line would otherwise be typed ahead).
    s.wait_for("cat-runs-2", 1);
    let prompts = s.prompts();
    s.term.type_text("xxxxxxxx").unwrap();
    s.term.keys(&["Enter", "C-d"]).unwrap();
    s.wait_for_prompt_after(prompts);
    s.run("exit");
    assert_eq!(
        s.client_exit_status(),
        0,
        "{}\nbastion log:\n{}",
        s.term.history().unwrap(),
        s.bastion.log()
    );
    s.ended_session();
    let rows = s.shell_actions_until(|rows| {
        rows.iter()
            .any(|r| r["text"] == "exit" && !r["outcome"].is_null())
    });
    assert_eq!(row(&rows, "exit")["decision"], "allow", "{rows:#?}");
    assert_eq!(row(&rows, "xxxxxxxx")["decision"], "allow", "{rows:#?}");
}

#[test]
fn exit_after_cat_was_ended_with_ctrl_d_ends_the_client() {
    exit_after_cat_ended_with_ctrl_d(Markers::Accepted);
}

#[test]
fn without_prompt_markers_exit_after_cat_was_ended_with_ctrl_d_ends_the_client() {
    exit_after_cat_ended_with_ctrl_d(Markers::Refused);
}

#[test]
fn ctrl_d_at_an_empty_prompt_ends_the_shell_and_the_client() {
    let s = Shell::start(Markers::Accepted);
    s.term.keys(&["C-d"]).unwrap();
    assert_eq!(s.client_exit_status(), 0, "{}", s.term.history().unwrap());
    s.ended_session();
    let rows = s.shell_actions_until(|rows| {
        rows.iter()
            .any(|r| r["text"] == "shell" && !r["outcome"].is_null())
    });
    assert_eq!(row(&rows, "shell")["exit_status"], 0, "{rows:#?}");
}

#[test]
fn without_prompt_markers_ctrl_d_at_an_empty_prompt_ends_the_shell_and_the_client() {
    let s = Shell::start(Markers::Refused);
    s.term.keys(&["C-d"]).unwrap();
    assert_eq!(s.client_exit_status(), 0, "{}", s.term.history().unwrap());
    s.ended_session();
}

/// An OpenSSH multiplexing master (`ssh -M -N -S socket`) to alice@web1 through the bastion;
/// killed when dropped.
struct MuxMaster {
    child: std::process::Child,
    socket: PathBuf,
}

impl Drop for MuxMaster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Shell {
    /// A multiplexing master on alice's key, once its control socket answers.
    fn mux_master(&self) -> MuxMaster {
        let socket = self.work.path().join("mux");
        let mut args = client_args(&self.alice_key, self.bastion.ssh_port);
        args.retain(|a| a != "-tt");
        let child = std::process::Command::new("ssh")
            .args(["-M", "-N", "-S"])
            .arg(&socket)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let master = MuxMaster { child, socket };
        let deadline = Instant::now() + EXIT_GUARD;
        loop {
            let check = std::process::Command::new("ssh")
                .arg("-S")
                .arg(&master.socket)
                .args(["-O", "check", "alice@web1@127.0.0.1"])
                .output()
                .unwrap();
            if check.status.success() {
                return master;
            }
            assert!(
                Instant::now() < deadline,
                "mux master never ready: {}\n{}",
                text(&check.stderr),
                self.bastion.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A terminal whose `ssh -tt` runs a shell on `master`'s connection, at its first prompt.
    fn mux_terminal(&self, master: &MuxMaster) -> TmuxTerminal {
        let mut args = vec!["-S".to_string(), master.socket.display().to_string()];
        args.extend(client_args(&self.alice_key, self.bastion.ssh_port));
        let term = TmuxTerminal::start_watched("ssh", &args, 120, 40).unwrap();
        if let Err(e) = term.wait_for_text("$ ", 1) {
            panic!("{e}\nbastion log:\n{}", self.bastion.log());
        }
        term
    }
}

/// Waits (deadlock guard) for the ssh client in `term` to exit; its status.
fn exit_status_of(s: &Shell, term: &TmuxTerminal) -> i32 {
    match term.wait_for_exit(EXIT_GUARD) {
        Ok(status) => status,
        Err(e) => panic!(
            "{e}\nterminal:\n{}\nbastion log:\n{}",
            term.history().unwrap_or_default(),
            s.bastion.log()
        ),
    }
}

/// `ssh -tt -S socket` on `master` whose input is a pipe: types `line` and Enter at the first
/// prompt, then ends its input; returns the client's exit status and what it printed.
fn mux_client_with_closed_input(s: &Shell, master: &MuxMaster, line: &str) -> (i32, String) {
    use std::io::{Read, Write};
    let mut child = std::process::Command::new("ssh")
        .arg("-S")
        .arg(&master.socket)
        .args(client_args(&s.alice_key, s.bastion.ssh_port))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = output.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let printed = || text(&output.lock().unwrap());
    let deadline = Instant::now() + EXIT_GUARD;
    while !printed().contains("$ ") {
        assert!(
            Instant::now() < deadline,
            "no prompt: {}\nbastion log:\n{}",
            printed(),
            s.bastion.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{line}\r").as_bytes()).unwrap();
    drop(stdin);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code().unwrap_or(-1), printed());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the client did not exit: {}\nbastion log:\n{}",
                printed(),
                s.bastion.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_multiplexed_shell_whose_client_input_ended_keeps_its_exit_status() {
    // The target sends its EOF before the exit status. A multiplexing master whose client's
    // input has ended closes the channel as soon as that EOF arrives: the status must come first.
    let s = Shell::start(Markers::Accepted);
    let master = s.mux_master();
    // The last one closes the terminal half a second before it exits.
    let exits = [
        ("exit 5", 5),
        (
            "exec sh -c 'exec </dev/null >/dev/null 2>&1; sleep 0.5; exit 9'",
            9,
        ),
    ];
    for (line, status) in exits {
        let (code, printed) = mux_client_with_closed_input(&s, &master, line);
        assert_eq!(
            code,
            status,
            "{line}: {printed}\nbastion log:\n{}",
            s.bastion.log()
        );
    }
}

#[test]
fn a_multiplexed_shell_whose_client_is_killed_ends_its_command_and_frees_its_channel() {
    // The client's channel closes while the connection (the master's) lives on.
    let s = Shell::start(Markers::Accepted);
    let master = s.mux_master();
    let term = s.mux_terminal(&master);
    let sleep = format!("sleep {}", 9_000_000 + std::process::id());
    term.type_text(&sleep).unwrap();
    term.keys(&["Enter"]).unwrap();
    assert!(
        process_becomes(&sleep, true),
        "{sleep} never ran on the target"
    );
    let client = term.command_pid().unwrap();
    os::run(std::process::Command::new("kill").args(["-KILL", &client.to_string()])).unwrap();
    // The same connection opens another shell that works. (It also wakes the master: OpenSSH
    // sends the dead client's EOF and close at its next event, and talking to a server that is
    // not OpenSSH it has none until then; without it the bastion's 30 s keepalive is the next.)
    let again = s.mux_terminal(&master);
    again.type_text("echo again-$((2+5))").unwrap();
    again.keys(&["Enter"]).unwrap();
    if let Err(e) = again.wait_for_text("again-7", 1) {
        panic!("{e}\nbastion log:\n{}", s.bastion.log());
    }
    assert!(
        process_becomes(&sleep, false),
        "{sleep} still runs on the target after its client went away\nbastion log:\n{}",
        s.bastion.log()
    );
    // The killed client's shell action ended as cancelled by the client.
    let cancelled = |rows: &[Value]| {
        rows.iter()
            .filter(|r| r["text"] == "shell" && r["outcome"] == "cancelled")
            .count()
    };
    let rows = s.shell_actions_until(|rows| cancelled(rows) == 1);
    assert_eq!(
        cancelled(&rows),
        1,
        "{rows:#?}\nbastion log:\n{}",
        s.bastion.log()
    );
    let shell = rows
        .iter()
        .find(|r| r["text"] == "shell" && r["outcome"] == "cancelled")
        .unwrap();
    assert_eq!(
        shell["message"], "the client closed the channel first",
        "{rows:#?}"
    );
    let slept = row(&rows, &sleep);
    assert_eq!(slept["outcome"], "cancelled", "{rows:#?}");
    again.type_text("exit").unwrap();
    again.keys(&["Enter"]).unwrap();
    assert_eq!(exit_status_of(&s, &again), 0);
}
