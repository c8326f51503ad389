# vm-tests/lib/policies.sh: the policies the scenarios apply, as an operator
# writes them (CiliumClusterwideNetworkPolicy). Sourced.

# policy_ccnp NAME PORT...: ingress allowed to these TCP ports from anywhere
# and IPv4 ping from the world; the rest of ingress is denied (an ingress
# section makes it default-deny). No port: ping only (blocks ssh).
policy_ccnp() {
  local name=$1 port
  shift
  printf 'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\n'
  printf 'metadata:\n  name: %s\nspec:\n  nodeSelector: {}\n  ingress:\n' "$name"
  if (($#)); then
    printf '  - toPorts:\n    - ports:\n'
    for port in "$@"; do
      printf '      - port: "%s"\n        protocol: TCP\n' "$port"
    done
  fi
  printf '  - fromEntities:\n    - world\n    icmps:\n    - fields:\n'
  printf '      - type: EchoRequest\n        family: IPv4\n'
}
