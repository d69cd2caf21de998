# SSH suite for scripts/bench (sourced): direct sshd vs OpenSSH ProxyJump (through the same
# sshd as jump host) vs the bastion. Writes {"suite":"ssh","kind":"scp"|"sftp"|"true"|"echo",...}.

SW=$WORK/ssh
mkdir -p "$SW"
SSH_USER=$(id -un); [ "$(id -u)" -eq 0 ] && SSH_USER=bastion-ssh
SSHD_PORT=$(free_port); BASTION_SSH_PORT=$(free_port)
ssh-keygen -q -t ed25519 -N '' -f "$SW/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$SW/client_key"

echo "==> bastion (ssh, allow-all policy, recording on) on $BASTION_SSH_PORT"
cat > "$SW/bastion.toml" <<TOML
[server]
ssh_listen = "127.0.0.1:$BASTION_SSH_PORT"
state_dir = "$SW/state"
audit_dir = "$SW/audit"
[[users]]
name = "bench"
kind = "human"
groups = ["engineers"]
public_keys = ["$(cat "$SW/client_key.pub")"]
[[targets]]
name = "box"
protocol = "ssh"
address = "127.0.0.1:$SSHD_PORT"
upstream_user = "$SSH_USER"
credential = "bastion:key"
host_key = "$(cut -d' ' -f1,2 "$SW/host_key.pub")"
[policies]
paths = ["$WORK/policies"]
[recorder]
durability = "os"
TOML
{ cat "$SW/client_key.pub"; "$BASTION" keys client-public --config "$SW/bastion.toml"; } > "$SW/authorized_keys"
chmod 644 "$SW/authorized_keys"

echo "==> sshd on $SSHD_PORT"
cat > "$SW/sshd_config" <<CONF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $SW/host_key
PidFile $SW/sshd.pid
AuthorizedKeysFile $SW/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers $SSH_USER
AllowTcpForwarding yes
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -D -e -f "$SW/sshd_config" 2> "$SW/sshd.log" &
pids+=($!)
"$BASTION" serve --config "$SW/bastion.toml" > "$SW/bastion.log" 2>&1 &
pids+=($!)
wait_port "$SSHD_PORT"
wait_port "$BASTION_SSH_PORT"

cat > "$SW/ssh_config" <<CONF
Host direct jump proxyjump
    HostName 127.0.0.1
    Port $SSHD_PORT
    User $SSH_USER
Host proxyjump
    ProxyJump jump
Host bastion
    HostName 127.0.0.1
    Port $BASTION_SSH_PORT
    User bench@box
Host *
    IdentityFile $SW/client_key
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    BatchMode yes
CONF
SSHC=(-F "$SW/ssh_config")
for t in direct proxyjump bastion; do
    ssh "${SSHC[@]}" "$t" true || { echo "ssh suite: $t does not answer; logs in $SW" >&2; cat "$SW/bastion.log" >&2; exit 1; }
done

if [ "$QUICK" = 1 ]; then MIB=64; ROUNDS=2; TRIPS=10; KEYS=200
else MIB=1024; ROUNDS=3; TRIPS=30; KEYS=1000; fi
head -c $((MIB * 1024 * 1024)) /dev/urandom > "$SW/payload"
printf 'put %s bench-sftp.bin\n' "$SW/payload" > "$SW/sftp-batch"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.6f", b-a}'; }
ssh_row() { echo "{\"suite\":\"ssh\",\"kind\":\"$1\",\"round\":$2,\"target\":\"$3\",\"seconds\":$4,\"bytes\":$5}" >> "$RAW"; }

echo "==> ssh: $ROUNDS rounds: ${MIB} MiB scp -O and sftp uploads, $TRIPS x 'ssh host true', $KEYS keystrokes"
for round in $(seq "$ROUNDS"); do
    for t in direct proxyjump bastion; do
        t0=$(now); scp -q -O "${SSHC[@]}" "$SW/payload" "$t:bench-scp.bin"; t1=$(now)
        ssh_row scp "$round" "$t" "$(elapsed "$t0" "$t1")" $((MIB * 1024 * 1024))
        t0=$(now); sftp -q "${SSHC[@]}" -b "$SW/sftp-batch" "$t" >/dev/null; t1=$(now)
        ssh_row sftp "$round" "$t" "$(elapsed "$t0" "$t1")" $((MIB * 1024 * 1024))
        for _ in $(seq "$TRIPS"); do
            t0=$(now); ssh "${SSHC[@]}" "$t" true; t1=$(now)
            ssh_row true "$round" "$t" "$(elapsed "$t0" "$t1")" 0
        done
        python3 bench/suites/echo_latency.py "$KEYS" ssh "${SSHC[@]}" -tt "$t" \
            | while read -r s; do ssh_row echo "$round" "$t" "$s" 0; done
        printf '  round %s %-9s done\n' "$round" "$t"
    done
done
