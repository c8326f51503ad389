# vm-tests/lib/ssh.sh: real ssh from the client namespace, as an operator
# logs in. Sourced; needs NS_CLIENT and SSH_KEY set by the tier.

# make_ssh_key: a key pair for root on the test machines (once per run dir).
make_ssh_key() {
  [[ -f $SSH_KEY ]] || ssh-keygen -q -t ed25519 -N '' -C hostfw-vm-tests -f "$SSH_KEY"
}

# client_ssh HOST [OPTIONS...] -- COMMAND: ssh as root from the client
# namespace. A session whose server stops answering ends within about 4 s
# (ServerAlive 1 s × 3), with status 255. OPTIONS come first, so they win
# over these defaults (ssh keeps the first value of an option).
client_ssh() {
  local host=$1 opts=()
  shift
  while (($#)) && [[ $1 != -- ]]; do opts+=("$1"); shift; done
  [[ ${1-} == -- ]] && shift
  ip netns exec "$NS_CLIENT" ssh "${opts[@]}" -i "$SSH_KEY" -o BatchMode=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o ConnectTimeout=3 -o ServerAliveInterval=1 -o ServerAliveCountMax=3 \
    "root@$host" "$@"
}

# can_login HOST: a new ssh login runs a command (a fresh TCP handshake).
can_login() { client_ssh "$1" -- true </dev/null >/dev/null 2>&1; }
