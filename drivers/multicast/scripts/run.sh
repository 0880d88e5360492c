#!/usr/bin/env bash
# Runs a whole abcast cluster in a network namespace of its own, as the old
# program's run.sh did, and checks the result: 3 acceptors, 2 proposers,
# 2 learners (output in learn1, learn2) and 2 clients (input prop1, prop2,
# N generated values each). Needs root (it creates the namespace).
#
# Usage: run.sh DIR N
#   DIR  working directory (created; paxos.conf, prop*, learn*, logs go there)
#   N    values per client
# Environment: LOSS=P drops each datagram received in the namespace with
# probability P (iptables); ABCAST=path to the binary (default: the
# workspace's target/release/abcast); TIMEOUT=seconds to wait (default 300).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [[ $# -ne 2 || ! $2 =~ ^[0-9]+$ || $1 == "" ]]; then
    echo "usage: $0 DIR N   (N values per client; LOSS=P for loss)" >&2
    exit 2
fi
dir=$1 n=$2 loss=${LOSS:-0} timeout=${TIMEOUT:-300}
abcast=${ABCAST:-$here/../../../target/release/abcast}
if [[ ! -x $abcast ]]; then
    echo "no abcast binary at $abcast: run 'cargo build --release -p paxos-multicast' or set ABCAST" >&2
    exit 2
fi
abcast=$(cd "$(dirname "$abcast")" && pwd)/$(basename "$abcast")
if [[ $(id -u) -ne 0 ]]; then
    echo "run.sh creates a network namespace and needs root" >&2
    exit 2
fi

mkdir -p "$dir"
cd "$dir"
rm -rf abcast-data learn1 learn2 ./*.log
cat >paxos.conf <<'CONF'
# name      group      port
clients     239.0.0.1  5000
proposers   239.0.0.1  6000
acceptors   239.0.0.1  7000
learners    239.0.0.1  8000
CONF
"$here/generate.sh" "$n" >prop1
"$here/generate.sh" "$n" >prop2

# A LAN of network namespaces: a bridge in a hub namespace and one namespace
# per process, so that each process loses its own share of datagrams, as on
# a real network. Nothing reaches the host's network namespace. Everything
# is removed on exit, whatever happens.
tag=abrun$$
namespaces=()
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
hub=$tag-hub
ip netns add "$hub" && namespaces+=("$hub")
ip -n "$hub" link add br0 type bridge
ip -n "$hub" link set br0 type bridge mcast_snooping 0
ip -n "$hub" link set br0 mtu 65535 up
hosts=0
host() { # NAME: a namespace on the LAN, with the loss rule
    local ns=$tag-$1
    hosts=$((hosts + 1))
    ip netns add "$ns" && namespaces+=("$ns")
    ip -n "$hub" link add "p$hosts" type veth peer name eth0 netns "$ns"
    ip -n "$hub" link set "p$hosts" mtu 65535 master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 mtu 65535 up
    ip -n "$ns" addr add "169.254.77.$hosts/24" dev eth0
    ip -n "$ns" route add 224.0.0.0/4 dev eth0
    if [[ $loss != 0 ]]; then
        ip netns exec "$ns" iptables -A INPUT -d 239.0.0.1 -m statistic --mode random --probability "$loss" -j DROP
    fi
}
for name in acceptor1 acceptor2 acceptor3 proposer1 proposer2 learner1 learner2 client1 client2; do
    host $name
done
if [[ $loss != 0 ]]; then
    echo "loss: every process drops each datagram it receives with probability $loss"
fi

# `ip netns exec` execs the binary, so $! is abcast's own pid.
for i in 1 2 3; do ip netns exec "$tag-acceptor$i" "$abcast" acceptor $i 2>"acceptor$i.log" & pids+=($!); done
for i in 1 2; do ip netns exec "$tag-learner$i" "$abcast" learner $i >"learn$i" 2>"learner$i.log" & pids+=($!); done
for i in 1 2; do ip netns exec "$tag-proposer$i" "$abcast" proposer $i 2>"proposer$i.log" & pids+=($!); done
t0=$(date +%s%N)
ip netns exec "$tag-client1" "$abcast" client 1 <prop1 2>client1.log & c1=$!
ip netns exec "$tag-client2" "$abcast" client 2 <prop2 2>client2.log & c2=$!

# Clients exit once all their values are delivered; learners are done when
# they printed every value. Poll with a deadline instead of fixed sleeps.
deadline=$((SECONDS + timeout))
want=$((2 * n))
until [[ $(wc -l <learn1) -ge $want && $(wc -l <learn2) -ge $want ]]; do
    if ((SECONDS > deadline)); then
        echo "timed out after ${timeout}s: learn1 has $(wc -l <learn1), learn2 $(wc -l <learn2) of $want lines" >&2
        kill -TERM $c1 $c2 2>/dev/null || true
        exit 1
    fi
    sleep 0.05
done
t1=$(date +%s%N)
wait $c1 $c2 || echo "a client exited with an error; see client*.log" >&2
cleanup
trap - EXIT
ms=$(((t1 - t0) / 1000000))
echo "delivered $want values to both learners in $ms ms ($((want * 1000 / (ms > 0 ? ms : 1))) values/s)"
echo "counters (stderr of each process):"
tail -qn1 ./*.log | sed 's/^/  /'
"$here/check.sh" .
