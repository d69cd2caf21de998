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
        let args: Vec<String> = [
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
            alice.private.display().to_string(),
            "-p".to_string(),
            bastion.ssh_port.to_string(),
            "alice@web1@127.0.0.1".to_string(),
        ])
        .collect();
        let term = TmuxTerminal::start("ssh", &args, 120, 40).unwrap();
        let shell = Shell {
            sshd,
            bastion,
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
