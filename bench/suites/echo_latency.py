"""Keystroke echo latency: echo_latency.py N ssh ARGS... -- spawns the ssh command on a pty,
starts `cat > /dev/null` on the remote shell (so only the terminal's echo comes back), then
types N characters one at a time and prints, one per line, the seconds from each keystroke to
its echo. Used by bench/suites/ssh.sh for direct, ProxyJump and bastion alike."""
import fcntl, os, pty, select, signal, struct, sys, termios, time

def read_until(fd, needle, timeout):
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"waited for {needle!r}, got {buf[-200:]!r}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError(f"session ended; last output {buf[-200:]!r}")
            buf += chunk
    return buf

def main():
    n = int(sys.argv[1])
    pid, fd = pty.fork()
    if pid == 0:
        # A real terminal's size (a fresh pty is 0x0), as an interactive user's would be.
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.execvp(sys.argv[2], sys.argv[2:])
    time.sleep(0.5)
    os.write(fd, b"PS1='READY> '; stty echo; cat > /dev/null\r")
    read_until(fd, b"cat > /dev/null", 30)
    time.sleep(0.3)
    while select.select([fd], [], [], 0.2)[0]:
        os.read(fd, 65536)
    out = []
    for i in range(n):
        if i and i % 60 == 0:
            os.write(fd, b"\r")
            read_until(fd, b"\n", 10)
        t0 = time.perf_counter()
        os.write(fd, b"x")
        read_until(fd, b"x", 10)
        out.append(time.perf_counter() - t0)
    print("\n".join(f"{s:.6f}" for s in out), flush=True)
    # Leave: end cat and the shell, then make sure the client is gone either way.
    os.write(fd, b"\r\x04")
    time.sleep(0.2)
    os.write(fd, b"exit\r")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)

if __name__ == "__main__":
    main()
