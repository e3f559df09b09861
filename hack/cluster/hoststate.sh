# Host state the cluster changes, saved once before the first start and put back by
# cluster-down (sourced by up.sh / down.sh; needs lib.sh).
HOSTSTATE="$STATE/hoststate"
HOST_SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward net.ipv4.conf.all.route_localnet)
# Paths the kubelet, containerd and the CNI plugins create on the host.
HOST_PATHS=(/var/lib/kubelet /var/log/pods /var/log/containers /run/containerd /var/run/netns /var/lib/cni /etc/cni /opt/cni)
IPT_TABLES=(filter nat mangle)
# Chains owned by the kubelet (KUBE-*) and the bridge/portmap CNI plugins (CNI-*).
IPT_CHAIN_RE='^(KUBE-|CNI-)'

iptables_cmds() { local c; for c in iptables ip6tables; do command -v "$c" >/dev/null && echo "$c"; done; }
ipt_chains() { "$1-save" -t "$2" 2>/dev/null | sed -n 's/^:\([^ ]*\) .*/\1/p'; }
cgroup_kubepods() { ls -d /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods 2>/dev/null || true; }

hoststate_save() {
  [ -f "$HOSTSTATE/saved" ] && return
  mkdir -p "$HOSTSTATE"
  local k v p c t
  for k in "${HOST_SYSCTLS[@]}"; do v=$(sysctl -n "$k" 2>/dev/null) && echo "$k=$v"; done >"$HOSTSTATE/sysctl" || true
  for p in "${HOST_PATHS[@]}"; do [ -e "$p" ] && echo "$p"; done >"$HOSTSTATE/paths" || true
  ls /var/run/netns 2>/dev/null >"$HOSTSTATE/netns" || true
  cgroup_kubepods >"$HOSTSTATE/cgroups"
  ip link show "$CNI_BRIDGE" >/dev/null 2>&1 && echo "$CNI_BRIDGE" >"$HOSTSTATE/bridge" || : >"$HOSTSTATE/bridge"
  for c in $(iptables_cmds); do for t in "${IPT_TABLES[@]}"; do
    ipt_chains "$c" "$t" | sed "s/^/$c $t /"
  done; done >"$HOSTSTATE/chains"
  date -u +%FT%TZ >"$HOSTSTATE/saved"
}

# umount_under PREFIX: unmount every mount point at or below PREFIX, deepest first.
umount_under() {
  local prefix=$1 m
  awk -v p="$prefix" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo |
    awk '{print length, $0}' | sort -rn | cut -d' ' -f2- | while read -r m; do
      m=$(printf "%b" "$m")   # mountinfo escapes blanks as \040
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: could not unmount $m"
    done
}

hoststate_restore() {
  [ -f "$HOSTSTATE/saved" ] || return 0
  local c t chain rule kv p n
  # iptables: drop chains that were not there before, and every rule jumping to them.
  for c in $(iptables_cmds); do for t in "${IPT_TABLES[@]}"; do
    local new=()
    for chain in $(ipt_chains "$c" "$t" | grep -E "$IPT_CHAIN_RE" || true); do
      grep -qxF "$c $t $chain" "$HOSTSTATE/chains" || new+=("$chain")
    done
    [ ${#new[@]} -gt 0 ] || continue
    local re; re=$(IFS='|'; echo "${new[*]}")
    { "$c-save" -t "$t" | grep -E -- "-j ($re)( |\$)" || true; } | sed 's/^-A /-D /' | while read -r rule; do
      eval "$c -w -t $t $rule" 2>/dev/null || true
    done
    for chain in "${new[@]}"; do "$c" -w -t "$t" -F "$chain" 2>/dev/null || true; done
    for chain in "${new[@]}"; do "$c" -w -t "$t" -X "$chain" 2>/dev/null || true; done
  done; done
  # sysctls back to their old values.
  while IFS= read -r kv; do
    [ -n "$kv" ] && [ "$(sysctl -n "${kv%%=*}")" != "${kv#*=}" ] && sysctl -qw "$kv" || true
  done <"$HOSTSTATE/sysctl"
  # the CNI bridge.
  if [ ! -s "$HOSTSTATE/bridge" ] && ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then ip link del "$CNI_BRIDGE" || true; fi
  # network namespaces left by sandboxes that were not torn down cleanly.
  if [ -d /var/run/netns ]; then
    for n in $(ls /var/run/netns); do
      grep -qxF "$n" "$HOSTSTATE/netns" && continue
      case "$n" in cni-*) umount "/var/run/netns/$n" 2>/dev/null; rm -f "/var/run/netns/$n" ;; esac
    done
  fi
  # kubelet cgroups (deepest first; only empty ones can go).
  for p in $(cgroup_kubepods); do
    grep -qxF "$p" "$HOSTSTATE/cgroups" && continue
    find "$p" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  # directories that did not exist before.
  for p in "${HOST_PATHS[@]}"; do
    [ -e "$p" ] || continue
    grep -qxF "$p" "$HOSTSTATE/paths" && continue
    umount_under "$p"
    rm -rf --one-file-system "$p" || log "warning: could not remove $p"
  done
  rm -rf "$HOSTSTATE"
}
