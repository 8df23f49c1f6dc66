#!/usr/bin/env bash
# Answer latency through the README's `ssh -R` recipe on loopback: an sshd of our own on
# 127.0.0.1 (../shared/ssh/README.md), a listener on the "laptop" end playing a real file's bars
# as its keyboard, and `nanotune bench answer` run inside the ssh session on the forwarded socket.
# Usage: scripts/bench-answer-ssh.sh [bench answer flags...]   (as root, openssh installed)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/nanotune}
D=$(mktemp -d)
PORT=${PORT:-2299}
ssh-keygen -q -t ed25519 -N '' -f "$D/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$D/userkey"
mkdir -p ~/.ssh /run/sshd
KEY=$(cat "$D/userkey.pub")
echo "$KEY" >> ~/.ssh/authorized_keys
cat > "$D/sshd_config" <<CFG
Port $PORT
ListenAddress 127.0.0.1
HostKey $D/hostkey
PidFile $D/pid
PermitRootLogin prohibit-password
PasswordAuthentication no
UsePAM no
AllowStreamLocalForwarding yes
StreamLocalBindUnlink yes
CFG
LISTENER=
cleanup() {
  [ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null || true
  [ -f "$D/pid" ] && kill "$(cat "$D/pid")" 2>/dev/null || true
  grep -vF "$KEY" ~/.ssh/authorized_keys > "$D/keys" || true
  cat "$D/keys" > ~/.ssh/authorized_keys
  rm -rf "$D"
}
trap cleanup EXIT
/usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log"
timeout 600 "$BIN" listen --socket "$D/laptop.sock" --no-sound --save-dir "$D/saved" \
  --midi-in-file docs/examples/continuation.mid --phrase-bars 2 > "$D/listener.log" 2>&1 &
LISTENER=$!
for _ in $(seq 100); do [ -S "$D/laptop.sock" ] && break; sleep 0.1; done
timeout 600 ssh -i "$D/userkey" -p "$PORT" -o StrictHostKeyChecking=no \
  -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ExitOnForwardFailure=yes \
  -R "$D/server.sock:$D/laptop.sock" root@127.0.0.1 \
  "cd $PWD && $BIN bench answer --listener $D/server.sock $*"
