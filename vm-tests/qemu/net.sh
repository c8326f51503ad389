# vm-tests/qemu/net.sh: the VMs' network, in namespaces the test owns.
# Sourced by vm-tests/qemu.sh.
#
#   $NS_LAN     bridge br0; one multiqueue tap per VM (tap-NAME), QEMU runs
#               in this namespace; "client", the bridge's end of the veth
#   $NS_CLIENT  eth0 (veth to br0): "the world", with several IPv4 and IPv6
#               addresses so that policies can tell peers apart
#
# Nothing here is routed anywhere: the bridge only joins the VMs and the
# client.

NS_LAN=hfwq-lan
NS_CLIENT=hfwq-client
NET4=10.232.0
NET6=fd00:232:
CLIENT_IP=$NET4.2
CLIENT_IP6=$NET6:2
# The client's addresses: the first is the default source; the others are
# peers the policies name by CIDR (allowed, denied, unknown).
CLIENT_V4=("$NET4.2" "$NET4.3" "$NET4.4" "$NET4.5")
CLIENT_V6=("$NET6:2" "$NET6:3" "$NET6:4" "$NET6:5")
# The VMs: name -> host number on the bridge.
declare -A VM_NUM=([a]=11 [b]=12)
vm_ip() { echo "$NET4.${VM_NUM[$1]}"; }
vm_ip6() { echo "$NET6:${VM_NUM[$1]}"; }
QUEUES=2 # virtio-net queue pairs: 2 x vCPUs, so that native XDP has its own TX queues

net_up() {
  net_down
  ip netns add "$NS_LAN"
  ip netns add "$NS_CLIENT"
  ip -n "$NS_LAN" link set lo up
  ip -n "$NS_LAN" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
  ip -n "$NS_LAN" link set br0 up
  ip -n "$NS_LAN" link add client type veth peer name eth0 netns "$NS_CLIENT"
  ip -n "$NS_LAN" link set client master br0 up
  ip -n "$NS_CLIENT" link set lo up
  local a
  for a in "${CLIENT_V4[@]}"; do ip -n "$NS_CLIENT" addr add "$a/24" dev eth0; done
  for a in "${CLIENT_V6[@]}"; do ip -n "$NS_CLIENT" addr add "$a/64" dev eth0 nodad; done
  ip -n "$NS_CLIENT" link set eth0 up
}
net_down() {
  ip netns del "$NS_CLIENT" 2>/dev/null || true
  ip netns del "$NS_LAN" 2>/dev/null || true
}

# tap_up NAME: the VM's tap on the bridge, with $QUEUES queues.
tap_up() {
  ip -n "$NS_LAN" link del "tap-$1" 2>/dev/null || true
  ip -n "$NS_LAN" tuntap add dev "tap-$1" mode tap multi_queue
  ip -n "$NS_LAN" link set "tap-$1" master br0 up
}

# in_client COMMAND...: runs COMMAND in the client namespace.
in_client() { ip netns exec "$NS_CLIENT" "$@"; }
