# vm-tests/qemu/policies.sh: the policies of tier 2's scenarios, as an
# operator writes them (CiliumClusterwideNetworkPolicy). Sourced by
# vm-tests/qemu.sh; policy_ccnp (lib/policies.sh) makes the simple ones.
#
# The client's addresses (qemu/net.sh) play these peers:
#   .2 / ::2  an ordinary peer of the world
#   .3 / ::3  a trusted peer, named by CIDR (the "bastion")
#   .4 / ::4  a peer a deny rule names
#   .5 / ::5  another peer of the world, not in the ping CIDR

# policy_flows: the verdict matrix of the kernel scenarios. TCP 22, 8080 and
# UDP 5300 from the world, but not from .4 (ingressDeny); TCP 8081 and UDP
# 5301 only from .3; ping (IPv4 and IPv6) only from .0/30 (::/126), so .2
# and .3; TCP 8082 and UDP 5302 from nobody (default deny).
policy_flows() {
  cat <<EOF
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: vm-flows
spec:
  nodeSelector: {}
  ingress:
  - fromEntities: [world]
    toPorts:
    - ports:
      - {port: "22", protocol: TCP}
      - {port: "8080", protocol: TCP}
      - {port: "5300", protocol: UDP}
  - fromCIDR: [$NET4.3/32, "$NET6:3/128"]
    toPorts:
    - ports:
      - {port: "8081", protocol: TCP}
      - {port: "5301", protocol: UDP}
  - fromCIDR: [$NET4.0/30, "$NET6:/126"]
    icmps:
    - fields:
      - {type: EchoRequest, family: IPv4}
      - {type: EchoRequest, family: IPv6}
  ingressDeny:
  - fromCIDR: [$NET4.4/32, "$NET6:4/128"]
    toPorts:
    - ports:
      - {port: "8080", protocol: TCP}
      - {port: "5300", protocol: UDP}
EOF
}

# policy_control_plane: kubelet (10250) from the other nodes only, the API
# server (6443) from the world only, ssh from the world.
policy_control_plane() {
  cat <<'EOF'
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: vm-control-plane
spec:
  nodeSelector: {}
  ingress:
  - fromEntities: [remote-node]
    toPorts:
    - ports:
      - {port: "10250", protocol: TCP}
  - fromEntities: [world]
    toPorts:
    - ports:
      - {port: "6443", protocol: TCP}
      - {port: "22", protocol: TCP}
EOF
}

# policy_bastion_ssh: ssh only from the bastion (.3): it cuts the operator's
# ssh from .2 (with the ssh failsafe off), and the bastion still gets in.
policy_bastion_ssh() {
  cat <<EOF
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: vm-bastion-ssh
spec:
  nodeSelector: {}
  ingress:
  - fromCIDR: [$NET4.3/32]
    toPorts:
    - ports:
      - {port: "22", protocol: TCP}
EOF
}
