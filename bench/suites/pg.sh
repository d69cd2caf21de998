# PostgreSQL suite for scripts/bench (sourced): direct vs PgBouncer (session mode) vs bastion.
# Writes {"suite":"pg","kind":"pgbench"|"connect"|"idle",...} lines to $RAW.

PG_USER=$(id -un); [ "$(id -u)" -eq 0 ] && PG_USER=bastion-pg
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }
PGBIN=$(pg_bindir)
PGW=$WORK/pg
mkdir -p "$PGW"
PG_PORT=$(free_port); BOUNCER_PORT=$(free_port); BASTION_PG_PORT=$(free_port)

echo "==> PostgreSQL on $PG_PORT"
PW=bench-password
echo "$PW" > "$PGW/pw"
[ "$(id -u)" -eq 0 ] && chown -R "$PG_USER" "$PGW"
as_pg "$PGBIN/initdb" -D "$PGW/data" -U postgres --auth-host=scram-sha-256 --auth-local=trust --pwfile="$PGW/pw" -E UTF8 --locale=C >/dev/null
cat >> "$PGW/data/postgresql.conf" <<CONF
listen_addresses='127.0.0.1'
port=$PG_PORT
unix_socket_directories='$PGW'
max_connections=1300
shared_buffers=128MB
fsync=off
synchronous_commit=off
CONF
printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n' > "$PGW/data/pg_hba.conf"
as_pg "$PGBIN/pg_ctl" -D "$PGW/data" -l "$PGW/pg.log" -w start >/dev/null
cleanups+=("as_pg '$PGBIN/pg_ctl' -D '$PGW/data' -m immediate -w stop >/dev/null 2>&1")
as_pg psql -X -q -h "$PGW" -p "$PG_PORT" -U postgres -c "CREATE DATABASE bench" >/dev/null

echo "==> PgBouncer (session mode) on $BOUNCER_PORT"
cat > "$PGW/pgbouncer.ini" <<INI
[databases]
bench = host=127.0.0.1 port=$PG_PORT dbname=bench
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
auth_type = plain
auth_file = $PGW/userlist.txt
pool_mode = session
max_client_conn = 2000
default_pool_size = 64
logfile = $PGW/pgbouncer.log
pidfile = $PGW/pgbouncer.pid
unix_socket_dir =
INI
echo "\"postgres\" \"$PW\"" > "$PGW/userlist.txt"
[ "$(id -u)" -eq 0 ] && chown -R "$PG_USER" "$PGW"
as_pg pgbouncer "$PGW/pgbouncer.ini" >/dev/null 2>&1 &
pids+=($!)

echo "==> bastion (allow-all policy, recording on) on $BASTION_PG_PORT"
mkdir -p "$PGW/secrets"
python3 - "$PGW/secrets/bench.scram" <<'PY'
import hashlib, hmac, base64, os, sys
salt=os.urandom(16); it=4096
sp=hashlib.pbkdf2_hmac('sha256', b'bench-pw', salt, it)
ck=hmac.new(sp,b'Client Key',hashlib.sha256).digest(); sk=hashlib.sha256(ck).digest()
svk=hmac.new(sp,b'Server Key',hashlib.sha256).digest(); b=lambda x: base64.b64encode(x).decode()
open(sys.argv[1],'w').write(f"SCRAM-SHA-256${it}:{b(salt)}${b(sk)}:{b(svk)}")
PY
echo "$PW" > "$PGW/secrets/upstream"
chmod 600 "$PGW"/secrets/*
cat > "$PGW/bastion.toml" <<TOML
[server]
postgres_listen = "127.0.0.1:$BASTION_PG_PORT"
state_dir = "$PGW/state"
audit_dir = "$PGW/audit"
allow_plaintext_from = ["127.0.0.1/32"]
[[users]]
name = "bench"
kind = "human"
groups = ["engineers"]
scram_verifier = "file:$PGW/secrets/bench.scram"
[[targets]]
name = "db"
protocol = "postgres"
address = "127.0.0.1:$PG_PORT"
database = "bench"
upstream_user = "postgres"
credential = "file:$PGW/secrets/upstream"
tls = "disable"
[policies]
paths = ["$WORK/policies"]
[recorder]
durability = "os"
[limits]
max_connections = 4000
max_sessions_per_identity = 4000
TOML
"$BASTION" serve --config "$PGW/bastion.toml" > "$PGW/bastion.log" 2>&1 &
BASTION_PG_PID=$!
pids+=($BASTION_PG_PID)
wait_port "$BASTION_PG_PORT"
wait_port "$BOUNCER_PORT"
# PgBouncer runs under runuser: its own pid (for CPU accounting) is in its pidfile.
BOUNCER_PID=$(cat "$PGW/pgbouncer.pid")
cleanups+=("kill $BOUNCER_PID 2>/dev/null")

conn_for() {
    case "$1" in
        direct) echo "host=127.0.0.1 port=$PG_PORT dbname=bench user=postgres sslmode=disable" ;;
        pgbouncer) echo "host=127.0.0.1 port=$BOUNCER_PORT dbname=bench user=postgres sslmode=disable" ;;
        bastion) echo "host=127.0.0.1 port=$BASTION_PG_PORT dbname=bench user=bench@db sslmode=disable" ;;
    esac
}
pw_for() { if [ "$1" = bastion ]; then echo bench-pw; else echo "$PW"; fi; }
proxy_pid() { case "$1" in pgbouncer) echo "$BOUNCER_PID";; bastion) echo "$BASTION_PG_PID";; *) echo "";; esac; }

PGPASSWORD=$PW pgbench -i -s 5 -q "$(conn_for direct)" >/dev/null 2>&1
# Every target must answer before anything is measured.
for t in direct pgbouncer bastion; do
    PGPASSWORD=$(pw_for $t) psql -X -q -c "SELECT 1" "$(conn_for $t)" >/dev/null \
        || { echo "pg suite: $t does not answer; logs in $PGW" >&2; cat "$PGW/bastion.log" >&2; exit 1; }
done

if [ "$QUICK" = 1 ]; then SECS=3; ROUNDS=2; CLIENTS="1 8"; MODES="simple prepared"; SCRIPTS="select"; IDLE=200
else SECS=5; ROUNDS=3; CLIENTS="1 8 32"; MODES="simple extended prepared"; SCRIPTS="select tpcb"; IDLE=1000; fi

# Measured first, on a fresh bastion process: after pgbench the allocator has freed memory to
# reuse, which hides what a session costs.
echo "==> idle-session memory: $IDLE sessions held open on a fresh bastion"
before=$(rss_kb "$BASTION_PG_PID")
ready=$WORK/idle-ready
rm -f "$ready"
mkfifo "$WORK/idle-hold"
"$BENCH_BIN/pg-idle-sessions" "$(conn_for bastion) password=bench-pw" "$IDLE" "$ready" < "$WORK/idle-hold" &
IDLE_PID=$!
exec 8> "$WORK/idle-hold"   # the sessions stay open until this closes
for _ in $(seq 600); do [ -s "$ready" ] && break; kill -0 $IDLE_PID 2>/dev/null || break; sleep 0.5; done
if [ -s "$ready" ]; then
    sleep 1
    after=$(rss_kb "$BASTION_PG_PID")
    echo "{\"suite\":\"pg\",\"kind\":\"idle\",\"sessions\":$IDLE,\"rss_before_kb\":$before,\"rss_after_kb\":$after}" >> "$RAW"
    echo "  bastion RSS $before kB -> $after kB"
else
    echo "  idle sessions did not all open (see $PGW/bastion.log)"
fi
exec 8>&-
wait $IDLE_PID 2>/dev/null || true

# pg_run ROUND SCRIPT MODE CLIENTS TARGET: one pgbench run, one JSON line.
pg_run() {
    local round=$1 script=$2 mode=$3 c=$4 target=$5 flag="-S" j logdir pid cpu0 cpu1 res tps tx lat
    [ "$script" = tpcb ] && flag="-b tpcb-like"
    j=$(( c < 4 ? c : 4 ))
    logdir=$(mktemp -d "$WORK/pglog-XXXX")
    pid=$(proxy_pid "$target")
    cpu0=$([ -n "$pid" ] && cpu_seconds "$pid" || echo 0)
    # shellcheck disable=SC2086
    res=$(cd "$logdir" && PGPASSWORD=$(pw_for "$target") pgbench $flag -M "$mode" -c "$c" -j "$j" -T "$SECS" -n \
        -l --sampling-rate=0.2 --log-prefix="$logdir/tx" "$(conn_for "$target")" 2>&1) || true
    cpu1=$([ -n "$pid" ] && cpu_seconds "$pid" || echo 0)
    tps=$(echo "$res" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
    tx=$(echo "$res" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
    if [ -z "$tps" ]; then echo "pgbench failed against $target:"; echo "$res" | tail -5; fi
    # Latency percentiles from the per-transaction log (column 3: microseconds).
    lat=$(cat "$logdir"/tx* 2>/dev/null | python3 -c '
import sys
v=sorted(int(l.split()[2]) for l in sys.stdin if len(l.split())>2)
p=lambda q: v[min(len(v)-1,max(0,int(q*len(v)+0.5)-1))]/1000 if v else "null"
print(f"{p(0.5)} {p(0.99)}")')
    rm -rf "$logdir"
    local cpu_json="null"
    [ -n "$pid" ] && cpu_json=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{printf "%.3f", b-a}')
    echo "{\"suite\":\"pg\",\"kind\":\"pgbench\",\"round\":$round,\"script\":\"$script\",\"mode\":\"$mode\",\"clients\":$c,\"target\":\"$target\",\"tps\":${tps:-0},\"tx\":${tx:-0},\"lat_p50_ms\":${lat% *},\"lat_p99_ms\":${lat#* },\"proxy_cpu_s\":$cpu_json}" >> "$RAW"
    printf '  round %s %-6s %-8s c=%-3s %-9s tps=%s p99=%sms\n' "$round" "$script" "$mode" "$c" "$target" "${tps:-FAILED}" "${lat#* }"
}

echo "==> pgbench: $ROUNDS rounds x ${SECS}s, clients [$CLIENTS], modes [$MODES], scripts [$SCRIPTS]"
for round in $(seq "$ROUNDS"); do
    for script in $SCRIPTS; do
        for mode in $MODES; do
            for c in $CLIENTS; do
                for target in direct pgbouncer bastion; do
                    pg_run "$round" "$script" "$mode" "$c" "$target"
                done
            done
        done
    done
done

# BENCH_PERF=1: a CPU profile of the bastion under pgbench -S (simple, 8 clients), for the
# closing question "where does the proxy's time go" (perf from linux-perf).
if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
    echo "==> perf profile of the bastion (pgbench -S simple, 8 clients)"
    perf record -F 499 -g -p "$BASTION_PG_PID" -o "$OUT/perf.data" -- sleep "$SECS" 2> "$OUT/perf-record.log" &
    PERF_PID=$!
    PGPASSWORD=bench-pw pgbench -S -M simple -c 8 -j 4 -T "$SECS" -n "$(conn_for bastion)" >/dev/null 2>&1 || true
    wait $PERF_PID || true
    perf report -i "$OUT/perf.data" --stdio --no-children --percent-limit 1.5 --sort dso,symbol -g none 2>/dev/null > "$OUT/perf-bastion.txt" || true
    # The same samples with the call chains that lead to the top symbols.
    perf report -i "$OUT/perf.data" --stdio --no-children --percent-limit 5 --sort symbol -g caller,2,callee 2>/dev/null > "$OUT/perf-bastion-callers.txt" || true
    rm -f "$OUT/perf.data"
    echo "  profile in $OUT/perf-bastion.txt (call chains: perf-bastion-callers.txt)"
    # System calls per transaction, the bastion and PgBouncer under the same load.
    if command -v strace >/dev/null; then
        for target in bastion pgbouncer; do
            pid=$(proxy_pid $target)
            timeout -s INT "$SECS" strace -c -f -p "$pid" -o "$OUT/strace-$target.txt" 2>/dev/null &
            STRACE_PID=$!
            sleep 0.5
            res=$(PGPASSWORD=$(pw_for $target) pgbench -S -M simple -c 8 -j 4 -T $((SECS - 1)) -n "$(conn_for $target)" 2>&1) || true
            wait $STRACE_PID || true
            tx=$(echo "$res" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
            echo "transactions: ${tx:-0}" >> "$OUT/strace-$target.txt"
            echo "  system calls of $target under pgbench ($tx transactions, traced): $OUT/strace-$target.txt"
        done
    fi
fi

echo "==> connection set-up: pgbench -C -S, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
    for target in direct pgbouncer bastion; do
        res=$(PGPASSWORD=$(pw_for $target) pgbench -C -S -c 1 -T "$SECS" -n "$(conn_for $target)" 2>&1) || true
        tps=$(echo "$res" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
        ms=$(echo "$res" | sed -n 's/^average connection time = \([0-9.]*\) ms/\1/p' | head -1)
        echo "{\"suite\":\"pg\",\"kind\":\"connect\",\"round\":$round,\"target\":\"$target\",\"conn_ms\":${ms:-0},\"tps\":${tps:-0}}" >> "$RAW"
        printf '  round %s connect %-9s %s ms\n' "$round" "$target" "${ms:-FAILED}"
    done
done

